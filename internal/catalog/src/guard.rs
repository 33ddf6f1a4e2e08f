//! Who keeps concurrent publishers from overwriting each other's changes of `base.json` and the
//! latest pointers: the store's conditional writes, an index lock held across the
//! read-modify-write, or nobody because the caller vouches there is only one publisher.
//!
//! The lock is an interface so this crate stays free of Kubernetes: the CLI and the provider
//! hand in a Lease-backed lock from the `cluster` crate.

use std::sync::Arc;

use objstore::ObjectStore;

use crate::error::{CatalogError, Result};

/// How index writes are made safe against other publishers into the same prefix.
#[derive(Clone, Default)]
pub enum IndexWrites {
    /// Rely on the store's conditional writes. The store is probed (once per process and
    /// prefix) and publishing is refused with [`CatalogError::UnsafeStore`] when it does not
    /// enforce them.
    #[default]
    Conditional,
    /// The caller vouches that nobody else publishes into this prefix at the same time; no probe.
    SinglePublisher,
    /// Hold this lock from before the index is read until the latest pointer is confirmed.
    Locked(Arc<dyn IndexLock>),
}

impl std::fmt::Debug for IndexWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexWrites::Conditional => f.write_str("Conditional"),
            IndexWrites::SinglePublisher => f.write_str("SinglePublisher"),
            IndexWrites::Locked(l) => write!(f, "Locked({})", l.describe()),
        }
    }
}

/// A lock that serialises publishers' index updates (e.g. a Kubernetes Lease).
#[async_trait::async_trait]
pub trait IndexLock: Send + Sync {
    /// Names the lock in messages, e.g. `Lease testnet/ghostnet-index`.
    fn describe(&self) -> String;

    /// Waits for the lock and takes it. The holder keeps it alive (renews it) until released.
    async fn acquire(&self) -> std::result::Result<Box<dyn HeldIndexLock>, String>;
}

/// A lock this publisher holds.
#[async_trait::async_trait]
pub trait HeldIndexLock: Send + Sync {
    /// Fails when the lock was lost since it was taken (not renewed in time, taken over).
    fn check(&self) -> std::result::Result<(), String>;

    /// Gives the lock up.
    async fn release(self: Box<Self>);
}

/// Refuses a store that does not enforce conditional writes unless the caller serialises
/// publishers some other way. Reads never come here.
pub(crate) async fn ensure_safe(store: &dyn ObjectStore, writes: &IndexWrites) -> Result<()> {
    if !matches!(writes, IndexWrites::Conditional) {
        return Ok(());
    }
    let e = objstore::probe::conditional_writes(store).await?;
    if e.complete() {
        return Ok(());
    }
    Err(CatalogError::UnsafeStore {
        url: store.url("").trim_end_matches('/').to_string(),
        missing: e.missing(),
    })
}

/// Takes the index lock when there is one.
pub(crate) async fn acquire(writes: &IndexWrites) -> Result<Option<Box<dyn HeldIndexLock>>> {
    match writes {
        IndexWrites::Locked(lock) => {
            let held = lock
                .acquire()
                .await
                .map_err(|detail| CatalogError::IndexLock {
                    lock: lock.describe(),
                    detail,
                })?;
            tracing::debug!(lock = %lock.describe(), "index lock taken");
            Ok(Some(held))
        }
        _ => Ok(None),
    }
}

/// [`crate::delete_artifact`] under the same rules as publishing: refused on a store that does
/// not enforce conditional writes unless the caller serialises with `writes`, and holding the
/// index lock across the index and pointer updates when there is one.
pub async fn delete_artifact_with(
    store: &dyn ObjectStore,
    key_or_name: &str,
    writes: &IndexWrites,
) -> Result<bool> {
    ensure_safe(store, writes).await?;
    let held = acquire(writes).await?;
    let deleted = crate::ops::delete_artifact(store, key_or_name).await;
    if let Some(h) = held {
        h.release().await;
    }
    deleted
}

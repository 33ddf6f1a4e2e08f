//! Read-modify-write of small JSON documents (`base.json`, latest pointers) with conditional
//! writes, so concurrent publishers never overwrite each other's changes: every write names the
//! version it was computed from (or "absent"), and a writer that lost the race re-reads and
//! re-applies its change after a jittered backoff.

use std::time::Duration;

use bytes::Bytes;
use objstore::{ObjectStore, Precondition, PutOptions, StoreError, Version};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CatalogError, Result};

/// Upper bound on attempts before giving up with [`CatalogError::Contention`].
const MAX_ATTEMPTS: u32 = 60;

/// What an update decided.
pub(crate) enum Change<T> {
    /// Write this document.
    Write(T),
    /// Remove the document (unconditional: stores have no conditional delete).
    Remove,
    /// Leave it as it is.
    Keep,
}

/// How often a document that fails to parse is read again before it is called corrupt. Some
/// stores serve an object while it is being rewritten; such a torn read parses on a later read.
const PARSE_ATTEMPTS: u32 = 5;

/// Reads and parses a document; `None` when absent. A document that does not parse is read
/// again with backoff (50, 100, 200, 400 ms); one that stays invalid is an error and is never
/// overwritten.
pub(crate) async fn read<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<(T, Version)>> {
    let mut attempt = 0;
    loop {
        let (bytes, meta) = match store.get_bytes(key).await {
            Ok(got) => got,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice(&bytes) {
            Ok(doc) => return Ok(Some((doc, meta.version))),
            Err(e) => {
                attempt += 1;
                if attempt >= PARSE_ATTEMPTS {
                    return Err(CatalogError::CorruptDocument {
                        url: store.url(key),
                        size: bytes.len() as u64,
                        detail: e.to_string(),
                    });
                }
                tracing::debug!(object = %store.url(key), size = bytes.len(), attempt, error = %e, "document does not parse, reading it again");
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
        }
    }
}

/// Applies `f` to the current document until a conditional write succeeds. `f` sees the latest
/// version each time and may be called several times, so it must be a pure function of its input.
pub(crate) async fn update<T, F>(store: &dyn ObjectStore, key: &str, mut f: F) -> Result<Option<T>>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Result<Change<T>>,
{
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let current = read::<T>(store, key).await?;
        let (doc, precondition) = match current {
            Some((doc, version)) => (Some(doc), Precondition::IfMatch(version)),
            None => (None, Precondition::IfAbsent),
        };
        let next = match f(doc)? {
            Change::Keep => return Ok(None),
            Change::Remove => {
                store.delete(key).await?;
                return Ok(None);
            }
            Change::Write(next) => next,
        };
        let body = serde_json::to_vec_pretty(&next).map_err(|e| CatalogError::CorruptDocument {
            url: store.url(key),
            size: 0,
            detail: format!("cannot serialise: {e}"),
        })?;
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            precondition,
            ..PutOptions::default()
        };
        match store.put_bytes(key, Bytes::from(body), opts).await {
            Ok(_) => return Ok(Some(next)),
            // Someone else wrote (or removed) it since we read it: re-read and re-apply.
            Err(StoreError::PreconditionFailed { .. }) | Err(StoreError::NotFound { .. }) => {
                tracing::debug!(object = %store.url(key), attempt, "conditional write lost a race, retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CatalogError::Contention {
        url: store.url(key),
        attempts: MAX_ATTEMPTS,
    })
}

/// Exponential backoff from 5 ms up to 500 ms, with full jitter in the upper half so retrying
/// publishers spread out instead of colliding again.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (5u64 << attempt.min(7)).min(500);
    Duration::from_millis(cap_ms / 2 + fastrand::u64(0..=cap_ms / 2))
}

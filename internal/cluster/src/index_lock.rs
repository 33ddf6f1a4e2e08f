//! The snapshot index lock: a Lease that serialises publishers' updates of one store prefix's
//! `base.json` and latest pointers, for stores that do not enforce conditional writes.
//!
//! It is the network-state lock's Lease protocol ([`Cluster::acquire`]) held for a short while
//! and renewed in the background, so a slow index update never outlives its lease unnoticed.
//! Every holder gets a name of its own (`user@host/pid-nonce`): publishers on one machine must
//! not mistake each other's hold for their own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::connect::Cluster;
use crate::lock::{default_holder, LockError, LockRequest, LockState};

/// How long the index lock's lease lives without renewal. Renewed every third of it, so a
/// publisher that dies leaves others waiting at most this long.
pub const INDEX_LOCK_LEASE_SECONDS: i32 = 30;

/// How often a waiting publisher looks at the lease (jittered). Index updates take a fraction
/// of a second, so waiters poll quickly rather than at the network lock's 2 s.
const POLL: Duration = Duration::from_millis(200);

/// `namespace/name` as users write it.
pub fn parse_lease_ref(s: &str) -> Result<(String, String), String> {
    let allowed =
        "expected \"namespace/name\" of a Lease, both DNS labels, e.g. \"testnet/ghostnet-index\"";
    let Some((ns, name)) = s.split_once('/') else {
        return Err(format!("{s:?}: {allowed}"));
    };
    crate::validate::validate_dns1123_label(ns)
        .map_err(|e| format!("{s:?}: namespace: {e}; {allowed}"))?;
    crate::validate::validate_dns1123_subdomain(name)
        .map_err(|e| format!("{s:?}: name: {e}; {allowed}"))?;
    Ok((ns.to_string(), name.to_string()))
}

/// A holder name unique to this process and call.
pub fn unique_holder() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}/pid-{}-{:08x}",
        default_holder(),
        std::process::id(),
        nanos ^ rand::random::<u32>()
    )
}

/// A Lease this process holds, renewed in the background until [`HeldLease::release`].
pub struct HeldLease {
    cluster: Cluster,
    state: Arc<Mutex<LockState>>,
    /// Set when a renewal found the lock gone or could not renew before expiry.
    lost: Arc<Mutex<Option<String>>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Cluster {
    /// Waits for the Lease (up to `wait`), takes it for `lease_seconds`, and renews it every
    /// third of that until released.
    pub async fn hold(
        &self,
        namespace: &str,
        name: &str,
        lease_seconds: i32,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<HeldLease, LockError> {
        let mut req = LockRequest::new(namespace, name, &unique_holder(), lease_seconds);
        req.wait_timeout = Some(wait);
        req.poll_interval = POLL;
        let state = self.acquire(&req, cancel).await?;
        let state = Arc::new(Mutex::new(state));
        let lost = Arc::new(Mutex::new(None));
        let renewer = tokio::spawn(renew_until_dropped(
            self.clone(),
            state.clone(),
            lost.clone(),
            Duration::from_secs(lease_seconds.max(1) as u64),
        ));
        Ok(HeldLease {
            cluster: self.clone(),
            state,
            lost,
            renewer,
        })
    }
}

async fn renew_until_dropped(
    cluster: Cluster,
    state: Arc<Mutex<LockState>>,
    lost: Arc<Mutex<Option<String>>>,
    lease: Duration,
) {
    let every = lease / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let current = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cluster.renew(&current).await {
            Ok(s) => {
                renewed = Instant::now();
                *state.lock().unwrap_or_else(|p| p.into_inner()) = s;
            }
            Err(e @ LockError::Lost { .. }) => {
                *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing the index lock failed; retrying");
                if renewed.elapsed() >= lease {
                    *lost.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("not renewed before it expired: {e}"));
                    return;
                }
            }
        }
    }
}

impl HeldLease {
    /// The lock as last taken or renewed.
    pub fn state(&self) -> LockState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fails when the lease was lost since it was taken.
    pub fn check(&self) -> Result<(), String> {
        match &*self.lost.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Stops renewing and clears the holder (if the lease is still ours).
    pub async fn release(self) {
        self.renewer.abort();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Err(e) = self.cluster.release(&state).await {
            tracing::warn!(lease = %format!("{}/{}", state.namespace, state.name), error = %e, "could not release the index lock; it lapses by itself");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// [`catalog::IndexLock`] on a Lease of this cluster.
pub struct LeaseIndexLock {
    pub cluster: Cluster,
    pub namespace: String,
    pub name: String,
    /// How long to wait for other publishers.
    pub wait: Duration,
    pub cancel: CancellationToken,
}

#[async_trait::async_trait]
impl catalog::IndexLock for LeaseIndexLock {
    fn describe(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
    }

    async fn acquire(&self) -> Result<Box<dyn catalog::HeldIndexLock>, String> {
        let held = self
            .cluster
            .hold(
                &self.namespace,
                &self.name,
                INDEX_LOCK_LEASE_SECONDS,
                self.wait,
                &self.cancel,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::new(HeldIndexLease(held)))
    }
}

struct HeldIndexLease(HeldLease);

#[async_trait::async_trait]
impl catalog::HeldIndexLock for HeldIndexLease {
    fn check(&self) -> Result<(), String> {
        self.0.check()
    }

    async fn release(self: Box<Self>) {
        self.0.release().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_refs() {
        assert_eq!(
            parse_lease_ref("testnet/ghostnet-index"),
            Ok(("testnet".into(), "ghostnet-index".into()))
        );
        for bad in ["ghostnet", "/x", "ns/", "Ns/x", "ns/x/y", "ns/X"] {
            let e = parse_lease_ref(bad).expect_err(bad);
            assert!(e.contains("namespace/name"), "{bad}: {e}");
        }
    }

    #[test]
    fn holders_are_unique_per_call() {
        assert_ne!(unique_holder(), unique_holder());
        assert!(unique_holder().contains(&format!("/pid-{}-", std::process::id())));
    }
}

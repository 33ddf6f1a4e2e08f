//! The network-state lock: one holder at a time per testnet, on a `coordination.k8s.io/v1` Lease.
//!
//! Every write is a create (fails if the Lease exists) or a replace carrying the resourceVersion just
//! read (fails with 409 if anyone wrote in between), so of two clients racing for a free or expired
//! lock exactly one wins; the loser re-reads and sees the winner. `leaseTransitions` counts changes
//! of holder and serves as a fencing token: it only grows, because release clears the holder instead
//! of deleting the Lease.
//!
//! Expiry is judged on the API server's clock (its `Date` header, see [`crate::ServerTime`]), and
//! `acquireTime`/`renewTime` are written from it too, so runners whose clocks disagree still agree
//! on when a Lease lapsed. Leases spanning several clusters are in [`crate::span`].

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::Api;
use tokio_util::sync::CancellationToken;

use crate::claim::sleep_or_cancel;
use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};
use crate::server_time::ServerTime;

/// What to lock and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Lease name (e.g. the testnet name).
    pub name: String,
    /// Who we are (see [`default_holder`]).
    pub holder: String,
    /// How long the lock lives without renewal. Must be > 0.
    pub lease_duration_seconds: i32,
    /// How long to wait for a live holder to go; `None` fails at once with [`LockError::Held`].
    pub wait_timeout: Option<Duration>,
    /// Base interval between checks while waiting (jittered by ±25% so waiters spread out).
    pub poll_interval: Duration,
}

impl LockRequest {
    /// A request with no waiting and a 2 s poll interval.
    pub fn new(namespace: &str, name: &str, holder: &str, lease_duration_seconds: i32) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            holder: holder.to_string(),
            lease_duration_seconds,
            wait_timeout: None,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// The lock as last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// Current holder; `None` when released.
    pub holder: Option<String>,
    /// When the current holder took it.
    pub acquired_at: Option<Timestamp>,
    /// Last renewal.
    pub renewed_at: Option<Timestamp>,
    /// When it lapses unless renewed.
    pub expires_at: Option<Timestamp>,
    /// Lease duration.
    pub lease_duration_seconds: i32,
    /// `leaseTransitions`: grows with every change of holder; pass it to writers as a fencing token.
    pub fencing_token: i32,
    /// resourceVersion of the Lease.
    pub resource_version: String,
}

/// Errors of the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds a live lock.
    #[error("lock {namespace}/{name} is held by {holder:?} since {} until {expires_at} (unless renewed); retry in about {} minute(s), or wait with a timeout", acquired_at.map(|t| t.to_string()).unwrap_or_else(|| "an unknown time".into()), retry_after.as_secs() / 60)]
    Held {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Current holder.
        holder: String,
        /// When they took it.
        acquired_at: Option<Timestamp>,
        /// When it lapses unless renewed.
        expires_at: Timestamp,
        /// Time until expiry, rounded up to whole minutes.
        retry_after: Duration,
    },
    /// The lock passed to someone else (or was released) since we last held it.
    #[error("lock {namespace}/{name} is no longer ours: now held by {holder:?}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Who holds it now (`None`: nobody).
        holder: Option<String>,
    },
    /// The request is unusable.
    #[error("invalid lock request: {0}")]
    Invalid(String),
    /// Interrupted while waiting.
    #[error("waiting for lock {namespace}/{name} cancelled")]
    Cancelled {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
    },
    /// Talking to the cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What [`Cluster::release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// We held it; the holder is now cleared. The Lease stays so `leaseTransitions` (the fencing
    /// token) keeps growing across holders; deleting it would restart the count at 0.
    Cleared,
    /// The Lease no longer exists; nothing to do.
    AlreadyGone,
    /// Someone else holds it now (ours expired and was taken over); left untouched.
    NotOurs {
        /// The current holder, `None` if already released.
        holder: Option<String>,
    },
}

/// Who should appear as holder: `tfc-run/<id>` inside a Terraform Cloud run (`TFC_RUN_ID`), else
/// `user@host`, so a human reading a Held error knows whom to ask.
pub fn default_holder() -> String {
    holder_from(
        std::env::var("TFC_RUN_ID").ok(),
        std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok(),
        hostname(),
    )
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
}

/// [`default_holder`] from explicit inputs.
pub fn holder_from(
    tfc_run_id: Option<String>,
    user: Option<String>,
    host: Option<String>,
) -> String {
    if let Some(id) = tfc_run_id.filter(|i| !i.is_empty()) {
        return format!("tfc-run/{id}");
    }
    format!(
        "{}@{}",
        user.filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".into()),
        host.unwrap_or_else(|| "unknown-host".into())
    )
}

/// When a lease renewed at `renewed_at` lapses.
pub fn lease_expiry(renewed_at: Timestamp, lease_duration_seconds: i32) -> Timestamp {
    renewed_at
        .checked_add(SignedDuration::from_secs(i64::from(
            lease_duration_seconds.max(0),
        )))
        .unwrap_or(Timestamp::MAX)
}

/// Time until `expires_at`, rounded up to whole minutes (at least one), for "retry in N minutes".
pub fn retry_after(now: Timestamp, expires_at: Timestamp) -> Duration {
    let ms = expires_at
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .max(1) as u64;
    let minutes = ms.div_ceil(60_000).max(1);
    Duration::from_secs(minutes * 60)
}

/// How a Lease looks to a would-be holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseView {
    /// No holder.
    Free,
    /// We hold it.
    Ours,
    /// Someone held it but did not renew in time.
    Expired {
        /// The lapsed holder.
        holder: String,
    },
    /// Someone else holds it and it is live.
    Held {
        /// The holder.
        holder: String,
        /// Lapse time.
        expires_at: Timestamp,
    },
}

/// Classify a lease spec for `me` at `now`. A holder without any renew/acquire time or with a
/// non-positive duration has no claim to liveness and counts as expired.
pub fn view_lease(spec: &LeaseSpec, me: &str, now: Timestamp) -> LeaseView {
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return LeaseView::Free,
        Some(h) => h.to_string(),
    };
    if holder == me {
        return LeaseView::Ours;
    }
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match (last, spec.lease_duration_seconds) {
        (Some(last), Some(d)) if d > 0 => {
            let expires_at = lease_expiry(last, d);
            if now < expires_at {
                LeaseView::Held { holder, expires_at }
            } else {
                LeaseView::Expired { holder }
            }
        }
        _ => LeaseView::Expired { holder },
    }
}

/// Next wait while a live holder has the lock: the poll interval jittered by `jitter` in [-1, 1]
/// times 25%, but never past the moment the lease lapses (plus a little) or the wait deadline.
pub fn next_poll(
    base: Duration,
    jitter: f64,
    until_expiry: Duration,
    until_deadline: Duration,
) -> Duration {
    let j = jitter.clamp(-1.0, 1.0) * 0.25;
    let jittered = base.mul_f64(1.0 + j);
    jittered
        .min(until_expiry + Duration::from_millis(20))
        .min(until_deadline)
        .max(Duration::from_millis(5))
}

pub(crate) fn check_request(req: &LockRequest) -> Result<(), LockError> {
    if req.lease_duration_seconds <= 0 {
        return Err(LockError::Invalid(format!(
            "lease_duration_seconds must be greater than 0, got {}",
            req.lease_duration_seconds
        )));
    }
    if req.holder.is_empty() {
        return Err(LockError::Invalid("holder must not be empty".into()));
    }
    Ok(())
}

/// What one look at a Lease ended in.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// We hold it now.
    Took(LockState),
    /// Someone else holds it and it is live on the server's clock.
    Blocked(Blocker),
}

/// The live holder that kept us out, and the server's time when we looked.
#[derive(Debug, Clone)]
pub(crate) struct Blocker {
    pub holder: String,
    pub acquired_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub server_now: Timestamp,
}

impl Blocker {
    pub fn until_expiry(&self) -> Duration {
        let ms = self
            .expires_at
            .as_millisecond()
            .saturating_sub(self.server_now.as_millisecond())
            .max(0);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
    pub fn into_error(self, req: &LockRequest) -> LockError {
        LockError::Held {
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            holder: self.holder,
            acquired_at: self.acquired_at,
            expires_at: self.expires_at,
            retry_after: retry_after(self.server_now, self.expires_at),
        }
    }
}

/// Why [`Cluster::renew_live`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenewError {
    /// Someone else holds it now, or nobody (`None`).
    #[error("now held by {holder:?}")]
    Lost { holder: Option<String> },
    /// Still ours on paper, but it lapsed on the server's clock before we renewed.
    #[error("lapsed")]
    Lapsed {
        expired_at: Option<Timestamp>,
        server_now: Timestamp,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

fn state_of(lease: &Lease, namespace: &str, name: &str) -> LockState {
    let spec = lease.spec.clone().unwrap_or_default();
    let duration = spec.lease_duration_seconds.unwrap_or(0);
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    LockState {
        namespace: namespace.to_string(),
        name: name.to_string(),
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        acquired_at: spec.acquire_time.map(|t| t.0),
        renewed_at: renewed,
        expires_at: renewed.map(|r| lease_expiry(r, duration)),
        lease_duration_seconds: duration,
        fencing_token: spec.lease_transitions.unwrap_or(0),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
    }
}

impl Cluster {
    fn leases(&self, namespace: &str) -> Api<Lease> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Read the lock; `None` when the Lease does not exist.
    pub async fn read(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LockState>, ClusterError> {
        self.leases(namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(|l| state_of(&l, namespace, name)))
            .map_err(|e| self.err(e, "get", ObjectRef::namespaced("Lease", namespace, name)))
    }

    /// Read the lock and the server's time (to judge whether it is live); `None` when the Lease
    /// does not exist.
    pub async fn read_timed(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(Option<LockState>, ServerTime), ClusterError> {
        let object = ObjectRef::namespaced("Lease", namespace, name);
        let (lease, time) = self.get_timed::<Lease>(namespace, name, object).await?;
        Ok((lease.map(|l| state_of(&l, namespace, name)), time))
    }

    /// Take the lock, renew it if already ours, or wait for (or report) the live holder. See the
    /// module doc for why two racing callers never both win.
    pub async fn acquire(
        &self,
        req: &LockRequest,
        cancel: &CancellationToken,
    ) -> Result<LockState, LockError> {
        check_request(req)?;
        let object = ObjectRef::namespaced("Lease", &req.namespace, &req.name);
        let start = Instant::now();
        let mut last_progress = start;
        loop {
            let blocker = match self.try_take(req).await? {
                Attempt::Took(s) => return Ok(s),
                Attempt::Blocked(b) => b,
            };
            let waited = start.elapsed();
            let deadline = req.wait_timeout.unwrap_or(Duration::ZERO);
            if waited >= deadline {
                return Err(blocker.into_error(req));
            }
            if last_progress.elapsed() >= Duration::from_secs(5) {
                last_progress = Instant::now();
                tracing::info!(holder = %blocker.holder, lease = %object, expires_at = %blocker.expires_at, waited_s = waited.as_secs(), "waiting for lock");
            }
            let nap = next_poll(
                req.poll_interval,
                rand::random::<f64>() * 2.0 - 1.0,
                blocker.until_expiry(),
                deadline - waited,
            );
            if !sleep_or_cancel(nap, cancel).await {
                return Err(LockError::Cancelled {
                    namespace: req.namespace.clone(),
                    name: req.name.clone(),
                });
            }
        }
    }

    /// One decision on the Lease: take it (free, expired or ours, by compare-and-swap, re-reading
    /// after every lost race) or report who blocks it. Expiry is judged on the server's clock
    /// (see [`crate::ServerTime`]), and the times written are the server's too.
    pub(crate) async fn try_take(&self, req: &LockRequest) -> Result<Attempt, ClusterError> {
        let object = ObjectRef::namespaced("Lease", &req.namespace, &req.name);
        let api = self.leases(&req.namespace);
        loop {
            let (existing, time) = self
                .get_timed::<Lease>(&req.namespace, &req.name, object.clone())
                .await?;
            let now = time.at_least;
            let Some(mut lease) = existing else {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(req.name.clone()),
                        namespace: Some(req.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(req.holder.clone()),
                        lease_duration_seconds: Some(req.lease_duration_seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                match api.create(&PostParams::default(), &lease).await {
                    Ok(l) => {
                        tracing::info!(holder = %req.holder, lease = %object, "lock acquired (new lease)");
                        return Ok(Attempt::Took(state_of(&l, &req.namespace, &req.name)));
                    }
                    Err(e) => match self.err(e, "create", object.clone()) {
                        // Someone created it first: re-read and compete on their object.
                        ClusterError::AlreadyExists { .. } => continue,
                        other => return Err(other),
                    },
                }
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            let view = view_lease(spec, &req.holder, now);
            match &view {
                LeaseView::Ours => {
                    spec.renew_time = Some(MicroTime(now));
                    spec.lease_duration_seconds = Some(req.lease_duration_seconds);
                }
                LeaseView::Free | LeaseView::Expired { .. } => {
                    spec.holder_identity = Some(req.holder.clone());
                    spec.acquire_time = Some(MicroTime(now));
                    spec.renew_time = Some(MicroTime(now));
                    spec.lease_duration_seconds = Some(req.lease_duration_seconds);
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                LeaseView::Held { holder, expires_at } => {
                    return Ok(Attempt::Blocked(Blocker {
                        holder: holder.clone(),
                        acquired_at: spec.acquire_time.as_ref().map(|t| t.0),
                        expires_at: *expires_at,
                        server_now: now,
                    }));
                }
            }
            match api.replace(&req.name, &PostParams::default(), &lease).await {
                Ok(l) => {
                    match view {
                        LeaseView::Ours => {
                            tracing::debug!(holder = %req.holder, lease = %object, "lock renewed")
                        }
                        LeaseView::Expired { holder } => {
                            tracing::info!(holder = %req.holder, previous = %holder, lease = %object, "lock taken over from expired holder")
                        }
                        _ => tracing::info!(holder = %req.holder, lease = %object, "lock acquired"),
                    }
                    return Ok(Attempt::Took(state_of(&l, &req.namespace, &req.name)));
                }
                Err(e) => match self.err(e, "update", object.clone()) {
                    // Someone wrote in between: re-read and decide again.
                    ClusterError::Conflict { .. } | ClusterError::NotFound { .. } => continue,
                    other => return Err(other),
                },
            }
        }
    }

    /// Like [`Cluster::renew`], but a lease that lapsed on the server's clock counts as lost even
    /// when nobody took it: a multi-cluster holder whose lease lapsed anywhere has lost the lock,
    /// because a rival may have held that cluster's Lease meanwhile.
    pub(crate) async fn renew_live(&self, state: &LockState) -> Result<LockState, RenewError> {
        let me = state.holder.clone().unwrap_or_default();
        let object = ObjectRef::namespaced("Lease", &state.namespace, &state.name);
        let api = self.leases(&state.namespace);
        loop {
            let (lease, time) = self
                .get_timed::<Lease>(&state.namespace, &state.name, object.clone())
                .await?;
            let Some(mut lease) = lease else {
                return Err(RenewError::Lost { holder: None });
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            if me.is_empty()
                || holder.as_deref() != Some(me.as_str())
                || spec.lease_transitions.unwrap_or(0) != state.fencing_token
            {
                return Err(RenewError::Lost { holder });
            }
            let expires = spec
                .renew_time
                .as_ref()
                .or(spec.acquire_time.as_ref())
                .map(|t| lease_expiry(t.0, spec.lease_duration_seconds.unwrap_or(0)));
            match expires {
                Some(x) if time.at_most < x => {}
                _ => {
                    return Err(RenewError::Lapsed {
                        expired_at: expires,
                        server_now: time.at_least,
                    })
                }
            }
            spec.renew_time = Some(MicroTime(time.at_least));
            match api
                .replace(&state.name, &PostParams::default(), &lease)
                .await
            {
                Ok(l) => return Ok(state_of(&l, &state.namespace, &state.name)),
                Err(e) => match self.err(e, "update", object.clone()) {
                    ClusterError::Conflict { .. } => continue,
                    other => return Err(other.into()),
                },
            }
        }
    }

    /// Extend our hold. Fails with [`LockError::Lost`] if the lock changed hands meanwhile.
    pub async fn renew(&self, state: &LockState) -> Result<LockState, LockError> {
        let me = state.holder.clone().unwrap_or_default();
        let object = ObjectRef::namespaced("Lease", &state.namespace, &state.name);
        let api = self.leases(&state.namespace);
        loop {
            let lost = |holder: Option<String>| LockError::Lost {
                namespace: state.namespace.clone(),
                name: state.name.clone(),
                holder,
            };
            let (lease, time) = self
                .get_timed::<Lease>(&state.namespace, &state.name, object.clone())
                .await?;
            let Some(mut lease) = lease else {
                return Err(lost(None));
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            // Same holder name but a newer fencing token means someone with our name re-took it.
            if me.is_empty()
                || holder.as_deref() != Some(me.as_str())
                || spec.lease_transitions.unwrap_or(0) != state.fencing_token
            {
                return Err(lost(holder));
            }
            spec.renew_time = Some(MicroTime(time.at_least));
            match api
                .replace(&state.name, &PostParams::default(), &lease)
                .await
            {
                Ok(l) => return Ok(state_of(&l, &state.namespace, &state.name)),
                Err(e) => match self.err(e, "update", object.clone()) {
                    ClusterError::Conflict { .. } => continue,
                    other => return Err(other.into()),
                },
            }
        }
    }

    /// Give the lock up if it is still ours; see [`ReleaseOutcome`] for what happens otherwise.
    pub async fn release(&self, state: &LockState) -> Result<ReleaseOutcome, LockError> {
        let me = state.holder.clone().unwrap_or_default();
        let object = ObjectRef::namespaced("Lease", &state.namespace, &state.name);
        let api = self.leases(&state.namespace);
        loop {
            let Some(mut lease) = api
                .get_opt(&state.name)
                .await
                .map_err(|e| self.err(e, "get", object.clone()))?
            else {
                return Ok(ReleaseOutcome::AlreadyGone);
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            if me.is_empty()
                || holder.as_deref() != Some(me.as_str())
                || spec.lease_transitions.unwrap_or(0) != state.fencing_token
            {
                tracing::warn!(lease = %object, holder = ?holder, "not releasing a lock that is no longer ours");
                return Ok(ReleaseOutcome::NotOurs { holder });
            }
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
            match api
                .replace(&state.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    tracing::info!(lease = %object, holder = %me, "lock released");
                    return Ok(ReleaseOutcome::Cleared);
                }
                Err(e) => match self.err(e, "update", object.clone()) {
                    ClusterError::Conflict { .. } => continue,
                    ClusterError::NotFound { .. } => return Ok(ReleaseOutcome::AlreadyGone),
                    other => return Err(other.into()),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn spec(holder: Option<&str>, renew: Option<&str>, dur: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            renew_time: renew.map(|r| MicroTime(ts(r))),
            lease_duration_seconds: dur,
            ..Default::default()
        }
    }

    #[test]
    fn expiry_and_retry_after() {
        let r = ts("2026-01-01T00:00:00Z");
        assert_eq!(lease_expiry(r, 90), ts("2026-01-01T00:01:30Z"));
        // 90 s left -> 2 minutes; exactly 60 s -> 1 minute; 1 ms -> 1 minute; past -> 1 minute.
        assert_eq!(
            retry_after(r, ts("2026-01-01T00:01:30Z")),
            Duration::from_secs(120)
        );
        assert_eq!(
            retry_after(r, ts("2026-01-01T00:01:00Z")),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_after(r, ts("2026-01-01T00:00:00.001Z")),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_after(r, ts("2025-12-31T00:00:00Z")),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_after(r, ts("2026-01-01T01:00:00.5Z")),
            Duration::from_secs(61 * 60)
        );
    }

    #[test]
    fn views() {
        let now = ts("2026-01-01T00:01:00Z");
        assert_eq!(
            view_lease(&spec(None, None, None), "me", now),
            LeaseView::Free
        );
        assert_eq!(
            view_lease(&spec(Some(""), None, Some(10)), "me", now),
            LeaseView::Free
        );
        assert_eq!(
            view_lease(
                &spec(Some("me"), Some("2020-01-01T00:00:00Z"), Some(1)),
                "me",
                now
            ),
            LeaseView::Ours
        );
        assert_eq!(
            view_lease(
                &spec(Some("bob"), Some("2026-01-01T00:00:30Z"), Some(60)),
                "me",
                now
            ),
            LeaseView::Held {
                holder: "bob".into(),
                expires_at: ts("2026-01-01T00:01:30Z")
            }
        );
        // Expiry is inclusive: at exactly renew + duration the lease is expired.
        assert_eq!(
            view_lease(
                &spec(Some("bob"), Some("2026-01-01T00:00:00Z"), Some(60)),
                "me",
                now
            ),
            LeaseView::Expired {
                holder: "bob".into()
            }
        );
        assert_eq!(
            view_lease(&spec(Some("bob"), None, Some(60)), "me", now),
            LeaseView::Expired {
                holder: "bob".into()
            }
        );
        assert_eq!(
            view_lease(
                &spec(Some("bob"), Some("2026-01-01T00:00:59Z"), Some(0)),
                "me",
                now
            ),
            LeaseView::Expired {
                holder: "bob".into()
            }
        );
        // acquireTime stands in for a missing renewTime.
        let mut s = spec(Some("bob"), None, Some(60));
        s.acquire_time = Some(MicroTime(ts("2026-01-01T00:00:30Z")));
        assert!(matches!(view_lease(&s, "me", now), LeaseView::Held { .. }));
    }

    #[test]
    fn polling_respects_expiry_and_deadline() {
        let base = Duration::from_secs(2);
        assert_eq!(
            next_poll(base, 0.0, Duration::from_secs(60), Duration::from_secs(60)),
            base
        );
        assert_eq!(
            next_poll(base, 1.0, Duration::from_secs(60), Duration::from_secs(60)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            next_poll(base, -1.0, Duration::from_secs(60), Duration::from_secs(60)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            next_poll(
                base,
                0.0,
                Duration::from_millis(100),
                Duration::from_secs(60)
            ),
            Duration::from_millis(120)
        );
        assert_eq!(
            next_poll(
                base,
                0.0,
                Duration::from_secs(60),
                Duration::from_millis(300)
            ),
            Duration::from_millis(300)
        );
        assert_eq!(
            next_poll(base, 0.0, Duration::ZERO, Duration::ZERO),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn holders() {
        assert_eq!(
            holder_from(Some("run-abc".into()), Some("ann".into()), Some("h".into())),
            "tfc-run/run-abc"
        );
        assert_eq!(
            holder_from(None, Some("ann".into()), Some("box1".into())),
            "ann@box1"
        );
        assert_eq!(
            holder_from(Some(String::new()), None, None),
            "unknown@unknown-host"
        );
        assert!(!default_holder().is_empty());
    }
}

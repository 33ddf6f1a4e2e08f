//! A network lock spanning several clusters: the Lease of the same namespace and name in each.
//!
//! The lock is held only while it is held in every cluster. Leases are taken one by one in
//! sorted cluster-name order, so two contenders always meet first at the same Lease: the one that
//! loses there has taken nothing else, and the winner proceeds unhindered (no deadlock, no
//! livelock). A contender blocked anywhere releases what it took in that attempt before failing
//! or waiting. Expiry is judged on each cluster's own API server clock; a holder whose Lease
//! lapsed in any one cluster has lost the lock, even if nobody took that Lease meanwhile.
//!
//! The fencing token is the tuple of the Leases' `leaseTransitions` ([`FencingToken`]): every
//! change of holder in any cluster grows its entry, so a writer can refuse anyone whose token is
//! behind in some cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::claim::sleep_or_cancel;
use crate::connect::Cluster;
use crate::error::ClusterError;
use crate::lock::{
    check_request, next_poll, retry_after, Attempt, LockError, LockRequest, LockState,
};
use crate::lock::{ReleaseOutcome, RenewError};
use crate::server_time::ServerTime;

/// One cluster taking part in a lock, under the name the configuration gives it. The provider's
/// own connection is the member named `""`.
#[derive(Clone)]
pub struct Member {
    /// The configured name (`us`, `eu`), or `""` for the default connection.
    pub name: String,
    /// Its connection.
    pub cluster: Cluster,
}

/// ` in cluster "us"`, or nothing for the default connection: for messages.
fn in_cluster(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" in cluster {name:?}")
    }
}

/// The tuple of every member's `leaseTransitions`, keyed by cluster name. Shown as `7` for the
/// default connection alone, else `asia=2,eu=5,us=3` (sorted by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FencingToken(pub BTreeMap<String, i64>);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() == 1 {
            if let Some(n) = self.0.get("") {
                return write!(f, "{n}");
            }
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// Why a fencing token string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a fencing token: expected a number such as \"7\" or cluster=number pairs such as \"eu=5,us=3\" (pass the lock's fencing_token)")]
pub struct BadToken(pub String);

impl FromStr for FencingToken {
    type Err = BadToken;
    fn from_str(s: &str) -> Result<Self, BadToken> {
        let bad = || BadToken(s.to_string());
        let t = s.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Ok(FencingToken(BTreeMap::from([(String::new(), n)])));
        }
        let mut m = BTreeMap::new();
        for part in t.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let k = k.trim();
            if k.is_empty() || m.contains_key(k) {
                return Err(bad());
            }
            m.insert(k.to_string(), v.trim().parse::<i64>().map_err(|_| bad())?);
        }
        if m.is_empty() {
            return Err(bad());
        }
        Ok(FencingToken(m))
    }
}

/// Where one token is behind another: the cluster, and both counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    /// The cluster whose Lease changed holder since (`""`: the default connection).
    pub cluster: String,
    /// This token's count there.
    pub ours: i64,
    /// The newer count.
    pub newer: i64,
}

impl FencingToken {
    /// The first cluster (by name) where this token is older than `other`, if any. Clusters only
    /// one of them names are not compared: a lock over other clusters fences nothing here.
    pub fn behind(&self, other: &FencingToken) -> Option<Behind> {
        self.0.iter().find_map(|(k, &ours)| {
            other.0.get(k).and_then(|&newer| {
                (ours < newer).then(|| Behind {
                    cluster: k.clone(),
                    ours,
                    newer,
                })
            })
        })
    }
}

/// The lock as held in every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanState {
    /// Lease namespace.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// Us.
    pub holder: String,
    /// Each member's Lease as last written, in cluster-name order.
    pub leases: Vec<(String, LockState)>,
}

impl SpanState {
    /// The tuple of `leaseTransitions`.
    pub fn fencing_token(&self) -> FencingToken {
        FencingToken(
            self.leases
                .iter()
                .map(|(c, s)| (c.clone(), i64::from(s.fencing_token)))
                .collect(),
        )
    }
    /// The latest acquisition: the lock as a whole is held since then.
    pub fn acquired_at(&self) -> Option<Timestamp> {
        self.leases.iter().filter_map(|(_, s)| s.acquired_at).max()
    }
    /// The oldest renewal.
    pub fn renewed_at(&self) -> Option<Timestamp> {
        self.leases.iter().filter_map(|(_, s)| s.renewed_at).min()
    }
    /// The first lapse: the lock as a whole ends there unless renewed.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.leases.iter().filter_map(|(_, s)| s.expires_at).min()
    }
    /// The lease duration (the same in every member).
    pub fn lease_duration_seconds(&self) -> i32 {
        self.leases
            .first()
            .map(|(_, s)| s.lease_duration_seconds)
            .unwrap_or(0)
    }
}

/// Errors of a lock over several clusters; each names the cluster it is about.
#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    /// Someone else holds a live Lease in one member; what we took meanwhile was released.
    #[error("lock {namespace}/{name}{} is held by {holder:?} since {} until {expires_at} (unless renewed); retry after {} minute(s), or wait with a timeout", in_cluster(cluster), acquired_at.map(|t| t.to_string()).unwrap_or_else(|| "an unknown time".into()), retry_after.as_secs().div_ceil(60).max(1))]
    Held {
        /// The cluster whose Lease blocked us.
        cluster: String,
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Its holder.
        holder: String,
        /// When they took it.
        acquired_at: Option<Timestamp>,
        /// When it lapses unless renewed (that cluster's clock).
        expires_at: Timestamp,
        /// Time until then on that server's clock, rounded up to whole minutes.
        retry_after: Duration,
    },
    /// The Lease in one member passed to someone else (or was released) since we took it.
    #[error("lock {namespace}/{name}{} is no longer ours: {}", in_cluster(cluster), holder.as_deref().map(|h| format!("now held by {h:?}")).unwrap_or_else(|| "now free".into()))]
    Lost {
        /// The cluster.
        cluster: String,
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Who holds it now.
        holder: Option<String>,
    },
    /// Our Lease in one member lapsed on that server's clock before we renewed it.
    #[error("lock {namespace}/{name}{} lapsed at {} by that API server's clock (it reads {server_now}) before it was renewed, so the lock was lost: someone else may have held it meanwhile", in_cluster(cluster), expired_at.map(|t| t.to_string()).unwrap_or_else(|| "an unknown time".into()))]
    Lapsed {
        /// The cluster.
        cluster: String,
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// When it lapsed.
        expired_at: Option<Timestamp>,
        /// The server's time when we looked.
        server_now: Timestamp,
    },
    /// Talking to one member failed (unreachable, forbidden, ...).
    #[error("cluster {cluster:?}: {source}")]
    Cluster {
        /// The cluster.
        cluster: String,
        /// What went wrong.
        #[source]
        source: ClusterError,
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
}

impl SpanError {
    fn cluster(cluster: &str, source: ClusterError) -> SpanError {
        SpanError::Cluster {
            cluster: cluster.to_string(),
            source,
        }
    }
    fn from_lock(cluster: &str, e: LockError) -> SpanError {
        match e {
            LockError::Held {
                namespace,
                name,
                holder,
                acquired_at,
                expires_at,
                retry_after,
            } => SpanError::Held {
                cluster: cluster.to_string(),
                namespace,
                name,
                holder,
                acquired_at,
                expires_at,
                retry_after,
            },
            LockError::Lost {
                namespace,
                name,
                holder,
            } => SpanError::Lost {
                cluster: cluster.to_string(),
                namespace,
                name,
                holder,
            },
            LockError::Invalid(m) => SpanError::Invalid(m),
            LockError::Cancelled { namespace, name } => SpanError::Cancelled { namespace, name },
            LockError::Cluster(c) => SpanError::cluster(cluster, c),
        }
    }
}

/// Members sorted by name; duplicates and an empty list are refused.
fn ordered(members: &[Member]) -> Result<Vec<&Member>, SpanError> {
    if members.is_empty() {
        return Err(SpanError::Invalid("no clusters to lock".into()));
    }
    let mut v: Vec<&Member> = members.iter().collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(SpanError::Invalid(format!(
            "cluster {:?} is listed twice",
            w[0].name
        )));
    }
    Ok(v)
}

fn find<'a>(members: &'a [Member], name: &str) -> Option<&'a Member> {
    members.iter().find(|m| m.name == name)
}

/// Gives up Leases taken in an attempt that could not complete; a failure only leaves a Lease
/// to lapse on its own, so it is logged, not raised.
async fn give_back(members: &[Member], taken: &[(String, LockState)]) {
    for (c, s) in taken.iter().rev() {
        let Some(m) = find(members, c) else { continue };
        if let Err(e) = m.cluster.release(s).await {
            tracing::warn!(cluster = %c, lease = %format!("{}/{}", s.namespace, s.name), error = %e, "could not release a Lease taken in an incomplete attempt; it lapses on its own");
        }
    }
}

/// Takes the lock in every member (see the module doc), waiting up to `req.wait_timeout` for
/// live holders. Renews where we already hold it.
pub async fn acquire_span(
    members: &[Member],
    req: &LockRequest,
    cancel: &CancellationToken,
) -> Result<SpanState, SpanError> {
    let order = ordered(members)?;
    check_request(req).map_err(|e| SpanError::from_lock("", e))?;
    let start = Instant::now();
    let mut last_progress = start;
    'attempt: loop {
        let mut taken: Vec<(String, LockState)> = Vec::new();
        for m in &order {
            match m.cluster.try_take(req).await {
                Ok(Attempt::Took(s)) => taken.push((m.name.clone(), s)),
                Ok(Attempt::Blocked(b)) => {
                    give_back(members, &taken).await;
                    let waited = start.elapsed();
                    let deadline = req.wait_timeout.unwrap_or(Duration::ZERO);
                    if waited >= deadline {
                        return Err(SpanError::Held {
                            cluster: m.name.clone(),
                            namespace: req.namespace.clone(),
                            name: req.name.clone(),
                            retry_after: retry_after(b.server_now, b.expires_at),
                            holder: b.holder,
                            acquired_at: b.acquired_at,
                            expires_at: b.expires_at,
                        });
                    }
                    if last_progress.elapsed() >= Duration::from_secs(5) {
                        last_progress = Instant::now();
                        tracing::info!(cluster = %m.name, holder = %b.holder, expires_at = %b.expires_at, waited_s = waited.as_secs(), "waiting for lock");
                    }
                    let nap = next_poll(
                        req.poll_interval,
                        rand::random::<f64>() * 2.0 - 1.0,
                        b.until_expiry(),
                        deadline - waited,
                    );
                    if !sleep_or_cancel(nap, cancel).await {
                        return Err(SpanError::Cancelled {
                            namespace: req.namespace.clone(),
                            name: req.name.clone(),
                        });
                    }
                    continue 'attempt;
                }
                Err(e) => {
                    give_back(members, &taken).await;
                    return Err(SpanError::cluster(&m.name, e));
                }
            }
        }
        return Ok(SpanState {
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            holder: req.holder.clone(),
            leases: taken,
        });
    }
}

/// Extends the hold in every member. Every member is tried; the first failure (in name order)
/// is returned, because a lock lost or unrenewable in one cluster is not held.
pub async fn renew_span(members: &[Member], state: &SpanState) -> Result<SpanState, SpanError> {
    if state.leases.is_empty() {
        return Err(SpanError::Invalid(
            "nothing to renew: the lock records no Lease (its fencing token is missing or unreadable)".into(),
        ));
    }
    let mut renewed = Vec::new();
    let mut first_error = None;
    for (c, s) in &state.leases {
        let Some(m) = find(members, c) else {
            first_error.get_or_insert(SpanError::Invalid(format!(
                "cluster {c:?} is no longer configured"
            )));
            continue;
        };
        match m.cluster.renew_live(s).await {
            Ok(n) => renewed.push((c.clone(), n)),
            Err(e) => {
                let e = match e {
                    RenewError::Lost { holder } => SpanError::Lost {
                        cluster: c.clone(),
                        namespace: s.namespace.clone(),
                        name: s.name.clone(),
                        holder,
                    },
                    RenewError::Lapsed {
                        expired_at,
                        server_now,
                    } => SpanError::Lapsed {
                        cluster: c.clone(),
                        namespace: s.namespace.clone(),
                        name: s.name.clone(),
                        expired_at,
                        server_now,
                    },
                    RenewError::Cluster(e) => SpanError::cluster(c, e),
                };
                tracing::warn!(cluster = %c, error = %e, "lock renewal failed");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(SpanState {
            leases: renewed,
            ..state.clone()
        }),
    }
}

/// What releasing did in one member.
pub type ReleaseReport = Vec<(String, Result<ReleaseOutcome, SpanError>)>;

/// Gives the lock up in every member where it is still ours; reports each member's outcome.
pub async fn release_span(members: &[Member], state: &SpanState) -> ReleaseReport {
    let mut out = Vec::new();
    for (c, s) in &state.leases {
        let r = match find(members, c) {
            None => Err(SpanError::Invalid(format!(
                "cluster {c:?} is no longer configured; its Lease lapses on its own"
            ))),
            Some(m) => m
                .cluster
                .release(s)
                .await
                .map_err(|e| SpanError::from_lock(c, e)),
        };
        out.push((c.clone(), r));
    }
    out
}

/// One member's Lease as read, with that server's time.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The cluster.
    pub cluster: String,
    /// The Lease, `None` when it does not exist.
    pub state: Option<LockState>,
    /// The server's time when read.
    pub time: ServerTime,
}

impl Reading {
    /// Held by someone and live on this server's clock (judged conservatively: until proven
    /// lapsed).
    pub fn live_holder(&self) -> Option<&str> {
        let s = self.state.as_ref()?;
        let h = s.holder.as_deref()?;
        (s.expires_at? > self.time.at_least).then_some(h)
    }
}

/// Reads every member's Lease, in name order.
pub async fn read_span(
    members: &[Member],
    namespace: &str,
    name: &str,
) -> Result<Vec<Reading>, SpanError> {
    let mut out = Vec::new();
    for m in ordered(members)? {
        let (state, time) = m
            .cluster
            .read_timed(namespace, name)
            .await
            .map_err(|e| SpanError::cluster(&m.name, e))?;
        out.push(Reading {
            cluster: m.name.clone(),
            state,
            time,
        });
    }
    Ok(out)
}

/// Who holds the whole lock: the holder live in every member, if one is.
pub fn span_holder(readings: &[Reading]) -> Option<&str> {
    let first = readings.first()?.live_holder()?;
    readings
        .iter()
        .all(|r| r.live_holder() == Some(first))
        .then_some(first)
}

/// Whether `state` (ours) is still ours and live in every member, by the readings.
pub fn still_ours(state: &SpanState, readings: &[Reading]) -> bool {
    state.leases.len() == readings.len()
        && state.leases.iter().all(|(c, mine)| {
            readings.iter().any(|r| {
                &r.cluster == c
                    && r.state.as_ref().is_some_and(|now| {
                        now.holder.as_deref() == Some(state.holder.as_str())
                            && now.fencing_token == mine.fencing_token
                            && now.expires_at.is_some_and(|x| x > r.time.at_most)
                    })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_print_and_parse() {
        let t: FencingToken = "us=3,eu=5,asia=2".parse().unwrap();
        assert_eq!(t.to_string(), "asia=2,eu=5,us=3");
        let one: FencingToken = "7".parse().unwrap();
        assert_eq!(one.to_string(), "7");
        assert_eq!(one.0.get(""), Some(&7));
        for bad in ["", "x", "eu=", "=3", "eu=1,eu=2", "eu=1,"] {
            assert!(bad.parse::<FencingToken>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn behind_names_the_first_cluster_that_moved_on() {
        let old: FencingToken = "asia=2,eu=5,us=3".parse().unwrap();
        let new: FencingToken = "asia=2,eu=6,us=4".parse().unwrap();
        assert_eq!(
            old.behind(&new),
            Some(Behind {
                cluster: "eu".into(),
                ours: 5,
                newer: 6
            })
        );
        assert_eq!(new.behind(&old), None);
        assert_eq!(old.behind(&old), None);
        // A token over other clusters is not comparable, so never "behind".
        let other: FencingToken = "mars=9".parse().unwrap();
        assert_eq!(old.behind(&other), None);
    }

    fn reading(cluster: &str, holder: Option<&str>, renewed: &str, now: &str) -> Reading {
        let renewed: Timestamp = renewed.parse().unwrap();
        let now: Timestamp = now.parse().unwrap();
        Reading {
            cluster: cluster.into(),
            state: Some(LockState {
                namespace: "ns".into(),
                name: "n".into(),
                holder: holder.map(String::from),
                acquired_at: Some(renewed),
                renewed_at: Some(renewed),
                expires_at: Some(crate::lock::lease_expiry(renewed, 60)),
                lease_duration_seconds: 60,
                fencing_token: 1,
                resource_version: "1".into(),
            }),
            time: ServerTime::from_date(now, Duration::from_millis(10)),
        }
    }

    #[test]
    fn held_only_when_held_and_live_everywhere() {
        let t0 = "2026-01-01T00:00:00Z";
        let live = "2026-01-01T00:00:30Z";
        let all = vec![
            reading("a", Some("x"), t0, live),
            reading("b", Some("x"), t0, live),
        ];
        assert_eq!(span_holder(&all), Some("x"));
        // Lapsed in b by b's own clock: not held, whatever a's clock says.
        let lapsed = vec![
            reading("a", Some("x"), t0, live),
            reading("b", Some("x"), t0, "2026-01-01T00:01:00Z"),
        ];
        assert_eq!(span_holder(&lapsed), None);
        let split = vec![
            reading("a", Some("x"), t0, live),
            reading("b", Some("y"), t0, live),
        ];
        assert_eq!(span_holder(&split), None);
        let state = SpanState {
            namespace: "ns".into(),
            name: "n".into(),
            holder: "x".into(),
            leases: all
                .iter()
                .map(|r| (r.cluster.clone(), r.state.clone().unwrap()))
                .collect(),
        };
        assert!(still_ours(&state, &all));
        assert!(!still_ours(&state, &lapsed));
        assert!(!still_ours(&state, &split));
    }
}

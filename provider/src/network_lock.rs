//! `testnet_network_lock`: the network-state lock (a Kubernetes Lease) as an ephemeral resource
//! (held for one Terraform run), a managed resource (held across runs until destroyed or expired)
//! and a data source (who holds it now).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cluster::{LockError, LockRequest, LockState, ReleaseOutcome, Timestamp};
use tfplug::schema::validators::{from_fn, int_range};
use tfplug::{
    Attribute, AttributePath, Block, Context, DataSource, Diagnostics, EphemeralResource, Opened,
    Private, Resource, Schema, Value,
};

use crate::config::Shared;
use crate::convert::{cluster_error, parse_duration};

pub struct ManagedLock(pub Shared);
pub struct LockData(pub Shared);
pub struct EphemeralLock(pub Shared);

const DEFAULT_LEASE_SECONDS: i64 = 300;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Managed,
    Ephemeral,
    Data,
}

fn schema(kind: Kind) -> Schema {
    let what = match kind {
        Kind::Managed => "Holds the network-state lock (a `coordination.k8s.io/v1` Lease) from create until destroy. If the lease expires (nobody applied within `lease_duration_seconds`) or someone else takes it, the next plan re-creates it. Any apply with changes renews it.",
        Kind::Ephemeral => "Holds the network-state lock (a `coordination.k8s.io/v1` Lease) for the duration of one Terraform run: acquired when opened, renewed at about half the lease duration, released when the run ends.",
        Kind::Data => "Reads the network-state lock (a `coordination.k8s.io/v1` Lease) without taking it.",
    };
    let mut ns = Attribute::string("namespace")
        .required()
        .describe("Kubernetes namespace of the Lease.");
    let mut name = Attribute::string("name")
        .required()
        .describe("Name of the Lease, usually the testnet's name. One holder at a time per name.");
    if kind == Kind::Managed {
        ns = ns.requires_replace();
        name = name.requires_replace();
    }
    let mut block = Block::new().describe(what).attr(ns).attr(name);
    if kind == Kind::Data {
        return Schema::new(
            block
                .attr(Attribute::string("holder").computed().describe("Current holder; null when the lock is free (never taken or released). An expired holder is still shown here; see `held`."))
                .attr(Attribute::bool("held").computed().describe("True when someone holds the lock and the lease has not expired."))
                .attr(Attribute::number("lease_duration_seconds").computed().describe("Lease duration the holder asked for."))
                .attr(Attribute::string("acquired_at").computed().describe("When the current holder took the lock (RFC 3339); null when free."))
                .attr(Attribute::string("renewed_at").computed().describe("Last renewal (RFC 3339); null when free."))
                .attr(Attribute::string("expires_at").computed().describe("When the lock lapses unless renewed (RFC 3339); null when free."))
                .attr(Attribute::number("fencing_token").computed().describe("`leaseTransitions`: grows with every change of holder. Pass it to writers of the network state so a stale holder's writes can be refused. 0 when the Lease does not exist.")),
        );
    }
    let mut holder = Attribute::string("holder")
        .optional()
        .computed()
        .describe("Who holds the lock, shown to anyone who finds it taken. Defaults to `tfc-run/<TFC_RUN_ID>` inside a Terraform Cloud run, else `user@host`.");
    if kind == Kind::Managed {
        holder = holder.use_state_for_unknown().requires_replace();
    }
    block = block
        .attr(holder)
        .attr(
            Attribute::number("lease_duration_seconds")
                .default(DEFAULT_LEASE_SECONDS)
                .validate(int_range(1, i64::from(i32::MAX)))
                .describe("How long the lock lives without renewal, in seconds (default 300). Must be greater than 0."),
        )
        .attr(
            Attribute::string("wait_timeout")
                .optional()
                .validate(from_fn("A duration such as `30s`, `2m` or `1h30m`.", |v: &Value| {
                    v.as_str().map(parse_duration).transpose().map(|_| ())
                }))
                .describe("How long to wait for a live holder to release or let the lock expire, e.g. `2m`. Unset: fail at once when the lock is held."),
        );
    let mut acquired = Attribute::string("acquired_at")
        .computed()
        .describe("When this holder took the lock (RFC 3339).");
    let mut token = Attribute::number("fencing_token").computed().describe("`leaseTransitions` when taken: grows with every change of holder. Pass it to writers of the network state so a stale holder's writes can be refused.");
    if kind == Kind::Managed {
        acquired = acquired.use_state_for_unknown();
        token = token.use_state_for_unknown();
    }
    Schema::new(
        block
            .attr(acquired)
            .attr(
                Attribute::string("renewed_at")
                    .computed()
                    .describe("Last renewal (RFC 3339)."),
            )
            .attr(
                Attribute::string("expires_at")
                    .computed()
                    .describe("When the lock lapses unless renewed (RFC 3339)."),
            )
            .attr(token),
    )
}

fn ts(t: Option<Timestamp>) -> Value {
    Value::opt_string(t.map(|t| t.to_string()))
}

/// The request a configuration asks for; `None` with a diagnostic when unusable.
fn request(
    config: &Value,
    holder_fallback: Option<&Value>,
    diags: &mut Diagnostics,
) -> Option<LockRequest> {
    let namespace = config.get("namespace").as_str().unwrap_or_default();
    let name = config.get("name").as_str().unwrap_or_default();
    let holder = config
        .get("holder")
        .as_str()
        .or_else(|| holder_fallback.and_then(|v| v.as_str()))
        .map(str::to_string)
        .unwrap_or_else(cluster::default_holder);
    let lease = config
        .get("lease_duration_seconds")
        .as_i64()
        .unwrap_or(DEFAULT_LEASE_SECONDS);
    let Ok(lease) = i32::try_from(lease) else {
        diags.attr_error(
            AttributePath::attr("lease_duration_seconds"),
            "Invalid value for lease_duration_seconds",
            format!(
                "{lease} is out of range. Allowed: a whole number from 1 to {}.",
                i32::MAX
            ),
        );
        return None;
    };
    let mut req = LockRequest::new(namespace, name, &holder, lease);
    if let Some(w) = config.get("wait_timeout").as_str() {
        match parse_duration(w) {
            Ok(d) => req.wait_timeout = Some(d),
            Err(e) => {
                diags.attr_error(
                    AttributePath::attr("wait_timeout"),
                    "Invalid value for wait_timeout",
                    e,
                );
                return None;
            }
        }
    }
    Some(req)
}

fn lock_error(e: &LockError, diags: &mut Diagnostics) {
    match e {
        LockError::Held { namespace, name, holder, acquired_at, expires_at, retry_after } => diags.attr_error(
            AttributePath::attr("name"),
            "Network lock held by someone else",
            format!(
                "The lock {namespace}/{name} is held by {holder:?} (acquired at {}, expires at {expires_at} unless renewed). Retry after {} minute(s), ask {holder:?} to release it, or set wait_timeout to wait for it.",
                acquired_at.map(|t| t.to_string()).unwrap_or_else(|| "an unknown time".into()),
                retry_after.as_secs().div_ceil(60).max(1),
            ),
        ),
        LockError::Lost { namespace, name, holder } => diags.error(
            "Network lock lost",
            format!(
                "The lock {namespace}/{name} is no longer ours: it is now {}. Whatever relied on holding it may have raced with the new holder.",
                holder.as_deref().map(|h| format!("held by {h:?}")).unwrap_or_else(|| "free".into())
            ),
        ),
        LockError::Invalid(m) => diags.error("Invalid network lock request", m.clone()),
        LockError::Cancelled { namespace, name } => diags.error("Interrupted", format!("Waiting for the lock {namespace}/{name} was cancelled.")),
        LockError::Cluster(c) => cluster_error(c, None, diags),
    }
}

/// Full state for the managed/ephemeral schema from what the server wrote.
fn held_value(config: &Value, s: &LockState) -> Value {
    Value::object([
        ("namespace", Value::string(&s.namespace)),
        ("name", Value::string(&s.name)),
        ("holder", Value::opt_string(s.holder.clone())),
        (
            "lease_duration_seconds",
            Value::int(i64::from(s.lease_duration_seconds)),
        ),
        ("wait_timeout", config.get("wait_timeout").clone()),
        ("acquired_at", ts(s.acquired_at)),
        ("renewed_at", ts(s.renewed_at)),
        ("expires_at", ts(s.expires_at)),
        ("fencing_token", Value::int(i64::from(s.fencing_token))),
    ])
}

/// The `LockState` renew/release need (they check namespace, name, holder, fencing token).
fn state_from(v: &Value) -> LockState {
    LockState {
        namespace: v.get("namespace").as_str().unwrap_or_default().to_string(),
        name: v.get("name").as_str().unwrap_or_default().to_string(),
        holder: v.get("holder").as_str().map(str::to_string),
        acquired_at: None,
        renewed_at: None,
        expires_at: None,
        lease_duration_seconds: v
            .get("lease_duration_seconds")
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .unwrap_or(0),
        fencing_token: v
            .get("fencing_token")
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .unwrap_or(0),
        resource_version: String::new(),
    }
}

async fn release(c: &cluster::Cluster, s: &LockState, diags: &mut Diagnostics) {
    match c.release(s).await {
        Ok(ReleaseOutcome::Cleared) | Ok(ReleaseOutcome::AlreadyGone) => {}
        Ok(ReleaseOutcome::NotOurs { holder }) => diags.warning(
            "Network lock was no longer ours",
            format!(
                "The lock {}/{} expired and is now {}; it was left alone.",
                s.namespace,
                s.name,
                holder
                    .map(|h| format!("held by {h:?}"))
                    .unwrap_or_else(|| "free".into())
            ),
        ),
        Err(e) => lock_error(&e, diags),
    }
}

#[async_trait]
impl Resource for ManagedLock {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        schema(Kind::Managed)
    }
    async fn create(
        &self,
        ctx: &Context,
        planned: &Value,
        config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let req = request(planned, None, diags)?;
        let c = self.0.cluster(diags).await?;
        match c.acquire(&req, &ctx.cancel).await {
            Ok(s) => Some(held_value(config, &s)),
            Err(e) => {
                lock_error(&e, diags);
                None
            }
        }
    }
    /// Keeps the lock in state only while it is still ours and live; otherwise it drops out of
    /// state so the next plan re-creates (re-acquires) it.
    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let c = self.0.cluster(diags).await?;
        let mine = state_from(state);
        let now = match c.read(&mine.namespace, &mine.name).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                cluster_error(&e, None, diags);
                return None;
            }
        };
        let imported = mine.holder.is_none();
        let live = now.expires_at.is_some_and(|x| x > Timestamp::now());
        let ours =
            imported || (now.holder == mine.holder && now.fencing_token == mine.fencing_token);
        if now.holder.is_none() || !live || !ours {
            return None;
        }
        let mut v = held_value(state, &now);
        if state.get("wait_timeout").is_null() {
            v.set("wait_timeout", Value::Null);
        }
        Some(v)
    }
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let c = self.0.cluster(diags).await?;
        let mine = state_from(prior);
        let mut s = match c.renew(&mine).await {
            Ok(s) => s,
            Err(e) => {
                lock_error(&e, diags);
                return None;
            }
        };
        // renew keeps the duration; re-acquiring as the current holder also writes the new one.
        if i64::from(s.lease_duration_seconds)
            != planned
                .get("lease_duration_seconds")
                .as_i64()
                .unwrap_or(DEFAULT_LEASE_SECONDS)
        {
            let req = request(planned, prior.get("holder").into(), diags)?;
            s = match c.acquire(&req, &ctx.cancel).await {
                Ok(s) => s,
                Err(e) => {
                    lock_error(&e, diags);
                    return None;
                }
            };
        }
        Some(held_value(config, &s))
    }
    async fn delete(
        &self,
        _ctx: &Context,
        prior: &Value,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let Some(c) = self.0.cluster(diags).await else {
            return;
        };
        release(&c, &state_from(prior), diags).await;
    }
    /// `namespace/name`: adopts the live holder; a free or expired lock drops out of state.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let Some((ns, name)) = id
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        else {
            diags.error(
                "Invalid import ID",
                format!("{id:?} is not of the form namespace/name."),
            );
            return None;
        };
        Some(Value::object([
            ("namespace", Value::string(ns)),
            ("name", Value::string(name)),
            ("holder", Value::Null),
            ("lease_duration_seconds", Value::int(DEFAULT_LEASE_SECONDS)),
            ("wait_timeout", Value::Null),
            ("acquired_at", Value::Null),
            ("renewed_at", Value::Null),
            ("expires_at", Value::Null),
            ("fencing_token", Value::int(0)),
        ]))
    }
}

#[async_trait]
impl DataSource for LockData {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        schema(Kind::Data)
    }
    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let c = self.0.cluster(diags).await?;
        let ns = config
            .get("namespace")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = config.get("name").as_str().unwrap_or_default().to_string();
        let s = match c.read(&ns, &name).await {
            Ok(s) => s,
            Err(e) => {
                cluster_error(&e, None, diags);
                return None;
            }
        };
        let held = s.as_ref().is_some_and(|s| {
            s.holder.is_some() && s.expires_at.is_some_and(|x| x > Timestamp::now())
        });
        Some(Value::object([
            ("namespace", Value::string(ns)),
            ("name", Value::string(name)),
            (
                "holder",
                Value::opt_string(s.as_ref().and_then(|s| s.holder.clone())),
            ),
            ("held", Value::Bool(held)),
            (
                "lease_duration_seconds",
                s.as_ref()
                    .map(|s| Value::int(i64::from(s.lease_duration_seconds)))
                    .unwrap_or(Value::Null),
            ),
            ("acquired_at", ts(s.as_ref().and_then(|s| s.acquired_at))),
            ("renewed_at", ts(s.as_ref().and_then(|s| s.renewed_at))),
            ("expires_at", ts(s.as_ref().and_then(|s| s.expires_at))),
            (
                "fencing_token",
                Value::int(s.as_ref().map(|s| i64::from(s.fencing_token)).unwrap_or(0)),
            ),
        ]))
    }
}

/// Renew at about half the lease, so one missed renewal still leaves time for another.
fn renew_at(lease_seconds: i32) -> SystemTime {
    SystemTime::now()
        + Duration::from_millis(u64::try_from(lease_seconds.max(1)).unwrap_or(1) * 500)
}

fn to_private(s: &LockState) -> Private {
    let mut p = Private::default();
    p.set("namespace", serde_json::json!(s.namespace));
    p.set("name", serde_json::json!(s.name));
    p.set("holder", serde_json::json!(s.holder));
    p.set(
        "lease_duration_seconds",
        serde_json::json!(s.lease_duration_seconds),
    );
    p.set("fencing_token", serde_json::json!(s.fencing_token));
    p
}

fn from_private(p: &Private) -> LockState {
    let s = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let n = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_i64())
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    LockState {
        namespace: s("namespace"),
        name: s("name"),
        holder: p.get("holder").and_then(|v| v.as_str()).map(str::to_string),
        acquired_at: None,
        renewed_at: None,
        expires_at: None,
        lease_duration_seconds: n("lease_duration_seconds"),
        fencing_token: n("fencing_token"),
        resource_version: String::new(),
    }
}

#[async_trait]
impl EphemeralResource for EphemeralLock {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        schema(Kind::Ephemeral)
    }
    async fn open(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Opened> {
        let req = request(config, None, diags)?;
        let c = self.0.cluster(diags).await?;
        match c.acquire(&req, &ctx.cancel).await {
            Ok(s) => Some(Opened {
                result: held_value(config, &s),
                private: to_private(&s),
                renew_at: Some(renew_at(s.lease_duration_seconds)),
            }),
            Err(e) => {
                lock_error(&e, diags);
                None
            }
        }
    }
    async fn renew(
        &self,
        _ctx: &Context,
        private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<SystemTime> {
        let c = self.0.cluster(diags).await?;
        match c.renew(&from_private(private)).await {
            Ok(s) => Some(renew_at(s.lease_duration_seconds)),
            Err(e) => {
                lock_error(&e, diags);
                None
            }
        }
    }
    async fn close(&self, _ctx: &Context, private: &Private, diags: &mut Diagnostics) {
        let Some(c) = self.0.cluster(diags).await else {
            return;
        };
        release(&c, &from_private(private), diags).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_terraform_timeouts() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("2").unwrap_err().contains("unit"));
        assert!(parse_duration("2 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }
}

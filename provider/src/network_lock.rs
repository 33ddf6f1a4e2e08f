//! `testnet_network_lock`: the network-state lock (a Kubernetes Lease) as an ephemeral resource
//! (held for one Terraform run), a managed resource (held across runs until destroyed or expired)
//! and a data source (who holds it now). With `clusters`, one Lease per named cluster, held only
//! when held in all of them (the arithmetic is `cluster::span`'s).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cluster::{FencingToken, LockRequest, LockState, Member, ReleaseOutcome, SpanState, Timestamp};
use tfplug::schema::validators::{from_fn, int_range};
use tfplug::{
    Attribute, AttributePath, Block, Context, DataSource, Diagnostics, EphemeralResource, Opened,
    PlanChange, Private, Resource, Schema, Value,
};

use crate::clusters::{check_planned, clusters_attr, members_of, names, span_error};
use crate::config::Shared;
use crate::convert::parse_duration;

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
        Kind::Managed => "Holds the network-state lock (a `coordination.k8s.io/v1` Lease, one per cluster with `clusters`) from create until destroy. If the lease expires (nobody applied within `lease_duration_seconds`) or someone else takes it in any cluster, the next plan re-creates it. Any apply with changes renews it.",
        Kind::Ephemeral => "Holds the network-state lock (a `coordination.k8s.io/v1` Lease, one per cluster with `clusters`) for the duration of one Terraform run: acquired when opened, renewed at about half the lease duration, released when the run ends.",
        Kind::Data => "Reads the network-state lock (a `coordination.k8s.io/v1` Lease, one per cluster with `clusters`) without taking it.",
    };
    let mut ns = Attribute::string("namespace")
        .required()
        .describe("Kubernetes namespace of the Lease (the same in every cluster).");
    let mut name = Attribute::string("name")
        .required()
        .describe("Name of the Lease, usually the testnet's name. One holder at a time per name.");
    let mut clusters = clusters_attr(match kind {
        Kind::Data => "whose Leases to read",
        _ => "to hold the lock in: the lock is held only when the Lease is held in every one of them, taken in sorted name order so that two contenders cannot deadlock",
    });
    if kind == Kind::Managed {
        ns = ns.requires_replace();
        name = name.requires_replace();
        clusters = clusters.requires_replace();
    }
    let mut block = Block::new()
        .describe(what)
        .attr(ns)
        .attr(name)
        .attr(clusters);
    if kind == Kind::Data {
        return Schema::new(
            block
                .attr(Attribute::string("holder").computed().describe("The holder named by the Lease in every cluster; null when the lock is free (never taken or released) anywhere or the clusters name different holders. An expired holder is still shown here; see `held`."))
                .attr(Attribute::bool("held").computed().describe("True when one holder holds a live Lease in every cluster (judged by each API server's clock)."))
                .attr(Attribute::number("lease_duration_seconds").computed().describe("Lease duration the holder asked for."))
                .attr(Attribute::string("acquired_at").computed().describe("When the current holder took the lock (RFC 3339; the latest of the clusters); null when free."))
                .attr(Attribute::string("renewed_at").computed().describe("Last renewal (RFC 3339; the oldest of the clusters); null when free."))
                .attr(Attribute::string("expires_at").computed().describe("When the lock lapses unless renewed (RFC 3339; the first of the clusters); null when free."))
                .attr(Attribute::string("fencing_token").computed().describe(FENCING_DOC)),
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
    let mut token = Attribute::string("fencing_token")
        .computed()
        .describe(FENCING_DOC);
    if kind == Kind::Managed {
        acquired = acquired.use_state_for_unknown();
        token = token.use_state_for_unknown();
    }
    let s = Schema::new(
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
                    .describe("When the lock lapses unless renewed (RFC 3339; with several clusters the first lapse)."),
            )
            .attr(token),
    );
    if kind == Kind::Managed {
        // 1: `fencing_token` became a string and `clusters` appeared.
        s.version(1)
    } else {
        s
    }
}

const FENCING_DOC: &str = "The Leases' `leaseTransitions`, which grow with every change of holder: `\"7\"` for the provider's own connection, `\"asia=2,eu=5,us=3\"` (sorted by cluster name) with `clusters`. Pass it to `testnet_network_state` (or any writer of the network state) so that a stale holder's writes are refused.";

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

/// Full state for the managed/ephemeral schema from what the servers wrote.
fn held_value(config: &Value, s: &SpanState) -> Value {
    Value::object([
        ("namespace", Value::string(&s.namespace)),
        ("name", Value::string(&s.name)),
        ("clusters", config.get("clusters").clone()),
        ("holder", Value::string(&s.holder)),
        (
            "lease_duration_seconds",
            Value::int(i64::from(s.lease_duration_seconds())),
        ),
        ("wait_timeout", config.get("wait_timeout").clone()),
        ("acquired_at", ts(s.acquired_at())),
        ("renewed_at", ts(s.renewed_at())),
        ("expires_at", ts(s.expires_at())),
        (
            "fencing_token",
            Value::string(s.fencing_token().to_string()),
        ),
    ])
}

/// The `SpanState` renew/release need (namespace, name, holder, each cluster's fencing token),
/// from the parts state or private data keep.
fn span_from(
    namespace: &str,
    name: &str,
    holder: Option<&str>,
    duration: i64,
    token: &str,
) -> SpanState {
    let token: FencingToken = token.parse().unwrap_or_default();
    SpanState {
        namespace: namespace.to_string(),
        name: name.to_string(),
        holder: holder.unwrap_or_default().to_string(),
        leases: token
            .0
            .into_iter()
            .map(|(c, t)| {
                (
                    c,
                    LockState {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        holder: holder.map(str::to_string),
                        acquired_at: None,
                        renewed_at: None,
                        expires_at: None,
                        lease_duration_seconds: i32::try_from(duration).unwrap_or(0),
                        fencing_token: i32::try_from(t).unwrap_or(i32::MAX),
                        resource_version: String::new(),
                    },
                )
            })
            .collect(),
    }
}

fn state_from(v: &Value) -> SpanState {
    span_from(
        v.get("namespace").as_str().unwrap_or_default(),
        v.get("name").as_str().unwrap_or_default(),
        v.get("holder").as_str(),
        v.get("lease_duration_seconds").as_i64().unwrap_or(0),
        v.get("fencing_token").as_str().unwrap_or_default(),
    )
}

async fn release(members: &[Member], s: &SpanState, diags: &mut Diagnostics) {
    for (c, outcome) in cluster::release_span(members, s).await {
        match outcome {
            Ok(ReleaseOutcome::Cleared) | Ok(ReleaseOutcome::AlreadyGone) => {}
            Ok(ReleaseOutcome::NotOurs { holder }) => diags.warning(
                "Network lock was no longer ours",
                format!(
                    "The lock {}/{}{} expired and is now {}; it was left alone.",
                    s.namespace,
                    s.name,
                    if c.is_empty() {
                        String::new()
                    } else {
                        format!(" in cluster {c:?}")
                    },
                    holder
                        .map(|h| format!("held by {h:?}"))
                        .unwrap_or_else(|| "free".into())
                ),
            ),
            Err(e) => span_error(&e, diags),
        }
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
    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, diags: &mut Diagnostics) {
        check_planned(&self.0, plan, diags);
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
        let members = members_of(&self.0, planned, diags).await?;
        match cluster::acquire_span(&members, &req, &ctx.cancel).await {
            Ok(s) => Some(held_value(config, &s)),
            Err(e) => {
                span_error(&e, diags);
                None
            }
        }
    }
    /// Keeps the lock in state only while it is still ours and live in every cluster; otherwise
    /// it drops out of state so the next plan re-creates (re-acquires) it.
    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let members = members_of(&self.0, state, diags).await?;
        let mine = state_from(state);
        let readings = match cluster::read_span(&members, &mine.namespace, &mine.name).await {
            Ok(r) => r,
            Err(e) => {
                span_error(&e, diags);
                return None;
            }
        };
        let current = |holder: &str| SpanState {
            holder: holder.to_string(),
            leases: readings
                .iter()
                .filter_map(|r| r.state.clone().map(|s| (r.cluster.clone(), s)))
                .collect(),
            ..mine.clone()
        };
        let now = if state.get("holder").is_null() {
            // Imported: adopt the live holder, if one holds every cluster.
            current(cluster::span_holder(&readings)?)
        } else if cluster::still_ours(&mine, &readings) {
            current(&mine.holder)
        } else {
            return None;
        };
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
        let members = members_of(&self.0, prior, diags).await?;
        let mine = state_from(prior);
        let mut s = match cluster::renew_span(&members, &mine).await {
            Ok(s) => s,
            Err(e) => {
                span_error(&e, diags);
                return None;
            }
        };
        // renew keeps the duration; re-acquiring as the current holder also writes the new one.
        if i64::from(s.lease_duration_seconds())
            != planned
                .get("lease_duration_seconds")
                .as_i64()
                .unwrap_or(DEFAULT_LEASE_SECONDS)
        {
            let req = request(planned, prior.get("holder").into(), diags)?;
            s = match cluster::acquire_span(&members, &req, &ctx.cancel).await {
                Ok(s) => s,
                Err(e) => {
                    span_error(&e, diags);
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
        let Some(members) = members_of(&self.0, prior, diags).await else {
            return;
        };
        release(&members, &state_from(prior), diags).await;
    }
    /// `namespace/name`: adopts the live holder of the provider's own connection; a free or
    /// expired lock drops out of state.
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
            ("clusters", Value::Null),
            ("holder", Value::Null),
            ("lease_duration_seconds", Value::int(DEFAULT_LEASE_SECONDS)),
            ("wait_timeout", Value::Null),
            ("acquired_at", Value::Null),
            ("renewed_at", Value::Null),
            ("expires_at", Value::Null),
            ("fencing_token", Value::string("0")),
        ]))
    }
    /// Version 0 had a numeric `fencing_token` and no `clusters`.
    async fn upgrade_state(
        &self,
        _ctx: &Context,
        version: i64,
        state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        if version != 0 {
            diags.error(
                "Unsupported state version",
                format!("testnet_network_lock cannot upgrade state from schema version {version}; this provider knows versions 0 and 1."),
            );
            return None;
        }
        let s =
            |k: &str| Value::opt_string(state.get(k).and_then(|v| v.as_str()).map(str::to_string));
        Some(Value::object([
            ("namespace", s("namespace")),
            ("name", s("name")),
            ("clusters", Value::Null),
            ("holder", s("holder")),
            (
                "lease_duration_seconds",
                Value::int(
                    state
                        .get("lease_duration_seconds")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(DEFAULT_LEASE_SECONDS),
                ),
            ),
            ("wait_timeout", s("wait_timeout")),
            ("acquired_at", s("acquired_at")),
            ("renewed_at", s("renewed_at")),
            ("expires_at", s("expires_at")),
            (
                "fencing_token",
                Value::string(
                    state
                        .get("fencing_token")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0)
                        .to_string(),
                ),
            ),
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
        let members = members_of(&self.0, config, diags).await?;
        let ns = config
            .get("namespace")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = config.get("name").as_str().unwrap_or_default().to_string();
        let readings = match cluster::read_span(&members, &ns, &name).await {
            Ok(r) => r,
            Err(e) => {
                span_error(&e, diags);
                return None;
            }
        };
        let states: Vec<&LockState> = readings.iter().filter_map(|r| r.state.as_ref()).collect();
        let complete = states.len() == readings.len();
        let holder = states
            .first()
            .and_then(|s| s.holder.clone())
            .filter(|h| complete && states.iter().all(|s| s.holder.as_deref() == Some(h)));
        let token = FencingToken(
            readings
                .iter()
                .map(|r| {
                    (
                        r.cluster.clone(),
                        r.state
                            .as_ref()
                            .map(|s| i64::from(s.fencing_token))
                            .unwrap_or(0),
                    )
                })
                .collect(),
        );
        let known = holder.is_some();
        Some(Value::object([
            ("namespace", Value::string(ns)),
            ("name", Value::string(name)),
            ("clusters", config.get("clusters").clone()),
            ("holder", Value::opt_string(holder)),
            (
                "held",
                Value::Bool(cluster::span_holder(&readings).is_some()),
            ),
            (
                "lease_duration_seconds",
                states
                    .first()
                    .map(|s| Value::int(i64::from(s.lease_duration_seconds)))
                    .unwrap_or(Value::Null),
            ),
            (
                "acquired_at",
                ts(states
                    .iter()
                    .filter_map(|s| s.acquired_at)
                    .max()
                    .filter(|_| known)),
            ),
            (
                "renewed_at",
                ts(states
                    .iter()
                    .filter_map(|s| s.renewed_at)
                    .min()
                    .filter(|_| known)),
            ),
            (
                "expires_at",
                ts(states
                    .iter()
                    .filter_map(|s| s.expires_at)
                    .min()
                    .filter(|_| known)),
            ),
            ("fencing_token", Value::string(token.to_string())),
        ]))
    }
}

/// Renew at about half the lease, so one missed renewal still leaves time for another.
fn renew_at(lease_seconds: i32) -> SystemTime {
    SystemTime::now()
        + Duration::from_millis(u64::try_from(lease_seconds.max(1)).unwrap_or(1) * 500)
}

fn to_private(config: &Value, s: &SpanState) -> Private {
    let mut p = Private::default();
    p.set("namespace", serde_json::json!(s.namespace));
    p.set("name", serde_json::json!(s.name));
    p.set("holder", serde_json::json!(s.holder));
    p.set(
        "lease_duration_seconds",
        serde_json::json!(s.lease_duration_seconds()),
    );
    p.set(
        "fencing_token",
        serde_json::json!(s.fencing_token().to_string()),
    );
    p.set("clusters", serde_json::json!(names(config)));
    p
}

fn from_private(p: &Private) -> (Option<Vec<String>>, SpanState) {
    let s = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let clusters = p.get("clusters").and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    });
    (
        clusters,
        span_from(
            &s("namespace"),
            &s("name"),
            p.get("holder").and_then(|v| v.as_str()),
            p.get("lease_duration_seconds")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            &s("fencing_token"),
        ),
    )
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
        let members = members_of(&self.0, config, diags).await?;
        match cluster::acquire_span(&members, &req, &ctx.cancel).await {
            Ok(s) => Some(Opened {
                result: held_value(config, &s),
                private: to_private(config, &s),
                renew_at: Some(renew_at(s.lease_duration_seconds())),
            }),
            Err(e) => {
                span_error(&e, diags);
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
        let (clusters, state) = from_private(private);
        let members = self
            .0
            .members(clusters.as_deref(), "clusters", diags)
            .await?;
        match cluster::renew_span(&members, &state).await {
            Ok(s) => Some(renew_at(s.lease_duration_seconds())),
            Err(e) => {
                span_error(&e, diags);
                None
            }
        }
    }
    async fn close(&self, _ctx: &Context, private: &Private, diags: &mut Diagnostics) {
        let (clusters, state) = from_private(private);
        let Some(members) = self.0.members(clusters.as_deref(), "clusters", diags).await else {
            return;
        };
        release(&members, &state, diags).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State written before `clusters` existed (schema 0, numeric token) still works: it is
    /// upgraded to the provider's own connection with the token as a string.
    #[tokio::test]
    async fn version_0_state_is_upgraded() {
        let lock = ManagedLock(Shared::default());
        assert_eq!(lock.schema().version, 1);
        let mut d = Diagnostics::new();
        let old = serde_json::json!({
            "namespace": "default", "name": "devnet", "holder": "alice",
            "lease_duration_seconds": 300, "wait_timeout": null,
            "acquired_at": "2026-01-01T00:00:00Z", "renewed_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-01T00:05:00Z", "fencing_token": 7
        });
        let v = lock
            .upgrade_state(&Context::default(), 0, old, &mut d)
            .await
            .expect("upgraded");
        assert!(d.is_empty());
        assert_eq!(v.get("fencing_token").as_str(), Some("7"));
        assert!(v.get("clusters").is_null());
        assert_eq!(v.get("holder").as_str(), Some("alice"));
        let s = state_from(&v);
        assert_eq!(s.leases.len(), 1);
        assert_eq!(
            (s.leases[0].0.as_str(), s.leases[0].1.fencing_token),
            ("", 7)
        );
        assert!(lock
            .upgrade_state(&Context::default(), 5, serde_json::json!({}), &mut d)
            .await
            .is_none());
    }

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

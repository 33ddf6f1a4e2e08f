//! `testnet_network_state`: the network's state document (crate `netstate`), a ConfigMap
//! `<name>-network-state` in each listed cluster, as a managed resource and a data source.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use cluster::FencingToken;
use netstate::{Document, StateError, WriteRequest, DEFAULT_HISTORY_LIMIT};
use serde_json::{Map, Value as Json};
use tfplug::schema::validators::{from_fn, int_range};
use tfplug::value::Number;
use tfplug::{
    Attribute, AttributePath, Block, Context, DataSource, Diagnostics, PlanChange, Private,
    Resource, Schema, Type, Value,
};

use crate::clusters::{check_planned, clusters_attr, members_of};
use crate::config::Shared;
use crate::convert::cluster_error;

pub struct NetworkState(pub Shared);
pub struct NetworkStateData(pub Shared);

/// How long a write re-reads copies that are only behind (another writer's write under way).
const SETTLE: Duration = Duration::from_secs(10);

fn history_type() -> Type {
    Type::list(Type::object([
        ("time", Type::String),
        ("holder", Type::String),
        ("tfc_run_id", Type::String),
        ("fencing_token", Type::String),
        ("changes", Type::list(Type::String)),
    ]))
}

fn computed_attrs(block: Block) -> Block {
    block
        .attr(Attribute::number("schema_version").computed().describe("Schema version of the stored document (older documents are migrated on write; a newer one is refused)."))
        .attr(Attribute::string("updated_at").computed().describe("When the document was last written (RFC 3339, the first cluster's API server clock)."))
        .attr(Attribute::string("updated_by").computed().describe("Who wrote it last: the lock holder name, `tfc-run/<TFC_RUN_ID>` in Terraform Cloud, else `user@host`."))
        .attr(Attribute::new("history", history_type()).computed().describe("Applies, oldest first: `time`, `holder`, `tfc_run_id` (Terraform Cloud), `fencing_token` the write carried, and `changes` (`+ name`, `- name`, `~ name.attr: old -> new`)."))
}

/// `components` must be a map (or object) of objects; secrets and oversize are refused.
fn check_components(v: &Value) -> Result<(), String> {
    let entries = match v {
        Value::Map(m) | Value::Object(m) => m,
        other => {
            return Err(format!(
                "components is {}, not a map of objects. Allowed: {{ name = {{ cluster = \"us\", namespace = \"n\", version = \"v1\" }} }}.",
                kind(other)
            ))
        }
    };
    for (k, c) in entries {
        if !c.is_wholly_known() {
            continue;
        }
        if !matches!(c, Value::Map(_) | Value::Object(_)) {
            return Err(format!(
                "components[{k:?}] is {}, not an object. Each component must be an object such as {{ cluster = \"us\", namespace = \"n\", version = \"v1\" }}.",
                kind(c)
            ));
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown(_) => "unknown",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) | Value::Tuple(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) | Value::Object(_) => "an object",
    }
}

fn schema() -> Schema {
    let block = Block::new()
        .describe("The network's state document: a ConfigMap `<name>-network-state` in each listed cluster holding a schema version, who updated it when, your `components` (which component runs in which cluster and namespace, at which version) and a capped history of applies. Writes are compare-and-swap on the ConfigMap's `resourceVersion`, carry the lock's `fencing_token` (a write whose token is older than the document's is refused, naming the newer holder), and first compare the copies in every cluster: if they differ the apply fails showing how and which cluster is behind, unless `repair_from` names the copy to trust. Component attributes named like secrets (`password`, `private_key`, `mnemonic`, ...) are refused: the document and its history are readable by anyone who may read ConfigMaps.")
        .attr(Attribute::string("name").required().requires_replace().validate(from_fn(
            "A DNS-1123 subdomain; `<name>-network-state` names the ConfigMap.",
            |v: &Value| match v.as_str() {
                Some(n) => cluster::validate_dns1123_subdomain(&netstate::config_map_name(n)).map_err(|e| format!("{n:?} gives the ConfigMap name {:?}, which is invalid: {e}", netstate::config_map_name(n))),
                None => Ok(()),
            },
        )).describe("The network's name; the ConfigMap is `<name>-network-state`."))
        .attr(Attribute::string("namespace").default("default").requires_replace().describe("Namespace of the ConfigMap in every cluster (default `default`)."))
        .attr(clusters_attr("holding a copy of the document").requires_replace())
        .attr(Attribute::new("components", Type::Dynamic).required().validate(from_fn("A map of objects.", check_components)).describe("The network's components: a map from component name to an object, e.g. `{ node-us = { cluster = \"us\", namespace = \"ghostnet\", version = \"v20.1\" } }`. Stored as JSON."))
        .attr(Attribute::string("fencing_token").optional().write_only().describe("The network lock's `fencing_token` (write-only, so an ephemeral lock's token may be passed). A write whose token is older than the document's in any cluster is refused; once a document carries a token, writes without one are refused."))
        .attr(Attribute::number("history_limit").default(DEFAULT_HISTORY_LIMIT as i64).validate(int_range(1, 10_000)).describe("History entries kept, oldest dropped first (default 100)."))
        .attr(Attribute::string("repair_from").optional().describe("When the copies differ between clusters: the cluster whose copy is right; it is written over the others (with this apply's change on top). Must be one of `clusters`."));
    Schema::new(computed_attrs(block))
}

/// A Terraform value as JSON (for the document).
fn to_json(v: &Value) -> Json {
    match v {
        Value::Null | Value::Unknown(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(Number::Int(i)) => Json::from(*i),
        Value::Number(Number::Float(f)) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Number(Number::Big(s)) => s
            .parse::<serde_json::Number>()
            .map(Json::Number)
            .unwrap_or_else(|_| Json::String(s.clone())),
        Value::String(s) => Json::String(s.clone()),
        Value::List(l) | Value::Set(l) | Value::Tuple(l) => {
            Json::Array(l.iter().map(to_json).collect())
        }
        Value::Map(m) | Value::Object(m) => {
            Json::Object(m.iter().map(|(k, x)| (k.clone(), to_json(x))).collect())
        }
    }
}

/// JSON from the document as a Terraform value (objects, tuples: the types HCL literals have).
fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::Number(Number::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Value::string(s),
        Json::Array(a) => Value::Tuple(a.iter().map(from_json).collect()),
        Json::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), from_json(x))).collect())
        }
    }
}

fn components_of(v: &Value) -> BTreeMap<String, Map<String, Json>> {
    v.entries()
        .into_iter()
        .flatten()
        .filter_map(|(k, c)| match to_json(c) {
            Json::Object(m) => Some((k.clone(), m)),
            _ => None,
        })
        .collect()
}

fn history_value(d: &Document) -> Value {
    Value::List(
        d.history
            .iter()
            .map(|e| {
                Value::object([
                    ("time", Value::string(&e.time)),
                    ("holder", Value::string(&e.holder)),
                    ("tfc_run_id", Value::opt_string(e.tfc_run_id.clone())),
                    ("fencing_token", Value::opt_string(e.fencing_token.clone())),
                    ("changes", Value::string_list(e.changes.iter())),
                ])
            })
            .collect(),
    )
}

fn set_computed(v: &mut Value, d: &Document) {
    v.set("schema_version", Value::int(i64::from(d.schema_version)));
    v.set("updated_at", Value::string(&d.updated_at));
    v.set("updated_by", Value::string(&d.updated_by));
    v.set("history", history_value(d));
}

/// The diagnostic for a document error, on the attribute that can fix it.
fn state_error(e: &StateError, diags: &mut Diagnostics) {
    let (attr, summary) = match e {
        StateError::Diverged { .. } => (
            "repair_from",
            "Network state copies differ between clusters",
        ),
        StateError::Fenced { .. } | StateError::Unfenced { .. } => {
            ("fencing_token", "Network state write refused by fencing")
        }
        StateError::Unreadable { .. } => ("name", "Network state document unreadable"),
        StateError::TooLarge { .. } => ("components", "Network state document too large"),
        StateError::Secrets { .. } => ("components", "Secrets in the network state"),
        StateError::BadRepair { .. } => ("repair_from", "Invalid value for repair_from"),
        StateError::Cluster { cluster, source } => {
            let mut inner = Diagnostics::new();
            cluster_error(source, None, &mut inner);
            for d in inner.iter() {
                let summary = if cluster.is_empty() {
                    d.summary.clone()
                } else {
                    format!("{} (cluster {cluster:?})", d.summary)
                };
                diags.error(summary, d.detail.clone());
            }
            return;
        }
    };
    diags.attr_error(AttributePath::attr(attr), summary, e.to_string());
}

fn request(planned: &Value, config: &Value, diags: &mut Diagnostics) -> Option<WriteRequest> {
    let fencing_token = match config.get("fencing_token").as_str() {
        None => None,
        Some(t) => match t.parse::<FencingToken>() {
            Ok(t) => Some(t),
            Err(e) => {
                diags.attr_error(
                    AttributePath::attr("fencing_token"),
                    "Invalid value for fencing_token",
                    e.to_string(),
                );
                return None;
            }
        },
    };
    let holder = cluster::default_holder();
    Some(WriteRequest {
        network: planned.get("name").as_str().unwrap_or_default().to_string(),
        namespace: planned
            .get("namespace")
            .as_str()
            .unwrap_or("default")
            .to_string(),
        components: components_of(planned.get("components")),
        fencing_token,
        holder,
        tfc_run_id: std::env::var("TFC_RUN_ID").ok().filter(|v| !v.is_empty()),
        history_limit: planned
            .get("history_limit")
            .as_i64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_HISTORY_LIMIT),
        repair_from: planned.get("repair_from").as_str().map(str::to_string),
        settle_timeout: SETTLE,
    })
}

impl NetworkState {
    async fn write(
        &self,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let req = request(planned, config, diags)?;
        let members = members_of(&self.0, planned, diags).await?;
        match netstate::write(&members, &req).await {
            Ok(doc) => {
                let mut v = planned.clone();
                set_computed(&mut v, &doc);
                v.set("fencing_token", Value::Null);
                Some(v)
            }
            Err(e) => {
                state_error(&e, diags);
                None
            }
        }
    }
}

#[async_trait]
impl Resource for NetworkState {
    fn type_name(&self) -> &'static str {
        "testnet_network_state"
    }
    fn schema(&self) -> Schema {
        schema()
    }
    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let repair = config.get("repair_from");
        let clusters = config.get("clusters");
        if let Some(r) = repair.as_str() {
            if clusters.is_null() {
                diags.attr_error(AttributePath::attr("repair_from"), "Invalid value for repair_from", format!("repair_from = {r:?} needs `clusters`: with only the provider's own cluster there is no other copy to repair."));
            } else if clusters.is_wholly_known() && !clusters.to_string_vec().iter().any(|c| c == r)
            {
                diags.attr_error(
                    AttributePath::attr("repair_from"),
                    "Invalid value for repair_from",
                    format!(
                        "{r:?} is not in clusters ({}). Allowed: one of the clusters listed.",
                        clusters
                            .to_string_vec()
                            .iter()
                            .map(|c| format!("{c:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        let comps = config.get("components");
        if comps.is_wholly_known() && !comps.is_null() && check_components(comps).is_ok() {
            let name = config.get("name").as_str().unwrap_or("network");
            if let Err(e) = netstate::check_components(name, &components_of(comps)) {
                state_error(&e, diags);
            }
        }
    }
    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, diags: &mut Diagnostics) {
        check_planned(&self.0, plan, diags);
    }
    async fn create(
        &self,
        _ctx: &Context,
        planned: &Value,
        config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        self.write(planned, config, diags).await
    }
    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let members = members_of(&self.0, state, diags).await?;
        let network = state.get("name").as_str().unwrap_or_default();
        let namespace = state.get("namespace").as_str().unwrap_or("default");
        let copies = match netstate::read_all(&members, namespace, network).await {
            Ok(c) => c,
            Err(e) => {
                state_error(&e, diags);
                return None;
            }
        };
        let chosen = match netstate::compare(&copies) {
            None => copies.first().and_then(|(_, d)| d.clone()),
            Some(div) => {
                diags.warning(
                    "Network state copies differ between clusters",
                    format!("{div}\nThe next apply fails until they agree again, or set repair_from to the cluster whose copy is right. Shown here: the copy of {:?}.", div.ahead),
                );
                copies
                    .iter()
                    .find(|(c, _)| *c == div.ahead)
                    .and_then(|(_, d)| d.clone())
            }
        };
        let doc = chosen?;
        let mut v = state.clone();
        let comps = Value::Object(
            doc.components
                .iter()
                .map(|(k, m)| (k.clone(), from_json(&Json::Object(m.clone()))))
                .collect(),
        );
        // Keep the configuration's own value when it means the same, so its type is kept.
        if to_json(state.get("components")) != to_json(&comps) {
            v.set("components", comps);
        }
        set_computed(&mut v, &doc);
        Some(v)
    }
    async fn update(
        &self,
        _ctx: &Context,
        _prior: &Value,
        planned: &Value,
        config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        self.write(planned, config, diags).await
    }
    /// `namespace/name`, or `namespace/name@us,eu,asia` for a document kept in those clusters.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let (path, clusters) = match id.split_once('@') {
            Some((p, c)) => (
                p,
                Some(
                    c.split(',')
                        .map(|x| x.trim().to_string())
                        .collect::<Vec<_>>(),
                ),
            ),
            None => (id, None),
        };
        let parsed = path
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'));
        let (Some((ns, name)), true) = (
            parsed,
            clusters
                .as_ref()
                .is_none_or(|c| c.iter().all(|x| !x.is_empty())),
        ) else {
            diags.error(
                "Invalid import ID",
                format!("{id:?} is not of the form namespace/name or namespace/name@cluster1,cluster2 (names of the provider's cluster blocks)."),
            );
            return None;
        };
        if let Some(c) = &clusters {
            if !self.0.check_cluster_names(c, "clusters", diags) {
                return None;
            }
        }
        Some(Value::object([
            ("name", Value::string(name)),
            ("namespace", Value::string(ns)),
            (
                "clusters",
                clusters
                    .map(|c| Value::string_list(c))
                    .unwrap_or(Value::Null),
            ),
            ("components", Value::Null),
            ("fencing_token", Value::Null),
            ("history_limit", Value::int(DEFAULT_HISTORY_LIMIT as i64)),
            ("repair_from", Value::Null),
            ("schema_version", Value::Null),
            ("updated_at", Value::Null),
            ("updated_by", Value::Null),
            ("history", Value::Null),
        ]))
    }
    /// Deletes the document in every cluster: the network's state goes with the resource.
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
        let network = prior.get("name").as_str().unwrap_or_default();
        let namespace = prior.get("namespace").as_str().unwrap_or("default");
        if let Err(e) = netstate::delete(&members, namespace, network).await {
            state_error(&e, diags);
        }
    }
}

#[async_trait]
impl DataSource for NetworkStateData {
    fn type_name(&self) -> &'static str {
        "testnet_network_state"
    }
    fn schema(&self) -> Schema {
        Schema::new(computed_attrs(
            Block::new()
                .describe("Reads the network's state document (and its history) from one cluster.")
                .attr(Attribute::string("name").required().describe("The network's name; the ConfigMap is `<name>-network-state`."))
                .attr(Attribute::string("namespace").optional().describe("Namespace of the ConfigMap (default `default`)."))
                .attr(Attribute::string("cluster").optional().describe("The name of a provider `cluster` block to read from; unset: the provider's own connection."))
                .attr(Attribute::new("components", Type::Dynamic).computed().describe("The components, as stored."))
                .attr(Attribute::string("fencing_token").computed().describe("The fencing token of the last write; null when written without one.")),
        ))
    }
    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let cluster = config.get("cluster").as_str().map(|c| vec![c.to_string()]);
        let members = self.0.members(cluster.as_deref(), "cluster", diags).await?;
        let network = config.get("name").as_str().unwrap_or_default();
        let namespace = config.get("namespace").as_str().unwrap_or("default");
        let doc = match netstate::read(&members[0], namespace, network).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                diags.attr_error(
                    AttributePath::attr("name"),
                    "Network state not found",
                    format!(
                        "There is no ConfigMap {}/{} holding the state of network {network:?}{}.",
                        namespace,
                        netstate::config_map_name(network),
                        cluster
                            .map(|c| format!(" in cluster {:?}", c[0]))
                            .unwrap_or_default()
                    ),
                );
                return None;
            }
            Err(e) => {
                state_error(&e, diags);
                return None;
            }
        };
        let mut v = config.clone();
        v.set("namespace", Value::string(namespace));
        v.set(
            "components",
            Value::Object(
                doc.components
                    .iter()
                    .map(|(k, m)| (k.clone(), from_json(&Json::Object(m.clone()))))
                    .collect(),
            ),
        );
        v.set(
            "fencing_token",
            Value::opt_string(doc.fencing_token.clone()),
        );
        set_computed(&mut v, &doc);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_must_be_objects() {
        let ok = Value::object([("a", Value::object([("version", Value::string("v1"))]))]);
        assert!(check_components(&ok).is_ok());
        let bad = Value::object([("a", Value::string("v1"))]);
        let e = check_components(&bad).unwrap_err();
        assert!(
            e.contains("components[\"a\"] is a string, not an object"),
            "{e}"
        );
        assert!(check_components(&Value::string("x"))
            .unwrap_err()
            .contains("not a map of objects"));
    }

    #[test]
    fn json_round_trip() {
        let v = Value::object([
            ("n", Value::int(3)),
            ("s", Value::string("x")),
            ("l", Value::Tuple(vec![Value::Bool(true)])),
        ]);
        assert_eq!(from_json(&to_json(&v)), v);
    }
}

//! The document itself: what a network's state holds, how it is stored in a ConfigMap, and what
//! one apply changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The schema version this code writes. Older documents are migrated (see `migrate`); newer
/// ones are refused.
pub const CURRENT_SCHEMA: u32 = 3;

/// The ConfigMap key holding the document (JSON).
pub const DATA_KEY: &str = "network-state.json";

/// The ConfigMap holding the state of `network`.
pub fn config_map_name(network: &str) -> String {
    format!("{network}-network-state")
}

/// Default number of history entries kept.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;

/// One apply, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (RFC 3339, the first cluster's API server clock).
    pub time: String,
    /// The lock holder (or `user@host`) who applied.
    pub holder: String,
    /// `TFC_RUN_ID` when the apply ran in Terraform Cloud.
    #[serde(default)]
    pub tfc_run_id: Option<String>,
    /// The fencing token the write carried (`None` when written without one).
    #[serde(default)]
    pub fencing_token: Option<String>,
    /// What changed, one line per change (`+ node-us`, `~ node-eu.version: "v1" -> "v2"`).
    pub changes: Vec<String>,
}

/// The network's state (schema [`CURRENT_SCHEMA`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Always [`CURRENT_SCHEMA`] once read.
    pub schema_version: u32,
    /// The network's name.
    pub network: String,
    /// Last write (RFC 3339).
    pub updated_at: String,
    /// Who wrote last.
    pub updated_by: String,
    /// The fencing token of the last write; writes with an older token are refused.
    #[serde(default)]
    pub fencing_token: Option<String>,
    /// The user's components: name to object (cluster, namespace, version, ...).
    pub components: BTreeMap<String, Map<String, Value>>,
    /// Applies, oldest first, capped.
    pub history: Vec<HistoryEntry>,
}

impl Document {
    /// A document for `network` with nothing in it yet.
    pub fn empty(network: &str) -> Document {
        Document {
            schema_version: CURRENT_SCHEMA,
            network: network.to_string(),
            updated_at: String::new(),
            updated_by: String::new(),
            fencing_token: None,
            components: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    /// The JSON stored in the ConfigMap (stable key order, so equal documents are equal text).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Attribute names that hold secrets; the document is readable by anyone who may read ConfigMaps,
/// so such values are refused rather than stored.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "private_key",
    "privkey",
    "secret_key",
    "access_key",
    "api_key",
    "mnemonic",
    "seed_phrase",
    "client_key",
    "bearer_token",
    "auth_token",
];

/// Paths (`node-us.admin_password`) of component attributes whose names say they hold secrets.
pub fn secret_paths(components: &BTreeMap<String, Map<String, Value>>) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                let path = format!("{prefix}.{k}");
                let lower = k.to_ascii_lowercase();
                if SECRET_NAMES
                    .iter()
                    .any(|s| lower == *s || lower.ends_with(&format!("_{s}")))
                {
                    out.push(path.clone());
                }
                walk(&path, x, out);
            }
        }
    }
    let mut out = Vec::new();
    for (name, obj) in components {
        walk(name, &Value::Object(obj.clone()), &mut out);
    }
    out
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(77)])
    } else {
        s
    }
}

/// What changed from `old` to `new` components: `+ name`, `- name`, `~ name.attr: old -> new`.
pub fn changes(
    old: &BTreeMap<String, Map<String, Value>>,
    new: &BTreeMap<String, Map<String, Value>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, obj) in new {
        match old.get(name) {
            None => out.push(format!("+ {name}")),
            Some(prev) if prev != obj => {
                let keys: std::collections::BTreeSet<&String> =
                    prev.keys().chain(obj.keys()).collect();
                for k in keys {
                    match (prev.get(k), obj.get(k)) {
                        (Some(a), Some(b)) if a != b => {
                            out.push(format!("~ {name}.{k}: {} -> {}", show(a), show(b)))
                        }
                        (None, Some(b)) => {
                            out.push(format!("~ {name}.{k}: (unset) -> {}", show(b)))
                        }
                        (Some(a), None) => {
                            out.push(format!("~ {name}.{k}: {} -> (unset)", show(a)))
                        }
                        _ => {}
                    }
                }
            }
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(format!("- {name}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn comps(v: Value) -> BTreeMap<String, Map<String, Value>> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn changes_name_what_moved() {
        let old = comps(json!({"a": {"version": "v1", "cluster": "us"}, "b": {"version": "v1"}}));
        let new = comps(json!({"a": {"version": "v2", "cluster": "us"}, "c": {"version": "v1"}}));
        assert_eq!(
            changes(&old, &new),
            vec!["~ a.version: \"v1\" -> \"v2\"", "+ c", "- b"]
        );
        assert!(changes(&new, &new).is_empty());
    }

    #[test]
    fn secret_like_names_are_found() {
        let c = comps(json!({
            "node": {"version": "v1", "native_token": "tez", "admin_password": "x",
                     "keys": {"validator_private_key": "y"}}
        }));
        assert_eq!(
            secret_paths(&c),
            vec!["node.admin_password", "node.keys.validator_private_key"]
        );
    }

    #[test]
    fn names_and_round_trip() {
        assert_eq!(config_map_name("ghostnet"), "ghostnet-network-state");
        let mut d = Document::empty("ghostnet");
        d.components = comps(json!({"a": {"version": "v1"}}));
        let back: Document = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(back, d);
    }
}

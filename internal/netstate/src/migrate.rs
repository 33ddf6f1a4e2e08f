//! Reading a stored document of any known schema: a chain of one-step migrations up to
//! [`CURRENT_SCHEMA`], each a pure function with its own test. A document newer than this code
//! is refused, never rewritten: writing it back in our shape would drop what we do not know.
//!
//! The schemas:
//! - 1: `{"version": 1, "network", "components": {name: "version"}, "history": [{"time", "user",
//!   "command"}]}`: components were bare version strings and history a command log.
//! - 2: `{"schema_version": 2, "network", "updated_at", "updated_by", "components": {name:
//!   {...}}, "history": [{"time", "holder", "changes": [...]}]}`: components became objects.
//! - 3: adds the fencing token (document and entries) and the Terraform Cloud run id of entries.

use serde_json::{json, Map, Value};

use crate::document::{Document, CURRENT_SCHEMA};

/// Why a stored document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// Written by a newer provider.
    #[error("the stored document has schema version {found}, newer than the {known} this provider knows; upgrade the provider instead of overwriting it (nothing was written)")]
    Newer {
        /// The stored version.
        found: u64,
        /// [`CURRENT_SCHEMA`].
        known: u32,
    },
    /// Not a document of any schema.
    #[error("the stored document is unreadable: {0}")]
    Malformed(String),
}

/// The schema version of a stored document (`schema_version`, or `version` in schema 1).
pub fn version_of(v: &Value) -> Option<u64> {
    v.get("schema_version")
        .or_else(|| v.get("version"))
        .and_then(Value::as_u64)
}

/// Schema 1 -> 2: components become `{"version": ...}` objects; history entries keep their time,
/// the user becomes the holder and the command the one change.
pub fn v1_to_v2(v: Value) -> Result<Value, MigrateError> {
    let bad = |what: &str| MigrateError::Malformed(format!("schema 1: {what}"));
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    let mut components = Map::new();
    for (name, c) in obj
        .get("components")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
    {
        let version = c
            .as_str()
            .ok_or_else(|| bad(&format!("component {name:?} is not a version string")))?;
        components.insert(name, json!({ "version": version }));
    }
    let history: Vec<Value> = obj
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            json!({
                "time": h.get("time").and_then(Value::as_str).unwrap_or_default(),
                "holder": h.get("user").and_then(Value::as_str).unwrap_or("unknown"),
                "changes": [h.get("command").and_then(Value::as_str).unwrap_or_default()],
            })
        })
        .collect();
    let last = history.last().cloned().unwrap_or(Value::Null);
    Ok(json!({
        "schema_version": 2,
        "network": obj.get("network").and_then(Value::as_str).unwrap_or_default(),
        "updated_at": last.get("time").and_then(Value::as_str).unwrap_or_default(),
        "updated_by": last.get("holder").and_then(Value::as_str).unwrap_or_default(),
        "components": components,
        "history": history,
    }))
}

/// Schema 2 -> 3: no fencing token yet (any lock may write next), no run ids.
pub fn v2_to_v3(v: Value) -> Result<Value, MigrateError> {
    let mut obj = v
        .as_object()
        .cloned()
        .ok_or_else(|| MigrateError::Malformed("schema 2: not an object".into()))?;
    obj.insert("schema_version".into(), json!(3));
    obj.insert("fencing_token".into(), Value::Null);
    if let Some(Value::Array(entries)) = obj.get_mut("history") {
        for e in entries.iter_mut() {
            if let Value::Object(m) = e {
                m.insert("tfc_run_id".into(), Value::Null);
                m.insert("fencing_token".into(), Value::Null);
            }
        }
    }
    Ok(Value::Object(obj))
}

/// Reads stored JSON of any known schema into the current one; also says which version it was.
pub fn read_document(text: &str) -> Result<(Document, u64), MigrateError> {
    let mut v: Value =
        serde_json::from_str(text).map_err(|e| MigrateError::Malformed(e.to_string()))?;
    let found =
        version_of(&v).ok_or_else(|| MigrateError::Malformed("no schema_version".into()))?;
    if found > u64::from(CURRENT_SCHEMA) {
        return Err(MigrateError::Newer {
            found,
            known: CURRENT_SCHEMA,
        });
    }
    let mut at = found;
    while at < u64::from(CURRENT_SCHEMA) {
        v = match at {
            1 => v1_to_v2(v)?,
            2 => v2_to_v3(v)?,
            other => {
                return Err(MigrateError::Malformed(format!(
                    "schema version {other} is not one this provider ever wrote"
                )))
            }
        };
        at += 1;
    }
    let doc: Document = serde_json::from_value(v)
        .map_err(|e| MigrateError::Malformed(format!("schema {CURRENT_SCHEMA}: {e}")))?;
    Ok((doc, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Value {
        json!({
            "version": 1,
            "network": "ghostnet",
            "components": {"node-us": "v18.0", "baker-eu": "v18.1"},
            "history": [
                {"time": "2025-01-01T00:00:00Z", "user": "ann", "command": "deploy node-us"},
                {"time": "2025-01-02T00:00:00Z", "user": "bob", "command": "deploy baker-eu"}
            ]
        })
    }

    #[test]
    fn step_1_to_2_makes_components_objects_and_keeps_history() {
        let v = v1_to_v2(v1()).unwrap();
        assert_eq!(v["schema_version"], 2);
        assert_eq!(v["components"]["node-us"], json!({"version": "v18.0"}));
        assert_eq!(v["history"][1]["holder"], "bob");
        assert_eq!(v["history"][1]["changes"], json!(["deploy baker-eu"]));
        assert_eq!(v["updated_by"], "bob");
        assert_eq!(v["updated_at"], "2025-01-02T00:00:00Z");
        let mut broken = v1();
        broken["components"]["x"] = json!({"version": "v1"});
        assert!(v1_to_v2(broken).is_err());
    }

    #[test]
    fn step_2_to_3_adds_fencing_and_run_ids() {
        let v = v2_to_v3(v1_to_v2(v1()).unwrap()).unwrap();
        assert_eq!(v["schema_version"], 3);
        assert_eq!(v["fencing_token"], Value::Null);
        assert_eq!(v["history"][0]["tfc_run_id"], Value::Null);
        assert_eq!(v["history"][0]["fencing_token"], Value::Null);
        assert_eq!(v["components"]["baker-eu"]["version"], "v18.1");
    }

    #[test]
    fn whole_chain_and_refusals() {
        let (doc, from) = read_document(&v1().to_string()).unwrap();
        assert_eq!(from, 1);
        assert_eq!(doc.schema_version, CURRENT_SCHEMA);
        assert_eq!(doc.history.len(), 2);
        let (same, from) = read_document(&doc.to_json()).unwrap();
        assert_eq!((same, from), (doc, 3));
        let newer = json!({"schema_version": 4, "network": "x"}).to_string();
        assert_eq!(
            read_document(&newer).unwrap_err(),
            MigrateError::Newer {
                found: 4,
                known: CURRENT_SCHEMA
            }
        );
        assert!(matches!(
            read_document("{not json"),
            Err(MigrateError::Malformed(_))
        ));
        assert!(matches!(
            read_document("{\"network\": \"x\"}"),
            Err(MigrateError::Malformed(_))
        ));
    }
}

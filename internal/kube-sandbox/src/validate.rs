//! Per-kind defaults, validation and admission, mirroring kube-apiserver v1.20's registry
//! strategies (`pkg/apis/*/validation`) and the admission plugins enabled by default.

use serde_json::{json, Map, Value};

use crate::kinds::{Kind, CONFIG_MAPS, LEASES, NAMESPACES, PODS, PVCS, PVS, STORAGE_CLASSES};

/// `core.MaxSecretSize`: the most bytes a ConfigMap's `data` plus `binaryData` may hold.
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;
use crate::quantity;
use crate::status::{ApiError, FieldError};
use crate::store::{meta_str, Store};
use crate::util;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Added to every new PersistentVolume by the StorageObjectInUseProtection admission plugin; the
/// pv-protection controller removes it once the volume is no longer Bound.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let mut fins = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !fins.iter().any(|f| f == finalizer) {
        fins.push(json!(finalizer));
        obj["metadata"]["finalizers"] = Value::Array(fins);
    }
}
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce"];
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is(kind: &Kind, other: &Kind) -> bool {
    std::ptr::eq(kind, other)
}

/// Server-side defaults applied on create (before validation), as the real defaulters and
/// mutating admission (DefaultStorageClass, pvc-protection) do.
pub fn default_on_create(kind: &Kind, obj: &mut Value, store: &Store) {
    if kind.has_status {
        obj["status"] = json!({});
    }
    if is(kind, &NAMESPACES) {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    } else if is(kind, &STORAGE_CLASSES) {
        if obj.get("reclaimPolicy").is_none_or(Value::is_null) {
            obj["reclaimPolicy"] = json!("Delete");
        }
        if obj.get("volumeBindingMode").is_none_or(Value::is_null) {
            obj["volumeBindingMode"] = json!("Immediate");
        }
    } else if is(kind, &PVCS) {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        if obj["spec"].get("volumeMode").is_none_or(Value::is_null) {
            obj["spec"]["volumeMode"] = json!("Filesystem");
        }
        if obj["spec"]
            .get("storageClassName")
            .is_none_or(Value::is_null)
        {
            let (classes, _) = store.list(&STORAGE_CLASSES, None);
            if let Some(c) = classes.iter().find(|c| {
                c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION].as_str() == Some("true")
            }) {
                obj["spec"]["storageClassName"] = json!(meta_str(c, "name"));
            }
        }
        let fins = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !fins.iter().any(|f| f == PVC_PROTECTION) {
            let mut fins = fins;
            fins.push(json!(PVC_PROTECTION));
            obj["metadata"]["finalizers"] = Value::Array(fins);
        }
        obj["status"] = json!({"phase": "Pending"});
    } else if is(kind, &PVS) {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        for (k, v) in [
            ("persistentVolumeReclaimPolicy", json!("Retain")),
            ("volumeMode", json!("Filesystem")),
        ] {
            if obj["spec"].get(k).is_none_or(Value::is_null) {
                obj["spec"][k] = v;
            }
        }
        add_finalizer(obj, PV_PROTECTION);
        obj["status"] = json!({"phase": "Pending"});
    } else if is(kind, &PODS) {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        let spec = &mut obj["spec"];
        for (k, v) in [
            ("restartPolicy", json!("Always")),
            ("dnsPolicy", json!("ClusterFirst")),
            ("schedulerName", json!("default-scheduler")),
            ("terminationGracePeriodSeconds", json!(30)),
        ] {
            if spec.get(k).is_none_or(Value::is_null) {
                spec[k] = v;
            }
        }
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
}

/// Decoding failures the real server reports as 400 BadRequest before validation runs.
pub fn check_decodable(kind: &Kind, obj: &Value) -> Result<(), ApiError> {
    let fail = |detail: String| {
        Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {}",
            kind.kind, kind.version, kind.kind, detail
        )))
    };
    if !obj.is_object() {
        return fail("the body is not a JSON object".into());
    }
    if let Some(m) = obj.get("metadata") {
        if !m.is_object() && !m.is_null() {
            return fail("metadata must be an object".into());
        }
        for f in ["labels", "annotations"] {
            match m.get(f) {
                None | Some(Value::Null) => {}
                Some(Value::Object(o)) if o.values().all(Value::is_string) => {}
                Some(_) => return fail(format!("metadata.{f} must be a map of strings")),
            }
        }
    }
    if is(kind, &PVCS) {
        for section in ["requests", "limits"] {
            if let Some(Value::Object(m)) = obj.pointer(&format!("/spec/resources/{section}")) {
                for (res, q) in m {
                    let text = q
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| q.to_string());
                    if let Err(e) = quantity::parse(&text) {
                        return fail(format!("spec.resources.{section}.{res}: {text:?}: {e}"));
                    }
                }
            }
        }
    }
    if is(kind, &CONFIG_MAPS) {
        for section in ["data", "binaryData"] {
            match obj.get(section) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
                Some(_) => return fail(format!("{section} must be a map of strings")),
            }
        }
    }
    if is(kind, &LEASES) {
        for f in ["leaseDurationSeconds", "leaseTransitions"] {
            match obj.pointer(&format!("/spec/{f}")) {
                None | Some(Value::Null) => {}
                Some(v) if v.as_i64().is_some() => {}
                Some(v) => return fail(format!("spec.{f}: cannot unmarshal {v} into an int32")),
            }
        }
    }
    Ok(())
}

fn validate_meta(kind: &Kind, obj: &Value, errs: &mut Vec<FieldError>) {
    let name = meta_str(obj, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        let problems = if is(kind, &NAMESPACES) {
            util::dns1123_label_errors(name)
        } else {
            util::dns1123_subdomain_errors(name)
        };
        for p in problems {
            errs.push(FieldError::invalid("metadata.name", &json!(name), &p));
        }
    }
    if let Some(Value::Object(labels)) = obj["metadata"].get("labels") {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("");
            let ok_value = v.is_empty()
                || (v.len() <= 63
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
            if !ok_value {
                errs.push(FieldError::invalid(
                    "metadata.labels",
                    &json!(v),
                    LABEL_VALUE_MSG,
                ));
            }
            let name_part = k.rsplit('/').next().unwrap_or("");
            let ok_key = !name_part.is_empty()
                && name_part.len() <= 63
                && name_part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && name_part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name_part.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !ok_key {
                errs.push(FieldError::invalid(
                    "metadata.labels",
                    &json!(k),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                ));
            }
        }
    }
}

const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// apimachinery's `IsQualifiedName` (`[prefix/]name`), which a StorageClass provisioner must be.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".into()];
            }
            let mut out: Vec<String> = util::dns1123_subdomain_errors(prefix)
                .into_iter()
                .map(|e| format!("prefix part {e}"))
                .collect();
            out.extend(qualified_name_part_errors(name));
            return out;
        }
        _ => {
            return vec![format!("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
        }
    };
    qualified_name_part_errors(name)
}

fn qualified_name_part_errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.is_empty() {
        out.push("name part must be non-empty".into());
        return out;
    }
    if name.len() > 63 {
        out.push("name part must be no more than 63 characters".into());
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        out.push(NAME_PART_MSG.into());
    }
    out
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.pointer(ptr).and_then(Value::as_str)
}

fn validate_object(kind: &Kind, obj: &Value, errs: &mut Vec<FieldError>) {
    validate_meta(kind, obj, errs);
    if is(kind, &STORAGE_CLASSES) {
        match str_at(obj, "/provisioner").filter(|p| !p.is_empty()) {
            None => errs.push(FieldError::required("provisioner", "")),
            Some(p) => {
                for problem in qualified_name_errors(p) {
                    errs.push(FieldError::invalid("provisioner", &json!(p), &problem));
                }
            }
        }
        if let Some(p) = obj.get("reclaimPolicy").filter(|v| !v.is_null()) {
            if !matches!(p.as_str(), Some("Delete" | "Retain")) {
                errs.push(FieldError::not_supported(
                    "reclaimPolicy",
                    p,
                    &["Delete", "Retain"],
                ));
            }
        }
        if let Some(m) = obj.get("volumeBindingMode").filter(|v| !v.is_null()) {
            if !matches!(m.as_str(), Some("Immediate" | "WaitForFirstConsumer")) {
                errs.push(FieldError::not_supported(
                    "volumeBindingMode",
                    m,
                    &["Immediate", "WaitForFirstConsumer"],
                ));
            }
        }
    } else if is(kind, &PVCS) {
        let modes = obj.pointer("/spec/accessModes").and_then(Value::as_array);
        match modes {
            None => errs.push(FieldError::required(
                "spec.accessModes",
                "at least 1 access mode is required",
            )),
            Some(m) if m.is_empty() => errs.push(FieldError::required(
                "spec.accessModes",
                "at least 1 access mode is required",
            )),
            Some(m) => {
                for mode in m {
                    if !mode.as_str().is_some_and(|s| ACCESS_MODES.contains(&s)) {
                        errs.push(FieldError::not_supported(
                            "spec.accessModes",
                            mode,
                            ACCESS_MODES,
                        ));
                    }
                }
            }
        }
        match str_at(obj, "/spec/resources/requests/storage") {
            None => errs.push(FieldError::required("spec.resources[storage]", "")),
            Some(q) => {
                if quantity::parse(q).is_ok_and(|q| q.0 <= 0) {
                    errs.push(FieldError::invalid(
                        "spec.resources[storage]",
                        &json!(q),
                        "must be greater than zero",
                    ));
                }
            }
        }
        if let Some(m) = obj.pointer("/spec/volumeMode").filter(|v| !v.is_null()) {
            if !matches!(m.as_str(), Some("Filesystem" | "Block")) {
                errs.push(FieldError::not_supported(
                    "spec.volumeMode",
                    m,
                    &["Block", "Filesystem"],
                ));
            }
        }
        if let Some(c) = str_at(obj, "/spec/storageClassName").filter(|c| !c.is_empty()) {
            for p in util::dns1123_subdomain_errors(c) {
                errs.push(FieldError::invalid("spec.storageClassName", &json!(c), &p));
            }
        }
    } else if is(kind, &CONFIG_MAPS) {
        validate_config_map(obj, errs);
    } else if is(kind, &LEASES) {
        if let Some(d) = obj
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
        {
            if d <= 0 {
                errs.push(FieldError::invalid(
                    "spec.leaseDurationSeconds",
                    &json!(d),
                    "must be greater than 0",
                ));
            }
        }
        if let Some(t) = obj
            .pointer("/spec/leaseTransitions")
            .and_then(Value::as_i64)
        {
            if t < 0 {
                errs.push(FieldError::invalid(
                    "spec.leaseTransitions",
                    &json!(t),
                    "must be greater than or equal to 0",
                ));
            }
        }
    } else if is(kind, &PODS) {
        match obj.pointer("/spec/containers").and_then(Value::as_array) {
            Some(cs) if !cs.is_empty() => {
                for (i, c) in cs.iter().enumerate() {
                    if str_at(c, "/name").is_none_or(str::is_empty) {
                        errs.push(FieldError::required(
                            &format!("spec.containers[{i}].name"),
                            "",
                        ));
                    }
                    if str_at(c, "/image").is_none_or(str::is_empty) {
                        errs.push(FieldError::required(
                            &format!("spec.containers[{i}].image"),
                            "",
                        ));
                    }
                }
            }
            _ => errs.push(FieldError::required("spec.containers", "")),
        }
        for (i, v) in obj
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(pvc) = v.get("persistentVolumeClaim") {
                if str_at(pvc, "/claimName").is_none_or(str::is_empty) {
                    errs.push(FieldError::required(
                        &format!("spec.volumes[{i}].persistentVolumeClaim.claimName"),
                        "",
                    ));
                }
            }
        }
    }
}

/// `ValidateConfigMap`: keys are `[-._a-zA-Z0-9]+` of at most 253 bytes, and `data` plus
/// `binaryData` (base64-decoded) together at most [`MAX_CONFIG_MAP_BYTES`].
fn validate_config_map(obj: &Value, errs: &mut Vec<FieldError>) {
    let mut total = 0usize;
    for section in ["data", "binaryData"] {
        let Some(Value::Object(m)) = obj.get(section) else {
            continue;
        };
        for (k, v) in m {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && k != "."
                && k != ".."
                && !k.starts_with("..");
            if !ok {
                errs.push(FieldError::invalid(
                    &format!("{section}[{k}]"),
                    &json!(k),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
            let text = v.as_str().unwrap_or_default();
            total += if section == "binaryData" {
                text.len() / 4 * 3
            } else {
                text.len()
            };
        }
    }
    if total > MAX_CONFIG_MAP_BYTES {
        // The real server names the root path `[]` (checked against v1.20.2, FINDINGS.md).
        errs.push(FieldError::too_long("[]", MAX_CONFIG_MAP_BYTES));
    }
}

fn without(v: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in keys {
        m.remove(*k);
    }
    m
}

fn empty_as_null(v: Option<&Value>) -> Value {
    match v {
        None => Value::Null,
        Some(Value::Object(m)) if m.is_empty() => Value::Null,
        Some(other) => other.clone(),
    }
}

fn validate_update_rules(kind: &Kind, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if is(kind, &STORAGE_CLASSES) {
        if empty_as_null(new.get("parameters")) != empty_as_null(old.get("parameters")) {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if new.get("provisioner") != old.get("provisioner") {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if new.get("reclaimPolicy") != old.get("reclaimPolicy") {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        if new.get("volumeBindingMode") != old.get("volumeBindingMode") {
            errs.push(FieldError::invalid(
                "volumeBindingMode",
                new.get("volumeBindingMode").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    } else if is(kind, &PVCS) {
        let bound = str_at(old, "/status/phase") == Some("Bound");
        let mut new_spec = new["spec"].clone();
        let mut old_spec = old["spec"].clone();
        if bound {
            new_spec["resources"]["requests"]["storage"] =
                old_spec["resources"]["requests"]["storage"].clone();
        }
        if str_at(old, "/spec/volumeName").is_none_or(str::is_empty) {
            old_spec["volumeName"] = new_spec.get("volumeName").cloned().unwrap_or(Value::Null);
        }
        let norm = |s: &Value| {
            Value::Object(
                without(s, &[])
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .collect(),
            )
        };
        if norm(&new_spec) != norm(&old_spec) {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests for bound claims",
            ));
        }
        let size = |o: &Value| {
            str_at(o, "/spec/resources/requests/storage").and_then(|q| quantity::parse(q).ok())
        };
        if let (Some(n), Some(o)) = (size(new), size(old)) {
            if n < o {
                errs.push(FieldError::forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                ));
            }
        }
    }
}

/// Full validation: 400 for undecodable input, 422 Invalid with causes otherwise.
pub fn validate(kind: &Kind, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    check_decodable(kind, obj)?;
    let mut errs = Vec::new();
    validate_object(kind, obj, &mut errs);
    if let Some(old) = old {
        validate_update_rules(kind, obj, old, &mut errs);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, meta_str(obj, "name"), &errs))
    }
}

/// Validating admission after validation: the PersistentVolumeClaimResize plugin, which answers
/// 403 Forbidden when a bound claim grows but its class does not allow expansion.
pub fn admit_update(kind: &Kind, new: &Value, old: &Value, store: &Store) -> Result<(), ApiError> {
    if !is(kind, &PVCS) {
        return Ok(());
    }
    let size = |o: &Value| {
        str_at(o, "/spec/resources/requests/storage").and_then(|q| quantity::parse(q).ok())
    };
    let (Some(n), Some(o)) = (size(new), size(old)) else {
        return Ok(());
    };
    if n <= o {
        return Ok(());
    }
    let class = str_at(old, "/spec/storageClassName").unwrap_or("");
    let allowed = !class.is_empty()
        && store
            .get(&STORAGE_CLASSES, "", class)
            .is_some_and(|c| c.get("allowVolumeExpansion").and_then(Value::as_bool) == Some(true));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            kind,
            meta_str(new, "name"),
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(size: &str, class: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}}, "storageClassName": class},
            "status": {"phase": phase}})
    }

    #[test]
    fn pvc_update_rules() {
        let old = pvc("1Gi", "fast", "Bound");
        assert!(validate(&PVCS, &pvc("2Gi", "fast", "Bound"), Some(&old)).is_ok());
        let e = validate(&PVCS, &pvc("1Gi", "slow", "Bound"), Some(&old)).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.details.unwrap()["causes"][0]["field"], "spec");
        let e = validate(&PVCS, &pvc("512Mi", "fast", "Bound"), Some(&old)).unwrap_err();
        assert_eq!(
            e.details.unwrap()["causes"][0]["field"],
            "spec.resources.requests.storage"
        );
        let unbound = pvc("1Gi", "fast", "Pending");
        let e = validate(&PVCS, &pvc("2Gi", "fast", "Pending"), Some(&unbound)).unwrap_err();
        assert_eq!(e.details.unwrap()["causes"][0]["field"], "spec");
    }

    #[test]
    fn provisioner_must_be_a_qualified_name() {
        for ok in [
            "example.com/none",
            "kubernetes.io/aws-ebs",
            "rancher.io/local-path",
            "local",
        ] {
            assert!(qualified_name_errors(ok).is_empty(), "{ok}");
        }
        for bad in [
            "bad provisioner!",
            "/x",
            "a/b/c",
            "Bad_Prefix/x",
            "example.com/",
            "-x",
        ] {
            assert!(!qualified_name_errors(bad).is_empty(), "{bad}");
        }
        let sc = json!({"metadata": {"name": "x"}, "provisioner": "bad provisioner!"});
        let e = validate(&STORAGE_CLASSES, &sc, None).expect_err("invalid provisioner");
        let causes = &e.details.expect("details")["causes"];
        assert_eq!(causes[0]["field"], "provisioner");
        assert_eq!(causes[0]["reason"], "FieldValueInvalid");
    }

    #[test]
    fn storage_class_messages() {
        let old = json!({"metadata": {"name": "fast"}, "provisioner": "a", "parameters": {"x": "1"},
            "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"});
        let mut new = old.clone();
        new["parameters"]["x"] = json!("2");
        let e = validate(&STORAGE_CLASSES, &new, Some(&old)).unwrap_err();
        assert_eq!(
            e.message,
            "StorageClass.storage.k8s.io \"fast\" is invalid: parameters: Forbidden: updates to parameters are forbidden."
        );
        let d = e.details.unwrap();
        assert_eq!(d["causes"][0]["reason"], "FieldValueForbidden");
        assert_eq!(d["kind"], "StorageClass");
        assert_eq!(d["group"], "storage.k8s.io");
    }

    #[test]
    fn lease_duration_message() {
        let l = json!({"metadata": {"name": "lock"}, "spec": {"leaseDurationSeconds": 0}});
        let e = validate(&LEASES, &l, None).unwrap_err();
        assert!(
            e.message
                .ends_with("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
            "{}",
            e.message
        );
    }
}

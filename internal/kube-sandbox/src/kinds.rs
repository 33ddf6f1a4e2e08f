//! The resource kinds the sandbox serves. Handlers are generic over [`Kind`]; what differs per
//! kind (defaults, validation, immutability) lives in `validate.rs` keyed by the kind name.

use serde_json::{json, Value};

/// Static description of one served resource: enough for routing, discovery and messages.
#[derive(Debug)]
pub struct Kind {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores status changes, like the real server.
    pub has_status: bool,
    /// Whether clients may create it (every kind served today; kept for read-only kinds).
    pub user_create: bool,
    pub short_names: &'static [&'static str],
    /// Field selector paths beyond metadata.name / metadata.namespace.
    pub field_selectors: &'static [&'static str],
    /// The registry's `ReturnDeletedObject`: a DELETE that removes the object answers with the
    /// object itself instead of a success Status.
    pub return_deleted_object: bool,
    /// The strategy's `AllowUnconditionalUpdate`: when false, a PUT must carry
    /// `metadata.resourceVersion` (422 otherwise), as for Leases.
    pub unconditional_update: bool,
}

pub static NAMESPACES: Kind = Kind {
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    group: "",
    version: "v1",
    namespaced: false,
    has_status: true,
    user_create: true,
    short_names: &["ns"],
    field_selectors: &["status.phase"],
    return_deleted_object: false,
    unconditional_update: true,
};
pub static PVCS: Kind = Kind {
    plural: "persistentvolumeclaims",
    singular: "persistentvolumeclaim",
    kind: "PersistentVolumeClaim",
    group: "",
    version: "v1",
    namespaced: true,
    has_status: true,
    user_create: true,
    short_names: &["pvc"],
    field_selectors: &[],
    return_deleted_object: true,
    unconditional_update: true,
};
pub static PVS: Kind = Kind {
    plural: "persistentvolumes",
    singular: "persistentvolume",
    kind: "PersistentVolume",
    group: "",
    version: "v1",
    namespaced: false,
    has_status: true,
    user_create: true,
    short_names: &["pv"],
    field_selectors: &[],
    return_deleted_object: true,
    unconditional_update: true,
};
pub static PODS: Kind = Kind {
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    group: "",
    version: "v1",
    namespaced: true,
    has_status: true,
    user_create: true,
    short_names: &["po"],
    field_selectors: &["spec.nodeName", "status.phase", "spec.restartPolicy"],
    return_deleted_object: true,
    unconditional_update: true,
};
pub static EVENTS: Kind = Kind {
    plural: "events",
    singular: "event",
    kind: "Event",
    group: "",
    version: "v1",
    namespaced: true,
    has_status: false,
    user_create: true,
    short_names: &["ev"],
    field_selectors: &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "source",
        "type",
    ],
    return_deleted_object: false,
    unconditional_update: true,
};
pub static STORAGE_CLASSES: Kind = Kind {
    plural: "storageclasses",
    singular: "storageclass",
    kind: "StorageClass",
    group: "storage.k8s.io",
    version: "v1",
    namespaced: false,
    has_status: false,
    user_create: true,
    short_names: &["sc"],
    field_selectors: &[],
    return_deleted_object: true,
    unconditional_update: true,
};
pub static LEASES: Kind = Kind {
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    group: "coordination.k8s.io",
    version: "v1",
    namespaced: true,
    has_status: false,
    user_create: true,
    short_names: &[],
    field_selectors: &[],
    return_deleted_object: false,
    unconditional_update: false,
};

/// ConfigMaps hold the network-state document; the size limit and key rules are the real
/// server's (`ValidateConfigMap`).
pub static CONFIG_MAPS: Kind = Kind {
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    group: "",
    version: "v1",
    namespaced: true,
    has_status: false,
    user_create: true,
    short_names: &["cm"],
    field_selectors: &[],
    return_deleted_object: false,
    unconditional_update: true,
};

pub static ALL: [&Kind; 8] = [
    &NAMESPACES,
    &PVCS,
    &PVS,
    &PODS,
    &EVENTS,
    &STORAGE_CLASSES,
    &LEASES,
    &CONFIG_MAPS,
];

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `persistentvolumeclaims` or `storageclasses.storage.k8s.io`, as in NotFound messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// `PersistentVolumeClaim` or `StorageClass.storage.k8s.io`, as in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
    pub fn verbs(&self) -> Value {
        if self.user_create {
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        } else {
            json!(["delete", "get", "list", "watch"])
        }
    }
}

/// Looks a kind up from the URL's group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    ALL.iter()
        .copied()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// `APIResourceList` for one group/version, as served by discovery.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&Kind> = ALL
        .iter()
        .copied()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for k in &kinds {
        resources.push(json!({
            "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
            "kind": k.kind, "verbs": k.verbs(), "shortNames": k.short_names,
        }));
        if k.has_status {
            resources.push(json!({
                "name": format!("{}/status", k.plural), "singularName": "", "namespaced": k.namespaced,
                "kind": k.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": kinds[0].api_version(),
        "resources": resources,
    }))
}

/// `APIGroupList` for `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = ["storage.k8s.io", "coordination.k8s.io"]
        .iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

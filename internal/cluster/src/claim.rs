//! PersistentVolumeClaims holding state shared by the nodes of one testnet, and their namespaces.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Event, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod,
    TypedLocalObjectReference, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use tokio_util::sync::CancellationToken;

use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};
use crate::validate::{parse_quantity, AccessMode, Quantity, VolumeBindingMode, VolumeMode};

/// Label naming the testnet a claim belongs to (lets operators `kubectl get pvc -l` one network).
pub const LABEL_NETWORK: &str = "testnet.io/network";
/// Label naming the claim's role in the testnet (e.g. `shared-state`, `genesis`).
pub const LABEL_ROLE: &str = "testnet.io/role";
/// Standard label saying which tool owns the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`] on every claim we create.
pub const MANAGED_BY: &str = "terraform-provider-testnet";
/// The finalizer that keeps a claim alive while pods use it.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";

/// Where a claim's initial contents come from (a VolumeSnapshot or another claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// e.g. `VolumeSnapshot`, `PersistentVolumeClaim`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// e.g. `snapshot.storage.k8s.io`; `None` for core kinds.
    pub api_group: Option<String>,
}

/// One `matchExpressions` entry of a volume selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    pub values: Vec<String>,
}

/// Which pre-existing volumes the claim may bind to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSelector {
    /// Exact label matches.
    pub match_labels: BTreeMap<String, String>,
    /// Expressions, all of which must hold.
    pub match_expressions: Vec<SelectorRequirement>,
}

/// Desired state of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSpec {
    /// Namespace (DNS-1123 label).
    pub namespace: String,
    /// Name (DNS-1123 subdomain).
    pub name: String,
    /// Testnet name, written to [`LABEL_NETWORK`] when set.
    pub network: Option<String>,
    /// Role, written to [`LABEL_ROLE`] when set.
    pub role: Option<String>,
    /// User labels (ours are added on top).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Access modes (at least one).
    pub access_modes: Vec<AccessMode>,
    /// Requested size.
    pub storage: Quantity,
    /// StorageClass; `None` uses the cluster default.
    pub storage_class_name: Option<String>,
    /// Filesystem or block.
    pub volume_mode: Option<VolumeMode>,
    /// Bind to this pre-existing volume.
    pub volume_name: Option<String>,
    /// Clone or restore from.
    pub data_source: Option<DataSource>,
    /// Restrict binding to volumes with these labels.
    pub selector: Option<VolumeSelector>,
}

impl ClaimSpec {
    /// The labels written to the object: the user's, plus network, role and managed-by.
    pub fn effective_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        if let Some(n) = &self.network {
            l.insert(LABEL_NETWORK.into(), n.clone());
        }
        if let Some(r) = &self.role {
            l.insert(LABEL_ROLE.into(), r.clone());
        }
        l.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
        l
    }
}

/// A change of a claim's labels and annotations. Kubernetes lets claim metadata change at any
/// time, so relabelling never touches the spec (or the data): it is one JSON merge patch where
/// removed keys are `null`. Keys nobody asked to remove (added by others) are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPatch {
    /// Labels to set (added or changed).
    pub set_labels: BTreeMap<String, String>,
    /// Label keys to remove.
    pub remove_labels: Vec<String>,
    /// Annotations to set.
    pub set_annotations: BTreeMap<String, String>,
    /// Annotation keys to remove.
    pub remove_annotations: Vec<String>,
}

impl MetadataPatch {
    /// From what was written before to what is wanted now: every wanted key is set, and keys
    /// that were written before but are no longer wanted are removed.
    pub fn between(
        old_labels: &BTreeMap<String, String>,
        new_labels: &BTreeMap<String, String>,
        old_annotations: &BTreeMap<String, String>,
        new_annotations: &BTreeMap<String, String>,
    ) -> Self {
        let gone = |old: &BTreeMap<String, String>, new: &BTreeMap<String, String>| {
            old.keys()
                .filter(|k| !new.contains_key(*k))
                .cloned()
                .collect()
        };
        Self {
            set_labels: new_labels.clone(),
            remove_labels: gone(old_labels, new_labels),
            set_annotations: new_annotations.clone(),
            remove_annotations: gone(old_annotations, new_annotations),
        }
    }

    /// The merge patch body (RFC 7386): values set, removed keys `null`.
    pub fn to_merge_patch(&self) -> serde_json::Value {
        let section = |set: &BTreeMap<String, String>, remove: &[String]| {
            let mut m = serde_json::Map::new();
            for k in remove {
                m.insert(k.clone(), serde_json::Value::Null);
            }
            for (k, v) in set {
                m.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
            serde_json::Value::Object(m)
        };
        serde_json::json!({
            "metadata": {
                "labels": section(&self.set_labels, &self.remove_labels),
                "annotations": section(&self.set_annotations, &self.remove_annotations),
            }
        })
    }
}

/// A claim as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Server UID.
    pub uid: String,
    /// For optimistic concurrency.
    pub resource_version: String,
    /// `Pending`, `Bound` or `Lost`.
    pub phase: String,
    /// The bound PersistentVolume.
    pub bound_volume: Option<String>,
    /// Actual size of the bound volume (may exceed the request).
    pub capacity: Option<Quantity>,
    /// Requested size.
    pub requested: Option<Quantity>,
    /// Access modes requested.
    pub access_modes: Vec<String>,
    /// Class (as set on the object, possibly filled in by the default-class admission).
    pub storage_class_name: Option<String>,
    /// Volume mode.
    pub volume_mode: Option<String>,
    /// All labels on the object.
    pub labels: BTreeMap<String, String>,
    /// All annotations on the object.
    pub annotations: BTreeMap<String, String>,
    /// Finalizers on the object.
    pub finalizers: Vec<String>,
    /// Deletion requested (Terminating).
    pub deleting: bool,
}

fn parse_k8s_quantity(q: Option<&K8sQuantity>) -> Option<Quantity> {
    q.and_then(|q| parse_quantity(&q.0).ok())
}

fn claim_object(spec: &ClaimSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: Some(spec.namespace.clone()),
            labels: Some(spec.effective_labels()),
            annotations: (!spec.annotations.is_empty()).then(|| spec.annotations.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(
                spec.access_modes
                    .iter()
                    .map(|m| m.as_str().to_string())
                    .collect(),
            ),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    K8sQuantity(spec.storage.to_string()),
                )])),
                ..Default::default()
            }),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: spec.volume_mode.map(|m| m.as_str().to_string()),
            volume_name: spec.volume_name.clone(),
            data_source: spec
                .data_source
                .as_ref()
                .map(|d| TypedLocalObjectReference {
                    api_group: d.api_group.clone(),
                    kind: d.kind.clone(),
                    name: d.name.clone(),
                }),
            selector: spec.selector.as_ref().map(|s| LabelSelector {
                match_labels: (!s.match_labels.is_empty()).then(|| s.match_labels.clone()),
                match_expressions: (!s.match_expressions.is_empty()).then(|| {
                    s.match_expressions
                        .iter()
                        .map(|r| LabelSelectorRequirement {
                            key: r.key.clone(),
                            operator: r.operator.clone(),
                            values: (!r.values.is_empty()).then(|| r.values.clone()),
                        })
                        .collect()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn claim_status(pvc: PersistentVolumeClaim) -> ClaimStatus {
    let meta = pvc.metadata;
    let spec = pvc.spec.unwrap_or_default();
    let status = pvc.status.unwrap_or_default();
    ClaimStatus {
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        uid: meta.uid.unwrap_or_default(),
        resource_version: meta.resource_version.unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        bound_volume: spec.volume_name.clone().filter(|v| !v.is_empty()),
        capacity: parse_k8s_quantity(status.capacity.as_ref().and_then(|c| c.get("storage"))),
        requested: parse_k8s_quantity(
            spec.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage")),
        ),
        access_modes: spec.access_modes.unwrap_or_default(),
        storage_class_name: spec.storage_class_name,
        volume_mode: spec.volume_mode,
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        finalizers: meta.finalizers.unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
    }
}

/// Whether a claim in `phase` counts as ready under `mode`: Bound always; Pending too under
/// WaitForFirstConsumer, because such a claim binds only when its first pod is scheduled, which
/// Terraform may create later.
pub fn claim_ready(phase: &str, mode: VolumeBindingMode) -> bool {
    phase == "Bound" || (phase == "Pending" && mode == VolumeBindingMode::WaitForFirstConsumer)
}

/// Sleep `d` unless cancelled first; false when cancelled.
pub(crate) async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

const POLL: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(2);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl Cluster {
    fn claims(&self, namespace: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Create the namespace unless it exists; `true` when this call created it (so the caller
    /// knows whether it owns it). Labels are applied only on creation.
    pub async fn ensure_namespace(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, ClusterError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let object = ObjectRef::cluster("Namespace", name);
        if api
            .get_opt(name)
            .await
            .map_err(|e| self.err(e, "get", object.clone()))?
            .is_some()
        {
            return Ok(false);
        }
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: (!labels.is_empty()).then(|| labels.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(true),
            Err(e) => match self.err(e, "create", object) {
                ClusterError::AlreadyExists { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Create a claim.
    pub async fn create_claim(&self, spec: &ClaimSpec) -> Result<ClaimStatus, ClusterError> {
        self.claims(&spec.namespace)
            .create(&PostParams::default(), &claim_object(spec))
            .await
            .map(claim_status)
            .map_err(|e| {
                self.err(
                    e,
                    "create",
                    ObjectRef::namespaced("PersistentVolumeClaim", &spec.namespace, &spec.name),
                )
            })
    }

    /// Read a claim; `None` when it is gone.
    pub async fn get_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ClaimStatus>, ClusterError> {
        self.claims(namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(claim_status))
            .map_err(|e| {
                self.err(
                    e,
                    "get",
                    ObjectRef::namespaced("PersistentVolumeClaim", namespace, name),
                )
            })
    }

    /// Change a claim's labels and annotations in place (one merge patch; the spec is untouched).
    pub async fn patch_claim_metadata(
        &self,
        namespace: &str,
        name: &str,
        patch: &MetadataPatch,
    ) -> Result<ClaimStatus, ClusterError> {
        self.claims(namespace)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(patch.to_merge_patch()),
            )
            .await
            .map(claim_status)
            .map_err(|e| {
                self.err(
                    e,
                    "patch",
                    ObjectRef::namespaced("PersistentVolumeClaim", namespace, name),
                )
            })
    }

    /// Grow a claim's storage request. Refuses a shrink and a class without expansion before
    /// asking the server (which also refuses unbound claims, reported as `Invalid` on `spec`).
    pub async fn resize_claim(
        &self,
        namespace: &str,
        name: &str,
        storage: Quantity,
    ) -> Result<ClaimStatus, ClusterError> {
        let object = ObjectRef::namespaced("PersistentVolumeClaim", namespace, name);
        let api = self.claims(namespace);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut pvc = api
                .get_opt(name)
                .await
                .map_err(|e| self.err(e, "get", object.clone()))?
                .ok_or_else(|| ClusterError::NotFound {
                    object: object.clone(),
                })?;
            let current = claim_status(pvc.clone());
            let requested = current.requested.unwrap_or(Quantity::from_bytes(0));
            if storage == requested {
                return Ok(current);
            }
            if storage < requested {
                return Err(ClusterError::ShrinkNotAllowed {
                    object,
                    current: requested.to_string(),
                    requested: storage.to_string(),
                });
            }
            let class = current.storage_class_name.clone().unwrap_or_default();
            if !self.expansion_allowed(&class).await? {
                return Err(ClusterError::ExpansionNotAllowed { object, class });
            }
            let spec = pvc.spec.get_or_insert_with(Default::default);
            spec.resources
                .get_or_insert_with(Default::default)
                .requests
                .get_or_insert_with(Default::default)
                .insert("storage".into(), K8sQuantity(storage.to_string()));
            pvc.status = None;
            match api.replace(name, &PostParams::default(), &pvc).await {
                Ok(p) => return Ok(claim_status(p)),
                Err(e) => {
                    let err = self.err(e, "update", object.clone());
                    if err.is_conflict() && attempt < 5 {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Delete a claim and wait until it is really gone. While pods mount it, the pvc-protection
    /// finalizer keeps it Terminating; after `timeout` this fails with
    /// [`ClusterError::StillInUse`] naming those pods. An absent claim is success.
    pub async fn delete_claim(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), ClusterError> {
        let object = ObjectRef::namespaced("PersistentVolumeClaim", namespace, name);
        let api = self.claims(namespace);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) => match self.err(e, "delete", object.clone()) {
                ClusterError::NotFound { .. } => return Ok(()),
                other => return Err(other),
            },
        }
        let start = Instant::now();
        let mut last_progress = start;
        let mut interval = POLL;
        loop {
            let Some(current) = self.get_claim(namespace, name).await? else {
                return Ok(());
            };
            let waited = start.elapsed();
            if waited >= timeout {
                let pods = self.pods_using_claim(namespace, name).await?;
                return Err(ClusterError::StillInUse {
                    object,
                    pods,
                    finalizers: current.finalizers,
                    waited,
                });
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                tracing::info!(object = %object, waited_s = waited.as_secs(), finalizers = ?current.finalizers, "waiting for claim deletion");
            }
            let nap = interval
                .min(timeout.saturating_sub(waited))
                .max(Duration::from_millis(10));
            if !sleep_or_cancel(nap, cancel).await {
                return Err(ClusterError::Cancelled {
                    what: format!("waiting for deletion of {object}"),
                });
            }
            interval = (interval * 2).min(POLL_MAX);
        }
    }

    /// Names of pods in `namespace` whose volumes reference the claim.
    pub async fn pods_using_claim(
        &self,
        namespace: &str,
        claim: &str,
    ) -> Result<Vec<String>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pods = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.err(e, "list", ObjectRef::namespaced("Pod", namespace, "")))?;
        let mut names: Vec<String> = pods
            .items
            .into_iter()
            .filter(|p| {
                p.spec.as_ref().is_some_and(|s| {
                    s.volumes.iter().flatten().any(|v| {
                        v.persistent_volume_claim
                            .as_ref()
                            .is_some_and(|c| c.claim_name == claim)
                    })
                })
            })
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The claim's Events as `reason: message`, oldest first, for timeout errors.
    pub async fn claim_events(
        &self,
        namespace: &str,
        claim: &str,
    ) -> Result<Vec<String>, ClusterError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.err(e, "list", ObjectRef::namespaced("Event", namespace, "")))?;
        let mut events: Vec<Event> = list
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
                    && e.involved_object.name.as_deref() == Some(claim)
            })
            .collect();
        events.sort_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .or(e.first_timestamp.as_ref())
                .map(|t| t.0)
        });
        Ok(events
            .into_iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect())
    }

    /// The binding mode that governs a claim: its class's, the default class's when it names
    /// none, and Immediate when there is no class at all (it can only bind to an existing volume).
    pub async fn binding_mode_of(
        &self,
        class: Option<&str>,
    ) -> Result<VolumeBindingMode, ClusterError> {
        let info = match class {
            Some(c) if !c.is_empty() => self.get_storage_class(c).await?,
            Some(_) => None,
            None => self.default_storage_class().await?,
        };
        Ok(info
            .map(|i| i.spec.volume_binding_mode)
            .unwrap_or(VolumeBindingMode::Immediate))
    }

    /// Wait until the claim is usable: Bound, or Pending under a WaitForFirstConsumer class. On
    /// timeout the error carries the claim's Events (e.g. `ProvisioningFailed`).
    pub async fn wait_ready(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<ClaimStatus, ClusterError> {
        let object = ObjectRef::namespaced("PersistentVolumeClaim", namespace, name);
        let start = Instant::now();
        let mut last_progress = start;
        let mut interval = POLL;
        let mut mode: Option<VolumeBindingMode> = None;
        loop {
            let current =
                self.get_claim(namespace, name)
                    .await?
                    .ok_or_else(|| ClusterError::NotFound {
                        object: object.clone(),
                    })?;
            let m = match mode {
                Some(m) => m,
                None => {
                    let m = self
                        .binding_mode_of(current.storage_class_name.as_deref())
                        .await?;
                    mode = Some(m);
                    m
                }
            };
            if claim_ready(&current.phase, m) {
                return Ok(current);
            }
            let waited = start.elapsed();
            if current.phase == "Lost" || waited >= timeout {
                let events = self.claim_events(namespace, name).await.unwrap_or_default();
                return Err(ClusterError::NotReady {
                    object,
                    phase: current.phase,
                    waited,
                    events,
                });
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                tracing::info!(object = %object, phase = %current.phase, waited_s = waited.as_secs(), "waiting for claim to bind");
            }
            let nap = interval
                .min(timeout.saturating_sub(waited))
                .max(Duration::from_millis(10));
            if !sleep_or_cancel(nap, cancel).await {
                return Err(ClusterError::Cancelled {
                    what: format!("waiting for {object} to bind"),
                });
            }
            interval = (interval * 2).min(POLL_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClaimSpec {
        ClaimSpec {
            namespace: "net1".into(),
            name: "shared".into(),
            network: Some("ghostnet".into()),
            role: Some("shared-state".into()),
            labels: BTreeMap::from([("team".into(), "infra".into())]),
            annotations: BTreeMap::new(),
            access_modes: vec![AccessMode::ReadWriteOnce],
            storage: parse_quantity("10Gi").unwrap(),
            storage_class_name: Some("fast".into()),
            volume_mode: Some(VolumeMode::Filesystem),
            volume_name: None,
            data_source: Some(DataSource {
                kind: "VolumeSnapshot".into(),
                name: "snap".into(),
                api_group: Some("snapshot.storage.k8s.io".into()),
            }),
            selector: None,
        }
    }

    #[test]
    fn labels_added() {
        let l = spec().effective_labels();
        assert_eq!(l[LABEL_NETWORK], "ghostnet");
        assert_eq!(l[LABEL_ROLE], "shared-state");
        assert_eq!(l[LABEL_MANAGED_BY], MANAGED_BY);
        assert_eq!(l["team"], "infra");
    }

    #[test]
    fn object_shape() {
        let o = claim_object(&spec());
        let s = o.spec.unwrap();
        assert_eq!(s.access_modes.unwrap(), vec!["ReadWriteOnce"]);
        assert_eq!(s.resources.unwrap().requests.unwrap()["storage"].0, "10Gi");
        assert_eq!(s.data_source.unwrap().kind, "VolumeSnapshot");
        assert_eq!(s.volume_mode.as_deref(), Some("Filesystem"));
    }

    #[test]
    fn metadata_patch_sets_wanted_and_nulls_removed() {
        let m = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = MetadataPatch::between(
            &m(&[("team", "infra"), ("old", "x")]),
            &m(&[("team", "core"), ("new", "y")]),
            &m(&[("note", "a")]),
            &m(&[]),
        );
        assert_eq!(p.remove_labels, vec!["old".to_string()]);
        assert_eq!(
            p.to_merge_patch(),
            serde_json::json!({"metadata": {
                "labels": {"team": "core", "new": "y", "old": null},
                "annotations": {"note": null},
            }})
        );
    }

    #[test]
    fn readiness_per_mode() {
        use VolumeBindingMode::*;
        assert!(claim_ready("Bound", Immediate));
        assert!(claim_ready("Bound", WaitForFirstConsumer));
        assert!(!claim_ready("Pending", Immediate));
        assert!(claim_ready("Pending", WaitForFirstConsumer));
        assert!(!claim_ready("Lost", WaitForFirstConsumer));
    }
}

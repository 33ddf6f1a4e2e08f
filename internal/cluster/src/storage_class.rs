//! StorageClasses: the disk tiers testnet nodes and shared state are provisioned from.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{TopologySelectorLabelRequirement, TopologySelectorTerm};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};
use crate::validate::{ReclaimPolicy, VolumeBindingMode};

/// The annotation that makes a class the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// One node-label requirement of `allowedTopologies` (e.g. zone in [a, b]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyTerm {
    /// Node label key, e.g. `topology.kubernetes.io/zone`.
    pub key: String,
    /// Allowed values.
    pub values: Vec<String>,
}

/// Desired state of a StorageClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageClassSpec {
    /// Object name (DNS-1123 subdomain).
    pub name: String,
    /// Provisioner, e.g. `ebs.csi.aws.com`. Immutable.
    pub provisioner: String,
    /// Provisioner parameters. Immutable.
    pub parameters: BTreeMap<String, String>,
    /// What happens to volumes when claims go. Immutable.
    pub reclaim_policy: ReclaimPolicy,
    /// When volumes are provisioned. Immutable.
    pub volume_binding_mode: VolumeBindingMode,
    /// Whether claims of this class may grow.
    pub allow_volume_expansion: bool,
    /// Mount options for provisioned volumes.
    pub mount_options: Vec<String>,
    /// Node label requirements, all of which must hold (one selector term).
    pub allowed_topologies: Vec<TopologyTerm>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations, without [`DEFAULT_CLASS_ANNOTATION`] (that is `is_default`).
    pub annotations: BTreeMap<String, String>,
    /// Whether this is the cluster's default class.
    pub is_default: bool,
}

impl StorageClassSpec {
    /// A spec with the defaults we recommend: `Delete`, `WaitForFirstConsumer` (provisions in the
    /// zone of the pod that first uses the claim), no expansion.
    pub fn new(name: &str, provisioner: &str) -> Self {
        Self {
            name: name.to_string(),
            provisioner: provisioner.to_string(),
            parameters: BTreeMap::new(),
            reclaim_policy: ReclaimPolicy::Delete,
            volume_binding_mode: VolumeBindingMode::WaitForFirstConsumer,
            allow_volume_expansion: false,
            mount_options: Vec::new(),
            allowed_topologies: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            is_default: false,
        }
    }
}

/// A StorageClass as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageClassInfo {
    /// The class, read back into a spec.
    pub spec: StorageClassSpec,
    /// Server-assigned UID.
    pub uid: String,
    /// For optimistic concurrency.
    pub resource_version: String,
}

/// Cloud for [`tier_preset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Google Cloud (in-tree gce-pd provisioner).
    Gcp,
    /// AWS (EBS CSI driver).
    Aws,
}

/// Disk tier for [`tier_preset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// SSD: node databases.
    Ssd,
    /// Standard/throughput HDD: archives, snapshots.
    Standard,
}

/// Provisioner and parameters for a tier on a cloud, so users say `tier = "ssd"` instead of
/// remembering each cloud's disk type names.
pub fn tier_preset(cloud: Cloud, tier: Tier) -> (&'static str, BTreeMap<String, String>) {
    let (provisioner, disk) = match (cloud, tier) {
        (Cloud::Gcp, Tier::Ssd) => ("kubernetes.io/gce-pd", "pd-ssd"),
        (Cloud::Gcp, Tier::Standard) => ("kubernetes.io/gce-pd", "pd-standard"),
        (Cloud::Aws, Tier::Ssd) => ("ebs.csi.aws.com", "gp3"),
        (Cloud::Aws, Tier::Standard) => ("ebs.csi.aws.com", "st1"),
    };
    (
        provisioner,
        BTreeMap::from([("type".to_string(), disk.to_string())]),
    )
}

impl Tier {
    /// The name used in configuration and price tables: `ssd`, `standard`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Ssd => "ssd",
            Tier::Standard => "standard",
        }
    }
}

impl Cloud {
    /// The name used in configuration: `gcp`, `aws`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Gcp => "gcp",
            Cloud::Aws => "aws",
        }
    }
}

/// The `(tier, cloud)` whose [`tier_preset`] made this provisioner and `type` parameter, so classes
/// written with explicit values (or imported) are still known as a tier.
pub fn infer_preset(
    provisioner: &str,
    parameters: &BTreeMap<String, String>,
) -> Option<(Tier, Cloud)> {
    let disk = parameters.get("type")?;
    for tier in [Tier::Ssd, Tier::Standard] {
        for cloud in [Cloud::Gcp, Cloud::Aws] {
            let (p, params) = tier_preset(cloud, tier);
            if p == provisioner && params.get("type") == Some(disk) {
                return Some((tier, cloud));
            }
        }
    }
    None
}

/// The fields that differ between `old` and `new` but can never change on a live class; non-empty
/// means the class must be replaced (the provider's RequiresReplace).
pub fn immutable_changes(old: &StorageClassSpec, new: &StorageClassSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.provisioner != new.provisioner {
        out.push("provisioner");
    }
    if old.parameters != new.parameters {
        out.push("parameters");
    }
    if old.reclaim_policy != new.reclaim_policy {
        out.push("reclaim_policy");
    }
    if old.volume_binding_mode != new.volume_binding_mode {
        out.push("volume_binding_mode");
    }
    out
}

fn to_object(spec: &StorageClassSpec, resource_version: Option<String>) -> StorageClass {
    let mut annotations = spec.annotations.clone();
    annotations.remove(DEFAULT_CLASS_ANNOTATION);
    if spec.is_default {
        annotations.insert(DEFAULT_CLASS_ANNOTATION.to_string(), "true".to_string());
    }
    StorageClass {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            labels: (!spec.labels.is_empty()).then(|| spec.labels.clone()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            resource_version,
            ..Default::default()
        },
        provisioner: spec.provisioner.clone(),
        parameters: (!spec.parameters.is_empty()).then(|| spec.parameters.clone()),
        reclaim_policy: Some(spec.reclaim_policy.as_str().to_string()),
        volume_binding_mode: Some(spec.volume_binding_mode.as_str().to_string()),
        allow_volume_expansion: Some(spec.allow_volume_expansion),
        mount_options: (!spec.mount_options.is_empty()).then(|| spec.mount_options.clone()),
        allowed_topologies: (!spec.allowed_topologies.is_empty()).then(|| {
            vec![TopologySelectorTerm {
                match_label_expressions: Some(
                    spec.allowed_topologies
                        .iter()
                        .map(|t| TopologySelectorLabelRequirement {
                            key: t.key.clone(),
                            values: t.values.clone(),
                        })
                        .collect(),
                ),
            }]
        }),
    }
}

fn from_object(sc: StorageClass) -> StorageClassInfo {
    let meta = sc.metadata;
    let mut annotations = meta.annotations.unwrap_or_default();
    let is_default = annotations
        .remove(DEFAULT_CLASS_ANNOTATION)
        .is_some_and(|v| v == "true");
    StorageClassInfo {
        spec: StorageClassSpec {
            name: meta.name.unwrap_or_default(),
            provisioner: sc.provisioner,
            parameters: sc.parameters.unwrap_or_default(),
            // The API defaults both; an unknown spelling from a newer server is read as the default.
            reclaim_policy: sc
                .reclaim_policy
                .and_then(|r| r.parse().ok())
                .unwrap_or(ReclaimPolicy::Delete),
            volume_binding_mode: sc
                .volume_binding_mode
                .and_then(|m| m.parse().ok())
                .unwrap_or(VolumeBindingMode::Immediate),
            allow_volume_expansion: sc.allow_volume_expansion.unwrap_or(false),
            mount_options: sc.mount_options.unwrap_or_default(),
            allowed_topologies: sc
                .allowed_topologies
                .unwrap_or_default()
                .into_iter()
                .flat_map(|t| t.match_label_expressions.unwrap_or_default())
                .map(|r| TopologyTerm {
                    key: r.key,
                    values: r.values,
                })
                .collect(),
            labels: meta.labels.unwrap_or_default(),
            annotations,
            is_default,
        },
        uid: meta.uid.unwrap_or_default(),
        resource_version: meta.resource_version.unwrap_or_default(),
    }
}

impl Cluster {
    fn storage_classes(&self) -> Api<StorageClass> {
        Api::all(self.client.clone())
    }

    /// Read a class; `None` when it does not exist (drift: gone from the cluster).
    pub async fn get_storage_class(
        &self,
        name: &str,
    ) -> Result<Option<StorageClassInfo>, ClusterError> {
        self.storage_classes()
            .get_opt(name)
            .await
            .map(|o| o.map(from_object))
            .map_err(|e| self.err(e, "get", ObjectRef::cluster("StorageClass", name)))
    }

    /// Create a class. `AlreadyExists` if the name is taken.
    pub async fn create_storage_class(
        &self,
        spec: &StorageClassSpec,
    ) -> Result<StorageClassInfo, ClusterError> {
        self.storage_classes()
            .create(&PostParams::default(), &to_object(spec, None))
            .await
            .map(from_object)
            .map_err(|e| self.err(e, "create", ObjectRef::cluster("StorageClass", &spec.name)))
    }

    /// Update the mutable fields (expansion, mount options, topologies, labels, annotations,
    /// default flag) in place. Refuses with [`ClusterError::Immutable`] when an immutable field
    /// differs, before sending anything. Writes with the resourceVersion just read, retrying a few
    /// times if another writer got in between, so a concurrent change is never overwritten blindly.
    pub async fn update_storage_class(
        &self,
        spec: &StorageClassSpec,
    ) -> Result<StorageClassInfo, ClusterError> {
        let object = ObjectRef::cluster("StorageClass", &spec.name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get_storage_class(&spec.name).await?.ok_or_else(|| {
                ClusterError::NotFound {
                    object: object.clone(),
                }
            })?;
            let fields = immutable_changes(&current.spec, spec);
            if !fields.is_empty() {
                return Err(ClusterError::Immutable { object, fields });
            }
            let desired = to_object(spec, Some(current.resource_version.clone()));
            match self
                .storage_classes()
                .replace(&spec.name, &PostParams::default(), &desired)
                .await
            {
                Ok(sc) => return Ok(from_object(sc)),
                Err(e) => {
                    let err = self.err(e, "update", object.clone());
                    if err.is_conflict() && attempt < 5 {
                        tracing::debug!(object = %object, attempt, "conflict updating storage class, re-reading");
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Delete a class. Returns `false` when it was already gone. Existing volumes are not affected.
    pub async fn delete_storage_class(&self, name: &str) -> Result<bool, ClusterError> {
        match self
            .storage_classes()
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match self.err(e, "delete", ObjectRef::cluster("StorageClass", name)) {
                ClusterError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Whether claims of `class` may be resized. A missing class allows nothing.
    pub async fn expansion_allowed(&self, class: &str) -> Result<bool, ClusterError> {
        Ok(self
            .get_storage_class(class)
            .await?
            .is_some_and(|c| c.spec.allow_volume_expansion))
    }

    /// The class marked default, if any (what a claim without `storage_class_name` gets).
    pub async fn default_storage_class(&self) -> Result<Option<StorageClassInfo>, ClusterError> {
        let list = self
            .storage_classes()
            .list(&Default::default())
            .await
            .map_err(|e| self.err(e, "list", ObjectRef::cluster("StorageClass", "")))?;
        Ok(list
            .items
            .into_iter()
            .map(from_object)
            .find(|c| c.spec.is_default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        let (p, params) = tier_preset(Cloud::Gcp, Tier::Ssd);
        assert_eq!(
            (p, params["type"].as_str()),
            ("kubernetes.io/gce-pd", "pd-ssd")
        );
        let (p, params) = tier_preset(Cloud::Gcp, Tier::Standard);
        assert_eq!(
            (p, params["type"].as_str()),
            ("kubernetes.io/gce-pd", "pd-standard")
        );
        let (p, params) = tier_preset(Cloud::Aws, Tier::Ssd);
        assert_eq!((p, params["type"].as_str()), ("ebs.csi.aws.com", "gp3"));
        let (p, params) = tier_preset(Cloud::Aws, Tier::Standard);
        assert_eq!((p, params["type"].as_str()), ("ebs.csi.aws.com", "st1"));
        assert_eq!(params.len(), 1);
    }

    #[test]
    fn immutable_fields() {
        let old = StorageClassSpec::new("fast", "ebs.csi.aws.com");
        let mut new = old.clone();
        new.allow_volume_expansion = true;
        new.mount_options = vec!["noatime".into()];
        new.labels.insert("a".into(), "b".into());
        new.is_default = true;
        assert!(immutable_changes(&old, &new).is_empty());
        new.parameters.insert("type".into(), "gp3".into());
        new.volume_binding_mode = VolumeBindingMode::Immediate;
        assert_eq!(
            immutable_changes(&old, &new),
            vec!["parameters", "volume_binding_mode"]
        );
        new.provisioner = "x".into();
        new.reclaim_policy = ReclaimPolicy::Retain;
        assert_eq!(
            immutable_changes(&old, &new),
            vec![
                "provisioner",
                "parameters",
                "reclaim_policy",
                "volume_binding_mode"
            ]
        );
    }

    #[test]
    fn object_round_trip_and_default_annotation() {
        let mut spec = StorageClassSpec::new("fast", "ebs.csi.aws.com");
        spec.parameters = tier_preset(Cloud::Aws, Tier::Ssd).1;
        spec.is_default = true;
        spec.annotations.insert("note".into(), "x".into());
        spec.allowed_topologies = vec![TopologyTerm {
            key: "topology.kubernetes.io/zone".into(),
            values: vec!["eu-west-1a".into()],
        }];
        let obj = to_object(&spec, None);
        let ann = obj.metadata.annotations.clone().unwrap();
        assert_eq!(ann[DEFAULT_CLASS_ANNOTATION], "true");
        assert_eq!(
            obj.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
        let back = from_object(obj).spec;
        assert_eq!(back, spec);
    }
}

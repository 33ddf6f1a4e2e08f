//! `testnet_storage_class`: a Kubernetes StorageClass, with `tier`/`cloud` presets so testnet
//! operators pick "ssd" or "standard" instead of each cloud's provisioner and disk type names, and
//! `cloud` presets for self-hosted clusters (Rook Ceph RBD / CephFS with `ceph_*`, local-path).
//!
//! Immutable fields (provisioner, parameters, reclaim policy, binding mode) plan a replacement;
//! everything else updates in place. Planning never contacts the cluster, so it works while the
//! provider configuration is still unknown.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster::{
    check_target, infer_self_hosted, self_hosted_preset, tier_preset, validate_dns1123_subdomain,
    CephTarget, Cloud, PresetError, ReclaimPolicy, SelfHosted, StorageClassInfo, StorageClassSpec,
    Tier, TopologyTerm, VolumeBindingMode,
};
use tfplug::schema::validators::{from_fn, one_of};
use tfplug::{
    Attribute, AttributePath, Block, Context, Diagnostics, Nesting, PlanChange, Private, Resource,
    Schema, Value,
};

use crate::config::Shared;
use crate::convert::cluster_error;

pub struct StorageClass(pub Shared);

const TIERS: [&str; 2] = ["ssd", "standard"];
const CLOUDS: [&str; 5] = ["gcp", "aws", "ceph-rbd", "cephfs", "local-path"];
/// The attributes of a [`CephTarget`], by field name.
const CEPH_ATTRS: [(&str, &str); 3] = [
    ("cluster_id", "ceph_cluster_id"),
    ("pool", "ceph_pool"),
    ("fs_name", "ceph_fs_name"),
];

fn parse_tier(s: &str) -> Option<Tier> {
    match s {
        "ssd" => Some(Tier::Ssd),
        "standard" => Some(Tier::Standard),
        _ => None,
    }
}

fn parse_cloud(s: &str) -> Option<Cloud> {
    match s {
        "gcp" => Some(Cloud::Gcp),
        "aws" => Some(Cloud::Aws),
        _ => None,
    }
}

/// The `ceph_*` attributes as a target; `None` while any is unknown.
fn ceph_target_of(v: &Value) -> Option<CephTarget> {
    let mut t = CephTarget::default();
    for (_, attr) in CEPH_ATTRS {
        let x = v.get(attr);
        if !x.is_null() && !x.is_wholly_known() {
            return None;
        }
    }
    t.cluster_id = v
        .get("ceph_cluster_id")
        .as_str()
        .unwrap_or_default()
        .to_string();
    t.pool = v.get("ceph_pool").as_str().map(str::to_string);
    t.fs_name = v.get("ceph_fs_name").as_str().map(str::to_string);
    Some(t)
}

/// The preset for known `tier` and `cloud` values (or a self-hosted `cloud` and its `ceph_*`);
/// `None` while any is null, unknown or invalid (validation reports the invalid ones).
fn preset_of(v: &Value) -> Option<(&'static str, BTreeMap<String, String>)> {
    if let Some(backend) = v.get("cloud").as_str().and_then(SelfHosted::parse) {
        if !v.get("tier").is_null() {
            return None;
        }
        return self_hosted_preset(backend, &ceph_target_of(v)?).ok();
    }
    let tier = parse_tier(v.get("tier").as_str()?)?;
    let cloud = parse_cloud(v.get("cloud").as_str()?)?;
    Some(tier_preset(cloud, tier))
}

/// The `(tier, cloud)` names whose preset made this provisioner and disk type, so imported
/// classes and classes written with explicit values show the tier they are (and a later `tier` in
/// configuration plans no change).
fn infer_preset(
    provisioner: &str,
    parameters: &BTreeMap<String, String>,
) -> Option<(Option<&'static str>, &'static str)> {
    if let Some((t, c)) = cluster::infer_preset(provisioner, parameters) {
        return Some((Some(t.as_str()), c.as_str()));
    }
    infer_self_hosted(provisioner, parameters).map(|(b, _)| (None, b.as_str()))
}

/// `ceph_*` values the provisioner and parameters correspond to (nulls for other classes).
fn ceph_values(provisioner: &str, parameters: &BTreeMap<String, String>) -> [Value; 3] {
    match infer_self_hosted(provisioner, parameters) {
        Some((b, t)) if b.is_ceph() => [
            Value::string(&t.cluster_id),
            t.pool.map(Value::string).unwrap_or(Value::Null),
            t.fs_name.map(Value::string).unwrap_or(Value::Null),
        ],
        _ => [Value::Null, Value::Null, Value::Null],
    }
}

/// Builds the domain spec from a planned (wholly known) value.
fn spec_of(v: &Value) -> Result<StorageClassSpec, (String, String)> {
    let name = v.get("name").as_str().unwrap_or_default();
    let provisioner = v.get("provisioner").as_str().unwrap_or_default();
    let mut spec = StorageClassSpec::new(name, provisioner);
    spec.parameters = v.get("parameters").to_string_map();
    if let Some(r) = v.get("reclaim_policy").as_str() {
        spec.reclaim_policy = r
            .parse::<ReclaimPolicy>()
            .map_err(|e| ("reclaim_policy".to_string(), e.to_string()))?;
    }
    if let Some(m) = v.get("volume_binding_mode").as_str() {
        spec.volume_binding_mode = m
            .parse::<VolumeBindingMode>()
            .map_err(|e| ("volume_binding_mode".to_string(), e.to_string()))?;
    }
    spec.allow_volume_expansion = v.get("allow_volume_expansion").as_bool().unwrap_or(false);
    spec.mount_options = v.get("mount_options").to_string_vec();
    spec.allowed_topologies = v
        .get("allowed_topologies")
        .elements()
        .iter()
        .map(|t| TopologyTerm {
            key: t.get("key").as_str().unwrap_or_default().to_string(),
            values: t.get("values").to_string_vec(),
        })
        .collect();
    spec.labels = v.get("labels").to_string_map();
    spec.annotations = v.get("annotations").to_string_map();
    spec.is_default = v.get("is_default").as_bool().unwrap_or(false);
    Ok(spec)
}

/// An empty collection is stored as null unless the previous value was an empty collection, so
/// `labels = {}` and an omitted `labels` both plan no changes.
fn collection(value: Value, empty: bool, prev: &Value) -> Value {
    if empty && prev.is_null() {
        Value::Null
    } else {
        value
    }
}

/// The state for a class the server holds; `prev` (plan or prior state) supplies the attributes
/// the server does not know (`tier`, `cloud`) and how empty collections were written.
fn state_of(info: &StorageClassInfo, prev: &Value) -> Value {
    let s = &info.spec;
    let topologies = Value::List(
        s.allowed_topologies
            .iter()
            .map(|t| {
                Value::object([
                    ("key", Value::string(&t.key)),
                    ("values", Value::string_list(t.values.iter().cloned())),
                ])
            })
            .collect(),
    );
    let (tier, cloud) = if prev.get("tier").is_null() && prev.get("cloud").is_null() {
        match infer_preset(&s.provisioner, &s.parameters) {
            Some((t, c)) => (
                t.map(Value::string).unwrap_or(Value::Null),
                Value::string(c),
            ),
            None => (Value::Null, Value::Null),
        }
    } else {
        (prev.get("tier").clone(), prev.get("cloud").clone())
    };
    let [ceph_cluster_id, ceph_pool, ceph_fs_name] = ceph_values(&s.provisioner, &s.parameters);
    Value::object([
        ("name", Value::string(&s.name)),
        ("provisioner", Value::string(&s.provisioner)),
        (
            "parameters",
            Value::string_map(s.parameters.iter().map(|(k, v)| (k.clone(), v.clone()))),
        ),
        ("reclaim_policy", Value::string(s.reclaim_policy.as_str())),
        (
            "volume_binding_mode",
            Value::string(s.volume_binding_mode.as_str()),
        ),
        (
            "allow_volume_expansion",
            Value::Bool(s.allow_volume_expansion),
        ),
        (
            "mount_options",
            collection(
                Value::string_list(s.mount_options.iter().cloned()),
                s.mount_options.is_empty(),
                prev.get("mount_options"),
            ),
        ),
        (
            "allowed_topologies",
            collection(
                topologies,
                s.allowed_topologies.is_empty(),
                prev.get("allowed_topologies"),
            ),
        ),
        (
            "labels",
            collection(
                Value::string_map(s.labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
                s.labels.is_empty(),
                prev.get("labels"),
            ),
        ),
        (
            "annotations",
            collection(
                Value::string_map(s.annotations.iter().map(|(k, v)| (k.clone(), v.clone()))),
                s.annotations.is_empty(),
                prev.get("annotations"),
            ),
        ),
        ("is_default", Value::Bool(s.is_default)),
        ("tier", tier),
        ("cloud", cloud),
        ("ceph_cluster_id", ceph_cluster_id),
        ("ceph_pool", ceph_pool),
        ("ceph_fs_name", ceph_fs_name),
        ("uid", Value::string(&info.uid)),
    ])
}

#[async_trait]
impl Resource for StorageClass {
    fn type_name(&self) -> &'static str {
        "testnet_storage_class"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .describe(
                    "A Kubernetes StorageClass: the disk tier that testnet node volumes and shared \
                     state claims are provisioned from. Set `tier` and `cloud` to get the right \
                     provisioner and disk type for the cloud, or set `provisioner` (and \
                     `parameters`) yourself. Changing `provisioner`, `parameters`, \
                     `reclaim_policy` or `volume_binding_mode` replaces the class (Kubernetes \
                     cannot change them); the other attributes update in place.",
                )
                .attr(
                    Attribute::string("name")
                        .required()
                        .requires_replace()
                        .describe("Name of the StorageClass (a DNS-1123 subdomain: lowercase letters, digits, `-` and `.`, at most 253 characters). Changing it replaces the class.")
                        .validate(from_fn(
                            "A DNS-1123 subdomain.",
                            |v: &Value| match v.as_str() {
                                Some(s) => validate_dns1123_subdomain(s).map_err(|e| e.to_string()),
                                None => Ok(()),
                            },
                        )),
                )
                .attr(
                    Attribute::string("provisioner")
                        .optional()
                        .computed()
                        .requires_replace()
                        .describe("Volume provisioner, e.g. `ebs.csi.aws.com` or `kubernetes.io/gce-pd`. Filled from `tier` and `cloud` when omitted; one of `provisioner` or `tier` is required. Changing it replaces the class."),
                )
                .attr(
                    Attribute::string_map("parameters")
                        .optional()
                        .computed()
                        .requires_replace()
                        .describe("Provisioner parameters, e.g. `{ type = \"pd-ssd\" }`. Filled from `tier` and `cloud` when omitted. Changing them replaces the class."),
                )
                .attr(
                    Attribute::string("reclaim_policy")
                        .default("Delete")
                        .requires_replace()
                        .validate(one_of(ReclaimPolicy::ALLOWED.iter().copied()))
                        .describe("What happens to a volume when its claim is deleted: `Delete` or `Retain`. Default `Delete`. Changing it replaces the class."),
                )
                .attr(
                    Attribute::string("volume_binding_mode")
                        .default("WaitForFirstConsumer")
                        .requires_replace()
                        .validate(one_of(VolumeBindingMode::ALLOWED.iter().copied()))
                        .describe("When volumes are provisioned: `Immediate`, or `WaitForFirstConsumer` (default; provisions in the zone of the first pod using the claim). Changing it replaces the class."),
                )
                .attr(
                    Attribute::bool("allow_volume_expansion")
                        .default(false)
                        .describe("Whether claims of this class may grow. Default `false`. Updates in place."),
                )
                .attr(
                    Attribute::string_list("mount_options")
                        .optional()
                        .describe("Mount options for provisioned volumes, e.g. `[\"noatime\"]`. Updates in place."),
                )
                .attr(
                    Attribute::nested(
                        "allowed_topologies",
                        Nesting::List,
                        vec![
                            Attribute::string("key")
                                .required()
                                .describe("Node label key, e.g. `topology.kubernetes.io/zone`."),
                            Attribute::string_list("values")
                                .required()
                                .describe("Allowed values of the label."),
                        ],
                    )
                    .optional()
                    .describe("Node label requirements that all must hold for volumes to be provisioned (one topology selector term). Updates in place."),
                )
                .attr(
                    Attribute::string_map("labels")
                        .optional()
                        .describe("Labels of the StorageClass. Updates in place."),
                )
                .attr(
                    Attribute::string_map("annotations")
                        .optional()
                        .describe("Annotations of the StorageClass, apart from the default-class annotation (use `is_default`). Updates in place."),
                )
                .attr(
                    Attribute::bool("is_default")
                        .default(false)
                        .describe("Whether this is the cluster's default class (claims without a class get it). Default `false`. Updates in place."),
                )
                .attr(
                    Attribute::string("tier")
                        .optional()
                        .computed()
                        .validate(one_of(TIERS))
                        .describe("Disk tier preset: `ssd` (node databases) or `standard` (archives, snapshots). Needs `cloud`; fills `provisioner` and `parameters`. Conflicts with a different explicit `provisioner`. When omitted, shows the tier the provisioner and `type` parameter correspond to (null if none)."),
                )
                .attr(
                    Attribute::string("cloud")
                        .optional()
                        .computed()
                        .validate(one_of(CLOUDS))
                        .describe("Preset: `gcp` (gce-pd: `pd-ssd`/`pd-standard`) or `aws` (EBS CSI: `gp3`/`st1`) with `tier`; or, without `tier`, a self-hosted backend: `ceph-rbd` (Rook's RBD CSI driver `rook-ceph.rbd.csi.ceph.com`, block images; needs `ceph_cluster_id` and `ceph_pool`), `cephfs` (Rook's CephFS CSI driver `rook-ceph.cephfs.csi.ceph.com`, a shared filesystem; needs `ceph_cluster_id` and `ceph_fs_name`) or `local-path` (`rancher.io/local-path`, directories on the pod's node as in kind and k3s; `WaitForFirstConsumer` only). Ceph presets write Rook's parameters: cluster ID, pool / filesystem, and the CSI secrets `rook-csi-rbd-*` / `rook-csi-cephfs-*` in the cluster's namespace. An explicit `provisioner` of another Rook operator namespace (`<ns>.rbd.csi.ceph.com`) is kept. When omitted, shows the backend the provisioner corresponds to (null if none)."),
                )
                .attr(
                    Attribute::string("ceph_cluster_id")
                        .optional()
                        .computed()
                        .describe("`cloud` = `ceph-rbd` / `cephfs`: the Ceph cluster ID; with Rook, the namespace of the CephCluster (e.g. `rook-ceph`), where Rook also keeps the CSI secrets. Shows the class's `clusterID` parameter for Ceph classes."),
                )
                .attr(
                    Attribute::string("ceph_pool")
                        .optional()
                        .computed()
                        .describe("`cloud` = `ceph-rbd`: the CephBlockPool for the images (required). `cephfs`: the data pool (optional; the filesystem's default otherwise). Shows the class's `pool` parameter for Ceph classes."),
                )
                .attr(
                    Attribute::string("ceph_fs_name")
                        .optional()
                        .computed()
                        .describe("`cloud` = `cephfs`: the CephFilesystem (required). Shows the class's `fsName` parameter for CephFS classes."),
                )
                .attr(
                    Attribute::string("uid")
                        .computed()
                        .use_state_for_unknown()
                        .describe("UID Kubernetes assigned to the class."),
                ),
        )
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let (prov, tier, cloud) = (
            config.get("provisioner"),
            config.get("tier"),
            config.get("cloud"),
        );
        let self_hosted = cloud.as_str().and_then(SelfHosted::parse);
        if prov.is_null() && tier.is_null() && self_hosted.is_none() && !cloud.is_unknown() {
            diags.attr_error(
                AttributePath::attr("provisioner"),
                "Missing provisioner",
                "Set either `provisioner` (e.g. \"ebs.csi.aws.com\"), `tier` (\"ssd\" or \"standard\", with `cloud` \"gcp\" or \"aws\"), or `cloud` = \"ceph-rbd\", \"cephfs\" or \"local-path\".",
            );
        }
        validate_self_hosted(config, self_hosted, diags);
        if !tier.is_null() && cloud.is_null() {
            diags.attr_error(
                AttributePath::attr("cloud"),
                "Missing cloud for tier",
                "`tier` needs `cloud` (\"gcp\" or \"aws\") to choose the provisioner and disk type.",
            );
        }
        if let (Some(p), Some((preset, _))) = (prov.as_str(), preset_of(config)) {
            let same_backend = self_hosted.is_some_and(|b| b.is_provisioner(p));
            if p != preset && !same_backend {
                diags.attr_error(
                    AttributePath::attr("tier"),
                    "Conflicting tier and provisioner",
                    format!(
                        "`tier` = {:?} on `cloud` = {:?} means provisioner {preset:?}, but `provisioner` is set to {p:?}. Remove `tier` or `provisioner`.",
                        tier.as_str().unwrap_or_default(),
                        cloud.as_str().unwrap_or_default(),
                    ),
                );
            }
        }
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, _diags: &mut Diagnostics) {
        if plan.is_destroy() {
            return;
        }
        let preset = preset_of(&plan.config);
        let tier_null = plan.config.get("tier").is_null();
        if plan.config.get("provisioner").is_null() {
            if let Some((p, _)) = &preset {
                plan.planned.set("provisioner", Value::string(*p));
            }
        }
        if plan.config.get("parameters").is_null() {
            if let Some((_, params)) = &preset {
                plan.planned
                    .set("parameters", Value::string_map(params.clone()));
            } else if tier_null {
                // No preset and none given: the class has no parameters.
                plan.planned.set("parameters", Value::Map(BTreeMap::new()));
            }
        }
        // Omitted tier/cloud/ceph_* show what the planned provisioner and parameters correspond to.
        let (prov, params) = (
            plan.planned.get("provisioner"),
            plan.planned.get("parameters"),
        );
        let known = prov.is_wholly_known() && params.is_wholly_known();
        let (p, m) = (
            prov.as_str().unwrap_or_default().to_string(),
            params.to_string_map(),
        );
        let inferred = known.then(|| infer_preset(&p, &m));
        // A self-hosted cloud in configuration with no tier: the tier stays null.
        let tier_free = plan
            .config
            .get("cloud")
            .as_str()
            .and_then(SelfHosted::parse)
            .is_some();
        for (i, attr) in ["tier", "cloud"].into_iter().enumerate() {
            if plan.config.get(attr).is_null() {
                let v = match inferred {
                    _ if i == 0 && tier_free => Value::Null,
                    Some(Some((t, c))) => match i {
                        0 => t.map(Value::string).unwrap_or(Value::Null),
                        _ => Value::string(c),
                    },
                    Some(None) => Value::Null,
                    None => Value::unknown(),
                };
                plan.planned.set(attr, v);
            }
        }
        let ceph = known.then(|| ceph_values(&p, &m));
        for (i, (_, attr)) in CEPH_ATTRS.into_iter().enumerate() {
            if plan.config.get(attr).is_null() {
                let v = match &ceph {
                    Some(vals) => vals[i].clone(),
                    None => Value::unknown(),
                };
                plan.planned.set(attr, v);
            }
        }
        if !plan.is_create() {
            // The framework skips computed attributes left out of the configuration; a preset that
            // changes them (new tier or cloud) still cannot be applied in place.
            for attr in ["provisioner", "parameters"] {
                let new = plan.planned.get(attr);
                if new.is_wholly_known() && !plan.prior.get(attr).equals(new) {
                    plan.replace_because(attr);
                }
            }
        }
    }

    async fn create(
        &self,
        _ctx: &Context,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let spec = match spec_of(planned) {
            Ok(s) => s,
            Err((attr, msg)) => {
                diags.attr_error(AttributePath::attr(attr), "Invalid value", msg);
                return None;
            }
        };
        let cluster = self.0.cluster(diags).await?;
        match cluster.create_storage_class(&spec).await {
            Ok(info) => Some(state_of(&info, planned)),
            Err(e) => {
                cluster_error(&e, e.is_conflict().then_some("name"), diags);
                None
            }
        }
    }

    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let name = state.get("name").as_str().unwrap_or_default().to_string();
        let cluster = self.0.cluster(diags).await?;
        match cluster.get_storage_class(&name).await {
            Ok(Some(info)) => Some(state_of(&info, state)),
            // Deleted behind Terraform's back: dropping it from state makes the next plan create it.
            Ok(None) => None,
            Err(e) => {
                cluster_error(&e, None, diags);
                Some(state.clone())
            }
        }
    }

    async fn update(
        &self,
        _ctx: &Context,
        _prior: &Value,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let spec = match spec_of(planned) {
            Ok(s) => s,
            Err((attr, msg)) => {
                diags.attr_error(AttributePath::attr(attr), "Invalid value", msg);
                return None;
            }
        };
        let cluster = self.0.cluster(diags).await?;
        match cluster.update_storage_class(&spec).await {
            Ok(info) => Some(state_of(&info, planned)),
            Err(e) => {
                cluster_error(&e, None, diags);
                None
            }
        }
    }

    async fn delete(
        &self,
        _ctx: &Context,
        prior: &Value,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let name = prior.get("name").as_str().unwrap_or_default();
        let Some(cluster) = self.0.cluster(diags).await else {
            return;
        };
        // Already gone counts as deleted; volumes provisioned from the class are not affected.
        if let Err(e) = cluster.delete_storage_class(name).await {
            cluster_error(&e, None, diags);
        }
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        if let Err(e) = validate_dns1123_subdomain(id) {
            diags.error(
                "Invalid import ID",
                format!("Import a StorageClass by its name. {e}"),
            );
            return None;
        }
        Some(Value::object([("name", Value::string(id))]))
    }
}

/// Plan-time checks of a self-hosted `cloud` and the `ceph_*` attributes, each diagnostic on the
/// attribute to fix.
fn validate_self_hosted(config: &Value, backend: Option<SelfHosted>, diags: &mut Diagnostics) {
    let cloud = config.get("cloud");
    let Some(b) = backend else {
        // gcp / aws / none: the ceph_* attributes mean nothing there.
        if cloud.is_unknown() {
            return;
        }
        for (_, attr) in CEPH_ATTRS {
            if !config.get(attr).is_null() {
                diags.attr_error(
                    AttributePath::attr(attr),
                    "Attribute needs a Ceph cloud",
                    format!("`{attr}` is only used with `cloud` = \"ceph-rbd\" or \"cephfs\"; remove it or set `cloud`."),
                );
            }
        }
        return;
    };
    let name = b.as_str();
    if !config.get("tier").is_null() {
        diags.attr_error(
            AttributePath::attr("tier"),
            "Tier with a self-hosted cloud",
            format!("`tier` picks a disk type on `cloud` = \"gcp\" or \"aws\"; `cloud` = {name:?} has no tiers (its volumes go where `ceph_*` say). Remove `tier`."),
        );
    }
    if b == SelfHosted::LocalPath && config.get("volume_binding_mode").as_str() == Some("Immediate")
    {
        diags.attr_error(
            AttributePath::attr("volume_binding_mode"),
            "local-path needs WaitForFirstConsumer",
            "The local-path provisioner creates the volume on the node of the first pod using the claim, so it cannot provision before a pod is scheduled. Use \"WaitForFirstConsumer\" (the default).",
        );
    }
    if !config.get("parameters").is_null() {
        // Explicit parameters replace the preset's; the ceph_* values are then read from them.
        return;
    }
    let Some(target) = ceph_target_of(config) else {
        return;
    };
    for problem in check_target(b, &target) {
        let (field, missing) = match &problem {
            PresetError::Missing { field, .. } => (*field, true),
            PresetError::Unused { field, .. } => (*field, false),
        };
        let attr = CEPH_ATTRS
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, a)| *a)
            .unwrap_or("cloud");
        let what = match attr {
            "ceph_cluster_id" => {
                "the Ceph cluster ID (with Rook, the CephCluster's namespace, e.g. \"rook-ceph\")"
            }
            "ceph_pool" => "the CephBlockPool the images go to (e.g. \"replicapool\")",
            _ => "the CephFilesystem (e.g. \"myfs\")",
        };
        if missing {
            diags.attr_error(
                AttributePath::attr(attr),
                format!("Missing {attr}"),
                format!("`cloud` = {name:?} needs `{attr}`: {what}."),
            );
        } else {
            diags.attr_error(
                AttributePath::attr(attr),
                format!("{attr} not used by {name}"),
                format!("`cloud` = {name:?} does not use `{attr}`; remove it."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn preset_only_when_tier_and_cloud_known() {
        let c = config(&[("tier", "ssd".into()), ("cloud", "gcp".into())]);
        let (p, params) = preset_of(&c).expect("preset");
        assert_eq!(p, "kubernetes.io/gce-pd");
        assert_eq!(params["type"], "pd-ssd");
        assert!(preset_of(&config(&[("tier", "ssd".into())])).is_none());
        assert!(preset_of(&config(&[("tier", "fast".into()), ("cloud", "gcp".into())])).is_none());
        assert!(preset_of(&config(&[
            ("tier", Value::unknown()),
            ("cloud", "gcp".into())
        ]))
        .is_none());
    }

    #[test]
    fn inferred_tier_round_trips_every_preset() {
        for (t, tier) in [("ssd", Tier::Ssd), ("standard", Tier::Standard)] {
            for (c, cloud) in [("gcp", Cloud::Gcp), ("aws", Cloud::Aws)] {
                let (p, mut params) = tier_preset(cloud, tier);
                params.insert("replication-type".into(), "regional-pd".into());
                assert_eq!(infer_preset(p, &params), Some((Some(t), c)));
            }
        }
        let params = BTreeMap::from([("type".to_string(), "io2".to_string())]);
        assert_eq!(infer_preset("ebs.csi.aws.com", &params), None);
        assert_eq!(infer_preset("x.csi", &BTreeMap::new()), None);
        assert_eq!(
            infer_preset("rancher.io/local-path", &BTreeMap::new()),
            Some((None, "local-path"))
        );
    }

    #[test]
    fn self_hosted_presets_fill_provisioner_and_parameters() {
        let c = config(&[
            ("cloud", "ceph-rbd".into()),
            ("ceph_cluster_id", "rook-ceph".into()),
            ("ceph_pool", "replicapool".into()),
        ]);
        let (p, params) = preset_of(&c).expect("preset");
        assert_eq!(p, "rook-ceph.rbd.csi.ceph.com");
        assert_eq!(params["pool"], "replicapool");
        let c = config(&[
            ("cloud", "cephfs".into()),
            ("ceph_cluster_id", "rook-ceph".into()),
            ("ceph_fs_name", Value::unknown()),
        ]);
        assert!(preset_of(&c).is_none(), "unknown fs name: no preset yet");
        let (p, params) = preset_of(&config(&[("cloud", "local-path".into())])).expect("preset");
        assert_eq!((p, params.len()), ("rancher.io/local-path", 0));
    }

    /// The diagnostics a configuration gets, as (attribute path, summary).
    async fn problems(pairs: &[(&str, Value)]) -> Vec<(String, String)> {
        let sc = StorageClass(Shared::default());
        let mut d = Diagnostics::new();
        let mut c = vec![("name", Value::from("x"))];
        c.extend(pairs.iter().cloned());
        sc.validate(&Context::default(), &config(&c), &mut d).await;
        d.iter()
            .map(|x| (format!("{:?}", x.attribute), x.summary.clone()))
            .collect()
    }

    #[tokio::test]
    async fn self_hosted_presets_name_what_is_missing_at_plan_time() {
        let p = problems(&[("cloud", "ceph-rbd".into())]).await;
        assert!(
            p.iter()
                .any(|(a, s)| a.contains("ceph_cluster_id") && s.contains("Missing")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|(a, s)| a.contains("ceph_pool") && s.contains("Missing")),
            "{p:?}"
        );
        assert!(
            !p.iter().any(|(a, _)| a.contains("\"provisioner\"")),
            "{p:?}"
        );

        let p = problems(&[
            ("cloud", "cephfs".into()),
            ("ceph_cluster_id", "rook-ceph".into()),
        ])
        .await;
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].0.contains("ceph_fs_name"), "{p:?}");

        let p = problems(&[
            ("cloud", "local-path".into()),
            ("volume_binding_mode", "Immediate".into()),
        ])
        .await;
        assert!(
            p.iter().any(|(a, _)| a.contains("volume_binding_mode")),
            "{p:?}"
        );
        let p = problems(&[("cloud", "local-path".into()), ("ceph_pool", "x".into())]).await;
        assert!(p.iter().any(|(a, _)| a.contains("ceph_pool")), "{p:?}");
        let p = problems(&[("cloud", "local-path".into()), ("tier", "ssd".into())]).await;
        assert!(
            p.iter()
                .any(|(a, s)| a.contains("tier") && s.contains("self-hosted")),
            "{p:?}"
        );
        let p = problems(&[
            ("tier", "ssd".into()),
            ("cloud", "aws".into()),
            ("ceph_pool", "x".into()),
        ])
        .await;
        assert!(p.iter().any(|(a, _)| a.contains("ceph_pool")), "{p:?}");
        // Another Rook operator namespace's driver is the same backend, not a conflict.
        let p = problems(&[
            ("cloud", "ceph-rbd".into()),
            ("provisioner", "storage.rbd.csi.ceph.com".into()),
            ("ceph_cluster_id", "storage".into()),
            ("ceph_pool", "replicapool".into()),
        ])
        .await;
        assert!(p.is_empty(), "{p:?}");
        let p = problems(&[("cloud", "local-path".into())]).await;
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn empty_collections_keep_their_written_form() {
        let mut spec = StorageClassSpec::new("a", "p");
        spec.labels.insert("k".into(), "v".into());
        let info = StorageClassInfo {
            spec,
            uid: "u".into(),
            resource_version: "1".into(),
        };
        let prev = config(&[("annotations", Value::Map(BTreeMap::new()))]);
        let s = state_of(&info, &prev);
        assert!(s.get("mount_options").is_null());
        assert_eq!(s.get("annotations"), &Value::Map(BTreeMap::new()));
        assert_eq!(s.get("labels"), &Value::string_map([("k", "v")]));
        assert_eq!(s.get("parameters"), &Value::Map(BTreeMap::new()));
        let back = spec_of(&s).expect("spec");
        assert_eq!(back, info.spec);
    }

    #[tokio::test]
    async fn validate_names_the_attributes() {
        let sc = StorageClass(Shared::default());
        let ctx = Context::default();
        let mut d = Diagnostics::new();
        sc.validate(&ctx, &config(&[("name", "x".into())]), &mut d)
            .await;
        let paths: Vec<String> = d.iter().map(|x| format!("{:?}", x.attribute)).collect();
        assert!(paths.iter().any(|p| p.contains("provisioner")), "{paths:?}");

        let mut d = Diagnostics::new();
        let c = config(&[
            ("provisioner", "ebs.csi.aws.com".into()),
            ("tier", "ssd".into()),
            ("cloud", "gcp".into()),
        ]);
        sc.validate(&ctx, &c, &mut d).await;
        let detail: Vec<String> = d.iter().map(|x| x.detail.clone()).collect();
        assert!(
            detail.iter().any(|t| t.contains("`tier`")
                && t.contains("`provisioner`")
                && t.contains("ebs.csi.aws.com")),
            "{detail:?}"
        );
    }
}

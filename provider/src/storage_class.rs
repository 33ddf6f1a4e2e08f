//! `testnet_storage_class`: a Kubernetes StorageClass, with `tier`/`cloud` presets so testnet
//! operators pick "ssd" or "standard" instead of each cloud's provisioner and disk type names.
//!
//! Immutable fields (provisioner, parameters, reclaim policy, binding mode) plan a replacement;
//! everything else updates in place. Planning never contacts the cluster, so it works while the
//! provider configuration is still unknown.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster::{
    tier_preset, validate_dns1123_subdomain, Cloud, ReclaimPolicy, StorageClassInfo,
    StorageClassSpec, Tier, TopologyTerm, VolumeBindingMode,
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
const CLOUDS: [&str; 2] = ["gcp", "aws"];

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

/// The preset for known `tier` and `cloud` values; `None` while either is null, unknown or invalid
/// (validation reports the invalid ones).
fn preset_of(v: &Value) -> Option<(&'static str, BTreeMap<String, String>)> {
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
) -> Option<(&'static str, &'static str)> {
    cluster::infer_preset(provisioner, parameters).map(|(t, c)| (t.as_str(), c.as_str()))
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
            Some((t, c)) => (Value::string(t), Value::string(c)),
            None => (Value::Null, Value::Null),
        }
    } else {
        (prev.get("tier").clone(), prev.get("cloud").clone())
    };
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
                        .describe("Cloud for the `tier` preset: `gcp` (gce-pd: `pd-ssd`/`pd-standard`) or `aws` (EBS CSI: `gp3`/`st1`). Required when `tier` is set. When omitted, shows the cloud the provisioner corresponds to (null if none)."),
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
        if prov.is_null() && tier.is_null() {
            diags.attr_error(
                AttributePath::attr("provisioner"),
                "Missing provisioner",
                "Set either `provisioner` (e.g. \"ebs.csi.aws.com\") or `tier` (\"ssd\" or \"standard\", with `cloud`).",
            );
        }
        if !tier.is_null() && cloud.is_null() {
            diags.attr_error(
                AttributePath::attr("cloud"),
                "Missing cloud for tier",
                "`tier` needs `cloud` (\"gcp\" or \"aws\") to choose the provisioner and disk type.",
            );
        }
        if let (Some(p), Some((preset, _))) = (prov.as_str(), preset_of(config)) {
            if p != preset {
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
        // Omitted tier/cloud show what the planned provisioner and parameters correspond to.
        let (prov, params) = (
            plan.planned.get("provisioner"),
            plan.planned.get("parameters"),
        );
        let inferred = (prov.is_wholly_known() && params.is_wholly_known())
            .then(|| infer_preset(prov.as_str().unwrap_or_default(), &params.to_string_map()));
        for (i, attr) in ["tier", "cloud"].into_iter().enumerate() {
            if plan.config.get(attr).is_null() {
                let v = match inferred {
                    Some(Some(tc)) => Value::string(if i == 0 { tc.0 } else { tc.1 }),
                    Some(None) => Value::Null,
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
                assert_eq!(infer_preset(p, &params), Some((t, c)));
            }
        }
        let params = BTreeMap::from([("type".to_string(), "io2".to_string())]);
        assert_eq!(infer_preset("ebs.csi.aws.com", &params), None);
        assert_eq!(infer_preset("x.csi", &BTreeMap::new()), None);
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

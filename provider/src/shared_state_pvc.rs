//! `testnet_shared_state_pvc`: a PersistentVolumeClaim holding a testnet's shared state.
//!
//! Storage is compared by bytes (`10Gi` and `10240Mi` are the same claim). Growing happens in
//! place only where Kubernetes can do it (a bound claim on a class that allows expansion);
//! everything else that would lose data is refused at plan time instead of replacing the claim.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tfplug::schema::validators::{from_fn, one_of};
use tfplug::schema::Nesting;
use tfplug::{
    Attribute, AttributePath, Block, Context, Diagnostics, PlanChange, Private, Resource, Schema,
    Value,
};

use crate::config::Shared;
use crate::convert::{cluster_error, parse_duration};
use crate::pvc_restore;

pub struct SharedStatePvc(pub Shared);

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(2 * 60);
const COST: &str = "estimated_monthly_cost_usd";
const ALL_ATTRS: [&str; 24] = [
    "id",
    "namespace",
    "create_namespace",
    "name",
    "testnet",
    "role",
    "labels",
    "annotations",
    "access_modes",
    "storage",
    "storage_class_name",
    "volume_mode",
    "volume_name",
    "data_source",
    "selector",
    "timeouts",
    "phase",
    "bound_volume",
    "capacity",
    "uid",
    COST,
    "restore_from",
    "job",
    pvc_restore::RESTORED,
];
const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

fn timeout(state: &Value, which: &str, default: Duration) -> Duration {
    state
        .get("timeouts")
        .get(which)
        .as_str()
        .and_then(|s| parse_duration(s).ok())
        .unwrap_or(default)
}

fn str_attr(v: &Value, name: &str) -> Option<String> {
    v.get(name).as_str().map(str::to_string)
}

/// Builds the domain spec from a fully known planned value; diagnostics name the attribute.
fn claim_spec(v: &Value, diags: &mut Diagnostics) -> Option<cluster::ClaimSpec> {
    let storage_text = v.get("storage").as_str().unwrap_or_default();
    let storage = match cluster::parse_quantity(storage_text) {
        Ok(q) => q,
        Err(e) => {
            diags.attr_error(
                AttributePath::attr("storage"),
                "Invalid storage quantity",
                e.to_string(),
            );
            return None;
        }
    };
    let mut access_modes = Vec::new();
    for m in v.get("access_modes").to_string_vec() {
        match m.parse::<cluster::AccessMode>() {
            Ok(a) => access_modes.push(a),
            Err(e) => {
                diags.attr_error(
                    AttributePath::attr("access_modes"),
                    "Invalid access mode",
                    e.to_string(),
                );
                return None;
            }
        }
    }
    let volume_mode = match v.get("volume_mode").as_str() {
        Some(s) => match s.parse::<cluster::VolumeMode>() {
            Ok(m) => Some(m),
            Err(e) => {
                diags.attr_error(
                    AttributePath::attr("volume_mode"),
                    "Invalid volume mode",
                    e.to_string(),
                );
                return None;
            }
        },
        None => None,
    };
    let ds = v.get("data_source");
    let data_source = (!ds.is_null()).then(|| cluster::DataSource {
        kind: str_attr(ds, "kind").unwrap_or_default(),
        name: str_attr(ds, "name").unwrap_or_default(),
        api_group: str_attr(ds, "api_group"),
    });
    let sel = v.get("selector");
    let selector = (!sel.is_null()).then(|| cluster::VolumeSelector {
        match_labels: sel.get("match_labels").to_string_map(),
        match_expressions: Vec::new(),
    });
    Some(cluster::ClaimSpec {
        namespace: str_attr(v, "namespace").unwrap_or_default(),
        name: str_attr(v, "name").unwrap_or_default(),
        network: str_attr(v, "testnet"),
        role: str_attr(v, "role"),
        labels: v.get("labels").to_string_map(),
        annotations: v.get("annotations").to_string_map(),
        access_modes,
        storage,
        storage_class_name: str_attr(v, "storage_class_name"),
        volume_mode,
        volume_name: str_attr(v, "volume_name"),
        data_source,
        selector,
    })
}

/// The user-visible map from the server's, keeping what the user manages: labels lose the ones
/// the provider adds; annotations keep only keys the user set (servers add their own).
fn user_map(server: &BTreeMap<String, String>, prior: &Value, only_prior_keys: bool) -> Value {
    let prior_map = prior.to_string_map();
    let m: BTreeMap<String, String> = server
        .iter()
        .filter(|(k, _)| {
            if only_prior_keys {
                prior_map.contains_key(*k)
            } else {
                ![
                    cluster::LABEL_NETWORK,
                    cluster::LABEL_ROLE,
                    cluster::LABEL_MANAGED_BY,
                ]
                .contains(&k.as_str())
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if m.is_empty() && prior.is_null() {
        Value::Null
    } else {
        Value::string_map(m)
    }
}

/// New state from the prior/planned value and the claim as the server holds it. Attributes the
/// server fills in on its own (class, volume name, mode) keep the configured value unless this
/// is an import, where everything comes from the server.
fn state_from(base: &Value, status: &cluster::ClaimStatus) -> Value {
    let importing = base.get("storage").is_null();
    let mut s = base.clone();
    s.set(
        "id",
        Value::string(format!("{}/{}", status.namespace, status.name)),
    );
    s.set("namespace", Value::string(&status.namespace));
    s.set("name", Value::string(&status.name));
    if let Some(req) = status.requested {
        let same = base
            .get("storage")
            .as_str()
            .and_then(|t| cluster::parse_quantity(t).ok())
            .is_some_and(|q| q == req);
        if !same {
            s.set("storage", Value::string(req.to_string()));
        }
    }
    let network = status.labels.get(cluster::LABEL_NETWORK).cloned();
    let role = status.labels.get(cluster::LABEL_ROLE).cloned();
    s.set("testnet", Value::opt_string(network));
    s.set("role", Value::opt_string(role));
    s.set(
        "labels",
        user_map(&status.labels, base.get("labels"), false),
    );
    s.set(
        "annotations",
        user_map(&status.annotations, base.get("annotations"), !importing),
    );
    if importing {
        s.set(
            "access_modes",
            Value::string_list(status.access_modes.clone()),
        );
        s.set(
            "storage_class_name",
            Value::opt_string(status.storage_class_name.clone()),
        );
        s.set("volume_mode", Value::opt_string(status.volume_mode.clone()));
        s.set("create_namespace", Value::Bool(false));
    }
    s.set("phase", Value::string(&status.phase));
    s.set(
        "bound_volume",
        Value::opt_string(status.bound_volume.clone()),
    );
    s.set(
        "capacity",
        Value::opt_string(status.capacity.map(|q| q.to_string())),
    );
    s.set("uid", Value::string(&status.uid));
    s
}

/// A claim's cost estimate, as far as it can be known now.
enum Cost {
    /// USD per month.
    Usd(f64),
    /// No price applies; the text says why and what to do.
    Unpriced(String),
    /// Not knowable yet (unknown inputs, or a class that does not exist until apply).
    Unknown,
}

fn cost_value(c: f64) -> Value {
    if c.fract() == 0.0 && c.abs() < 9e15 {
        Value::int(c as i64)
    } else {
        Value::Number(tfplug::Number::Float(c))
    }
}

fn unpriced_warning(detail: String, diags: &mut Diagnostics) {
    diags.attr_warning(
        AttributePath::attr("storage_class_name"),
        "No storage price for this claim's class",
        detail,
    );
}

/// Metadata as this resource wrote it: user labels plus network, role and managed-by.
fn written_labels(v: &Value) -> BTreeMap<String, String> {
    let mut l = v.get("labels").to_string_map();
    if let Some(n) = v.get("testnet").as_str() {
        l.insert(cluster::LABEL_NETWORK.into(), n.into());
    }
    if let Some(r) = v.get("role").as_str() {
        l.insert(cluster::LABEL_ROLE.into(), r.into());
    }
    l.insert(cluster::LABEL_MANAGED_BY.into(), cluster::MANAGED_BY.into());
    l
}

impl SharedStatePvc {
    /// The estimate for a planned or stored claim. `at_apply`: the class must exist by now, so a
    /// missing one is unpriced rather than unknown. Cluster errors give `Unknown` (never an error:
    /// a figure is not worth failing a plan or apply over).
    async fn estimate(&self, v: &Value, at_apply: bool) -> Cost {
        let settings = self.0.settings();
        let Some(prices) = settings.storage_prices.as_ref() else {
            return Cost::Unknown;
        };
        let storage = match v.get("storage") {
            Value::String(t) => match cluster::parse_quantity(t) {
                Ok(q) => q,
                Err(_) => return Cost::Unknown,
            },
            _ => return Cost::Unknown,
        };
        let class = match v.get("storage_class_name") {
            Value::String(c) => Some(c.clone()),
            Value::Null => None,
            _ => return Cost::Unknown,
        };
        if let Some(p) = class.as_deref().and_then(|c| prices.by_name(c)) {
            return Cost::Usd(cluster::monthly_cost(storage, p.usd_per_gib_month));
        }
        let keys = prices.keys().collect::<Vec<_>>().join(", ");
        let unknown_or_null = |why: String| {
            if at_apply {
                Cost::Unpriced(why)
            } else {
                Cost::Unknown
            }
        };
        if !settings.known {
            return Cost::Unknown;
        }
        let mut quiet = Diagnostics::default();
        // Connection problems are reported by the claim's own calls, not by its estimate.
        let Some(cl) = self.0.cluster(&mut quiet).await else {
            return Cost::Unknown;
        };
        let found = match class.as_deref() {
            Some(c) => cl.get_storage_class(c).await,
            None => cl.default_storage_class().await,
        };
        let shown = class
            .as_deref()
            .map(|c| format!("storage class {c:?}"))
            .unwrap_or_else(|| "the cluster's default storage class".into());
        match found {
            Ok(Some(info)) => match prices.by_class(&info) {
                Some(p) => Cost::Usd(cluster::monthly_cost(storage, p.usd_per_gib_month)),
                None => Cost::Unpriced(format!(
                    "estimated_monthly_cost_usd is null: {shown} ({:?}, provisioner {:?}) matches no key of the provider's storage_prices ({keys}) by name, name suffix, `{}` label or provisioner preset. Add `storage_prices = {{ \"{}\" = <USD per GiB-month> }}` to the provider block, or label the class `{}`.",
                    info.spec.name,
                    info.spec.provisioner,
                    cluster::LABEL_TIER,
                    info.spec.name,
                    cluster::LABEL_TIER,
                )),
            },
            Ok(None) => match class {
                // Created later in this apply, perhaps: known after apply.
                Some(c) => unknown_or_null(format!(
                    "estimated_monthly_cost_usd is null: storage class {c:?} matches no key of the provider's storage_prices ({keys}) and does not exist in the cluster. Add `storage_prices = {{ \"{c}\" = <USD per GiB-month> }}` to the provider block."
                )),
                None => Cost::Unpriced(
                    "estimated_monthly_cost_usd is null: the claim sets no storage_class_name and the cluster has no default storage class to price. Set storage_class_name.".into(),
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, class = %shown, "cannot read the storage class for the cost estimate");
                Cost::Unknown
            }
        }
    }

    /// Fills an estimate left unknown by the plan; warns when none applies.
    async fn settle_cost(&self, state: &mut Value, diags: &mut Diagnostics) {
        if !state.get(COST).is_unknown() {
            return;
        }
        match self.estimate(state, true).await {
            Cost::Usd(c) => state.set(COST, cost_value(c)),
            Cost::Unpriced(detail) => {
                unpriced_warning(detail, diags);
                state.set(COST, Value::Null);
            }
            Cost::Unknown => state.set(COST, Value::Null),
        }
    }
}

fn name_validator(label: bool) -> impl tfplug::schema::Validator {
    let doc = if label {
        "A DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 characters."
    } else {
        "A DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 253 characters."
    };
    from_fn(doc, move |v: &Value| {
        let Some(s) = v.as_str() else { return Ok(()) };
        let r = if label {
            cluster::validate_dns1123_label(s)
        } else {
            cluster::validate_dns1123_subdomain(s)
        };
        r.map_err(|e| e.to_string())
    })
}

#[async_trait]
impl Resource for SharedStatePvc {
    fn type_name(&self) -> &'static str {
        "testnet_shared_state_pvc"
    }

    fn schema(&self) -> Schema {
        let s = |n: &str| Attribute::string(n);
        Schema::new(
            Block::new()
                .describe("A PersistentVolumeClaim that holds a testnet's shared state (genesis, keys, chain data) in a Kubernetes namespace. Storage grows in place when Kubernetes allows it; shrinking is refused at plan time.")
                .attr(s("id").computed().use_state_for_unknown().describe("`namespace/name` of the claim (the import ID)."))
                .attr(s("namespace").required().requires_replace().validate(name_validator(true)).describe("Namespace of the claim (DNS-1123 label). Changing it replaces the claim."))
                .attr(Attribute::bool("create_namespace").default(Value::Bool(false)).describe("Create `namespace` if it does not exist. The namespace is never deleted by this resource."))
                .attr(s("name").required().requires_replace().validate(name_validator(false)).describe("Name of the claim (DNS-1123 subdomain). Changing it replaces the claim."))
                .attr(s("testnet").optional().describe("Network name, written as label `testnet.io/network`. Updates in place."))
                .attr(s("role").optional().describe("Role of the claim, written as label `testnet.io/role`. Updates in place."))
                .attr(Attribute::string_map("labels").optional().describe("Extra labels on the claim. The provider also sets `app.kubernetes.io/managed-by`. Updates in place (one merge patch; the claim and its data stay): a label removed here is removed from the claim. Labels added outside Terraform show as drift and are removed on the next apply."))
                .attr(Attribute::string_map("annotations").optional().describe("Annotations on the claim. Annotations added by Kubernetes are ignored. Updates in place: an annotation removed here is removed from the claim."))
                .attr(
                    Attribute::string_list("access_modes")
                        .default(Value::string_list(["ReadWriteOnce"]))
                        .requires_replace()
                        .validate(from_fn("Each one of `ReadWriteOnce`, `ReadOnlyMany`, `ReadWriteMany`, `ReadWriteOncePod`; at least one.", |v: &Value| {
                            let Value::List(items) = v else { return Ok(()) };
                            if items.is_empty() {
                                return Err(format!("at least one access mode is required. Allowed: {}.", ACCESS_MODES.join(", ")));
                            }
                            for m in items.iter().filter_map(Value::as_str) {
                                if !ACCESS_MODES.contains(&m) {
                                    return Err(format!("{m:?} is not an access mode. Allowed: {}.", ACCESS_MODES.join(", ")));
                                }
                            }
                            Ok(())
                        }))
                        .describe("Access modes (`ReadWriteOnce`, `ReadOnlyMany`, `ReadWriteMany`, `ReadWriteOncePod`). Default `[\"ReadWriteOnce\"]`. Changing them replaces the claim."),
                )
                .attr(
                    s("storage")
                        .required()
                        .validate(from_fn("A Kubernetes quantity such as `10Gi`, `500Mi` or `1T`.", |v: &Value| {
                            let Some(t) = v.as_str() else { return Ok(()) };
                            cluster::parse_quantity(t)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        }))
                        .describe("Requested size, a Kubernetes quantity (`10Gi`). Compared by bytes. Growing a bound claim on a class with `allow_volume_expansion` happens in place; growing an unbound claim replaces it (it holds no data yet); shrinking, or growing on a class without expansion, is a plan error."),
                )
                .attr(s("storage_class_name").optional().requires_replace().describe("StorageClass of the claim; the cluster default when unset. Changing it replaces the claim."))
                .attr(s("volume_mode").optional().requires_replace().validate(one_of(["Filesystem", "Block"])).describe("`Filesystem` (the Kubernetes default) or `Block`. Changing it replaces the claim."))
                .attr(s("volume_name").optional().requires_replace().describe("Bind to this existing PersistentVolume. Changing it replaces the claim."))
                .attr(
                    Attribute::nested(
                        "data_source",
                        Nesting::Single,
                        vec![
                            s("kind").required().describe("Kind of the source, e.g. `VolumeSnapshot` or `PersistentVolumeClaim`."),
                            s("name").required().describe("Name of the source object in the claim's namespace."),
                            s("api_group").optional().describe("API group of the source, e.g. `snapshot.storage.k8s.io`; unset for core kinds."),
                        ],
                    )
                    .optional()
                    .requires_replace()
                    .describe("Populate the new volume from a snapshot or another claim. Changing it replaces the claim."),
                )
                .attr(
                    Attribute::nested("selector", Nesting::Single, vec![Attribute::string_map("match_labels").optional().describe("Labels a PersistentVolume must carry to be bound.")])
                        .optional()
                        .requires_replace()
                        .describe("Restrict binding to PersistentVolumes with these labels. Changing it replaces the claim."),
                )
                .attr(
                    Attribute::nested(
                        "timeouts",
                        Nesting::Single,
                        vec![
                            s("create").optional().validate(from_fn("A duration such as `5m`.", |v: &Value| v.as_str().map_or(Ok(()), |t| parse_duration(t).map(|_| ())))).describe("How long to wait for the claim to be ready (default `5m`)."),
                            s("delete").optional().validate(from_fn("A duration such as `2m`.", |v: &Value| v.as_str().map_or(Ok(()), |t| parse_duration(t).map(|_| ())))).describe("How long to wait for pods to release the claim on delete (default `2m`)."),
                        ],
                    )
                    .optional()
                    .describe("Wait limits for create and delete."),
                )
                .attr(s("phase").computed().describe("Phase reported by Kubernetes: `Pending`, `Bound` or `Lost`."))
                .attr(s("bound_volume").computed().describe("Name of the PersistentVolume the claim is bound to, once bound."))
                .attr(s("capacity").computed().describe("Capacity of the bound volume (may exceed `storage`)."))
                .attr(s("uid").computed().describe("Kubernetes UID of the claim."))
                .attr(
                    Attribute::number(COST)
                        .computed()
                        .describe("Estimated monthly cost of the requested storage in USD: `storage` in GiB (`10Gi` = 10, `500Mi` = 0.48828125, `1G` = 0.931…) times the price of the claim's storage class from the provider's `storage_prices` (defaults `ssd` 0.17, `standard` 0.04 USD per GiB-month), rounded to a millionth of a dollar. Known at plan time when `storage` and `storage_class_name` are known and the class is priced by its name (exact key, or a `-ssd`/`-standard`-style suffix); otherwise the class is looked up in the cluster (its `testnet.io/tier` label or its provisioner preset), which for a class created in the same apply makes the estimate known after apply. Without `storage_class_name` the cluster's default class is priced. Null, with a warning, when no price applies: add the class name to `storage_prices`. Sum it over claims for a testnet's storage bill (skip nulls)."),
                )
                .attr(pvc_restore::restored_attr())
                .block(pvc_restore::restore_from_block())
                .block(pvc_restore::job_block()),
        )
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        pvc_restore::validate(config, diags);
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, diags: &mut Diagnostics) {
        if plan.is_destroy() {
            return;
        }
        self.plan_claim(plan, diags).await;
        pvc_restore::plan(plan, diags);
    }

    async fn create(
        &self,
        ctx: &Context,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let spec = claim_spec(planned, diags)?;
        let restore = if planned.get("restore_from").is_null() {
            None
        } else {
            Some(pvc_restore::prepare(&self.0, planned, diags).await?)
        };
        let cluster = self.0.cluster(diags).await?;
        if planned.get("create_namespace").as_bool() == Some(true) {
            if let Err(e) = cluster
                .ensure_namespace(&spec.namespace, &BTreeMap::new())
                .await
            {
                cluster_error(&e, Some("namespace"), diags);
                return None;
            }
        }
        let created = match cluster.create_claim(&spec).await {
            Ok(c) => c,
            Err(e) => {
                let attr = match &e {
                    cluster::ClusterError::AlreadyExists { .. } => Some("name"),
                    cluster::ClusterError::NotFound { .. } => Some("namespace"),
                    _ => None,
                };
                cluster_error(&e, attr, diags);
                return None;
            }
        };
        let limit = timeout(planned, "create", DEFAULT_CREATE_TIMEOUT);
        match cluster
            .wait_ready(&spec.namespace, &spec.name, limit, &ctx.cancel)
            .await
        {
            Ok(ready) => {
                let mut state = state_from(planned, &ready);
                if let Some(prepared) = &restore {
                    // A WaitForFirstConsumer claim is Pending here: the Job's pod binds it.
                    let Some(sha) = pvc_restore::run(&self.0, ctx, prepared, diags).await else {
                        return self.discard(&cluster, planned, state, diags).await;
                    };
                    state.set(pvc_restore::RESTORED, Value::string(sha));
                    match cluster.get_claim(&spec.namespace, &spec.name).await {
                        Ok(Some(now)) => state = state_from(&state, &now),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot re-read the restored claim"),
                    }
                }
                self.settle_cost(&mut state, diags).await;
                Some(state)
            }
            Err(e) => {
                cluster_error(&e, None, diags);
                let mut state = state_from(planned, &created);
                state.set(pvc_restore::RESTORED, Value::Null);
                if restore.is_some() {
                    // Never restored: not kept, like a failed restore.
                    return self.discard(&cluster, planned, state, diags).await;
                }
                // The claim exists: return it so Terraform records (and taints) it.
                self.settle_cost(&mut state, diags).await;
                Some(state)
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
        let cluster = self.0.cluster(diags).await?;
        let ns = state.get("namespace").as_str().unwrap_or_default();
        let name = state.get("name").as_str().unwrap_or_default();
        match cluster.get_claim(ns, name).await {
            Ok(Some(c)) if !c.deleting => {
                let mut fresh = state_from(state, &c);
                // Prices or the class may have changed since: the estimate follows them, quietly
                // (plan warns); a failed lookup keeps the stored figure.
                match self.estimate(&fresh, true).await {
                    Cost::Usd(x) => fresh.set(COST, cost_value(x)),
                    Cost::Unpriced(_) => fresh.set(COST, Value::Null),
                    Cost::Unknown => {}
                }
                Some(fresh)
            }
            Ok(_) => None,
            Err(e) => {
                cluster_error(&e, None, diags);
                Some(state.clone())
            }
        }
    }

    async fn update(
        &self,
        _ctx: &Context,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let spec = claim_spec(planned, diags)?;
        let cluster = self.0.cluster(diags).await?;
        let (old_labels, new_labels) = (written_labels(prior), spec.effective_labels());
        let old_annotations = prior.get("annotations").to_string_map();
        if old_labels != new_labels || old_annotations != spec.annotations {
            let patch = cluster::MetadataPatch::between(
                &old_labels,
                &new_labels,
                &old_annotations,
                &spec.annotations,
            );
            if let Err(e) = cluster
                .patch_claim_metadata(&spec.namespace, &spec.name, &patch)
                .await
            {
                cluster_error(&e, Some("labels"), diags);
                return None;
            }
        }
        let old = prior
            .get("storage")
            .as_str()
            .and_then(|t| cluster::parse_quantity(t).ok());
        let status = if old != Some(spec.storage) {
            match cluster
                .resize_claim(&spec.namespace, &spec.name, spec.storage)
                .await
            {
                Ok(s) => {
                    // The request is stored; the volume grows only when the storage's resizer
                    // acts (never, for storage without one), which `capacity` will show.
                    if s.capacity.is_some_and(|c| c < spec.storage) {
                        diags.warning(
                            "Volume not grown yet",
                            format!(
                                "{}/{} now requests {}; its volume still has {}. The storage behind class {:?} grows it when its resizer handles the claim (some need the pod restarted; storage without a resizer never does, see the claim's events). `capacity` shows the size the volume has.",
                                spec.namespace,
                                spec.name,
                                spec.storage,
                                s.capacity.map(|c| c.to_string()).unwrap_or_default(),
                                s.storage_class_name.clone().unwrap_or_default(),
                            ),
                        );
                    }
                    s
                }
                Err(e) => {
                    cluster_error(&e, Some("storage"), diags);
                    return None;
                }
            }
        } else {
            match cluster.get_claim(&spec.namespace, &spec.name).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    diags.error("Claim disappeared", format!("{}/{} was deleted outside Terraform during the update; run terraform apply again to recreate it.", spec.namespace, spec.name));
                    return None;
                }
                Err(e) => {
                    cluster_error(&e, None, diags);
                    return None;
                }
            }
        };
        let mut state = state_from(planned, &status);
        self.settle_cost(&mut state, diags).await;
        Some(state)
    }

    async fn delete(
        &self,
        ctx: &Context,
        prior: &Value,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let Some(cluster) = self.0.cluster(diags).await else {
            return;
        };
        let ns = prior.get("namespace").as_str().unwrap_or_default();
        let name = prior.get("name").as_str().unwrap_or_default();
        let limit = timeout(prior, "delete", DEFAULT_DELETE_TIMEOUT);
        if let Err(e) = cluster.delete_claim(ns, name, limit, &ctx.cancel).await {
            cluster_error(&e, None, diags);
        }
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let parts: Vec<&str> = id.split('/').collect();
        let [ns, name] = parts.as_slice() else {
            diags.error("Invalid import ID", format!("{id:?} is not `namespace/name`. Import a claim as e.g. `testnet-a/shared-state`."));
            return None;
        };
        if let Err(e) = cluster::validate_dns1123_label(ns) {
            diags.error(
                "Invalid import ID",
                format!("namespace {ns:?} in {id:?}: {e}. Expected `namespace/name`."),
            );
            return None;
        }
        if let Err(e) = cluster::validate_dns1123_subdomain(name) {
            diags.error(
                "Invalid import ID",
                format!("name {name:?} in {id:?}: {e}. Expected `namespace/name`."),
            );
            return None;
        }
        // Every attribute present (null) so the state conforms to the schema; `read` fills it.
        let mut v = Value::object(ALL_ATTRS.iter().map(|a| (*a, Value::Null)));
        v.set("id", Value::string(id));
        v.set("namespace", Value::string(*ns));
        v.set("name", Value::string(*name));
        Some(v)
    }
}

impl SharedStatePvc {
    /// After a failed restore: deletes the claim so that it is not recorded as holding the data,
    /// and the next apply creates and restores it again. Should deleting fail too, the claim is
    /// returned (with the error, so Terraform records it tainted and replaces it next time).
    async fn discard(
        &self,
        cluster: &cluster::Cluster,
        planned: &Value,
        mut state: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        state.set(pvc_restore::RESTORED, Value::Null);
        let ns = planned.get("namespace").as_str().unwrap_or_default();
        let name = planned.get("name").as_str().unwrap_or_default();
        let limit = timeout(planned, "delete", DEFAULT_DELETE_TIMEOUT);
        // Its own token: the user's interrupt may be why the restore failed, and the claim must
        // still go.
        let cancel = cluster::CancellationToken::new();
        match cluster.delete_claim(ns, name, limit, &cancel).await {
            Ok(_) => {
                tracing::info!(claim = %format!("{ns}/{name}"), "restore failed: claim deleted, not recorded");
                None
            }
            Err(e) => {
                cluster_error(&e, None, diags);
                diags.error(
                    "Claim kept as tainted after a failed restore",
                    format!("The restore into {ns}/{name} failed and deleting the claim failed too (above). The claim is recorded as tainted: the next apply replaces it."),
                );
                self.settle_cost(&mut state, diags).await;
                Some(state)
            }
        }
    }

    /// The claim's own plan: cost estimate, id, storage growth or refusal.
    async fn plan_claim(&self, plan: &mut PlanChange, diags: &mut Diagnostics) {
        match self.estimate(&plan.planned, false).await {
            Cost::Usd(c) => plan.planned.set(COST, cost_value(c)),
            Cost::Unpriced(detail) => {
                unpriced_warning(detail, diags);
                plan.planned.set(COST, Value::Null);
            }
            // Keep a known prior estimate when nothing changed; otherwise known after apply.
            Cost::Unknown => {}
        }
        if plan.is_create() {
            if let (Some(ns), Some(n)) = (
                plan.planned.get("namespace").as_str(),
                plan.planned.get("name").as_str(),
            ) {
                let id = format!("{ns}/{n}");
                plan.planned.set("id", Value::string(id));
            }
            return;
        }
        let (Some(old_t), Some(new_t)) = (
            plan.prior.get("storage").as_str(),
            plan.planned.get("storage").as_str(),
        ) else {
            return;
        };
        let (Ok(old), Ok(new)) = (
            cluster::parse_quantity(old_t),
            cluster::parse_quantity(new_t),
        ) else {
            return;
        };
        if old == new {
            // Same size, other spelling: keep the prior text so nothing changes.
            let keep = Value::string(old_t);
            plan.planned.set("storage", keep);
            if !plan.changed("storage")
                && ![
                    "testnet",
                    "role",
                    "labels",
                    "annotations",
                    "create_namespace",
                    "timeouts",
                ]
                .iter()
                .any(|a| plan.changed(a))
            {
                for c in ["phase", "bound_volume", "capacity", "uid"] {
                    let v = plan.prior.get(c).clone();
                    plan.planned.set(c, v);
                }
            }
            return;
        }
        if new < old {
            diags.attr_error(
                AttributePath::attr("storage"),
                "Storage cannot shrink",
                format!("The claim requests {old} ({} bytes); {new_t:?} is {} bytes. Kubernetes can only grow a claim. Keep storage at {old} or more; to get a smaller volume, create a new claim and copy the data.", old.bytes, new.bytes),
            );
            return;
        }
        // Growing: decided by the live claim and its class, when the provider can reach them.
        if !self.0.settings().known {
            return;
        }
        let Some(cluster) = self.0.cluster(diags).await else {
            return;
        };
        let (Some(ns), Some(name)) = (
            str_attr(&plan.prior, "namespace"),
            str_attr(&plan.prior, "name"),
        ) else {
            return;
        };
        let claim = match cluster.get_claim(&ns, &name).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                cluster_error(&e, Some("storage"), diags);
                return;
            }
        };
        if claim.phase != "Bound" {
            plan.replace_because("storage");
            diags.attr_warning(
                AttributePath::attr("storage"),
                "Claim will be replaced to grow it",
                format!("The claim {ns}/{name} is {} (not bound to a volume), and Kubernetes resizes only bound claims. An unbound claim holds no data, so it is replaced with one requesting {new}.", claim.phase),
            );
            return;
        }
        let class = claim.storage_class_name.clone().unwrap_or_default();
        match cluster.expansion_allowed(&class).await {
            Ok(true) => {}
            Ok(false) => diags.attr_error(
                AttributePath::attr("storage"),
                "Storage class does not allow expansion",
                format!("The claim {ns}/{name} is bound through storage class {class:?}, which does not set allowVolumeExpansion, so it cannot grow from {old} to {new}. Enable `allow_volume_expansion` on the class, or keep storage at {old}. The claim is not replaced because that would delete its data."),
            ),
            Err(e) => cluster_error(&e, Some("storage"), diags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        requested: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> cluster::ClaimStatus {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        cluster::ClaimStatus {
            namespace: "net1".into(),
            name: "shared".into(),
            uid: "u-1".into(),
            resource_version: "7".into(),
            phase: "Bound".into(),
            bound_volume: Some("pvc-u-1".into()),
            capacity: cluster::parse_quantity("2Gi").ok(),
            requested: cluster::parse_quantity(requested).ok(),
            access_modes: vec!["ReadWriteOnce".into()],
            storage_class_name: Some("fast".into()),
            volume_mode: Some("Filesystem".into()),
            labels: map(labels),
            annotations: map(annotations),
            finalizers: vec![],
            deleting: false,
        }
    }

    fn prior(storage: &str) -> Value {
        let mut v = Value::object(ALL_ATTRS.iter().map(|a| (*a, Value::Null)));
        v.set("namespace", Value::string("net1"));
        v.set("name", Value::string("shared"));
        v.set("storage", Value::string(storage));
        v.set("annotations", Value::string_map([("owner", "me")]));
        v
    }

    #[test]
    fn storage_compared_by_bytes_and_drift_reported() {
        let same = state_from(&prior("1024Mi"), &status("1Gi", &[], &[]));
        assert_eq!(same.get("storage").as_str(), Some("1024Mi"));
        let grown = state_from(&prior("1Gi"), &status("3Gi", &[], &[]));
        assert_eq!(grown.get("storage").as_str(), Some("3Gi"));
        assert_eq!(grown.get("capacity").as_str(), Some("2Gi"));
        assert_eq!(grown.get("id").as_str(), Some("net1/shared"));
    }

    #[test]
    fn provider_labels_and_server_annotations_are_not_drift() {
        let s = status(
            "1Gi",
            &[
                (cluster::LABEL_NETWORK, "ghostnet"),
                (cluster::LABEL_MANAGED_BY, cluster::MANAGED_BY),
                ("team", "infra"),
            ],
            &[("owner", "me"), ("pv.kubernetes.io/bind-completed", "yes")],
        );
        let v = state_from(&prior("1Gi"), &s);
        assert_eq!(v.get("testnet").as_str(), Some("ghostnet"));
        assert!(v.get("role").is_null());
        assert_eq!(
            v.get("labels").to_string_map(),
            BTreeMap::from([("team".to_string(), "infra".to_string())])
        );
        assert_eq!(
            v.get("annotations").to_string_map(),
            BTreeMap::from([("owner".to_string(), "me".to_string())])
        );
        // Server-filled fields keep the configured (null) value outside import.
        assert!(v.get("storage_class_name").is_null());
    }

    #[test]
    fn import_reads_everything_from_the_server() {
        let mut v = Value::object(ALL_ATTRS.iter().map(|a| (*a, Value::Null)));
        v.set("namespace", Value::string("net1"));
        v.set("name", Value::string("shared"));
        let st = state_from(&v, &status("5Gi", &[], &[("a", "b")]));
        assert_eq!(st.get("storage").as_str(), Some("5Gi"));
        assert_eq!(st.get("storage_class_name").as_str(), Some("fast"));
        assert_eq!(st.get("volume_mode").as_str(), Some("Filesystem"));
        assert_eq!(
            st.get("access_modes").to_string_vec(),
            vec!["ReadWriteOnce".to_string()]
        );
        assert_eq!(
            st.get("annotations")
                .to_string_map()
                .get("a")
                .map(String::as_str),
            Some("b")
        );
        assert_eq!(st.get("create_namespace").as_bool(), Some(false));
    }

    #[test]
    fn written_labels_include_ours_so_dropping_role_removes_it() {
        let mut before = prior("1Gi");
        before.set("testnet", Value::string("alpha"));
        before.set("role", Value::string("genesis"));
        before.set("labels", Value::string_map([("team", "infra")]));
        let mut after = before.clone();
        after.set("role", Value::Null);
        after.set("labels", Value::string_map([("team", "core")]));
        let patch = cluster::MetadataPatch::between(
            &written_labels(&before),
            &written_labels(&after),
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert_eq!(patch.remove_labels, vec![cluster::LABEL_ROLE.to_string()]);
        assert_eq!(patch.set_labels["team"], "core");
        assert_eq!(patch.set_labels[cluster::LABEL_NETWORK], "alpha");
        assert_eq!(
            patch.set_labels[cluster::LABEL_MANAGED_BY],
            cluster::MANAGED_BY
        );
    }

    #[test]
    fn cost_values_are_plain_numbers() {
        assert_eq!(cost_value(2.0), Value::int(2));
        assert_eq!(cost_value(1.7), Value::Number(tfplug::Number::Float(1.7)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").is_err_and(|e| e.contains("no unit")));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}

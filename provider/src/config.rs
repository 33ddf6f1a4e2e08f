//! The provider block: how to reach the cluster (and any named `cluster` blocks) and where
//! snapshots go by default.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tfplug::{
    Attribute, Block, BlockNesting, Context, DataSource, Diagnostics, EphemeralResource,
    NestedBlock, Provider, Resource, Schema, Value,
};
use tokio::sync::OnceCell;

use crate::{
    network_lock, network_state, shared_state_pvc, snapshot_artifact, snapshot_data, storage_class,
};

/// What `configure` learned, shared by every resource.
#[derive(Default)]
pub struct Settings {
    /// False while the provider configuration is still unknown (planned before the cluster
    /// exists): resources then plan with unknowns instead of contacting anything.
    pub known: bool,
    pub connection: cluster::ConnectionConfig,
    /// The `cluster` blocks, by name: resources with `clusters` act on these.
    pub named: BTreeMap<String, cluster::ConnectionConfig>,
    pub default_store_url: Option<String>,
    pub store: objstore::StoreConfig,
    /// Endpoint of a GCS emulator, used for `gs://` URLs instead of `store.endpoint`.
    pub gcs_endpoint: Option<String>,
    /// Prices for claims' cost estimates; `None` while `storage_prices` is unknown.
    pub storage_prices: Option<cluster::PriceTable>,
    /// Image of the Jobs that snapshot claims (`archiver_image`, else [`DEFAULT_ARCHIVER_IMAGE`]).
    pub archiver_image: Option<String>,
    /// `store_read_connections`: ranged reads per object (the store's default when `None`).
    pub read_connections: Option<u16>,
}

/// The `testnet-archiver` image of this provider's version.
pub const DEFAULT_ARCHIVER_IMAGE: &str = concat!(
    "ghcr.io/testnet-infra/testnet-archiver:",
    env!("CARGO_PKG_VERSION")
);

/// State shared by the provider and its resources.
#[derive(Default, Clone)]
pub struct Shared {
    settings: Arc<RwLock<Arc<Settings>>>,
    cluster: Arc<RwLock<Arc<OnceCell<cluster::Cluster>>>>,
    /// One lazily made connection per `cluster` block, replaced on every configure.
    named: Arc<RwLock<Arc<BTreeMap<String, OnceCell<cluster::Cluster>>>>>,
}

impl Shared {
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The cluster connection, made on first use so configurations without Kubernetes
    /// resources never need a cluster.
    pub async fn cluster(&self, diags: &mut Diagnostics) -> Option<cluster::Cluster> {
        let settings = self.settings();
        if !settings.known {
            diags.error(
                "Provider configuration not known yet",
                "The testnet provider's connection settings depend on values known only after apply. Apply the resources they depend on first.",
            );
            return None;
        }
        let cell = self.cluster.read().ok()?.clone();
        match cell
            .get_or_try_init(|| cluster::connect(&settings.connection))
            .await
        {
            Ok(c) => Some(c.clone()),
            Err(e) => {
                crate::convert::cluster_error(&e, None, diags);
                None
            }
        }
    }

    /// The clusters a resource's `clusters` attribute (at `attr`) names, connected, or the
    /// provider's own connection (named `""`) when `names` is `None`. Unknown names get a
    /// diagnostic listing the configured ones.
    pub async fn members(
        &self,
        names: Option<&[String]>,
        attr: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<cluster::Member>> {
        let Some(names) = names else {
            let c = self.cluster(diags).await?;
            return Some(vec![cluster::Member {
                name: String::new(),
                cluster: c,
            }]);
        };
        if !self.check_cluster_names(names, attr, diags) {
            return None;
        }
        let settings = self.settings();
        let cells = self.named.read().ok()?.clone();
        let mut out = Vec::new();
        for n in names {
            let (Some(cell), Some(cfg)) = (cells.get(n), settings.named.get(n)) else {
                continue;
            };
            match cell.get_or_try_init(|| cluster::connect(cfg)).await {
                Ok(c) => out.push(cluster::Member {
                    name: n.clone(),
                    cluster: c.clone(),
                }),
                Err(e) => {
                    let mut inner = Diagnostics::new();
                    crate::convert::cluster_error(&e, None, &mut inner);
                    for d in inner.iter() {
                        diags.attr_error(
                            tfplug::AttributePath::attr(attr),
                            format!("{} (cluster {n:?})", d.summary),
                            format!("The `cluster` block {n:?} of the provider: {}", d.detail),
                        );
                    }
                }
            }
        }
        (out.len() == names.len()).then_some(out)
    }

    /// Plan-time check that every name in `clusters` has a `cluster` block. False (with a
    /// diagnostic on `attr`) otherwise, or while the provider configuration is unknown.
    pub fn check_cluster_names(
        &self,
        names: &[String],
        attr: &str,
        diags: &mut Diagnostics,
    ) -> bool {
        let settings = self.settings();
        if !settings.known {
            diags.error(
                "Provider configuration not known yet",
                "The testnet provider's connection settings depend on values known only after apply. Apply the resources they depend on first.",
            );
            return false;
        }
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| !settings.named.contains_key(*n))
            .collect();
        if unknown.is_empty() {
            return true;
        }
        let configured: Vec<String> = settings.named.keys().map(|k| format!("{k:?}")).collect();
        diags.attr_error(
            tfplug::AttributePath::attr(attr),
            "Unknown cluster name",
            format!(
                "{} {} not configured. Allowed: the names of the provider's `cluster` blocks ({}).",
                unknown
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unknown.len() == 1 { "is" } else { "are" },
                if configured.is_empty() {
                    "there are none: add `cluster { name = \"...\" ... }` blocks to the provider"
                        .to_string()
                } else {
                    configured.join(", ")
                }
            ),
        );
        false
    }

    /// Resolves a resource's `store_url` (or the provider's default) into an open store.
    pub async fn store(
        &self,
        url: Option<&str>,
        attr: &str,
        diags: &mut Diagnostics,
    ) -> Option<(String, Arc<dyn objstore::ObjectStore>)> {
        let settings = self.settings();
        let Some(url) = url
            .map(str::to_string)
            .or_else(|| settings.default_store_url.clone())
        else {
            diags.attr_error(
                tfplug::AttributePath::attr(attr),
                "No store URL",
                "Set store_url here or default_store_url in the provider block: file:///dir, s3://bucket/prefix or gs://bucket/prefix.",
            );
            return None;
        };
        let mut config = settings.store.clone();
        if url.starts_with("gs://") {
            config.endpoint = settings.gcs_endpoint.clone();
        }
        let reads = settings
            .read_connections
            .map_or_else(objstore::RangedReads::default, |n| {
                objstore::RangedReads::with_connections(n.into())
            });
        match objstore::open_with_reads(&url, &config, reads).await {
            Ok(s) => Some((url, s)),
            Err(e) => {
                crate::convert::store_error(&e, Some(attr), diags);
                None
            }
        }
    }
}

#[derive(Default)]
pub struct TestnetProvider {
    shared: Shared,
}

fn conn_attr(name: &str, doc: &str) -> Attribute {
    Attribute::string(name).optional().describe(doc)
}

fn exec_block() -> NestedBlock {
    NestedBlock::new(
        "exec",
        BlockNesting::List,
        Block::new()
            .describe(
                "An exec credential plugin, e.g. `gke-gcloud-auth-plugin` or `aws eks get-token`.",
            )
            .attr(
                Attribute::string("api_version")
                    .required()
                    .describe("e.g. `client.authentication.k8s.io/v1beta1`."),
            )
            .attr(Attribute::string("command").required())
            .attr(Attribute::string_list("args").optional())
            .attr(Attribute::string_map("env").optional()),
    )
    .max_items(1)
}

/// The connection attributes of the provider block, which every `cluster` block repeats.
fn connection_attrs(block: Block) -> Block {
    block
        .attr(conn_attr("kubeconfig_path", "Path to a kubeconfig file. Defaults to `KUBECONFIG` (colon-separated list), then `~/.kube/config`."))
        .attr(conn_attr("kube_context", "Context of the kubeconfig to use. Defaults to `TESTNET_KUBE_CONTEXT`, then the kubeconfig's current context."))
        .attr(conn_attr("host", "API server URL, e.g. `https://1.2.3.4`. Defaults to `TESTNET_KUBE_HOST`. Takes precedence over the kubeconfig."))
        .attr(conn_attr("token", "Bearer token. Defaults to `TESTNET_KUBE_TOKEN`.").sensitive())
        .attr(conn_attr("cluster_ca_certificate", "PEM-encoded CA certificate of the API server."))
        .attr(conn_attr("client_certificate", "PEM-encoded client certificate for TLS authentication."))
        .attr(conn_attr("client_key", "PEM-encoded client key for TLS authentication.").sensitive())
        .attr(Attribute::bool("insecure").optional().describe("Skip verification of the API server's certificate. For test clusters only."))
        .block(exec_block())
}

/// A `ConnectionConfig` from the provider block or one `cluster` block.
fn connection_of(config: &Value) -> cluster::ConnectionConfig {
    let s = |k: &str| config.get(k).as_str().map(str::to_string);
    let exec = config
        .get("exec")
        .elements()
        .first()
        .map(|e| cluster::ExecConfig {
            api_version: e
                .get("api_version")
                .as_str()
                .unwrap_or_default()
                .to_string(),
            command: e.get("command").as_str().unwrap_or_default().to_string(),
            args: e.get("args").to_string_vec(),
            env: e.get("env").to_string_map().into_iter().collect(),
        });
    cluster::ConnectionConfig {
        kubeconfig_paths: s("kubeconfig_path")
            .map(|p| vec![p.into()])
            .unwrap_or_default(),
        context: s("kube_context"),
        host: s("host"),
        token: s("token"),
        cluster_ca_certificate: s("cluster_ca_certificate"),
        client_certificate: s("client_certificate"),
        client_key: s("client_key"),
        insecure: config.get("insecure").as_bool().unwrap_or(false),
        exec,
    }
}

#[async_trait]
impl Provider for TestnetProvider {
    fn type_name(&self) -> &'static str {
        "testnet"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            connection_attrs(Block::new()
                .describe("Kubernetes storage, shared-state claims, network locks and verified snapshots for blockchain testnets."))
                .attr(conn_attr(
                    "default_store_url",
                    "Store for snapshot artifacts when a resource sets no `store_url`: `file:///dir`, `s3://bucket/prefix` or `gs://bucket/prefix`.",
                ))
                .attr(conn_attr("s3_endpoint", "Custom S3 endpoint for S3-compatible servers. Defaults to `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`."))
                .attr(Attribute::bool("s3_force_path_style").optional().describe("Path-style S3 addressing, needed by most S3-compatible servers."))
                .attr(conn_attr("s3_region", "S3 region. Defaults to the AWS SDK's region chain."))
                .attr(
                    Attribute::new("storage_prices", tfplug::Type::map(tfplug::Type::Number))
                        .optional()
                        .validate(tfplug::schema::validators::from_fn(
                            "Each price a number of USD per GiB-month, 0 or more.",
                            |v: &Value| {
                                for (k, p) in v.entries().into_iter().flatten() {
                                    if let Some(x) = p.as_f64() {
                                        cluster::PriceTable::check_entry(k, x).map_err(|e| e.to_string())?;
                                    }
                                }
                                Ok(())
                            },
                        ))
                        .describe(
                            "Storage prices in USD per GiB-month for `estimated_monthly_cost_usd` of \
                             `testnet_shared_state_pvc`, keyed by storage class name or by tier. \
                             Defaults: `ssd = 0.17`, `standard = 0.04`; entries here add to them or \
                             override them. A claim's class is priced by, first match wins: (1) its \
                             exact name, (2) the last `-`-separated part of its name \
                             (`europe-west1-ssd` → `ssd`), (3) the class in the cluster: its \
                             `testnet.io/tier` label, or the tier its provisioner and `type` \
                             parameter correspond to (`pd-ssd`/`gp3` → `ssd`, \
                             `pd-standard`/`st1` → `standard`). A class matching none has no \
                             estimate (null, with a warning).",
                        ),
                )
                .attr(Attribute::number("store_read_connections").optional().validate(tfplug::schema::validators::int_range(1, 64)).describe("Connections that read one S3 or GCS object at once, each fetching its own byte range (a failed range is retried alone): for `verify = \"full\"`, the read-back of stores that attest no checksum, and the Jobs that snapshot or restore claims (`--connections`). The ranges in flight share 32 MiB, so more connections read smaller ranges (4 MiB each for 8). Defaults to 8."))
                .attr(conn_attr("gcs_endpoint", "Custom GCS endpoint (emulators). Defaults to `STORAGE_EMULATOR_HOST`."))
                .attr(conn_attr("archiver_image", &format!("Container image of the Jobs that snapshot claims (`testnet_snapshot_artifact.source_claim`). Defaults to `{DEFAULT_ARCHIVER_IMAGE}`, the `testnet-archiver` of this provider's version; set it to a copy in a registry your nodes pull from.")))
                .block(NestedBlock::new(
                    "cluster",
                    BlockNesting::List,
                    connection_attrs(
                        Block::new()
                            .describe("A named cluster besides the provider's own connection (one per region, say). Resources that take `clusters` (the network lock, the network state) act on the clusters named there; without `clusters` they use the provider's own connection.")
                            .attr(Attribute::string("name").required().describe("The name resources use in `clusters`, e.g. `us`. Unique among the `cluster` blocks.")),
                    ),
                )),
        )
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let mut seen = std::collections::BTreeSet::new();
        for (i, b) in config.get("cluster").elements().iter().enumerate() {
            let Some(name) = b.get("name").as_str() else {
                continue;
            };
            let path = tfplug::AttributePath::attr("cluster")
                .then_index(i as i64)
                .then_attr("name");
            if name.is_empty() {
                diags.attr_error(path, "Invalid cluster name", "The `name` of a `cluster` block is empty. Allowed: a non-empty name such as \"us\", unique among the cluster blocks.");
            } else if !seen.insert(name.to_string()) {
                diags.attr_error(path, "Duplicate cluster name", format!("Two `cluster` blocks are named {name:?}. Each cluster block needs its own name."));
            }
        }
    }

    async fn configure(&self, _ctx: &Context, config: &Value, _diags: &mut Diagnostics) {
        let known = config.is_wholly_known();
        let s = |k: &str| config.get(k).as_str().map(str::to_string);
        let connection = connection_of(config);
        let named: BTreeMap<String, cluster::ConnectionConfig> = config
            .get("cluster")
            .elements()
            .iter()
            .filter_map(|b| {
                b.get("name")
                    .as_str()
                    .map(|n| (n.to_string(), connection_of(b)))
            })
            .collect();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let store = objstore::StoreConfig {
            endpoint: s("s3_endpoint")
                .or_else(|| env("AWS_ENDPOINT_URL_S3"))
                .or_else(|| env("AWS_ENDPOINT_URL")),
            force_path_style: config.get("s3_force_path_style").as_bool().unwrap_or(false),
            region: s("s3_region"),
            ..Default::default()
        };
        let gcs_endpoint = s("gcs_endpoint")
            .or_else(|| env("STORAGE_EMULATOR_HOST"))
            .map(|e| {
                if e.contains("://") {
                    e
                } else {
                    format!("http://{e}")
                }
            });
        let storage_prices = {
            let v = config.get("storage_prices");
            v.is_wholly_known().then(|| {
                let user = v
                    .entries()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, p)| p.as_f64().map(|x| (k.clone(), x)))
                    .collect();
                cluster::PriceTable::with_overrides(user)
            })
        };
        let settings = Settings {
            known,
            storage_prices,
            connection,
            named: named.clone(),
            default_store_url: s("default_store_url"),
            archiver_image: s("archiver_image"),
            read_connections: config
                .get("store_read_connections")
                .as_i64()
                .and_then(|n| u16::try_from(n).ok()),
            store,
            gcs_endpoint,
        };
        if let Ok(mut g) = self.shared.settings.write() {
            *g = Arc::new(settings);
        }
        if let Ok(mut g) = self.shared.cluster.write() {
            *g = Arc::new(OnceCell::new());
        }
        if let Ok(mut g) = self.shared.named.write() {
            *g = Arc::new(named.keys().map(|k| (k.clone(), OnceCell::new())).collect());
        }
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(storage_class::StorageClass(self.shared.clone())),
            Arc::new(shared_state_pvc::SharedStatePvc(self.shared.clone())),
            Arc::new(network_lock::ManagedLock(self.shared.clone())),
            Arc::new(network_state::NetworkState(self.shared.clone())),
            Arc::new(snapshot_artifact::SnapshotArtifact(self.shared.clone())),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(network_lock::LockData(self.shared.clone())),
            Arc::new(network_state::NetworkStateData(self.shared.clone())),
            Arc::new(snapshot_data::Snapshot(self.shared.clone())),
        ]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        vec![Arc::new(network_lock::EphemeralLock(self.shared.clone()))]
    }
}

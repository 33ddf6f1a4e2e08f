//! `testnet_snapshot_artifact`: one published snapshot (directory -> tar -> LZ4 -> SHA-256 ->
//! verified upload) with its metadata, `base.json` entry and latest pointer.
//!
//! An artifact is immutable: every input except `retain`, `retention_grace` and
//! `retain_on_destroy` replaces it.

use std::sync::Arc;

use async_trait::async_trait;
use tfplug::schema::validators::{from_fn, int_range, one_of};
use tfplug::{
    Attribute, AttributePath, Block, Context, Diagnostics, PlanChange, Private, Resource, Schema,
    Value,
};

use crate::config::Shared;
use crate::convert::{catalog_error, store_error};

/// The `testnet_snapshot_artifact` resource.
pub struct SnapshotArtifact(pub Shared);

// ---- schema -------------------------------------------------------------------------------

/// Validator for a catalog name field (`network`, `kind`, `label`).
pub(crate) fn name_validator(
    doc: &str,
    check: fn(&str) -> catalog::Result<()>,
) -> impl tfplug::schema::Validator {
    from_fn(doc.to_string(), move |v: &Value| match v.as_str() {
        Some(s) => check(s).map_err(|e| e.to_string()),
        None => Ok(()),
    })
}

/// Validator for a store URL: only the scheme and shape, nothing is contacted at plan time.
pub(crate) fn store_url_validator() -> impl tfplug::schema::Validator {
    from_fn(
        "`file:///dir`, `s3://bucket/prefix` or `gs://bucket/prefix`.",
        |v: &Value| match v.as_str() {
            Some(s) => objstore::StoreUrl::parse(s)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Ok(()),
        },
    )
}

/// The computed attributes shared by the resource and the data source.
pub(crate) fn computed_attrs(block: Block, keep: bool) -> Block {
    let c = |a: Attribute| {
        if keep {
            a.computed().use_state_for_unknown()
        } else {
            a.computed()
        }
    };
    block
        .attr(c(Attribute::string("key")).describe(
            "Object key of the artifact in the store, `<network>-<kind>-<label>.tar.lz4`.",
        ))
        .attr(c(Attribute::string("url")).describe("Full URL of the artifact object."))
        .attr(
            c(Attribute::string("metadata_url"))
                .describe("Full URL of the artifact's metadata JSON."),
        )
        .attr(
            c(Attribute::string("sha256"))
                .describe("Lowercase hex SHA-256 of the `.tar.lz4` object."),
        )
        .attr(
            c(Attribute::number("size_bytes")).describe("Size of the `.tar.lz4` object in bytes."),
        )
        .attr(
            c(Attribute::number("uncompressed_bytes"))
                .describe("Size of the tar stream before compression."),
        )
        .attr(c(Attribute::number("file_count")).describe("Number of regular files archived."))
        .attr(
            c(Attribute::string("created_at"))
                .describe("RFC 3339 UTC time the artifact was published."),
        )
}

/// Computed values from published metadata.
pub(crate) fn meta_values(
    store: &dyn objstore::ObjectStore,
    m: &catalog::ArtifactMeta,
) -> Vec<(&'static str, Value)> {
    vec![
        ("key", Value::string(m.artifact_key())),
        ("url", Value::string(m.url.clone())),
        (
            "metadata_url",
            Value::string(store.url(&catalog::metadata_key(&m.name))),
        ),
        ("sha256", Value::string(m.sha256.clone())),
        ("size_bytes", Value::from(m.size_bytes)),
        ("uncompressed_bytes", Value::from(m.uncompressed_bytes)),
        ("file_count", Value::from(m.file_count)),
        ("created_at", Value::string(m.created_at.clone())),
    ]
}

fn with(mut v: Value, attrs: Vec<(&'static str, Value)>) -> Value {
    for (k, x) in attrs {
        v.set(k, x);
    }
    v
}

fn verify_mode(v: &Value) -> catalog::VerifyMode {
    match v.as_str() {
        Some("full") => catalog::VerifyMode::Full,
        _ => catalog::VerifyMode::Checksum,
    }
}

/// Artifacts imported by URL do not know their source directory or excludes: do not replace
/// them just because the configuration now names one.
fn replace_unless_imported(old: &Value, _new: &Value) -> bool {
    !old.is_null()
}

#[async_trait]
impl Resource for SnapshotArtifact {
    fn type_name(&self) -> &'static str {
        "testnet_snapshot_artifact"
    }

    fn schema(&self) -> Schema {
        let block = Block::new()
            .describe("A verified snapshot artifact: a directory archived as tar + LZ4, uploaded to a `file://`, `s3://` or `gs://` store, checked by SHA-256 and published with a metadata JSON, a `base.json` index entry and a latest pointer. Artifacts are immutable: changing any input publishes a new one.")
            .attr(Attribute::string("source_dir").optional().requires_replace_if("source changes publish a new artifact", replace_unless_imported).describe("Directory to archive (e.g. a node's data directory, stopped or snapshotted), on the machine running Terraform. Exactly one of `source_dir` and `source_claim`."))
            .attr(Attribute::string("source_claim").optional().requires_replace_if("source changes publish a new artifact", replace_unless_imported).describe("`namespace/name` of a PersistentVolumeClaim to archive inside the cluster: a Kubernetes Job in the claim's namespace mounts it read-only and runs `testnet-archiver create` next to the data, so nothing passes through the machine running Terraform; the provider then checks the Job's report against the store (metadata, object size and SHA-256, index entry) before recording it. A ReadWriteOnce claim that a running pod mounts is archived on that pod's node. The store must be `s3://` or `gs://`, reachable from the cluster with the provider's `s3_endpoint` / `gcs_endpoint`; credentials come from `job.service_account_name` or `job.env_secret_name`. Exactly one of `source_dir` and `source_claim`. Needs a cluster that runs pods (not the local API server)."))
            .attr(Attribute::string("store_url").optional().requires_replace().validate(store_url_validator()).describe("Where to publish: `file:///dir`, `s3://bucket/prefix` or `gs://bucket/prefix`. Defaults to the provider's `default_store_url`."))
            .attr(Attribute::string("network").required().requires_replace().validate(name_validator("A DNS label, e.g. `ghostnet`.", catalog::names::validate_network)).describe("Network name (a DNS label), e.g. `ghostnet`."))
            .attr(Attribute::string("kind").required().requires_replace().validate(name_validator("No `-`, e.g. `rolling`.", catalog::names::validate_kind)).describe("Snapshot kind without `-`, e.g. `rolling` or `archive`."))
            .attr(Attribute::string("label").optional().computed().use_state_for_unknown().requires_replace().validate(name_validator("e.g. `1234567`.", catalog::names::validate_label)).describe("Label of this artifact. Defaults to `block_height` when set, otherwise the UTC time `YYYYMMDD-HHMMSS`."))
            .attr(Attribute::number("block_height").optional().requires_replace().validate(int_range(0, i64::MAX)).describe("Block height the snapshot was taken at; newer heights rank as newer."))
            .attr(Attribute::string("block_hash").optional().requires_replace().describe("Block hash at `block_height`."))
            .attr(Attribute::string("block_time").optional().requires_replace().describe("RFC 3339 time of the block, e.g. `2026-01-01T12:00:00Z`."))
            .attr(Attribute::string_list("excludes").optional().requires_replace_if("excludes change the archive", replace_unless_imported).describe("Glob patterns left out of the archive. When unset, the defaults apply (`identity.json`, `peers.json`: node secrets and peer lists; `.testnet-restored.json`, the marker a restore leaves); when set, only these."))
            .attr(Attribute::string("verify").optional().default("checksum").requires_replace_if("verification mode applies when publishing", replace_unless_imported).validate(one_of(["checksum", "full"])).describe("How the upload is checked before it is published: `checksum` (the store's SHA-256 must equal the archiver's) or `full` (also decompress and walk the tar stream)."))
            .attr(Attribute::number("retain").optional().validate(int_range(1, u32::MAX as i64)).describe("Keep only the newest N artifacts of this network and kind when publishing. Changing it later has no effect until the next publish."))
            .attr(Attribute::string("retention_grace").optional().validate(from_fn("A duration such as `30m`, `1h` or `24h`.", |v: &Value| match v.as_str() {
                Some(s) => crate::convert::parse_duration(s).map(|_| ()),
                None => Ok(()),
            })).describe("With `retain`: how long an artifact dropped from the index stays readable before its objects are deleted (by a later publish), so a restore or a node following the latest pointer can finish reading it. A duration such as `30m`, `1h` or `24h`; `0s` deletes at once. Defaults to `1h`."))
            .attr(Attribute::string_map("triggers").optional().requires_replace().describe("Arbitrary values; any change publishes a new artifact (e.g. a node's version or a schedule)."))
            .attr(Attribute::string("index_lock").optional().validate(from_fn("`namespace/name` of a Lease, e.g. `testnet/ghostnet-index`.", |v: &Value| match v.as_str() {
                Some(s) => cluster::parse_lease_ref(s).map(|_| ()),
                None => Ok(()),
            })).describe("`namespace/name` of a Kubernetes Lease (in the provider's cluster) that every publisher into this store prefix holds while it updates `base.json` and the latest pointer. Needed for stores that do not enforce conditional writes (some S3-compatible servers, the GCS emulator) when several publishers may run at once; use a Lease of its own, not the one a `testnet_network_lock` holds. Only used when publishing."))
            .attr(Attribute::bool("single_publisher").optional().default(false).describe("Acknowledge that nothing else publishes into this store prefix at the same time, so a store that does not enforce conditional writes may be published to without `index_lock`. Only used when publishing."))
            .attr(Attribute::bool("retain_on_destroy").optional().default(false).describe("When true, destroying the resource only forgets the artifact and leaves it published in the store."));
        Schema::new(computed_attrs(block, true).block(crate::snapshot_job::job_block()))
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        crate::snapshot_job::validate(config, diags);
    }

    // ---- create -------------------------------------------------------------------------

    async fn create(
        &self,
        ctx: &Context,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let (store_url, store) = self
            .0
            .store(planned.get("store_url").as_str(), "store_url", diags)
            .await?;
        if !planned.get("source_claim").is_null() {
            let meta = crate::snapshot_job::publish_from_claim(
                &self.0,
                ctx,
                planned,
                &store_url,
                store.as_ref(),
                diags,
            )
            .await?;
            tracing::info!(url = %meta.url, sha256 = %meta.sha256, size_bytes = meta.size_bytes, "snapshot published by a Job, confirmed in the store");
            let mut state = planned.clone();
            state.set("label", Value::string(meta.label.clone()));
            return Some(with(state, meta_values(store.as_ref(), &meta)));
        }
        let Some(source_dir) = planned.get("source_dir").as_str() else {
            diags.attr_error(
                AttributePath::attr("source_dir"),
                "Missing source directory",
                "Set source_dir to the directory to archive, or source_claim to a claim.",
            );
            return None;
        };
        let s = |k: &str| planned.get(k).as_str().map(str::to_string);
        let mut req = catalog::PublishRequest::new(
            s("network").unwrap_or_default(),
            s("kind").unwrap_or_default(),
            source_dir,
        );
        req.label = s("label");
        req.block_height = planned
            .get("block_height")
            .as_i64()
            .and_then(|h| u64::try_from(h).ok());
        req.block_hash = s("block_hash");
        req.block_time = s("block_time");
        req.verify = verify_mode(planned.get("verify"));
        req.retain = planned
            .get("retain")
            .as_i64()
            .and_then(|r| u32::try_from(r).ok());
        if let Some(g) = planned.get("retention_grace").as_str() {
            // Validated at plan time; an unparsable value cannot reach here.
            req.retention_grace = crate::convert::parse_duration(g).unwrap_or(req.retention_grace);
        }
        req.tool_version =
            concat!("terraform-provider-testnet/", env!("CARGO_PKG_VERSION")).to_string();
        if !planned.get("excludes").is_null() {
            req.archive.excludes = planned.get("excludes").to_string_vec();
            req.archive.use_default_excludes = false;
        }
        req.archive.cancel = Some(ctx.cancel.clone());
        req.index_writes = self.index_writes(ctx, planned, diags).await?;
        let latest = Arc::new(std::sync::Mutex::new(None::<archiver::Progress>));
        let sink = latest.clone();
        req.archive.progress = Some(Arc::new(move |p: &archiver::Progress| {
            if let Ok(mut l) = sink.lock() {
                *l = Some(p.clone());
            }
        }));
        let ticker = AbortOnDrop(tokio::spawn(log_progress(source_dir.to_string(), latest)));
        let published = catalog::publish(store.as_ref(), req).await;
        drop(ticker);
        let meta = match published {
            Ok(m) => m,
            Err(catalog::CatalogError::PartiallyPublished { name, step, source }) => {
                diags.warning(
                    "Snapshot published, follow-up step failed",
                    format!("Artifact {name} is published and indexed, but {step} failed: {source}. The latest pointer or retention may lag until the next publish."),
                );
                match catalog::get(store.as_ref(), &name).await {
                    Ok(Some(m)) => m,
                    Ok(None) => {
                        diags.error(
                            "Published artifact has no metadata",
                            format!("{name} was published but its metadata cannot be found."),
                        );
                        return None;
                    }
                    Err(e) => {
                        catalog_error(&e, None, diags);
                        return None;
                    }
                }
            }
            Err(e @ catalog::CatalogError::UnsafeStore { .. }) => {
                diags.attr_error(
                    AttributePath::attr("store_url"),
                    "Store does not enforce conditional writes",
                    format!("{e}. Here: index_lock = \"namespace/name\", a Kubernetes Lease in the provider's cluster that every publisher into this prefix uses, or single_publisher = true."),
                );
                return None;
            }
            Err(e) => {
                match &e {
                    // A store error reads best with the store's summary ("Bucket not found").
                    catalog::CatalogError::Store(se) => store_error(se, error_attr(&e), diags),
                    _ => catalog_error(&e, error_attr(&e), diags),
                }
                return None;
            }
        };
        tracing::info!(url = %meta.url, sha256 = %meta.sha256, size_bytes = meta.size_bytes, "snapshot published");
        let mut state = planned.clone();
        state.set("label", Value::string(meta.label.clone()));
        Some(with(state, meta_values(store.as_ref(), &meta)))
    }

    // ---- read ---------------------------------------------------------------------------

    /// Gone from the catalog, gone from the store, or a different SHA-256 in the store: the
    /// artifact is removed from state so the next plan publishes it again.
    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let (_, store) = self
            .0
            .store(state.get("store_url").as_str(), "store_url", diags)
            .await?;
        let Some(key) = state.get("key").as_str() else {
            return Some(state.clone());
        };
        let name = catalog::names::name_from_key(key).to_string();
        let meta = match catalog::get(store.as_ref(), &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                catalog_error(&e, None, diags);
                return Some(state.clone());
            }
        };
        let head = match store.head(&meta.artifact_key()).await {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => {
                store_error(&e, None, diags);
                return Some(state.clone());
            }
        };
        if head.size != meta.size_bytes
            || head.sha256.is_some_and(|h| catalog::hex(&h) != meta.sha256)
        {
            tracing::warn!(url = %meta.url, "artifact in the store differs from its metadata; planning re-creation");
            return None;
        }
        if let Some(prior) = state.get("sha256").as_str() {
            if prior != meta.sha256 {
                return None;
            }
        }
        let mut out = state.clone();
        for (k, v) in [
            ("network", Value::string(meta.network.clone())),
            ("kind", Value::string(meta.kind.clone())),
            ("label", Value::string(meta.label.clone())),
            (
                "block_height",
                meta.block_height.map(Value::from).unwrap_or(Value::Null),
            ),
            ("block_hash", Value::opt_string(meta.block_hash.clone())),
            ("block_time", Value::opt_string(meta.block_time.clone())),
        ] {
            out.set(k, v);
        }
        Some(with(out, meta_values(store.as_ref(), &meta)))
    }

    // ---- update / delete ------------------------------------------------------------------

    /// Only `retain`, `retention_grace` and `retain_on_destroy` change in place: bookkeeping.
    async fn update(
        &self,
        _ctx: &Context,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        _private: &mut Private,
        _diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut state = planned.clone();
        for k in [
            "key",
            "url",
            "metadata_url",
            "sha256",
            "size_bytes",
            "uncompressed_bytes",
            "file_count",
            "created_at",
            "label",
        ] {
            if state.get(k).is_unknown() {
                state.set(k, prior.get(k).clone());
            }
        }
        Some(state)
    }

    async fn delete(
        &self,
        ctx: &Context,
        prior: &Value,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        if prior.get("retain_on_destroy").as_bool() == Some(true) {
            tracing::info!(url = ?prior.get("url").as_str(), "retain_on_destroy: leaving the artifact in the store");
            return;
        }
        let Some((_, store)) = self
            .0
            .store(prior.get("store_url").as_str(), "store_url", diags)
            .await
        else {
            return;
        };
        let Some(key) = prior.get("key").as_str() else {
            return;
        };
        // The index changes under the same rules as when publishing.
        let Some(writes) = self.index_writes(ctx, prior, diags).await else {
            return;
        };
        match catalog::delete_artifact_with(store.as_ref(), key, &writes).await {
            Ok(_) => {}
            Err(e @ catalog::CatalogError::UnsafeStore { .. }) => diags.attr_error(
                AttributePath::attr("store_url"),
                "Store does not enforce conditional writes",
                format!("{e}. Removing the artifact changes base.json too. Set index_lock = \"namespace/name\" to the Lease the publishers into this prefix use, or single_publisher = true if nothing else changes this prefix at the same time, apply, then destroy."),
            ),
            Err(e) => catalog_error(&e, error_attr(&e), diags),
        }
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, diags: &mut Diagnostics) {
        // Catch a missing or non-directory source at plan time when the path is known.
        if plan.is_destroy() || !plan.is_create() && plan.requires_replace.is_empty() {
            return;
        }
        if let Some(dir) = plan.config.get("source_dir").as_str() {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => diags.attr_error(
                    AttributePath::attr("source_dir"),
                    "Source is not a directory",
                    format!("{dir:?} is a file. source_dir must be the directory to archive."),
                ),
                Err(e) => diags.attr_error(
                    AttributePath::attr("source_dir"),
                    "Cannot read the source directory",
                    format!("{dir:?}: {e}. source_dir must be an existing directory."),
                ),
            }
        }
    }

    // ---- import ---------------------------------------------------------------------------

    /// ID: the artifact's URL, e.g. `file:///srv/snapshots/ghostnet-rolling-100.tar.lz4`.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let parsed = id
            .rsplit_once('/')
            .filter(|(dir, file)| file.ends_with(".tar.lz4") && dir.contains("://"));
        let Some((store_url, file)) = parsed else {
            diags.error(
                "Invalid import ID",
                format!("{id:?} is not an artifact URL. Use the artifact's full URL, e.g. file:///srv/snapshots/ghostnet-rolling-100.tar.lz4 or s3://bucket/prefix/ghostnet-rolling-100.tar.lz4."),
            );
            return None;
        };
        let (_, store) = self.0.store(Some(store_url), "store_url", diags).await?;
        let name = catalog::names::name_from_key(file).to_string();
        let meta = match catalog::get(store.as_ref(), &name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                diags.error("Cannot import", format!("No artifact {name} is in the catalog at {store_url} (its metadata {} is missing).", store.url(&catalog::metadata_key(&name))));
                return None;
            }
            Err(e) => {
                catalog_error(&e, None, diags);
                return None;
            }
        };
        let base = Value::object([
            ("source_dir", Value::Null),
            ("source_claim", Value::Null),
            ("job", Value::Null),
            ("store_url", Value::string(store_url)),
            ("network", Value::string(meta.network.clone())),
            ("kind", Value::string(meta.kind.clone())),
            ("label", Value::string(meta.label.clone())),
            (
                "block_height",
                meta.block_height.map(Value::from).unwrap_or(Value::Null),
            ),
            ("block_hash", Value::opt_string(meta.block_hash.clone())),
            ("block_time", Value::opt_string(meta.block_time.clone())),
            ("excludes", Value::Null),
            ("verify", Value::string("checksum")),
            ("retain", Value::Null),
            ("retention_grace", Value::Null),
            ("triggers", Value::Null),
            ("index_lock", Value::Null),
            ("single_publisher", Value::Bool(false)),
            ("retain_on_destroy", Value::Bool(false)),
        ]);
        Some(with(base, meta_values(store.as_ref(), &meta)))
    }
}

impl SnapshotArtifact {
    /// `index_lock` (a Lease in the provider's cluster), `single_publisher`, or the store's own
    /// conditional writes.
    async fn index_writes(
        &self,
        ctx: &Context,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Option<catalog::IndexWrites> {
        let Some(lock) = planned.get("index_lock").as_str() else {
            return Some(if planned.get("single_publisher").as_bool() == Some(true) {
                catalog::IndexWrites::SinglePublisher
            } else {
                catalog::IndexWrites::Conditional
            });
        };
        let (namespace, name) = match cluster::parse_lease_ref(lock) {
            Ok(r) => r,
            Err(e) => {
                diags.attr_error(AttributePath::attr("index_lock"), "Invalid index lock", e);
                return None;
            }
        };
        let cluster = self.0.cluster(diags).await?;
        Some(catalog::IndexWrites::Locked(Arc::new(
            cluster::LeaseIndexLock {
                cluster,
                namespace,
                name,
                wait: INDEX_LOCK_WAIT,
                cancel: ctx.cancel.clone(),
            },
        )))
    }
}

/// How long a publish waits for other publishers holding the index lock.
const INDEX_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Stops a background task when the work it accompanies ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a long publish reports progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Logs the publish's progress at info level every [`PROGRESS_EVERY`] until aborted: bytes,
/// MB/s and, once the directory walk knows the total, an ETA. It ticks on its own clock rather
/// than on the archiver's callbacks, which pause while a slow upload holds the archiver back,
/// so a stalled upload shows as falling MB/s instead of silence.
async fn log_progress(dir: String, latest: Arc<std::sync::Mutex<Option<archiver::Progress>>>) {
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let Some(p) = latest.lock().ok().and_then(|l| l.clone()) else {
            continue;
        };
        let bytes_per_s = p.uncompressed_bytes as f64 / started.elapsed().as_secs_f64();
        let eta_s = (p.total_bytes_estimate > 0 && bytes_per_s > 0.0).then(|| {
            (p.total_bytes_estimate.saturating_sub(p.uncompressed_bytes) as f64 / bytes_per_s)
                .round() as u64
        });
        // Terraform prints numeric fields as floats (1.2e+08): the message says it readably.
        let mb = |b: u64| b as f64 / 1e6;
        let eta = eta_s.map_or("unknown".to_string(), |s| format!("{s} s"));
        tracing::info!(
            source_dir = %dir,
            files = p.files,
            bytes = p.uncompressed_bytes,
            total_bytes = p.total_bytes_estimate,
            compressed_bytes = p.compressed_bytes,
            mb_per_s = bytes_per_s / 1e6,
            eta_s = eta_s.unwrap_or(0),
            "archiving snapshot: {:.1} of {:.1} MB, {:.1} MB/s, ETA {eta}",
            mb(p.uncompressed_bytes),
            mb(p.total_bytes_estimate),
            bytes_per_s / 1e6,
        );
    }
}

/// The attribute a catalog error is about, when it is about one.
pub(crate) fn error_attr(e: &catalog::CatalogError) -> Option<&'static str> {
    match e {
        catalog::CatalogError::InvalidName { field, .. }
        | catalog::CatalogError::InvalidValue { field, .. } => Some(field),
        catalog::CatalogError::IndexLock { .. } => Some("index_lock"),
        catalog::CatalogError::Source { .. } => Some("source_dir"),
        // The store itself is wrong (bucket, credentials): the user fixes `store_url` or the
        // provider's connection settings.
        catalog::CatalogError::Store(
            objstore::StoreError::NoSuchBucket { .. }
            | objstore::StoreError::AccessDenied { .. }
            | objstore::StoreError::BadUrl { .. },
        ) => Some("store_url"),
        _ => None,
    }
}

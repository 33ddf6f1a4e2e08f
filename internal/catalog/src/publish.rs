//! Publishing one artifact: archive, upload, verify, then make it visible (metadata, index,
//! latest pointer) and apply retention.

use std::path::PathBuf;

use archiver::ArchiveOptions;
use objstore::{ObjectMeta, ObjectStore, Precondition, PutOptions, StoreError};

use crate::doc::{self, Change};
use crate::error::{CatalogError, Result};
use crate::guard::{self, HeldIndexLock, IndexWrites};
use crate::meta::{hex, is_rfc3339, now_rfc3339, ArtifactMeta, Index, LatestPointer};
use crate::names::{self, INDEX_KEY};
use crate::ops::{hash_object, set_latest_pointer};

/// How thoroughly an upload is checked before it is published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// The SHA-256 the store attests for what it holds (or, where it attests none, a re-read)
    /// must equal the archiver's.
    #[default]
    Checksum,
    /// Also read the object back through the archiver's verifier: LZ4 frame and tar structure,
    /// file count and uncompressed size must match.
    Full,
}

/// Everything needed to publish one artifact.
pub struct PublishRequest {
    /// DNS label, e.g. `ghostnet`.
    pub network: String,
    /// No `-`, e.g. `rolling` or `archive`.
    pub kind: String,
    /// Defaults to the block height when given, otherwise the UTC time `YYYYMMDD-HHMMSS`.
    pub label: Option<String>,
    pub block_height: Option<u64>,
    pub block_hash: Option<String>,
    /// RFC 3339.
    pub block_time: Option<String>,
    pub source_dir: PathBuf,
    pub archive: ArchiveOptions,
    pub verify: VerifyMode,
    /// Keep only the newest N artifacts of this network and kind (N >= 1) in the index.
    pub retain: Option<u32>,
    /// How long an artifact retention drops stays readable before its objects are deleted.
    pub retention_grace: std::time::Duration,
    /// Recorded in the metadata, e.g. `testnet-archiver/0.1.0`.
    pub tool_version: String,
    /// How index updates are kept safe from other publishers.
    pub index_writes: IndexWrites,
}

impl PublishRequest {
    /// A request with defaults: generated label, default excludes, checksum verification,
    /// no retention.
    pub fn new(
        network: impl Into<String>,
        kind: impl Into<String>,
        source_dir: impl Into<PathBuf>,
    ) -> Self {
        PublishRequest {
            network: network.into(),
            kind: kind.into(),
            label: None,
            block_height: None,
            block_hash: None,
            block_time: None,
            source_dir: source_dir.into(),
            archive: ArchiveOptions::default(),
            verify: VerifyMode::default(),
            retain: None,
            retention_grace: crate::retention::DEFAULT_RETENTION_GRACE,
            tool_version: concat!("testnet-catalog/", env!("CARGO_PKG_VERSION")).to_string(),
            index_writes: IndexWrites::default(),
        }
    }
}

/// Publishes the artifact a request describes and returns its metadata.
///
/// Order matters: the artifact is uploaded under a key nobody else may hold (`IfAbsent`),
/// verified, described by its metadata JSON, and only then entered into `base.json`. Any failure
/// or cancellation before the index update removes what this call wrote, so a reader of the
/// index never sees a half-published artifact. After the index update the latest pointer moves
/// forward (never back) and retention runs; a failure there is reported as
/// [`CatalogError::PartiallyPublished`] because the artifact itself is already public.
///
/// Before anything is written the store must be safe for concurrent publishers (see
/// [`IndexWrites`]). The index entry and the latest pointer are read back after they are
/// written: an entry the store lost is written again, and a run that cannot make it stick fails
/// with [`CatalogError::NotIndexed`], so success always means the entry is in `base.json`.
pub async fn publish(store: &dyn ObjectStore, req: PublishRequest) -> Result<ArtifactMeta> {
    names::validate_network(&req.network)?;
    names::validate_kind(&req.kind)?;
    let label = match &req.label {
        Some(l) => l.clone(),
        None => default_label(req.block_height),
    };
    names::validate_label(&label)?;
    if let Some(t) = &req.block_time {
        if !is_rfc3339(t) {
            return Err(CatalogError::InvalidValue {
                field: "block_time",
                value: t.clone(),
                reason: "not an RFC 3339 time; use e.g. 2026-01-01T12:00:00Z".into(),
            });
        }
    }
    if let Some(h) = &req.block_hash {
        if h.is_empty() || h.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(CatalogError::InvalidValue {
                field: "block_hash",
                value: h.clone(),
                reason: "must be non-empty without spaces or control characters".into(),
            });
        }
    }
    if req.retain == Some(0) {
        return Err(CatalogError::InvalidValue {
            field: "retain",
            value: "0".into(),
            reason: "keep at least 1 artifact, or leave retention unset".into(),
        });
    }
    match std::fs::metadata(&req.source_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(CatalogError::Source {
                path: req.source_dir.display().to_string(),
                detail: "is not a directory".into(),
            })
        }
        Err(e) => {
            return Err(CatalogError::Source {
                path: req.source_dir.display().to_string(),
                detail: e.to_string(),
            })
        }
    }

    let name = names::artifact_name(&req.network, &req.kind, &label);
    let key = names::artifact_key(&name);
    let cancel = req.archive.cancel.clone();
    let cancelled = || cancel.as_ref().is_some_and(|c| c.is_cancelled());

    // Before the upload, so a store that cannot be published to safely costs no upload.
    guard::ensure_safe(store, &req.index_writes).await?;

    // Fail early and cheaply when the name is taken; the IfAbsent upload below still decides
    // races between publishers of the same name.
    if let Some(existing) = store.head(&key).await? {
        return Err(exists_error(store, &key, existing.sha256).await);
    }
    if cancelled() {
        return Err(CatalogError::Cancelled);
    }

    let mut excludes = req.archive.excludes.clone();
    if req.archive.use_default_excludes {
        for d in archiver::DEFAULT_EXCLUDES {
            if !excludes.iter().any(|e| e == d) {
                excludes.push(d.to_string());
            }
        }
    }

    let (stream, handle) = archiver::archive(&req.source_dir, req.archive)?;
    let put_opts = PutOptions {
        content_type: Some("application/x-lz4".into()),
        precondition: Precondition::IfAbsent,
        website_redirect: None,
        cancel: cancel.clone(),
        full_read_follows: req.verify == VerifyMode::Full,
    };
    tracing::info!(object = %store.url(&key), "uploading artifact");
    let uploaded = store.put_stream(&key, stream, put_opts).await;
    let archived = handle.finish().await;
    if cancelled() {
        // Whichever side noticed first, the user asked to stop: say so, and leave nothing.
        if uploaded.is_ok() {
            remove_quietly(store, std::slice::from_ref(&key)).await;
        }
        return Err(CatalogError::Cancelled);
    }
    let (put_meta, summary) = match (uploaded, archived) {
        (Ok(p), Ok(s)) => (p, s),
        (Ok(_), Err(e)) => {
            // The store took a complete stream but the archiver reports a failure: not ours to keep.
            remove_quietly(store, std::slice::from_ref(&key)).await;
            return Err(e.into());
        }
        (Err(StoreError::PreconditionFailed { .. }), _) => {
            let existing = store.head(&key).await.ok().flatten().and_then(|m| m.sha256);
            return Err(exists_error(store, &key, existing).await);
        }
        // The store stopped reading: the archiver only saw its stream dropped, the store knows why.
        (Err(e), Err(archiver::ArchiveError::StreamDropped)) => return Err(e.into()),
        // The archiver's own error explains a broken stream better than the store's.
        (Err(_), Err(e)) => return Err(e.into()),
        (Err(StoreError::Cancelled { .. }), Ok(_)) => return Err(CatalogError::Cancelled),
        (Err(e), Ok(_)) => return Err(e.into()),
    };
    for w in &summary.warnings {
        tracing::warn!(object = %store.url(&key), warning = %w, "archiver warning");
    }

    let meta = ArtifactMeta {
        name: name.clone(),
        network: req.network.clone(),
        kind: req.kind.clone(),
        label,
        block_height: req.block_height,
        block_hash: req.block_hash.clone(),
        block_time: req.block_time.clone(),
        size_bytes: summary.compressed_bytes,
        uncompressed_bytes: summary.uncompressed_bytes,
        file_count: summary.file_count,
        sha256: hex(&summary.sha256),
        created_at: now_rfc3339(),
        excludes,
        tool_version: req.tool_version.clone(),
        url: store.url(&key),
    };

    // Everything up to and including the index update is undone on failure.
    let staged = async {
        check_upload(store, &key, &put_meta, &meta, req.verify).await?;
        if cancelled() {
            return Err(CatalogError::Cancelled);
        }
        write_metadata(store, &meta).await?;
        if cancelled() {
            return Err(CatalogError::Cancelled);
        }
        Ok(())
    };
    let held = match staged.await {
        // The lock covers the index phase only, not the upload: publishers upload in parallel.
        Ok(()) => guard::acquire(&req.index_writes).await,
        Err(e) => Err(e),
    };
    let held = match held {
        Ok(h) => h,
        Err(e) => {
            remove_quietly(store, &[key.clone(), names::metadata_key(&name)]).await;
            return Err(e);
        }
    };
    let outcome = index_phase(
        store,
        &meta,
        req.retain.map(|n| (n, req.retention_grace)),
        held.as_deref(),
    )
    .await;
    if let Some(h) = held {
        h.release().await;
    }
    match outcome {
        Err(IndexFailure::NotIndexed(e)) => {
            remove_quietly(store, &[key.clone(), names::metadata_key(&name)]).await;
            Err(e)
        }
        Err(IndexFailure::After(e)) => Err(e),
        Ok(()) => Ok(meta),
    }
}

/// Why the index phase failed: before the entry was confirmed (nothing is public: undo) or
/// after (the artifact is public: report it partially published).
enum IndexFailure {
    NotIndexed(CatalogError),
    After(CatalogError),
}

/// Index entry, latest pointer and retention, each read back where it must name this artifact.
async fn index_phase(
    store: &dyn ObjectStore,
    meta: &ArtifactMeta,
    retain: Option<(u32, std::time::Duration)>,
    held: Option<&dyn HeldIndexLock>,
) -> std::result::Result<(), IndexFailure> {
    let lost = |step: &'static str| -> Result<()> {
        match held.map(|h| h.check()) {
            Some(Err(detail)) => Err(CatalogError::IndexLockLost { step, detail }),
            _ => Ok(()),
        }
    };
    lost("waiting to update the index").map_err(IndexFailure::NotIndexed)?;
    if let Err(e) = add_confirmed(store, meta).await {
        // A write may have landed before the failure: take the entry out again, so the
        // objects removed next are not named by the index.
        remove_entry_quietly(store, &meta.name).await;
        return Err(IndexFailure::NotIndexed(e));
    }
    tracing::info!(object = %meta.url, bytes = meta.size_bytes, "artifact published and indexed");

    let name = &meta.name;
    point_confirmed(store, meta)
        .await
        .map_err(|e| IndexFailure::After(partial(name, "updating the latest pointer", e)))?;
    if let Some((n, grace)) = retain {
        crate::retention::apply_retention(store, &meta.network, &meta.kind, n, grace)
            .await
            .map_err(|e| IndexFailure::After(partial(name, "applying retention", e)))?;
    }
    lost("updating the index")
        .map_err(|e| IndexFailure::After(partial(name, "holding the index lock to the end", e)))?;
    Ok(())
}

async fn remove_entry_quietly(store: &dyn ObjectStore, name: &str) {
    let removed = doc::update::<Index, _>(store, INDEX_KEY, |current| match current {
        Some(mut index) if index.get(name).is_some() => {
            index.artifacts.retain(|a| a.name != name);
            index.updated_at = now_rfc3339();
            Ok(Change::Write(index))
        }
        _ => Ok(Change::Keep),
    })
    .await;
    if let Err(e) = removed {
        tracing::warn!(object = %store.url(INDEX_KEY), artifact = name, error = %e, "could not take an unconfirmed entry out of the index");
    }
}

/// How many times an entry or pointer the store lost is written again before giving up.
const CONFIRM_ATTEMPTS: u32 = 3;

/// Adds the entry to `base.json` and reads it back; writes it again while it is missing.
async fn add_confirmed(store: &dyn ObjectStore, meta: &ArtifactMeta) -> Result<()> {
    for attempt in 1..=CONFIRM_ATTEMPTS {
        add_to_index(store, meta).await?;
        let index = doc::read::<Index>(store, INDEX_KEY).await?;
        if index.is_some_and(|(i, _)| i.get(&meta.name).is_some_and(|a| a.sha256 == meta.sha256)) {
            return Ok(());
        }
        tracing::warn!(object = %store.url(INDEX_KEY), artifact = %meta.name, attempt, "the index does not hold the entry just written; writing it again");
    }
    Err(CatalogError::NotIndexed {
        name: meta.name.clone(),
        what: "the index",
        url: store.url(INDEX_KEY),
        attempts: CONFIRM_ATTEMPTS,
    })
}

/// Moves the latest pointer forward and reads it back: it must name this artifact or a newer one.
async fn point_confirmed(store: &dyn ObjectStore, meta: &ArtifactMeta) -> Result<()> {
    let key = names::latest_key(&meta.network, &meta.kind);
    for attempt in 1..=CONFIRM_ATTEMPTS {
        set_latest_pointer(store, meta).await?;
        let pointer = doc::read::<LatestPointer>(store, &key).await?;
        if pointer.is_some_and(|(p, _)| p.name == meta.name || !p.is_older_than(meta)) {
            return Ok(());
        }
        tracing::warn!(object = %store.url(&key), artifact = %meta.name, attempt, "the latest pointer does not name the artifact just published; writing it again");
    }
    Err(CatalogError::NotIndexed {
        name: meta.name.clone(),
        what: "the latest pointer",
        url: store.url(&key),
        attempts: CONFIRM_ATTEMPTS,
    })
}

fn partial(name: &str, step: &'static str, e: CatalogError) -> CatalogError {
    CatalogError::PartiallyPublished {
        name: name.to_string(),
        step,
        source: Box::new(e),
    }
}

pub fn default_label(block_height: Option<u64>) -> String {
    match block_height {
        Some(h) => h.to_string(),
        None => {
            let now = time::OffsetDateTime::now_utc();
            format!(
                "{:04}{:02}{:02}-{:02}{:02}{:02}",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            )
        }
    }
}

async fn exists_error(
    store: &dyn ObjectStore,
    key: &str,
    attested: Option<[u8; 32]>,
) -> CatalogError {
    let existing = match attested {
        Some(s) => hex(&s),
        None => {
            match doc::read::<ArtifactMeta>(store, &names::metadata_key(names::name_from_key(key)))
                .await
            {
                Ok(Some((m, _))) => m.sha256,
                _ => "unknown".into(),
            }
        }
    };
    CatalogError::ArtifactExists {
        url: store.url(key),
        existing,
    }
}

/// Checks what the store holds against what the archiver produced.
async fn check_upload(
    store: &dyn ObjectStore,
    key: &str,
    put: &ObjectMeta,
    meta: &ArtifactMeta,
    mode: VerifyMode,
) -> Result<()> {
    let url = store.url(key);
    let mismatch =
        |what: &'static str, expected: String, actual: String| CatalogError::VerifyFailed {
            url: url.clone(),
            what,
            expected,
            actual,
        };
    if put.size != meta.size_bytes {
        return Err(mismatch(
            "size",
            meta.size_bytes.to_string(),
            put.size.to_string(),
        ));
    }
    let stored_sha = match put.sha256 {
        Some(s) => Some(hex(&s)),
        // The store checked that it holds exactly the bytes it was handed, which are the bytes
        // the archiver hashed in flight.
        None if put.confirmed => Some(meta.sha256.clone()),
        // The full read below hashes the stored object anyway: one read, not two.
        None if mode == VerifyMode::Full => None,
        None => Some(hash_object(store, key).await?.0),
    };
    if let Some(stored_sha) = stored_sha {
        if stored_sha != meta.sha256 {
            return Err(mismatch("sha256", meta.sha256.clone(), stored_sha));
        }
    }
    if mode == VerifyMode::Full {
        let v = archiver::verify(store.get_stream(key).await?).await?;
        if hex(&v.sha256) != meta.sha256 {
            return Err(mismatch(
                "sha256 (full read)",
                meta.sha256.clone(),
                hex(&v.sha256),
            ));
        }
        if v.file_count != meta.file_count {
            return Err(mismatch(
                "file count",
                meta.file_count.to_string(),
                v.file_count.to_string(),
            ));
        }
        if v.uncompressed_bytes != meta.uncompressed_bytes {
            return Err(mismatch(
                "uncompressed size",
                meta.uncompressed_bytes.to_string(),
                v.uncompressed_bytes.to_string(),
            ));
        }
    }
    Ok(())
}

async fn write_metadata(store: &dyn ObjectStore, meta: &ArtifactMeta) -> Result<()> {
    let key = names::metadata_key(&meta.name);
    let body = serde_json::to_vec_pretty(meta).map_err(|e| CatalogError::CorruptDocument {
        url: store.url(&key),
        size: 0,
        detail: e.to_string(),
    })?;
    // The IfAbsent upload of the artifact made this name ours; a stale metadata object left by
    // someone else's crash is replaced.
    let opts = PutOptions {
        content_type: Some("application/json".into()),
        ..PutOptions::default()
    };
    store.put_bytes(&key, body.into(), opts).await?;
    Ok(())
}

async fn add_to_index(store: &dyn ObjectStore, meta: &ArtifactMeta) -> Result<()> {
    let url = store.url(INDEX_KEY);
    doc::update::<Index, _>(store, INDEX_KEY, |current| {
        let mut index = check_format(&url, current.unwrap_or_default())?;
        index.upsert(meta.clone());
        index.updated_at = now_rfc3339();
        Ok(Change::Write(index))
    })
    .await?;
    Ok(())
}

pub(crate) fn check_format(url: &str, index: Index) -> Result<Index> {
    if index.format_version > crate::meta::INDEX_FORMAT_VERSION {
        return Err(CatalogError::UnsupportedFormat {
            url: url.to_string(),
            found: index.format_version,
            supported: crate::meta::INDEX_FORMAT_VERSION,
        });
    }
    Ok(index)
}

async fn remove_quietly(store: &dyn ObjectStore, keys: &[String]) {
    for k in keys {
        if let Err(e) = store.delete(k).await {
            tracing::warn!(object = %store.url(k), error = %e, "could not remove an unpublished object");
        }
    }
}

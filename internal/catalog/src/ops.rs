//! Reading, verifying, restoring and deleting published artifacts, and keeping the latest
//! pointers (and their S3 redirects) in step with the index.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use objstore::{ObjectStore, PutOptions, StoreError};
use sha2::{Digest, Sha256};

use crate::doc::{self, Change};
use crate::error::{CatalogError, Result};
use crate::meta::{hex, now_rfc3339, ArtifactMeta, Index, LatestPointer};
use crate::names::{self, INDEX_KEY};
use crate::publish::{check_format, VerifyMode};

/// What [`verify_artifact`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub name: String,
    pub url: String,
    pub mode: VerifyMode,
    /// SHA-256 of the bytes read back, lowercase hex.
    pub sha256: String,
    pub compressed_bytes: u64,
    /// Only known after a [`VerifyMode::Full`] read.
    pub uncompressed_bytes: Option<u64>,
    /// Only known after a [`VerifyMode::Full`] read.
    pub file_count: Option<u64>,
}

/// Reads an object back and hashes it: (hex SHA-256, size).
pub(crate) async fn hash_object(store: &dyn ObjectStore, key: &str) -> Result<(String, u64)> {
    hash_object_with(store, key, &archiver::ReadOptions::default()).await
}

/// [`hash_object`] with progress reports and cancellation.
async fn hash_object_with(
    store: &dyn ObjectStore,
    key: &str,
    opts: &archiver::ReadOptions,
) -> Result<(String, u64)> {
    let mut stream = store.get_stream(key).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let started = std::time::Instant::now();
    let report = |size: u64| {
        if let Some(p) = &opts.progress {
            p(&archiver::ReadProgress {
                compressed_bytes: size,
                total_bytes: opts.total_bytes,
                elapsed: started.elapsed(),
            });
        }
    };
    let cancel = opts.cancel.clone().unwrap_or_default();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                return Err(CatalogError::ReadBack {
                    url: store.url(key),
                    source: archiver::ArchiveError::ReadCancelled,
                })
            }
            c = stream.next() => match c {
                Some(c) => c,
                None => break,
            },
        };
        let chunk = chunk.map_err(|e| StoreError::Io {
            url: store.url(key),
            detail: e.to_string(),
        })?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
        report(size);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((hex(&digest), size))
}

/// The index (`base.json`); an empty index when the prefix holds none yet.
pub async fn list(store: &dyn ObjectStore) -> Result<Index> {
    match doc::read::<Index>(store, INDEX_KEY).await? {
        Some((index, _)) => check_format(&store.url(INDEX_KEY), index),
        None => Ok(Index::default()),
    }
}

/// The metadata of one artifact (name, artifact key or metadata key), `None` when absent.
pub async fn get(store: &dyn ObjectStore, name: &str) -> Result<Option<ArtifactMeta>> {
    let name = names::name_from_key(name);
    Ok(doc::read::<ArtifactMeta>(store, &names::metadata_key(name))
        .await?
        .map(|(m, _)| m))
}

/// The artifact the latest pointer of a network and kind names, falling back to the newest
/// index entry when the pointer is missing or names an artifact that is gone.
pub async fn latest(
    store: &dyn ObjectStore,
    network: &str,
    kind: &str,
) -> Result<Option<ArtifactMeta>> {
    names::validate_network(network)?;
    names::validate_kind(kind)?;
    if let Some((p, _)) =
        doc::read::<LatestPointer>(store, &names::latest_key(network, kind)).await?
    {
        if let Some(m) = get(store, &p.name).await? {
            return Ok(Some(m));
        }
    }
    Ok(list(store).await?.newest(network, kind).cloned())
}

pub(crate) async fn require(store: &dyn ObjectStore, key_or_name: &str) -> Result<ArtifactMeta> {
    let name = names::name_from_key(key_or_name);
    get(store, name)
        .await?
        .ok_or_else(|| CatalogError::NotInCatalog {
            name: name.to_string(),
            url: store.url(&names::metadata_key(name)),
        })
}

/// Reads an artifact back and compares it with its metadata. Both modes re-read the object
/// (a store's stored checksum says what was uploaded, not what is there now); `Full` also
/// decompresses and walks the tar stream.
pub async fn verify_artifact(
    store: &dyn ObjectStore,
    key_or_name: &str,
    mode: VerifyMode,
) -> Result<VerifyReport> {
    verify_artifact_with(store, key_or_name, mode, archiver::ReadOptions::default()).await
}

/// [`verify_artifact`] with progress reports (the total is the published size) and
/// cancellation.
pub async fn verify_artifact_with(
    store: &dyn ObjectStore,
    key_or_name: &str,
    mode: VerifyMode,
    mut opts: archiver::ReadOptions,
) -> Result<VerifyReport> {
    let meta = require(store, key_or_name).await?;
    opts.total_bytes.get_or_insert(meta.size_bytes);
    let key = meta.artifact_key();
    let url = store.url(&key);
    let fail = |what, expected: String, actual: String| CatalogError::VerifyFailed {
        url: url.clone(),
        what,
        expected,
        actual,
    };
    let report = match mode {
        VerifyMode::Checksum => {
            let (sha, size) = hash_object_with(store, &key, &opts).await?;
            VerifyReport {
                name: meta.name.clone(),
                url: url.clone(),
                mode,
                sha256: sha,
                compressed_bytes: size,
                uncompressed_bytes: None,
                file_count: None,
            }
        }
        VerifyMode::Full => {
            let v = archiver::verify_with(store.get_stream(&key).await?, opts)
                .await
                .map_err(|source| CatalogError::ReadBack {
                    url: url.clone(),
                    source,
                })?;
            if v.file_count != meta.file_count {
                return Err(fail(
                    "file count",
                    meta.file_count.to_string(),
                    v.file_count.to_string(),
                ));
            }
            if v.uncompressed_bytes != meta.uncompressed_bytes {
                return Err(fail(
                    "uncompressed size",
                    meta.uncompressed_bytes.to_string(),
                    v.uncompressed_bytes.to_string(),
                ));
            }
            VerifyReport {
                name: meta.name.clone(),
                url: url.clone(),
                mode,
                sha256: hex(&v.sha256),
                compressed_bytes: v.compressed_bytes,
                uncompressed_bytes: Some(v.uncompressed_bytes),
                file_count: Some(v.file_count),
            }
        }
    };
    if report.compressed_bytes != meta.size_bytes {
        return Err(fail(
            "size",
            meta.size_bytes.to_string(),
            report.compressed_bytes.to_string(),
        ));
    }
    if report.sha256 != meta.sha256 {
        return Err(fail("sha256", meta.sha256.clone(), report.sha256.clone()));
    }
    Ok(report)
}

/// Restores an artifact as the directory `into`, all or nothing: the object is read into a
/// staging directory beside the target, checked against its metadata (SHA-256, size, file
/// count, uncompressed size) on top of the archiver's own checks (LZ4 checksums, safe paths),
/// and only then moved into place. On any failure or cancellation the target is left as it was.
pub async fn restore_artifact(
    store: &dyn ObjectStore,
    key_or_name: &str,
    into: &Path,
    opts: archiver::RestoreOptions,
) -> Result<archiver::VerifySummary> {
    let meta = require(store, key_or_name).await?;
    let staged = stage_checked(store, &meta, into, opts).await?;
    staged.commit().map_err(restore_failed(&meta, into))
}

/// How a restore's archiver error is reported: naming the artifact and the target.
pub(crate) fn restore_failed<'a>(
    meta: &'a ArtifactMeta,
    into: &'a Path,
) -> impl Fn(archiver::ArchiveError) -> CatalogError + 'a {
    move |source| CatalogError::Restore {
        name: meta.name.clone(),
        into: into.display().to_string(),
        source,
    }
}

/// The first half of [`restore_artifact`]: the artifact read into its staging directory and
/// checked against its metadata, ready to be committed (or dropped, which removes it).
pub(crate) async fn stage_checked(
    store: &dyn ObjectStore,
    meta: &ArtifactMeta,
    into: &Path,
    mut opts: archiver::RestoreOptions,
) -> Result<archiver::StagedRestore> {
    let failed = restore_failed(meta, into);
    opts.read.total_bytes.get_or_insert(meta.size_bytes);
    let stream = store.get_stream(&meta.artifact_key()).await?;
    let staged = archiver::stage_restore(stream, into, opts)
        .await
        .map_err(failed)?;
    let summary = staged.summary().clone();
    let mismatch = |what, expected: String, actual: String| CatalogError::RestoreMismatch {
        name: meta.name.clone(),
        into: into.display().to_string(),
        what,
        expected,
        actual,
    };
    // Dropping `staged` on any of these returns removes the staging directory.
    let checks = [
        ("sha256", meta.sha256.clone(), hex(&summary.sha256)),
        (
            "size",
            meta.size_bytes.to_string(),
            summary.compressed_bytes.to_string(),
        ),
        (
            "file count",
            meta.file_count.to_string(),
            summary.file_count.to_string(),
        ),
        (
            "uncompressed size",
            meta.uncompressed_bytes.to_string(),
            summary.uncompressed_bytes.to_string(),
        ),
    ];
    for (what, expected, actual) in checks {
        if expected != actual {
            return Err(mismatch(what, expected, actual));
        }
    }
    Ok(staged)
}

/// Removes an artifact: from the index first (conditionally), then repairs the latest pointer,
/// then deletes the objects. Returns false when there was nothing to delete.
pub async fn delete_artifact(store: &dyn ObjectStore, key_or_name: &str) -> Result<bool> {
    let name = names::name_from_key(key_or_name).to_string();
    let url = store.url(INDEX_KEY);
    let mut found: Option<ArtifactMeta> = None;
    doc::update::<Index, _>(store, INDEX_KEY, |current| {
        found = None;
        let Some(index) = current else {
            return Ok(Change::Keep);
        };
        let mut index = check_format(&url, index)?;
        found = index.get(&name).cloned();
        if found.is_none() {
            return Ok(Change::Keep);
        }
        index.artifacts.retain(|a| a.name != name);
        index.updated_at = now_rfc3339();
        Ok(Change::Write(index))
    })
    .await?;
    let meta = match found {
        Some(m) => Some(m),
        None => get(store, &name).await?,
    };
    if let Some(m) = &meta {
        repair_latest_pointer(store, &m.network, &m.kind).await?;
    }
    let artifact = store.head(&names::artifact_key(&name)).await?;
    store.delete(&names::artifact_key(&name)).await?;
    store.delete(&names::metadata_key(&name)).await?;
    Ok(meta.is_some() || artifact.is_some())
}

/// Moves the latest pointer forward to `meta` if it names nothing or something older.
pub(crate) async fn set_latest_pointer(store: &dyn ObjectStore, meta: &ArtifactMeta) -> Result<()> {
    let key = names::latest_key(&meta.network, &meta.kind);
    let written = doc::update::<LatestPointer, _>(store, &key, |current| match current {
        Some(p) if !p.is_older_than(meta) => Ok(Change::Keep),
        _ => Ok(Change::Write(LatestPointer::of(meta))),
    })
    .await?;
    if written.is_some() {
        sync_redirect(store, &meta.network, &meta.kind).await?;
    }
    Ok(())
}

/// Points the latest pointer at the newest artifact the index holds (or removes it when there is
/// none), after entries were removed.
pub(crate) async fn repair_latest_pointer(
    store: &dyn ObjectStore,
    network: &str,
    kind: &str,
) -> Result<()> {
    let key = names::latest_key(network, kind);
    let index = list(store).await?;
    let newest = index.newest(network, kind).cloned();
    doc::update::<LatestPointer, _>(store, &key, |current| match (&current, &newest) {
        (None, None) => Ok(Change::Keep),
        (Some(_), None) => Ok(Change::Remove),
        (Some(p), Some(n)) if p.name == n.name => Ok(Change::Keep),
        (Some(p), Some(n)) if index.get(&p.name).is_some() && !p.is_older_than(n) => {
            Ok(Change::Keep)
        }
        (_, Some(n)) => Ok(Change::Write(LatestPointer::of(n))),
    })
    .await?;
    sync_redirect(store, network, kind).await
}

/// On S3, makes `<network>-<kind>-tarball` redirect to what the latest pointer names. Stores have
/// no conditional write on redirects, so after each write the pointer is read again and the
/// redirect rewritten if another publisher moved it meanwhile: the last writer leaves both agreeing.
async fn sync_redirect(store: &dyn ObjectStore, network: &str, kind: &str) -> Result<()> {
    let rkey = names::redirect_key(network, kind);
    if !store.url(&rkey).starts_with("s3://") {
        return Ok(());
    }
    let pkey = names::latest_key(network, kind);
    for _ in 0..10 {
        let before = doc::read::<LatestPointer>(store, &pkey)
            .await?
            .map(|(p, _)| p);
        match &before {
            None => store.delete(&rkey).await?,
            Some(p) => {
                let opts = PutOptions {
                    content_type: Some("text/plain".into()),
                    website_redirect: Some(s3_redirect_path(&p.url)),
                    ..PutOptions::default()
                };
                store
                    .put_bytes(&rkey, Bytes::from(format!("{}\n", p.url)), opts)
                    .await?;
            }
        }
        let after = doc::read::<LatestPointer>(store, &pkey)
            .await?
            .map(|(p, _)| p);
        if after.as_ref().map(|p| &p.name) == before.as_ref().map(|p| &p.name) {
            return Ok(());
        }
    }
    Err(CatalogError::Contention {
        url: store.url(&rkey),
        attempts: 10,
    })
}

/// `s3://bucket/prefix/key` → `/prefix/key`: S3 website redirects are paths within the bucket.
pub(crate) fn s3_redirect_path(url: &str) -> String {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redirect_path_drops_bucket() {
        assert_eq!(
            super::s3_redirect_path("s3://b/snap/x.tar.lz4"),
            "/snap/x.tar.lz4"
        );
        assert_eq!(super::s3_redirect_path("s3://b/x.tar.lz4"), "/x.tar.lz4");
    }
}

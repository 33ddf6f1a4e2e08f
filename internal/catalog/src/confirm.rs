//! Checking what a publisher elsewhere says it published (a Job in a cluster, whose bytes never
//! pass through the caller) against the store itself, before the caller records it: the
//! metadata, the object and the index entry must all agree with the report.

use serde::{Deserialize, Serialize};

use crate::meta::{hex, ArtifactMeta};
use crate::{names, ops, CatalogError};
use objstore::ObjectStore;

/// What `testnet-archiver create --result-file` writes: one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReport {
    /// `<network>-<kind>-<label>`.
    pub name: String,
    /// Full URL of the artifact object.
    pub url: String,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
    /// Size of the object.
    pub size_bytes: u64,
}

impl PublishReport {
    /// Parses the report from the last line of `text` that is a JSON object.
    pub fn parse(text: &str) -> Option<PublishReport> {
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str(l.trim()).ok())
    }
}

/// Why a report was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Something the report names is not in the store.
    #[error("the publisher reported {name}, but the store has no {what} ({url})")]
    Missing {
        name: String,
        what: &'static str,
        url: String,
    },
    /// The store holds something other than what was reported.
    #[error("the publisher reported {what} {reported} for {name}, but the store's {source_} says {found}")]
    Mismatch {
        name: String,
        what: &'static str,
        reported: String,
        found: String,
        /// Which record disagreed: `metadata`, `object`, `base.json entry`.
        source_: &'static str,
    },
}

/// The artifact's metadata once the store confirms the report: the metadata, the object (size,
/// and SHA-256 where the store attests one) and the `base.json` entry agree with it. The object
/// is not read back (it may be hundreds of GB; the publisher verified it before publishing).
pub async fn confirm_report(
    store: &dyn ObjectStore,
    report: &PublishReport,
) -> Result<ArtifactMeta, ConfirmError> {
    let name = names::name_from_key(&report.name).to_string();
    let meta = ops::get(store, &name)
        .await?
        .ok_or_else(|| ConfirmError::Missing {
            name: name.clone(),
            what: "metadata",
            url: store.url(&names::metadata_key(&name)),
        })?;
    let mismatch = |what, reported: String, found: String, source_| ConfirmError::Mismatch {
        name: name.clone(),
        what,
        reported,
        found,
        source_,
    };
    if meta.sha256 != report.sha256 {
        return Err(mismatch(
            "sha256",
            report.sha256.clone(),
            meta.sha256,
            "metadata",
        ));
    }
    if meta.size_bytes != report.size_bytes {
        return Err(mismatch(
            "size",
            report.size_bytes.to_string(),
            meta.size_bytes.to_string(),
            "metadata",
        ));
    }
    if meta.url != report.url {
        return Err(mismatch("url", report.url.clone(), meta.url, "metadata"));
    }
    let key = meta.artifact_key();
    let head = store
        .head(&key)
        .await
        .map_err(CatalogError::from)?
        .ok_or_else(|| ConfirmError::Missing {
            name: name.clone(),
            what: "artifact object",
            url: store.url(&key),
        })?;
    if head.size != report.size_bytes {
        return Err(mismatch(
            "size",
            report.size_bytes.to_string(),
            head.size.to_string(),
            "object",
        ));
    }
    if let Some(sha) = head.sha256.map(|s| hex(&s)) {
        if sha != report.sha256 {
            return Err(mismatch("sha256", report.sha256.clone(), sha, "object"));
        }
    }
    let index = ops::list(store).await?;
    let entry = index.get(&name).ok_or_else(|| ConfirmError::Missing {
        name: name.clone(),
        what: "base.json entry",
        url: store.url(names::INDEX_KEY),
    })?;
    if entry.sha256 != report.sha256 {
        return Err(mismatch(
            "sha256",
            report.sha256.clone(),
            entry.sha256.clone(),
            "base.json entry",
        ));
    }
    Ok(meta)
}

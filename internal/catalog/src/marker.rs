//! The restore marker: a small JSON file a restore leaves at the root of the tree it restored
//! (`.testnet-restored.json`), naming the artifact and its SHA-256. It is written into the staged
//! tree before the tree moves into place, so it is there exactly when the data is.
//!
//! What it is for: an init container runs its restore every time its pod starts. Finding the
//! marker of the artifact it was asked for, the restore is done at once without reading the
//! object; finding another artifact's marker, or files with no marker, it refuses unless told
//! to replace them, and says what the directory holds.
//!
//! The marker is a claim about what was restored, not a check of what is there now: a tree
//! changed after its restore still carries its marker (a node's own writes change it at once).
//! Remove the marker, or restore with `--replace` into an emptied directory, to restore again.
//! `archiver::DEFAULT_EXCLUDES` leaves it out of archives, so a snapshot of a restored node does
//! not carry a stale marker.

use std::io;
use std::path::Path;

use objstore::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::meta::{now_rfc3339, ArtifactMeta};
use crate::names;
use crate::ops;

/// Name of the marker file at the root of a restored tree.
pub const MARKER_FILE: &str = archiver::RESTORE_MARKER;

/// What a restore left in the tree it restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMarker {
    /// The artifact's name, e.g. `ghostnet-rolling-42`.
    pub name: String,
    /// Where it was read from.
    pub url: String,
    /// SHA-256 of the artifact (lowercase hex): what "the same artifact" means.
    pub sha256: String,
    pub size_bytes: u64,
    pub network: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u64>,
    /// RFC 3339 UTC, when the restored tree was moved into place.
    pub restored_at: String,
    /// The tool that restored it, e.g. `testnet-archiver/0.1.0`.
    pub tool_version: String,
}

impl RestoreMarker {
    fn of(meta: &ArtifactMeta, tool_version: &str) -> RestoreMarker {
        RestoreMarker {
            name: meta.name.clone(),
            url: meta.url.clone(),
            sha256: meta.sha256.clone(),
            size_bytes: meta.size_bytes,
            network: meta.network.clone(),
            kind: meta.kind.clone(),
            block_height: meta.block_height,
            restored_at: now_rfc3339(),
            tool_version: tool_version.to_string(),
        }
    }

    /// Whether this marker names the artifact `meta` describes (same bytes: same SHA-256).
    pub fn is_of(&self, meta: &ArtifactMeta) -> bool {
        self.sha256.eq_ignore_ascii_case(&meta.sha256)
    }
}

/// What a marked restore records, and how it treats a directory that holds another artifact.
#[derive(Debug, Clone, Default)]
pub struct MarkerOptions {
    /// Written into the marker, e.g. `testnet-archiver/0.1.0`.
    pub tool_version: String,
    /// Keep whatever restored artifact the directory holds (any marker) instead of refusing or
    /// replacing it: restore only into a directory that holds none. For nodes that catch up
    /// from their own state once started, where a newer snapshot must not wipe that progress.
    pub keep_restored: bool,
}

/// The result of a marked restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// The directory already held this artifact (its marker says so); nothing was read.
    AlreadyRestored(RestoreMarker),
    /// The directory held another restored artifact and [`MarkerOptions::keep_restored`] kept
    /// it; nothing was read. `wanted` is the artifact that was asked for.
    KeptOther { held: RestoreMarker, wanted: String },
    /// The artifact was read, checked and moved into place with its marker.
    Restored {
        marker: RestoreMarker,
        summary: archiver::VerifySummary,
    },
}

impl RestoreOutcome {
    pub fn marker(&self) -> &RestoreMarker {
        match self {
            RestoreOutcome::AlreadyRestored(m)
            | RestoreOutcome::KeptOther { held: m, .. }
            | RestoreOutcome::Restored { marker: m, .. } => m,
        }
    }
}

/// The marker at the root of `dir`: `None` when `dir` or the marker is missing, an error when a
/// marker is there but cannot be read or parsed.
pub fn read_marker(dir: &Path) -> Result<Option<RestoreMarker>> {
    let path = dir.join(MARKER_FILE);
    let bad = |detail: String| CatalogError::BadMarker {
        path: path.display().to_string(),
        into: dir.display().to_string(),
        detail,
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// Restores an artifact (by name or key) as `into` like [`crate::restore_artifact`], leaving a
/// marker; or does nothing when `into` already holds that artifact's marker. A directory holding
/// another artifact, or files without a marker, is refused unless `opts.replace`; one holding
/// another artifact is kept as it is with `how.keep_restored`.
pub async fn restore_marked(
    store: &dyn ObjectStore,
    key_or_name: &str,
    into: &Path,
    opts: archiver::RestoreOptions,
    how: &MarkerOptions,
) -> Result<RestoreOutcome> {
    let meta = ops::require(store, key_or_name).await?;
    restore_meta(store, &meta, into, opts, how).await
}

/// [`restore_marked`] of the artifact the latest pointer of `network` and `kind` names (the
/// newest index entry when the pointer is missing or stale).
pub async fn restore_latest(
    store: &dyn ObjectStore,
    network: &str,
    kind: &str,
    into: &Path,
    opts: archiver::RestoreOptions,
    how: &MarkerOptions,
) -> Result<RestoreOutcome> {
    let meta = ops::latest(store, network, kind)
        .await?
        .ok_or_else(|| CatalogError::NoLatest {
            network: network.to_string(),
            kind: kind.to_string(),
            store: store.url(""),
            pointer: store.url(&names::latest_key(network, kind)),
        })?;
    restore_meta(store, &meta, into, opts, how).await
}

async fn restore_meta(
    store: &dyn ObjectStore,
    meta: &ArtifactMeta,
    into: &Path,
    opts: archiver::RestoreOptions,
    how: &MarkerOptions,
) -> Result<RestoreOutcome> {
    let held = match read_marker(into) {
        Ok(h) => h,
        Err(e) if opts.replace => {
            tracing::warn!(error = %e, "restore: replacing a tree whose marker is unreadable");
            None
        }
        Err(e) => return Err(e),
    };
    match &held {
        Some(m) if m.is_of(meta) => return Ok(RestoreOutcome::AlreadyRestored(m.clone())),
        Some(m) if how.keep_restored => {
            return Ok(RestoreOutcome::KeptOther {
                held: m.clone(),
                wanted: meta.name.clone(),
            })
        }
        Some(m) if !opts.replace => {
            return Err(CatalogError::HoldsOtherArtifact {
                into: into.display().to_string(),
                held: m.name.clone(),
                held_sha256: m.sha256.clone(),
                restored_at: m.restored_at.clone(),
                wanted: meta.name.clone(),
                wanted_sha256: meta.sha256.clone(),
            })
        }
        _ => {}
    }
    let failed = ops::restore_failed(meta, into);
    let mut staged = match ops::stage_checked(store, meta, into, opts).await {
        Err(CatalogError::Restore {
            source: archiver::ArchiveError::TargetNotEmpty { .. },
            ..
        }) if held.is_none() => {
            return Err(CatalogError::HoldsUnmarked {
                into: into.display().to_string(),
                marker: MARKER_FILE.to_string(),
                wanted: meta.name.clone(),
            })
        }
        r => r?,
    };
    let marker = RestoreMarker::of(meta, &how.tool_version);
    let mut json = serde_json::to_vec_pretty(&marker).map_err(|e| CatalogError::InvalidValue {
        field: "restore marker",
        value: meta.name.clone(),
        reason: e.to_string(),
    })?;
    json.push(b'\n');
    staged.add_file(MARKER_FILE, &json).map_err(&failed)?;
    let summary = staged.commit().map_err(&failed)?;
    Ok(RestoreOutcome::Restored { marker, summary })
}

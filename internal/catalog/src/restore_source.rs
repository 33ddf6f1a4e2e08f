//! Restoring an artifact somewhere the caller cannot see (a claim inside a cluster, filled by a
//! Job): what the caller checks before it starts the restore (the artifact URL names a store a
//! pod can reach, the metadata exists and has the SHA-256 the user pinned) and after (the
//! restorer reports the artifact it verified, and that is the one expected).

use serde::{Deserialize, Serialize};

use crate::meta::ArtifactMeta;
use crate::{names, ops, CatalogError};
use objstore::ObjectStore;

/// Store schemes a pod can reach; `file://` names a directory of the caller's machine.
pub const REMOTE_SCHEMES: [&str; 2] = ["s3://", "gs://"];

/// Why an artifact cannot be restored, or a restore is not the one expected.
#[derive(Debug, thiserror::Error)]
pub enum RestoreSourceError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The URL is not `<store prefix>/<name>.tar.lz4` in a remote store.
    #[error("{url:?} {reason}. Allowed: the URL of an artifact in an S3 or GCS store, e.g. s3://bucket/prefix/ghostnet-rolling-42.tar.lz4")]
    BadUrl { url: String, reason: &'static str },
    /// The pinned checksum is not 64 hex digits.
    #[error("{value:?} is not a SHA-256: expected 64 hexadecimal digits")]
    BadSha256 { value: String },
    /// No metadata for the artifact: nothing to verify a restore against.
    #[error("no artifact is published at {url}: its metadata {metadata_url} is missing")]
    NotPublished { url: String, metadata_url: String },
    /// The artifact's metadata names another checksum than the one pinned.
    #[error("the artifact {url} has sha256 {found} in its metadata, not {expected}. Was it republished? Update sha256 to restore this artifact, or point url at the one you meant")]
    Sha256Mismatch {
        url: String,
        expected: String,
        found: String,
    },
    /// The restorer gave no report.
    #[error("the restore gave no result (no JSON report at the end of its output)")]
    NoReport,
    /// The restorer restored something else than what was checked.
    #[error("the restore reported sha256 {reported} for {url}, but {expected} was expected")]
    ReportMismatch {
        url: String,
        reported: String,
        expected: String,
    },
}

/// Splits a restorable artifact URL into its store prefix and object key.
pub fn split_artifact_url(url: &str) -> Result<(&str, &str), RestoreSourceError> {
    let bad = |reason| RestoreSourceError::BadUrl {
        url: url.to_string(),
        reason,
    };
    if url.starts_with("file://") {
        return Err(bad(
            "names a directory on this machine, which a pod in the cluster does not see",
        ));
    }
    let Some(rest) = REMOTE_SCHEMES.iter().find_map(|s| url.strip_prefix(s)) else {
        return Err(bad("is not an s3:// or gs:// URL"));
    };
    let Some((bucket_and_prefix, key)) = rest.rsplit_once('/') else {
        return Err(bad("names a bucket but no artifact"));
    };
    if bucket_and_prefix.is_empty() || !key.ends_with(".tar.lz4") || key == ".tar.lz4" {
        return Err(bad("does not end in <bucket>[/prefix]/<name>.tar.lz4"));
    }
    let prefix_len = url.len() - key.len() - 1;
    Ok((&url[..prefix_len], key))
}

/// A pinned checksum in canonical form (lowercase hex).
pub fn normalize_sha256(value: &str) -> Result<String, RestoreSourceError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(RestoreSourceError::BadSha256 {
            value: value.to_string(),
        })
    }
}

/// The artifact's metadata, once it exists and (when `expected` is set) names that SHA-256.
/// Checked before a restore starts, so a wrong pin costs no Job and no download.
pub async fn check_restore_source(
    store: &dyn ObjectStore,
    key: &str,
    expected: Option<&str>,
) -> Result<ArtifactMeta, RestoreSourceError> {
    let name = names::name_from_key(key);
    let Some(meta) = ops::get(store, name).await? else {
        return Err(RestoreSourceError::NotPublished {
            url: store.url(key),
            metadata_url: store.url(&names::metadata_key(name)),
        });
    };
    if let Some(e) = expected {
        let e = normalize_sha256(e)?;
        if !meta.sha256.eq_ignore_ascii_case(&e) {
            return Err(RestoreSourceError::Sha256Mismatch {
                url: store.url(key),
                expected: e,
                found: meta.sha256,
            });
        }
    }
    Ok(meta)
}

/// What `testnet-archiver restore` prints on success (a JSON object, pretty-printed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    pub url: String,
    pub into: String,
    /// SHA-256 of the artifact as read and checked against its metadata.
    pub sha256: String,
    pub size_bytes: u64,
    pub uncompressed_bytes: u64,
    pub file_count: u64,
}

impl RestoreReport {
    /// The last JSON object in `lines` (a log's end: progress lines first, then the report,
    /// which may span several lines).
    pub fn from_log(lines: &[String]) -> Option<RestoreReport> {
        (0..lines.len())
            .rev()
            .filter(|&i| lines[i].trim_start().starts_with('{'))
            .find_map(|i| serde_json::from_str(&lines[i..].join("\n")).ok())
    }

    /// Checks that this report is of the artifact `meta` describes.
    pub fn confirm(&self, meta: &ArtifactMeta) -> Result<(), RestoreSourceError> {
        if self.sha256.eq_ignore_ascii_case(&meta.sha256) {
            Ok(())
        } else {
            Err(RestoreSourceError::ReportMismatch {
                url: meta.url.clone(),
                reported: self.sha256.clone(),
                expected: meta.sha256.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_pod_can_reach() {
        assert_eq!(
            split_artifact_url("s3://snap/p/q/ghostnet-rolling-42.tar.lz4").unwrap(),
            ("s3://snap/p/q", "ghostnet-rolling-42.tar.lz4")
        );
        assert_eq!(
            split_artifact_url("gs://b/a.tar.lz4").unwrap(),
            ("gs://b", "a.tar.lz4")
        );
        for (bad, why) in [
            ("file:///srv/a.tar.lz4", "a pod in the cluster does not see"),
            ("http://x/a.tar.lz4", "not an s3:// or gs://"),
            ("s3://bucket", "no artifact"),
            ("s3://b/p/a.json", ".tar.lz4"),
            ("s3:///a.tar.lz4", ".tar.lz4"),
        ] {
            let e = split_artifact_url(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("Allowed:"), "{e}");
        }
    }

    #[test]
    fn pinned_checksums() {
        let h = "AB".repeat(32);
        assert_eq!(normalize_sha256(&h).unwrap(), "ab".repeat(32));
        assert!(normalize_sha256("abc").is_err());
        assert!(normalize_sha256(&"g".repeat(64)).is_err());
    }

    fn meta(sha: &str) -> ArtifactMeta {
        serde_json::from_value(serde_json::json!({
            "name": "n-k-1", "network": "n", "kind": "k", "label": "1", "size_bytes": 3,
            "uncompressed_bytes": 3, "file_count": 1, "sha256": sha, "created_at": "x",
            "tool_version": "t", "url": "s3://b/n-k-1.tar.lz4"
        }))
        .unwrap()
    }

    #[test]
    fn the_report_is_the_json_at_the_end_of_the_log() {
        let sha = "a".repeat(64);
        let report = serde_json::to_string_pretty(&serde_json::json!({
            "url": "s3://b/n-k-1.tar.lz4", "into": "/data", "sha256": sha,
            "size_bytes": 3, "uncompressed_bytes": 3, "file_count": 1,
        }))
        .unwrap();
        let mut lines = vec![
            "testnet-archiver: restore: 1.0 of 3.0 MiB".to_string(),
            "{not json".to_string(),
        ];
        lines.extend(report.lines().map(str::to_string));
        let r = RestoreReport::from_log(&lines).expect("report");
        assert_eq!(r.into, "/data");
        assert!(r.confirm(&meta(&sha)).is_ok());
        let e = r.confirm(&meta(&"b".repeat(64))).unwrap_err();
        assert!(matches!(e, RestoreSourceError::ReportMismatch { .. }));
        assert!(RestoreReport::from_log(&lines[..2]).is_none());
    }

    #[tokio::test]
    async fn the_metadata_must_exist_and_match_the_pin() {
        let store = crate::memstore::MemStore::new("mem://s");
        let m = meta(&"c".repeat(64));
        objstore::ObjectStore::put_bytes(
            &store,
            "n-k-1.json",
            serde_json::to_vec(&m).unwrap().into(),
            Default::default(),
        )
        .await
        .unwrap();
        let got = check_restore_source(&store, "n-k-1.tar.lz4", Some(&"C".repeat(64)))
            .await
            .unwrap();
        assert_eq!(got.name, "n-k-1");
        assert!(check_restore_source(&store, "n-k-1.tar.lz4", None)
            .await
            .is_ok());
        let e = check_restore_source(&store, "n-k-1.tar.lz4", Some(&"d".repeat(64)))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Update sha256"), "{e}");
        let e = check_restore_source(&store, "n-k-2.tar.lz4", None)
            .await
            .unwrap_err();
        assert!(matches!(e, RestoreSourceError::NotPublished { .. }), "{e}");
    }
}

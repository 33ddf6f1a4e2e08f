//! The JSON documents of a catalog: per-artifact metadata, the `base.json` index and the latest
//! pointers. Field names are part of the published format: change them only with a new
//! [`INDEX_FORMAT_VERSION`].

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Version of the `base.json` format written by this crate.
pub const INDEX_FORMAT_VERSION: u32 = 1;

/// What is published about one artifact, in `<name>.json` and as an entry of `base.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// `<network>-<kind>-<label>`; the artifact key is `<name>.tar.lz4`.
    pub name: String,
    pub network: String,
    pub kind: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_time: Option<String>,
    /// Size of the `.tar.lz4` object.
    pub size_bytes: u64,
    /// Sum of the archived bytes before compression (tar stream).
    pub uncompressed_bytes: u64,
    pub file_count: u64,
    /// Lowercase hex SHA-256 of the `.tar.lz4` object.
    pub sha256: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Glob patterns excluded from the archive (including the defaults when they applied).
    #[serde(default)]
    pub excludes: Vec<String>,
    pub tool_version: String,
    /// Full URL of the artifact object (`file://`, `s3://`, `gs://`).
    pub url: String,
}

impl ArtifactMeta {
    /// The artifact's object key relative to the store prefix.
    pub fn artifact_key(&self) -> String {
        crate::names::artifact_key(&self.name)
    }

    /// Orders artifacts of one network and kind from oldest to newest: an artifact with a block
    /// height ranks above one without, higher heights rank higher; then the later `created_at`;
    /// then the name, so every publisher agrees on "newest" without talking to the others.
    pub fn recency_cmp(&self, other: &Self) -> Ordering {
        self.block_height
            .cmp(&other.block_height)
            .then_with(|| parse_time(&self.created_at).cmp(&parse_time(&other.created_at)))
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// `base.json`: every artifact of the store prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format_version: u32,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// Sorted by name.
    pub artifacts: Vec<ArtifactMeta>,
    /// Artifacts retention took out of `artifacts` whose objects wait for the grace period
    /// before they are deleted. Not for readers: these are on their way out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<crate::retention::Retired>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            format_version: INDEX_FORMAT_VERSION,
            updated_at: now_rfc3339(),
            artifacts: Vec::new(),
            retired: Vec::new(),
        }
    }
}

impl Index {
    /// Looks an artifact up by name.
    pub fn get(&self, name: &str) -> Option<&ArtifactMeta> {
        self.artifacts.iter().find(|a| a.name == name)
    }

    /// The newest artifact of a network and kind, by [`ArtifactMeta::recency_cmp`].
    pub fn newest(&self, network: &str, kind: &str) -> Option<&ArtifactMeta> {
        self.artifacts
            .iter()
            .filter(|a| a.network == network && a.kind == kind)
            .max_by(|a, b| a.recency_cmp(b))
    }

    /// Inserts or replaces an entry, keeping the list sorted by name.
    pub(crate) fn upsert(&mut self, meta: ArtifactMeta) {
        match self.artifacts.binary_search_by(|a| a.name.cmp(&meta.name)) {
            Ok(i) => self.artifacts[i] = meta,
            Err(i) => self.artifacts.insert(i, meta),
        }
    }
}

/// `<network>-<kind>-latest.json`: names the newest artifact of a network and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestPointer {
    pub name: String,
    pub url: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u64>,
    pub created_at: String,
}

impl LatestPointer {
    pub(crate) fn of(meta: &ArtifactMeta) -> Self {
        LatestPointer {
            name: meta.name.clone(),
            url: meta.url.clone(),
            sha256: meta.sha256.clone(),
            block_height: meta.block_height,
            created_at: meta.created_at.clone(),
        }
    }

    /// True when `meta` is newer than what this pointer names (same order as
    /// [`ArtifactMeta::recency_cmp`]).
    pub(crate) fn is_older_than(&self, meta: &ArtifactMeta) -> bool {
        let mine = (
            self.block_height,
            parse_time(&self.created_at),
            self.name.as_str(),
        );
        let theirs = (
            meta.block_height,
            parse_time(&meta.created_at),
            meta.name.as_str(),
        );
        mine < theirs
    }
}

/// Current time, RFC 3339 UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// Parses RFC 3339; unparsable times sort as the oldest.
fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Whether a string is RFC 3339.
pub(crate) fn is_rfc3339(s: &str) -> bool {
    parse_time(s).is_some()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, height: Option<u64>, created: &str) -> ArtifactMeta {
        ArtifactMeta {
            name: name.into(),
            network: "n".into(),
            kind: "k".into(),
            label: name.into(),
            block_height: height,
            block_hash: None,
            block_time: None,
            size_bytes: 1,
            uncompressed_bytes: 1,
            file_count: 1,
            sha256: "00".into(),
            created_at: created.into(),
            excludes: vec![],
            tool_version: "t".into(),
            url: format!("file:///x/{name}"),
        }
    }

    #[test]
    fn newest_prefers_height_then_time() {
        let mut idx = Index::default();
        idx.upsert(meta("b", Some(10), "2026-01-02T00:00:00Z"));
        idx.upsert(meta("a", Some(20), "2026-01-01T00:00:00Z"));
        idx.upsert(meta("c", None, "2026-01-03T00:00:00Z"));
        assert_eq!(idx.newest("n", "k").map(|m| m.name.as_str()), Some("a"));
        assert_eq!(
            idx.artifacts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        // Time compares as time, not as text: "+01:00" at 00:30 is earlier than 00:00Z the same day.
        let early = meta("x", None, "2026-01-01T00:30:00+01:00");
        let late = meta("y", None, "2026-01-01T00:00:00Z");
        assert_eq!(early.recency_cmp(&late), Ordering::Less);
        assert!(LatestPointer::of(&early).is_older_than(&late));
        assert!(!LatestPointer::of(&late).is_older_than(&early));
        assert!(!LatestPointer::of(&late).is_older_than(&late));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}

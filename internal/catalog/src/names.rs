//! Names of networks, kinds and labels, and the object keys built from them.
//!
//! Keys are chosen so that no two kinds of object can collide: a kind has no `-`, and a label
//! never ends in `latest` or `tarball`, so `<network>-<kind>-latest.json` (a pointer) can never be
//! the metadata of an artifact, and two networks can never share a pointer.

use crate::error::{CatalogError, Result};

/// Key of the catalog index.
pub const INDEX_KEY: &str = "base.json";
/// Suffix of artifact objects.
pub const ARTIFACT_SUFFIX: &str = ".tar.lz4";
/// Suffix of per-artifact metadata objects.
pub const METADATA_SUFFIX: &str = ".json";

const NETWORK_ALLOWED: &str = "use 1 to 63 characters of a-z, 0-9 and '-', starting and ending \
                               with a letter or digit (e.g. \"ghostnet\", \"my-testnet\")";
const KIND_ALLOWED: &str =
    "use 1 to 32 characters of a-z and 0-9, no '-' (e.g. \"rolling\", \"archive\")";
const LABEL_ALLOWED: &str = "use 1 to 63 characters of a-z, 0-9 and '-', starting and ending with \
                             a letter or digit, not ending in \"latest\" or \"tarball\" \
                             (e.g. \"1234567\", \"20260101-120000\")";

fn is_dns_label(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Checks a network name (a DNS label).
pub fn validate_network(network: &str) -> Result<()> {
    if is_dns_label(network, 63) {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            field: "network",
            value: network.into(),
            allowed: NETWORK_ALLOWED,
        })
    }
}

/// Checks a kind (`rolling`, `archive`, ...): no `-`, so keys can be split unambiguously.
pub fn validate_kind(kind: &str) -> Result<()> {
    if is_dns_label(kind, 32) && !kind.contains('-') {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            field: "kind",
            value: kind.into(),
            allowed: KIND_ALLOWED,
        })
    }
}

/// Checks a label: a DNS label that cannot be mistaken for a pointer key.
pub fn validate_label(label: &str) -> Result<()> {
    if is_dns_label(label, 63) && !label.ends_with("latest") && !label.ends_with("tarball") {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            field: "label",
            value: label.into(),
            allowed: LABEL_ALLOWED,
        })
    }
}

/// The artifact name `<network>-<kind>-<label>`.
pub fn artifact_name(network: &str, kind: &str, label: &str) -> String {
    format!("{network}-{kind}-{label}")
}

/// `<name>.tar.lz4`
pub fn artifact_key(name: &str) -> String {
    format!("{name}{ARTIFACT_SUFFIX}")
}

/// `<name>.json`
pub fn metadata_key(name: &str) -> String {
    format!("{name}{METADATA_SUFFIX}")
}

/// `<network>-<kind>-latest.json`: the JSON pointer to the newest artifact of a network and kind.
pub fn latest_key(network: &str, kind: &str) -> String {
    format!("{network}-{kind}-latest.json")
}

/// `<network>-<kind>-tarball`: on S3 an empty object whose website redirect forwards a
/// public-bucket URL to the newest artifact.
pub fn redirect_key(network: &str, kind: &str) -> String {
    format!("{network}-{kind}-tarball")
}

/// Accepts an artifact name, its artifact key or its metadata key, and returns the name.
pub fn name_from_key(key_or_name: &str) -> &str {
    let base = key_or_name.rsplit('/').next().unwrap_or(key_or_name);
    base.strip_suffix(ARTIFACT_SUFFIX)
        .or_else(|| base.strip_suffix(METADATA_SUFFIX))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let ok_networks = ["ghostnet", "my-testnet", "n0", "a"];
        let bad_networks = [
            "",
            "Ghostnet",
            "-net",
            "net-",
            "net_1",
            "net.1",
            &"a".repeat(64),
        ];
        for n in ok_networks {
            assert!(validate_network(n).is_ok(), "{n}");
        }
        for n in bad_networks {
            assert!(validate_network(n).is_err(), "{n}");
        }
        assert!(validate_kind("rolling").is_ok());
        assert!(validate_kind("full-node").is_err());
        assert!(validate_kind("").is_err());
        assert!(validate_label("1234567").is_ok());
        assert!(validate_label("20260101-120000").is_ok());
        for bad in [
            "latest",
            "v1-latest",
            "tarball",
            "x-tarball",
            "A",
            "a b",
            "",
        ] {
            assert!(validate_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_says_what_is_allowed() {
        let msg = validate_kind("Full-Node").unwrap_err().to_string();
        assert!(
            msg.contains("\"Full-Node\"") && msg.contains("no '-'"),
            "{msg}"
        );
    }

    #[test]
    fn key_round_trip() {
        let name = artifact_name("ghostnet", "rolling", "42");
        assert_eq!(artifact_key(&name), "ghostnet-rolling-42.tar.lz4");
        assert_eq!(name_from_key(&artifact_key(&name)), name);
        assert_eq!(name_from_key(&metadata_key(&name)), name);
        assert_eq!(name_from_key("sub/dir/ghostnet-rolling-42.tar.lz4"), name);
        assert_eq!(name_from_key(&name), name);
        assert_eq!(
            latest_key("ghostnet", "rolling"),
            "ghostnet-rolling-latest.json"
        );
    }
}

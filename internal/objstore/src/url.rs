//! Parsing of store URLs (`s3://bucket/prefix`, `gs://bucket/prefix`, `file:///dir`), kept apart
//! from the stores so a provider can validate a URL at plan time without opening anything.

use std::path::PathBuf;

use crate::{Result, StoreError};

/// Which store a URL names, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory (absolute path).
    Local { dir: PathBuf },
    /// An S3 bucket and a key prefix without leading or trailing `/` (may be empty).
    S3 { bucket: String, prefix: String },
    /// A GCS bucket and a key prefix without leading or trailing `/` (may be empty).
    Gcs { bucket: String, prefix: String },
}

impl StoreUrl {
    /// Parses a store URL; rejects unknown schemes, a missing bucket and relative local paths.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "expected SCHEME://..., one of s3://bucket/prefix, gs://bucket/prefix, file:///dir",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("a file URL needs an absolute path: file:///dir"));
                }
                let dir = rest.trim_end_matches('/');
                Ok(StoreUrl::Local {
                    dir: PathBuf::from(if dir.is_empty() { "/" } else { dir }),
                })
            }
            "s3" | "gs" => {
                let (bucket, prefix) = match rest.split_once('/') {
                    Some((b, p)) => (b, p),
                    None => (rest, ""),
                };
                if bucket.is_empty() {
                    return Err(bad("the bucket name is missing"));
                }
                if let Some(c) = bucket
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
                {
                    return Err(bad(&format!(
                        "bucket names may hold letters, digits, '-', '.', '_', not {c:?}"
                    )));
                }
                let prefix = prefix.trim_matches('/');
                if prefix
                    .split('/')
                    .any(|seg| seg.is_empty() && !prefix.is_empty())
                {
                    return Err(bad("the prefix holds an empty path segment (\"//\")"));
                }
                let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
                Ok(if scheme.eq_ignore_ascii_case("s3") {
                    StoreUrl::S3 { bucket, prefix }
                } else {
                    StoreUrl::Gcs { bucket, prefix }
                })
            }
            other => Err(bad(&format!(
                "unknown scheme {other:?}; use s3://, gs:// or file://"
            ))),
        }
    }
}

/// Joins a store prefix and a key into the object name the server sees.
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let key = key.trim_start_matches('/');
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Strips a store prefix from an object name the server listed; `None` when outside the prefix.
pub(crate) fn strip_key<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        Some(name)
    } else {
        name.strip_prefix(prefix)?.strip_prefix('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            StoreUrl::parse("s3://snaps/tezos/ghostnet/").unwrap(),
            StoreUrl::S3 {
                bucket: "snaps".into(),
                prefix: "tezos/ghostnet".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("gs://snaps").unwrap(),
            StoreUrl::Gcs {
                bucket: "snaps".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("gs://snaps/").unwrap(),
            StoreUrl::Gcs {
                bucket: "snaps".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///var/snap/").unwrap(),
            StoreUrl::Local {
                dir: "/var/snap".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("S3://b/p").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "p".into()
            }
        );
    }

    #[test]
    fn rejects_bad_urls_with_the_reason() {
        let cases = [
            ("http://bucket/x", "unknown scheme \"http\""),
            ("s3:///prefix", "bucket name is missing"),
            ("gs://", "bucket name is missing"),
            ("snaps/x", "expected SCHEME://"),
            ("file://relative/dir", "absolute path"),
            ("s3://bad bucket/x", "not ' '"),
            ("s3://b/a//c", "empty path segment"),
        ];
        for (url, want) in cases {
            match StoreUrl::parse(url) {
                Err(StoreError::BadUrl { url: u, reason }) => {
                    assert_eq!(u, url);
                    assert!(
                        reason.contains(want),
                        "{url}: reason {reason:?} lacks {want:?}"
                    );
                }
                other => panic!("{url}: expected BadUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn joins_and_strips_keys() {
        assert_eq!(join_key("", "a/b"), "a/b");
        assert_eq!(join_key("p/q", "a"), "p/q/a");
        assert_eq!(strip_key("p/q", "p/q/a"), Some("a"));
        assert_eq!(strip_key("p/q", "p/qa"), None);
        assert_eq!(strip_key("", "x"), Some("x"));
    }
}

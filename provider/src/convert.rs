//! The provider's edge: domain errors become diagnostics that name the attribute, the value and
//! what to do.

use std::time::Duration;

use tfplug::{AttributePath, Diagnostics};

/// A cluster error as a diagnostic, attached to `attr` when one attribute caused it.
pub fn cluster_error(e: &cluster::ClusterError, attr: Option<&str>, diags: &mut Diagnostics) {
    use cluster::ClusterError as E;
    let summary = match e {
        E::NoConfiguration { .. }
        | E::BadKubeconfig { .. }
        | E::UnknownContext { .. }
        | E::InvalidConfig { .. } => "Kubernetes connection not configured",
        E::Unreachable { .. } => "Kubernetes API server unreachable",
        E::Unauthorized { .. } => "Kubernetes credentials rejected",
        E::CredentialPlugin { .. } => "Kubernetes credential plugin failed",
        E::Forbidden { .. } => "Not allowed by the cluster",
        E::NotFound { .. } => "Kubernetes object not found",
        E::AlreadyExists { .. } => "Kubernetes object already exists",
        E::Conflict { .. } => "Concurrent change",
        E::Invalid { .. } => "Rejected by the Kubernetes API server",
        E::Immutable { .. } => "Field cannot change in place",
        E::ShrinkNotAllowed { .. } => "Storage cannot shrink",
        E::ExpansionNotAllowed { .. } => "Storage class does not allow expansion",
        E::NotReady { .. } => "Claim not ready",
        E::StillInUse { .. } => "Claim still in use",
        E::Cancelled { .. } => "Interrupted",
        _ => "Kubernetes request failed",
    };
    let mut detail = e.to_string();
    if let E::Invalid { causes, .. } = e {
        for c in causes {
            detail.push_str(&format!("\n- {}: {} ({})", c.field, c.message, c.reason));
        }
    }
    match attr {
        Some(a) => diags.attr_error(AttributePath::attr(a), summary, detail),
        None => diags.error(summary, detail),
    }
}

/// An object-store error as a diagnostic.
pub fn store_error(e: &objstore::StoreError, attr: Option<&str>, diags: &mut Diagnostics) {
    use objstore::StoreError as E;
    let summary = match e {
        E::BadUrl { .. } => "Invalid store URL",
        E::NotFound { .. } => "Object not found",
        E::NoSuchBucket { .. } => "Bucket not found",
        E::PreconditionFailed { .. } => "Concurrent change in the store",
        E::AccessDenied { .. } => "Access to the store denied",
        E::ChecksumMismatch { .. } => "Checksum mismatch",
        E::Cancelled { .. } => "Interrupted",
        E::Io { .. } => "Store request failed",
    };
    match attr {
        Some(a) => diags.attr_error(AttributePath::attr(a), summary, e.to_string()),
        None => diags.error(summary, e.to_string()),
    }
}

/// A catalog (snapshot publishing) error as a diagnostic.
pub fn catalog_error(e: &catalog::CatalogError, attr: Option<&str>, diags: &mut Diagnostics) {
    let summary = match e {
        catalog::CatalogError::InvalidName { .. } | catalog::CatalogError::InvalidValue { .. } => {
            "Invalid snapshot setting"
        }
        catalog::CatalogError::Source { .. } => "Cannot read the source directory",
        catalog::CatalogError::VerifyFailed { .. } => {
            "Snapshot verification failed; nothing was published"
        }
        catalog::CatalogError::CorruptDocument { .. } => "Snapshot index is corrupt",
        catalog::CatalogError::Cancelled => "Interrupted; nothing was published",
        _ => "Snapshot operation failed",
    };
    match attr {
        Some(a) => diags.attr_error(AttributePath::attr(a), summary, e.to_string()),
        None => diags.error(summary, e.to_string()),
    }
}

/// Parses Go-style durations ("90s", "2m", "1h30m", "500ms") as users write them for Terraform
/// timeouts and lock waits; one grammar for every resource.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; use e.g. \"30s\", \"2m\" or \"1h30m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{s:?} is not a duration: expected a number at {rest:?}; use e.g. \"30s\", \"2m\" or \"1h30m\""));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{s:?} is not a duration: bad number {:?}", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "" => return Err(format!("{s:?} is not a duration: the number {n} has no unit; allowed units are ms, s, m, h (e.g. \"2m\")")),
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            u => return Err(format!("{s:?} is not a duration: unit {u:?} unknown; allowed units are ms, s, m, h (e.g. \"2m\")")),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))?;
    }
    Ok(total)
}

//! The `clusters` attribute shared by the resources that act on several of the provider's named
//! `cluster` blocks, and the diagnostics of the multi-cluster lock.

use cluster::SpanError;
use tfplug::schema::validators::from_fn;
use tfplug::{Attribute, AttributePath, Diagnostics, PlanChange, Value};

use crate::config::Shared;
use crate::convert::cluster_error;

/// `clusters`: which named clusters; unset means the provider's own connection.
pub fn clusters_attr(what: &str) -> Attribute {
    Attribute::string_list("clusters")
        .optional()
        .validate(from_fn(
            "A non-empty list of distinct names of the provider's `cluster` blocks.",
            |v: &Value| check_list(v),
        ))
        .describe(format!(
            "Names of the provider's `cluster` blocks {what}, e.g. `[\"us\", \"eu\", \"asia\"]`. Unset: the provider's own connection only. Must not be empty or repeat a name."
        ))
}

/// Static checks of a `clusters` value: not empty, no empty names, no duplicates.
pub fn check_list(v: &Value) -> Result<(), String> {
    let items = v.elements();
    if items.is_empty() {
        return Err("The list is empty. Allowed: one or more names of the provider's `cluster` blocks, or leave `clusters` unset to use the provider's own connection.".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        let Some(n) = item.as_str() else { continue };
        if n.is_empty() {
            return Err(
                "A cluster name is empty. Allowed: names of the provider's `cluster` blocks."
                    .into(),
            );
        }
        if !seen.insert(n) {
            return Err(format!(
                "{n:?} is listed twice. Each cluster may appear once."
            ));
        }
    }
    Ok(())
}

/// The configured `clusters`, or `None` when unset (the provider's own connection).
pub fn names(config: &Value) -> Option<Vec<String>> {
    let v = config.get("clusters");
    (!v.is_null()).then(|| v.to_string_vec())
}

/// Plan-time check that the planned `clusters` name configured `cluster` blocks. Skipped on
/// destroy and while the list or the provider configuration is unknown (its cluster created in
/// the same run): the names are then checked when the resource is applied.
pub fn check_planned(shared: &Shared, plan: &PlanChange, diags: &mut Diagnostics) {
    if plan.is_destroy() {
        return;
    }
    let checkable = plan.config.get("clusters").is_wholly_known() && shared.settings().known;
    if let Some(n) = names(&plan.config).filter(|_| checkable) {
        shared.check_cluster_names(&n, "clusters", diags);
    }
}

/// The members that `v`'s `clusters` names (the provider's own connection when unset), or
/// `None` with a diagnostic on `clusters` when one cannot be reached.
pub async fn members_of(
    shared: &Shared,
    v: &Value,
    diags: &mut Diagnostics,
) -> Option<Vec<cluster::Member>> {
    shared.members(names(v).as_deref(), "clusters", diags).await
}

fn where_(cluster: &str) -> String {
    if cluster.is_empty() {
        String::new()
    } else {
        format!(" in cluster {cluster:?}")
    }
}

/// A multi-cluster lock error as a diagnostic.
pub fn span_error(e: &SpanError, diags: &mut Diagnostics) {
    match e {
        SpanError::Held { cluster, namespace, name, holder, acquired_at, expires_at, retry_after } => diags.attr_error(
            AttributePath::attr("name"),
            "Network lock held by someone else",
            format!(
                "The lock {namespace}/{name}{} is held by {holder:?} (acquired at {}, expires at {expires_at} unless renewed, by that API server's clock). Retry after {} minute(s), ask {holder:?} to release it, or set wait_timeout to wait for it.{}",
                where_(cluster),
                acquired_at.map(|t| t.to_string()).unwrap_or_else(|| "an unknown time".into()),
                retry_after.as_secs().div_ceil(60).max(1),
                if cluster.is_empty() { "" } else { " Nothing was left held: Leases this attempt took in other clusters were released." },
            ),
        ),
        SpanError::Lost { cluster, namespace, name, holder } => diags.error(
            "Network lock lost",
            format!(
                "The lock {namespace}/{name}{} is no longer ours: it is now {}. Whatever relied on holding it may have raced with the new holder.",
                where_(cluster),
                holder.as_deref().map(|h| format!("held by {h:?}")).unwrap_or_else(|| "free".into())
            ),
        ),
        SpanError::Lapsed { .. } => diags.error("Network lock lost", format!("{e}.")),
        SpanError::Invalid(m) => diags.error("Invalid network lock request", m.clone()),
        SpanError::Cancelled { namespace, name } => diags.error(
            "Interrupted",
            format!("Waiting for the lock {namespace}/{name} was cancelled."),
        ),
        SpanError::Cluster { cluster, source } if cluster.is_empty() => cluster_error(source, None, diags),
        SpanError::Cluster { cluster, source } => {
            let mut inner = Diagnostics::new();
            cluster_error(source, None, &mut inner);
            for d in inner.iter() {
                diags.error(
                    format!("{} (cluster {cluster:?})", d.summary),
                    format!("Cluster {cluster:?}: {}", d.detail),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_checks() {
        assert!(check_list(&Value::string_list(["us", "eu"])).is_ok());
        assert!(check_list(&Value::string_list(Vec::<String>::new()))
            .unwrap_err()
            .contains("empty"));
        assert!(check_list(&Value::string_list(["us", "us"]))
            .unwrap_err()
            .contains("\"us\" is listed twice"));
        assert!(check_list(&Value::string_list([""])).is_err());
    }
}

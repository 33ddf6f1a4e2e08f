//! `testnet_snapshot_artifact` from a claim: the `source_claim` attribute and the `job` block,
//! translated into a `testnet-archiver create` Job next to the data (crate `cluster` runs it),
//! whose report is confirmed against the store (crate `catalog`) before it is recorded.

use std::collections::BTreeMap;

use tfplug::{AttributePath, Context, Diagnostics, NestedBlock, Value};

use crate::config::{Shared, DEFAULT_ARCHIVER_IMAGE};
use crate::convert::{catalog_error, parse_duration};
use crate::job_settings::{job_error, validate_job_values, JobWords};

/// Where the claim is mounted in the Job's container.
const MOUNT: &str = "/data";
/// `job.timeout` when unset.
const DEFAULT_TIMEOUT: &str = "2h";

/// The `job` block.
pub(crate) fn job_block() -> NestedBlock {
    crate::job_settings::job_block(
        "How the Job that archives `source_claim` runs. Only with `source_claim`. Changing it affects later snapshots only.",
        "write to",
        DEFAULT_TIMEOUT,
    )
}

/// How a failed snapshot Job is told.
const WORDS: JobWords = JobWords {
    what: "Snapshot Job",
    source: "source_claim",
    failed: "Snapshot Job failed; nothing was published",
    cancelled: "Interrupted; nothing was published",
};

/// `namespace/name` of a claim.
pub(crate) fn parse_claim_ref(s: &str) -> Result<(String, String), String> {
    let allowed =
        "Allowed: `namespace/name` of a PersistentVolumeClaim, e.g. `ghostnet/node-0-data`.";
    let Some((ns, name)) = s.split_once('/') else {
        return Err(format!("{s:?} has no `/`. {allowed}"));
    };
    cluster::validate_dns1123_label(ns)
        .map_err(|e| format!("namespace {ns:?} of {s:?}: {e}. {allowed}"))?;
    cluster::validate_dns1123_subdomain(name)
        .map_err(|e| format!("claim name {name:?} of {s:?}: {e}. {allowed}"))?;
    Ok((ns.to_string(), name.to_string()))
}

/// Plan-time checks: exactly one source; the `job` block only with a claim, and its values.
pub(crate) fn validate(config: &Value, diags: &mut Diagnostics) {
    let dir = config.get("source_dir");
    let claim = config.get("source_claim");
    let job = config.get("job");
    if dir.is_unknown() || claim.is_unknown() {
        return;
    }
    match (dir.is_null(), claim.is_null()) {
        (false, false) => diags.attr_error(
            AttributePath::attr("source_claim"),
            "Conflicting sources",
            "source_dir and source_claim are both set. Set exactly one: source_dir archives a directory of the machine running Terraform, source_claim (`namespace/name`) archives a PersistentVolumeClaim with a Job inside the cluster.",
        ),
        (true, true) => diags.attr_error(
            AttributePath::attr("source_dir"),
            "Missing source",
            "Neither source_dir nor source_claim is set. Set exactly one: source_dir = \"/path/to/dir\" or source_claim = \"namespace/claim\".",
        ),
        _ => {}
    }
    if let Some(c) = claim.as_str() {
        if let Err(e) = parse_claim_ref(c) {
            diags.attr_error(
                AttributePath::attr("source_claim"),
                "Invalid source claim",
                e,
            );
        }
        let url = config.get("store_url");
        if let Some(url) = url.as_str().filter(|u| u.starts_with("file://")) {
            diags.attr_error(
                AttributePath::attr("store_url"),
                "A Job cannot publish to a local directory",
                format!("{url} is a directory of the machine running Terraform, which the Job's pod does not see. With source_claim use an s3:// or gs:// store."),
            );
        }
    }
    if job.is_null() || job.is_unknown() {
        return;
    }
    if claim.is_null() {
        diags.attr_error(
            AttributePath::attr("job"),
            "Job settings without a claim",
            "The job block configures the Job that archives source_claim; with source_dir nothing runs in the cluster. Remove the job block or use source_claim.",
        );
    }
    validate_job_values(job, diags);
}

/// The `testnet-archiver` arguments that publish what the resource describes from [`MOUNT`].
fn archiver_args(
    planned: &Value,
    label: &str,
    store_url: &str,
    store: &objstore::StoreConfig,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |k: &str, v: &str| {
        a.push(k.to_string());
        a.push(v.to_string());
    };
    push("--source", MOUNT);
    push("--store", store_url);
    // Always explicit: the provider must know the name to look for after an interrupt.
    push("--label", label);
    for (flag, attr) in [
        ("--network", "network"),
        ("--kind", "kind"),
        ("--block-hash", "block_hash"),
        ("--block-time", "block_time"),
        ("--verify", "verify"),
        ("--index-lock", "index_lock"),
    ] {
        if let Some(v) = planned.get(attr).as_str() {
            push(flag, v);
        }
    }
    if let Some(g) = planned.get("retention_grace").as_str() {
        // The CLI takes one number and a unit; validated at plan time.
        if let Ok(d) = crate::convert::parse_duration(g) {
            push("--retention-grace", &format!("{}s", d.as_secs()));
        }
    }
    for (flag, attr) in [("--block-height", "block_height"), ("--retain", "retain")] {
        if let Some(v) = planned.get(attr).as_i64() {
            push(flag, &v.to_string());
        }
    }
    if !planned.get("excludes").is_null() {
        for e in planned.get("excludes").to_string_vec() {
            push("--exclude", &e);
        }
        a.push("--no-default-excludes".into());
    }
    if planned.get("single_publisher").as_bool() == Some(true)
        && planned.get("index_lock").is_null()
    {
        a.push("--single-publisher".into());
    }
    if let Some(e) = &store.endpoint {
        a.push("--endpoint".into());
        a.push(e.clone());
    }
    if store.force_path_style {
        a.push("--path-style".into());
    }
    if let Some(r) = &store.region {
        a.push("--region".into());
        a.push(r.clone());
    }
    a.push("--result-file".into());
    a.push("/dev/termination-log".into());
    let mut out = vec!["create".to_string()];
    out.extend(a);
    out
}

/// Runs the archiver as a Job next to `source_claim` and returns the artifact's metadata once
/// the store confirms what the Job reported.
pub(crate) async fn publish_from_claim(
    shared: &Shared,
    ctx: &Context,
    planned: &Value,
    store_url: &str,
    store: &dyn objstore::ObjectStore,
    diags: &mut Diagnostics,
) -> Option<catalog::ArtifactMeta> {
    let claim_attr = AttributePath::attr("source_claim");
    let (namespace, claim) = match parse_claim_ref(planned.get("source_claim").as_str()?) {
        Ok(r) => r,
        Err(e) => {
            diags.attr_error(claim_attr, "Invalid source claim", e);
            return None;
        }
    };
    if store_url.starts_with("file://") {
        diags.attr_error(
            AttributePath::attr("store_url"),
            "A Job cannot publish to a local directory",
            format!("{store_url} is a directory of the machine running Terraform, which the Job's pod does not see. With source_claim use an s3:// or gs:// store."),
        );
        return None;
    }
    let settings = shared.settings();
    let mut store_config = settings.store.clone();
    if store_url.starts_with("gs://") {
        store_config.endpoint = settings.gcs_endpoint.clone();
    }
    let job = planned.get("job");
    let s = |k: &str| job.get(k).as_str().map(str::to_string);
    let timeout = s("timeout").unwrap_or_else(|| DEFAULT_TIMEOUT.into());
    let deadline = match parse_duration(&timeout) {
        Ok(d) => d,
        Err(e) => {
            diags.attr_error(
                AttributePath::attr("job").then_attr("timeout"),
                "Invalid job timeout",
                e,
            );
            return None;
        }
    };
    let network = planned
        .get("network")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = planned.get("kind").as_str().unwrap_or_default().to_string();
    let label = planned.get("label").as_str().map_or_else(
        || {
            catalog::default_label(
                planned
                    .get("block_height")
                    .as_i64()
                    .and_then(|h| u64::try_from(h).ok()),
            )
        },
        str::to_string,
    );
    let name = catalog::names::artifact_name(&network, &kind, &label);
    let spec = cluster::JobSpec {
        namespace: namespace.clone(),
        name_prefix: format!("snapshot-{network}-{kind}"),
        image: s("image")
            .or_else(|| settings.archiver_image.clone())
            .unwrap_or_else(|| DEFAULT_ARCHIVER_IMAGE.to_string()),
        args: {
            let mut a = archiver_args(planned, &label, store_url, &store_config);
            if let Some(n) = settings.read_connections {
                a.extend(["--connections".to_string(), n.to_string()]);
            }
            a
        },
        env_secret: s("env_secret_name"),
        service_account: s("service_account_name"),
        node_selector: crate::job_settings::node_selector(job),
        cpu: s("cpu"),
        memory: s("memory"),
        deadline,
        claim: Some(cluster::ClaimMount {
            claim: claim.clone(),
            mount_path: MOUNT.into(),
            read_only: true,
        }),
        labels: BTreeMap::from([(cluster::LABEL_NETWORK.to_string(), network)]),
        keep_failed: job.get("keep_failed").as_bool() == Some(true),
    };
    let cluster = shared.cluster(diags).await?;
    let source = format!("{namespace}/{claim}");
    let log_source = source.clone();
    let on_line = move |line: &str| {
        tracing::info!(source_claim = %log_source, "snapshot job: {line}");
    };
    let outcome = match cluster.run_job(&spec, &on_line, &ctx.cancel).await {
        Ok(o) => o,
        Err(e @ cluster::JobError::Cancelled { .. }) => {
            // The Job and its pod are gone; whether the archiver stopped before publishing is
            // for the store to say, not for us to assume.
            match catalog::get(store, &name).await {
                Ok(Some(m)) => diags.attr_error(
                    AttributePath::attr("source_claim"),
                    "Interrupted after the Job published",
                    format!("{e}, but it had already published {} before it stopped. The artifact is in the store and its index but not in Terraform's state: import it with `terraform import` and its URL, or remove it with `testnet-archiver` / by applying it and destroying.", m.url),
                ),
                Ok(None) => job_error(&e, spec.keep_failed, &WORDS, diags),
                Err(ce) => diags.attr_error(
                    AttributePath::attr("source_claim"),
                    "Interrupted; whether the Job published is unknown",
                    format!("{e}. Looking for {name} in the store afterwards failed: {ce}. Check the store's base.json before the next apply."),
                ),
            }
            return None;
        }
        Err(e) => {
            job_error(&e, spec.keep_failed, &WORDS, diags);
            return None;
        }
    };
    let pinned = match &outcome.pinned_by {
        Some((node, pod)) => format!("pinned to node {node}, where pod {pod} mounts the claim"),
        None => "placed by the scheduler".to_string(),
    };
    tracing::info!(
        source_claim = %source,
        job = %outcome.name,
        started_after_s = outcome.started_after.map_or(0.0, |d| d.as_secs_f64()),
        took_s = outcome.took.as_secs_f64(),
        "snapshot job {} succeeded on node {} ({pinned}) in {:.1} s",
        outcome.name,
        outcome.node.as_deref().unwrap_or("?"),
        outcome.took.as_secs_f64()
    );
    let Some(report) = catalog::PublishReport::parse(&outcome.termination_message) else {
        diags.error(
            "Snapshot Job gave no result",
            format!("Job {} succeeded but its termination message holds no result line ({:?}). Is job.image a testnet-archiver that supports --result-file? Last lines of its log:\n{}", outcome.name, outcome.termination_message, outcome.log_tail.join("\n")),
        );
        return None;
    };
    match catalog::confirm_report(store, &report).await {
        Ok(meta) => Some(meta),
        Err(catalog::ConfirmError::Catalog(e)) => {
            catalog_error(&e, None, diags);
            None
        }
        Err(e) => {
            diags.error(
                "Snapshot not confirmed by the store; not recorded",
                format!("{e}. The Job in {source} reported a publish the store does not show as reported, so the artifact is not recorded in state. Check that the provider and the Job use the same store (s3_endpoint, store_url)."),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_refs() {
        assert_eq!(
            parse_claim_ref("ghostnet/node-0"),
            Ok(("ghostnet".into(), "node-0".into()))
        );
        for bad in ["node-0", "Ghost/x", "ns/", "/x", "ns/a_b"] {
            assert!(parse_claim_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn args_carry_the_resource_and_no_credentials() {
        let planned = Value::object([
            ("network", Value::string("ghostnet")),
            ("kind", Value::string("rolling")),
            ("label", Value::Null),
            ("block_height", Value::from(42u64)),
            ("block_hash", Value::Null),
            ("block_time", Value::Null),
            ("verify", Value::string("full")),
            ("index_lock", Value::Null),
            ("retain", Value::from(3u64)),
            ("retention_grace", Value::string("1h30m")),
            ("excludes", Value::List(vec![Value::string("*.log")])),
            ("single_publisher", Value::Bool(true)),
        ]);
        let store = objstore::StoreConfig {
            endpoint: Some("http://10.213.0.1:9000".into()),
            force_path_style: true,
            ..Default::default()
        };
        let a = archiver_args(&planned, "42", "s3://snap/p", &store).join(" ");
        assert_eq!(
            a,
            "create --source /data --store s3://snap/p --label 42 --network ghostnet --kind rolling --verify full --retention-grace 5400s --block-height 42 --retain 3 --exclude *.log --no-default-excludes --single-publisher --endpoint http://10.213.0.1:9000 --path-style --result-file /dev/termination-log"
        );
    }
}

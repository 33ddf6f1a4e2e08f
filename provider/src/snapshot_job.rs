//! `testnet_snapshot_artifact` from a claim: the `source_claim` attribute and the `job` block,
//! translated into a `testnet-archiver create` Job next to the data (crate `cluster` runs it),
//! whose report is confirmed against the store (crate `catalog`) before it is recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use tfplug::{
    Attribute, AttributePath, Block, BlockNesting, Context, Diagnostics, NestedBlock, Value,
};

use crate::config::{Shared, DEFAULT_ARCHIVER_IMAGE};
use crate::convert::{catalog_error, cluster_error, parse_duration};

/// Where the claim is mounted in the Job's container.
const MOUNT: &str = "/data";
/// `job.timeout` when unset.
const DEFAULT_TIMEOUT: &str = "2h";

/// The `job` block.
pub(crate) fn job_block() -> NestedBlock {
    NestedBlock::new(
        "job",
        BlockNesting::Single,
        Block::new()
            .describe("How the Job that archives `source_claim` runs. Only with `source_claim`. Changing it affects later snapshots only.")
            .attr(Attribute::string("image").optional().describe("Container image of the archiver. Defaults to the provider's `archiver_image`."))
            .attr(Attribute::string("service_account_name").optional().describe("Service account the Job's pod runs as, e.g. one bound to a cloud identity (IRSA on EKS, Workload Identity on GKE) that may write to the store. Defaults to the namespace's `default`."))
            .attr(Attribute::string_map("node_selector").optional().describe("Node labels the Job's pod requires. A ReadWriteOnce claim that a running pod mounts pins the Job to that pod's node in any case."))
            .attr(Attribute::string("cpu").optional().describe("CPU request and limit of the archiver, a Kubernetes quantity, e.g. `2` or `500m`."))
            .attr(Attribute::string("memory").optional().describe("Memory request and limit of the archiver, e.g. `512Mi`. The archiver's memory use does not grow with the data."))
            .attr(Attribute::string("env_secret_name").optional().describe("Secret in the claim's namespace whose keys become the archiver's environment (`envFrom`), e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. The Job spec never holds credential values."))
            .attr(Attribute::string("timeout").optional().describe(format!("How long the Job may run (its `activeDeadlineSeconds`), e.g. `90m`. Defaults to `{DEFAULT_TIMEOUT}`.")))
            .attr(Attribute::bool("keep_failed").optional().describe("Keep a failed Job and its pod for `kubectl describe` and `kubectl logs`. Default false: they are removed, like a successful one.")),
    )
}

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
    let at = |k: &str| AttributePath::attr("job").then_attr(k);
    if claim.is_null() {
        diags.attr_error(
            AttributePath::attr("job"),
            "Job settings without a claim",
            "The job block configures the Job that archives source_claim; with source_dir nothing runs in the cluster. Remove the job block or use source_claim.",
        );
    }
    if let Some(t) = job.get("timeout").as_str() {
        match parse_duration(t) {
            Ok(d) if d >= Duration::from_secs(1) => {}
            Ok(_) => diags.attr_error(at("timeout"), "Invalid job timeout", format!("{t:?} is shorter than one second. Allowed: a duration of at least 1s, e.g. \"30m\" or \"2h\".")),
            Err(e) => diags.attr_error(at("timeout"), "Invalid job timeout", e),
        }
    }
    for k in ["cpu", "memory"] {
        if let Some(q) = job.get(k).as_str() {
            if let Err(e) = cluster::parse_quantity(q) {
                diags.attr_error(
                    at(k),
                    format!("Invalid job {k}"),
                    format!(
                        "{e}. Allowed: a Kubernetes quantity, e.g. {}.",
                        if k == "cpu" {
                            "\"2\" or \"500m\""
                        } else {
                            "\"512Mi\" or \"2Gi\""
                        }
                    ),
                );
            }
        }
    }
    for k in ["service_account_name", "env_secret_name"] {
        if let Some(n) = job.get(k).as_str() {
            if let Err(e) = cluster::validate_dns1123_subdomain(n) {
                diags.attr_error(
                    at(k),
                    format!("Invalid job {k}"),
                    format!("{n:?}: {e}. Allowed: the name of an object in the claim's namespace."),
                );
            }
        }
    }
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
        node_selector: job
            .get("node_selector")
            .entries()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<BTreeMap<_, _>>(),
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
                Ok(None) => job_error(&e, &spec, diags),
                Err(ce) => diags.attr_error(
                    AttributePath::attr("source_claim"),
                    "Interrupted; whether the Job published is unknown",
                    format!("{e}. Looking for {name} in the store afterwards failed: {ce}. Check the store's base.json before the next apply."),
                ),
            }
            return None;
        }
        Err(e) => {
            job_error(&e, &spec, diags);
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

/// A failed Job as a diagnostic, on the attribute the user changes to fix it.
fn job_error(e: &cluster::JobError, spec: &cluster::JobSpec, diags: &mut Diagnostics) {
    use cluster::JobError as J;
    if let J::Cluster(c) = e {
        cluster_error(c, Some("source_claim"), diags);
        return;
    }
    let job = |k: &str| AttributePath::attr("job").then_attr(k);
    let (summary, path) = match e {
        J::JobsUnsupported { .. } => (
            "Jobs cannot run in this cluster",
            AttributePath::attr("source_claim"),
        ),
        J::ImageMissing { .. } => ("Snapshot Job: archiver image not available", job("image")),
        J::ContainerConfig { .. } => (
            "Snapshot Job: container cannot start",
            job("env_secret_name"),
        ),
        J::Unschedulable { .. } => ("Snapshot Job could not be scheduled", job("node_selector")),
        J::OutOfMemory { .. } => ("Snapshot Job ran out of memory", job("memory")),
        J::DeadlineExceeded { .. } => ("Snapshot Job exceeded its timeout", job("timeout")),
        J::Cancelled { .. } => (
            "Interrupted; nothing was published",
            AttributePath::attr("source_claim"),
        ),
        _ => (
            "Snapshot Job failed; nothing was published",
            AttributePath::attr("source_claim"),
        ),
    };
    let kept = match e.job() {
        Some(j) if spec.keep_failed && !matches!(e, J::Cancelled { .. }) => {
            let (ns, name) = (j.namespace.clone().unwrap_or_default(), &j.name);
            format!("\n\nThe Job and its pod are kept (job.keep_failed): kubectl -n {ns} describe job {name}; kubectl -n {ns} logs job/{name}. Delete the Job when done.")
        }
        Some(_) if !matches!(e, J::Cancelled { .. }) => {
            "\n\nThe Job and its pod were removed; set job.keep_failed = true to keep them for inspection.".to_string()
        }
        _ => String::new(),
    };
    diags.attr_error(path, summary, format!("{e}{kept}"));
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

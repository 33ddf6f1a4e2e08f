//! The `job` block shared by every resource that runs the archiver as a Kubernetes Job
//! (`testnet_snapshot_artifact.source_claim`, `testnet_shared_state_pvc.restore_from`): its
//! schema, its plan-time checks, its translation into `cluster::JobSettings`, and a failed
//! Job's translation into a diagnostic on the attribute the user changes to fix it.

use std::collections::BTreeMap;
use std::time::Duration;

use tfplug::{Attribute, AttributePath, Block, BlockNesting, Diagnostics, NestedBlock, Value};

use crate::config::{Settings, DEFAULT_ARCHIVER_IMAGE};
use crate::convert::{cluster_error, parse_duration};

/// The `job` block, described by `description`; its pods `store_use` ("write to", "read")
/// the store.
pub(crate) fn job_block(description: &str, store_use: &str, default_timeout: &str) -> NestedBlock {
    NestedBlock::new(
        "job",
        BlockNesting::Single,
        Block::new()
            .describe(description)
            .attr(Attribute::string("image").optional().describe("Container image of the archiver. Defaults to the provider's `archiver_image`."))
            .attr(Attribute::string("service_account_name").optional().describe(format!("Service account the Job's pod runs as, e.g. one bound to a cloud identity (IRSA on EKS, Workload Identity on GKE) that may {store_use} the store. Defaults to the namespace's `default`.")))
            .attr(Attribute::string_map("node_selector").optional().describe("Node labels the Job's pod requires. A ReadWriteOnce claim that a running pod mounts pins the Job to that pod's node in any case."))
            .attr(Attribute::string("cpu").optional().describe("CPU request and limit of the archiver, a Kubernetes quantity, e.g. `2` or `500m`."))
            .attr(Attribute::string("memory").optional().describe("Memory request and limit of the archiver, e.g. `512Mi`. The archiver's memory use does not grow with the data."))
            .attr(Attribute::string("env_secret_name").optional().describe("Secret in the claim's namespace whose keys become the archiver's environment (`envFrom`), e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. The Job spec never holds credential values."))
            .attr(Attribute::string("timeout").optional().describe(format!("How long the Job may run (its `activeDeadlineSeconds`), e.g. `90m`. Defaults to `{default_timeout}`.")))
            .attr(Attribute::bool("keep_failed").optional().describe("Keep a failed Job and its pod for `kubectl describe` and `kubectl logs`. Default false: they are removed, like a successful one.")),
    )
}

/// Plan-time checks of the `job` block's values (its presence is the caller's to judge).
pub(crate) fn validate_job_values(job: &Value, diags: &mut Diagnostics) {
    if job.is_null() || job.is_unknown() {
        return;
    }
    let at = |k: &str| AttributePath::attr("job").then_attr(k);
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

/// The `job` block as the domain's settings: image from the block, else the provider's
/// `archiver_image`, else this version's image.
pub(crate) fn job_settings(
    job: &Value,
    settings: &Settings,
    default_timeout: &str,
    diags: &mut Diagnostics,
) -> Option<cluster::JobSettings> {
    let s = |k: &str| job.get(k).as_str().map(str::to_string);
    let timeout = s("timeout").unwrap_or_else(|| default_timeout.into());
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
    Some(cluster::JobSettings {
        image: s("image")
            .or_else(|| settings.archiver_image.clone())
            .unwrap_or_else(|| DEFAULT_ARCHIVER_IMAGE.to_string()),
        env_secret: s("env_secret_name"),
        service_account: s("service_account_name"),
        node_selector: node_selector(job),
        cpu: s("cpu"),
        memory: s("memory"),
        deadline,
        keep_failed: job.get("keep_failed").as_bool() == Some(true),
    })
}

pub(crate) fn node_selector(job: &Value) -> BTreeMap<String, String> {
    job.get("node_selector")
        .entries()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// The words a failed Job's diagnostic uses for one kind of Job.
pub(crate) struct JobWords {
    /// "Snapshot Job", "Restore Job".
    pub what: &'static str,
    /// The attribute that names what the Job works on (`source_claim`, `restore_from`).
    pub source: &'static str,
    /// Summary of a failure with no more specific cause.
    pub failed: &'static str,
    /// Summary of an interrupt.
    pub cancelled: &'static str,
}

/// A failed Job as a diagnostic, on the attribute the user changes to fix it, saying whether
/// the Job and its pod were kept.
pub(crate) fn job_error(
    e: &cluster::JobError,
    keep_failed: bool,
    words: &JobWords,
    diags: &mut Diagnostics,
) {
    use cluster::JobError as J;
    if let J::Cluster(c) = e {
        cluster_error(c, Some(words.source), diags);
        return;
    }
    let job = |k: &str| AttributePath::attr("job").then_attr(k);
    let what = words.what;
    let (summary, path) = match e {
        J::JobsUnsupported { .. } => (
            "Jobs cannot run in this cluster".to_string(),
            AttributePath::attr(words.source),
        ),
        J::ImageMissing { .. } => (
            format!("{what}: archiver image not available"),
            job("image"),
        ),
        J::ContainerConfig { .. } => (
            format!("{what}: container cannot start"),
            job("env_secret_name"),
        ),
        J::Unschedulable { .. } => (
            format!("{what} could not be scheduled"),
            job("node_selector"),
        ),
        J::OutOfMemory { .. } => (format!("{what} ran out of memory"), job("memory")),
        J::DeadlineExceeded { .. } => (format!("{what} exceeded its timeout"), job("timeout")),
        J::Cancelled { .. } => (
            words.cancelled.to_string(),
            AttributePath::attr(words.source),
        ),
        _ => (words.failed.to_string(), AttributePath::attr(words.source)),
    };
    let kept = match e.job() {
        Some(j) if keep_failed && !matches!(e, J::Cancelled { .. }) => {
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

//! `testnet_shared_state_pvc.restore_from`: a new claim filled from a snapshot artifact by a
//! `testnet-archiver restore` Job (crate `cluster` builds and runs it; crate `catalog` checks the
//! artifact's metadata before and the Job's report after). A claim holds data once restored, so
//! a changed `restore_from` replaces it only when the user says so.

use tfplug::{
    Attribute, AttributePath, Block, BlockNesting, Context, Diagnostics, NestedBlock, PlanChange,
    Value,
};

use crate::config::Shared;
use crate::convert::catalog_error;
use crate::job_settings::{job_error, job_settings, validate_job_values, JobWords};

/// `job.timeout` when unset.
const DEFAULT_TIMEOUT: &str = "2h";
pub(crate) const RESTORED: &str = "restored_sha256";

const WORDS: JobWords = JobWords {
    what: "Restore Job",
    source: "restore_from",
    failed: "Restore Job failed; the claim was not kept",
    cancelled: "Interrupted; the claim was not kept",
};

/// The `restore_from` block.
pub(crate) fn restore_from_block() -> NestedBlock {
    NestedBlock::new(
        "restore_from",
        BlockNesting::Single,
        Block::new()
            .describe("Fill the new claim from a snapshot artifact: after the claim is created, a Job (the provider's `archiver_image`, settings in the `job` block) runs `testnet-archiver restore` with the claim mounted, and the claim is ready only once the restore verified the artifact against its metadata. The Job's pod is the claim's first consumer, so claims of a `WaitForFirstConsumer` class bind too. A failed restore is an error and the claim is deleted, so the next apply creates it again. The cluster cannot tell what a claim was restored from: import keeps this block as configured.")
            .attr(Attribute::string("url").required().describe("URL of the artifact, in a store the Job's pod reaches: `s3://bucket/prefix/<name>.tar.lz4` or `gs://…` (e.g. `data.testnet_snapshot.latest.url`). The provider reads its metadata first (with its own store settings and credentials); the Job's credentials come from `job.env_secret_name` or `job.service_account_name`."))
            .attr(Attribute::string("sha256").optional().describe("Expected SHA-256 of the artifact (64 hex digits, e.g. `data.testnet_snapshot.latest.sha256`). Checked against the artifact's metadata before the Job starts, and against what the Job restored and verified."))
            .attr(Attribute::bool("replace_on_change").optional().describe("What a changed `url` or `sha256` does to an existing claim, which holds data: `true` replaces the claim (its data is deleted, a new claim is restored); `false` (default) makes the change a plan error. To keep a claim when newer artifacts appear, use `lifecycle { ignore_changes = [restore_from] }`.")),
    )
}

/// The computed attribute recording the restore.
pub(crate) fn restored_attr() -> Attribute {
    Attribute::string(RESTORED).computed().describe("SHA-256 of the artifact the Job restored into the claim and verified, as it reported; null when the claim was not restored by this resource.")
}

/// The `job` block of the restore Job.
pub(crate) fn job_block() -> NestedBlock {
    crate::job_settings::job_block(
        "How the Job that restores `restore_from` into the new claim runs. Only with `restore_from`. Changing it later changes nothing (the claim is restored once).",
        "read",
        DEFAULT_TIMEOUT,
    )
}

fn url_path() -> AttributePath {
    AttributePath::attr("restore_from").then_attr("url")
}

fn sha_path() -> AttributePath {
    AttributePath::attr("restore_from").then_attr("sha256")
}

/// A restore-source error on the attribute that caused it.
fn source_error(e: &catalog::RestoreSourceError, diags: &mut Diagnostics) {
    use catalog::RestoreSourceError as E;
    match e {
        E::Catalog(c) => catalog_error(c, Some("restore_from"), diags),
        E::BadUrl { url, .. } if url.starts_with("file://") => diags.attr_error(
            url_path(),
            "A Job cannot restore from a local directory",
            e.to_string(),
        ),
        E::BadUrl { .. } => diags.attr_error(url_path(), "Invalid artifact URL", e.to_string()),
        E::BadSha256 { .. } => diags.attr_error(sha_path(), "Invalid sha256", e.to_string()),
        E::NotPublished { .. } => {
            diags.attr_error(url_path(), "Artifact not published", e.to_string())
        }
        E::Sha256Mismatch { .. } => diags.attr_error(
            sha_path(),
            "Artifact does not have the expected sha256; nothing was restored",
            e.to_string(),
        ),
        E::NoReport | E::ReportMismatch { .. } => diags.attr_error(
            AttributePath::attr("restore_from"),
            "Restore not confirmed; the claim was not kept",
            e.to_string(),
        ),
    }
}

/// Plan-time checks: a URL a pod can reach, a well-formed checksum, `job` only with a restore.
pub(crate) fn validate(config: &Value, diags: &mut Diagnostics) {
    let from = config.get("restore_from");
    let job = config.get("job");
    if from.is_null() && !job.is_null() && !job.is_unknown() {
        diags.attr_error(
            AttributePath::attr("job"),
            "Job settings without restore_from",
            "The job block configures the Job that restores restore_from into the claim; without restore_from nothing runs in the cluster. Remove the job block or add restore_from.",
        );
    }
    if from.is_null() || from.is_unknown() {
        return;
    }
    if let Some(url) = from.get("url").as_str() {
        if let Err(e) = catalog::split_artifact_url(url) {
            source_error(&e, diags);
        }
    }
    if let Some(sha) = from.get("sha256").as_str() {
        if let Err(e) = catalog::normalize_sha256(sha) {
            source_error(&e, diags);
        }
    }
    validate_job_values(job, diags);
}

/// What the claim was (or is to be) restored from: URL and pinned checksum.
fn source_of(v: &Value) -> Option<(Value, Value)> {
    let from = v.get("restore_from");
    if from.is_null() {
        return None;
    }
    let sha = from.get("sha256").as_str().map_or_else(
        || from.get("sha256").clone(),
        |s| Value::string(s.to_ascii_lowercase()),
    );
    Some((from.get("url").clone(), sha))
}

/// The plan's share of `restore_from`: a changed source replaces the claim or is refused;
/// `restored_sha256` is unknown when a restore will run and kept otherwise.
pub(crate) fn plan(plan: &mut PlanChange, diags: &mut Diagnostics) {
    let restoring = !plan.planned.get("restore_from").is_null();
    let unknown_or_null = if restoring {
        Value::unknown()
    } else {
        Value::Null
    };
    if plan.is_create() {
        plan.planned.set(RESTORED, unknown_or_null);
        return;
    }
    let (old, new) = (source_of(&plan.prior), source_of(&plan.planned));
    let changed = match (&old, &new) {
        (_, None) => false, // forgetting the source leaves the data in place
        (None, Some(_)) => true,
        (Some((ou, os)), Some((nu, ns))) => !(ou.equals(nu) && os.equals(ns)),
    };
    if changed {
        let replace = plan
            .planned
            .get("restore_from")
            .get("replace_on_change")
            .as_bool()
            == Some(true);
        if replace {
            plan.replace_because("restore_from");
        } else {
            let ns = plan.prior.get("namespace").as_str().unwrap_or_default();
            let name = plan.prior.get("name").as_str().unwrap_or_default();
            let was = match &old {
                Some((u, _)) => format!("was restored from {}", u.as_str().unwrap_or("(unknown)")),
                None => {
                    "was not restored by this resource (created without restore_from, or imported)"
                        .into()
                }
            };
            let now = new
                .as_ref()
                .and_then(|(u, _)| u.as_str().map(str::to_string))
                .unwrap_or_else(|| "a value known only after apply".into());
            diags.attr_error(
                AttributePath::attr("restore_from"),
                "restore_from changed on a claim that holds data",
                format!("The claim {ns}/{name} {was}; restore_from now names {now}. Restoring again means replacing the claim and deleting its data, which happens only when asked: set `replace_on_change = true` in restore_from, or run `terraform apply -replace=<this resource's address>`. To keep the claim and its data, restore the previous url/sha256, or add `lifecycle {{ ignore_changes = [restore_from] }}` (e.g. when restore_from follows the latest artifact, or the claim was imported)."),
            );
        }
    }
    if !plan.requires_replace.is_empty() {
        plan.planned.set(RESTORED, unknown_or_null);
    } else {
        let prior = plan.prior.get(RESTORED).clone();
        plan.planned.set(RESTORED, prior);
    }
}

/// A restore ready to run: the Job, and the artifact's metadata it must confirm.
pub(crate) struct PreparedRestore {
    spec: cluster::JobSpec,
    meta: catalog::ArtifactMeta,
}

/// Checks the artifact (its metadata exists and has the pinned SHA-256) and builds the Job,
/// before the claim exists: a wrong URL or checksum costs no claim and no Job.
pub(crate) async fn prepare(
    shared: &Shared,
    planned: &Value,
    diags: &mut Diagnostics,
) -> Option<PreparedRestore> {
    let from = planned.get("restore_from");
    let url = from.get("url").as_str().unwrap_or_default().to_string();
    let (prefix, key) = match catalog::split_artifact_url(&url) {
        Ok(p) => p,
        Err(e) => {
            source_error(&e, diags);
            return None;
        }
    };
    let (_, store) = shared.store(Some(prefix), "restore_from", diags).await?;
    let meta = match catalog::check_restore_source(store.as_ref(), key, from.get("sha256").as_str())
        .await
    {
        Ok(m) => m,
        Err(e) => {
            source_error(&e, diags);
            return None;
        }
    };
    let settings = shared.settings();
    let run = job_settings(planned.get("job"), &settings, DEFAULT_TIMEOUT, diags)?;
    let access = if url.starts_with("gs://") {
        cluster::StoreAccess {
            endpoint: settings.gcs_endpoint.clone(),
            connections: settings.read_connections,
            ..Default::default()
        }
    } else {
        cluster::StoreAccess {
            endpoint: settings.store.endpoint.clone(),
            path_style: settings.store.force_path_style,
            region: settings.store.region.clone(),
            connections: settings.read_connections,
        }
    };
    let spec = cluster::restore_job(
        &cluster::RestoreRequest {
            namespace: planned.get("namespace").as_str().unwrap_or_default().into(),
            claim: planned.get("name").as_str().unwrap_or_default().into(),
            url: url.clone(),
            store: access,
            network: planned.get("testnet").as_str().map(str::to_string),
        },
        &run,
    );
    Some(PreparedRestore { spec, meta })
}

/// Runs the restore Job into its claim, which exists and is ready (bound, or waiting for its
/// first consumer: the Job's pod). Returns the SHA-256 the Job restored and verified.
pub(crate) async fn run(
    shared: &Shared,
    ctx: &Context,
    prepared: &PreparedRestore,
    diags: &mut Diagnostics,
) -> Option<String> {
    let (spec, meta) = (&prepared.spec, &prepared.meta);
    let cluster = shared.cluster(diags).await?;
    let target = format!(
        "{}/{}",
        spec.namespace,
        spec.claim
            .as_ref()
            .map(|c| c.claim.as_str())
            .unwrap_or_default()
    );
    let log_target = target.clone();
    let on_line = move |line: &str| {
        tracing::info!(claim = %log_target, "restore job: {line}");
    };
    let outcome = match cluster.run_job(spec, &on_line, &ctx.cancel).await {
        Ok(o) => o,
        Err(e) => {
            job_error(&e, spec.keep_failed, &WORDS, diags);
            return None;
        }
    };
    tracing::info!(
        claim = %target,
        job = %outcome.name,
        started_after_s = outcome.started_after.map_or(0.0, |d| d.as_secs_f64()),
        took_s = outcome.took.as_secs_f64(),
        "restore job {} restored {} into {target} on node {} in {:.1} s",
        outcome.name,
        meta.url,
        outcome.node.as_deref().unwrap_or("?"),
        outcome.took.as_secs_f64()
    );
    // The termination message holds the report alone; the log (where stderr lines may land
    // between the report's lines) is the fallback for an archiver without --result-file.
    let message: Vec<String> = outcome
        .termination_message
        .lines()
        .map(str::to_string)
        .collect();
    let confirmed = catalog::RestoreReport::from_log(&message)
        .or_else(|| catalog::RestoreReport::from_log(&outcome.log_tail))
        .ok_or(catalog::RestoreSourceError::NoReport)
        .and_then(|r| r.confirm(meta).map(|()| r));
    match confirmed {
        Ok(r) => Some(r.sha256.to_ascii_lowercase()),
        Err(e) => {
            source_error(&e, diags);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(url: Option<&str>, sha: Option<&str>, replace: bool) -> Value {
        let from = match url {
            Some(u) => Value::object([
                ("url", Value::string(u)),
                ("sha256", Value::opt_string(sha.map(str::to_string))),
                ("replace_on_change", Value::Bool(replace)),
            ]),
            None => Value::Null,
        };
        Value::object([
            ("namespace", Value::string("net")),
            ("name", Value::string("state")),
            ("restore_from", from),
            ("job", Value::Null),
            (RESTORED, Value::string("a".repeat(64))),
        ])
    }

    fn change(prior: Value, planned: Value) -> PlanChange {
        PlanChange {
            config: planned.clone(),
            prior,
            planned,
            requires_replace: Vec::new(),
            private: Default::default(),
        }
    }

    #[test]
    fn an_unchanged_source_keeps_the_record() {
        let mut p = change(
            claim(Some("s3://b/a.tar.lz4"), Some(&"A".repeat(64)), false),
            claim(Some("s3://b/a.tar.lz4"), Some(&"a".repeat(64)), true),
        );
        let mut d = Diagnostics::default();
        plan(&mut p, &mut d);
        assert!(!d.has_errors());
        assert!(p.requires_replace.is_empty());
        assert_eq!(
            p.planned.get(RESTORED).as_str(),
            Some("a".repeat(64).as_str())
        );
    }

    #[test]
    fn a_changed_source_replaces_only_when_asked() {
        let mut p = change(
            claim(Some("s3://b/a.tar.lz4"), None, false),
            claim(Some("s3://b/b.tar.lz4"), None, false),
        );
        let mut d = Diagnostics::default();
        plan(&mut p, &mut d);
        assert!(d.has_errors());
        assert!(format!("{d:?}").contains("replace_on_change = true"));
        assert!(p.requires_replace.is_empty());

        let mut p = change(
            claim(Some("s3://b/a.tar.lz4"), None, false),
            claim(Some("s3://b/b.tar.lz4"), None, true),
        );
        let mut d = Diagnostics::default();
        plan(&mut p, &mut d);
        assert!(!d.has_errors());
        assert_eq!(
            p.requires_replace,
            vec![AttributePath::attr("restore_from")]
        );
        assert!(p.planned.get(RESTORED).is_unknown());
    }

    #[test]
    fn dropping_the_source_keeps_the_claim_and_adding_one_is_a_change() {
        let mut p = change(
            claim(Some("s3://b/a.tar.lz4"), None, false),
            claim(None, None, false),
        );
        let mut d = Diagnostics::default();
        plan(&mut p, &mut d);
        assert!(!d.has_errors() && p.requires_replace.is_empty());

        let mut p = change(
            claim(None, None, false),
            claim(Some("s3://b/a.tar.lz4"), None, false),
        );
        let mut d = Diagnostics::default();
        plan(&mut p, &mut d);
        assert!(format!("{d:?}").contains("imported"));
    }

    #[test]
    fn validation_names_the_attribute() {
        let mut d = Diagnostics::default();
        validate(
            &claim(Some("file:///srv/a.tar.lz4"), Some("xyz"), false),
            &mut d,
        );
        let text = format!("{d:?}");
        assert!(
            text.contains("A Job cannot restore from a local directory"),
            "{text}"
        );
        assert!(text.contains("Invalid sha256"), "{text}");
        let mut job_only = claim(None, None, false);
        job_only.set("job", Value::object([("timeout", Value::string("5m"))]));
        let mut d = Diagnostics::default();
        validate(&job_only, &mut d);
        assert!(format!("{d:?}").contains("Job settings without restore_from"));
    }
}

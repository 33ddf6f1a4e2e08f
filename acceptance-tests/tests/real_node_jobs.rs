//! `testnet_snapshot_artifact.source_claim`: snapshots taken by a Kubernetes Job next to the data,
//! through the real `terraform` CLI, on a real node (`scripts/kube-real start --with-node`) with an
//! s3s-fs server bound on the pod gateway, so pods and the provider reach the same store.
//! Credentials reach the Job only through a Secret (`envFrom`).
//!
//! Gated like `real_node.rs` (one node cluster per test process, each test in its own namespace);
//! the plan-time and local-API-server tests need no node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use acceptance_tests::job_interrupt::{job_leftovers, wait_pod_log, InterruptedApply};
use acceptance_tests::node::{bound_hostpath_claim, node, pod_with_claim, Node, PAUSE_IMAGE};
use acceptance_tests::servers::{KubeApi, KubeServer, TestServer};
use acceptance_tests::{cargo_build, flatten, Mirror, Workdir};
use serde_json::{json, Value};

const KEY: &str = "jobkey";
const SECRET: &str = "jobsecret";
const BUCKET: &str = "snap";

fn node_or_skip() -> Option<&'static Node> {
    let n = node();
    if n.is_none() {
        eprintln!("skipped: no real node (scripts/kube-real build, root; TESTNET_KUBE_REAL=1 makes this a failure)");
    }
    n
}

/// A Secret holding S3 credentials, in `ns`.
fn secret(api: &KubeApi, ns: &str, name: &str, key: &str, secret: &str) {
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"}}),
    );
    assert_eq!(code, 201, "create secret: {body}");
}

/// A bound host-path claim `state` in `ns` holding `files`; returns its directory on this machine.
fn claim_with_files(api: &KubeApi, ns: &str, files: &BTreeMap<&str, Vec<u8>>) -> PathBuf {
    let dir = bound_hostpath_claim(api, ns, &format!("hostpath-{ns}"), "state", "1Gi");
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write into the volume");
    }
    dir
}

/// A node's state: a few files, one of them a node secret left out by default.
fn node_state() -> BTreeMap<&'static str, Vec<u8>> {
    let blocks: Vec<u8> = (0..3_000_000u32)
        .map(|x| (x.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    BTreeMap::from([
        ("config.json", br#"{"network":"ghostnet"}"#.to_vec()),
        ("context/blocks/0.dat", blocks),
        ("context/store/index", vec![3u8; 100_000]),
        ("identity.json", b"node secret".to_vec()),
    ])
}

/// The S3 server the pods and the provider share, with its bucket.
fn store(node: &Node) -> Option<TestServer> {
    let s3 = TestServer::s3s_fs_on(&node.pod_gateway, KEY, SECRET)?;
    std::fs::create_dir_all(s3.dir().join("data").join(BUCKET)).expect("bucket");
    Some(s3)
}

fn config(kubeconfig: &Path, s3: &str, image: &str, ns: &str, job: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path     = "{kc}"
  s3_endpoint         = "{s3}"
  s3_force_path_style = true
  s3_region           = "us-east-1"
  archiver_image      = "{image}"
}}
resource "testnet_snapshot_artifact" "snap" {{
  source_claim = "{ns}/state"
  store_url    = "s3://{BUCKET}/{ns}"
  network      = "ghostnet"
  kind         = "rolling"
  label        = "100"
  block_height = 100
  job {{
{job}
  }}
}}
"#,
        kc = kubeconfig.display()
    )
}

/// A working directory whose terraform (the provider) holds the store's real credentials.
fn workdir(mirror: &Mirror) -> Workdir {
    let mut wd = mirror.workdir();
    wd.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("TF_LOG_PROVIDER", "INFO");
    wd
}

/// Namespace `ns` with the claim `state` holding the node-state set and the Secret
/// `store-creds` whose secret key is `secret_key`.
fn namespace_with_claim(node: &Node, ns: &str, secret_key: &str) -> KubeApi {
    node.namespace(ns);
    let api = node.api();
    claim_with_files(&api, ns, &node_state());
    secret(&api, ns, "store-creds", KEY, secret_key);
    api
}

/// An initialised working directory snapshotting `ns`'s claim into `s3` by a Job whose `job`
/// block holds `job`.
fn job_workdir(mirror: &Mirror, node: &Node, s3: &TestServer, ns: &str, job: &str) -> Workdir {
    let wd = workdir(mirror);
    wd.write(
        "main.tf",
        &config(&node.kubeconfig, &s3.endpoint(), &node.image, ns, job),
    );
    wd.init();
    wd
}

/// Every file below `dir` (relative path → bytes).
fn files_below(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("below root")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn snapshot_of_a_claim_a_running_pod_mounts_is_taken_by_a_job_and_confirmed_in_the_store() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store(node) else { return };
    let ns = "jobs-ok";
    node.namespace(ns);
    let api = node.api();
    let files = node_state();
    claim_with_files(&api, ns, &files);
    secret(&api, ns, "store-creds", KEY, SECRET);
    // The node that owns the claim: the Job must run where the volume is attached.
    node.create_pod(
        ns,
        &pod_with_claim("holder", PAUSE_IMAGE, &[], "state", "/data"),
    );
    node.wait_pod(ns, "holder", "running", |p| {
        p["status"]["phase"] == "Running"
    });

    let mirror = Mirror::testnet();
    let wd = job_workdir(
        &mirror,
        node,
        &s3,
        ns,
        r#"    env_secret_name = "store-creds"
    memory          = "256Mi"
    timeout         = "5m""#,
    );
    let run = wd.apply().ok();
    let log = run.output();
    // Progress and the result from the pod's log, in Terraform's log at info level.
    assert!(
        log.contains("snapshot job: testnet-archiver: published"),
        "the pod's log lines reach Terraform's log:\n{log}"
    );
    assert!(
        log.contains("pinned to node localhost, where pod holder mounts the claim"),
        "the Job was pinned to the node of the pod holding the claim:\n{log}"
    );
    // For the report: where the Job's time went (creation → container start → end).
    for line in log.lines().filter(|l| l.contains("succeeded on node")) {
        eprintln!("{line}");
    }
    let st = wd
        .resource("testnet_snapshot_artifact.snap")
        .expect("artifact in state");
    assert_eq!(
        st["url"],
        format!("s3://{BUCKET}/{ns}/ghostnet-rolling-100.tar.lz4")
    );
    assert_eq!(st["file_count"], 3, "identity.json left out: {st}");

    // What the store holds is what state says, and it restores to the claim's files.
    let object = s3
        .dir()
        .join(format!("data/{BUCKET}/{ns}/ghostnet-rolling-100.tar.lz4"));
    let bytes = std::fs::read(&object).expect("the object in the store");
    assert_eq!(st["size_bytes"], bytes.len() as u64);
    let index: Value = serde_json::from_slice(
        &std::fs::read(s3.dir().join(format!("data/{BUCKET}/{ns}/base.json"))).expect("base.json"),
    )
    .expect("index");
    assert_eq!(index["artifacts"][0]["sha256"], st["sha256"], "{index}");
    let archiver = cargo_build("archiver-cli", "bin", "testnet-archiver");
    let into = tempfile::tempdir().expect("tempdir");
    let out = Command::new(archiver)
        .args(["restore", st["url"].as_str().expect("url"), "--into"])
        .arg(into.path())
        .args([
            "--endpoint",
            &s3.endpoint(),
            "--path-style",
            "--region",
            "us-east-1",
        ])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("run testnet-archiver restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    expected.remove("identity.json");
    let mut restored = files_below(into.path());
    assert!(
        restored.remove(".testnet-restored.json").is_some(),
        "a restore leaves its marker"
    );
    assert!(
        restored == expected,
        "restored files differ from the claim's"
    );

    // The Job and its pod are gone; a second plan has nothing to do.
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());
    wd.assert_no_changes();
    wd.destroy().ok();
    assert!(!object.exists(), "destroy removes the artifact");
    node.delete_pod(ns, "holder");
}

#[test]
fn a_job_nobody_can_schedule_fails_within_its_timeout_with_the_schedulers_reason() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store(node) else { return };
    let ns = "jobs-unsched";
    let api = namespace_with_claim(node, ns, SECRET);
    let mirror = Mirror::testnet();
    let wd = job_workdir(
        &mirror,
        node,
        &s3,
        ns,
        r#"    env_secret_name = "store-creds"
    node_selector   = { "testnet.io/pool" = "nobody" }
    timeout         = "15s""#,
    );
    let run = wd
        .apply()
        .fails_with("Snapshot Job could not be scheduled")
        // The scheduler's words (v1.20 reports a nodeSelector miss as node affinity).
        .fails_with("0/1 nodes are available: 1 node(s) didn't match")
        .fails_with("job.keep_failed");
    let text = flatten(&run.output());
    assert!(
        text.contains("with testnet_snapshot_artifact.snap"),
        "{text}"
    );
    assert!(wd.resource("testnet_snapshot_artifact.snap").is_none());
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());
    assert!(!s3
        .dir()
        .join(format!("data/{BUCKET}/{ns}/base.json"))
        .exists());
}

#[test]
fn a_missing_archiver_image_is_named() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store(node) else { return };
    let ns = "jobs-noimage";
    let api = namespace_with_claim(node, ns, SECRET);
    let mirror = Mirror::testnet();
    let wd = job_workdir(
        &mirror,
        node,
        &s3,
        ns,
        r#"    env_secret_name = "store-creds"
    image           = "localhost:1/testnet/missing:v0""#,
    );
    let run = wd
        .apply()
        .fails_with("Snapshot Job: archiver image not available")
        .fails_with(r#"image "localhost:1/testnet/missing:v0""#);
    let text = flatten(&run.output());
    assert!(
        text.contains("ErrImagePull") || text.contains("ImagePullBackOff"),
        "{text}"
    );
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());
}

#[test]
fn wrong_store_credentials_in_the_secret_fail_with_the_archivers_error_and_publish_nothing() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store(node) else { return };
    let ns = "jobs-badcreds";
    let api = namespace_with_claim(node, ns, "not-the-secret");
    let mirror = Mirror::testnet();
    let wd = job_workdir(
        &mirror,
        node,
        &s3,
        ns,
        r#"    env_secret_name = "store-creds"
    keep_failed     = true"#,
    );
    let run = wd
        .apply()
        .fails_with("Snapshot Job failed; nothing was published")
        .fails_with("the container exited with code 1")
        .fails_with("The Job and its pod are kept");
    let text = flatten(&run.output());
    assert!(
        text.contains("testnet-archiver: error:"),
        "the archiver's own words: {text}"
    );
    assert!(wd.resource("testnet_snapshot_artifact.snap").is_none());
    assert!(!s3
        .dir()
        .join(format!("data/{BUCKET}/{ns}/base.json"))
        .exists());

    // Kept for inspection, and its spec carries the Secret's name, never a credential.
    let jobs = api
        .get(&format!("/apis/batch/v1/namespaces/{ns}/jobs"))
        .expect("jobs");
    let job = &jobs["items"][0];
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "store-creds", "{c}");
    assert!(c["env"].is_null(), "{c}");
    assert!(!job.to_string().contains("not-the-secret"));
    let name = job["metadata"]["name"].as_str().expect("job name");
    let (code, body) = api.send(
        "DELETE",
        &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}?propagationPolicy=Foreground"),
        "application/json",
        None,
    );
    assert_eq!(code, 200, "{body}");
}

/// The local API server serves no Jobs: a clear error, nothing recorded.
#[test]
fn source_claim_on_the_local_api_server_says_jobs_do_not_run_there() {
    let Some(s3) = TestServer::s3s_fs(KEY, SECRET) else {
        return;
    };
    std::fs::create_dir_all(s3.dir().join("data").join(BUCKET)).expect("bucket");
    let server = KubeServer::sandbox();
    let api = KubeApi::new(&server.kubeconfig);
    let ns = "jobs-sandbox";
    let (code, body) = api.post(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "state"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    assert_eq!(code, 201, "{body}");
    let mirror = Mirror::testnet();
    let wd = workdir(&mirror);
    wd.write(
        "main.tf",
        &config(&server.kubeconfig, &s3.endpoint(), "unused:v0", ns, ""),
    );
    wd.init();
    wd.apply()
        .fails_with("Jobs cannot run in this cluster")
        .fails_with("does not serve batch/v1 Jobs")
        .fails_with("runs no pods");
    assert!(wd.resource("testnet_snapshot_artifact.snap").is_none());
}

/// Plan-time: exactly one source, a well-formed claim, and `job` only with a claim.
#[test]
fn source_claim_and_source_dir_are_exclusive_at_plan_time() {
    let mirror = Mirror::testnet();
    let wd = mirror.workdir();
    let cfg = |body: &str| {
        format!(
            r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
resource "testnet_snapshot_artifact" "snap" {{
  store_url = "s3://snap/p"
  network   = "ghostnet"
  kind      = "rolling"
{body}
}}
"#
        )
    };
    wd.write(
        "main.tf",
        &cfg("  source_dir = \"/tmp\"\n  source_claim = \"ns/state\""),
    );
    wd.init();
    let validate = || wd.tf(&["validate", "-no-color"]);
    validate()
        .fails_with("Conflicting sources")
        .fails_with("source_dir and source_claim are both set");
    wd.write("main.tf", &cfg(""));
    validate()
        .fails_with("Missing source")
        .fails_with("Neither source_dir nor source_claim is set");
    wd.write("main.tf", &cfg("  source_claim = \"state\""));
    validate()
        .fails_with("Invalid source claim")
        .fails_with("Allowed: `namespace/name`");
    wd.write(
        "main.tf",
        &cfg("  source_dir = \"/tmp\"\n  job {\n    timeout = \"5m\"\n  }"),
    );
    validate().fails_with("Job settings without a claim");
    wd.write(
        "main.tf",
        &cfg("  source_claim = \"ns/state\"\n  job {\n    timeout = \"soon\"\n    memory = \"lots\"\n  }"),
    );
    validate()
        .fails_with("Invalid job timeout")
        .fails_with("Invalid job memory");
    wd.write(
        "main.tf",
        &cfg("  source_claim = \"ns/state\"").replace("s3://snap/p", "file:///srv/snapshots"),
    );
    validate()
        .fails_with("A Job cannot publish to a local directory")
        .fails_with("use an s3:// or gs:// store");
    wd.write("main.tf", &cfg("  source_claim = \"ns/state\""));
    validate().ok();
}

/// Ctrl-C while the Job runs: the Job and its pod are deleted and nothing is published. The
/// store is stopped (SIGSTOP) as soon as the Job exists, so the archiver cannot have published
/// anything when the interrupt arrives, whatever the timing; it continues once the archiver has
/// logged that it got SIGTERM, so its clean-up can reach the store.
#[test]
fn ctrl_c_during_an_in_cluster_snapshot_leaves_no_job_pod_object_or_index_entry() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store(node) else { return };
    let ns = "jobs-cancel";
    let api = namespace_with_claim(node, ns, SECRET);
    let mirror = Mirror::testnet();
    let wd = job_workdir(
        &mirror,
        node,
        &s3,
        ns,
        r#"    env_secret_name = "store-creds""#,
    );
    let run = InterruptedApply::start(&wd, &api, ns, "snapshot", s3.pid());
    run.wait_job_deleting(&api, ns);
    // The archiver has the SIGTERM (its own words, in its log) before the store answers again:
    // it cannot have published, and what it does next is its clean-up.
    wait_pod_log(
        &api,
        ns,
        &run.pod,
        "testnet-archiver: interrupted, cleaning up",
    );
    let pod = run.pod.clone();
    let (status, log) = run.finish(&wd);
    assert!(
        !status.success(),
        "apply must fail when interrupted:\n{log}"
    );
    assert!(
        flatten(&log).contains("Interrupted; nothing was published"),
        "{log}"
    );
    assert!(wd.resource("testnet_snapshot_artifact.snap").is_none());
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new(), "pod {pod}");
    let prefix = s3.dir().join(format!("data/{BUCKET}/{ns}"));
    let left: Vec<String> = files_below(&prefix).into_keys().collect();
    assert_eq!(left, Vec::<String>::new(), "objects left in the store");
}

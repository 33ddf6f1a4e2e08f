//! `testnet_shared_state_pvc.restore_from`: claims filled from a snapshot artifact by a
//! `testnet-archiver restore` Job, through the real `terraform` CLI, on a real node with an
//! s3s-fs server bound on the pod gateway (pods and the provider reach the same store). What a
//! claim holds is read by a pod (`tree-sha256`) and compared file by file with the source.
//!
//! Gated like `real_node_jobs.rs`; the plan-time and local-API-server tests need no node.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use acceptance_tests::job_interrupt::{job_leftovers, InterruptedApply};
use acceptance_tests::node::{exit_code, node, pod_with_claim, wait_for, Node};
use acceptance_tests::servers::{stdout_of, KubeApi, KubeServer, TestServer};
use acceptance_tests::{cargo_build, flatten, Mirror, Workdir};
use serde_json::{json, Value};

const KEY: &str = "restorekey";
const SECRET: &str = "restoresecret";
const BUCKET: &str = "snap";

fn node_or_skip() -> Option<&'static Node> {
    let n = node();
    if n.is_none() {
        eprintln!("skipped: no real node (scripts/kube-real build, root; TESTNET_KUBE_REAL=1 makes this a failure)");
    }
    n
}

/// The S3 server on `host`, with its bucket.
fn store_on(host: Option<&str>) -> Option<TestServer> {
    let s3 = match host {
        Some(h) => TestServer::s3s_fs_on(h, KEY, SECRET)?,
        None => TestServer::s3s_fs(KEY, SECRET)?,
    };
    std::fs::create_dir_all(s3.dir().join("data").join(BUCKET)).expect("bucket");
    Some(s3)
}

/// A node's state: nested directories, an empty file, a file larger than one LZ4 block.
fn source_files(seed: u8) -> BTreeMap<String, Vec<u8>> {
    let blocks: Vec<u8> = (0..2_500_000u32)
        .map(|x| (x.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    BTreeMap::from([
        (
            "config.json".into(),
            format!("{{\"seed\":{seed}}}").into_bytes(),
        ),
        ("context/blocks/0.dat".into(), blocks),
        ("context/store/index".into(), vec![seed; 100_000]),
        ("context/empty".into(), Vec::new()),
        ("identity.json".into(), b"node identity".to_vec()),
    ])
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Publishes `files` as artifact `ghostnet-rolling-<label>` into `s3://snap/<prefix>` with
/// `testnet-archiver create` (every file kept); returns (url, sha256).
fn publish(
    s3: &TestServer,
    prefix: &str,
    label: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> (String, String) {
    let src = tempfile::tempdir().expect("source dir");
    for (name, data) in files {
        let p = src.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }
    let out = stdout_of(
        Command::new(cargo_build("archiver-cli", "bin", "testnet-archiver"))
            .arg("create")
            .arg("--source")
            .arg(src.path())
            .args([
                "--store",
                &format!("s3://{BUCKET}/{prefix}"),
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
                "--label",
                label,
                "--no-default-excludes",
                "--single-publisher",
            ])
            .args(s3.archiver_flags())
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET),
        "testnet-archiver create",
    );
    let meta: Value = serde_json::from_slice(&out).expect("metadata JSON");
    (
        meta["url"].as_str().expect("url").to_string(),
        meta["sha256"].as_str().expect("sha256").to_string(),
    )
}

fn secret(api: &KubeApi, ns: &str, secret_key: &str) {
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store-creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_REGION": "us-east-1"}}),
    );
    assert_eq!(code, 201, "create secret: {body}");
}

/// A host-path class binding on first use, so only the restore Job's pod can bind the claim.
fn first_consumer_class(api: &KubeApi, name: &str) {
    let (code, body) = api.post(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}),
    );
    assert!(code == 201 || code == 409, "class: {body}");
}

fn config(
    kubeconfig: &Path,
    s3: &str,
    image: &str,
    ns: &str,
    class: &str,
    restore: &str,
) -> String {
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
resource "testnet_shared_state_pvc" "state" {{
  namespace          = "{ns}"
  name               = "restored"
  testnet            = "ghostnet"
  storage            = "1Gi"
  storage_class_name = "{class}"
  restore_from {{
{restore}
  }}
  job {{
    env_secret_name = "store-creds"
    timeout         = "5m"
  }}
}}
"#,
        kc = kubeconfig.display()
    )
}

fn workdir(mirror: &Mirror) -> Workdir {
    let mut wd = mirror.workdir();
    wd.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("TF_LOG_PROVIDER", "INFO");
    wd
}

/// A work directory on the node whose claim restores `url`, initialised.
fn node_workdir(
    mirror: &Mirror,
    node: &Node,
    s3: &TestServer,
    ns: &str,
    class: &str,
    url: &str,
) -> Workdir {
    let wd = workdir(mirror);
    wd.write(
        "main.tf",
        &config(
            &node.kubeconfig,
            &s3.endpoint(),
            &node.image,
            ns,
            class,
            &format!("    url = \"{url}\""),
        ),
    );
    wd.init();
    wd
}

/// The claim `ns/restored` is gone from the cluster (or on its way out).
fn claim_gone(api: &KubeApi, ns: &str) {
    wait_for(
        "the claim is deleted",
        Duration::from_secs(120),
        || match api.get(&format!(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims/restored"
        )) {
            None => Ok(()),
            Some(c) => Err(c["status"].to_string()),
        },
    );
}

/// What a pod mounting the claim sees: path → SHA-256 of every file (`testnet-archiver sums`),
/// less the restore marker, which must be there.
fn listing_in_pod(node: &Node, ns: &str, pod: &str) -> BTreeMap<String, String> {
    let (p, log) = node.run_to_end(
        ns,
        &pod_with_claim(pod, &node.image, &["sums", "/data"], "restored", "/data"),
    );
    assert_eq!(exit_code(&p), Some(0), "sums: {log}");
    node.delete_pod(ns, pod);
    let mut seen = acceptance_tests::node::parse_sums(&log);
    assert!(
        seen.remove(".testnet-restored.json").is_some(),
        "the restore leaves its marker: {log}"
    );
    seen
}

fn expected_listing(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(k, v)| (k.clone(), sha256_hex(v)))
        .collect()
}

#[test]
fn a_claim_restored_by_a_job_holds_every_file_of_the_artifact_and_is_replaced_only_when_asked() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store_on(Some(&node.pod_gateway)) else {
        return;
    };
    let ns = "restore-ok";
    node.namespace(ns);
    let api = node.api();
    secret(&api, ns, SECRET);
    let class = format!("wffc-{ns}");
    first_consumer_class(&api, &class);
    let first = source_files(1);
    let (url, sha) = publish(&s3, ns, "1", &first);

    let mirror = Mirror::testnet();
    let wd = workdir(&mirror);
    let write = |restore: &str| {
        wd.write(
            "main.tf",
            &config(
                &node.kubeconfig,
                &s3.endpoint(),
                &node.image,
                ns,
                &class,
                restore,
            ),
        )
    };
    write(&format!(
        "    url    = \"{url}\"\n    sha256 = \"{}\"",
        sha.to_uppercase()
    ));
    wd.init();
    let run = wd.apply().ok();
    let log = run.output();
    assert!(
        log.contains("restore job: testnet-archiver: restore"),
        "the Job's progress reaches Terraform's log:\n{log}"
    );
    // For the report: where the Job's time went (creation → container start → end).
    for line in log.lines().filter(|l| l.contains("restored s3://")) {
        eprintln!("{line}");
    }
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(st["restored_sha256"], sha.as_str(), "{st}");
    assert_eq!(
        st["phase"], "Bound",
        "the Job's pod bound the WaitForFirstConsumer claim: {st}"
    );
    assert_eq!(st["restore_from"]["url"], url.as_str());
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());
    assert_eq!(listing_in_pod(node, ns, "list-1"), expected_listing(&first));
    wd.assert_no_changes();

    // Another artifact: the claim holds data, so a changed url is a plan error ...
    let second = source_files(2);
    let (url2, sha2) = publish(&s3, ns, "2", &second);
    write(&format!("    url = \"{url2}\""));
    wd.plan()
        .fails_with("restore_from changed on a claim that holds data")
        .fails_with(&format!("was restored from {url}"))
        .fails_with("replace_on_change = true");
    // ... and with replace_on_change the claim is replaced and restored from the new one.
    write(&format!(
        "    url = \"{url2}\"\n    replace_on_change = true"
    ));
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_shared_state_pvc.state"),
        vec!["delete", "create"]
    );
    assert!(
        plan.to_string()
            .contains(r#""replace_paths":[["restore_from"]]"#),
        "replacement is due to restore_from"
    );
    wd.apply().ok();
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(st["restored_sha256"], sha2.as_str());
    assert_eq!(
        listing_in_pod(node, ns, "list-2"),
        expected_listing(&second)
    );
    wd.assert_no_changes();
    wd.destroy().ok();
    claim_gone(&api, ns);
}

/// A restore that fails in the Job (object missing, then wrong credentials in the Secret) is the
/// archiver's error; the claim is deleted and not recorded, so the next apply creates it again.
#[test]
fn a_failed_restore_leaves_no_claim_and_the_next_apply_creates_it_again() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store_on(Some(&node.pod_gateway)) else {
        return;
    };
    let ns = "restore-fail";
    node.namespace(ns);
    let api = node.api();
    secret(&api, ns, "not-the-secret");
    let class = format!("wffc-{ns}");
    first_consumer_class(&api, &class);
    let files = source_files(3);
    let (url, _) = publish(&s3, ns, "3", &files);
    let object = s3
        .dir()
        .join(format!("data/{BUCKET}/{ns}/ghostnet-rolling-3.tar.lz4"));
    let aside = s3.dir().join("aside.tar.lz4");
    std::fs::rename(&object, &aside).expect("move the object away");

    let mirror = Mirror::testnet();
    let wd = node_workdir(&mirror, node, &s3, ns, &class, &url);
    // The Secret's credentials are wrong: the archiver in the pod says so.
    let run = wd
        .apply()
        .fails_with("Restore Job failed; the claim was not kept")
        .fails_with("the container exited with code");
    let text = flatten(&run.output());
    assert!(
        text.contains("testnet-archiver: error:"),
        "the archiver's own words: {text}"
    );
    assert!(
        text.contains("with testnet_shared_state_pvc.state"),
        "{text}"
    );
    assert!(wd.resource("testnet_shared_state_pvc.state").is_none());
    claim_gone(&api, ns);
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());

    // Right credentials, object still missing: the archiver's not-found.
    let (code, body) = api.send(
        "DELETE",
        &format!("/api/v1/namespaces/{ns}/secrets/store-creds"),
        "application/json",
        None,
    );
    assert_eq!(code, 200, "{body}");
    secret(&api, ns, SECRET);
    let run = wd
        .apply()
        .fails_with("Restore Job failed; the claim was not kept");
    let text = flatten(&run.output());
    assert!(text.contains("testnet-archiver: error:"), "{text}");
    assert!(wd.resource("testnet_shared_state_pvc.state").is_none());
    claim_gone(&api, ns);

    // Everything in place: the same configuration now creates and restores the claim.
    std::fs::rename(&aside, &object).expect("put the object back");
    wd.apply().ok();
    assert!(wd.resource("testnet_shared_state_pvc.state").is_some());
    assert_eq!(listing_in_pod(node, ns, "list-3"), expected_listing(&files));
    wd.destroy().ok();
    claim_gone(&api, ns);
}

/// No node needed: the metadata check runs before any claim exists, and the local API server
/// runs no Jobs.
#[test]
fn a_wrong_sha256_creates_nothing_and_the_local_api_server_says_jobs_do_not_run_there() {
    let Some(s3) = store_on(None) else { return };
    let server = KubeServer::sandbox();
    let api = KubeApi::new(&server.kubeconfig);
    let ns = "restore-sandbox";
    let (code, body) = api.post(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    assert_eq!(code, 201, "{body}");
    // The sandbox provisions nothing; a first-consumer claim is usable while Pending.
    first_consumer_class(&api, "wffc-sandbox");
    let (url, sha) = publish(&s3, ns, "4", &source_files(4));
    let mirror = Mirror::testnet();
    let wd = workdir(&mirror);
    let write = |restore: &str| {
        wd.write(
            "main.tf",
            &config(
                &server.kubeconfig,
                &s3.endpoint(),
                "unused:v0",
                ns,
                "wffc-sandbox",
                restore,
            ),
        )
    };
    let wrong = "0".repeat(64);
    write(&format!("    url    = \"{url}\"\n    sha256 = \"{wrong}\""));
    wd.init();
    wd.apply()
        .fails_with("Artifact does not have the expected sha256; nothing was restored")
        .fails_with(&format!("has sha256 {sha} in its metadata, not {wrong}"))
        // Attached to the attribute: Terraform quotes its line.
        .fails_with(&format!("sha256 = \"{wrong}\""));
    assert!(wd.resource("testnet_shared_state_pvc.state").is_none());
    assert!(
        api.get(&format!(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims/restored"
        ))
        .is_none(),
        "no claim was created"
    );

    write(&format!(
        "    url = \"{}\"",
        url.replace("-4.tar.lz4", "-5.tar.lz4")
    ));
    wd.apply()
        .fails_with("Artifact not published")
        .fails_with("ghostnet-rolling-5.json");

    write(&format!("    url = \"{url}\"\n    sha256 = \"{sha}\""));
    wd.apply()
        .fails_with("Jobs cannot run in this cluster")
        .fails_with("runs no pods");
    assert!(wd.resource("testnet_shared_state_pvc.state").is_none());
    assert!(
        api.get(&format!(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims/restored"
        ))
        .is_none(),
        "the claim made for the restore was deleted"
    );
}

/// Plan-time: a URL a pod can reach, a well-formed sha256, `job` only with `restore_from`.
#[test]
fn restore_from_is_checked_at_plan_time() {
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
resource "testnet_shared_state_pvc" "state" {{
  namespace = "net"
  name      = "state"
  storage   = "1Gi"
{body}
}}
"#
        )
    };
    let validate = || wd.tf(&["validate", "-no-color"]);
    wd.write(
        "main.tf",
        &cfg("  restore_from {\n    url = \"file:///srv/snap/ghostnet-rolling-1.tar.lz4\"\n  }"),
    );
    wd.init();
    let run = validate()
        .fails_with("A Job cannot restore from a local directory")
        .fails_with("a pod in the cluster does not see");
    // On restore_from.url: line 12 of main.tf.
    assert!(
        flatten(&run.output()).contains("on main.tf line 12"),
        "{}",
        run.output()
    );
    wd.write(
        "main.tf",
        &cfg("  restore_from {\n    url = \"s3://snap/ghostnet-rolling-1.json\"\n    sha256 = \"abc\"\n  }"),
    );
    validate()
        .fails_with("Invalid artifact URL")
        .fails_with("<name>.tar.lz4")
        .fails_with("Invalid sha256")
        .fails_with("64 hexadecimal digits");
    wd.write("main.tf", &cfg("  job {\n    timeout = \"5m\"\n  }"));
    validate().fails_with("Job settings without restore_from");
    wd.write(
        "main.tf",
        &cfg("  restore_from {\n    url = \"s3://snap/ghostnet-rolling-1.tar.lz4\"\n  }\n  job {\n    memory = \"lots\"\n  }"),
    );
    validate().fails_with("Invalid job memory");
    wd.write(
        "main.tf",
        &cfg("  restore_from {\n    url = \"gs://snap/p/ghostnet-rolling-1.tar.lz4\"\n    sha256 = \"ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\"\n  }"),
    );
    validate().ok();
}

/// Ctrl-C while the restore Job runs: the Job and its pod are deleted, and the claim is deleted
/// and not recorded. The store is stopped (SIGSTOP) once the Job exists, so the restore cannot
/// have finished when the interrupt arrives; it continues once the Job is being deleted.
#[test]
fn ctrl_c_during_a_restore_leaves_no_job_no_pod_and_no_claim() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = store_on(Some(&node.pod_gateway)) else {
        return;
    };
    let ns = "restore-cancel";
    node.namespace(ns);
    let api = node.api();
    secret(&api, ns, SECRET);
    let class = format!("wffc-{ns}");
    first_consumer_class(&api, &class);
    let (url, _) = publish(&s3, ns, "6", &source_files(6));
    let mirror = Mirror::testnet();
    let wd = node_workdir(&mirror, node, &s3, ns, &class, &url);
    let run = InterruptedApply::start(&wd, &api, ns, "restore", s3.pid());
    run.wait_job_deleting(&api, ns);
    let (status, log) = run.finish(&wd);
    assert!(
        !status.success(),
        "apply must fail when interrupted:\n{log}"
    );
    assert!(
        flatten(&log).contains("Interrupted; the claim was not kept"),
        "{log}"
    );
    assert!(wd.resource("testnet_shared_state_pvc.state").is_none());
    assert_eq!(job_leftovers(&api, ns), Vec::<String>::new());
    claim_gone(&api, ns);
}

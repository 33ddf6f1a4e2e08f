//! The init-container path on a real node (`scripts/kube-real start --with-node`): a pod whose
//! init container runs `testnet-archiver restore --latest` from the released image into its
//! claim, and whose main container lists the SHA-256 of every file it sees there; then a second
//! pod on the same claim, whose init container finds the restore marker and skips. The store is
//! an s3s-fs server bound on the pod gateway; credentials reach the pods through a Secret.
//!
//! Gated like `real_node.rs`: skipped without the node build or root, a failure with
//! `TESTNET_KUBE_REAL=1`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use acceptance_tests::cargo_build;
use acceptance_tests::node::{bound_hostpath_claim, node, Node};
use acceptance_tests::servers::{stdout_of, KubeApi, TestServer};
use serde_json::{json, Value};

const KEY: &str = "initkey";
const SECRET: &str = "initsecret";
const BUCKET: &str = "snap";

/// A node's state at `height`: a config, blocks (several LZ4 blocks), a nested index, and the
/// node secret `create` leaves out by default.
fn write_state(dir: &Path, height: u32) {
    let blocks: Vec<u8> = (0..5_000_000u32)
        .map(|x| (x.wrapping_mul(2_654_435_761).wrapping_add(height) >> 13) as u8)
        .collect();
    let files: [(&str, Vec<u8>); 4] = [
        (
            "config.json",
            format!("{{\"height\":{height}}}").into_bytes(),
        ),
        ("context/blocks/0.dat", blocks),
        ("context/store/index", vec![height as u8; 100_000]),
        ("identity.json", b"node secret".to_vec()),
    ];
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }
}

/// SHA-256 of every regular file below `dir` by relative path, from coreutils' `sha256sum` (an
/// implementation that is not ours).
fn sums_here(dir: &Path) -> BTreeMap<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && find . -type f -print0 | xargs -0 sha256sum")
        .args(["sh", &dir.display().to_string()])
        .output()
        .expect("sha256sum");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sha, path)| (path.trim_start_matches("./").to_string(), sha.to_string()))
        .collect()
}

/// Publishes `src` with the local `testnet-archiver` into the store the pods read.
fn publish(s3: &TestServer, store: &str, src: &Path, height: u32) -> Value {
    let out = stdout_of(
        Command::new(cargo_build("archiver-cli", "bin", "testnet-archiver"))
            .arg("create")
            .arg("--source")
            .arg(src)
            .args([
                "--store",
                store,
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
            ])
            .args(["--block-height", &height.to_string()])
            .args(s3.archiver_flags())
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET),
        "testnet-archiver create",
    );
    serde_json::from_slice(&out).expect("metadata")
}

/// An empty bound host-path claim `data` in `ns`.
fn claim(api: &KubeApi, ns: &str) {
    bound_hostpath_claim(api, ns, &format!("hostpath-{ns}"), "data", "1Gi");
}

/// The pod of docs/guides/init-container.md, in the form a chart would render it: the restore
/// as init container, the node (here: a listing of what it would start from) as main container.
fn node_pod(name: &str, node: &Node, s3: &TestServer, store: &str) -> Value {
    let mount = json!([{"name": "data", "mountPath": "/data"}]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "initContainers": [{
                "name": "restore",
                "image": node.image,
                "imagePullPolicy": "Never",
                "args": ["restore", "--latest", "--store", store, "--network", "ghostnet",
                    "--kind", "rolling", "--into", "/data", "--replace",
                    "--endpoint", s3.endpoint(), "--path-style"],
                "envFrom": [{"secretRef": {"name": "store-credentials"}}],
                "volumeMounts": mount,
            }],
            "containers": [{
                "name": "node",
                "image": node.image,
                "imagePullPolicy": "Never",
                "args": ["sums", "/data"],
                "volumeMounts": mount,
            }],
        },
    })
}

fn container_log(api: &KubeApi, ns: &str, pod: &str, container: &str) -> String {
    let (code, body) = api.send(
        "GET",
        &format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container={container}"),
        "application/json",
        None,
    );
    assert_eq!(code, 200, "log of {ns}/{pod}/{container}: {body}");
    body
}

#[test]
fn an_init_container_restores_the_latest_artifact_once() {
    let Some(node) = node() else {
        eprintln!("skipped: no real node (scripts/kube-real build, root; TESTNET_KUBE_REAL=1 makes this a failure)");
        return;
    };
    let Some(s3) = TestServer::s3s_fs_on(&node.pod_gateway, KEY, SECRET) else {
        return;
    };
    std::fs::create_dir_all(s3.dir().join("data").join(BUCKET)).expect("bucket");
    let ns = "init-restore";
    let store = format!("s3://{BUCKET}/{ns}");
    let api = node.api();
    node.namespace(ns);
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store-credentials"},
            "stringData": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": "us-east-1"}}),
    );
    assert_eq!(code, 201, "secret: {body}");
    claim(&api, ns);

    // Two artifacts: the pod must get the newer one.
    let src = tempfile::tempdir().expect("tempdir");
    write_state(src.path(), 1);
    publish(&s3, &store, src.path(), 1);
    write_state(src.path(), 2);
    let two = publish(&s3, &store, src.path(), 2);
    let mut expected = sums_here(src.path());
    assert!(expected.remove("identity.json").is_some());

    let (pod, log) = node.run_to_end(ns, &node_pod("node-1", node, &s3, &store));
    let restore_log = container_log(&api, ns, "node-1", "restore");
    assert_eq!(
        pod["status"]["phase"], "Succeeded",
        "{}\n{restore_log}\n{log}",
        pod["status"]
    );
    let mut seen = acceptance_tests::node::parse_sums(&log);
    assert!(
        seen.remove(".testnet-restored.json").is_some(),
        "the restore marker is in the volume: {log}"
    );
    assert_eq!(
        seen, expected,
        "the pod sees the newest artifact's files, byte for byte"
    );
    assert!(
        restore_log.contains("restored ghostnet-rolling-2"),
        "{restore_log}"
    );
    node.delete_pod(ns, "node-1");

    // A restarted pod must not read the object again: remove it from the store. Its init
    // container would fail reading it; finding the marker it skips.
    let object = s3
        .dir()
        .join(format!("data/{BUCKET}/{ns}/ghostnet-rolling-2.tar.lz4"));
    std::fs::remove_file(&object).expect("remove the object");
    let (pod, log) = node.run_to_end(ns, &node_pod("node-2", node, &s3, &store));
    let restore_log = container_log(&api, ns, "node-2", "restore");
    assert_eq!(
        pod["status"]["phase"], "Succeeded",
        "{}\n{restore_log}\n{log}",
        pod["status"]
    );
    let sha = two["sha256"].as_str().expect("sha256");
    assert!(
        restore_log.contains(&format!(
            "already restored ghostnet-rolling-2 (sha256 {sha})"
        )) && restore_log.contains("nothing to do"),
        "{restore_log}"
    );
    let mut seen = acceptance_tests::node::parse_sums(&log);
    seen.remove(".testnet-restored.json");
    assert_eq!(seen, expected, "the second pod starts from the same files");
    node.delete_pod(ns, "node-2");
}

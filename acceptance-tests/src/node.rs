//! A real single-node cluster for tests whose behaviour depends on pods running: kube-apiserver,
//! controllers, scheduler, containerd and a kubelet from `scripts/kube-real start --with-node`,
//! with the `testnet-archiver` image (built by `scripts/image`) loaded.
//!
//! One node cluster per test process, shared by its tests (each uses its own namespace): a
//! machine runs one node cluster at a time (see `scripts/kube-real.d/node.sh`), and starting one
//! takes tens of seconds. Statics are never dropped, so the cluster is started with
//! `--stop-with <this process>`: kube-real stops it (containers included) when the test process
//! exits, however it exits, and removes its directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::servers::{cache_dir, KubeApi};
use crate::{target_dir, workspace_root};

/// The running node cluster.
pub struct Node {
    /// The directory `scripts/kube-real` keeps the cluster in (logs: `*.log`).
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// The address on which pods reach servers of this machine (the pod bridge's gateway).
    pub pod_gateway: String,
    /// The `testnet-archiver` image reference loaded into the node.
    pub image: String,
    /// What `start --with-node` took, for the report.
    pub start_time: Duration,
}

/// The pause image kube-real loads (it runs forever: pods that only hold a volume use it).
pub const PAUSE_IMAGE: &str = "localhost/testnet/pause:v1.20.2";

/// Whether a node cluster can run here: the kube build exists, `TESTNET_KUBE_REAL` is not `0`,
/// and we are root. With `TESTNET_KUBE_REAL=1` anything missing is a failure, not a skip.
pub fn node_available() -> bool {
    let wanted = std::env::var("TESTNET_KUBE_REAL").ok();
    if wanted.as_deref() == Some("0") {
        return false;
    }
    let stamp = cache_dir().join("kube-v1.20.2/stamp");
    // Recipe 4 added kubelet, kube-scheduler and pause to the build.
    let built = std::fs::read_to_string(&stamp).is_ok_and(|s| {
        s.trim()
            .strip_prefix("recipe=")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 4)
    });
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { geteuid() } == 0;
    if wanted.as_deref() == Some("1") {
        assert!(
            built,
            "TESTNET_KUBE_REAL=1 but the node binaries are not built: run scripts/kube-real build"
        );
        assert!(
            root,
            "TESTNET_KUBE_REAL=1 but a node (kubelet, containerd) needs root"
        );
    }
    built && root
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

/// The shared node cluster, started on first use; `None` (skip) when [`node_available`] says no.
pub fn node() -> Option<&'static Node> {
    static NODE: OnceLock<Option<Node>> = OnceLock::new();
    NODE.get_or_init(|| node_available().then(start)).as_ref()
}

fn start() -> Node {
    let image_archive = target_dir().join("image/testnet-archiver.oci.tar");
    // The packaging is what releases use; the debug binary keeps `.ci/run` from spending a full
    // optimised build (scripts/release builds the dist image the same way).
    // `TESTNET_NODE_ARCHIVER_BINARY` packages a given binary instead (scripts/bench-in-cluster:
    // the release build, so the Job runs what the local side of the benchmark runs).
    let mut image = Command::new(workspace_root().join("scripts/image"));
    match std::env::var_os("TESTNET_NODE_ARCHIVER_BINARY").filter(|b| !b.is_empty()) {
        Some(binary) => image.arg("--binary").arg(binary),
        None => image.args(["--profile", "dev"]),
    };
    let out = image
        .arg("--out")
        .arg(&image_archive)
        .output()
        .expect("run scripts/image");
    assert!(
        out.status.success(),
        "scripts/image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("scripts/image prints the reference")
        .to_string();

    // Short (the node's unix sockets live under it) and per process; kube-real removes it after
    // stopping the cluster when this process exits.
    let dir = std::env::temp_dir().join(format!("testnet-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("node dir");
    let t0 = Instant::now();
    let out = Command::new(workspace_root().join("scripts/kube-real"))
        .arg("start")
        .arg(&dir)
        .args([
            "--with-node",
            "--stop-with",
            &std::process::id().to_string(),
        ])
        .env("KUBE_REAL_IMAGE", &image_archive)
        .output()
        .expect("run scripts/kube-real start --with-node");
    let start_time = t0.elapsed();
    assert!(
        out.status.success(),
        "scripts/kube-real start --with-node failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "node cluster ready in {:.1} s ({})",
        start_time.as_secs_f64(),
        dir.display()
    );
    let pod_gateway = std::fs::read_to_string(dir.join("pod-gateway"))
        .expect("DIR/pod-gateway")
        .trim()
        .to_string();
    Node {
        kubeconfig: dir.join("kubeconfig"),
        dir,
        pod_gateway,
        image,
        start_time,
    }
}

/// Polls `probe` until it returns `Some`, every 250 ms, for at most `limit`; panics naming `what`
/// with the last observation. A wait for a state, never a sleep that hopes.
pub fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not after {} s; last seen: {last}", limit.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

impl Node {
    pub fn api(&self) -> KubeApi {
        KubeApi::new(&self.kubeconfig)
    }

    /// Creates namespace `ns` and waits for its `default` service account (pods are refused
    /// until the service-account controller made it).
    pub fn namespace(&self, ns: &str) {
        let api = self.api();
        let (code, body) = api.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
        assert!(
            code == 201 || code == 409,
            "create namespace {ns}: {code} {body}"
        );
        wait_for(
            &format!("service account default in {ns}"),
            Duration::from_secs(180),
            || {
                api.get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/default"))
                    .ok_or_else(|| "absent".to_string())
            },
        );
    }

    /// Creates a pod; panics with the server's answer when refused.
    pub fn create_pod(&self, ns: &str, pod: &Value) {
        let (code, body) = self
            .api()
            .post(&format!("/api/v1/namespaces/{ns}/pods"), pod);
        assert_eq!(code, 201, "create pod in {ns}: {body}");
    }

    /// The pod once `pred` holds for it (e.g. Running, Succeeded).
    pub fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let api = self.api();
        wait_for(
            &format!("pod {ns}/{name} {what}"),
            Duration::from_secs(180),
            || {
                let p = api
                    .get(&format!("/api/v1/namespaces/{ns}/pods/{name}"))
                    .ok_or_else(|| "absent".to_string())?;
                if pred(&p) {
                    Ok(p)
                } else {
                    Err(p["status"].to_string())
                }
            },
        )
    }

    /// Runs a pod to completion (Succeeded or Failed) and returns it with its log.
    pub fn run_to_end(&self, ns: &str, pod: &Value) -> (Value, String) {
        let name = pod["metadata"]["name"]
            .as_str()
            .expect("pod name")
            .to_string();
        self.create_pod(ns, pod);
        let p = self.wait_pod(ns, &name, "finished", |p| {
            matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        });
        (p, self.log(ns, &name))
    }

    /// The pod's log, read through the API server (which asks the kubelet).
    pub fn log(&self, ns: &str, name: &str) -> String {
        let (code, body) = self.api().send(
            "GET",
            &format!("/api/v1/namespaces/{ns}/pods/{name}/log"),
            "application/json",
            None,
        );
        assert_eq!(code, 200, "log of {ns}/{name}: {body}");
        body
    }

    /// Deletes a pod and waits until it is gone (the kubelet stopped its containers).
    pub fn delete_pod(&self, ns: &str, name: &str) {
        let api = self.api();
        let (code, body) = api.send(
            "DELETE",
            &format!("/api/v1/namespaces/{ns}/pods/{name}"),
            "application/json",
            None,
        );
        assert!(
            code == 200 || code == 404,
            "delete pod {ns}/{name}: {code} {body}"
        );
        wait_for(
            &format!("pod {ns}/{name} gone"),
            Duration::from_secs(120),
            || match api.get(&format!("/api/v1/namespaces/{ns}/pods/{name}")) {
                None => Ok(()),
                Some(p) => Err(p["status"]["phase"].to_string()),
            },
        );
    }
}

/// A pod of one container that never restarts and never pulls (images are loaded, not pulled).
pub fn pod(name: &str, image: &str, args: &[&str]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "Never",
                "args": args,
            }],
        },
    })
}

/// `pod` with the claim `claim` mounted at `path`.
pub fn pod_with_claim(name: &str, image: &str, args: &[&str], claim: &str, path: &str) -> Value {
    let mut p = pod(name, image, args);
    p["spec"]["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": path}]);
    p
}

/// A pod log of `testnet-archiver sums DIR` (JSON), as path → SHA-256 (`symlink:<target>` for
/// a symlink): what a claim holds as pods see it.
pub fn parse_sums(log: &str) -> std::collections::BTreeMap<String, String> {
    let v: Value = serde_json::from_str(log).unwrap_or_else(|e| panic!("sums: {e}: {log}"));
    v.as_object()
        .unwrap_or_else(|| panic!("sums: not an object: {log}"))
        .iter()
        .map(|(k, e)| {
            let sum = match (e["sha256"].as_str(), e["symlink"].as_str()) {
                (Some(h), _) => h.to_string(),
                (None, Some(t)) => format!("symlink:{t}"),
                _ => panic!("sums: entry {k}: {e}"),
            };
            (k.clone(), sum)
        })
        .collect()
}

/// The exit code of the pod's (first) container, once terminated.
pub fn exit_code(pod: &Value) -> Option<i64> {
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"].as_i64()
}

/// A claim `name` of `size` in `ns`, on a host-path class `class` (made if missing), once it is
/// bound; returns the volume's directory on this machine, where a test can fill or read it.
pub fn bound_hostpath_claim(
    api: &KubeApi,
    ns: &str,
    class: &str,
    name: &str,
    size: &str,
) -> PathBuf {
    let (code, body) = api.post(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": class},
            "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete"}),
    );
    assert!(code == 201 || code == 409, "class: {body}");
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "resources": {"requests": {"storage": size}}}}),
    );
    assert_eq!(code, 201, "claim: {body}");
    let volume = wait_for("claim bound", Duration::from_secs(120), || {
        let c = api
            .get(&format!(
                "/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}"
            ))
            .ok_or("absent")?;
        c["spec"]["volumeName"]
            .as_str()
            .filter(|_| c["status"]["phase"] == "Bound")
            .map(str::to_string)
            .ok_or_else(|| c["status"].to_string())
    });
    let pv = api
        .get(&format!("/api/v1/persistentvolumes/{volume}"))
        .expect("the PV");
    PathBuf::from(pv["spec"]["hostPath"]["path"].as_str().expect("host path"))
}

//! Every example a user copies, applied and destroyed with the real `terraform` CLI against local
//! servers; the modules' variable validation; and `scripts/demo` itself (twice, interrupted, with
//! its port taken).
//!
//! How examples meet servers: each root module under `examples/` gets a fresh `testnet-kube-sandbox`
//! (three for `composition`, one per region, reached through three contexts of one kubeconfig) and
//! a `file://` store in a temporary directory. Examples that read `~/.kube/config` run with `HOME`
//! pointing at a temporary home holding the sandbox's kubeconfig; `network_lock` relies on
//! `KUBECONFIG`. After each apply the test reads the sandbox's API itself, so it proves where the
//! objects went, not only what Terraform believes.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acceptance_tests::servers::{KubeApi, KubeServer};
use acceptance_tests::{flatten, workspace_root, Mirror, Workdir};
use serde_json::{json, Value};

/// Root modules under `examples/` and the test that applies each one. A new example directory
/// fails `every_example_directory_is_covered` until it is added here with a test.
const COVERED: &[(&str, &str)] = &[
    (
        "composition",
        "composition_routes_each_region_to_its_own_cluster",
    ),
    (
        "in-cluster",
        "in_cluster_example_restores_claims_and_snapshots_by_jobs_on_the_real_node",
    ),
    (
        "network_lock",
        "network_lock_example_holds_and_releases_the_lease",
    ),
    (
        "network_state_read",
        "network_state_read_example_reads_the_document",
    ),
    (
        "network_lock_maintenance",
        "network_lock_maintenance_example_holds_until_destroy",
    ),
    (
        "quickstart",
        "quickstart_example_applies_plans_empty_and_destroys",
    ),
    (
        "shared_state_pvc",
        "shared_state_pvc_example_applies_and_destroys",
    ),
    ("snapshot", "snapshot_example_publishes_and_destroys"),
    (
        "storage_class",
        "storage_class_example_applies_and_destroys",
    ),
];

fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}

/// Directories under `examples/` holding `.tf` files, apart from the reusable modules.
fn root_examples() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(examples_dir()).expect("read examples/") {
        let entry = entry.expect("examples/ entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "modules" || !entry.path().is_dir() {
            continue;
        }
        let has_tf = std::fs::read_dir(entry.path())
            .expect("read example dir")
            .filter_map(Result::ok)
            .any(|f| f.path().extension().is_some_and(|e| e == "tf"));
        if has_tf {
            found.insert(name);
        }
    }
    found
}

#[test]
fn every_example_directory_is_covered() {
    let found = root_examples();
    let covered: BTreeSet<String> = COVERED.iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<_> = found.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&found).collect();
    assert!(
        missing.is_empty(),
        "examples without an acceptance test: {missing:?}. Add a test applying and destroying each \
         to acceptance-tests/tests/examples.rs and list it in COVERED"
    );
    assert!(
        stale.is_empty(),
        "COVERED lists examples that no longer exist: {stale:?}"
    );
    // The test named for each example exists in this file.
    let me = std::fs::read_to_string(file!())
        .or_else(|_| std::fs::read_to_string(workspace_root().join(file!())))
        .or_else(|_| {
            std::fs::read_to_string(workspace_root().join("acceptance-tests/tests/examples.rs"))
        })
        .expect("read examples.rs");
    for (example, test) in COVERED {
        assert!(
            me.contains(&format!("fn {test}()")),
            "COVERED names test {test} for examples/{example}, but there is no such test"
        );
    }
    // Every module is used by some covered example, so applying the examples exercises it.
    for entry in std::fs::read_dir(examples_dir().join("modules")).expect("examples/modules") {
        let module = entry
            .expect("module dir")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let used = found.iter().any(|ex| {
            tf_files(&examples_dir().join(ex))
                .iter()
                .any(|(_, text)| text.contains(&format!("\"../modules/{module}\"")))
        });
        assert!(
            used,
            "examples/modules/{module} is used by no root example, so no test applies it"
        );
    }
}

/// The `.tf` files of a directory: (file name, content).
fn tf_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|f| f.path().extension().is_some_and(|e| e == "tf"))
        .map(|f| {
            let text = std::fs::read_to_string(f.path()).expect("read .tf");
            (f.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

/// A working directory holding a copy of `examples/<name>`, initialised. Module sources
/// `../modules/x` become absolute paths, which `terraform init` copies like a registry module.
fn example_workdir(mirror: &Mirror, name: &str) -> Workdir {
    let w = mirror.workdir();
    let modules = examples_dir().join("modules");
    for (file, text) in tf_files(&examples_dir().join(name)) {
        let text = text.replace("\"../modules/", &format!("\"{}/", modules.display()));
        w.write(&file, &text);
    }
    w
}

/// A small node-state directory, with the two files snapshots leave out by default.
fn node_state(dir: &Path) {
    std::fs::create_dir_all(dir.join("genesis")).expect("node dir");
    std::fs::create_dir_all(dir.join("db")).expect("node dir");
    std::fs::write(dir.join("genesis/ledger.json"), r#"{"accounts":[1,2,3]}"#).expect("write");
    let block: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("db/000001.sst"), &block).expect("write");
    std::fs::write(dir.join("identity.json"), r#"{"private_key":"secret"}"#).expect("write");
    std::fs::write(dir.join("peers.json"), "[]").expect("write");
}

/// A temporary `HOME` whose `~/.kube/config` is `kubeconfig`.
fn home_with_kubeconfig(kubeconfig: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join(".kube")).expect("~/.kube");
    std::fs::copy(kubeconfig, home.path().join(".kube/config")).expect("copy kubeconfig");
    home
}

fn url_to_path(url: &str) -> PathBuf {
    PathBuf::from(
        url.strip_prefix("file://")
            .unwrap_or_else(|| panic!("not a file:// URL: {url}")),
    )
}

// ---------------------------------------------------------------------------------------------
// Reading what a Kubernetes API server holds.

/// Reads one API server with the credentials of its kubeconfig, with the lookups these tests
/// need on top of the harness's `KubeApi`.
struct KubeReader(KubeApi);

impl KubeReader {
    fn new(kubeconfig: &Path) -> KubeReader {
        KubeReader(KubeApi::new(kubeconfig))
    }

    /// The object at `path`, or `None` when the server answers 404.
    fn get(&self, path: &str) -> Option<Value> {
        self.0.get(path)
    }

    /// POSTs `body` to `path`; the object must be created.
    fn create(&self, path: &str, body: Value) {
        let (code, text) = self.0.post(path, &body);
        assert_eq!(code, 201, "POST {}{path}: {text}", self.0.url);
    }

    /// Names of the items of a list at `path`.
    fn names(&self, path: &str) -> BTreeSet<String> {
        self.get(path)
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
            .collect()
    }

    fn storage_classes(&self) -> BTreeSet<String> {
        self.names("/apis/storage.k8s.io/v1/storageclasses")
    }

    fn claims(&self, ns: &str) -> BTreeSet<String> {
        self.names(&format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"))
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// One test per example.

#[test]
fn quickstart_example_applies_plans_empty_and_destroys() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let reader = KubeReader::new(&kube.kubeconfig);
    let data = tempfile::tempdir().expect("tempdir");
    let store = data.path().join("store");
    std::fs::create_dir_all(&store).expect("store");
    node_state(&data.path().join("node"));

    let mut w = example_workdir(&mirror, "quickstart");
    w.env("TF_VAR_kubeconfig_path", &kube.kubeconfig.to_string_lossy())
        .env("TF_VAR_store_url", &format!("file://{}", store.display()))
        .env(
            "TF_VAR_node_state_dir",
            &data.path().join("node").to_string_lossy(),
        );
    w.init();
    w.apply().ok();
    w.assert_no_changes();

    let url = w.tf(&["output", "-raw", "snapshot_url"]).ok().stdout;
    let artifact = url_to_path(&url);
    assert!(
        artifact.starts_with(&store) && artifact.is_file(),
        "artifact {url} not in {}",
        store.display()
    );
    let classes = set(&["devnet-local-ssd", "devnet-local-standard"]);
    assert!(reader.storage_classes().is_superset(&classes));
    // Every role's state, bound at once under the Immediate classes.
    let claims = reader.claims("devnet");
    assert_eq!(claims.len(), 17, "{claims:?}");
    let pg = reader
        .get("/api/v1/namespaces/devnet/persistentvolumeclaims/archive-node-postgres-state")
        .expect("postgres claim");
    assert_eq!(pg["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert_eq!(pg["status"]["phase"], "Bound");
    let out: Value =
        serde_json::from_str(&w.tf(&["output", "-json"]).ok().stdout).expect("outputs");
    // SSD: epoch ledger 2Gi + 7 runtime states x 2Gi + Postgres 5Gi = 21 GiB x 0.17 = 3.57;
    // standard: 2 + 1 + 1 + 5 wallet keys x 1 = 9 GiB x 0.04 = 0.36.
    let cost = out["estimated_monthly_cost_usd"]["value"].as_f64();
    assert!(
        cost.is_some_and(|c| (c - 3.93).abs() < 1e-6),
        "cost {cost:?}"
    );
    // The run took the network lock (one holder transition) and released it at the end.
    let lease = reader
        .get("/apis/coordination.k8s.io/v1/namespaces/default/leases/devnet-state")
        .expect("lease default/devnet-state");
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0) >= 1,
        "{lease}"
    );
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{lease}"
    );
    let mounts = out["block_producer_mounts"]["value"]
        .as_array()
        .expect("mounts");
    assert_eq!(mounts.len(), 6, "{mounts:?}");
    assert!(out["claims"]["value"]["genesis-ledger"]
        .as_str()
        .is_some_and(|c| c.starts_with("Bound, 2Gi devnet-local-standard")));

    w.destroy().ok();
    assert!(reader.storage_classes().is_disjoint(&classes));
    assert!(reader.claims("devnet").is_empty());
    assert!(!artifact.exists(), "destroy left {url}");
}

#[test]
fn storage_class_example_applies_and_destroys() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let reader = KubeReader::new(&kube.kubeconfig);
    // The example reads `~/.kube/config`, as users' configurations do.
    let home = home_with_kubeconfig(&kube.kubeconfig);
    let mut w = example_workdir(&mirror, "storage_class");
    w.env("HOME", &home.path().to_string_lossy());
    w.init();
    w.apply().ok();
    w.assert_no_changes();
    let classes = set(&["testnet-ssd", "testnet-archive", "testnet-regional"]);
    assert!(reader.storage_classes().is_superset(&classes));
    let archive = reader
        .get("/apis/storage.k8s.io/v1/storageclasses/testnet-archive")
        .expect("testnet-archive");
    assert_eq!(archive["reclaimPolicy"], "Retain");
    w.destroy().ok();
    assert!(reader.storage_classes().is_disjoint(&classes));
}

#[test]
fn shared_state_pvc_example_applies_and_destroys() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let reader = KubeReader::new(&kube.kubeconfig);
    let home = home_with_kubeconfig(&kube.kubeconfig);
    let mut w = example_workdir(&mirror, "shared_state_pvc");
    w.env("HOME", &home.path().to_string_lossy());
    w.init();
    w.apply().ok();
    w.assert_no_changes();
    let claim = reader
        .get("/api/v1/namespaces/ghostnet/persistentvolumeclaims/shared-state")
        .expect("claim ghostnet/shared-state");
    assert_eq!(
        claim["metadata"]["labels"]["testnet.io/network"],
        "ghostnet"
    );
    assert_eq!(claim["metadata"]["labels"]["team"], "infra");
    assert_eq!(claim["spec"]["storageClassName"], "ghostnet-state");
    w.destroy().ok();
    assert!(reader.claims("ghostnet").is_empty());
    assert!(!reader.storage_classes().contains("ghostnet-state"));
}

/// The data-source example reads a document written (by a state resource in another
/// configuration) into the same sandbox it names as `europe-west1`.
#[test]
fn network_state_read_example_reads_the_document() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let kc = kube.kubeconfig.to_string_lossy().to_string();
    let writer = mirror.workdir();
    writer.write(
        "main.tf",
        &format!(
            r#"terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = {kc:?}
}}
resource "testnet_network_state" "s" {{
  name       = "testnets"
  components = {{ devnet = {{ cluster = "us-east1", namespace = "devnet", version = "3.0.0" }} }}
}}
"#
        ),
    );
    writer.init();
    writer.apply().ok();
    let mut w = example_workdir(&mirror, "network_state_read");
    w.env("TF_VAR_kubeconfig_path", &kc);
    w.init();
    w.apply().ok();
    let out: Value =
        serde_json::from_str(&w.tf(&["output", "-json"]).ok().stdout).expect("outputs");
    assert_eq!(out["components"]["value"]["devnet"]["version"], "3.0.0");
    assert_eq!(out["last_change"]["value"]["changes"], json!(["+ devnet"]));
    assert!(out["last_change"]["value"]["by"]
        .as_str()
        .is_some_and(|b| !b.is_empty()));
    w.assert_no_changes();
}

#[test]
fn network_lock_example_holds_and_releases_the_lease() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let reader = KubeReader::new(&kube.kubeconfig);
    let mut w = example_workdir(&mirror, "network_lock");
    w.env("KUBECONFIG", &kube.kubeconfig.to_string_lossy());
    w.init();
    let run = w.apply().ok();
    // The provisioner ran with the lock's holder and token in its environment (Terraform hides
    // the output of commands given ephemeral values).
    assert!(
        run.stdout.contains(
            "terraform_data.change (local-exec): (output suppressed due to ephemeral value in config)"
        ) && run.stdout.contains("terraform_data.change: Creation complete"),
        "provisioner did not run:\n{}",
        run.output()
    );
    // The lease was taken (a holder transition) and released when the run ended.
    let lease = reader
        .get("/apis/coordination.k8s.io/v1/namespaces/default/leases/devnet-7")
        .expect("lease default/devnet-7");
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0) >= 1,
        "{lease}"
    );
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or("");
    assert!(
        holder.is_empty(),
        "the run ended but the lease is still held by {holder:?}"
    );
    // The example re-runs its change on every apply (`timestamp()` trigger): the next plan
    // replaces exactly that and nothing else.
    let plan = w.plan_json();
    let changes: Vec<(String, Vec<String>)> = plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .map(|r| {
            let address = r["address"].as_str().unwrap_or_default().to_owned();
            (address.clone(), Workdir::planned_actions(&plan, &address))
        })
        .filter(|(_, a)| a != &["no-op"] && a != &["read"])
        .collect();
    assert_eq!(changes.len(), 1, "unexpected changes: {changes:?}");
    assert_eq!(changes[0].0, "terraform_data.change");
    w.destroy().ok();
}

#[test]
fn network_lock_maintenance_example_holds_until_destroy() {
    let mirror = Mirror::testnet();
    let kube = KubeServer::sandbox();
    let reader = KubeReader::new(&kube.kubeconfig);
    // The example's Lease lives in namespace `testnets`, which it expects to exist.
    reader.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "testnets"}}),
    );
    let mut w = example_workdir(&mirror, "network_lock_maintenance");
    w.env("KUBECONFIG", &kube.kubeconfig.to_string_lossy());
    w.init();
    w.apply().ok();
    w.assert_no_changes();
    let path = "/apis/coordination.k8s.io/v1/namespaces/testnets/leases/devnet-7";
    let lease = reader.get(path).expect("lease testnets/devnet-7");
    assert_eq!(lease["spec"]["holderIdentity"], "ops-maintenance");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 7200);
    let token = w.tf(&["output", "-raw", "fencing_token"]).ok().stdout;
    assert_eq!(token, lease["spec"]["leaseTransitions"].to_string());
    w.destroy().ok();
    let lease = reader.get(path).expect("the released Lease is kept");
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or("");
    assert!(
        holder.is_empty(),
        "destroy left the lock held by {holder:?}"
    );
}

#[test]
fn snapshot_example_publishes_and_destroys() {
    let mirror = Mirror::testnet();
    let data = tempfile::tempdir().expect("tempdir");
    let store = data.path().join("store");
    std::fs::create_dir_all(&store).expect("store");
    node_state(&data.path().join("node"));
    let mut w = example_workdir(&mirror, "snapshot");
    w.env("TF_VAR_store_url", &format!("file://{}", store.display()))
        .env(
            "TF_VAR_node_dir",
            &data.path().join("node").to_string_lossy(),
        );
    w.init();
    w.apply().ok();
    w.assert_no_changes();
    let url = w.tf(&["output", "-raw", "latest_url"]).ok().stdout;
    let sha = w.tf(&["output", "-raw", "latest_sha256"]).ok().stdout;
    let artifact = url_to_path(&url);
    assert!(
        artifact.starts_with(&store) && artifact.is_file(),
        "{url} not published"
    );
    assert!(url.contains("ghostnet-rolling-"), "{url}");
    assert_eq!(sha.len(), 64, "sha256 {sha:?}");
    w.destroy().ok();
    assert!(!artifact.exists(), "destroy left {url}");
}

/// `examples/in-cluster` on the real node (`scripts/kube-real start --with-node`), with an s3s-fs
/// server on the pod gateway that the provider and the Jobs share and a Secret carrying its
/// credentials: the claims are restored from the latest artifact and hold its files as a pod
/// sees them; the first claim is snapshotted by a Job. Skipped without a node (see
/// `acceptance_tests::node::node_available`).
#[test]
fn in_cluster_example_restores_claims_and_snapshots_by_jobs_on_the_real_node() {
    use acceptance_tests::node::{exit_code, node, pod_with_claim};
    use acceptance_tests::servers::TestServer;
    let Some(node) = node() else {
        eprintln!("skipped: no real node (scripts/kube-real build, root)");
        return;
    };
    let (key, secret) = ("examplekey", "examplesecret");
    let Some(s3) = TestServer::s3s_fs_on(&node.pod_gateway, key, secret) else {
        return;
    };
    std::fs::create_dir_all(s3.dir().join("data/snap")).expect("bucket");
    let ns = "in-cluster";
    node.namespace(ns);
    let api = node.api();
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store-creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"}}),
    );
    assert_eq!(code, 201, "secret: {body}");
    let (code, body) = api.post(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "in-cluster-hostpath"},
            "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}),
    );
    assert!(code == 201 || code == 409, "class: {body}");

    // The seed: a node's state published with testnet-archiver, as an operator would.
    let data = tempfile::tempdir().expect("tempdir");
    let node_dir = data.path().join("node");
    node_state(&node_dir);
    let archiver = acceptance_tests::cargo_build("archiver-cli", "bin", "testnet-archiver");
    let out = Command::new(archiver)
        .args(["create", "--source"])
        .arg(&node_dir)
        .args([
            "--store",
            "s3://snap/ghostnet",
            "--network",
            "ghostnet",
            "--kind",
            "rolling",
        ])
        .args([
            "--label",
            "1000",
            "--single-publisher",
            "--endpoint",
            &s3.endpoint(),
        ])
        .args(["--path-style", "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .expect("testnet-archiver create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed: Value = serde_json::from_slice(&out.stdout).expect("metadata");

    let mirror = Mirror::testnet();
    let mut w = example_workdir(&mirror, "in-cluster");
    w.env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("TF_VAR_kubeconfig_path", &node.kubeconfig.to_string_lossy())
        .env("TF_VAR_store_url", "s3://snap/ghostnet")
        .env("TF_VAR_s3_endpoint", &s3.endpoint())
        .env("TF_VAR_s3_region", "us-east-1")
        .env("TF_VAR_archiver_image", &node.image)
        .env("TF_VAR_store_secret", "store-creds")
        .env("TF_VAR_namespace", ns)
        .env("TF_VAR_storage", "1Gi")
        .env("TF_VAR_storage_class", "in-cluster-hostpath")
        .env("TF_VAR_snapshot_label", "1001");
    w.init();
    w.apply().ok();
    w.assert_no_changes();
    let out: Value =
        serde_json::from_str(&w.tf(&["output", "-json"]).ok().stdout).expect("outputs");
    assert_eq!(out["seed"]["value"]["sha256"], seed["sha256"], "{out}");
    let claims = out["claims"]["value"].as_object().expect("claims");
    assert_eq!(claims.len(), 2, "{out}");
    for (id, sha) in claims {
        assert_eq!(sha, &seed["sha256"], "{id} restored from the seed");
    }

    // What a pod sees on a restored claim: the seed's files minus the default excludes.
    let mut expected: Vec<(String, String)> = Vec::new();
    for rel in ["genesis/ledger.json", "db/000001.sst"] {
        let bytes = std::fs::read(node_dir.join(rel)).expect("read");
        let hex: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        expected.push((rel.to_string(), hex));
    }
    expected.sort();
    let (pod, log) = node.run_to_end(
        ns,
        &pod_with_claim(
            "list-node-1",
            &node.image,
            &["sums", "/data"],
            "ghostnet-node-1",
            "/data",
        ),
    );
    assert_eq!(exit_code(&pod), Some(0), "{log}");
    node.delete_pod(ns, "list-node-1");
    let mut sums = acceptance_tests::node::parse_sums(&log);
    assert!(
        sums.remove(".testnet-restored.json").is_some(),
        "restore marker: {log}"
    );
    let seen: Vec<(String, String)> = sums.into_iter().collect();
    assert_eq!(seen, expected);

    // The Job's snapshot of node 0 is in the store, with what the seed had.
    let runtime = &out["runtime_snapshot"]["value"];
    assert_eq!(
        runtime["url"],
        "s3://snap/ghostnet/ghostnet-runtime-1001.tar.lz4"
    );
    let object = s3
        .dir()
        .join("data/snap/ghostnet/ghostnet-runtime-1001.tar.lz4");
    assert!(object.is_file(), "the Job published {object:?}");
    let meta: Value = serde_json::from_slice(
        &std::fs::read(
            s3.dir()
                .join("data/snap/ghostnet/ghostnet-runtime-1001.json"),
        )
        .expect("metadata"),
    )
    .expect("metadata JSON");
    assert_eq!(meta["file_count"], seed["file_count"], "{meta}");
    assert_eq!(
        meta["uncompressed_bytes"], seed["uncompressed_bytes"],
        "{meta}"
    );

    w.destroy().ok();
    assert!(!object.exists(), "destroy removes the runtime snapshot");
    let left = api
        .get(&format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"))
        .expect("claims");
    let live: Vec<&Value> = left["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert!(live.is_empty(), "claims left: {left}");
    let jobs = api
        .get(&format!("/apis/batch/v1/namespaces/{ns}/jobs"))
        .expect("jobs");
    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(0), "{jobs}");
}

/// Three sandboxes, one per region, named by three contexts of one kubeconfig: each region's
/// classes and each testnet's claims must land in their own cluster and nowhere else.
#[test]
fn composition_routes_each_region_to_its_own_cluster() {
    let mirror = Mirror::testnet();
    let regions = ["us-east1", "europe-west1", "ap-southeast-1"];
    let contexts = ["gke-us-east1", "gke-europe-west1", "eks-ap-southeast-1"];
    let servers: Vec<KubeServer> = regions.iter().map(|_| KubeServer::sandbox()).collect();
    let readers: Vec<KubeReader> = servers
        .iter()
        .map(|s| KubeReader::new(&s.kubeconfig))
        .collect();

    // One kubeconfig, three contexts (the composition's defaults), each reaching its own sandbox.
    let (mut clusters, mut users, mut ctxs) = (vec![], vec![], vec![]);
    for ((region, context), server) in regions.iter().zip(contexts).zip(&servers) {
        let text = std::fs::read_to_string(&server.kubeconfig).expect("kubeconfig");
        let cfg: Value = serde_yaml::from_str(&text).expect("kubeconfig YAML");
        clusters.push(json!({ "name": region, "cluster": cfg["clusters"][0]["cluster"] }));
        users.push(json!({ "name": region, "user": cfg["users"][0]["user"] }));
        ctxs.push(json!({ "name": context, "context": { "cluster": region, "user": region, "namespace": "default" } }));
    }
    let data = tempfile::tempdir().expect("tempdir");
    let kubeconfig = data.path().join("kubeconfig");
    let merged = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": clusters, "users": users, "contexts": ctxs,
        // Were kube_context ignored, every region would land in this one cluster.
        "current-context": "eks-ap-southeast-1",
    });
    std::fs::write(&kubeconfig, serde_yaml::to_string(&merged).expect("YAML"))
        .expect("write kubeconfig");
    let store = data.path().join("store");
    std::fs::create_dir_all(&store).expect("store");
    node_state(&data.path().join("node"));

    let mut w = example_workdir(&mirror, "composition");
    w.env("TF_VAR_kubeconfig_path", &kubeconfig.to_string_lossy())
        .env("TF_VAR_store_url", &format!("file://{}", store.display()))
        .env(
            "TF_VAR_devnet_state_dir",
            &data.path().join("node").to_string_lossy(),
        );
    w.init();
    // The operator sees what each testnet costs before applying.
    let plan = w.plan_json();
    let planned = &plan["planned_values"]["outputs"]["estimated_monthly_cost_usd"]["value"];
    assert_eq!(
        planned["devnet"].as_f64(),
        Some(16.0),
        "planned costs: {planned}"
    );
    w.apply().ok();
    w.assert_no_changes();

    // Storage classes: each region's pair in its own cluster only.
    for (i, reader) in readers.iter().enumerate() {
        let have = reader.storage_classes();
        for (j, region) in regions.iter().enumerate() {
            let pair = set(&[
                &format!("testnet-{region}-ssd"),
                &format!("testnet-{region}-standard"),
            ]);
            if i == j {
                assert!(
                    have.is_superset(&pair),
                    "{region}'s cluster lacks its classes: {have:?}"
                );
            } else {
                assert!(
                    have.is_disjoint(&pair),
                    "{}'s cluster got {region}'s classes: {have:?}",
                    regions[i]
                );
            }
        }
    }
    let aws = readers[2]
        .get("/apis/storage.k8s.io/v1/storageclasses/testnet-ap-southeast-1-ssd")
        .expect("aws ssd class");
    assert_eq!(aws["provisioner"], "ebs.csi.aws.com");

    // Claims: devnet whole in us-east1; berkeley's core roles in europe-west1, edge roles in
    // ap-southeast-1.
    let devnet = readers[0].claims("devnet");
    assert_eq!(devnet.len(), 17, "devnet claims: {devnet:?}");
    assert!(devnet.contains("archive-node-postgres-state") && devnet.contains("genesis-ledger"));
    assert!(readers[1].claims("devnet").is_empty() && readers[2].claims("devnet").is_empty());
    assert!(readers[0].claims("berkeley").is_empty());
    let core = readers[1].claims("berkeley");
    let edge = readers[2].claims("berkeley");
    assert!(
        core.contains("block-producer-wallet-keys") && core.contains("archive-node-postgres-state"),
        "{core:?}"
    );
    assert!(!core.contains("faucet-wallet-keys"), "{core:?}");
    assert!(
        edge.contains("faucet-wallet-keys") && edge.contains("seed-node-runtime-state"),
        "{edge:?}"
    );
    assert!(
        !edge.contains("archive-node-postgres-state")
            && !edge.contains("block-producer-wallet-keys"),
        "{edge:?}"
    );
    // Both halves run daemons, so both clusters hold the four shared claims.
    for shared in [
        "genesis-ledger",
        "genesis-proof",
        "epoch-ledger",
        "daemon-config",
    ] {
        assert!(
            core.contains(shared) && edge.contains(shared),
            "{shared} missing"
        );
    }
    let postgres = readers[1]
        .get("/api/v1/namespaces/berkeley/persistentvolumeclaims/archive-node-postgres-state")
        .expect("postgres claim");
    assert_eq!(
        postgres["spec"]["resources"]["requests"]["storage"],
        "200Gi"
    );
    assert_eq!(
        postgres["spec"]["storageClassName"],
        "testnet-europe-west1-ssd"
    );
    assert_eq!(
        postgres["metadata"]["labels"]["testnet.io/role"],
        "archive-node"
    );

    // One network lock and one state document across the three regions: the Lease in every
    // cluster (released after the run, its fencing token grown), and the same document, with
    // what runs where, in every cluster.
    let docs: Vec<Value> = readers
        .iter()
        .map(|r| {
            let lease = r
                .get("/apis/coordination.k8s.io/v1/namespaces/default/leases/testnets")
                .expect("the network lock's Lease in every region");
            assert!(
                lease["spec"]["holderIdentity"].is_null(),
                "released: {lease}"
            );
            assert!(
                lease["spec"]["leaseTransitions"].as_i64() >= Some(1),
                "{lease}"
            );
            let cm = r
                .get("/api/v1/namespaces/default/configmaps/testnets-network-state")
                .expect("the network state in every region");
            serde_json::from_str(cm["data"]["network-state.json"].as_str().expect("document"))
                .expect("JSON document")
        })
        .collect();
    assert!(docs.iter().all(|d| d == &docs[0]), "the copies agree");
    assert_eq!(
        docs[0]["components"]["berkeley-edge"]["cluster"],
        "ap-southeast-1"
    );
    assert_eq!(docs[0]["components"]["devnet"]["namespace"], "devnet");
    assert_eq!(docs[0]["history"].as_array().map(Vec::len), Some(1));
    assert!(
        docs[0]["fencing_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("ap-southeast-1=")
                && t.contains(",europe-west1=")
                && t.contains(",us-east1=")),
        "{}",
        docs[0]["fencing_token"]
    );

    // The mounts output gives each role its claims.
    let out: Value =
        serde_json::from_str(&w.tf(&["output", "-json"]).ok().stdout).expect("outputs");
    let bp = &out["mounts"]["value"]["devnet"]["us-east1"]["block-producer"];
    let bp: Vec<(String, String, bool)> = bp
        .as_array()
        .expect("block-producer mounts")
        .iter()
        .map(|m| {
            (
                m["claim"].as_str().unwrap_or_default().to_owned(),
                m["mount_path"].as_str().unwrap_or_default().to_owned(),
                m["read_only"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    for (claim, read_only) in [
        ("genesis-ledger", true),
        ("genesis-proof", true),
        ("epoch-ledger", true),
        ("daemon-config", true),
        ("block-producer-wallet-keys", false),
        ("block-producer-runtime-state", false),
    ] {
        assert!(
            bp.iter()
                .any(|(c, p, ro)| c == claim && p.starts_with('/') && *ro == read_only),
            "block-producer mounts lack {claim} (read_only {read_only}): {bp:?}"
        );
    }
    assert_eq!(bp.len(), 6, "{bp:?}");
    let worker = &out["mounts"]["value"]["berkeley"]["europe-west1"]["snark-worker"];
    let worker: BTreeSet<String> = worker
        .as_array()
        .expect("snark-worker mounts")
        .iter()
        .filter_map(|m| m["claim"].as_str().map(String::from))
        .collect();
    assert_eq!(worker, set(&["genesis-proof", "daemon-config"]));

    // The devnet snapshot was published.
    let snap = &out["devnet_snapshot"]["value"];
    let artifact = url_to_path(snap["url"].as_str().expect("snapshot url"));
    assert!(artifact.is_file(), "{snap}");

    assert_costs(&w, &out);
    // A price override reaches every claim through the providers and the modules: with SSD at 1
    // and standard free, devnet costs its SSD GiB: epoch ledger 2 + runtime state 7 x 10 +
    // Postgres 20.
    w.tf(&[
        "plan",
        "-out=prices.plan",
        "-input=false",
        "-no-color",
        "-var",
        "storage_prices={ssd=1,standard=0}",
    ])
    .ok();
    let repriced: Value =
        serde_json::from_str(&w.tf(&["show", "-json", "prices.plan"]).ok().stdout).expect("plan");
    let cost = &repriced["planned_values"]["outputs"]["estimated_monthly_cost_usd"]["value"];
    assert_eq!(cost["devnet"].as_f64(), Some(92.0), "{cost}");

    w.destroy().ok();
    for (reader, region) in readers.iter().zip(regions) {
        assert!(reader.claims("devnet").is_empty() && reader.claims("berkeley").is_empty());
        assert!(!reader
            .storage_classes()
            .contains(&format!("testnet-{region}-ssd")));
    }
    assert!(!artifact.exists());

    // A kubeconfig without the regions' contexts: each region says which context is missing.
    let single = servers[0].kubeconfig.to_string_lossy().into_owned();
    let run = w.tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-var",
        &format!("kubeconfig_path={single}"),
    ]);
    for context in contexts {
        let want = format!("context \"{context}\" is not in kubeconfig {single}; available contexts: testnet-sandbox.");
        assert!(
            flatten(&run.output()).contains(&want),
            "{want:?} not in:\n{}",
            run.output()
        );
    }

    // The same context for two regions is refused before anything is contacted.
    w.tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-var",
        r#"contexts={us_east1="a",europe_west1="a",ap_southeast_1="b"}"#,
    ])
    .fails_with("contexts must name three different kubeconfig contexts, one per region");
}

/// Each claim's cost is its size in GiB times its tier's default price (SSD 0.17, standard 0.04
/// USD per GiB-month), and each testnet's cost is the sum of its claims'.
fn assert_costs(w: &Workdir, out: &Value) {
    let cost = &out["estimated_monthly_cost_usd"]["value"];
    // devnet, by hand: shared 2Gi+1Gi+1Gi standard and 2Gi ssd = 0.50; wallet keys 5 x 1Gi
    // standard = 0.20; runtime state 7 x 10Gi ssd = 11.90; Postgres 20Gi ssd = 3.40.
    let devnet = cost["devnet"]
        .as_f64()
        .unwrap_or_else(|| panic!("devnet cost is not a number: {cost}"));
    assert!(
        (devnet - 16.0).abs() < 1e-6,
        "devnet cost {devnet}, expected 16.00"
    );
    // berkeley from its claims as the cluster holds them.
    let state = w.show_json();
    let mut total = 0.0;
    let mut seen = 0;
    for module in state["values"]["root_module"]["child_modules"]
        .as_array()
        .expect("modules")
    {
        let addr = module["address"].as_str().unwrap_or_default();
        if !addr.starts_with("module.berkeley") {
            continue;
        }
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["type"] != "testnet_shared_state_pvc" {
                continue;
            }
            let v = &r["values"];
            let gib: f64 = v["storage"]
                .as_str()
                .and_then(|s| s.strip_suffix("Gi"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("storage {} is not in Gi", v["storage"]));
            let class = v["storage_class_name"].as_str().unwrap_or_default();
            let price = if class.ends_with("-ssd") { 0.17 } else { 0.04 };
            let claimed = v["estimated_monthly_cost_usd"]
                .as_f64()
                .unwrap_or_else(|| panic!("{} has no cost", r["address"]));
            assert!(
                (claimed - gib * price).abs() < 1e-6,
                "{}: {claimed} != {gib} x {price}",
                r["address"]
            );
            total += claimed;
            seen += 1;
        }
    }
    assert!(seen > 20, "berkeley claims found in state: {seen}");
    let berkeley = cost["berkeley"].as_f64().expect("berkeley cost");
    // Each module rounds its sum to cents.
    assert!(
        (berkeley - total).abs() < 0.01,
        "berkeley cost {berkeley}, claims sum to {total}"
    );
}

// ---------------------------------------------------------------------------------------------
// Module variable validation: one bad value per validated variable, and what the user is told.

#[test]
fn module_variables_say_what_is_allowed() {
    let mirror = Mirror::testnet();
    let w = mirror.workdir();
    let modules = examples_dir().join("modules");
    // Required arguments are written unless the row sets them itself.
    let config = |region_args: &str, testnet_args: &str| {
        let region_args = with_default(
            region_args,
            &[("region", "\"us-east1\""), ("cloud", "\"gcp\"")],
        );
        let testnet_args = with_default(testnet_args, &[("network", "\"devnet\"")]);
        format!(
            r#"terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
module "region" {{
  source = "{m}/region"
{region_args}
}}
module "testnet" {{
  source          = "{m}/testnet"
  storage_classes = module.region.storage_classes
{testnet_args}
}}
"#,
            m = modules.display()
        )
    };
    w.write("main.tf", &config("", ""));
    w.init();
    w.tf(&["validate", "-no-color"]).ok();

    // (module, argument line, what the error must say)
    let table: &[(&str, &str, &str)] = &[
        ("region", r#"region = "US_East""#, "region must be 2 to 32 lowercase letters, digits and '-'"),
        ("region", r#"cloud = "azure""#, r#"cloud must be "gcp" or "aws"."#),
        ("region", r#"name_prefix = "-net""#, "name_prefix must be empty or up to 40 lowercase letters"),
        ("region", r#"volume_binding_mode = "Lazy""#, r#"volume_binding_mode must be "WaitForFirstConsumer" or "Immediate"."#),
        ("region", r#"reclaim_policy = "Recycle""#, r#"reclaim_policy must be "Delete" or "Retain"."#),
        ("region", r#"zones = ["Zone A"]"#, "zones must be zone names of lowercase letters, digits and '-'"),
        ("testnet", r#"network = "Devnet""#, "network must be a DNS label of at most 40 characters"),
        ("testnet", r#"namespace = "ns_1""#, "namespace must be a DNS label: at most 63 lowercase letters"),
        ("testnet", r#"roles = ["miner"]"#, "roles must be a non-empty list, without repeats, of: archive-node, block-producer, seed-node, snark-coordinator, snark-worker, user-agent, faucet, echo-service."),
        ("testnet", r#"roles = []"#, "roles must be a non-empty list, without repeats, of"),
        ("testnet", r#"roles = ["faucet", "faucet"]"#, "roles must be a non-empty list, without repeats, of"),
        ("testnet", r#"lock = { namespace = "Ops" }"#, "lock.namespace must be an existing namespace's name: a DNS label"),
        ("testnet", r#"claims = { chain-db = { size = "1Gi" } }"#, "claims keys must be kinds of state: genesis-ledger, genesis-proof, epoch-ledger, daemon-config, wallet-keys, runtime-state, postgres-state."),
        ("testnet", r#"claims = { runtime-state = { size = "10GB" } }"#, "claims sizes must be Kubernetes quantities"),
        ("testnet", r#"claims = { wallet-keys = { access_modes = ["ReadWriteAll"] } }"#, "claims access_modes must be a non-empty list of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod."),
        ("testnet", r#"claims = { wallet-keys = { tier = "nvme" } }"#, r#"claims tier must be "ssd" or "standard"."#),
        ("testnet", r#"claim_create_timeout = "5 minutes""#, r#"claim_create_timeout must be a duration like "90s", "5m" or "1h30m"."#),
        ("testnet", r#"lock = { wait_timeout = "soon" }"#, "lock.wait_timeout must be a duration like"),
        ("testnet", r#"lock = { lease_duration_seconds = 5 }"#, "lock.lease_duration_seconds must be between 15 and 3600."),
        ("testnet", r#"snapshot = { source_dir = "/tmp", kind = "daily-full" }"#, "snapshot.kind must be lowercase letters and digits without '-'"),
        ("testnet", r#"snapshot = { source_dir = "/tmp", store_url = "http://example.com/snapshots" }"#, "snapshot.store_url must start with file://, s3:// or gs://."),
    ];
    let mut failures = vec![];
    for (module, arg, want) in table {
        let (r, t) = if *module == "region" {
            (*arg, "")
        } else {
            ("", *arg)
        };
        w.write("main.tf", &config(r, t));
        let run = w.tf(&["validate", "-no-color"]);
        let flat = flatten(&run.output());
        if run.code == 0 || !flat.contains(&flatten(want)) {
            failures.push(format!(
                "{module}: {arg}\n  wanted {want:?}\n  got (exit {}): {flat}",
                run.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

/// `args` plus `name = value` for each default whose name `args` does not set.
fn with_default(args: &str, defaults: &[(&str, &str)]) -> String {
    let mut out = args.to_owned();
    for (name, value) in defaults {
        if !args.trim_start().starts_with(&format!("{name} ")) {
            out.push_str(&format!("\n  {name} = {value}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// scripts/demo, in its own directory (TESTNET_DEMO_DIR), never the checkout's .demo/.

/// A demo directory; `scripts/demo --destroy` runs on drop so a failing test leaves no server.
struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn new() -> Demo {
        Demo {
            dir: tempfile::tempdir().expect("demo dir"),
        }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("demo")
    }
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(workspace_root().join("scripts/demo"));
        c.args(args)
            .env("TESTNET_DEMO_DIR", self.path())
            .env_remove("TESTNET_DEMO_PORT")
            .env_remove("TF_LOG")
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().expect("run scripts/demo");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
    #[track_caller]
    fn run_ok(&self) -> String {
        let (code, text) = self.run(&[]);
        assert_eq!(code, 0, "scripts/demo failed:\n{text}");
        assert!(
            text.contains("identical to the source minus identity.json and peers.json"),
            "{text}"
        );
        assert!(
            self.path()
                .join("store/devnet-rolling-demo.tar.lz4")
                .is_file(),
            "{text}"
        );
        text
    }
    /// Processes whose command line mentions this demo's directory (its API server).
    fn processes(&self) -> Vec<String> {
        let needle = self.path().to_string_lossy().into_owned();
        let mut found = vec![];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) && cmd.contains("testnet-kube-sandbox") {
                found.push(cmd);
            }
        }
        found
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.command(&["--destroy"]).output();
    }
}

#[test]
fn demo_runs_twice_and_destroys() {
    let demo = Demo::new();
    demo.run_ok();
    // The second run tears down the first and starts over.
    let second = demo.run_ok();
    assert!(
        second.contains("Destroying what the previous run created"),
        "{second}"
    );
    assert!(
        demo.processes().is_empty(),
        "servers left running: {:?}",
        demo.processes()
    );
    let (code, text) = demo.run(&["--destroy"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("demo removed"), "{text}");
    assert!(
        !demo.path().exists(),
        "--destroy left {}",
        demo.path().display()
    );
    assert!(demo.processes().is_empty());
}

/// Runs the demo until it prints `marker`, then sends `signal` to its whole process group (what
/// Ctrl-C or closing the terminal does) and returns the exit code and everything it printed.
fn interrupt_demo(demo: &Demo, marker: &str, signal: &str) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let mut command = demo.command(&[]);
    // As from a terminal: a test runner started in the background (`cmd &` in a script, as CI
    // may do) passes SIGINT down ignored, and bash can neither trap nor reset a signal ignored
    // on entry, so the demo could never see the Ctrl-C this test sends.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/demo");
    let pgid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(600);
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        out.push_str(&line);
        out.push('\n');
        if line.contains(marker) {
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{pgid}")])
                .status();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no {marker:?} in 10 minutes:\n{out}"
        );
    }
    for line in lines.map_while(Result::ok) {
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().expect("wait for scripts/demo");
    out.push_str(&err_reader.join().unwrap_or_default());
    use std::os::unix::process::ExitStatusExt;
    (
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        out,
    )
}

#[test]
fn demo_recovers_after_ctrl_c_and_kill() {
    let demo = Demo::new();
    // Ctrl-C while terraform creates the resources.
    let (code, text) = interrupt_demo(&demo, "Creating...", "-INT");
    assert!(text.contains("Creating..."), "{text}");
    assert_eq!(code, 130, "an interrupted demo exits 130:\n{text}");
    assert!(
        flatten(&text)
            .contains("scripts/demo was interrupted. Run scripts/demo again to start over"),
        "{text}"
    );
    assert!(
        demo.processes().is_empty(),
        "Ctrl-C left servers running: {:?}",
        demo.processes()
    );
    demo.run_ok();

    // kill -9 of the script and terraform mid-apply: nothing can clean up; its API server is
    // left running and the state half-written. The next run must clear that and succeed.
    let (code, text) = interrupt_demo(&demo, "Creating...", "-KILL");
    assert_eq!(code, 128 + 9, "{text}");
    let text = demo.run_ok();
    assert!(
        text.contains("Destroying what the previous run created"),
        "{text}"
    );
    assert_eq!(
        demo.processes().len(),
        0,
        "servers left: {:?}",
        demo.processes()
    );
}

#[test]
fn demo_with_its_port_taken_says_what_to_do() {
    let demo = Demo::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = demo
        .command(&[])
        .env("TESTNET_DEMO_PORT", port.to_string())
        .output()
        .expect("run scripts/demo");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    let flat = flatten(&text);
    for want in [
        format!("port {port} on 127.0.0.1 is already in use (TESTNET_DEMO_PORT={port})."),
        "Stop what listens there, run with another port (TESTNET_DEMO_PORT=<free port> scripts/demo), or unset TESTNET_DEMO_PORT to let the demo pick a free port.".to_owned(),
    ] {
        assert!(flat.contains(&want), "{want:?} not in:\n{text}");
    }
    assert!(demo.processes().is_empty());
    // A bad value is refused before anything starts.
    let out = demo
        .command(&[])
        .env("TESTNET_DEMO_PORT", "http")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("TESTNET_DEMO_PORT must be a port number (1-65535) or 0 for any free port"));
    // Once the port is free, the demo uses it.
    drop(taken);
    let out = demo
        .command(&[])
        .env("TESTNET_DEMO_PORT", port.to_string())
        .output()
        .expect("run");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "local Kubernetes API server: https://127.0.0.1:{port}"
        )),
        "{text}"
    );
}

#[test]
fn two_demos_in_one_directory_do_not_mix() {
    let demo = Demo::new();
    std::fs::create_dir_all(demo.path()).expect("demo dir");
    // Hold the demo's lock as a running demo does.
    let mut holder = Command::new("flock")
        .arg(demo.path().join(".lock"))
        .args(["sleep", "60"])
        .spawn()
        .expect("flock");
    let lock = demo.path().join(".lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("flock")
        .arg("-n")
        .arg(&lock)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "flock did not take {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, text) = demo.run(&[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "another scripts/demo is running in {}; wait for it to finish (or stop it), then run this again.",
            demo.path().display()
        )),
        "{text}"
    );
}

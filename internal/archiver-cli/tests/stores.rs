//! `testnet-archiver create` against S3 and GCS servers that enforce conditional writes and
//! against stores that ignore them: moto behind a proxy that strips `If-Match` /
//! `If-None-Match`, and the GCS emulator as it is. Publishing to the latter is refused unless
//! the publishers hold an index lock (a Lease on the local API server, or the real
//! kube-apiserver when built) or one publisher says it is alone.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use acceptance_tests::header_proxy::StripConditionsProxy;
use acceptance_tests::servers::{http, KubeApi, KubeServer, TestServer};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_testnet-archiver"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn source(dir: &Path) {
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    for i in 0..3 {
        std::fs::write(dir.join(format!("data/{i}.bin")), vec![i as u8; 40_000]).expect("write");
    }
}

/// `create` of `label` at height `height` into `store` with more arguments.
fn create(
    endpoint: &str,
    store: &str,
    src: &Path,
    label: &str,
    height: u32,
    more: &[&str],
) -> Command {
    let mut c = bin();
    c.args(["create", "--source"])
        .arg(src)
        .args([
            "--store",
            store,
            "--network",
            "ghostnet",
            "--kind",
            "rolling",
        ])
        .args(["--label", label, "--block-height", &height.to_string()])
        .args([
            "--endpoint",
            endpoint,
            "--path-style",
            "--region",
            "us-east-1",
        ])
        .args(more)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Names in the index, as `testnet-archiver list` prints it.
fn listed(endpoint: &str, store: &str) -> Vec<String> {
    let o = bin()
        .args([
            "list",
            "--store",
            store,
            "--endpoint",
            endpoint,
            "--path-style",
        ])
        .args(["--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run list");
    assert!(o.status.success(), "list: {}", stderr(&o));
    let index: Value = serde_json::from_slice(&o.stdout).expect("list prints JSON");
    let mut names: Vec<String> = index["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

fn assert_refused(o: &Output, store: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let text = stderr(o);
    let first = format!("store {store} does not enforce");
    for needle in [
        first.as_str(),
        "If-None-Match",
        "missing from the index",
        "--index-lock NAMESPACE/NAME",
        "--single-publisher",
        "The catalog was left untouched",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

/// The eight publishers of one run: all must exit 0, and every one is in the index.
fn eight_with_lock(endpoint: &str, store: &str, src: &Path, kube: &KubeServer, round: &str) {
    let lease = format!("default/snapshots-{round}");
    let kubeconfig = kube.kubeconfig.display().to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let label = format!("{round}{i}");
            create(
                endpoint,
                store,
                src,
                &label,
                i,
                &["--index-lock", &lease, "--kubeconfig", &kubeconfig],
            )
            .spawn()
            .expect("spawn")
        })
        .collect();
    let mut published = Vec::new();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
        let meta: Value = serde_json::from_slice(&o.stdout).expect("metadata JSON");
        published.push(meta["name"].as_str().expect("name").to_string());
    }
    let names = listed(endpoint, store);
    for p in &published {
        assert!(
            names.contains(p),
            "{p} reported published but not in {names:?}"
        );
    }
    // Every holder let go of the Lease.
    let lease = KubeApi::new(&kube.kubeconfig).free_lease("default", &format!("snapshots-{round}"));
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0) >= 7,
        "{lease}"
    );
}

/// One publisher that says it is alone (`--single-publisher`) publishes into the empty `store`
/// even where conditional writes are ignored: its artifact is then the only one listed.
fn publish_alone(endpoint: &str, store: &str, src: &Path, height: u32) {
    let o = create(
        endpoint,
        store,
        src,
        "alone",
        height,
        &["--single-publisher"],
    )
    .output()
    .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listed(endpoint, store), ["ghostnet-rolling-alone"]);
}

#[test]
fn s3_store_ignoring_conditions_is_refused_and_served_by_the_index_lock() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    let proxy = StripConditionsProxy::start(moto.addr());
    let endpoint = proxy.endpoint();
    let store = "s3://snaps/ghostnet";
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    source(&src);

    let o = create(&endpoint, store, &src, "refused", 1, &[])
        .output()
        .expect("run");
    assert_refused(&o, store);
    assert!(proxy.stripped.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let (_, listing) = http(moto.port, "GET", "/snaps?list-type=2", b"");
    let listing = String::from_utf8_lossy(&listing).to_string();
    assert!(!listing.contains("<Key>"), "objects left: {listing}");

    publish_alone(&endpoint, store, &src, 100);

    KubeServer::each(|kube| {
        let round = if kube.is_real() { "r" } else { "s" };
        eight_with_lock(&endpoint, store, &src, kube, round);
    });
    let names = listed(&endpoint, store);
    let expected = 1 + 8 * (1 + KubeServer::real_available() as usize);
    assert_eq!(names.len(), expected, "{names:?}");
}

#[test]
fn gcs_emulator_is_refused_unless_a_single_publisher_says_so() {
    let Some(gcs) = TestServer::gcs_emulator() else {
        return;
    };
    let (status, _) = http(gcs.port, "POST", "/storage/v1/b", br#"{"name":"snaps"}"#);
    assert_eq!(status, 200, "create bucket");
    let endpoint = gcs.endpoint();
    let store = "gs://snaps/ghostnet";
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    source(&src);

    let o = create(&endpoint, store, &src, "refused", 1, &[])
        .output()
        .expect("run");
    assert_refused(&o, store);
    publish_alone(&endpoint, store, &src, 2);
}

/// Servers that enforce conditional writes publish as before, without flags; the probe runs
/// once per run and its cost is printed (`cargo test -p archiver-cli --test stores -- --nocapture`).
#[test]
fn enforcing_servers_publish_without_flags_and_the_probe_is_cheap() {
    let servers = [
        TestServer::moto(),
        TestServer::s3s_fs("testnet-access", "testnet-secret-key-0123456789"),
    ];
    for server in servers.into_iter().flatten() {
        let (key, secret) = if server.name == "s3s-fs" {
            ("testnet-access", "testnet-secret-key-0123456789")
        } else {
            ("testing", "testing")
        };
        if server.name == "s3s-fs" {
            std::fs::create_dir_all(server.dir().join("data/snaps")).expect("bucket dir");
        } else {
            let (status, _) = http(server.port, "PUT", "/snaps", b"");
            assert_eq!(status, 200, "create bucket");
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        source(&src);
        let endpoint = server.endpoint();
        let o = create(&endpoint, "s3://snaps/ghostnet", &src, "a", 1, &[])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("TESTNET_ARCHIVER_LOG", "objstore=debug")
            .output()
            .expect("run");
        assert!(o.status.success(), "{}: {}", server.name, stderr(&o));
        let probes: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.contains("conditional-write probe"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            probes.len(),
            1,
            "{}: one probe per run: {}",
            server.name,
            stderr(&o)
        );
        assert!(
            probes[0].contains("if_absent=true if_match=true"),
            "{}",
            probes[0]
        );
        eprintln!("{}: {}", server.name, probes[0]);
    }
}

//! `testnet_snapshot_artifact` and `testnet_snapshot` through the real terraform CLI, with
//! `file://` stores in temporary directories: what a user sees in state and what lands in the
//! store (artifact, metadata, `base.json`, latest pointer) across publish, drift, replacement,
//! import, bad input and destroy.

use std::path::Path;

use acceptance_tests::{Mirror, Workdir};
use serde_json::Value;

const PROVIDER: &str = r#"
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}
provider "testnet" {}
"#;

/// A node data directory: a few regular files in nested directories, plus the node secrets the
/// default excludes leave out.
fn make_source(dir: &Path) {
    std::fs::create_dir_all(dir.join("store/context")).unwrap();
    std::fs::write(dir.join("store/context/index"), vec![7u8; 200_000]).unwrap();
    std::fs::write(dir.join("store/blocks"), b"block data ".repeat(1000)).unwrap();
    std::fs::write(dir.join("config.json"), br#"{"network":"ghostnet"}"#).unwrap();
    std::fs::write(dir.join("identity.json"), br#"{"secret_key":"edsk..."}"#).unwrap();
    std::fs::write(dir.join("peers.json"), b"[]").unwrap();
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn index_names(store: &Path) -> Vec<String> {
    read_json(&store.join("base.json"))["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

struct Setup {
    _tmp: tempfile::TempDir,
    src: std::path::PathBuf,
    store: std::path::PathBuf,
    wd: Workdir,
    _mirror: Mirror,
}

fn setup() -> Setup {
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    let store = tmp.path().join("store");
    make_source(&src);
    std::fs::create_dir_all(&store).unwrap();
    let wd = mirror.workdir();
    Setup {
        _tmp: tmp,
        src,
        store,
        wd,
        _mirror: mirror,
    }
}

fn artifact_tf(src: &Path, store: &Path, extra: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{}"
  store_url  = "file://{}"
  network    = "ghostnet"
  kind       = "rolling"
  {extra}
}}
"#,
        src.display(),
        store.display()
    )
}

#[test]
fn publish_read_replace_drift_destroy() {
    let s = setup();
    let wd = &s.wd;
    wd.write(
        "main.tf",
        &artifact_tf(
            &s.src,
            &s.store,
            r#"label = "100"
  block_height = 100
  triggers = { run = "1" }"#,
        ),
    );
    wd.init();
    wd.apply().ok();

    let st = wd
        .resource("testnet_snapshot_artifact.s")
        .expect("in state");
    let artifact = s.store.join("ghostnet-rolling-100.tar.lz4");
    assert_eq!(st["key"], "ghostnet-rolling-100.tar.lz4");
    assert_eq!(
        st["url"].as_str().unwrap(),
        format!("file://{}", artifact.display())
    );
    assert_eq!(
        st["sha256"].as_str().unwrap(),
        sha256_hex(&artifact),
        "state sha256 is the object's"
    );
    assert_eq!(
        st["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(&artifact).unwrap().len()
    );
    // identity.json and peers.json are excluded by default: 3 regular files remain.
    assert_eq!(st["file_count"].as_u64(), Some(3));
    assert!(st["uncompressed_bytes"].as_u64().unwrap() > 210_000);
    assert!(!st["created_at"].as_str().unwrap().is_empty());

    let meta = read_json(&s.store.join("ghostnet-rolling-100.json"));
    assert_eq!(meta["sha256"], st["sha256"]);
    assert_eq!(meta["block_height"], 100);
    assert_eq!(index_names(&s.store), vec!["ghostnet-rolling-100"]);
    let latest = read_json(&s.store.join("ghostnet-rolling-latest.json"));
    assert!(
        latest.to_string().contains("ghostnet-rolling-100"),
        "latest pointer: {latest}"
    );

    wd.assert_no_changes();

    // The data source finds the latest artifact and verifies it fully.
    let ds = format!(
        r#"
data "testnet_snapshot" "latest" {{
  store_url  = "file://{}"
  network    = "ghostnet"
  kind       = "rolling"
  verify     = "full"
  depends_on = [testnet_snapshot_artifact.s]
}}
output "ds_sha" {{ value = data.testnet_snapshot.latest.sha256 }}
output "ds_label" {{ value = data.testnet_snapshot.latest.label }}
output "ds_meta_network" {{ value = data.testnet_snapshot.latest.metadata["network"] }}
"#,
        s.store.display()
    );
    let with_ds = |extra: &str| artifact_tf(&s.src, &s.store, extra) + &ds;
    wd.write(
        "main.tf",
        &with_ds(
            r#"label = "100"
  block_height = 100
  triggers = { run = "1" }"#,
        ),
    );
    wd.apply().ok();
    let out = wd.tf(&["output", "-json"]).ok();
    let out: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out["ds_sha"]["value"], st["sha256"]);
    assert_eq!(out["ds_label"]["value"], "100");
    assert_eq!(out["ds_meta_network"]["value"], "ghostnet");

    // Changing triggers replaces: the old artifact is deleted, a new one published.
    std::fs::write(
        s.src.join("config.json"),
        br#"{"network":"ghostnet","v":2}"#,
    )
    .unwrap();
    wd.write(
        "main.tf",
        &with_ds(
            r#"label = "100"
  block_height = 100
  triggers = { run = "2" }"#,
        ),
    );
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_snapshot_artifact.s"),
        vec!["delete", "create"]
    );
    wd.apply().ok();
    let st2 = wd.resource("testnet_snapshot_artifact.s").unwrap();
    assert_ne!(
        st2["sha256"], st["sha256"],
        "a new artifact of the changed source"
    );
    assert_eq!(st2["sha256"].as_str().unwrap(), sha256_hex(&artifact));
    assert_eq!(index_names(&s.store), vec!["ghostnet-rolling-100"]);

    // With retain_on_destroy, a replacement leaves the old artifact published.
    wd.write(
        "main.tf",
        &with_ds(
            r#"label = "100"
  block_height = 100
  triggers = { run = "2" }
  retain_on_destroy = true"#,
        ),
    );
    wd.apply().ok();
    wd.assert_no_changes();
    wd.write(
        "main.tf",
        &with_ds(
            r#"label = "101"
  block_height = 101
  triggers = { run = "3" }
  retain_on_destroy = true"#,
        ),
    );
    wd.apply().ok();
    assert!(artifact.exists(), "retained artifact still in the store");
    assert_eq!(
        index_names(&s.store),
        vec!["ghostnet-rolling-100", "ghostnet-rolling-101"]
    );
    let out = wd.tf(&["output", "-json"]).ok();
    let out: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        out["ds_label"]["value"], "101",
        "latest moved to the new artifact"
    );

    // Replaced in the store by other bytes: the next plan publishes it again.
    let artifact101 = s.store.join("ghostnet-rolling-101.tar.lz4");
    let good = std::fs::read(&artifact101).unwrap();
    std::fs::write(&artifact101, b"not the artifact").unwrap();
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_snapshot_artifact.s"),
        vec!["create"]
    );
    std::fs::write(&artifact101, &good).unwrap();
    wd.assert_no_changes();

    // Deleted behind Terraform's back: the next plan publishes it again, and apply does.
    std::fs::remove_file(&artifact101).unwrap();
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_snapshot_artifact.s"),
        vec!["create"]
    );
    wd.apply().ok();
    assert!(artifact101.exists(), "re-published");
    wd.assert_no_changes();

    // Destroy removes the artifact, its metadata and its index entry.
    wd.write(
        "main.tf",
        &artifact_tf(
            &s.src,
            &s.store,
            r#"label = "101"
  block_height = 101
  triggers = { run = "3" }"#,
        ),
    );
    wd.apply().ok();
    wd.destroy().ok();
    assert!(!artifact101.exists(), "destroy deletes the artifact");
    assert!(
        !s.store.join("ghostnet-rolling-101.json").exists(),
        "and its metadata"
    );
    assert_eq!(
        index_names(&s.store),
        vec!["ghostnet-rolling-100"],
        "and its index entry"
    );
    assert!(artifact.exists(), "the retained artifact stays");
}

#[test]
fn import_by_artifact_url() {
    let s = setup();
    let wd = &s.wd;
    wd.write(
        "main.tf",
        &artifact_tf(
            &s.src,
            &s.store,
            r#"label = "7"
  retain_on_destroy = true"#,
        ),
    );
    wd.init();
    wd.apply().ok();
    let published = wd.resource("testnet_snapshot_artifact.s").unwrap();
    wd.tf(&["state", "rm", "testnet_snapshot_artifact.s"]).ok();

    // Bad IDs: an unknown scheme and something that is no URL at all.
    wd.tf(&[
        "import",
        "-no-color",
        "testnet_snapshot_artifact.s",
        "ftp://host/x.tar.lz4",
    ])
    .fails_with("ftp://host");
    wd.tf(&[
        "import",
        "-no-color",
        "testnet_snapshot_artifact.s",
        "not-a-url",
    ])
    .fails_with("is not an artifact URL");
    let url = format!("file://{}/ghostnet-rolling-7.tar.lz4", s.store.display());
    wd.tf(&["import", "-no-color", "testnet_snapshot_artifact.s", &url])
        .ok();
    let st = wd.resource("testnet_snapshot_artifact.s").unwrap();
    assert_eq!(st["sha256"], published["sha256"]);
    assert_eq!(st["label"], "7");
    assert_eq!(st["network"], "ghostnet");
    assert_eq!(
        st["store_url"].as_str().unwrap(),
        format!("file://{}", s.store.display())
    );
    // The imported artifact is adopted, not republished: source_dir is unknown after import and
    // is no reason to replace; only retain_on_destroy is updated in place.
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_snapshot_artifact.s"),
        vec!["update"]
    );
    wd.apply().ok();
    wd.assert_no_changes();
    assert_eq!(
        wd.resource("testnet_snapshot_artifact.s").unwrap()["sha256"],
        published["sha256"]
    );
}

#[test]
fn bad_inputs_fail_at_plan_naming_the_attribute() {
    let s = setup();
    let wd = &s.wd;
    let file = s.src.join("config.json");
    let store = format!("file://{}", s.store.display());
    let src = s.src.display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                r#"source_dir = "{src}/missing"
  store_url = "{store}"
  network = "ghostnet"
  kind = "rolling""#
            ),
            "Cannot read the source directory",
        ),
        (
            format!(
                r#"source_dir = "{}"
  store_url = "{store}"
  network = "ghostnet"
  kind = "rolling""#,
                file.display()
            ),
            "is a file",
        ),
        (
            format!(
                r#"source_dir = "{src}"
  store_url = "ftp://x"
  network = "ghostnet"
  kind = "rolling""#
            ),
            "ftp://x",
        ),
        (
            format!(
                r#"source_dir = "{src}"
  store_url = "{store}"
  network = "Ghost_Net"
  kind = "rolling""#
            ),
            "Ghost_Net",
        ),
        (
            format!(
                r#"source_dir = "{src}"
  store_url = "{store}"
  network = "ghostnet"
  kind = "rolling"
  verify = "bogus""#
            ),
            "\"bogus\" is not allowed",
        ),
        (
            format!(
                r#"source_dir = "{src}"
  store_url = "{store}"
  network = "ghostnet"
  kind = "rolling"
  retain = 1
  retention_grace = "soon""#
            ),
            "\"soon\" is not a duration",
        ),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        wd.write(
            "main.tf",
            &format!("{PROVIDER}\nresource \"testnet_snapshot_artifact\" \"s\" {{\n  {body}\n}}\n"),
        );
        if i == 0 {
            wd.init();
        }
        let r = wd.plan().fails_with(needle);
        assert!(
            r.output().contains("testnet_snapshot_artifact"),
            "diagnostic points at the resource:\n{}",
            r.output()
        );
    }
    assert!(
        std::fs::read_dir(&s.store).unwrap().next().is_none(),
        "nothing was written to the store"
    );
}

/// `retention_grace` decides whether the artifact `retain` drops is deleted by the same publish
/// (`0s`) or stays readable, listed as retired in `base.json` (the default hour).
#[test]
fn retention_grace_decides_when_a_dropped_artifact_is_deleted() {
    for (grace, deleted) in [("", false), ("retention_grace = \"0s\"", true)] {
        let s = setup();
        let wd = &s.wd;
        let publish = |label: &str| {
            wd.write(
                "main.tf",
                &artifact_tf(
                    &s.src,
                    &s.store,
                    &format!(
                        "label = \"{label}\"\n  retain = 1\n  retain_on_destroy = true\n  {grace}"
                    ),
                ),
            );
        };
        publish("1");
        wd.init();
        wd.apply().ok();
        publish("2");
        wd.apply().ok();
        assert_eq!(index_names(&s.store), vec!["ghostnet-rolling-2"], "{grace}");
        let old = s.store.join("ghostnet-rolling-1.tar.lz4");
        let retired = read_json(&s.store.join("base.json"))["retired"].clone();
        if deleted {
            assert!(
                !old.exists(),
                "{grace}: deleted by the publish that dropped it"
            );
            assert_eq!(retired.as_array().map_or(0, Vec::len), 0, "{retired}");
        } else {
            assert!(old.exists(), "kept readable during the grace period");
            assert_eq!(retired[0]["name"], "ghostnet-rolling-1", "{retired}");
        }
    }
}

#[test]
fn store_read_connections_out_of_range_is_refused_at_plan() {
    let s = setup();
    let wd = &s.wd;
    let tf = artifact_tf(&s.src, &s.store, r#"label = "1""#).replace(
        "provider \"testnet\" {}",
        "provider \"testnet\" {\n  store_read_connections = 0\n}",
    );
    assert!(tf.contains("store_read_connections = 0"), "{tf}");
    wd.write("main.tf", &tf);
    wd.init();
    let r = wd.plan().fails_with("store_read_connections");
    assert!(r.output().contains("from 1 to 64"), "{}", r.output());
}

#[test]
fn corrupt_index_is_reported_and_left_untouched() {
    let s = setup();
    let wd = &s.wd;
    let corrupt = b"{ this is not json";
    std::fs::write(s.store.join("base.json"), corrupt).unwrap();
    wd.write("main.tf", &artifact_tf(&s.src, &s.store, r#"label = "1""#));
    wd.init();
    wd.apply().fails_with("not a valid catalog document");
    assert_eq!(std::fs::read(s.store.join("base.json")).unwrap(), corrupt);
    assert!(
        !s.store.join("ghostnet-rolling-1.tar.lz4").exists(),
        "nothing half-published"
    );
    assert!(wd.resource("testnet_snapshot_artifact.s").is_none());
}

// ------------------------------------------------------------------------------------------ S3

/// A bodiless request to moto.
fn http(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    acceptance_tests::servers::http(port, method, path, b"")
}

#[test]
fn publish_to_s3_moto() {
    let Some(moto) = acceptance_tests::servers::TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps");
    assert_eq!(status, 200, "create bucket");
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src);
    let mut wd = mirror.workdir();
    wd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    let config = format!(
        r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  s3_endpoint         = "http://127.0.0.1:{port}"
  s3_force_path_style = true
  s3_region           = "us-east-1"
  default_store_url   = "s3://snaps/ghostnet"
  store_read_connections = 2
}}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{src}"
  network    = "ghostnet"
  kind       = "rolling"
  label      = "42"
  verify     = "full"
}}
data "testnet_snapshot" "latest" {{
  network    = "ghostnet"
  kind       = "rolling"
  verify     = "checksum"
  depends_on = [testnet_snapshot_artifact.s]
}}
output "ds_sha" {{ value = data.testnet_snapshot.latest.sha256 }}
"#,
        port = moto.port,
        src = src.display()
    );
    wd.write("main.tf", &config);
    wd.init();
    wd.apply().ok();
    let st = wd.resource("testnet_snapshot_artifact.s").unwrap();
    assert_eq!(st["url"], "s3://snaps/ghostnet/ghostnet-rolling-42.tar.lz4");
    let (status, body) = http(
        moto.port,
        "GET",
        "/snaps/ghostnet/ghostnet-rolling-42.tar.lz4",
    );
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, st["size_bytes"].as_u64().unwrap());
    let object = tmp.path().join("object");
    std::fs::write(&object, &body).unwrap();
    assert_eq!(
        st["sha256"].as_str().unwrap(),
        sha256_hex(&object),
        "state sha256 is the stored object's"
    );
    let (status, index) = http(moto.port, "GET", "/snaps/ghostnet/base.json");
    assert_eq!(status, 200);
    let index: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(index["artifacts"][0]["name"], "ghostnet-rolling-42");
    assert_eq!(
        http(
            moto.port,
            "GET",
            "/snaps/ghostnet/ghostnet-rolling-latest.json"
        )
        .0,
        200
    );
    let out: Value = serde_json::from_str(&wd.tf(&["output", "-json"]).ok().stdout).unwrap();
    assert_eq!(out["ds_sha"]["value"], st["sha256"]);
    wd.assert_no_changes();

    wd.destroy().ok();
    assert_eq!(
        http(
            moto.port,
            "GET",
            "/snaps/ghostnet/ghostnet-rolling-42.tar.lz4"
        )
        .0,
        404,
        "destroy deletes the artifact"
    );
    let (_, index) = http(moto.port, "GET", "/snaps/ghostnet/base.json");
    let index: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(
        index["artifacts"].as_array().map(Vec::len),
        Some(0),
        "and its index entry"
    );
}

#[test]
fn data_source_verify_fails_on_a_tampered_artifact() {
    let s = setup();
    let wd = &s.wd;
    wd.write("main.tf", &artifact_tf(&s.src, &s.store, r#"label = "5""#));
    wd.init();
    wd.apply().ok();
    let artifact = s.store.join("ghostnet-rolling-5.tar.lz4");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // same size, different content
    std::fs::write(&artifact, &bytes).unwrap();

    let lookup = |verify: &str| {
        format!(
            r#"{PROVIDER}
data "testnet_snapshot" "x" {{
  store_url = "file://{}"
  network   = "ghostnet"
  kind      = "rolling"
  label     = "5"
  {verify}
}}
output "sha" {{ value = data.testnet_snapshot.x.sha256 }}
"#,
            s.store.display()
        )
    };
    let wd2 = s._mirror.workdir();
    wd2.write("main.tf", &lookup(r#"verify = "checksum""#));
    wd2.init();
    wd2.plan().fails_with("sha256 is");
    wd2.plan()
        .fails_with("Snapshot does not match its metadata");
    // Without verify the lookup trusts the metadata and succeeds.
    wd2.write("main.tf", &lookup(""));
    wd2.apply().ok();
    let missing = lookup("").replace(r#"label     = "5""#, r#"label     = "6""#);
    wd2.write("main.tf", &missing);
    wd2.plan().fails_with("Snapshot not found");
}

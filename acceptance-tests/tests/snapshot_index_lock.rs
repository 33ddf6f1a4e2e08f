//! `testnet_snapshot_artifact` through the real terraform CLI against a store that ignores
//! conditional writes (moto behind a proxy that strips `If-Match` / `If-None-Match`): publishing
//! is refused with a diagnostic naming the store and the ways forward; `single_publisher = true`
//! publishes; and eight `terraform apply` runs in separate directories at once, serialised by
//! `index_lock` on a Lease of the local API server (and the real kube-apiserver when built),
//! all succeed and every artifact they recorded is in `base.json`.

use std::path::Path;

use acceptance_tests::header_proxy::StripConditionsProxy;
use acceptance_tests::servers::{http, KubeApi, KubeServer, TestServer};
use acceptance_tests::{Mirror, Workdir};
use serde_json::Value;

const PROVIDER_REQ: &str = r#"
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}
"#;

fn source(dir: &Path) {
    std::fs::create_dir_all(dir.join("store")).unwrap();
    for i in 0..3u8 {
        std::fs::write(dir.join(format!("store/{i}.dat")), vec![i; 30_000]).unwrap();
    }
}

/// A workdir publishing one artifact of `src` into `s3://snaps/ghostnet` through `port`.
fn workdir(
    mirror: &Mirror,
    port: u16,
    kubeconfig: Option<&Path>,
    src: &Path,
    extra: &str,
) -> Workdir {
    let mut wd = mirror.workdir();
    wd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    let kube = kubeconfig
        .map(|k| format!("kubeconfig_path = \"{}\"", k.display()))
        .unwrap_or_default();
    wd.write(
        "main.tf",
        &format!(
            r#"{PROVIDER_REQ}
provider "testnet" {{
  s3_endpoint         = "http://127.0.0.1:{port}"
  s3_force_path_style = true
  s3_region           = "us-east-1"
  {kube}
}}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{src}"
  store_url  = "s3://snaps/ghostnet"
  network    = "ghostnet"
  kind       = "rolling"
  {extra}
}}
"#,
            src = src.display()
        ),
    );
    wd.init();
    wd
}

/// Rewrites the configuration of an existing workdir (same state) with other attributes.
fn workdir_at(wd: Workdir, mirror: &Mirror, port: u16, src: &Path, extra: &str) -> Workdir {
    let fresh = workdir(mirror, port, None, src, extra);
    std::fs::copy(fresh.path().join("main.tf"), wd.path().join("main.tf")).expect("copy config");
    wd
}

fn index_names(moto: &TestServer) -> Vec<String> {
    let (status, body) = http(moto.port, "GET", "/snaps/ghostnet/base.json", b"");
    assert_eq!(status, 200, "base.json: {}", String::from_utf8_lossy(&body));
    let index: Value = serde_json::from_slice(&body).expect("base.json");
    index["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect()
}

/// Runs `terraform <verb>` in every one of `dirs` at once; each must succeed.
fn all_at_once(dirs: &[Workdir], verb: &str) {
    let children: Vec<_> = dirs
        .iter()
        .map(|wd| {
            wd.command(&[verb, "-auto-approve", "-input=false", "-no-color"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn terraform")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(
            o.status.success(),
            "{verb} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn store_ignoring_conditional_writes_needs_index_lock_or_single_publisher() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    let proxy = StripConditionsProxy::start(moto.addr());
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    source(&src);

    // Refused, naming the store, what it does not enforce, the risk and both ways forward.
    let wd = workdir(&mirror, proxy.port, None, &src, "label = \"refused\"");
    wd.apply()
        .fails_with("Store does not enforce conditional writes")
        .fails_with(
            "store s3://snaps/ghostnet does not enforce create-if-absent (S3 If-None-Match: *",
        )
        .fails_with("missing from the index")
        .fails_with("index_lock = \"namespace/name\"")
        .fails_with("single_publisher = true")
        .fails_with("with testnet_snapshot_artifact.s");
    assert!(wd.resource("testnet_snapshot_artifact.s").is_none());
    let (_, listing) = http(moto.port, "GET", "/snaps?list-type=2", b"");
    let listing = String::from_utf8_lossy(&listing).to_string();
    assert!(!listing.contains("<Key>"), "objects left: {listing}");

    // One publisher that says it is alone.
    let wd = workdir(
        &mirror,
        proxy.port,
        None,
        &src,
        "label = \"alone\"\n  single_publisher = true",
    );
    wd.apply().ok();
    assert_eq!(index_names(&moto), ["ghostnet-rolling-alone"]);
    wd.assert_no_changes();

    // Eight applies at once, each in its own directory, serialised by the Lease.
    KubeServer::each(|kube| {
        let round = if kube.is_real() { "r" } else { "s" };
        let dirs: Vec<Workdir> = (0..8)
            .map(|i| {
                let extra = format!(
                    "label = \"{round}{i}\"\n  block_height = {i}\n  index_lock = \"default/snapshots-{round}\""
                );
                workdir(&mirror, proxy.port, Some(&kube.kubeconfig), &src, &extra)
            })
            .collect();
        all_at_once(&dirs, "apply");
        let names = index_names(&moto);
        for wd in &dirs {
            let st = wd
                .resource("testnet_snapshot_artifact.s")
                .expect("in state");
            let key = st["key"].as_str().expect("key");
            let name = key.trim_end_matches(".tar.lz4");
            assert!(
                names.iter().any(|n| n == name),
                "{name} recorded but not in {names:?}"
            );
        }
        assert_eq!(names.len(), 9, "{names:?}");
        KubeApi::new(&kube.kubeconfig).free_lease("default", &format!("snapshots-{round}"));

        // Eight destroys at once change the index under the same Lease: none resurrects
        // another's entry.
        all_at_once(&dirs, "destroy");
        assert_eq!(index_names(&moto), ["ghostnet-rolling-alone"]);
    });

    // Removing an artifact follows the same rules: refused once single_publisher is dropped.
    let alone = workdir_at(wd, &mirror, proxy.port, &src, "label = \"alone\"");
    alone.apply().ok();
    alone
        .destroy()
        .fails_with("Store does not enforce conditional writes")
        .fails_with("Removing the artifact changes base.json too");
    assert_eq!(index_names(&moto), ["ghostnet-rolling-alone"]);
    let alone = workdir_at(
        alone,
        &mirror,
        proxy.port,
        &src,
        "label = \"alone\"\n  single_publisher = true",
    );
    alone.apply().ok();
    alone.destroy().ok();
    assert_eq!(index_names(&moto), Vec::<String>::new());
}

#[test]
fn invalid_index_lock_is_named_at_plan_time() {
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    source(&src);
    for (value, says) in [
        ("ghostnet-index", "expected \"namespace/name\" of a Lease"),
        ("Testnet/index", "namespace: "),
        ("testnet/Index_1", "name: "),
    ] {
        let wd = workdir(&mirror, 1, None, &src, &format!("index_lock = \"{value}\""));
        wd.plan()
            .fails_with("index_lock")
            .fails_with(says)
            .fails_with("e.g. \"testnet/ghostnet-index\"");
    }
}

//! `testnet_storage_class` through the real terraform CLI: presets, empty second plan, in-place
//! update, replacement of immutable fields, import (command and `import` block), drift (deleted and
//! relabelled behind Terraform's back, done from a second working directory), bad input, destroy.
//!
//! Runs against the kube sandbox always, and also against the real kube-apiserver
//! (`scripts/kube-real`) when its build cache exists and `TESTNET_KUBE_REAL` is not `0`.

use std::path::Path;

use acceptance_tests::servers::KubeServer as Server;
use acceptance_tests::{Mirror, Workdir};
use serde_json::Value as Json;

/// Every server the scenario runs against: the sandbox, plus the real one when available.
fn servers() -> Vec<fn() -> Server> {
    let mut out: Vec<fn() -> Server> = vec![Server::sandbox];
    if Server::real_available() {
        out.push(Server::real);
    } else {
        eprintln!("real kube-apiserver not available or disabled: sandbox only");
    }
    out
}

const FAST: &str = "testnet_storage_class.fast";
const BULK: &str = "testnet_storage_class.bulk";

fn provider_block(kubeconfig: &Path) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    testnet = {{ source = \"testnet-infra/testnet\" }}\n  }}\n}}\n\nprovider \"testnet\" {{\n  kubeconfig_path = \"{}\"\n}}\n",
        kubeconfig.display()
    )
}

fn fast(extra: &str) -> String {
    format!("resource \"testnet_storage_class\" \"fast\" {{\n  name = \"fast\"\n  tier = \"ssd\"\n  cloud = \"gcp\"\n{extra}}}\n")
}

fn bulk(extra: &str) -> String {
    format!("resource \"testnet_storage_class\" \"bulk\" {{\n  name = \"bulk\"\n  tier = \"standard\"\n  cloud = \"gcp\"\n{extra}}}\n")
}

fn attr<'a>(v: &'a Json, k: &str) -> &'a Json {
    &v[k]
}

fn state(wd: &Workdir, addr: &str) -> Json {
    wd.resource(addr)
        .unwrap_or_else(|| panic!("{addr} not in state"))
}

fn scenario(mirror: &Mirror, server: &Server) {
    let who = server.label;
    let pb = provider_block(&server.kubeconfig);
    let wd = mirror.workdir();

    // Create two classes from presets.
    let v1_fast = fast("  labels = { team = \"a\" }\n");
    wd.write("main.tf", &format!("{pb}\n{v1_fast}\n{}", bulk("")));
    wd.init();
    wd.apply().ok();
    let f = state(&wd, FAST);
    assert_eq!(
        attr(&f, "provisioner"),
        "kubernetes.io/gce-pd",
        "{who}: {f}"
    );
    assert_eq!(attr(&f, "parameters")["type"], "pd-ssd", "{who}");
    assert_eq!(attr(&f, "reclaim_policy"), "Delete", "{who}");
    assert_eq!(
        attr(&f, "volume_binding_mode"),
        "WaitForFirstConsumer",
        "{who}"
    );
    assert_eq!(attr(&f, "allow_volume_expansion"), false, "{who}");
    assert_eq!(attr(&f, "labels")["team"], "a", "{who}");
    let fast_uid = attr(&f, "uid").as_str().unwrap_or_default().to_string();
    assert!(!fast_uid.is_empty(), "{who}: uid not set: {f}");
    let b = state(&wd, BULK);
    assert_eq!(attr(&b, "parameters")["type"], "pd-standard", "{who}");
    assert!(
        attr(&b, "labels").is_null(),
        "{who}: no labels stay null: {b}"
    );
    let bulk_uid = attr(&b, "uid").as_str().unwrap_or_default().to_string();
    wd.assert_no_changes();

    // In-place update: expansion and labels.
    let v2_fast = fast("  labels = { team = \"b\" }\n  allow_volume_expansion = true\n");
    wd.write("main.tf", &format!("{pb}\n{v2_fast}\n{}", bulk("")));
    let plan = wd.plan_json();
    assert_eq!(Workdir::planned_actions(&plan, FAST), ["update"], "{who}");
    assert_eq!(Workdir::planned_actions(&plan, BULK), ["no-op"], "{who}");
    wd.apply().ok();
    let f = state(&wd, FAST);
    assert_eq!(attr(&f, "allow_volume_expansion"), true, "{who}");
    assert_eq!(attr(&f, "labels")["team"], "b", "{who}");
    assert_eq!(
        attr(&f, "uid"),
        fast_uid.as_str(),
        "{who}: update kept the object"
    );
    wd.assert_no_changes();

    // Replacement: explicit parameters on fast, binding mode on bulk.
    let v3_fast = fast(
        "  labels = { team = \"b\" }\n  allow_volume_expansion = true\n  parameters = { type = \"pd-ssd\", replication-type = \"regional-pd\" }\n",
    );
    let v3_bulk = bulk("  volume_binding_mode = \"Immediate\"\n");
    wd.write("main.tf", &format!("{pb}\n{v3_fast}\n{v3_bulk}"));
    let text = wd.plan();
    assert_eq!(text.code, 2, "{who}: {}", text.output());
    assert!(
        text.stdout.contains("forces replacement"),
        "{who}: {}",
        text.stdout
    );
    let plan = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, FAST),
        ["delete", "create"],
        "{who}"
    );
    assert_eq!(
        Workdir::planned_actions(&plan, BULK),
        ["delete", "create"],
        "{who}"
    );
    wd.apply().ok();
    let f = state(&wd, FAST);
    assert_eq!(
        attr(&f, "parameters")["replication-type"],
        "regional-pd",
        "{who}"
    );
    assert_ne!(attr(&f, "uid"), fast_uid.as_str(), "{who}: replaced");
    let b = state(&wd, BULK);
    assert_eq!(attr(&b, "volume_binding_mode"), "Immediate", "{who}");
    assert_ne!(attr(&b, "uid"), bulk_uid.as_str(), "{who}: replaced");
    wd.assert_no_changes();

    // Import with the command, in a second working directory.
    let wd_bulk = mirror.workdir();
    wd_bulk.write("main.tf", &format!("{pb}\n{v3_bulk}"));
    wd_bulk.init();
    wd_bulk
        .tf(&["import", "-input=false", "-no-color", BULK, "bulk"])
        .ok();
    assert_eq!(
        attr(&state(&wd_bulk, BULK), "volume_binding_mode"),
        "Immediate",
        "{who}"
    );
    wd_bulk.assert_no_changes();

    // Import with an `import` block, in a third.
    let wd_fast = mirror.workdir();
    wd_fast.write(
        "main.tf",
        &format!("{pb}\nimport {{\n  to = {FAST}\n  id = \"fast\"\n}}\n\n{v3_fast}"),
    );
    wd_fast.init();
    let plan = wd_fast.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, FAST),
        ["no-op"],
        "{who}: import only"
    );
    wd_fast.apply().ok();
    assert_eq!(attr(&state(&wd_fast, FAST), "labels")["team"], "b", "{who}");
    wd_fast.assert_no_changes();

    // Drift: bulk deleted behind the first directory's back -> create planned.
    wd_bulk.destroy().ok();
    let plan = wd.plan_json();
    assert_eq!(Workdir::planned_actions(&plan, BULK), ["create"], "{who}");
    // Drift: fast relabelled and expansion turned off elsewhere -> in-place update planned.
    let drifted = fast(
        "  labels = { team = \"c\" }\n  allow_volume_expansion = false\n  parameters = { type = \"pd-ssd\", replication-type = \"regional-pd\" }\n",
    );
    wd_fast.write("main.tf", &format!("{pb}\n{drifted}"));
    wd_fast.apply().ok();
    let plan = wd.plan_json();
    assert_eq!(Workdir::planned_actions(&plan, FAST), ["update"], "{who}");
    wd.apply().ok();
    wd.assert_no_changes();
    assert_eq!(attr(&state(&wd, FAST), "labels")["team"], "b", "{who}");

    // Destroy removes both: the other directory now sees fast gone.
    wd.destroy().ok();
    let plan = wd_fast.plan_json();
    assert_eq!(Workdir::planned_actions(&plan, FAST), ["create"], "{who}");
}

#[test]
fn storage_class_lifecycle() {
    let mirror = Mirror::testnet();
    for start in servers() {
        let server = start();
        eprintln!("storage class scenario against {}", server.label);
        scenario(&mirror, &server);
    }
}

/// Bad input fails at plan time, before any cluster is contacted, with a diagnostic naming the
/// attribute and what is allowed.
#[test]
fn storage_class_bad_input() {
    let mirror = Mirror::testnet();
    // No server: a plan that got as far as the cluster would fail differently.
    let pb = provider_block(Path::new("/nonexistent/kubeconfig"));
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "invalid name",
            "name = \"Bad_Name\"\n  provisioner = \"x.csi\"",
            &["Invalid value for name", "Bad_Name", "RFC 1123"],
        ),
        (
            "unknown tier",
            "name = \"a\"\n  tier = \"fast\"\n  cloud = \"gcp\"",
            &["Invalid value for tier", "\"fast\" is not allowed", "\"ssd\", \"standard\""],
        ),
        (
            "unknown binding mode",
            "name = \"a\"\n  provisioner = \"x.csi\"\n  volume_binding_mode = \"Later\"",
            &[
                "Invalid value for volume_binding_mode",
                "\"Immediate\", \"WaitForFirstConsumer\"",
            ],
        ),
        (
            "unknown reclaim policy",
            "name = \"a\"\n  provisioner = \"x.csi\"\n  reclaim_policy = \"Recycle\"",
            &["Invalid value for reclaim_policy", "\"Delete\", \"Retain\""],
        ),
        (
            "neither provisioner nor tier",
            "name = \"a\"",
            &["Missing provisioner", "`provisioner`", "`tier`"],
        ),
        (
            "tier without cloud",
            "name = \"a\"\n  tier = \"ssd\"",
            &["Missing cloud for tier", "`cloud`"],
        ),
        (
            "tier conflicts with provisioner",
            "name = \"a\"\n  tier = \"ssd\"\n  cloud = \"aws\"\n  provisioner = \"kubernetes.io/gce-pd\"",
            &["Conflicting tier and provisioner", "`tier`", "`provisioner`", "ebs.csi.aws.com"],
        ),
        (
            "ceph-rbd without cluster and pool",
            "name = \"a\"\n  cloud = \"ceph-rbd\"",
            &["Missing ceph_cluster_id", "Missing ceph_pool", "CephBlockPool"],
        ),
        (
            "cephfs without filesystem",
            "name = \"a\"\n  cloud = \"cephfs\"\n  ceph_cluster_id = \"rook-ceph\"",
            &["Missing ceph_fs_name", "CephFilesystem"],
        ),
        (
            "local-path with Immediate binding",
            "name = \"a\"\n  cloud = \"local-path\"\n  volume_binding_mode = \"Immediate\"",
            &["local-path needs WaitForFirstConsumer", "volume_binding_mode"],
        ),
        (
            "tier on a self-hosted cloud",
            "name = \"a\"\n  cloud = \"local-path\"\n  tier = \"ssd\"",
            &["Tier with a self-hosted cloud", "Remove `tier`"],
        ),
        (
            "ceph attribute without a ceph cloud",
            "name = \"a\"\n  tier = \"ssd\"\n  cloud = \"aws\"\n  ceph_pool = \"replicapool\"",
            &["Attribute needs a Ceph cloud", "`ceph_pool`"],
        ),
        (
            "unknown cloud",
            "name = \"a\"\n  cloud = \"openstack\"",
            &["Invalid value for cloud", "\"ceph-rbd\", \"cephfs\", \"local-path\""],
        ),
    ];
    let wd = mirror.workdir();
    for (what, body, needles) in cases {
        wd.write(
            "main.tf",
            &format!("{pb}\nresource \"testnet_storage_class\" \"x\" {{\n  {body}\n}}\n"),
        );
        if !wd.path().join(".terraform").exists() {
            wd.init();
        }
        let run = wd.plan();
        assert_eq!(
            run.code,
            1,
            "{what}: expected a failed plan:\n{}",
            run.output()
        );
        for n in *needles {
            let flat = acceptance_tests::flatten(&run.output());
            assert!(
                flat.contains(&acceptance_tests::flatten(n)),
                "{what}: expected {n:?} in:\n{}",
                run.output()
            );
        }
    }
}

/// The provider configuration depends on a resource not created yet: the plan is still made
/// (presets filled in, no cluster contacted) and apply creates the class once it is known.
#[test]
fn storage_class_plans_with_unknown_provider_configuration() {
    let mirror = Mirror::testnet();
    let server = Server::sandbox();
    let wd = mirror.workdir();
    wd.write(
        "main.tf",
        &format!(
            "terraform {{\n  required_providers {{\n    testnet = {{ source = \"testnet-infra/testnet\" }}\n  }}\n}}\n\nresource \"terraform_data\" \"kc\" {{\n  input = \"{}\"\n}}\n\nprovider \"testnet\" {{\n  kubeconfig_path = terraform_data.kc.output\n}}\n\n{}",
            server.kubeconfig.display(),
            fast("")
        ),
    );
    wd.init();
    let plan = wd.plan_json();
    assert_eq!(Workdir::planned_actions(&plan, FAST), ["create"]);
    let after = plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["address"] == FAST))
        .map(|r| r["change"]["after"].clone())
        .unwrap_or_default();
    assert_eq!(after["provisioner"], "kubernetes.io/gce-pd", "{plan}");
    assert_eq!(after["parameters"]["type"], "pd-ssd", "{plan}");
    wd.apply().ok();
    assert_eq!(
        attr(&state(&wd, FAST), "provisioner"),
        "kubernetes.io/gce-pd"
    );
    wd.assert_no_changes();
    wd.destroy().ok();
}

/// The self-hosted presets through terraform on each server: classes with Rook's provisioners and
/// parameters (as the server stores them), an empty second plan, and an import that infers
/// `cloud` and `ceph_*` back so the same configuration plans no change.
#[test]
fn self_hosted_presets_create_read_and_import() {
    let mirror = Mirror::testnet();
    for start in servers() {
        let server = start();
        let who = server.label;
        let pb = provider_block(&server.kubeconfig);
        let rbd = "resource \"testnet_storage_class\" \"rbd\" {\n  name = \"ceph-block\"\n  cloud = \"ceph-rbd\"\n  ceph_cluster_id = \"rook-ceph\"\n  ceph_pool = \"replicapool\"\n  allow_volume_expansion = true\n}\n";
        let fs = "resource \"testnet_storage_class\" \"fs\" {\n  name = \"ceph-fs\"\n  cloud = \"cephfs\"\n  ceph_cluster_id = \"rook-ceph\"\n  ceph_fs_name = \"myfs\"\n}\n";
        let local = "resource \"testnet_storage_class\" \"local\" {\n  name = \"local\"\n  cloud = \"local-path\"\n}\n";
        let wd = mirror.workdir();
        wd.write("main.tf", &format!("{pb}\n{rbd}\n{fs}\n{local}"));
        wd.init();
        wd.apply().ok();
        wd.assert_no_changes();

        let api = acceptance_tests::servers::KubeApi::new(&server.kubeconfig);
        let sc = api
            .get("/apis/storage.k8s.io/v1/storageclasses/ceph-block")
            .expect("rbd class");
        assert_eq!(sc["provisioner"], "rook-ceph.rbd.csi.ceph.com", "{who}");
        assert_eq!(sc["parameters"]["pool"], "replicapool", "{who}");
        assert_eq!(sc["parameters"]["clusterID"], "rook-ceph", "{who}");
        assert_eq!(
            sc["parameters"]["csi.storage.k8s.io/node-stage-secret-name"], "rook-csi-rbd-node",
            "{who}"
        );
        assert_eq!(
            sc["parameters"]["csi.storage.k8s.io/node-stage-secret-namespace"], "rook-ceph",
            "{who}"
        );
        let sc = api
            .get("/apis/storage.k8s.io/v1/storageclasses/ceph-fs")
            .expect("cephfs class");
        assert_eq!(sc["provisioner"], "rook-ceph.cephfs.csi.ceph.com", "{who}");
        assert_eq!(sc["parameters"]["fsName"], "myfs", "{who}");
        let sc = api
            .get("/apis/storage.k8s.io/v1/storageclasses/local")
            .expect("local class");
        assert_eq!(sc["provisioner"], "rancher.io/local-path", "{who}");
        assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer", "{who}");
        assert!(sc["parameters"].is_null(), "{who}: {sc}");

        // Import into another directory with the same configuration: nothing to change.
        let other = mirror.workdir();
        other.write("main.tf", &format!("{pb}\n{rbd}"));
        other.init();
        other
            .tf(&[
                "import",
                "-input=false",
                "-no-color",
                "testnet_storage_class.rbd",
                "ceph-block",
            ])
            .ok();
        let imported = state(&other, "testnet_storage_class.rbd");
        assert_eq!(imported["cloud"], "ceph-rbd", "{who}: {imported}");
        assert_eq!(imported["ceph_pool"], "replicapool", "{who}: {imported}");
        assert!(imported["tier"].is_null(), "{who}: {imported}");
        other.assert_no_changes();
        wd.destroy().ok();
    }
}

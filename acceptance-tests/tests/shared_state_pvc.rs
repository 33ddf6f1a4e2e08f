//! `testnet_shared_state_pvc` through the real terraform CLI.
//!
//! The same lifecycle runs against the local sandbox (always) and the real kube-apiserver v1.20.2
//! (`scripts/kube-real`, when its build cache exists and `TESTNET_KUBE_REAL` is not `0`). The real
//! server has no volume provisioner, so Immediate claims never bind there: the rows that need a
//! bound claim (Bound phase, capacity, in-place growth, class without expansion) run on the
//! sandbox only. StorageClasses come from `testnet_storage_class` in the same configuration.

use std::process::Command;

use acceptance_tests::servers::KubeServer as Server;
use acceptance_tests::{Mirror, Workdir};

/// The sandbox binds claims on `Immediate` classes after 200 ms, as a provisioner would.
fn sandbox() -> Server {
    Server::sandbox_with(&["--bind-delay-ms", "200"])
}

/// Sizes of the claims in one configuration.
struct Sizes {
    waiting: &'static str,
    bound: &'static str,
    fixed: &'static str,
}

/// Two WaitForFirstConsumer/Immediate classes and claims on them. `bound` and `fixed` (Immediate
/// classes, with and without expansion) are left out on the real server, which cannot bind them.
fn config(server: &Server, sfx: &str, s: &Sizes) -> String {
    let mut c = format!(
        r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = "{kc}"
}}
resource "testnet_storage_class" "wffc" {{
  name                = "pvc-wffc-{sfx}"
  provisioner         = "example.com/none"
  volume_binding_mode = "WaitForFirstConsumer"
}}
resource "testnet_shared_state_pvc" "waiting" {{
  namespace          = "pvc-{sfx}"
  create_namespace   = true
  name               = "waiting"
  testnet            = "ghostnet"
  role               = "shared-state"
  labels             = {{ team = "infra" }}
  storage            = "{w}"
  storage_class_name = testnet_storage_class.wffc.name
}}
"#,
        kc = server.kubeconfig.display(),
        w = s.waiting
    );
    if !server.is_real() {
        c.push_str(&format!(
            r#"
resource "testnet_storage_class" "imm" {{
  name                   = "pvc-imm-{sfx}"
  provisioner            = "example.com/none"
  volume_binding_mode    = "Immediate"
  allow_volume_expansion = true
}}
resource "testnet_storage_class" "fixed" {{
  name                = "pvc-fixed-{sfx}"
  provisioner         = "example.com/none"
  volume_binding_mode = "Immediate"
}}
resource "testnet_shared_state_pvc" "bound" {{
  namespace          = testnet_shared_state_pvc.waiting.namespace
  name               = "bound"
  storage            = "{b}"
  storage_class_name = testnet_storage_class.imm.name
  timeouts = {{
    create = "1m"
    delete = "5s"
  }}
}}
resource "testnet_shared_state_pvc" "fixed" {{
  namespace          = testnet_shared_state_pvc.waiting.namespace
  name               = "fixed"
  storage            = "{f}"
  storage_class_name = testnet_storage_class.fixed.name
}}
"#,
            b = s.bound,
            f = s.fixed
        ));
    }
    c
}

/// A raw API request with the kubeconfig's token (curl; loopback test servers only, so `-k`).
fn kube(server: &Server, method: &str, path: &str, body: Option<&str>) -> String {
    let text = std::fs::read_to_string(&server.kubeconfig).expect("read kubeconfig");
    let kc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig is YAML");
    let url = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server in kubeconfig");
    let token = kc["users"][0]["user"]["token"]
        .as_str()
        .expect("token in kubeconfig");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sSk",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
        "-w",
        "\n%{http_code}",
    ])
    .arg("-H")
    .arg(format!("Authorization: Bearer {token}"))
    .arg(format!("{url}{path}"));
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text.lines().last().unwrap_or_default().to_string();
    assert!(code.starts_with('2'), "{method} {path} failed: {text}");
    text
}

fn actions(wd: &Workdir, addr: &str) -> Vec<String> {
    Workdir::planned_actions(&wd.plan_json(), addr)
}

fn lifecycle(mirror: &Mirror, server: &Server) {
    eprintln!("--- shared_state_pvc lifecycle on {}", server.label);
    let sfx = format!("{}", std::process::id());
    let wd = mirror.workdir();
    let mut sizes = Sizes {
        waiting: "1Gi",
        bound: "1Gi",
        fixed: "1Gi",
    };
    wd.write("main.tf", &config(server, &sfx, &sizes));
    wd.init();
    wd.apply().ok();

    // WaitForFirstConsumer: Pending is ready, nothing bound.
    let w = wd
        .resource("testnet_shared_state_pvc.waiting")
        .expect("waiting claim in state");
    assert_eq!(w["phase"], "Pending", "{w}");
    assert!(w["bound_volume"].is_null(), "{w}");
    assert_eq!(w["id"], format!("pvc-{sfx}/waiting"));
    assert!(w["uid"].as_str().is_some_and(|u| !u.is_empty()), "{w}");
    assert_eq!(w["access_modes"], serde_json::json!(["ReadWriteOnce"]));
    if !server.is_real() {
        // Immediate: create waited for binding.
        let b = wd
            .resource("testnet_shared_state_pvc.bound")
            .expect("bound claim in state");
        assert_eq!(b["phase"], "Bound", "{b}");
        assert!(
            b["bound_volume"].as_str().is_some_and(|v| !v.is_empty()),
            "{b}"
        );
        assert_eq!(b["capacity"], "1Gi", "{b}");
    }
    wd.assert_no_changes();

    // Same size, other spelling: no change.
    sizes.waiting = "1024Mi";
    wd.write("main.tf", &config(server, &sfx, &sizes));
    wd.assert_no_changes();

    // Shrink: plan error on `storage`, never a replacement.
    sizes.waiting = "512Mi";
    wd.write("main.tf", &config(server, &sfx, &sizes));
    wd.plan()
        .fails_with("Storage cannot shrink")
        .fails_with("testnet_shared_state_pvc.waiting");

    // Not a quantity: plan error naming the allowed form.
    sizes.waiting = "10Gii";
    wd.write("main.tf", &config(server, &sfx, &sizes));
    wd.plan()
        .fails_with("\"10Gii\" is not a Kubernetes quantity")
        .fails_with("10Gi, 500Mi");

    // Growing an unbound claim: replacement (it holds no data), with a warning saying why.
    sizes.waiting = "2Gi";
    wd.write("main.tf", &config(server, &sfx, &sizes));
    assert_eq!(
        actions(&wd, "testnet_shared_state_pvc.waiting"),
        ["delete", "create"]
    );
    let p = wd.plan();
    assert_eq!(p.code, 2, "{}", p.output());
    assert!(
        acceptance_tests::flatten(&p.output()).contains("Claim will be replaced to grow it"),
        "{}",
        p.output()
    );
    sizes.waiting = "1Gi";

    if !server.is_real() {
        // Growing a bound claim on an expandable class: in place.
        sizes.bound = "2Gi";
        wd.write("main.tf", &config(server, &sfx, &sizes));
        assert_eq!(actions(&wd, "testnet_shared_state_pvc.bound"), ["update"]);
        wd.apply().ok();
        let b = wd
            .resource("testnet_shared_state_pvc.bound")
            .expect("bound claim in state");
        assert_eq!(b["storage"], "2Gi", "{b}");
        assert_eq!(b["phase"], "Bound", "{b}");
        wd.assert_no_changes();

        // Growing on a class without expansion: plan error, no replacement.
        sizes.fixed = "2Gi";
        wd.write("main.tf", &config(server, &sfx, &sizes));
        wd.plan()
            .fails_with("does not allow expansion")
            .fails_with("allow_volume_expansion");
        sizes.fixed = "1Gi";
        wd.write("main.tf", &config(server, &sfx, &sizes));
        wd.assert_no_changes();
    }

    // Import `namespace/name` in another working directory; a bad ID is refused clearly.
    let other = mirror.workdir();
    other.write(
        "main.tf",
        &format!(
            r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = "{kc}"
}}
resource "testnet_shared_state_pvc" "copy" {{
  namespace          = "pvc-{sfx}"
  name               = "waiting"
  testnet            = "ghostnet"
  role               = "shared-state"
  labels             = {{ team = "infra" }}
  storage            = "1Gi"
  storage_class_name = "pvc-wffc-{sfx}"
}}
"#,
            kc = server.kubeconfig.display()
        ),
    );
    other.init();
    other
        .tf(&[
            "import",
            "-no-color",
            "-input=false",
            "testnet_shared_state_pvc.copy",
            "no-slash",
        ])
        .fails_with("is not `namespace/name`");
    other
        .tf(&[
            "import",
            "-no-color",
            "-input=false",
            "testnet_shared_state_pvc.copy",
            &format!("pvc-{sfx}/waiting"),
        ])
        .ok();
    let imported = other
        .resource("testnet_shared_state_pvc.copy")
        .expect("imported claim");
    assert_eq!(imported["storage"], "1Gi", "{imported}");
    assert_eq!(imported["testnet"], "ghostnet", "{imported}");
    assert_eq!(
        imported["labels"],
        serde_json::json!({"team": "infra"}),
        "{imported}"
    );
    assert_eq!(imported["uid"], w["uid"], "{imported}");

    // Drift: the claim deleted behind the first directory's back (by destroying the import).
    other.destroy().ok();
    wd.write("main.tf", &config(server, &sfx, &sizes));
    assert_eq!(actions(&wd, "testnet_shared_state_pvc.waiting"), ["create"]);

    // Invalid name: refused at plan time with the rule.
    let bad = config(server, &sfx, &sizes).replace(
        "name               = \"waiting\"",
        "name               = \"Not_Valid\"",
    );
    wd.write("main.tf", &bad);
    wd.plan()
        .fails_with("\"Not_Valid\" is not a valid DNS-1123 subdomain");

    wd.write("main.tf", &config(server, &sfx, &sizes));
    if !server.is_real() {
        // A pod mounting the claim holds it (pvc-protection): destroy fails after the delete
        // timeout naming the pod, and succeeds once the pod is gone.
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"holder"}},"spec":{{"containers":[{{"name":"node","image":"busybox"}}],"volumes":[{{"name":"state","persistentVolumeClaim":{{"claimName":"bound"}}}}]}}}}"#
        );
        kube(
            server,
            "POST",
            &format!("/api/v1/namespaces/pvc-{sfx}/pods"),
            Some(&pod),
        );
        wd.destroy()
            .fails_with("Claim still in use")
            .fails_with("mounted by pods holder");
        kube(
            server,
            "DELETE",
            &format!("/api/v1/namespaces/pvc-{sfx}/pods/holder"),
            None,
        );
    }
    wd.destroy().ok();
    assert!(wd.resource("testnet_shared_state_pvc.waiting").is_none());
    assert!(wd.resource("testnet_shared_state_pvc.bound").is_none());

    if server.is_real() {
        immediate_claim_times_out_with_events(mirror, server, &sfx);
    }
}

/// Real server only (no provisioner there): an Immediate claim never binds, so create fails after
/// its timeout with the claim's events, and the claim stays in state (tainted) for destroy.
fn immediate_claim_times_out_with_events(mirror: &Mirror, server: &Server, sfx: &str) {
    let wd = mirror.workdir();
    wd.write(
        "main.tf",
        &format!(
            r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = "{kc}"
}}
resource "testnet_storage_class" "imm" {{
  name                = "pvc-never-{sfx}"
  provisioner         = "example.com/none"
  volume_binding_mode = "Immediate"
}}
resource "testnet_shared_state_pvc" "never" {{
  namespace          = "pvc-never-{sfx}"
  create_namespace   = true
  name               = "never"
  storage            = "1Gi"
  storage_class_name = testnet_storage_class.imm.name
  timeouts = {{ create = "5s" }}
}}
"#,
            kc = server.kubeconfig.display()
        ),
    );
    wd.init();
    wd.apply()
        .fails_with("Claim not ready")
        .fails_with("phase Pending")
        .fails_with("events:");
    let st = wd
        .resource("testnet_shared_state_pvc.never")
        .expect("claim kept in state after the timeout");
    assert_eq!(st["phase"], "Pending", "{st}");
    wd.destroy().ok();
}

#[test]
fn shared_state_pvc_lifecycle_on_sandbox() {
    let mirror = Mirror::testnet();
    let server = sandbox();
    lifecycle(&mirror, &server);
}

#[test]
fn shared_state_pvc_lifecycle_on_real_kube_apiserver() {
    if !Server::real_available() {
        eprintln!("skipped: no real kube-apiserver (run scripts/kube-real build, or set TESTNET_KUBE_REAL=1)");
        return;
    }
    let mirror = Mirror::testnet();
    let server = Server::real();
    lifecycle(&mirror, &server);
}

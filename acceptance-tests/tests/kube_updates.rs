//! `testnet_shared_state_pvc` metadata updates, its cost estimate, and the provider's `exec`
//! credential plugin, through the real terraform CLI.
//!
//! Label/annotation updates and the exec plugin run against the sandbox and, when built, the real
//! kube-apiserver v1.20.2 (`KubeServer::each`); what the claim carries is read back from the API
//! server itself, not from Terraform's state. The cost estimate is provider logic over class
//! names and the class as the cluster holds it, so the sandbox is enough.

use std::path::Path;

use acceptance_tests::servers::{KubeApi, KubeServer};
use acceptance_tests::{flatten, Mirror, Workdir};
use serde_json::{json, Value as Json};

fn header(server: &KubeServer, provider_extra: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = "{}"
{provider_extra}
}}
"#,
        server.kubeconfig.display()
    )
}

/// The claim's labels and annotations as the API server holds them.
fn claim_metadata(api: &KubeApi, ns: &str, name: &str) -> (Json, Json, String) {
    let o = api
        .get(&format!(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}"
        ))
        .unwrap_or_else(|| panic!("claim {ns}/{name} not on the server"));
    let m = &o["metadata"];
    (
        m["labels"].clone(),
        m["annotations"].clone(),
        m["uid"].as_str().unwrap_or_default().to_string(),
    )
}

fn metadata_config(server: &KubeServer, claim_attrs: &str) -> String {
    format!(
        r#"{}
resource "testnet_storage_class" "c" {{
  name        = "upd-ssd"
  provisioner = "example.com/none"
}}
resource "testnet_shared_state_pvc" "s" {{
  namespace          = "upd"
  create_namespace   = true
  name               = "state"
  storage            = "1Gi"
  storage_class_name = testnet_storage_class.c.name
{claim_attrs}
}}
"#,
        header(server, "")
    )
}

#[test]
fn labels_and_annotations_update_in_place() {
    let mirror = Mirror::testnet();
    KubeServer::each(|server| {
        let api = KubeApi::new(&server.kubeconfig);
        let wd = mirror.workdir();
        wd.write(
            "main.tf",
            &metadata_config(
                server,
                r#"  testnet = "alpha"
  role    = "genesis"
  labels  = { team = "infra", keep = "yes" }
  annotations = { owner = "me", drop = "x" }"#,
            ),
        );
        wd.init();
        wd.apply().ok();
        let (labels, annotations, uid) = claim_metadata(&api, "upd", "state");
        assert_eq!(labels["testnet.io/network"], "alpha", "{labels}");
        assert_eq!(labels["testnet.io/role"], "genesis", "{labels}");
        assert_eq!(labels["team"], "infra", "{labels}");
        assert_eq!(labels["keep"], "yes", "{labels}");
        assert_eq!(annotations["drop"], "x", "{annotations}");

        // Change one label, drop another, drop the role, change the network, change and drop
        // annotations: an in-place update of the same claim.
        wd.write(
            "main.tf",
            &metadata_config(
                server,
                r#"  testnet = "beta"
  labels  = { team = "core", added = "1" }
  annotations = { owner = "you" }"#,
            ),
        );
        let plan = wd.plan_json();
        assert_eq!(
            Workdir::planned_actions(&plan, "testnet_shared_state_pvc.s"),
            ["update"],
            "a metadata change must not replace the claim"
        );
        wd.apply().ok();
        let (labels, annotations, uid_after) = claim_metadata(&api, "upd", "state");
        assert_eq!(uid_after, uid, "the claim was recreated");
        assert_eq!(
            labels,
            json!({
                "testnet.io/network": "beta",
                "team": "core",
                "added": "1",
                "app.kubernetes.io/managed-by": "terraform-provider-testnet",
            }),
            "labels on {}",
            server.label
        );
        assert_eq!(annotations["owner"], "you", "{annotations}");
        assert!(annotations.get("drop").is_none(), "{annotations}");
        let s = wd
            .resource("testnet_shared_state_pvc.s")
            .expect("claim in state");
        assert!(s["role"].is_null(), "{s}");
        assert_eq!(s["labels"], json!({"team": "core", "added": "1"}), "{s}");
        wd.assert_no_changes();

        // Removing every user label and annotation removes them from the claim; ours stay.
        wd.write("main.tf", &metadata_config(server, r#"  testnet = "beta""#));
        wd.apply().ok();
        let (labels, annotations, _) = claim_metadata(&api, "upd", "state");
        assert_eq!(
            labels,
            json!({
                "testnet.io/network": "beta",
                "app.kubernetes.io/managed-by": "terraform-provider-testnet",
            }),
            "labels on {}",
            server.label
        );
        assert!(
            annotations.get("owner").is_none(),
            "annotation left behind: {annotations}"
        );
        wd.assert_no_changes();
        wd.destroy().ok();
    });
}

fn cost_config(server: &KubeServer, prices: &str) -> String {
    format!(
        r#"{}
resource "testnet_storage_class" "eu_ssd" {{
  name        = "europe-west1-ssd"
  provisioner = "example.com/none"
}}
resource "testnet_storage_class" "archive" {{
  name        = "archive-eu"
  provisioner = "example.com/none"
}}
resource "testnet_storage_class" "bulk" {{
  name  = "bulk"
  tier  = "standard"
  cloud = "gcp"
}}
resource "testnet_storage_class" "odd" {{
  name        = "odd"
  provisioner = "example.com/none"
}}
resource "testnet_shared_state_pvc" "ssd" {{
  namespace          = "cost"
  create_namespace   = true
  name               = "ssd"
  storage            = "10Gi"
  storage_class_name = testnet_storage_class.eu_ssd.name
}}
resource "testnet_shared_state_pvc" "archive" {{
  namespace          = "cost"
  create_namespace   = true
  name               = "archive"
  storage            = "500Mi"
  storage_class_name = testnet_storage_class.archive.name
}}
resource "testnet_shared_state_pvc" "bulk" {{
  namespace          = "cost"
  create_namespace   = true
  name               = "bulk"
  storage            = "1G"
  storage_class_name = testnet_storage_class.bulk.name
}}
resource "testnet_shared_state_pvc" "odd" {{
  namespace          = "cost"
  create_namespace   = true
  name               = "odd"
  storage            = "1Gi"
  storage_class_name = testnet_storage_class.odd.name
}}
output "total" {{
  value = sum([for c in [testnet_shared_state_pvc.ssd, testnet_shared_state_pvc.archive, testnet_shared_state_pvc.bulk] : c.estimated_monthly_cost_usd])
}}
"#,
        header(server, &format!("  storage_prices = {prices}"))
    )
}

fn planned_cost(plan: &Json, address: &str) -> (Json, bool) {
    let rc = plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in plan"));
    let c = &rc["change"];
    (
        c["after"]["estimated_monthly_cost_usd"].clone(),
        c["after_unknown"]["estimated_monthly_cost_usd"] == json!(true),
    )
}

fn cost(wd: &Workdir, address: &str) -> Json {
    wd.resource(address)
        .unwrap_or_else(|| panic!("{address} in state"))["estimated_monthly_cost_usd"]
        .clone()
}

#[test]
fn estimated_monthly_cost() {
    let mirror = Mirror::testnet();
    let server = KubeServer::sandbox();
    let wd = mirror.workdir();
    wd.write(
        "main.tf",
        &cost_config(&server, r#"{ "archive-eu" = 0.01 }"#),
    );
    wd.init();

    // Priced by name: known at plan time. Priced only by the class in the cluster (preset), which
    // this apply creates: known after apply.
    let plan = wd.plan_json();
    assert_eq!(
        planned_cost(&plan, "testnet_shared_state_pvc.ssd"),
        (json!(1.7), false),
        "10Gi of europe-west1-ssd at the default ssd price 0.17"
    );
    assert_eq!(
        planned_cost(&plan, "testnet_shared_state_pvc.archive"),
        (json!(0.004883), false),
        "500Mi = 0.48828125 GiB at the user's 0.01 for the exact class name"
    );
    assert_eq!(
        planned_cost(&plan, "testnet_shared_state_pvc.bulk").1,
        true,
        "a class created in this apply and priced by its preset is known after apply"
    );
    assert_eq!(planned_cost(&plan, "testnet_shared_state_pvc.odd").1, true);

    let run = wd.apply().ok();
    assert!(
        flatten(&run.output()).contains("No storage price for this claim's class"),
        "{}",
        run.output()
    );
    assert!(
        flatten(&run.output()).contains("\"odd\""),
        "{}",
        run.output()
    );
    assert_eq!(cost(&wd, "testnet_shared_state_pvc.ssd"), json!(1.7));
    assert_eq!(
        cost(&wd, "testnet_shared_state_pvc.archive"),
        json!(0.004883)
    );
    // 1G = 0.9313… GiB at the default standard price 0.04 (gce-pd pd-standard preset).
    assert_eq!(cost(&wd, "testnet_shared_state_pvc.bulk"), json!(0.037253));
    assert!(cost(&wd, "testnet_shared_state_pvc.odd").is_null());
    let total = wd.show_json()["values"]["outputs"]["total"]["value"].clone();
    assert!(
        (total.as_f64().unwrap_or(f64::NAN) - (1.7 + 0.004883 + 0.037253)).abs() < 1e-9,
        "{total}"
    );
    // Now the class exists, every estimate is known at plan time and nothing changes.
    let plan = wd.plan();
    assert_eq!(plan.code, 0, "{}", plan.output());
    assert!(
        flatten(&plan.output()).contains("No storage price for this claim's class"),
        "the unpriced claim keeps warning: {}",
        plan.output()
    );

    // The user's prices override the defaults and price the odd class; the estimates follow
    // without touching the claims.
    wd.write(
        "main.tf",
        &cost_config(&server, r#"{ "archive-eu" = 0.01, ssd = 0.2, odd = 0.5 }"#),
    );
    let run = wd.apply().ok();
    assert!(
        !flatten(&run.output()).contains("No storage price"),
        "{}",
        run.output()
    );
    assert_eq!(cost(&wd, "testnet_shared_state_pvc.ssd"), json!(2));
    assert_eq!(cost(&wd, "testnet_shared_state_pvc.odd"), json!(0.5));
    wd.assert_no_changes();

    // Bad prices are refused at plan time, naming the entry.
    wd.write("main.tf", &cost_config(&server, r#"{ ssd = -1 }"#));
    wd.plan()
        .fails_with("storage_prices")
        .fails_with("price -1 for \"ssd\" is not a price");
    wd.write(
        "main.tf",
        &cost_config(&server, r#"{ "archive-eu" = 0.01 }"#),
    );
    wd.destroy().ok();
    drop(server);
}

fn exec_config(server: &KubeServer, script: &Path, token: &str) -> String {
    format!(
        r#"{}
resource "testnet_storage_class" "c" {{
  name        = "via-exec"
  provisioner = "example.com/none"
}}
"#,
        header(
            server,
            &format!(
                r#"  exec {{
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "{}"
    args        = ["--cluster", "test"]
    env         = {{ EXEC_TOKEN = "{token}" }}
  }}"#,
                script.display()
            )
        )
    )
}

#[test]
fn exec_credential_plugin() {
    use std::os::unix::fs::PermissionsExt as _;
    let mirror = Mirror::testnet();
    KubeServer::each(|server| {
        let api = KubeApi::new(&server.kubeconfig);
        let scripts = tempfile::tempdir().expect("temp dir");
        // A plugin like `aws eks get-token`: ExecCredential JSON on stdout, token from its env.
        let plugin = scripts.path().join("get-token");
        std::fs::write(
            &plugin,
            "#!/bin/sh\n[ \"$1 $2\" = \"--cluster test\" ] || { echo \"bad args: $*\" >&2; exit 2; }\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}\\n' \"$EXEC_TOKEN\"\n",
        )
        .expect("write plugin");
        let failing = scripts.path().join("not-logged-in");
        std::fs::write(
            &failing,
            "#!/bin/sh\necho 'error: not logged in, run the login command' >&2\nexit 1\n",
        )
        .expect("write plugin");
        for p in [&plugin, &failing] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }

        // The kubeconfig's own token is replaced by the plugin's: only the plugin authenticates.
        let good = mirror.workdir();
        good.write("main.tf", &exec_config(server, &plugin, &api.token));
        good.init();
        good.apply().ok();
        assert!(
            api.get("/apis/storage.k8s.io/v1/storageclasses/via-exec")
                .is_some(),
            "class created through the exec plugin's token on {}",
            server.label
        );

        let wrong = mirror.workdir();
        wrong.write("main.tf", &exec_config(server, &plugin, "not-the-token"));
        wrong.init();
        wrong
            .apply()
            .fails_with("Kubernetes credentials rejected")
            .fails_with("401 Unauthorized");

        let broken = mirror.workdir();
        broken.write("main.tf", &exec_config(server, &failing, "x"));
        broken.init();
        broken
            .apply()
            .fails_with("Kubernetes credential plugin failed")
            .fails_with("exit status: 1: error: not logged in, run the login command");
        // kube's own message would print the plugin's environment, where secrets live.
        let out = broken.apply().output();
        assert!(
            !out.contains("EXEC_TOKEN"),
            "plugin environment leaked: {out}"
        );

        good.destroy().ok();
    });
}

//! One network across three clusters through the real terraform CLI: the provider's `cluster`
//! blocks, `testnet_network_lock` with `clusters` (contention, the loser told who holds it, an
//! unreachable region), `testnet_network_state` (copies in every cluster, history, fencing, hand
//! edits and `repair_from`, a newer schema refused, the data source) and the bad-input table.
//!
//! Three local sandboxes stand for three regions; the domain crates' own tests cover the same
//! behaviour against real kube-apiservers.

use std::sync::atomic::{AtomicU32, Ordering};

use acceptance_tests::servers::{KubeApi, KubeServer};
use acceptance_tests::{flatten, Mirror, Workdir};
use serde_json::{json, Value};

const REGIONS: [&str; 3] = ["us", "eu", "asia"];

fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Three sandboxes, us, eu and asia.
fn regions() -> Vec<KubeServer> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(KubeServer::sandbox)).collect();
        hs.into_iter()
            .map(|h| h.join().expect("start sandbox"))
            .collect()
    })
}

/// A provider block whose own connection is `us` and with one `cluster` block per region: us and
/// eu by kubeconfig, asia by `host`, `token` and `cluster_ca_certificate` (the attributes a
/// Terraform Cloud run without kubeconfig files uses).
fn provider(servers: &[KubeServer]) -> String {
    let paths: Vec<&std::path::Path> = servers.iter().map(|s| s.kubeconfig.as_path()).collect();
    provider_for(&paths)
}

fn provider_for(kubeconfigs: &[&std::path::Path]) -> String {
    let mut p = format!(
        "terraform {{\n  required_providers {{\n    testnet = {{ source = \"testnet-infra/testnet\" }}\n  }}\n}}\nprovider \"testnet\" {{\n  kubeconfig_path = {:?}\n",
        kubeconfigs[0].display().to_string()
    );
    for (k, n) in kubeconfigs.iter().zip(REGIONS) {
        if n == "asia" {
            let (host, token, ca) = explicit(k);
            p.push_str(&format!(
                "  cluster {{\n    name                   = \"{n}\"\n    host                   = {host:?}\n    token                  = {token:?}\n    cluster_ca_certificate = {ca:?}\n  }}\n"
            ));
        } else {
            p.push_str(&format!(
                "  cluster {{\n    name            = \"{n}\"\n    kubeconfig_path = {:?}\n  }}\n",
                k.display().to_string()
            ));
        }
    }
    p.push_str("}\n");
    p
}

/// (server URL, token, CA PEM) from a kubeconfig the sandbox wrote.
fn explicit(kubeconfig: &std::path::Path) -> (String, String, String) {
    use base64::Engine as _;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).expect("kubeconfig"))
            .expect("YAML");
    let cluster = &doc["clusters"][0]["cluster"];
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            cluster["certificate-authority-data"]
                .as_str()
                .expect("CA")
                .trim(),
        )
        .expect("base64");
    (
        cluster["server"].as_str().expect("server").to_string(),
        doc["users"][0]["user"]["token"]
            .as_str()
            .expect("token")
            .to_string(),
        String::from_utf8(ca).expect("PEM"),
    )
}

fn workdir(mirror: &Mirror, servers: &[KubeServer], body: &str) -> Workdir {
    let wd = mirror.workdir();
    wd.write("main.tf", &format!("{}{body}", provider(servers)));
    wd.init();
    wd
}

fn lock_data(name: &str) -> String {
    format!(
        r#"data "testnet_network_lock" "o" {{
  namespace = "default"
  name      = "{name}"
  clusters  = ["us", "eu", "asia"]
}}
output "holder" {{ value = data.testnet_network_lock.o.holder }}
output "held" {{ value = data.testnet_network_lock.o.held }}
output "token" {{ value = data.testnet_network_lock.o.fencing_token }}
"#
    )
}

fn outputs(wd: &Workdir) -> Value {
    let r = wd.tf(&["output", "-json"]).ok();
    serde_json::from_str(&r.stdout).expect("output json")
}

fn ephemeral(name: &str, holder: &str) -> String {
    ephemeral_running(name, holder, "echo $TOKEN")
}

/// An ephemeral lock over the three regions and a provisioner running `command` while it is held
/// (the provisioner uses the lock's token, so the lock stays open until it finishes).
fn ephemeral_running(name: &str, holder: &str, command: &str) -> String {
    format!(
        r#"ephemeral "testnet_network_lock" "l" {{
  namespace = "default"
  name      = "{name}"
  holder    = "{holder}"
  clusters  = ["us", "eu", "asia"]
}}
resource "terraform_data" "work" {{
  provisioner "local-exec" {{
    command     = "{command}"
    environment = {{ TOKEN = ephemeral.testnet_network_lock.l.fencing_token }}
  }}
}}
"#
    )
}

#[test]
fn lock_over_three_clusters() {
    let mirror = Mirror::testnet();
    let servers = regions();
    let name = unique("net");
    let alice = workdir(
        &mirror,
        &servers,
        &format!(
            r#"resource "testnet_network_lock" "l" {{
  namespace = "default"
  name      = "{name}"
  holder    = "alice"
  clusters  = ["us", "eu", "asia"]
}}
"#
        ),
    );
    alice.apply().ok();
    let st = alice
        .resource("testnet_network_lock.l")
        .expect("lock in state");
    assert_eq!(st["fencing_token"], "asia=0,eu=0,us=0");
    alice.assert_no_changes();
    // Every region's Lease names alice.
    for s in &servers {
        let lease = KubeApi::new(&s.kubeconfig)
            .get(&format!(
                "/apis/coordination.k8s.io/v1/namespaces/default/leases/{name}"
            ))
            .expect("lease");
        assert_eq!(lease["spec"]["holderIdentity"], "alice");
    }
    let obs = workdir(&mirror, &servers, &lock_data(&name));
    obs.apply().ok();
    let o = outputs(&obs);
    assert_eq!(
        (o["holder"]["value"].as_str(), o["held"]["value"].as_bool()),
        (Some("alice"), Some(true))
    );
    assert_eq!(o["token"]["value"], "asia=0,eu=0,us=0");

    // Bob is told who holds it, where, and when to retry.
    let bob = workdir(&mirror, &servers, &ephemeral(&name, "bob"));
    let r = bob.apply().fails_with("Network lock held by someone else");
    let flat = flatten(&r.output());
    assert!(
        flat.contains(&format!(
            "The lock default/{name} in cluster \"asia\" is held by \"alice\""
        )),
        "{flat}"
    );
    assert!(flat.contains("Retry after 5 minute(s)"), "{flat}");

    // Alice's Lease in eu lapses (its renewTime aged by hand, as if her runs had stopped): she no
    // longer holds the lock, although asia and us are still hers; her next plan re-acquires it.
    let eu = KubeApi::new(&servers[1].kubeconfig);
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/default/leases/{name}");
    let mut lease = eu.get(&path).expect("eu lease");
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    let (code, body) = eu.put(&path, &lease);
    assert_eq!(code, 200, "{body}");
    obs.apply().ok();
    assert_eq!(
        outputs(&obs)["held"]["value"],
        false,
        "lapsed in eu: not held"
    );
    let plan = alice.plan_json();
    assert_eq!(
        Workdir::planned_actions(&plan, "testnet_network_lock.l"),
        vec!["create"]
    );
    alice.apply().ok();
    obs.apply().ok();
    assert_eq!(outputs(&obs)["held"]["value"], true);

    // Released everywhere on destroy; then bob gets it, with a larger token in every cluster.
    alice.destroy().ok();
    bob.apply().ok();
    obs.apply().ok();
    let o = outputs(&obs);
    assert_eq!(
        o["held"]["value"], false,
        "the ephemeral lock is released after bob's apply"
    );
    // Terraform opens an ephemeral resource twice, in plan and in apply: two changes of holder.
    assert_eq!(o["token"]["value"], "asia=2,eu=2,us=2");
}

/// Two applies started together, five times: at no instant do both hold the lock (each records
/// when its work under the lock started and ended), and an apply that fails names the holder.
#[test]
fn two_contenders_started_together() {
    let mirror = Mirror::testnet();
    let servers = regions();
    let log = tempfile::tempdir().expect("tempdir");
    for round in 0..5 {
        let name = unique("race");
        let run = |who: &str| {
            let f = log.path().join(format!("{round}-{who}"));
            let work = format!(
                "echo start $(date +%s%N) $TOKEN > {f}; sleep 1; echo end $(date +%s%N) >> {f}",
                f = f.display()
            );
            workdir(&mirror, &servers, &ephemeral_running(&name, who, &work))
        };
        let (a, b) = (run("alice"), run("bob"));
        let (ra, rb) = std::thread::scope(|s| {
            let (ha, hb) = (s.spawn(|| a.apply()), s.spawn(|| b.apply()));
            (ha.join().expect("a"), hb.join().expect("b"))
        });
        assert!(
            ra.code == 0 || rb.code == 0,
            "round {round}: someone must get the lock:\n{}\n{}",
            ra.output(),
            rb.output()
        );
        for (run, who) in [(&ra, "alice"), (&rb, "bob")] {
            if run.code != 0 {
                let rival = if who == "alice" { "bob" } else { "alice" };
                let flat = flatten(&run.output());
                assert!(
                    flat.contains(&format!("is held by \"{rival}\"")),
                    "round {round}: {flat}"
                );
            }
        }
        let span = |who: &str| {
            std::fs::read_to_string(log.path().join(format!("{round}-{who}")))
                .ok()
                .map(|t| {
                    let n: Vec<u128> = t
                        .lines()
                        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
                        .collect();
                    (n[0], n[1])
                })
        };
        for (run, who) in [(&ra, "alice"), (&rb, "bob")] {
            assert_eq!(
                run.code == 0,
                span(who).is_some(),
                "round {round}: {who} worked under the lock iff its apply succeeded"
            );
        }
        if let (Some(x), Some(y)) = (span("alice"), span("bob")) {
            assert!(
                x.1 <= y.0 || y.1 <= x.0,
                "round {round}: both held the lock at once: {x:?} {y:?}"
            );
        }
    }
}

#[test]
fn unreachable_region_is_named() {
    let mirror = Mirror::testnet();
    let mut servers = regions();
    let name = unique("down");
    // Kubeconfigs copied out, so they outlive eu's server.
    let keep = tempfile::tempdir().expect("tempdir");
    let paths: Vec<std::path::PathBuf> = servers
        .iter()
        .zip(REGIONS)
        .map(|(s, n)| {
            let p = keep.path().join(n);
            std::fs::copy(&s.kubeconfig, &p).expect("copy kubeconfig");
            p
        })
        .collect();
    let wd = mirror.workdir();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    wd.write(
        "main.tf",
        &format!("{}{}", provider_for(&refs), ephemeral(&name, "alice")),
    );
    wd.init();
    // eu goes down after the configuration was written.
    let eu = servers.remove(1);
    drop(eu);
    let r = wd.apply().fails_with("(cluster \"eu\")");
    let flat = flatten(&r.output());
    assert!(
        flat.contains("Kubernetes") && flat.contains("Cluster \"eu\":"),
        "{flat}"
    );
    // asia, taken before eu, was given back.
    let asia = KubeApi::new(&servers[1].kubeconfig)
        .get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/{name}"
        ))
        .expect("asia lease exists");
    assert!(asia["spec"]["holderIdentity"].is_null(), "{asia}");
}

fn state_config(network: &str, version: &str, token: &str, extra: &str) -> String {
    format!(
        r#"resource "testnet_network_state" "s" {{
  name          = "{network}"
  clusters      = ["us", "eu", "asia"]
  fencing_token = "{token}"
  components = {{
    node-us = {{ cluster = "us", namespace = "{network}", version = "{version}" }}
    node-eu = {{ cluster = "eu", namespace = "{network}", version = "v1", replicas = 2 }}
  }}
  {extra}
}}
"#
    )
}

fn copy_in(s: &KubeServer, network: &str) -> (Value, Value) {
    let cm = KubeApi::new(&s.kubeconfig)
        .get(&format!(
            "/api/v1/namespaces/default/configmaps/{network}-network-state"
        ))
        .expect("configmap");
    let doc: Value = serde_json::from_str(cm["data"]["network-state.json"].as_str().expect("data"))
        .expect("json");
    (cm, doc)
}

#[test]
fn network_state_in_three_clusters() {
    let mirror = Mirror::testnet();
    let servers = regions();
    let network = unique("ghost");
    let mut wd = workdir(
        &mirror,
        &servers,
        &state_config(&network, "v1", "asia=3,eu=3,us=3", ""),
    );
    wd.env("TFC_RUN_ID", "run-abc");
    wd.apply().ok();
    wd.assert_no_changes();
    let st = wd.resource("testnet_network_state.s").expect("state");
    assert_eq!(st["schema_version"], 3);
    assert_eq!(st["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(st["history"][0]["tfc_run_id"], "run-abc");
    assert_eq!(st["history"][0]["fencing_token"], "asia=3,eu=3,us=3");
    assert_eq!(
        st["history"][0]["changes"],
        json!(["+ node-eu", "+ node-us"])
    );
    assert!(st["fencing_token"].is_null(), "write-only: never in state");
    let (_, first) = copy_in(&servers[0], &network);
    for s in &servers {
        let (cm, doc) = copy_in(s, &network);
        assert_eq!(doc, first, "the same document in every cluster");
        assert_eq!(
            cm["metadata"]["labels"]["testnet.io/network"],
            network.as_str()
        );
        assert_eq!(doc["components"]["node-eu"]["replicas"], 2);
    }

    // A change is recorded with what changed.
    wd.write(
        "main.tf",
        &format!(
            "{}{}",
            provider(&servers),
            state_config(&network, "v2", "asia=3,eu=3,us=3", "")
        ),
    );
    wd.apply().ok();
    let st = wd.resource("testnet_network_state.s").expect("state");
    assert_eq!(
        st["history"][1]["changes"],
        json!(["~ node-us.version: \"v1\" -> \"v2\""])
    );

    // A stale token is refused, naming who wrote last.
    wd.write(
        "main.tf",
        &format!(
            "{}{}",
            provider(&servers),
            state_config(&network, "v3", "asia=3,eu=2,us=3", "")
        ),
    );
    let r = wd
        .apply()
        .fails_with("Network state write refused by fencing");
    let flat = flatten(&r.output());
    assert!(
        flat.contains("(cluster \"eu\": 2 < 3), last written by"),
        "{flat}"
    );

    // Someone edits eu's copy by hand: the apply fails and says how; repair_from mends it.
    let api = KubeApi::new(&servers[1].kubeconfig);
    let (mut cm, mut doc) = copy_in(&servers[1], &network);
    doc["components"]["node-us"]["version"] = json!("hand-edited");
    cm["data"]["network-state.json"] = json!(doc.to_string());
    let (code, body) = api.put(
        &format!("/api/v1/namespaces/default/configmaps/{network}-network-state"),
        &cm,
    );
    assert_eq!(code, 200, "{body}");
    wd.write(
        "main.tf",
        &format!(
            "{}{}",
            provider(&servers),
            state_config(&network, "v3", "asia=3,eu=3,us=3", "")
        ),
    );
    let r = wd
        .apply()
        .fails_with("Network state copies differ between clusters");
    let flat = flatten(&r.output());
    assert!(
        flat.contains("cluster \"eu\" differs from cluster \"asia\""),
        "{flat}"
    );
    assert!(
        flat.contains("node-us is {\"cluster\":\"us\",\"namespace\":"),
        "{flat}"
    );
    assert!(
        flat.contains("\"version\":\"hand-edited\"} there"),
        "{flat}"
    );
    wd.write(
        "main.tf",
        &format!(
            "{}{}",
            provider(&servers),
            state_config(&network, "v3", "asia=3,eu=3,us=3", "repair_from = \"us\"")
        ),
    );
    wd.apply().ok();
    let (_, us) = copy_in(&servers[0], &network);
    for s in &servers {
        assert_eq!(copy_in(s, &network).1, us);
    }
    assert_eq!(us["components"]["node-us"]["version"], "v3");
    assert_eq!(us["history"].as_array().map(Vec::len), Some(3));

    // The data source reads one cluster's copy and its history.
    let reader = workdir(
        &mirror,
        &servers,
        &format!(
            r#"data "testnet_network_state" "d" {{
  name    = "{network}"
  cluster = "eu"
}}
output "version" {{ value = data.testnet_network_state.d.components["node-us"].version }}
output "entries" {{ value = length(data.testnet_network_state.d.history) }}
output "by" {{ value = data.testnet_network_state.d.updated_by }}
"#
        ),
    );
    reader.apply().ok();
    let o = outputs(&reader);
    assert_eq!(o["version"]["value"], "v3");
    assert_eq!(o["entries"]["value"], 3);
    assert!(o["by"]["value"].as_str().is_some_and(|b| !b.is_empty()));

    // Import adopts the document in a fresh working directory: the plan is then empty.
    let adopter = workdir(
        &mirror,
        &servers,
        &state_config(&network, "v3", "asia=3,eu=3,us=3", ""),
    );
    adopter
        .tf(&[
            "import",
            "-no-color",
            "testnet_network_state.s",
            &format!("default/{network}@us,eu,asia"),
        ])
        .ok();
    adopter.assert_no_changes();
    adopter.tf(&["state", "rm", "testnet_network_state.s"]).ok();

    // Destroy removes every copy.
    wd.destroy().ok();
    for s in &servers {
        assert!(KubeApi::new(&s.kubeconfig)
            .get(&format!(
                "/api/v1/namespaces/default/configmaps/{network}-network-state"
            ))
            .is_none());
    }
}

#[test]
fn newer_schema_is_refused_through_terraform() {
    let mirror = Mirror::testnet();
    let servers = regions();
    let network = unique("newer");
    let newer = json!({"schema_version": 9, "network": network}).to_string();
    for s in &servers {
        let (code, body) = KubeApi::new(&s.kubeconfig).post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("{network}-network-state")}, "data": {"network-state.json": newer}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    let wd = workdir(&mirror, &servers, &state_config(&network, "v1", "1", ""));
    let r = wd.apply().fails_with("Network state document unreadable");
    assert!(flatten(&r.output()).contains("schema version 9, newer than the 3 this provider knows"));
    assert_eq!(
        copy_in(&servers[0], &network).1["schema_version"],
        9,
        "left as it was"
    );
}

/// Each row: a configuration body and the diagnostic texts it must produce at plan time.
#[test]
fn bad_input_table() {
    let mirror = Mirror::testnet();
    let servers = regions();
    let big = "x".repeat(1_100_000);
    let rows: Vec<(String, Vec<&str>)> = vec![
        (
            r#"resource "testnet_network_lock" "l" {
  namespace = "default"
  name      = "x"
  clusters  = ["us", "mars"]
}"#
            .into(),
            vec![
                "Unknown cluster name",
                "\"mars\" is not configured",
                "Allowed: the names of the provider's `cluster` blocks (\"asia\", \"eu\", \"us\")",
            ],
        ),
        (
            r#"ephemeral "testnet_network_lock" "l" {
  namespace = "default"
  name      = "x"
  clusters  = ["us", "eu", "us"]
}"#
            .into(),
            vec!["Invalid value for clusters", "\"us\" is listed twice"],
        ),
        (
            r#"data "testnet_network_lock" "l" {
  namespace = "default"
  name      = "x"
  clusters  = []
}"#
            .into(),
            vec!["Invalid value for clusters", "The list is empty"],
        ),
        (
            r#"resource "testnet_network_state" "s" {
  name       = "x"
  clusters   = ["us"]
  components = { node = "v1" }
}"#
            .into(),
            vec![
                "Invalid value for components",
                "components[\"node\"] is a string, not an object",
            ],
        ),
        (
            format!(
                r#"resource "testnet_network_state" "s" {{
  name       = "x"
  clusters   = ["us"]
  components = {{ node = {{ blob = "{big}" }} }}
}}"#
            ),
            vec![
                "Network state document too large",
                "more than a ConfigMap holds (1048576 bytes, 1 MiB)",
            ],
        ),
        (
            r#"resource "testnet_network_state" "s" {
  name       = "x"
  clusters   = ["us"]
  components = { node = { admin_password = "hunter2" } }
}"#
            .into(),
            vec!["Secrets in the network state", "node.admin_password"],
        ),
        (
            r#"resource "testnet_network_state" "s" {
  name        = "x"
  clusters    = ["us", "eu"]
  repair_from = "asia"
  components  = {}
}"#
            .into(),
            vec![
                "Invalid value for repair_from",
                "\"asia\" is not in clusters (\"us\", \"eu\")",
            ],
        ),
        (
            r#"resource "testnet_network_state" "s" {
  name       = "x"
  clusters   = ["us", "atlantis"]
  components = {}
}"#
            .into(),
            vec!["Unknown cluster name", "\"atlantis\" is not configured"],
        ),
        (
            r#"data "testnet_network_state" "d" {
  name    = "x"
  cluster = "moon"
}"#
            .into(),
            vec!["Unknown cluster name", "\"moon\" is not configured"],
        ),
    ];
    for (body, wanted) in rows {
        let wd = workdir(&mirror, &servers, &body);
        let r = wd.plan();
        assert_eq!(r.code, 1, "plan must fail for:\n{body}\n{}", r.output());
        let flat = flatten(&r.output());
        for w in wanted {
            assert!(
                flat.contains(&flatten(w)),
                "{w:?} missing for:\n{body}\n{flat}"
            );
        }
    }
    // Two cluster blocks with one name.
    let wd = mirror.workdir();
    let dup = provider(&servers).replace("name            = \"eu\"", "name            = \"us\"");
    wd.write("main.tf", &format!("{dup}resource \"testnet_network_lock\" \"l\" {{\n  namespace = \"default\"\n  name = \"x\"\n}}\n"));
    wd.init();
    wd.plan().fails_with("Duplicate cluster name");
}

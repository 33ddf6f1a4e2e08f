//! `testnet_network_lock` through the real terraform CLI: the ephemeral lock held only while an
//! apply runs, the managed lock's lifecycle, contention between holders, takeover of an expired
//! lease with `wait_timeout` (fencing token grows), plan-time validation, and ten concurrent
//! applies never holding the lock at once.
//!
//! Every scenario runs against the local sandbox and, when the build cache of the real
//! kube-apiserver exists (`scripts/kube-real build`) and `TESTNET_KUBE_REAL` is not `0`, against
//! the real server too.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use acceptance_tests::servers::KubeServer as Server;
use acceptance_tests::{Mirror, Workdir};

/// Runs `body` against each available server.
fn each_server(body: impl Fn(&Server)) {
    Server::each(body)
}

/// A lease name unique to this process and call, so reruns against one server never collide.
fn lease_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn provider_block(s: &Server) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    testnet = {{ source = \"testnet-infra/testnet\" }}\n  }}\n}}\nprovider \"testnet\" {{\n  kubeconfig_path = {:?}\n}}\n",
        s.kubeconfig.display().to_string()
    )
}

fn workdir(mirror: &Mirror, s: &Server, body: &str) -> Workdir {
    let wd = mirror.workdir();
    wd.write("main.tf", &format!("{}{}", provider_block(s), body));
    wd.init();
    wd
}

/// What the data source says about the lock: (holder, held, fencing_token).
fn observe(mirror: &Mirror, s: &Server, name: &str) -> (Option<String>, bool, i64) {
    let wd = workdir(
        mirror,
        s,
        &format!(
            r#"data "testnet_network_lock" "o" {{
  namespace = "default"
  name      = "{name}"
}}
output "holder" {{ value = data.testnet_network_lock.o.holder }}
output "held" {{ value = data.testnet_network_lock.o.held }}
output "token" {{ value = data.testnet_network_lock.o.fencing_token }}
"#
        ),
    );
    wd.apply().ok();
    let r = wd.tf(&["output", "-json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&r.stdout).expect("output json");
    (
        out["holder"]["value"].as_str().map(String::from),
        out["held"]["value"].as_bool().expect("held is a bool"),
        out["token"]["value"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("token is a number in a string"),
    )
}

/// An ephemeral lock plus a `terraform_data` whose provisioner receives the lock's values (a
/// provisioner may use ephemeral values) and runs `script` while the lock is open.
fn ephemeral_config(name: &str, holder: &str, extra: &str, script: &str) -> String {
    format!(
        r#"ephemeral "testnet_network_lock" "l" {{
  namespace = "default"
  name      = "{name}"
  holder    = "{holder}"
  {extra}
}}
resource "terraform_data" "work" {{
  provisioner "local-exec" {{
    command = <<-EOT
      {script}
    EOT
    environment = {{
      HOLDER = ephemeral.testnet_network_lock.l.holder
      TOKEN  = ephemeral.testnet_network_lock.l.fencing_token
    }}
  }}
}}
"#
    )
}

fn wait_for(path: &Path) {
    for _ in 0..1200 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn ephemeral_lock_is_held_during_the_apply_and_released_after() {
    let mirror = Mirror::testnet();
    each_server(|s| {
        let name = lease_name("eph");
        let sync = tempfile::tempdir().expect("tempdir");
        let (started, done, seen) = (
            sync.path().join("started"),
            sync.path().join("done"),
            sync.path().join("seen"),
        );
        let script = format!(
            "echo \"$HOLDER $TOKEN\" > {seen}; touch {started}; i=0; while [ ! -e {done} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done",
            seen = seen.display(),
            started = started.display(),
            done = done.display()
        );
        let wd = workdir(
            &mirror,
            s,
            &ephemeral_config(&name, "eph-runner", "", &script),
        );
        let apply = std::thread::scope(|sc| {
            let h = sc.spawn(|| wd.apply());
            wait_for(&started);
            let during = observe(&mirror, s, &name);
            std::fs::write(&done, "").expect("signal done");
            let run = h.join().expect("apply thread");
            (during, run)
        });
        let ((holder, held, token), run) = apply;
        run.ok();
        assert_eq!(
            holder.as_deref(),
            Some("eph-runner"),
            "[{}] held by the ephemeral lock during apply",
            s.label
        );
        assert!(held, "[{}] lease live during apply", s.label);
        let seen = std::fs::read_to_string(&seen).expect("provisioner wrote what it saw");
        assert_eq!(
            seen.trim(),
            format!("eph-runner {token}"),
            "[{}] the provisioner got the lock's holder and token",
            s.label
        );
        let (holder, held, after_token) = observe(&mirror, s, &name);
        assert_eq!(holder, None, "[{}] released when the apply ended", s.label);
        assert!(!held, "[{}]", s.label);
        assert_eq!(
            after_token, token,
            "[{}] release keeps the fencing token",
            s.label
        );
    });
}

#[test]
fn managed_lock_lifecycle_and_contention() {
    let mirror = Mirror::testnet();
    each_server(|s| {
        let name = lease_name("managed");
        let alice = workdir(
            &mirror,
            s,
            &format!(
                r#"resource "testnet_network_lock" "l" {{
  namespace = "default"
  name      = "{name}"
  holder    = "alice"
}}
"#
            ),
        );
        alice.apply().ok();
        let st = alice
            .resource("testnet_network_lock.l")
            .expect("lock in state");
        assert_eq!(st["holder"], "alice");
        assert_eq!(st["lease_duration_seconds"], 300);
        for k in ["acquired_at", "renewed_at", "expires_at"] {
            let v = st[k].as_str().unwrap_or_default();
            assert!(
                v.contains('T') && v.ends_with('Z'),
                "[{}] {k} is RFC 3339: {v:?}",
                s.label
            );
        }
        alice.assert_no_changes();
        let (holder, held, token) = observe(&mirror, s, &name);
        assert_eq!(
            (holder.as_deref(), held),
            (Some("alice"), true),
            "[{}]",
            s.label
        );
        assert_eq!(
            st["fencing_token"].as_str(),
            Some(token.to_string().as_str()),
            "[{}]",
            s.label
        );

        let bob = workdir(&mirror, s, &ephemeral_config(&name, "bob", "", "true"));
        let r = bob.apply().fails_with("Network lock held by someone else");
        let flat = acceptance_tests::flatten(&r.output());
        assert!(
            flat.contains("held by \"alice\""),
            "[{}] names the holder: {flat}",
            s.label
        );
        assert!(
            flat.contains("Retry after 5 minute(s)"),
            "[{}] says when to retry: {flat}",
            s.label
        );
        assert!(
            flat.contains(&format!(
                "acquired at {}",
                st["acquired_at"].as_str().unwrap_or("?")
            )),
            "[{}] acquired-at: {flat}",
            s.label
        );
        assert!(
            flat.contains("expires at"),
            "[{}] expires-at: {flat}",
            s.label
        );

        // Changing the duration renews in place with the new duration.
        alice.write("main.tf", &format!("{}resource \"testnet_network_lock\" \"l\" {{\n  namespace = \"default\"\n  name = \"{name}\"\n  holder = \"alice\"\n  lease_duration_seconds = 600\n}}\n", provider_block(s)));
        let plan = alice.plan_json();
        assert_eq!(
            Workdir::planned_actions(&plan, "testnet_network_lock.l"),
            vec!["update"],
            "[{}]",
            s.label
        );
        alice.apply().ok();
        let st2 = alice
            .resource("testnet_network_lock.l")
            .expect("lock in state");
        assert_eq!(st2["lease_duration_seconds"], 600);
        assert_eq!(
            st2["fencing_token"], st["fencing_token"],
            "[{}] renewal is not a change of holder",
            s.label
        );
        alice.assert_no_changes();

        alice.destroy().ok();
        let (holder, held, _) = observe(&mirror, s, &name);
        assert_eq!(
            (holder, held),
            (None, false),
            "[{}] destroy releases",
            s.label
        );
    });
}

#[test]
fn wait_timeout_takes_over_an_expired_lease_with_a_larger_fencing_token() {
    let mirror = Mirror::testnet();
    each_server(|s| {
        let name = lease_name("takeover");
        let alice = workdir(
            &mirror,
            s,
            &format!(
                r#"resource "testnet_network_lock" "l" {{
  namespace              = "default"
  name                   = "{name}"
  holder                 = "alice"
  lease_duration_seconds = 3
}}
"#
            ),
        );
        alice.apply().ok();
        let t0: i64 = alice.resource("testnet_network_lock.l").expect("state")["fencing_token"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("token");
        let out = tempfile::tempdir().expect("tempdir");
        let seen = out.path().join("seen");
        let bob = workdir(
            &mirror,
            s,
            &ephemeral_config(
                &name,
                "bob",
                "wait_timeout = \"90s\"",
                &format!("echo \"$HOLDER $TOKEN\" > {}", seen.display()),
            ),
        );
        bob.apply().ok();
        let seen = std::fs::read_to_string(&seen).expect("provisioner ran under bob's lock");
        let (who, token) = seen.trim().split_once(' ').expect("holder and token");
        assert_eq!(who, "bob", "[{}]", s.label);
        let token: i64 = token.parse().expect("token is a number");
        assert!(
            token > t0,
            "[{}] fencing token grew on takeover: {t0} -> {token}",
            s.label
        );
        // Alice's lock was taken over: her next plan re-creates it.
        let plan = alice.plan_json();
        assert_eq!(
            Workdir::planned_actions(&plan, "testnet_network_lock.l"),
            vec!["create"],
            "[{}]",
            s.label
        );
    });
}

#[test]
fn zero_lease_duration_is_a_plan_time_error() {
    let mirror = Mirror::testnet();
    let wd = mirror.workdir();
    // No server needed: validation happens before anything is contacted.
    wd.write(
        "main.tf",
        r#"terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}
provider "testnet" {
  kubeconfig_path = "/nonexistent/kubeconfig"
}
resource "testnet_network_lock" "l" {
  namespace              = "default"
  name                   = "zero"
  lease_duration_seconds = 0
}
ephemeral "testnet_network_lock" "e" {
  namespace    = "default"
  name         = "zero"
  wait_timeout = "2 minutes"
}
"#,
    );
    wd.init();
    let r = wd
        .plan()
        .fails_with("Invalid value for lease_duration_seconds");
    let flat = acceptance_tests::flatten(&r.output());
    assert!(flat.contains("Allowed: a whole number from 1 to"), "{flat}");
    assert!(flat.contains("Invalid value for wait_timeout"), "{flat}");
}

#[test]
fn ten_concurrent_applies_never_hold_the_lock_at_once() {
    let mirror = Mirror::testnet();
    each_server(|s| {
        let name = lease_name("ten");
        let log = tempfile::tempdir().expect("tempdir");
        let wds: Vec<Workdir> = (0..10)
            .map(|i| {
                let f = log.path().join(format!("run{i}"));
                let script = format!(
                    "echo \"start $(date +%s%N) $TOKEN\" > {f}; sleep 0.5; echo \"end $(date +%s%N)\" >> {f}",
                    f = f.display()
                );
                workdir(&mirror, s, &ephemeral_config(&name, &format!("runner-{i}"), "wait_timeout = \"10m\"", &script))
            })
            .collect();
        std::thread::scope(|sc| {
            let hs: Vec<_> = wds.iter().map(|wd| sc.spawn(move || wd.apply())).collect();
            for h in hs {
                h.join().expect("apply thread").ok();
            }
        });
        let mut spans: Vec<(u128, u128, i64)> = (0..10)
            .map(|i| {
                let text =
                    std::fs::read_to_string(log.path().join(format!("run{i}"))).expect("run log");
                let mut start = None;
                let mut end = None;
                let mut token = None;
                for l in text.lines() {
                    let parts: Vec<&str> = l.split_whitespace().collect();
                    match parts.as_slice() {
                        ["start", t, tok] => {
                            start = t.parse().ok();
                            token = tok.parse().ok();
                        }
                        ["end", t] => end = t.parse().ok(),
                        _ => {}
                    }
                }
                (
                    start.expect("start"),
                    end.expect("end"),
                    token.expect("token"),
                )
            })
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "[{}] two applies held the lock at once: {:?} and {:?}",
                s.label,
                w[0],
                w[1]
            );
            assert!(
                w[0].2 < w[1].2,
                "[{}] fencing token grows with each holder: {:?}",
                s.label,
                spans
            );
        }
    });
}

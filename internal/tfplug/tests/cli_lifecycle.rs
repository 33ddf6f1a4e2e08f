//! tfplug under the real `terraform` CLI, through its own test provider (examples/
//! tfplug-test-provider.rs): every lifecycle step a provider author relies on.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use acceptance_tests::{cargo_build, flatten, Mirror, Workdir};

fn mirror() -> &'static Mirror {
    static M: OnceLock<Mirror> = OnceLock::new();
    M.get_or_init(|| {
        let bin = cargo_build("tfplug", "example", "tfplug-test-provider");
        Mirror::new(
            &bin,
            "registry.terraform.io/testnet-infra/tfplugtest",
            "0.1.0",
        )
    })
}

/// A working directory with a `main.tf` using the test provider on a fresh store directory.
fn setup(body: &str) -> (Workdir, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let wd = mirror().workdir();
    wd.write("main.tf", &config(store.path(), body));
    wd.init();
    (wd, store)
}

fn config(store: &Path, body: &str) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    tfplugtest = {{ source = \"testnet-infra/tfplugtest\" }}\n  }}\n}}\n\nprovider \"tfplugtest\" {{\n  store_dir = \"{}\"\n}}\n\n{body}\n",
        store.display()
    )
}

fn stored(store: &Path, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(store.join(format!("{id}.json"))).unwrap()).unwrap()
}

#[test]
fn create_update_replace_drift_destroy() {
    let (wd, store) = setup(
        r#"resource "tfplugtest_thing" "a" {
  name = "alpha"
  size = 3
  tags = { team = "core" }
  rule {
    port = 8302
  }
}"#,
    );
    wd.tf(&["validate", "-no-color"]).ok();
    let plan = wd.plan();
    assert_eq!(
        plan.code,
        2,
        "first plan must propose changes:\n{}",
        plan.output()
    );
    assert!(
        plan.stdout.contains("upper_name") && plan.stdout.contains("\"ALPHA\""),
        "modify_plan sets a known value:\n{}",
        plan.stdout
    );
    wd.apply().ok();
    let a = wd.resource("tfplugtest_thing.a").unwrap();
    assert_eq!(a["id"], "thing-alpha");
    assert_eq!(a["size"], 3);
    assert_eq!(a["revision"], 1);
    assert_eq!(a["rule"][0]["port"], 8302);
    assert_eq!(stored(store.path(), "thing-alpha")["size"], 3);
    wd.assert_no_changes();

    // In-place update keeps the ID (use_state_for_unknown) and bumps the revision.
    wd.write(
        "main.tf",
        &config(
            store.path(),
            r#"resource "tfplugtest_thing" "a" {
  name = "alpha"
  size = 5
  tags = { team = "core" }
  rule {
    port = 8302
  }
}"#,
        ),
    );
    let p = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&p, "tfplugtest_thing.a"),
        vec!["update"]
    );
    let after = &p["resource_changes"][0]["change"]["after"];
    assert_eq!(
        after["id"], "thing-alpha",
        "a stable ID stays known during update"
    );
    wd.apply().ok();
    let a = wd.resource("tfplugtest_thing.a").unwrap();
    assert_eq!(
        (a["size"].as_i64(), a["revision"].as_i64()),
        (Some(5), Some(2))
    );
    wd.assert_no_changes();

    // Changing a requires-replace attribute plans a replacement that says why.
    wd.write(
        "main.tf",
        &config(
            store.path(),
            r#"resource "tfplugtest_thing" "a" {
  name = "beta"
  size = 5
}"#,
        ),
    );
    let r = wd.plan();
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("must be replaced") && r.stdout.contains("forces replacement"),
        "{}",
        r.stdout
    );
    let p = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&p, "tfplugtest_thing.a"),
        vec!["delete", "create"]
    );
    wd.apply().ok();
    assert!(!store.path().join("thing-alpha.json").exists());
    assert_eq!(
        wd.resource("tfplugtest_thing.a").unwrap()["id"],
        "thing-beta"
    );

    // Drift: changed behind Terraform's back -> update planned; deleted -> create planned.
    let mut s = stored(store.path(), "thing-beta");
    s["size"] = 9.into();
    std::fs::write(store.path().join("thing-beta.json"), s.to_string()).unwrap();
    let p = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&p, "tfplugtest_thing.a"),
        vec!["update"]
    );
    std::fs::remove_file(store.path().join("thing-beta.json")).unwrap();
    let p = wd.plan_json();
    assert_eq!(
        Workdir::planned_actions(&p, "tfplugtest_thing.a"),
        vec!["create"],
        "a deleted object leaves state"
    );

    wd.apply().ok();
    wd.destroy().ok();
    assert!(!store.path().join("thing-beta.json").exists());
    assert!(wd.resource("tfplugtest_thing.a").is_none());
}

#[test]
fn import_by_cli_and_by_block() {
    let (wd, store) = setup(
        r#"resource "tfplugtest_thing" "seed" {
  name = "imp"
  size = 7
}"#,
    );
    wd.apply().ok();
    // A second configuration adopts the existing object.
    let wd2 = mirror().workdir();
    wd2.write(
        "main.tf",
        &config(
            store.path(),
            r#"resource "tfplugtest_thing" "x" {
  name = "imp"
  size = 7
}"#,
        ),
    );
    wd2.init();
    wd2.tf(&["import", "-no-color", "tfplugtest_thing.x", "thing-imp"])
        .ok();
    let x = wd2.resource("tfplugtest_thing.x").unwrap();
    assert_eq!(
        (x["name"].as_str(), x["size"].as_i64()),
        (Some("imp"), Some(7))
    );
    wd2.assert_no_changes();

    let wd3 = mirror().workdir();
    wd3.write(
        "main.tf",
        &config(
            store.path(),
            r#"import {
  to = tfplugtest_thing.y
  id = "thing-imp"
}
resource "tfplugtest_thing" "y" {
  name = "imp"
  size = 7
}"#,
        ),
    );
    wd3.init();
    let r = wd3.plan();
    assert!(flatten(&r.stdout).contains("1 to import"), "{}", r.output());
    wd3.apply().ok();
    assert_eq!(
        wd3.resource("tfplugtest_thing.y").unwrap()["id"],
        "thing-imp"
    );

    // Importing something that does not exist is a clear error.
    let wd4 = mirror().workdir();
    wd4.write(
        "main.tf",
        &config(
            store.path(),
            "resource \"tfplugtest_thing\" \"z\" {\n  name = \"nope\"\n}",
        ),
    );
    wd4.init();
    wd4.tf(&["import", "-no-color", "tfplugtest_thing.z", "thing-nope"])
        .fails_with("No thing with ID \"thing-nope\" exists");
}

#[test]
fn unknown_values_flow_and_unknown_provider_config_plans() {
    let store = tempfile::tempdir().unwrap();
    let wd = mirror().workdir();
    wd.write(
        "main.tf",
        &config(
            store.path(),
            &format!(
                r#"resource "tfplugtest_thing" "a" {{
  name = "first"
}}
resource "tfplugtest_thing" "b" {{
  name = "second"
  tags = {{ upstream = tfplugtest_thing.a.id }}
}}
resource "terraform_data" "dir" {{
  input = "{}"
}}
provider "tfplugtest" {{
  alias     = "late"
  store_dir = terraform_data.dir.output
}}
resource "tfplugtest_thing" "c" {{
  provider = tfplugtest.late
  name     = "third"
}}
data "tfplugtest_lookup" "a" {{
  name = tfplugtest_thing.a.name
  depends_on = [tfplugtest_thing.a]
}}
output "looked_up" {{
  value = data.tfplugtest_lookup.a.size
}}"#,
                store.path().display()
            ),
        ),
    );
    wd.init();
    let p = wd.plan_json();
    let b = p["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "tfplugtest_thing.b")
        .unwrap();
    assert_eq!(
        b["change"]["after_unknown"]["tags"]["upstream"], true,
        "a value unknown at plan flows as unknown"
    );
    wd.apply().ok();
    let b = wd.resource("tfplugtest_thing.b").unwrap();
    assert_eq!(b["tags"]["upstream"], "thing-first");
    assert!(
        store.path().join("thing-third.json").exists(),
        "provider configured once its config became known"
    );
    let out = wd.tf(&["output", "-json", "looked_up"]).ok();
    assert_eq!(out.stdout.trim(), "1");
    wd.assert_no_changes();
}

#[test]
fn sensitive_and_write_only_values_stay_hidden() {
    let (wd, _store) = setup(
        r#"resource "tfplugtest_thing" "s" {
  name        = "sec"
  secret      = "hunter2-very-secret"
  password_wo = "wo-password-123"
}"#,
    );
    let r = wd.plan();
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("(sensitive value)"), "{}", r.stdout);
    assert!(!r.output().contains("hunter2-very-secret"));
    assert!(!r.output().contains("wo-password-123"));
    wd.apply().ok();
    let s = wd.resource("tfplugtest_thing.s").unwrap();
    assert!(
        s["password_wo"].is_null(),
        "write-only values never reach state"
    );
    assert_eq!(s["password_seen"], true);
    let raw = std::fs::read_to_string(wd.path().join("terraform.tfstate")).unwrap();
    assert!(!raw.contains("wo-password-123"));
    wd.assert_no_changes();
}

#[test]
fn diagnostics_point_at_the_offending_line() {
    let (wd, _store) =
        setup("resource \"tfplugtest_thing\" \"bad\" {\n  name = \"Not_Valid\"\n  size = 5000\n}");
    // main.tf has 10 lines of preamble before the resource block.
    let r = wd.plan().fails_with("\"Not_Valid\" is not a valid name");
    let flat = flatten(&r.output());
    assert!(
        flat.contains("on main.tf line 12, in resource \"tfplugtest_thing\" \"bad\""),
        "{}",
        r.output()
    );
    assert!(
        flat.contains("5000 is out of range. Allowed: a whole number from 1 to 1000"),
        "{}",
        r.output()
    );
    assert!(flat.contains("on main.tf line 13"), "{}", r.output());
}

#[test]
fn functions_and_panics() {
    let (wd, _store) = setup("output \"u\" {\n  value = provider::tfplugtest::upper(\"abc\")\n}");
    wd.apply().ok();
    assert_eq!(wd.tf(&["output", "-raw", "u"]).ok().stdout, "ABC");
    wd.write(
        "extra.tf",
        "output \"p\" {\n  value = provider::tfplugtest::upper(\"panic\")\n}",
    );
    let r = wd
        .plan()
        .fails_with("The provider failed unexpectedly while calling a function: asked to panic");
    assert!(
        !r.output().contains("Plugin did not respond"),
        "the plugin must survive a panic:\n{}",
        r.output()
    );
}

#[test]
fn ephemeral_resource_opens_renews_and_closes() {
    let (wd, store) = setup(
        r#"ephemeral "tfplugtest_token" "t" {
  name           = "session"
  renew_every_ms = 300
}
resource "tfplugtest_thing" "uses" {
  name        = "eph"
  password_wo = ephemeral.tfplugtest_token.t.token
  delay_ms    = 2500
}"#,
    );
    wd.apply().ok();
    let log = std::fs::read_to_string(store.path().join("ephemeral.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().any(|l| *l == "open session"), "{log}");
    assert!(
        lines.iter().any(|l| *l == "renew session"),
        "renewed while the run lasted: {log}"
    );
    assert_eq!(lines.last(), Some(&"close session"), "{log}");
    let opens = lines.iter().filter(|l| l.starts_with("open")).count();
    let closes = lines.iter().filter(|l| l.starts_with("close")).count();
    assert_eq!(opens, closes, "every open is closed: {log}");
    assert_eq!(
        wd.resource("tfplugtest_thing.uses").unwrap()["password_seen"],
        true
    );
}

#[test]
fn interrupt_stops_a_long_apply_cleanly() {
    let (wd, store) = setup(
        r#"resource "tfplugtest_thing" "slow" {
  name     = "slow"
  delay_ms = 60000
}"#,
    );
    let mut child = wd
        .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the provider is inside the slow create.
    let started = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    while !seen.contains("Creating...") {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                seen.push_str(&l);
                seen.push('\n');
            }
            Err(_) => panic!("apply never started creating:\n{seen}"),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let rest: String = rx.try_iter().collect::<Vec<_>>().join("\n");
    let all = format!("{seen}{rest}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(
        out.status.code(),
        Some(0),
        "an interrupted apply fails:\n{all}"
    );
    assert!(
        flatten(&all).contains("Apply interrupted"),
        "the provider observed StopProvider:\n{all}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "did not wait for the 60 s sleep"
    );
    assert!(
        !store.path().join("thing-slow.json").exists(),
        "nothing written"
    );
    assert!(wd.resource("tfplugtest_thing.slow").is_none());
}

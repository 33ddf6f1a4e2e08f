//! Not a test: the harness of `scripts/bench-in-cluster` (ignored; the script runs it). On the
//! real node, the benchmark node-state set in a host-path claim is snapshotted by the provider's
//! Job path (`terraform apply` of `testnet_snapshot_artifact.source_claim`) into s3s-fs on the pod
//! gateway, and the same data by `testnet-archiver create` from a local directory into the same
//! server. Prints wall, CPU seconds and peak RSS side by side, and where the Job's time goes.
//!
//! How each figure is taken:
//! - local: GNU time around the process (`%e %U %S %M`);
//! - Job: the archiver's own `TESTNET_ARCHIVER_RUSAGE` line (user + system seconds of its threads
//!   and `VmHWM`, the figures GNU time reads from `wait4`), copied by the provider from the pod's
//!   log into Terraform's log;
//! - the Job's timeline: what this process saw polling the API server every 100 ms from the
//!   moment `terraform apply` started (the API server's own timestamps have 1 s resolution);
//! - s3s-fs: CPU seconds of the server process across each side (`/proc/PID/stat`).
//!
//! Environment: `BENCH_DATA_DIR` (the data set), `TESTNET_NODE_ARCHIVER_BINARY` (the release
//! binary; also packaged into the node's image), `TESTNET_KUBE_REAL=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acceptance_tests::node::{bound_hostpath_claim, node, wait_for};
use acceptance_tests::servers::{stdout_of, KubeApi, TestServer};
use acceptance_tests::Mirror;
use serde_json::{json, Value};

const KEY: &str = "benchkey";
const SECRET: &str = "benchsecret0123456789";
const NS: &str = "bench";

/// CPU seconds (user + system) a process has used so far.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(i) = stat.rfind(')') else { return 0.0 };
    let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
    let t = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) as f64 / 100.0
}

/// Fills a bound host-path claim `state` with `data`; returns its directory.
fn claim_with(api: &KubeApi, data: &Path) -> PathBuf {
    let dir = bound_hostpath_claim(api, NS, "hostpath-bench", "state", "4Gi");
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", data.display()))
        .arg(&dir)
        .status()
        .expect("cp");
    assert!(st.success(), "copy the data set into the claim");
    Command::new("sync").status().expect("sync");
    dir
}

/// First time (seconds since the apply started) each step of the Job was seen, and the API
/// server's own timestamps.
#[derive(Default, Debug)]
struct Timeline {
    seen: Vec<(&'static str, f64)>,
    server: Vec<(&'static str, String)>,
}

impl Timeline {
    fn mark(&mut self, what: &'static str, t: f64) {
        if !self.seen.iter().any(|(w, _)| *w == what) {
            self.seen.push((what, t));
        }
    }
    fn note(&mut self, what: &'static str, v: &Value) {
        if let Some(s) = v.as_str() {
            if !self.server.iter().any(|(w, _)| *w == what) {
                self.server.push((what, s.to_string()));
            }
        }
    }
    fn at(&self, what: &str) -> Option<f64> {
        self.seen.iter().find(|(w, _)| *w == what).map(|(_, t)| *t)
    }
}

fn watch(kubeconfig: PathBuf, t0: Instant, stop: Arc<AtomicBool>, out: Arc<Mutex<Timeline>>) {
    let api = KubeApi::new(&kubeconfig);
    let mut had_job = false;
    while !stop.load(Ordering::Relaxed) {
        let now = t0.elapsed().as_secs_f64();
        let jobs = api
            .get(&format!("/apis/batch/v1/namespaces/{NS}/jobs"))
            .unwrap_or_default();
        let pods = api
            .get(&format!("/api/v1/namespaces/{NS}/pods"))
            .unwrap_or_default();
        let mut tl = out.lock().expect("timeline");
        let job = jobs["items"].as_array().and_then(|a| a.first()).cloned();
        match &job {
            Some(j) => {
                had_job = true;
                tl.mark("job created", now);
                tl.note("job creationTimestamp", &j["metadata"]["creationTimestamp"]);
                if j["status"]["succeeded"].as_u64().unwrap_or(0) > 0 {
                    tl.mark("job complete", now);
                    tl.note("job completionTime", &j["status"]["completionTime"]);
                }
            }
            None if had_job => tl.mark("job deleted", now),
            None => {}
        }
        if let Some(p) = pods["items"].as_array().and_then(|a| a.first()) {
            tl.mark("pod created", now);
            for c in p["status"]["conditions"].as_array().into_iter().flatten() {
                if c["type"] == "PodScheduled" && c["status"] == "True" {
                    tl.mark("pod scheduled", now);
                    tl.note("pod scheduled (server)", &c["lastTransitionTime"]);
                }
            }
            let state = &p["status"]["containerStatuses"][0]["state"];
            if state["running"].is_object() {
                tl.mark("container running", now);
                tl.note("container startedAt", &state["running"]["startedAt"]);
            }
            if state["terminated"].is_object() {
                tl.mark("container running", now);
                tl.mark("container exited", now);
                tl.note("container startedAt", &state["terminated"]["startedAt"]);
                tl.note("container finishedAt", &state["terminated"]["finishedAt"]);
            }
        }
        drop(tl);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "a benchmark: run by scripts/bench-in-cluster"]
fn bench_in_cluster() {
    let data = PathBuf::from(std::env::var("BENCH_DATA_DIR").expect("BENCH_DATA_DIR"));
    let ours = PathBuf::from(
        std::env::var("TESTNET_NODE_ARCHIVER_BINARY").expect("TESTNET_NODE_ARCHIVER_BINARY"),
    );
    let node = node().expect("a real node (TESTNET_KUBE_REAL=1, root, scripts/kube-real build)");
    let s3 = TestServer::s3s_fs_on(&node.pod_gateway, KEY, SECRET).expect("s3s-fs");
    std::fs::create_dir_all(s3.dir().join("data/bench")).expect("bucket");
    let api = node.api();
    node.namespace(NS);
    let (code, body) = api.post(
        &format!("/api/v1/namespaces/{NS}/secrets"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store"},
            "stringData": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": "us-east-1", "TESTNET_ARCHIVER_RUSAGE": "1"}}),
    );
    assert_eq!(code, 201, "secret: {body}");
    eprintln!(
        "bench-in-cluster: copying {} into a host-path claim",
        data.display()
    );
    claim_with(&api, &data);
    // Warm the page cache for the local side's input as the copy warmed the claim's.
    Command::new("sh")
        .arg("-c")
        .arg("tar -cf - -C \"$1\" . | cat >/dev/null")
        .args(["sh", &data.display().to_string()])
        .status()
        .expect("warm");

    // Local side: testnet-archiver create from the directory into the same server.
    eprintln!("bench-in-cluster: local create");
    let times = tempfile::NamedTempFile::new().expect("tempfile");
    let s3_cpu = cpu_of(s3.pid());
    let out = stdout_of(
        Command::new("/usr/bin/time")
            .args(["-f", "%e %M %U %S", "-o"])
            .arg(times.path())
            .arg(&ours)
            .arg("create")
            .arg("--source")
            .arg(&data)
            .args([
                "--store",
                "s3://bench/local",
                "--network",
                "benchnet",
                "--kind",
                "rolling",
            ])
            .args(["--label", "local", "--verify", "checksum"])
            .args(s3.archiver_flags())
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET),
        "the local create",
    );
    let local_s3_cpu = cpu_of(s3.pid()) - s3_cpu;
    let local_meta: Value = serde_json::from_slice(&out).expect("metadata");
    let t: Vec<f64> = std::fs::read_to_string(times.path())
        .expect("times")
        .lines()
        .last()
        .expect("a line")
        .split_whitespace()
        .map(|v| v.parse().expect("number"))
        .collect();
    let (local_wall, local_rss_kib, local_cpu) = (t[0], t[1], t[2] + t[3]);
    Command::new("sync").status().expect("sync");

    // The Job side: terraform apply of the resource, as a user runs it.
    let mirror = Mirror::testnet();
    let mut wd = mirror.workdir();
    let tf_log = wd.path().join("terraform.log");
    wd.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("TF_LOG_PROVIDER", "INFO")
        .env("TF_LOG_PATH", &tf_log.display().to_string());
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
  kubeconfig_path     = "{kc}"
  s3_endpoint         = "{ep}"
  s3_force_path_style = true
  s3_region           = "us-east-1"
  archiver_image      = "{image}"
}}
resource "testnet_snapshot_artifact" "snap" {{
  source_claim = "{NS}/state"
  store_url    = "s3://bench/job"
  network      = "benchnet"
  kind         = "rolling"
  label        = "job"
  verify       = "checksum"
  job {{
    env_secret_name = "store"
    timeout         = "30m"
  }}
}}
"#,
            kc = node.kubeconfig.display(),
            ep = s3.endpoint(),
            image = node.image,
        ),
    );
    wd.init();
    eprintln!("bench-in-cluster: terraform apply (Job)");
    let stop = Arc::new(AtomicBool::new(false));
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let s3_cpu = cpu_of(s3.pid());
    let t0 = Instant::now();
    let watcher = {
        let (kc, stop, tl) = (node.kubeconfig.clone(), stop.clone(), timeline.clone());
        std::thread::spawn(move || watch(kc, t0, stop, tl))
    };
    let applied = wd.apply().ok();
    let apply_wall = t0.elapsed().as_secs_f64();
    let job_s3_cpu = cpu_of(s3.pid()) - s3_cpu;
    // The watcher sees the deletion a moment after the apply returns at the latest.
    let _ = wait_for("the Job seen deleted", Duration::from_secs(60), || {
        timeline
            .lock()
            .expect("timeline")
            .at("job deleted")
            .ok_or_else(|| "not yet".to_string())
    });
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let state = wd
        .resource("testnet_snapshot_artifact.snap")
        .expect("in state");
    let log = std::fs::read_to_string(&tf_log).unwrap_or_default();
    let rusage = log
        .lines()
        .find_map(|l| l.split("rusage ").nth(1))
        .unwrap_or_else(|| {
            panic!(
                "no rusage line in the provider's log:\n{}",
                applied.output()
            )
        })
        .to_string();
    let field = |k: &str| -> f64 {
        rusage
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| {
                v.trim_matches(|c: char| !c.is_ascii_digit() && c != '.')
                    .parse()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    let job_cpu = field("cpu_user_s=") + field("cpu_sys_s=");
    let job_rss_kib = field("peak_rss_kib=");
    let job_wall = field("wall_s=");

    let tl = timeline.lock().expect("timeline");
    let at = |w: &str| tl.at(w).unwrap_or(f64::NAN);
    let polled_in_pod = at("container exited") - at("container running");
    let mib = |kib: f64| kib / 1024.0;
    println!("\n== bench-in-cluster: {} ==", data.display());
    println!(
        "input {} bytes; local artifact {} bytes sha256 {}; Job artifact {} bytes sha256 {}",
        local_meta["uncompressed_bytes"],
        local_meta["size_bytes"],
        local_meta["sha256"],
        state["size_bytes"],
        state["sha256"],
    );
    println!("| side | wall s | CPU s (archiver) | peak RSS MiB (archiver) | s3s-fs CPU s |");
    println!("|---|---|---|---|---|");
    println!(
        "| `testnet-archiver create`, local dir -> s3s-fs | {local_wall:.1} | {local_cpu:.1} | {:.0} | {local_s3_cpu:.1} |",
        mib(local_rss_kib)
    );
    println!(
        "| Job: archiver in the pod (its own clock; polled running -> exited: {polled_in_pod:.1}) | {job_wall:.1} | {job_cpu:.1} | {:.0} | |",
        mib(job_rss_kib)
    );
    println!("| Job: whole `terraform apply` (plan, Job, checks, cleanup) | {apply_wall:.1} | | | {job_s3_cpu:.1} |");
    println!(
        "\nJob timeline (seconds since `terraform apply` started, first seen by a 100 ms poll):"
    );
    let mut prev = 0.0;
    for (what, t) in &tl.seen {
        println!("  {t:7.2}  (+{:6.2})  {what}", t - prev);
        prev = *t;
    }
    println!(
        "  {apply_wall:7.2}  (+{:6.2})  terraform apply returned",
        apply_wall - prev
    );
    println!("API server timestamps (1 s resolution):");
    for (what, v) in &tl.server {
        println!("  {what}: {v}");
    }
    println!("archiver in the Job: {rusage}");
}

//! `testnet_snapshot_artifact` and `testnet_snapshot` through the real terraform CLI against the
//! cloud stores: `gs://` on gcp-storage-emulator (publish with full verification, data source,
//! restore and verify with `testnet-archiver`, destroy; a bucket that does not exist), and
//! Ctrl-C during a long upload to `s3://` on moto (terraform stops within seconds, nothing is
//! published, no multipart upload stays open, nothing lands in state).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use acceptance_tests::servers::{http, TestServer};
use acceptance_tests::{cargo_build, flatten, Mirror, Workdir};
use serde_json::Value;

// ---------------------------------------------------------------------------------- helpers

/// Deterministic incompressible bytes (xorshift), so LZ4 cannot make the artifact small.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A node data directory: incompressible context data over several MiB (so GCS takes it in
/// several resumable chunks), small files, and the secrets the default excludes leave out.
fn make_source(dir: &Path, big: usize) {
    std::fs::create_dir_all(dir.join("store/context")).unwrap();
    std::fs::write(dir.join("store/context/index"), noise(big, 1)).unwrap();
    std::fs::write(dir.join("store/blocks"), b"block data ".repeat(1000)).unwrap();
    std::fs::write(dir.join("config.json"), br#"{"network":"ghostnet"}"#).unwrap();
    std::fs::write(dir.join("identity.json"), br#"{"secret_key":"edsk..."}"#).unwrap();
    std::fs::write(dir.join("peers.json"), b"[]").unwrap();
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

const PROVIDER_REQ: &str = r#"
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}
"#;

// -------------------------------------------------------------------------------------- GCS

/// The emulator's view of one object: `(status, bytes)`.
fn gcs_object(port: u16, bucket: &str, name: &str) -> (u16, Vec<u8>) {
    let enc = name.replace('/', "%2F");
    http(
        port,
        "GET",
        &format!("/download/storage/v1/b/{bucket}/o/{enc}?alt=media"),
        b"",
    )
}

/// Every object name in a bucket.
fn gcs_names(port: u16, bucket: &str) -> Vec<String> {
    let (status, body) = http(port, "GET", &format!("/storage/v1/b/{bucket}/o"), b"");
    assert_eq!(
        status,
        200,
        "list {bucket}: {}",
        String::from_utf8_lossy(&body)
    );
    let v: Value = serde_json::from_slice(&body).expect("object list JSON");
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn gcs_config(port: u16, src: &Path, store_url: &str) -> String {
    format!(
        r#"{PROVIDER_REQ}
provider "testnet" {{
  gcs_endpoint = "http://127.0.0.1:{port}"
}}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{src}"
  store_url  = "{store_url}"
  network    = "ghostnet"
  kind       = "rolling"
  label      = "42"
  verify     = "full"
  # The emulator ignores generation preconditions: publishing to it needs this or index_lock.
  single_publisher = true
}}
"#,
        src = src.display()
    )
}

#[test]
fn gcs_publish_verify_restore_destroy() {
    let Some(gcs) = TestServer::gcs_emulator() else {
        return;
    };
    let (status, body) = http(gcs.port, "POST", "/storage/v1/b", br#"{"name":"snaps"}"#);
    assert_eq!(
        status,
        200,
        "create bucket: {}",
        String::from_utf8_lossy(&body)
    );

    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 12 * 1024 * 1024 + 777);
    let wd = mirror.workdir();
    let config = gcs_config(gcs.port, &src, "gs://snaps/ghostnet")
        + r#"
data "testnet_snapshot" "latest" {
  store_url  = "gs://snaps/ghostnet"
  network    = "ghostnet"
  kind       = "rolling"
  verify     = "full"
  depends_on = [testnet_snapshot_artifact.s]
}
output "ds_sha" { value = data.testnet_snapshot.latest.sha256 }
output "ds_files" { value = data.testnet_snapshot.latest.metadata["file_count"] }
"#;
    wd.write("main.tf", &config);
    wd.init();
    wd.apply().ok();

    let st = wd
        .resource("testnet_snapshot_artifact.s")
        .expect("in state");
    let url = "gs://snaps/ghostnet/ghostnet-rolling-42.tar.lz4";
    assert_eq!(st["url"], url);
    assert_eq!(
        st["metadata_url"],
        "gs://snaps/ghostnet/ghostnet-rolling-42.json"
    );
    let (status, object) = gcs_object(gcs.port, "snaps", "ghostnet/ghostnet-rolling-42.tar.lz4");
    assert_eq!(status, 200);
    assert_eq!(object.len() as u64, st["size_bytes"].as_u64().unwrap());
    assert_eq!(
        st["sha256"].as_str().unwrap(),
        sha256_hex(&object),
        "state sha256 is the stored object's"
    );
    assert!(
        object.len() > 12 * 1024 * 1024,
        "incompressible source, artifact of {} bytes",
        object.len()
    );
    // identity.json and peers.json are excluded by default.
    assert_eq!(st["file_count"].as_u64(), Some(3));

    let (status, index) = gcs_object(gcs.port, "snaps", "ghostnet/base.json");
    assert_eq!(status, 200);
    let index: Value = serde_json::from_slice(&index).expect("base.json");
    assert_eq!(index["artifacts"][0]["name"], "ghostnet-rolling-42");
    assert_eq!(index["artifacts"][0]["sha256"], st["sha256"]);
    let (status, latest) = gcs_object(gcs.port, "snaps", "ghostnet/ghostnet-rolling-latest.json");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&latest).contains("ghostnet-rolling-42"),
        "latest pointer: {}",
        String::from_utf8_lossy(&latest)
    );
    let out: Value = serde_json::from_str(&wd.tf(&["output", "-json"]).ok().stdout).unwrap();
    assert_eq!(out["ds_sha"]["value"], st["sha256"]);
    assert_eq!(out["ds_files"]["value"], "3");
    wd.assert_no_changes();

    // The command-line tool verifies and restores what the provider published.
    let tool = cargo_build("archiver-cli", "bin", "testnet-archiver");
    let run_tool = |args: &[&str]| {
        let out = std::process::Command::new(&tool)
            .args(args)
            .env(
                "TESTNET_GCS_ENDPOINT",
                format!("http://127.0.0.1:{}", gcs.port),
            )
            .output()
            .expect("run testnet-archiver");
        assert!(
            out.status.success(),
            "testnet-archiver {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("testnet-archiver JSON")
    };
    let verified = run_tool(&["verify", url, "--mode", "full"]);
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["sha256"], st["sha256"]);
    assert_eq!(verified["file_count"], 3);
    let into = tmp.path().join("restored");
    let restored = run_tool(&["restore", url, "--into", into.to_str().unwrap()]);
    assert_eq!(restored["sha256"], st["sha256"]);
    for f in ["store/context/index", "store/blocks", "config.json"] {
        assert!(
            std::fs::read(into.join(f)).unwrap() == std::fs::read(src.join(f)).unwrap(),
            "{f} restored byte for byte"
        );
    }
    assert!(!into.join("identity.json").exists(), "secrets stay out");

    wd.destroy().ok();
    assert_eq!(
        gcs_object(gcs.port, "snaps", "ghostnet/ghostnet-rolling-42.tar.lz4").0,
        404,
        "destroy deletes the artifact"
    );
    let (_, index) = gcs_object(gcs.port, "snaps", "ghostnet/base.json");
    let index: Value = serde_json::from_slice(&index).expect("base.json");
    assert_eq!(
        index["artifacts"].as_array().map(Vec::len),
        Some(0),
        "and its index entry"
    );
}

#[test]
fn gcs_bucket_that_does_not_exist_is_named() {
    let Some(gcs) = TestServer::gcs_emulator() else {
        return;
    };
    let (status, _) = http(gcs.port, "POST", "/storage/v1/b", br#"{"name":"snaps"}"#);
    assert_eq!(status, 200);
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 10_000);
    let wd = mirror.workdir();
    wd.write(
        "main.tf",
        &gcs_config(gcs.port, &src, "gs://no-such-bucket/ghostnet"),
    );
    wd.init();
    let r = wd
        .apply()
        .fails_with("Bucket not found")
        .fails_with("\"no-such-bucket\" does not exist");
    let flat = flatten(&r.output());
    assert!(
        flat.contains("store_url = \"gs://no-such-bucket/ghostnet\""),
        "the diagnostic points at store_url:\n{}",
        r.output()
    );
    assert!(wd.resource("testnet_snapshot_artifact.s").is_none());
    assert!(
        gcs_names(gcs.port, "snaps").is_empty(),
        "nothing written elsewhere"
    );
}

// ------------------------------------------------------------------------------ Ctrl-C on S3

/// A TCP relay to `upstream` that passes each connection's request bytes at most
/// `bytes_per_s` (so an upload to a local server takes long enough to interrupt) and cuts the
/// first `max_cuts` connections that carry `cut_after` request bytes, as a flaky network would.
/// Answers pass at full speed. Returns the port and the count of connections cut.
fn relay(
    upstream: u16,
    bytes_per_s: usize,
    cut_after: usize,
    max_cuts: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let port = listener.local_addr().expect("relay address").port();
    let cuts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cuts_done = cuts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server, client);
            let cuts = cuts.clone();
            std::thread::spawn(move || {
                let tick = Duration::from_millis(50);
                let mut buf = vec![0u8; (bytes_per_s / 20).clamp(1, 1 << 20)];
                let mut sent = 0usize;
                loop {
                    let started = Instant::now();
                    match c_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let take = n.min(cut_after.saturating_sub(sent).max(1));
                            if s_out.write_all(&buf[..take]).is_err() {
                                break;
                            }
                            sent += take;
                            let cut = sent >= cut_after
                                && cuts
                                    .fetch_update(
                                        std::sync::atomic::Ordering::SeqCst,
                                        std::sync::atomic::Ordering::SeqCst,
                                        |c| (c < max_cuts).then_some(c + 1),
                                    )
                                    .is_ok();
                            if !cut && take < n {
                                if s_out.write_all(&buf[take..n]).is_err() {
                                    break;
                                }
                                sent += n - take;
                            }
                            if cut {
                                // Both ends see the connection die mid-request.
                                let _ = s_out.shutdown(std::net::Shutdown::Both);
                                let _ = c_in.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        }
                    }
                    if let Some(rest) = tick.checked_sub(started.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (port, cuts_done)
}

/// Sends a signal to the process group `pgid` leads (and to nothing else). Careful: without
/// `--`, procps `kill -INT -PGID` reads the negative number as an option and signals every
/// process the user may signal.
fn signal_group(signal: &str, pgid: u32) -> bool {
    assert!(pgid > 1, "refusing to signal process group {pgid}");
    std::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `terraform apply` in `wd`, waits for two progress lines of the provider (asserting
/// they give bytes, MB/s and ETA), interrupts it as a terminal's Ctrl-C does, and asserts it
/// exits within 30 s saying nothing was published. Prints the measured times.
fn interrupt_apply_after_progress(wd: &Workdir) {
    // Run terraform in its own process group and interrupt the group, as a terminal's Ctrl-C
    // does (the provider gets SIGINT too and must leave stopping to Terraform).
    use std::os::unix::process::CommandExt;
    let mut cmd = wd.command(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    cmd.env("TF_LOG_PROVIDER", "INFO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start terraform apply");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        }));
    }
    drop(tx);
    let mut progress = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress.len() < 2 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("two progress lines within 120 s");
        if line.contains("archiving snapshot") {
            progress.push(line);
        }
    }
    let progress_after = started.elapsed();
    for p in &progress {
        assert!(
            p.contains("MB/s") && p.contains("ETA") && p.contains("bytes="),
            "progress names bytes, MB/s and ETA: {p}"
        );
    }
    let interrupted = Instant::now();
    assert!(
        signal_group("INT", pid),
        "SIGINT to terraform's process group"
    );
    let mut status = None;
    while interrupted.elapsed() < Duration::from_secs(30) {
        if let Some(s) = child.try_wait().expect("wait for terraform") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_in = interrupted.elapsed();
    let Some(status) = status else {
        signal_group("KILL", pid);
        panic!("terraform did not exit within 30 s of Ctrl-C");
    };
    let output: String = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect();
    eprintln!(
        "progress lines after {:.1} s, e.g. {}\nterraform exited {:.2} s after SIGINT ({status})",
        progress_after.as_secs_f64(),
        progress[1],
        stopped_in.as_secs_f64()
    );
    assert!(!status.success(), "the apply must fail:\n{output}");
    let flat = flatten(&output);
    assert!(
        flat.contains("Interrupted; nothing was published"),
        "the error says the apply was cancelled:\n{output}"
    );
}

#[test]
fn ctrl_c_during_an_s3_upload_stops_and_leaves_nothing() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    // 4 parts in flight at 1 MB/s each: a 96 MiB incompressible source takes about 25 s.
    let (relay, _) = relay(moto.port, 1_000_000, usize::MAX, 0);

    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 96 * 1024 * 1024);
    let wd = s3_workdir(&mirror, relay, &src, "s3://snaps/ghostnet", "label = \"9\"");

    interrupt_apply_after_progress(&wd);

    // Nothing published, nothing half-written, nothing open.
    let (status, listing) = http(moto.port, "GET", "/snaps?list-type=2", b"");
    assert_eq!(status, 200);
    let listing = String::from_utf8_lossy(&listing).to_string();
    assert!(
        !listing.contains("<Key>"),
        "objects left in the bucket: {listing}"
    );
    let (status, uploads) = http(moto.port, "GET", "/snaps?uploads", b"");
    assert_eq!(status, 200);
    let uploads = String::from_utf8_lossy(&uploads).to_string();
    assert!(
        !uploads.contains("<UploadId>"),
        "multipart uploads left open: {uploads}"
    );
    assert!(
        wd.resource("testnet_snapshot_artifact.s").is_none(),
        "no artifact in state"
    );
}

#[test]
fn s3_bucket_that_does_not_exist_is_named() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 10_000);
    let wd = s3_workdir(&mirror, moto.port, &src, "s3://no-such-bucket/ghostnet", "");
    let r = wd
        .apply()
        .fails_with("Bucket not found")
        .fails_with("\"no-such-bucket\" does not exist");
    assert!(
        flatten(&r.output()).contains("store_url = \"s3://no-such-bucket/ghostnet\""),
        "the diagnostic points at store_url:\n{}",
        r.output()
    );
    assert!(wd.resource("testnet_snapshot_artifact.s").is_none());
    let (_, listing) = http(moto.port, "GET", "/snaps?list-type=2", b"");
    assert!(
        !String::from_utf8_lossy(&listing).contains("<Key>"),
        "nothing written elsewhere"
    );
}

#[test]
fn s3_publish_survives_connections_cut_mid_upload() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    // The first two connections to carry 3 MB of requests die there: in a 16 MiB part.
    let (relay, cuts) = relay(moto.port, 400_000_000, 3_000_000, 2);
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 40 * 1024 * 1024);
    let wd = s3_workdir(
        &mirror,
        relay,
        &src,
        "s3://snaps/ghostnet",
        "label = \"3\"\nverify = \"full\"",
    );
    wd.apply().ok();
    assert_eq!(
        cuts.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "two connections were cut"
    );
    let st = wd
        .resource("testnet_snapshot_artifact.s")
        .expect("in state");
    let (status, object) = http(
        moto.port,
        "GET",
        "/snaps/ghostnet/ghostnet-rolling-3.tar.lz4",
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(object.len() as u64, st["size_bytes"].as_u64().unwrap());
    assert_eq!(st["sha256"].as_str().unwrap(), sha256_hex(&object));
    let (_, uploads) = http(moto.port, "GET", "/snaps?uploads", b"");
    assert!(
        !String::from_utf8_lossy(&uploads).contains("<UploadId>"),
        "multipart uploads left open: {}",
        String::from_utf8_lossy(&uploads)
    );
    let (_, index) = http(moto.port, "GET", "/snaps/ghostnet/base.json", b"");
    let index: Value = serde_json::from_slice(&index).expect("base.json");
    assert_eq!(index["artifacts"][0]["name"], "ghostnet-rolling-3");
    wd.destroy().ok();
}

#[test]
fn ctrl_c_during_a_gcs_upload_stops_and_leaves_nothing() {
    let Some(gcs) = TestServer::gcs_emulator() else {
        return;
    };
    let (status, _) = http(gcs.port, "POST", "/storage/v1/b", br#"{"name":"snaps"}"#);
    assert_eq!(status, 200);
    // One resumable upload at 1 MB/s: a 64 MiB incompressible source takes about a minute.
    let (relay, _) = relay(gcs.port, 1_000_000, usize::MAX, 0);
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 64 * 1024 * 1024);
    let wd = mirror.workdir();
    wd.write(
        "main.tf",
        &format!(
            r#"{PROVIDER_REQ}
provider "testnet" {{
  gcs_endpoint = "http://127.0.0.1:{relay}"
}}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{src}"
  store_url  = "gs://snaps/ghostnet"
  network    = "ghostnet"
  kind       = "rolling"
  label      = "9"
  single_publisher = true
}}
"#,
            src = src.display()
        ),
    );
    wd.init();
    interrupt_apply_after_progress(&wd);
    assert_eq!(
        gcs_names(gcs.port, "snaps"),
        Vec::<String>::new(),
        "nothing published, no index, no pointer"
    );
    assert!(
        wd.resource("testnet_snapshot_artifact.s").is_none(),
        "no artifact in state"
    );
}

#[test]
fn s3_publish_that_never_gets_through_fails_cleanly() {
    let Some(moto) = TestServer::moto() else {
        return;
    };
    let (status, _) = http(moto.port, "PUT", "/snaps", b"");
    assert_eq!(status, 200, "create bucket");
    // Every connection dies once it has carried 3 MB: no 8 MiB part ever arrives, while small
    // requests (create, abort, list) still do.
    let (relay, cuts) = relay(moto.port, 400_000_000, 3_000_000, usize::MAX);
    let mirror = Mirror::testnet();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("node");
    make_source(&src, 40 * 1024 * 1024);
    let wd = s3_workdir(&mirror, relay, &src, "s3://snaps/ghostnet", "label = \"4\"");
    let started = Instant::now();
    let r = wd
        .apply()
        .fails_with("Store request failed")
        .fails_with("s3://snaps/ghostnet/ghostnet-rolling-4.tar.lz4")
        .fails_with("no answer from the server after 5 attempt(s); check the endpoint and the network, then try again");
    eprintln!(
        "failed after {:.1} s and {} cut connections:\n{}",
        started.elapsed().as_secs_f64(),
        cuts.load(std::sync::atomic::Ordering::SeqCst),
        r.stderr
    );
    let (_, listing) = http(moto.port, "GET", "/snaps?list-type=2", b"");
    let listing = String::from_utf8_lossy(&listing).to_string();
    assert!(!listing.contains("<Key>"), "objects left: {listing}");
    let (_, uploads) = http(moto.port, "GET", "/snaps?uploads", b"");
    let uploads = String::from_utf8_lossy(&uploads).to_string();
    assert!(
        !uploads.contains("<UploadId>"),
        "uploads left open: {uploads}"
    );
    assert!(wd.resource("testnet_snapshot_artifact.s").is_none());
}

/// A workdir with one snapshot artifact of `src` published to `store_url` through the S3
/// endpoint on `port` (moto, or a relay in front of it), initialised. `extra` holds more
/// attributes of the resource, one per line.
fn s3_workdir(mirror: &Mirror, port: u16, src: &Path, store_url: &str, extra: &str) -> Workdir {
    let mut wd = mirror.workdir();
    wd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    wd.write(
        "main.tf",
        &format!(
            r#"{PROVIDER_REQ}
provider "testnet" {{
  s3_endpoint         = "http://127.0.0.1:{port}"
  s3_force_path_style = true
  s3_region           = "us-east-1"
}}
resource "testnet_snapshot_artifact" "s" {{
  source_dir = "{src}"
  store_url  = "{store_url}"
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

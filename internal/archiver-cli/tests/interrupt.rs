//! Ctrl-C during a restore from S3 (s3s-fs behind a proxy that stalls the download part-way):
//! the process stops, and neither the target nor a staging directory is left.

#[allow(dead_code)]
#[path = "../../objstore/tests/common/proxy.rs"]
mod proxy;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acceptance_tests::servers::TestServer;
use proxy::{get, Fault, FaultProxy, Request};

const ACCESS_KEY: &str = "testnet-access";
const SECRET_KEY: &str = "testnet-secret-key-0123456789";

fn archiver(endpoint: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testnet-archiver"));
    c.args([
        "--endpoint",
        endpoint,
        "--path-style",
        "--region",
        "us-east-1",
    ])
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env_remove("AWS_PROFILE");
    c
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_restore_from_s3_leaves_nothing() {
    let Some(server) = TestServer::s3s_fs(ACCESS_KEY, SECRET_KEY) else {
        return;
    };
    std::fs::create_dir_all(server.dir().join("data/snaps")).expect("bucket");
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..12 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("state.sst"), noise).expect("write");
    let o = archiver(&server.endpoint())
        .args(["create", "--source", &src.display().to_string()])
        .args([
            "--store",
            "s3://snaps/p",
            "--network",
            "ghostnet",
            "--kind",
            "rolling",
        ])
        .args(["--label", "one"])
        .output()
        .expect("create");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The first ranged GET of the artifact delivers 1 MiB, then nothing for a minute.
    let plan = |r: &Request| {
        if r.method == "GET" && r.target.contains(".tar.lz4") && r.range.is_some() {
            Fault::HoldResponseAfter(1 << 20, Duration::from_secs(60))
        } else {
            Fault::Pass
        }
    };
    let proxy = FaultProxy::start(server.addr(), plan).await;
    let parent = tmp.path().join("node");
    std::fs::create_dir_all(&parent).expect("mkdir");
    let target = parent.join("data");
    let mut child = archiver(&proxy.endpoint())
        .args(["restore", "s3://snaps/p/ghostnet-rolling-one.tar.lz4"])
        .args(["--into", &target.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");

    // Ready when the download is stalled part-way and the staging directory exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let staging = names(&parent).iter().any(|n| n.contains(".restore-"));
        if staging && get(&proxy.stats.stalls) > 0 {
            break;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the restore ended before it was interrupted"
        );
        assert!(
            Instant::now() < deadline,
            "the restore never started reading"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}; restore said: {err}", proxy.stats);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("restore") && err.contains("cancelled"),
        "{err}"
    );
    assert!(
        !target.exists(),
        "an interrupted restore created its target"
    );
    assert_eq!(names(&parent), Vec::<String>::new(), "staging left behind");
}

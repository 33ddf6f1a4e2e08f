//! Runs the `testnet-archiver` binary against a `file://` store in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_testnet-archiver"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run testnet-archiver")
}

fn source(dir: &Path) {
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("identity.json"), b"secret").expect("write");
    for i in 0..4 {
        std::fs::write(dir.join(format!("data/{i}.bin")), vec![i as u8; 50_000]).expect("write");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn create_list_verify_restore_and_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, st) = (tmp.path().join("src"), tmp.path().join("store"));
    source(&src);
    std::fs::create_dir_all(&st).expect("mkdir");
    let store = format!("file://{}", st.display());
    let src_s = src.display().to_string();

    let o = run(&[
        "create",
        "--source",
        &src_s,
        "--store",
        &store,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--label",
        "one",
        "--verify",
        "full",
        "--block-height",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("metadata JSON on stdout");
    assert_eq!(meta["name"], "ghostnet-rolling-one");
    assert_eq!(meta["file_count"], 4);
    let url = meta["url"].as_str().expect("url").to_string();

    let o = run(&["list", "--store", &store]);
    assert!(o.status.success(), "{}", stderr(&o));
    let index: serde_json::Value = serde_json::from_slice(&o.stdout).expect("index");
    assert_eq!(index["artifacts"][0]["sha256"], meta["sha256"]);

    let o = run(&["verify", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let into = tmp.path().join("restored");
    let o = run(&["restore", &url, "--into", &into.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(into.join("data/3.bin")).expect("restored"),
        vec![3u8; 50_000]
    );
    assert!(!into.join("identity.json").exists());

    // Bad input: each row args, exit code, text the one-line error must contain.
    let missing = tmp.path().join("missing").display().to_string();
    let rows: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "create",
                "--source",
                &missing,
                "--store",
                &store,
                "--network",
                "n",
                "--kind",
                "k",
            ],
            1,
            "does not exist",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                "ftp://h/p",
                "--network",
                "n",
                "--kind",
                "k",
            ],
            1,
            "ftp",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                &store,
                "--network",
                "Bad_Net",
                "--kind",
                "k",
            ],
            1,
            "network",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                &store,
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
                "--label",
                "one",
            ],
            1,
            "already exists",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                &store,
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
                "--index-lock",
                "ghostnet-index",
            ],
            2,
            "--index-lock \"ghostnet-index\": expected \"namespace/name\" of a Lease",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                &store,
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
                "--index-lock",
                "default/x",
                "--single-publisher",
            ],
            2,
            "cannot be used with",
        ),
        (
            vec![
                "create",
                "--source",
                &src_s,
                "--store",
                &store,
                "--network",
                "ghostnet",
                "--kind",
                "rolling",
                "--kubeconfig",
                "/k",
            ],
            2,
            "--index-lock",
        ),
        (vec!["verify"], 2, "URL"),
        (vec!["verify", "s3://bucket"], 2, "not an artifact URL"),
    ];
    for (args, code, text) in rows {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "{args:?}: {}", stderr(&o));
    }

    // Tampered artifact: verify fails with exit 1.
    let key = st.join("ghostnet-rolling-one.tar.lz4");
    let mut bytes = std::fs::read(&key).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&key, bytes).expect("write");
    let o = run(&["verify", &url, "--mode", "checksum"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("sha256"), "{}", stderr(&o));

    // An index that is not JSON: create fails, index untouched.
    std::fs::write(st.join("base.json"), b"{ not json").expect("write");
    let o = run(&[
        "create",
        "--source",
        &src_s,
        "--store",
        &store,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--label",
        "two",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("base.json"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(st.join("base.json")).expect("read"),
        b"{ not json"
    );
    assert!(!st.join("ghostnet-rolling-two.tar.lz4").exists());
}

#[test]
fn eight_concurrent_processes_lose_no_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, st) = (tmp.path().join("src"), tmp.path().join("store"));
    source(&src);
    std::fs::create_dir_all(&st).expect("mkdir");
    let store = format!("file://{}", st.display());
    let children: Vec<_> = (0..8)
        .map(|i| {
            bin()
                .args([
                    "create",
                    "--source",
                    &src.display().to_string(),
                    "--store",
                    &store,
                    "--network",
                    "ghostnet",
                    "--kind",
                    "rolling",
                    "--label",
                    &format!("p{i}"),
                    "--block-height",
                    &i.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(st.join("base.json")).expect("index")).expect("json");
    let names: Vec<&str> = index["artifacts"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    let pointer: serde_json::Value = serde_json::from_slice(
        &std::fs::read(st.join("ghostnet-rolling-latest.json")).expect("pointer"),
    )
    .expect("json");
    assert_eq!(pointer["name"], "ghostnet-rolling-p7", "highest block wins");
    for n in names {
        let o = run(&["verify", &format!("{store}/{n}.tar.lz4")]);
        assert!(o.status.success(), "{n}: {}", stderr(&o));
    }
}

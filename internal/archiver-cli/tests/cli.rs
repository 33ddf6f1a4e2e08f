//! Runs the `testnet-archiver` binary against a `file://` store in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_testnet-archiver"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run testnet-archiver")
}

/// `create --source SRC --store STORE --network NETWORK --kind KIND`, then `extra`: the
/// arguments every `create` here shares.
fn create<'a>(
    src: &'a str,
    store: &'a str,
    network: &'a str,
    kind: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "create",
        "--source",
        src,
        "--store",
        store,
        "--network",
        network,
        "--kind",
        kind,
    ];
    args.extend_from_slice(extra);
    args
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

    let o = run(&create(
        &src_s,
        &store,
        "ghostnet",
        "rolling",
        &["--label", "one", "--verify", "full", "--block-height", "5"],
    ));
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
        (create(&missing, &store, "n", "k", &[]), 1, "does not exist"),
        (create(&src_s, "ftp://h/p", "n", "k", &[]), 1, "ftp"),
        (create(&src_s, &store, "Bad_Net", "k", &[]), 1, "network"),
        (
            create(&src_s, &store, "ghostnet", "rolling", &["--label", "one"]),
            1,
            "already exists",
        ),
        (
            create(
                &src_s,
                &store,
                "ghostnet",
                "rolling",
                &["--index-lock", "ghostnet-index"],
            ),
            2,
            "--index-lock \"ghostnet-index\": expected \"namespace/name\" of a Lease",
        ),
        (
            create(
                &src_s,
                &store,
                "ghostnet",
                "rolling",
                &["--index-lock", "default/x", "--single-publisher"],
            ),
            2,
            "cannot be used with",
        ),
        (
            create(
                &src_s,
                &store,
                "ghostnet",
                "rolling",
                &["--kubeconfig", "/k"],
            ),
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
    let o = run(&create(
        &src_s,
        &store,
        "ghostnet",
        "rolling",
        &["--label", "two"],
    ));
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
                .args(create(
                    &src.display().to_string(),
                    &store,
                    "ghostnet",
                    "rolling",
                    &[
                        "--label",
                        &format!("p{i}"),
                        "--block-height",
                        &i.to_string(),
                    ],
                ))
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

/// Every file under `root` with its contents, and the directories: what "untouched" compares.
fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).expect("inside").display().to_string();
            if p.is_dir() {
                out.push((rel, None));
                go(root, &p, out);
            } else {
                out.push((rel, Some(std::fs::read(&p).expect("read"))));
            }
        }
    }
    go(root, root, &mut out);
    out
}

/// The one-line error, without the progress lines before it.
fn error_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.starts_with("testnet-archiver: error:"))
        .unwrap_or_default()
        .to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn restore_is_all_or_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, st) = (tmp.path().join("src"), tmp.path().join("store"));
    source(&src);
    // Incompressible contents, so the artifact spans several LZ4 blocks and a flipped byte
    // in its middle lands in file data.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..6 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("data/big.sst"), &noise).expect("write");
    std::fs::create_dir_all(&st).expect("mkdir");
    let store = format!("file://{}", st.display());
    let o = run(&create(
        &src.display().to_string(),
        &store,
        "ghostnet",
        "rolling",
        &["--label", "one"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let url = format!("{store}/ghostnet-rolling-one.tar.lz4");

    // A target holding an older state.
    let parent = tmp.path().join("node");
    let target = parent.join("data");
    std::fs::create_dir_all(target.join("store")).expect("mkdir");
    std::fs::write(target.join("store/LOCK"), b"old").expect("write");
    std::fs::write(target.join("store/000001.sst"), b"old state").expect("write");
    let before = tree(&target);
    let listing = names(&parent);
    let target_s = target.display().to_string();

    // Non-empty target without --replace: refused, untouched.
    let o = run(&["restore", &url, "--into", &target_s]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_line(&o);
    assert!(
        e.contains("restore") && e.contains("not empty") && e.contains("--replace"),
        "{e}"
    );
    assert!(!e.contains("archiving"), "{e}");
    assert_eq!(tree(&target), before);
    assert_eq!(names(&parent), listing);

    // A byte flipped in the middle of the artifact: even with --replace the target stays as it
    // was and nothing is left beside it.
    let key = st.join("ghostnet-rolling-one.tar.lz4");
    let good = std::fs::read(&key).expect("read");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x04;
    std::fs::write(&key, &bad).expect("write");
    let o = run(&["restore", &url, "--into", &target_s, "--replace"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_line(&o);
    assert!(e.contains("restore") && !e.contains("archiving"), "{e}");
    assert!(e.contains("left as it was"), "{e}");
    assert_eq!(tree(&target), before, "a failed restore changed the target");
    assert_eq!(
        names(&parent),
        listing,
        "a failed restore left a staging directory"
    );
    // Into a missing directory: it is not created.
    let fresh = parent.join("fresh");
    let o = run(&["restore", &url, "--into", &fresh.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!fresh.exists());
    assert_eq!(names(&parent), listing);

    // The intact artifact with --replace: the new state whole, nothing of the old one.
    std::fs::write(&key, &good).expect("write");
    let o = run(&["restore", &url, "--into", &target_s, "--replace"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(target.join("data/big.sst")).expect("restored"),
        noise
    );
    assert!(
        !target.join("store").exists(),
        "the old state survived the replace"
    );
    assert_eq!(
        names(&parent),
        listing,
        "the old tree was left beside the target"
    );
}

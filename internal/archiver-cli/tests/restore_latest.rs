//! `testnet-archiver restore --latest` and the restore marker, through the binary against a
//! `file://` store: the init-container path (restore the newest artifact; a second run finds its
//! marker and reads nothing), what a directory holding another artifact gets, and a mount point
//! whose only entry is a fresh filesystem's `lost+found`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const MARKER: &str = ".testnet-restored.json";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testnet-archiver"))
        .args(args)
        .output()
        .expect("run testnet-archiver")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// The one-line error, without the progress lines before it.
fn error_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.starts_with("testnet-archiver: error:"))
        .unwrap_or_default()
        .to_string()
}

/// A node's state whose contents depend on `height`.
fn state(dir: &Path, height: u32) {
    std::fs::create_dir_all(dir.join("store")).expect("mkdir");
    std::fs::write(dir.join("identity.json"), b"secret").expect("write");
    std::fs::write(dir.join("config.json"), format!("{{\"height\":{height}}}")).expect("write");
    std::fs::write(dir.join("store/blocks"), vec![height as u8; 200_000]).expect("write");
}

/// Publishes `src` as `ghostnet-rolling-<height>`; returns its metadata.
fn publish(src: &Path, store: &str, height: u32) -> Value {
    let h = height.to_string();
    json(&run(&[
        "create",
        "--source",
        &src.display().to_string(),
        "--store",
        store,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--block-height",
        &h,
    ]))
}

fn latest<'a>(store: &'a str, into: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "restore",
        "--latest",
        "--store",
        store,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--into",
        into,
    ];
    v.extend_from_slice(extra);
    v
}

fn marker(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(MARKER)).expect("marker")).expect("marker JSON")
}

/// A store with artifacts at heights 1 and 2 (2 is the newest), published from `tmp/src`.
fn two_artifacts(tmp: &Path) -> (String, Value, Value) {
    let (src, st) = (tmp.join("src"), tmp.join("store"));
    std::fs::create_dir_all(&st).expect("mkdir");
    let store = format!("file://{}", st.display());
    state(&src, 1);
    let one = publish(&src, &store, 1);
    state(&src, 2);
    let two = publish(&src, &store, 2);
    (store, one, two)
}

#[test]
fn latest_restores_the_newest_and_a_second_run_reads_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, one, two) = two_artifacts(tmp.path());
    let into = tmp.path().join("node/data");
    let into_s = into.display().to_string();

    let result = tmp.path().join("termination-log");
    let result_s = result.display().to_string();
    let out = json(&run(&latest(
        &store,
        &into_s,
        &["--result-file", &result_s],
    )));
    assert_eq!(out["name"], "ghostnet-rolling-2", "{out}");
    assert_eq!(out["already_restored"], false);
    // --result-file: the same report, on one line (a Job's termination message).
    let written = std::fs::read_to_string(&result).expect("--result-file written");
    assert_eq!(written.lines().count(), 1, "{written}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).expect("JSON"),
        out
    );
    assert_eq!(out["sha256"], two["sha256"]);
    assert_eq!(
        std::fs::read(into.join("config.json")).expect("restored"),
        b"{\"height\":2}"
    );
    assert_eq!(
        std::fs::read(into.join("store/blocks")).expect("restored"),
        vec![2u8; 200_000]
    );
    let m = marker(&into);
    assert_eq!(m["name"], "ghostnet-rolling-2");
    assert_eq!(m["sha256"], two["sha256"]);
    assert_eq!(m["size_bytes"], two["size_bytes"]);
    assert_eq!(m["url"], two["url"]);
    assert!(
        m["tool_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("testnet-archiver/")),
        "{m}"
    );
    assert!(
        m["restored_at"].as_str().is_some_and(|t| t.contains('T')),
        "{m}"
    );

    // The second run must not read the object: make it unreadable. A restore that read it
    // would fail; one that trusts the marker succeeds and says so.
    let object = tmp.path().join("store/ghostnet-rolling-2.tar.lz4");
    let good = std::fs::read(&object).expect("artifact");
    std::fs::write(&object, b"not an artifact any more").expect("write");
    let o = run(&latest(&store, &into_s, &[]));
    let out = json(&o);
    assert_eq!(out["already_restored"], true, "{out}");
    assert_eq!(out["name"], "ghostnet-rolling-2");
    let said = stderr(&o);
    assert!(
        said.contains(&format!(
            "already restored ghostnet-rolling-2 (sha256 {})",
            two["sha256"].as_str().expect("sha")
        )) && said.contains("nothing to do"),
        "{said}"
    );
    assert_eq!(marker(&into), m, "the marker is left as it was");
    // --replace with the same artifact still skips: the init container's usual flags.
    let o = run(&latest(&store, &into_s, &["--replace"]));
    assert_eq!(json(&o)["already_restored"], true);
    // A restore by URL of that artifact also sees its marker.
    let o = run(&[
        "restore",
        two["url"].as_str().expect("url"),
        "--into",
        &into_s,
    ]);
    assert_eq!(json(&o)["already_restored"], true);
    std::fs::write(&object, &good).expect("write");

    // Without the marker the same (damaged) bytes would be read and refused: the skip above
    // was the marker's doing, not a lenient read.
    let other = tmp.path().join("other");
    std::fs::write(&object, b"not an artifact any more").expect("write");
    let o = run(&latest(&store, &other.display().to_string(), &[]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!other.exists());
    std::fs::write(&object, &good).expect("write");

    // An older artifact by URL into the same directory: refused, naming what it holds.
    let url_one = one["url"].as_str().expect("url");
    let before = std::fs::read(into.join("store/blocks")).expect("read");
    let o = run(&["restore", url_one, "--into", &into_s]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_line(&o);
    assert!(
        e.contains("already holds artifact ghostnet-rolling-2")
            && e.contains(two["sha256"].as_str().expect("sha"))
            && e.contains("ghostnet-rolling-1")
            && e.contains("--replace"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(into.join("store/blocks")).expect("read"),
        before
    );
    assert_eq!(marker(&into), m);

    // With --replace: the older state, and a marker that says so.
    let out = json(&run(&["restore", url_one, "--into", &into_s, "--replace"]));
    assert_eq!(out["already_restored"], false);
    assert_eq!(
        std::fs::read(into.join("config.json")).expect("restored"),
        b"{\"height\":1}"
    );
    let m1 = marker(&into);
    assert_eq!(m1["name"], "ghostnet-rolling-1");
    assert_eq!(m1["sha256"], one["sha256"]);
    // --keep-restored: a node that catches up by itself keeps what it was restored from,
    // however far the latest pointer moved, and nothing is read.
    std::fs::write(&object, b"not an artifact any more").expect("write");
    let o = run(&latest(&store, &into_s, &["--keep-restored"]));
    let out = json(&o);
    assert_eq!(out["already_restored"], true, "{out}");
    assert_eq!(out["name"], "ghostnet-rolling-1");
    assert_eq!(out["kept_instead_of"], "ghostnet-rolling-2");
    assert!(
        stderr(&o).contains("kept (--keep-restored)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(into.join("config.json")).expect("kept"),
        b"{\"height\":1}"
    );
    assert_eq!(marker(&into), m1);
    std::fs::write(&object, &good).expect("write");

    let beside: Vec<String> = std::fs::read_dir(into.parent().expect("parent"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        beside,
        ["data"],
        "nothing of the swap left beside the target"
    );
}

#[test]
fn files_without_a_marker_are_refused_and_the_marker_stays_out_of_snapshots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, _, two) = two_artifacts(tmp.path());
    let into = tmp.path().join("data");
    std::fs::create_dir_all(&into).expect("mkdir");
    std::fs::write(into.join("LOCK"), b"a node ran here").expect("write");
    let into_s = into.display().to_string();
    let o = run(&latest(&store, &into_s, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_line(&o);
    assert!(
        e.contains("not empty") && e.contains("no restore marker") && e.contains("--replace"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(into.join("LOCK")).expect("kept"),
        b"a node ran here"
    );

    // A marker that is not JSON: refused, saying so.
    std::fs::write(into.join(MARKER), b"{ torn").expect("write");
    let e = error_line(&run(&latest(&store, &into_s, &[])));
    assert!(
        e.contains(MARKER) && e.contains("not a readable restore marker"),
        "{e}"
    );

    json(&run(&latest(&store, &into_s, &["--replace"])));
    assert!(!into.join("LOCK").exists());
    assert_eq!(marker(&into)["sha256"], two["sha256"]);

    // A snapshot of the restored tree leaves the marker out by default, keeps it when asked.
    let st2 = tmp.path().join("store2");
    std::fs::create_dir_all(&st2).expect("mkdir");
    let store2 = format!("file://{}", st2.display());
    let again = json(&run(&[
        "create",
        "--source",
        &into_s,
        "--store",
        &store2,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--label",
        "again",
    ]));
    assert!(
        again["excludes"]
            .as_array()
            .expect("excludes")
            .iter()
            .any(|e| e == MARKER),
        "{again}"
    );
    let out = tmp.path().join("again");
    json(&run(&[
        "restore",
        again["url"].as_str().expect("url"),
        "--into",
        &out.display().to_string(),
    ]));
    assert_eq!(
        marker(&out)["name"],
        "ghostnet-rolling-again",
        "the restore writes its own marker, the old one did not travel"
    );
    let kept = json(&run(&[
        "create",
        "--source",
        &into_s,
        "--store",
        &store2,
        "--network",
        "ghostnet",
        "--kind",
        "rolling",
        "--label",
        "all",
        "--no-default-excludes",
    ]));
    assert_eq!(
        kept["file_count"].as_u64(),
        again["file_count"].as_u64().map(|n| n + 1),
        "--no-default-excludes keeps the marker: {kept} {again}"
    );
}

#[test]
fn latest_without_an_artifact_and_bad_flags_say_what_is_wrong() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let st = tmp.path().join("store");
    std::fs::create_dir_all(&st).expect("mkdir");
    let store = format!("file://{}", st.display());
    let into = tmp.path().join("data");
    let into_s = into.display().to_string();
    let o = run(&latest(&store, &into_s, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_line(&o);
    assert!(
        e.contains("\"ghostnet\"")
            && e.contains("\"rolling\"")
            && e.contains(&store)
            && e.contains("ghostnet-rolling-latest.json"),
        "{e}"
    );
    assert!(!into.exists());

    // Usage errors (exit 2), each with text clap's message must contain.
    let url = format!("{store}/ghostnet-rolling-1.tar.lz4");
    let rows: Vec<(Vec<&str>, &str)> = vec![
        (vec!["restore", "--into", &into_s], "<URL>"),
        (
            vec![
                "restore",
                &url,
                "--latest",
                "--store",
                &store,
                "--network",
                "n",
                "--kind",
                "k",
                "--into",
                &into_s,
            ],
            "cannot be used with",
        ),
        (
            vec!["restore", "--latest", "--store", &store, "--into", &into_s],
            "--network",
        ),
        (
            vec![
                "restore",
                "--latest",
                "--network",
                "n",
                "--kind",
                "k",
                "--into",
                &into_s,
            ],
            "--store",
        ),
        (
            vec!["restore", &url, "--store", &store, "--into", &into_s],
            "--latest",
        ),
        (
            vec![
                "restore",
                &url,
                "--into",
                &into_s,
                "--replace",
                "--keep-restored",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "restore",
                "--latest",
                "--store",
                &store,
                "--network",
                "Bad_Net",
                "--kind",
                "k",
                "--into",
                &into_s,
            ],
            "network",
        ),
    ];
    for (i, (args, text)) in rows.iter().enumerate() {
        let o = run(args);
        let want = if i == rows.len() - 1 { 1 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "{args:?}: {}", stderr(&o));
    }
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(at: &Path) -> Option<Mount> {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_fresh_volume_with_lost_and_found_counts_as_empty() {
    // A freshly formatted ext4 volume (GCE PD, EBS) mounted at the data directory has an empty
    // lost+found at its root: restored into, with lost+found left in place.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, one, two) = two_artifacts(tmp.path());
    let into = tmp.path().join("mnt/data");
    let Some(_mount) = Mount::tmpfs(&into) else {
        return;
    };
    let into_s = into.display().to_string();
    std::fs::create_dir(into.join("lost+found")).expect("mkdir");
    std::fs::write(into.join("lost+found/#1234"), b"recovered by fsck").expect("write");
    // A lost+found fsck filled is content: refused.
    let o = run(&latest(&store, &into_s, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(error_line(&o).contains("not empty"), "{}", error_line(&o));
    std::fs::remove_file(into.join("lost+found/#1234")).expect("rm");

    let out = json(&run(&latest(&store, &into_s, &[])));
    assert_eq!(out["name"], "ghostnet-rolling-2");
    assert!(into.join("lost+found").is_dir(), "lost+found left in place");
    assert_eq!(marker(&into)["sha256"], two["sha256"]);
    let o = run(&latest(&store, &into_s, &[]));
    assert_eq!(json(&o)["already_restored"], true);

    // Replacing it with another artifact keeps lost+found too, and leaves nothing of ours.
    json(&run(&[
        "restore",
        one["url"].as_str().expect("url"),
        "--into",
        &into_s,
        "--replace",
    ]));
    assert_eq!(marker(&into)["name"], "ghostnet-rolling-1");
    assert!(into.join("lost+found").is_dir());
    let mut names: Vec<String> = std::fs::read_dir(&into)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [MARKER, "config.json", "lost+found", "store"]);
}

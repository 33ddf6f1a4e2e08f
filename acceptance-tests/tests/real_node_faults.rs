//! `scripts/kube-real start --with-node` when things go wrong, and `stop`: a DIR unusable for the
//! node's sockets is refused before anything starts; a daemon that cannot start is named with the
//! end of its log, everything started is stopped, and nothing is left (no process, no mount, the
//! node lock free); a DIR in use is refused at once; a second start in the same DIR after `stop`
//! works.
//!
//! One test function, sequential: a machine runs one node cluster at a time, and this binary must
//! not wait for its own clusters. Gated like `real_node.rs`.

use std::path::Path;
use std::process::{Command, Output};

use acceptance_tests::node::node_available;
use acceptance_tests::workspace_root;

fn kube_real(args: &[&str], dir: &Path) -> Output {
    Command::new(workspace_root().join("scripts/kube-real"))
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        // Bounded: another test process's node cluster may still be stopping.
        .env("KUBE_REAL_NODE_WAIT", "300")
        .output()
        .expect("run scripts/kube-real")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Processes whose command line mentions `dir`, and mounts below it.
fn leftovers(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&d) && !cmd.contains("kube-real-watch") {
            out.push(format!("pid {}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        if let Some(point) = line.split(' ').nth(4) {
            if point.starts_with(&format!("{d}/")) {
                out.push(format!("mount {point}"));
            }
        }
    }
    out
}

/// The node lock is free: every daemon and shim of every node cluster exited. The wait is for
/// the lock, so its bound only matters when something is wrong: a node cluster of the previous
/// test binary is stopped by its watcher once that process exits, which takes a while when the
/// machine is loaded.
fn assert_idle() {
    let o = Command::new(workspace_root().join("scripts/kube-real"))
        .args(["wait-idle", "600"])
        .output()
        .expect("wait-idle");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn node_start_failures_name_the_daemon_and_leave_nothing_and_restart_works() {
    if !node_available() {
        eprintln!("skipped: no real node (scripts/kube-real build, root)");
        return;
    }
    // A DIR too long for the node's unix sockets: refused before anything starts.
    let base = tempfile::tempdir().expect("tempdir");
    let long = base.path().join("d".repeat(100));
    let o = kube_real(&["start", "--with-node"], &long);
    let out = text(&o);
    assert!(
        !o.status.success(),
        "start with an unusable DIR succeeded:\n{out}"
    );
    assert!(
        out.contains("is too long for the node's unix sockets"),
        "{out}"
    );
    assert_eq!(
        leftovers(&long),
        Vec::<String>::new(),
        "after the refused start"
    );

    // The kubelet cannot start (a flag it does not know): start names it, shows its log, stops
    // containerd and the control plane it had started, and leaves nothing.
    let dir = base.path().join("bad");
    let o = Command::new(workspace_root().join("scripts/kube-real"))
        .arg("start")
        .arg(&dir)
        .arg("--with-node")
        .env("KUBE_REAL_NODE_WAIT", "300")
        .env("KUBE_REAL_KUBELET_ARGS", "--no-such-flag")
        .output()
        .expect("run scripts/kube-real");
    let out = text(&o);
    assert!(
        !o.status.success(),
        "start with a failing kubelet succeeded:\n{out}"
    );
    assert!(
        out.contains("kube-real: kubelet exited during start"),
        "names the kubelet:\n{out}"
    );
    assert!(
        out.contains(&format!("--- last lines of {}/kubelet.log", dir.display())),
        "shows the kubelet's log:\n{out}"
    );
    assert!(
        out.contains("unknown flag: --no-such-flag"),
        "the cause, from the kubelet's log:\n{out}"
    );
    assert_eq!(
        leftovers(&dir),
        Vec::<String>::new(),
        "after the failed start"
    );
    assert_idle();

    // A good start; the same DIR again is refused at once; stop leaves nothing; start again works.
    let dir = base.path().join("node");
    for round in 1..=2 {
        let o = kube_real(&["start", "--with-node"], &dir);
        assert!(o.status.success(), "start round {round}:\n{}", text(&o));
        assert!(
            text(&o).contains("ready https://127.0.0.1:"),
            "{}",
            text(&o)
        );
        let gw = std::fs::read_to_string(dir.join("pod-gateway")).expect("pod-gateway");
        assert!(gw.trim().parse::<std::net::Ipv4Addr>().is_ok(), "{gw:?}");
        if round == 1 {
            let again = kube_real(&["start", "--with-node"], &dir);
            assert!(!again.status.success());
            assert!(
                text(&again).contains("already running in"),
                "{}",
                text(&again)
            );
        }
        let o = kube_real(&["stop"], &dir);
        assert!(o.status.success(), "stop round {round}:\n{}", text(&o));
        assert_eq!(
            leftovers(&dir),
            Vec::<String>::new(),
            "after stop, round {round}"
        );
        assert_idle();
    }
}

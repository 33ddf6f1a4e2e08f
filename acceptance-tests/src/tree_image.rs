//! An image whose one program, `tree-sha256`, lists the SHA-256 of every file below a
//! directory, loaded into the real node: a pod that mounts a claim shows what the claim holds
//! as pods see it. Built like `scripts/image` packs the archiver: the debug binary, the glibc
//! libraries it links, and `scripts/oci-archive`; then imported into the node's containerd.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::node::Node;
use crate::{cargo_build, target_dir, workspace_root};

/// The image reference (never pulled: pods use `imagePullPolicy: Never`).
pub const TREE_IMAGE: &str = "localhost/testnet/tree-sha256:v1";

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the image and imports it into `node` (once per test process); returns its reference.
pub fn tree_image(node: &Node) -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let bin = cargo_build("acceptance-tests", "bin", "tree-sha256");
        let root = tempfile::tempdir().expect("rootfs");
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/local/bin")).expect("mkdir");
        std::fs::copy(&bin, r.join("usr/local/bin/tree-sha256")).expect("copy binary");
        let ldd = run(Command::new("ldd").arg(&bin), "ldd");
        for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
            let dest = r.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            let real = std::fs::canonicalize(lib).expect("library");
            std::fs::copy(real, &dest).expect("copy library");
        }
        // /lib64 -> usr/lib64 on merged-/usr systems: the loader path must resolve.
        for d in ["lib", "lib64"] {
            if Path::new("/").join(d).is_symlink() && r.join(d).is_dir() {
                run(
                    Command::new("cp")
                        .args(["-a"])
                        .arg(r.join(d))
                        .arg(r.join("usr/")),
                    "cp lib dir",
                );
                std::fs::remove_dir_all(r.join(d)).expect("rm");
                std::os::unix::fs::symlink(format!("usr/{d}"), r.join(d)).expect("symlink");
            }
        }
        let out = target_dir().join("image/tree-sha256.oci.tar");
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        run(
            Command::new(workspace_root().join("scripts/oci-archive"))
                .args(["--name", TREE_IMAGE, "--rootfs"])
                .arg(r)
                .arg("--out")
                .arg(&out)
                .args(["--entrypoint", r#"["/usr/local/bin/tree-sha256"]"#]),
            "scripts/oci-archive",
        );
        run(
            Command::new("ctr")
                .arg("--address")
                .arg(node.dir.join("containerd/containerd.sock"))
                .args(["-n", "k8s.io", "images", "import"])
                .arg(&out),
            "ctr images import",
        );
    });
    TREE_IMAGE
}

/// Parses `tree-sha256` output: path → SHA-256 (symlinks as `link:<target>`).
pub fn parse_listing(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("link ") {
                let (p, t) = rest.split_once(" -> ")?;
                return Some((p.to_string(), format!("link:{t}")));
            }
            let (h, p) = l.split_once("  ")?;
            Some((p.to_string(), h.to_string()))
        })
        .collect()
}

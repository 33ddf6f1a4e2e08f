//! Test servers: the local sandbox (started per test on a free loopback port) and, when
//! `TESTNET_ACC_KUBECONFIG` is set, a real cluster.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster::{connect, Cluster, ConnectionConfig};

/// A running sandbox; killed when dropped.
pub struct Sandbox {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    pub token: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sandbox_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TESTNET_KUBE_SANDBOX") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let p = target.join("debug").join("testnet-kube-sandbox");
    p.exists().then_some(p)
}

/// Start a sandbox, or `None` (with a loud note) when its binary is not built. Set
/// `TESTNET_REQUIRE_SANDBOX=1` to turn the skip into a failure (CI).
pub fn sandbox() -> Option<Sandbox> {
    sandbox_with(&[])
}

/// [`sandbox`] with extra options, e.g. `--clock-offset-seconds 3600`.
pub fn sandbox_with(extra: &[&str]) -> Option<Sandbox> {
    let Some(bin) = sandbox_binary() else {
        if std::env::var("TESTNET_REQUIRE_SANDBOX").is_ok_and(|v| v == "1") {
            panic!("testnet-kube-sandbox not built: run `cargo build -p kube-sandbox`");
        }
        eprintln!("SKIPPED: testnet-kube-sandbox not built (run `cargo build -p kube-sandbox`, or set TESTNET_KUBE_SANDBOX)");
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let token = format!("tok-{}", std::process::id());
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--token", &token, "--bind-delay-ms", "50"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read ready line");
    let url = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("sandbox did not print `ready <url>`, got {line:?}"))
        .to_string();
    Some(Sandbox {
        child,
        dir,
        kubeconfig,
        url,
        token,
    })
}

impl Sandbox {
    pub async fn cluster(&self) -> Cluster {
        connect(&ConnectionConfig {
            kubeconfig_paths: vec![self.kubeconfig.clone()],
            ..Default::default()
        })
        .await
        .expect("connect to sandbox")
    }

    /// The CA PEM from the kubeconfig the sandbox wrote.
    pub fn ca_pem(&self) -> String {
        use base64::Engine as _;
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let data = kc.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.certificate_authority_data.clone())
            .expect("certificate-authority-data");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64"),
        )
        .expect("utf8")
    }
}

/// The real cluster of `TESTNET_ACC_KUBECONFIG`, if set.
pub async fn acc_cluster() -> Option<Cluster> {
    let path = std::env::var("TESTNET_ACC_KUBECONFIG").ok()?;
    Some(
        connect(&ConnectionConfig {
            kubeconfig_paths: vec![PathBuf::from(path)],
            ..Default::default()
        })
        .await
        .expect("connect to TESTNET_ACC_KUBECONFIG"),
    )
}

/// A name unique to this run, so tests against a shared real cluster do not collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

//! Servers the acceptance tests run against, started once per test and stopped on drop: the
//! local Kubernetes API server (`testnet-kube-sandbox`), a real kube-apiserver
//! (`scripts/kube-real`), moto's S3 server and `gcp-storage-emulator`. Every test file uses these
//! instead of its own copy, so a fix to start-up (ports, readiness) reaches all of them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo_build, workspace_root};

/// A loopback port nobody listens on, chosen below the kernel's ephemeral range.
///
/// Why not port 0: a port the kernel hands out for a listener is drawn from the same range as the
/// source ports of outgoing connections, and with terraform, providers and servers all opening
/// connections in parallel tests, a port freed here was seen taken again before the server bound
/// it. Ports under the ephemeral range are only ever taken by someone binding them on purpose.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    let (from, to) = if low > 12000 {
        (10000u32, low as u32)
    } else {
        (low as u32, 65535)
    };
    // A cheap per-process, per-call spread; no rand dependency needed for this.
    let mut seed = (std::process::id() as u64) << 32;
    seed ^= std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = (from + (seed % (to - from) as u64) as u32) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {from} and {to} after 200 tries")
}

/// The cache that `scripts/test-servers` and `scripts/kube-real` fill.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TESTNET_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/testnet")
        })
}

/// A Kubernetes API server and the kubeconfig that reaches it; stopped on drop.
pub struct KubeServer {
    pub label: &'static str,
    pub kubeconfig: PathBuf,
    /// The server URL (`https://127.0.0.1:PORT`).
    pub url: String,
    child: Option<Child>,
    real_dir: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.real_dir {
            let _ = Command::new(workspace_root().join("scripts/kube-real"))
                .arg("stop")
                .arg(d)
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl KubeServer {
    /// Starts `testnet-kube-sandbox` on a port it picks itself, with its own kubeconfig.
    pub fn sandbox() -> KubeServer {
        KubeServer::sandbox_with(&[])
    }

    /// The sandbox with extra command-line options (e.g. `--bind-delay-ms 200`).
    pub fn sandbox_with(extra: &[&str]) -> KubeServer {
        let bin = cargo_build("kube-sandbox", "bin", "testnet-kube-sandbox");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("ready ") {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(60));
        let mut server = KubeServer {
            label: "sandbox",
            kubeconfig,
            url: String::new(),
            child: Some(child),
            real_dir: None,
            _dir: dir,
        };
        match ready {
            Ok(url) => server.url = url,
            Err(_) => {
                drop(server);
                panic!("{} did not print `ready <url>` within 60 s", bin.display());
            }
        }
        server
    }

    /// Whether this is the real kube-apiserver (which has no volume provisioner, so claims on an
    /// `Immediate` class never bind there).
    pub fn is_real(&self) -> bool {
        self.real_dir.is_some()
    }

    /// Whether a real kube-apiserver can be started: its build cache exists and
    /// `TESTNET_KUBE_REAL` is not `0`. With `TESTNET_KUBE_REAL=1` a missing cache is an error.
    pub fn real_available() -> bool {
        let wanted = std::env::var("TESTNET_KUBE_REAL").ok();
        if wanted.as_deref() == Some("0") {
            return false;
        }
        let built = cache_dir().join("kube-v1.20.2/stamp").exists();
        if !built && wanted.as_deref() == Some("1") {
            panic!("TESTNET_KUBE_REAL=1 but the real kube-apiserver is not built: run scripts/kube-real build");
        }
        built
    }

    /// Starts a real kube-apiserver v1.20.2 with etcd and the controller manager
    /// (`scripts/kube-real start`, which retries itself when a port is taken meanwhile).
    pub fn real() -> KubeServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(workspace_root().join("scripts/kube-real"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/kube-real start");
        let url = std::fs::read_to_string(dir.path().join("url"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let server = KubeServer {
            label: "kube-apiserver v1.20.2",
            kubeconfig: dir.path().join("kubeconfig"),
            url,
            child: None,
            real_dir: Some(dir.path().to_path_buf()),
            _dir: dir,
        };
        assert!(
            out.status.success(),
            "scripts/kube-real start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    /// Runs `body` against the sandbox and, when available, the real kube-apiserver: the same
    /// assertions must hold on both.
    pub fn each(body: impl Fn(&KubeServer)) {
        let s = KubeServer::sandbox();
        eprintln!("--- against {}", s.label);
        body(&s);
        drop(s);
        if KubeServer::real_available() {
            let r = KubeServer::real();
            eprintln!("--- against {}", r.label);
            body(&r);
        } else {
            eprintln!("real kube-apiserver not built (scripts/kube-real build): sandbox only");
        }
    }
}

/// A test server process started from the cache of `scripts/test-servers`; killed on drop.
pub struct TestServer {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the server keeps its log and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// moto's S3 server (PyPI `moto[server]`). Its minimum multipart part size is lowered to
    /// 1 KiB so tests can exercise multipart with small objects. `None` when not installed and
    /// `TESTNET_SKIP_CLOUD_TESTS=1`.
    pub fn moto() -> Option<TestServer> {
        let bin = installed("venv/bin/moto_server")?;
        Some(Self::start("moto_server", |port| {
            let mut c = Command::new(&bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("S3_UPLOAD_PART_MIN_SIZE", "1024");
            c
        }))
    }

    /// `gcp-storage-emulator` (PyPI), in memory.
    pub fn gcs_emulator() -> Option<TestServer> {
        let bin = installed("venv/bin/gcp-storage-emulator")?;
        Some(Self::start("gcp-storage-emulator", |port| {
            let mut c = Command::new(&bin);
            c.args([
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--in-memory",
            ]);
            c
        }))
    }

    /// Starts the server on a free port, retrying on another port when it exits before
    /// listening (a port taken between choosing and binding).
    fn start(name: &'static str, command: impl Fn(u16) -> Command) -> TestServer {
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
            let port = free_port();
            let child = command(port)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("server log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
            let mut server = TestServer {
                name,
                port,
                child,
                dir,
            };
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_)) = server.child.try_wait() {
                    last_log = std::fs::read_to_string(server.dir.path().join("server.log"))
                        .unwrap_or_default();
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return server;
                }
                if Instant::now() > deadline {
                    panic!("{name} did not listen on {addr} within 60 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("{name} exited before listening, three times; last log:\n{last_log}")
    }
}

/// The path of an installed test server, or `None` (skip) when `TESTNET_SKIP_CLOUD_TESTS=1`.
fn installed(rel: &str) -> Option<PathBuf> {
    let path = cache_dir().join(rel);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("TESTNET_SKIP_CLOUD_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "skipping: {} not installed and TESTNET_SKIP_CLOUD_TESTS=1",
            path.display()
        );
        return None;
    }
    panic!(
        "{} is not installed: run scripts/test-servers install (or set TESTNET_SKIP_CLOUD_TESTS=1)",
        path.display()
    )
}

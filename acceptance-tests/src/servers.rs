//! Servers the acceptance tests run against, started once per test and stopped on drop: the
//! local Kubernetes API server (`testnet-kube-sandbox`), a real kube-apiserver
//! (`scripts/kube-real`), moto's S3 server and `gcp-storage-emulator`. Every test file uses these
//! instead of its own copy, so a fix to start-up (ports, readiness) reaches all of them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// Reads and writes an API server directly with its kubeconfig's first cluster and user (token +
/// CA, as both the sandbox and `scripts/kube-real` write them), so tests check what the server
/// holds rather than what Terraform believes.
pub struct KubeApi {
    pub url: String,
    pub token: String,
    agent: ureq::Agent,
}

impl KubeApi {
    pub fn new(kubeconfig: &Path) -> KubeApi {
        use base64::Engine as _;
        let text = std::fs::read_to_string(kubeconfig).expect("read kubeconfig");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig is YAML");
        let cluster = &doc["clusters"][0]["cluster"];
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                cluster["certificate-authority-data"]
                    .as_str()
                    .expect("kubeconfig has certificate-authority-data")
                    .trim(),
            )
            .expect("CA data is base64");
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
            .build();
        KubeApi {
            url: cluster["server"]
                .as_str()
                .expect("kubeconfig has a server")
                .trim_end_matches('/')
                .to_string(),
            token: doc["users"][0]["user"]["token"]
                .as_str()
                .expect("kubeconfig user has a token")
                .to_string(),
            agent: ureq::Agent::config_builder()
                .tls_config(tls)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
        }
    }

    /// The object at `path`, or `None` when the server answers 404; any other answer panics.
    pub fn get(&self, path: &str) -> Option<Value> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json")
            .call()
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.url));
        let code = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().expect("read body");
        match code {
            404 => None,
            200 => Some(serde_json::from_str(&body).expect("JSON body")),
            _ => panic!("GET {}{path}: {code} {body}", self.url),
        }
    }

    /// The Lease `namespace/name`, asserted to exist and to have no holder: what a lock leaves
    /// once every holder has let go.
    pub fn free_lease(&self, namespace: &str, name: &str) -> Value {
        let lease = self
            .get(&format!(
                "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
            ))
            .expect("the Lease exists");
        assert!(
            lease["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "still held: {lease}"
        );
        lease
    }

    /// PUTs `body` to `path` (a replace, as `kubectl edit` does); returns the status and text.
    pub fn put(&self, path: &str, body: &Value) -> (u16, String) {
        self.send("PUT", path, "application/json", Some(&body.to_string()))
    }

    /// Any request: `method` on `path` with an optional body of `content_type`; returns the status
    /// and the answer's text (pod logs are text, not JSON).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let uri = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .body(body.unwrap_or_default().to_string())
            .expect("request");
        let mut resp = self
            .agent
            .run(req)
            .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
        let code = resp.status().as_u16();
        (code, resp.body_mut().read_to_string().unwrap_or_default())
    }

    /// POSTs `body` to `path`; returns the status and the answer's text.
    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {}{path}: {e}", self.url));
        let code = resp.status().as_u16();
        (code, resp.body_mut().read_to_string().unwrap_or_default())
    }
}

/// A test server process started from the cache of `scripts/test-servers`; killed on drop.
pub struct TestServer {
    pub name: &'static str,
    /// The address it listens on (loopback unless started with a host).
    pub host: String,
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

/// Runs `cmd` to its end and returns its stdout; panics with its stderr when it fails.
pub fn stdout_of(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl TestServer {
    /// `testnet-archiver` flags that reach this S3 server (credentials come from the
    /// environment).
    pub fn archiver_flags(&self) -> [String; 5] {
        [
            "--endpoint".into(),
            self.endpoint(),
            "--path-style".into(),
            "--region".into(),
            "us-east-1".into(),
        ]
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The server's process id (to stop and continue it: a store that stops answering).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the server keeps its log and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// moto's S3 server (PyPI `moto[server]`). Its minimum multipart part size is lowered to
    /// 1 KiB so tests can exercise multipart with small objects. `None` when not installed and
    /// `TESTNET_SKIP_CLOUD_TESTS=1`.
    pub fn moto() -> Option<TestServer> {
        let bin = installed("TESTNET_MOTO", "venv/bin/moto_server")?;
        Some(Self::start("moto_server", |port, _| {
            let mut c = Command::new(&bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("S3_UPLOAD_PART_MIN_SIZE", "1024");
            c
        }))
    }

    /// `gcp-storage-emulator` (PyPI), in memory.
    pub fn gcs_emulator() -> Option<TestServer> {
        let bin = installed("TESTNET_GCS_EMULATOR", "venv/bin/gcp-storage-emulator")?;
        Some(Self::start("gcp-storage-emulator", |port, _| {
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

    /// s3s-fs (crates.io), which checks SigV4 signatures and `x-amz-checksum-sha256`; it serves
    /// the directory `dir()/data` with these credentials.
    pub fn s3s_fs(access_key: &str, secret_key: &str) -> Option<TestServer> {
        Self::s3s_fs_on("127.0.0.1", access_key, secret_key)
    }

    /// [`TestServer::s3s_fs`] listening on `host`, e.g. a node's pod gateway so pods reach it.
    pub fn s3s_fs_on(host: &str, access_key: &str, secret_key: &str) -> Option<TestServer> {
        let bin = installed("TESTNET_S3S_FS", "s3s-fs/bin/s3s-fs")?;
        Some(Self::start_on(host, "s3s-fs", |port, dir| {
            let root = dir.join("data");
            std::fs::create_dir_all(&root).expect("s3s-fs data dir");
            let mut c = Command::new(&bin);
            c.args(["--host", host, "--port", &port.to_string()])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(root);
            c
        }))
    }

    /// Starts the server on a free port, retrying on another port when it exits before
    /// listening (a port taken between choosing and binding).
    fn start(name: &'static str, command: impl Fn(u16, &Path) -> Command) -> TestServer {
        Self::start_on("127.0.0.1", name, command)
    }

    fn start_on(
        host: &str,
        name: &'static str,
        command: impl Fn(u16, &Path) -> Command,
    ) -> TestServer {
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
            let port = free_port();
            let child = command(port, dir.path())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("server log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
            let mut server = TestServer {
                name,
                host: host.to_string(),
                port,
                child,
                dir,
            };
            let ip: std::net::IpAddr = host.parse().expect("an IP address");
            let addr: SocketAddr = (ip, port).into();
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

/// One plain HTTP/1.0 request (no keep-alive, no chunking) with a JSON body; returns status
/// and body, from a test server on a loopback port. moto accepts it unsigned when it carries a
/// dummy SigV4 header, which GCS ignores.
///
/// A loaded server may reset a connection (moto's threaded server does when a test's own
/// uploads keep it busy): an idempotent request (anything but POST) is sent again on a new
/// connection, as any HTTP client would, up to 5 times; a POST is never repeated, since the
/// server may have acted on it.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let attempts = if method == "POST" { 1 } else { 5 };
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 << attempt));
        }
        match http_once(port, method, path, body) {
            Ok(answer) => return answer,
            Err(e) => last = e,
        }
    }
    panic!("{method} {path} on 127.0.0.1:{port} failed {attempts} time(s); last: {last}")
}

fn http_once(port: u16, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    // A server that stops answering fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| format!("set timeout: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response head in {} bytes", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, buf[split + 4..].to_vec()))
}

/// The path of an installed test server (`env_var` overrides the cache), or `None` (skip) when
/// it is missing and `TESTNET_SKIP_CLOUD_TESTS=1`.
fn installed(env_var: &str, rel: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join(rel));
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

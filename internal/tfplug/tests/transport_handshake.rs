//! The transport as Terraform sees it: the demo plugin (examples/transport-demo.rs) started as a
//! child process with go-plugin's environment, and a gRPC client that behaves like Terraform's
//! (its own ECDSA P-521 client certificate, pinning the server certificate from the handshake).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tfplug::proto::{plugin, tfplugin6 as pb};
use tfplug::transport::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use tonic::transport::{Channel, Endpoint};

fn demo() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| acceptance_tests::cargo_build("tfplug", "example", "transport-demo"))
}

/// A client identity like the one Terraform generates for every plugin: self-signed, a CA,
/// ECDSA P-521 with SHA-512.
struct Identity {
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pem: String,
}

fn terraform_like_identity() -> Identity {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Identity {
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        pem: cert.pem(),
    }
}

/// Where the plugin said it listens.
#[derive(Clone, Debug)]
enum Addr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Either kind of connection, for the TLS connector and the plaintext channel.
enum Io {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn dial(addr: &Addr) -> std::io::Result<Io> {
    Ok(match addr {
        Addr::Unix(p) => Io::Unix(tokio::net::UnixStream::connect(p).await?),
        Addr::Tcp(a) => Io::Tcp(tokio::net::TcpStream::connect(a).await?),
    })
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
            Io::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Io::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A plaintext gRPC channel (no AutoMTLS).
async fn plain_channel(addr: &Addr) -> Result<Channel, tonic::transport::Error> {
    let addr = addr.clone();
    Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_uri| {
            let addr = addr.clone();
            async move { dial(&addr).await.map(TokioIo::new) }
        }))
        .await
}

/// A running plugin: its address, pinned server certificate and collected stderr.
struct Plugin {
    child: Child,
    addr: Addr,
    server_cert: Vec<u8>,
    handshake: String,
    stderr: Arc<Mutex<String>>,
}

impl Plugin {
    fn start(client_cert_pem: Option<&str>) -> Plugin {
        Self::start_with(client_cert_pem, &[])
    }

    fn start_with(client_cert_pem: Option<&str>, env: &[(&str, &str)]) -> Plugin {
        let mut cmd = Command::new(demo());
        cmd.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
            .env("TF_LOG", "DEBUG")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("PLUGIN_MIN_PORT")
            .env_remove("PLUGIN_MAX_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.envs(env.iter().copied());
        match client_cert_pem {
            Some(pem) => cmd.env("PLUGIN_CLIENT_CERT", pem),
            None => cmd.env_remove("PLUGIN_CLIENT_CERT"),
        };
        let mut child = cmd.spawn().expect("start transport-demo");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut handshake = String::new();
        out.read_line(&mut handshake).expect("read handshake line");
        // Anything further on stdout would break go-plugin; keep reading to prove there is none.
        let rest = Arc::new(Mutex::new(String::new()));
        let rest2 = rest.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            rest2.lock().unwrap().push_str(&s);
        });
        let fields: Vec<&str> = handshake.trim_end_matches('\n').split('|').collect();
        assert_eq!(fields.len(), 6, "handshake line {handshake:?}");
        assert_eq!(&fields[..2], ["1", "6"], "handshake line {handshake:?}");
        assert_eq!(fields[4], "grpc");
        let addr = match fields[2] {
            "unix" => Addr::Unix(PathBuf::from(fields[3])),
            "tcp" => {
                let a: SocketAddr = fields[3].parse().expect("address");
                assert!(a.ip().is_loopback());
                Addr::Tcp(a)
            }
            other => panic!("network {other:?} in handshake line {handshake:?}"),
        };
        let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fields[5])
            .expect("unpadded base64 cert");
        Plugin {
            child,
            addr,
            server_cert,
            handshake,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit (a hang guard of 20 s, not a performance assertion).
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("plugin did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Trusts exactly one server certificate, as go-plugin's client does with the handshake's.
#[derive(Debug)]
struct Pinned(Vec<u8>, rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(name.to_str(), "localhost");
        if ee.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "server certificate differs from the handshake's".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.supported_schemes()
    }
}

/// A gRPC channel over TLS presenting `identity` (or no certificate at all).
async fn tls_channel(
    addr: &Addr,
    server_cert: &[u8],
    identity: Option<&Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let provider = tfplug::transport::crypto_provider();
    let verifier = Arc::new(Pinned(
        server_cert.to_vec(),
        provider.signature_verification_algorithms,
    ));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.der.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone_key()),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = addr.clone();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_uri| {
            let connector = connector.clone();
            let addr = addr.clone();
            async move {
                let io = dial(&addr).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), io)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn run_by_hand_explains_and_exits_1() {
    let out = Command::new(demo())
        .env_remove(MAGIC_COOKIE_KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing may go to stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin for Terraform") && err.contains("not meant to be run by hand"),
        "{err}"
    );
}

#[test]
fn protocol_6_not_offered_exits_1() {
    let out = Command::new(demo())
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("protocol 6 only") && err.contains("\"4,5\""),
        "{err}"
    );
}

#[test]
fn auto_mtls_serves_terraform_and_refuses_others() {
    let terraform = terraform_like_identity();
    let mut plugin = Plugin::start(Some(&terraform.pem));
    assert!(
        !plugin.server_cert.is_empty(),
        "AutoMTLS handshake carries the server certificate: {}",
        plugin.handshake
    );
    let rt = rt();
    rt.block_on(async {
        let channel = tls_channel(&plugin.addr, &plugin.server_cert, Some(&terraform))
            .await
            .expect("connect with Terraform's certificate");

        let schema = pb::provider_client::ProviderClient::new(channel.clone())
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .expect("GetProviderSchema")
            .into_inner();
        assert!(schema.provider.is_some());
        assert!(
            schema
                .server_capabilities
                .unwrap()
                .get_provider_schema_optional
        );

        let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: "plugin".into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            health.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );

        // go-plugin opens the stdio stream first thing; it must be accepted and stay open.
        let _stdio = plugin::grpc_stdio_client::GrpcStdioClient::new(channel.clone())
            .stream_stdio(())
            .await
            .expect("StreamStdio")
            .into_inner();

        // An RPC the demo does not implement is an UNIMPLEMENTED status, not a broken connection.
        let st = pb::provider_client::ProviderClient::new(channel.clone())
            .get_functions(pb::get_functions::Request {})
            .await
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::Unimplemented);

        // Another certificate, even of the same shape, and no certificate at all, are refused.
        let stranger = terraform_like_identity();
        for (who, id) in [
            ("another certificate", Some(&stranger)),
            ("no certificate", None),
        ] {
            let refused = match tls_channel(&plugin.addr, &plugin.server_cert, id).await {
                Err(_) => true,
                Ok(ch) => pb::provider_client::ProviderClient::new(ch)
                    .get_provider_schema(pb::get_provider_schema::Request {})
                    .await
                    .is_err(),
            };
            assert!(refused, "a client with {who} must be refused");
        }

        // Terraform's connection still works after the refusals.
        pb::provider_client::ProviderClient::new(channel.clone())
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .expect("still serving");

        plugin::grpc_controller_client::GrpcControllerClient::new(channel)
            .shutdown(plugin::Empty {})
            .await
            .expect("Shutdown");
    });
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", plugin.stderr());
    let stderr = plugin.stderr();
    // The channel may retry a refused connection, so count kinds, not lines.
    assert!(
        stderr.contains("refused connection") && stderr.contains("ApplicationVerificationFailure"),
        "wrong certificate logged:\n{stderr}"
    );
    assert!(
        stderr.contains("peer sent no certificates"),
        "missing certificate logged:\n{stderr}"
    );
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not hclog JSON ({e}): {line}"));
        assert_eq!(v["@module"], "provider", "{line}");
        assert!(
            v["@timestamp"]
                .as_str()
                .is_some_and(|t| t.len() == 27 && t.ends_with('Z')),
            "{line}"
        );
    }
    assert!(
        stderr.contains("\"@level\":\"error\"") && stderr.contains("Shutdown requested"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("frame="),
        "HTTP/2 frame logs stay out at DEBUG:\n{stderr}"
    );
}

#[test]
fn sigint_is_survived_sigterm_stops() {
    let mut plugin = Plugin::start(None);
    assert!(
        plugin.handshake.ends_with("|grpc|\n"),
        "no AutoMTLS: empty certificate field: {:?}",
        plugin.handshake
    );
    let pid = plugin.child.id().to_string();
    let rt = rt();
    rt.block_on(async {
        let channel = plain_channel(&plugin.addr)
            .await
            .expect("plaintext connect");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        // Still serving after Ctrl-C, on the same connection.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let r = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "plugin".into(),
                })
                .await
                .expect("alive after SIGINT");
            assert_eq!(
                r.into_inner().status(),
                tonic_health::pb::health_check_response::ServingStatus::Serving
            );
        }
    });
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "SIGINT must not stop the plugin"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", plugin.stderr());
    assert!(plugin.stderr().contains("SIGTERM received"));
}

#[test]
fn listens_on_a_unix_socket_in_the_socket_dir_and_removes_it_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let mut plugin = Plugin::start_with(None, &[("PLUGIN_UNIX_SOCKET_DIR", dir_s)]);
    let Addr::Unix(path) = plugin.addr.clone() else {
        panic!(
            "expected a Unix socket, as go-plugin servers use: {:?}",
            plugin.handshake
        );
    };
    assert_eq!(path.parent(), Some(dir.path()), "{:?}", plugin.handshake);
    assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
    stop_cleanly(&mut plugin);
    assert!(!path.exists(), "socket file left behind after shutdown");
}

#[test]
fn falls_back_to_loopback_tcp_when_no_socket_can_be_made() {
    // A Unix socket path must fit in 108 bytes: this directory cannot hold one.
    let long = std::env::temp_dir().join("x".repeat(120));
    let mut plugin = Plugin::start_with(
        None,
        &[
            ("PLUGIN_UNIX_SOCKET_DIR", long.to_str().unwrap()),
            ("PLUGIN_MIN_PORT", "20000"),
            ("PLUGIN_MAX_PORT", "25000"),
        ],
    );
    let Addr::Tcp(addr) = plugin.addr.clone() else {
        panic!("expected TCP: {:?}", plugin.handshake);
    };
    assert!((20000..=25000).contains(&addr.port()), "{addr}");
    stop_cleanly(&mut plugin);
}

/// Waits for the plugin's "plugin serving" debug line (hclog JSON, written just after the
/// handshake and read from stderr by a thread of its own) and returns its `field`.
fn serving_field(plugin: &Plugin, field: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stderr = plugin.stderr();
        let serving = stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["@message"] == "plugin serving");
        if let Some(line) = serving {
            return line[field].clone();
        }
        if Instant::now() > deadline {
            panic!("no \"plugin serving\" line within 20 s; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn one_async_worker_unless_tfplug_worker_threads_says_otherwise() {
    for (env, want) in [(None, 1), (Some("3"), 3), (Some("none"), 1)] {
        let vars: Vec<(&str, &str)> = env
            .map(|v| ("TFPLUG_WORKER_THREADS", v))
            .into_iter()
            .collect();
        let mut plugin = Plugin::start_with(None, &vars);
        // The runtime's own count of its workers, not thread names sampled from /proc: a
        // worker names itself only once it runs, which may be after the handshake.
        let workers = serving_field(&plugin, "async_workers");
        assert_eq!(
            workers,
            serde_json::json!(want),
            "TFPLUG_WORKER_THREADS={env:?}; stderr:\n{}",
            plugin.stderr()
        );
        stop_cleanly(&mut plugin);
    }
}

/// Asks a plugin served without AutoMTLS to stop, as Terraform does at the end of a run, and
/// expects exit code 0.
fn stop_cleanly(plugin: &mut Plugin) {
    rt().block_on(async {
        let channel = plain_channel(&plugin.addr).await.expect("connect");
        plugin::grpc_controller_client::GrpcControllerClient::new(channel)
            .shutdown(plugin::Empty {})
            .await
            .expect("shutdown");
    });
    let status = plugin.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", plugin.stderr());
}

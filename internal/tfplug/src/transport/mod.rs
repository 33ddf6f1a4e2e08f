//! Running a provider as Terraform's plugin: go-plugin's handshake, AutoMTLS, the gRPC server
//! with the services go-plugin expects beside the provider, shutdown, and hclog logging.
//!
//! Terraform starts the binary with a magic cookie and the protocol versions it speaks in the
//! environment, reads one line from its stdout (`1|6|unix|/tmp/plugin123|grpc|CERT`), connects
//! over mutual TLS, and at the end calls `GRPCController.Shutdown`.

mod handshake;
mod listen;
mod logging;
mod services;
mod tls;

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::proto::tfplugin6::provider_server::{Provider, ProviderServer};

pub use handshake::{
    check_cookie, handshake_line, negotiate_version, port_range, APP_PROTOCOL_VERSION,
    CORE_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE,
};
pub use listen::ListenAddr;
use listen::{Listener, Stream};
pub use logging::{
    format_event, hclog_timestamp, init_logging, level_from_env, targets, HclogLayer,
};
pub use tls::{auto_mtls, crypto_provider, parse_client_cert, server_certificate, AutoMtls};

/// Largest gRPC message accepted or sent. Schemas and states of big configurations exceed
/// tonic's 4 MiB default; Terraform's Go SDKs allow 256 MiB.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How [`serve`] runs. `Default` is right for a provider binary.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Cancelled by `serve` when the plugin shuts down for any reason (Shutdown RPC, SIGTERM,
    /// parent gone); cancel it yourself to stop serving. Clone it before passing the options to
    /// hand long-running work a signal that the process is about to exit.
    pub shutdown: CancellationToken,
    /// Stop when the parent process (Terraform) goes away without calling Shutdown, so a killed
    /// Terraform does not leave plugins behind.
    pub exit_with_parent: bool,
    /// After shutdown starts, how long in-flight calls may take before `serve` returns anyway.
    /// go-plugin kills the process 2 s after asking it to shut down.
    pub grace: Duration,
    /// Handle SIGTERM (stop) and SIGINT (ignore: Terraform forwards Ctrl-C to the plugin's
    /// process group, then calls StopProvider; the plugin must outlive it).
    pub handle_signals: bool,
    /// Async worker threads of [`serve_blocking`]'s runtime; `TFPLUG_WORKER_THREADS` in the
    /// environment overrides it. One by default: Terraform runs beside the plugin and keeps the
    /// machine's cores busy itself, and a plugin's async work is I/O and light CPU (heavy work
    /// such as the archiver runs on threads of its own). On 2 cores one worker planned 200
    /// resources 0-7 ms faster than two (three A/B runs of 40 plans) and applied 400 Kubernetes
    /// objects as fast.
    pub worker_threads: usize,
}

/// Environment variable that overrides [`ServeOptions::worker_threads`] (a positive integer).
pub const WORKER_THREADS_ENV: &str = "TFPLUG_WORKER_THREADS";

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            shutdown: CancellationToken::new(),
            exit_with_parent: true,
            grace: Duration::from_millis(1500),
            handle_signals: true,
            worker_threads: 1,
        }
    }
}

/// Why the plugin could not be served. Every variant means exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "This binary is a plugin for Terraform (plugin protocol 6). It is not meant to be run by hand:\n\
         Terraform starts it itself when a configuration uses the provider. Install it in a provider\n\
         mirror or name it in a dev_overrides block of your CLI configuration, then run terraform."
    )]
    NotLaunchedByTerraform,
    #[error("This plugin speaks Terraform plugin protocol 6 only, and the client offered {offered:?} (PLUGIN_PROTOCOL_VERSIONS). Use Terraform 1.0 or later.")]
    UnsupportedProtocol { offered: String },
    #[error("{variable}={value:?} is not a port number range (0-65535, min not above max)")]
    BadPortRange {
        variable: &'static str,
        value: String,
    },
    #[error("cannot listen on 127.0.0.1 in ports {range}: {source}")]
    Listen { range: String, source: io::Error },
    #[error("PLUGIN_CLIENT_CERT is not a usable client certificate: {reason}")]
    BadClientCert { reason: String },
    #[error("cannot generate the server certificate: {0}")]
    CertGen(rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Tls(rustls::Error),
    #[error("cannot write the handshake line to stdout: {0}")]
    Handshake(io::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `provider` as a Terraform plugin until shut down. Reads the go-plugin environment,
/// prints the handshake line, then serves; returns `Ok` after a Shutdown RPC, SIGTERM, the
/// parent's exit or cancellation of [`ServeOptions::shutdown`].
pub async fn serve<S: Provider>(provider: S, opts: ServeOptions) -> Result<(), ServeError> {
    let env = |k: &str| std::env::var(k).ok();
    check_cookie(env(MAGIC_COOKIE_KEY).as_deref())?;
    let version = negotiate_version(env("PLUGIN_PROTOCOL_VERSIONS").as_deref())?;
    let range = port_range(
        env("PLUGIN_MIN_PORT").as_deref(),
        env("PLUGIN_MAX_PORT").as_deref(),
    )?;
    let mtls = match env("PLUGIN_CLIENT_CERT").filter(|s| !s.trim().is_empty()) {
        Some(pem) => Some(auto_mtls(&pem)?),
        None => None,
    };
    let socket_dir = env("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from);
    let listener = listen::listen(socket_dir, range).await?;
    let addr = listener.addr().map_err(|source| ServeError::Listen {
        range: "0".into(),
        source,
    })?;
    let shutdown = opts.shutdown.clone();

    let (tx, rx) = tokio::sync::mpsc::channel::<Conn>(16);
    let acceptor = mtls
        .as_ref()
        .map(|m| tokio_rustls::TlsAcceptor::from(m.config.clone()));
    tokio::spawn(accept_loop(listener, acceptor, tx, shutdown.clone()));
    if opts.handle_signals {
        spawn_signal_handlers(shutdown.clone());
    }
    if opts.exit_with_parent {
        spawn_parent_watch(shutdown.clone());
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let line = handshake_line(
        version,
        &addr,
        mtls.as_ref().map_or("", |m| m.cert_b64.as_str()),
    );
    {
        let mut out = io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .map_err(ServeError::Handshake)?;
    }
    tracing::debug!(
        address = %addr,
        auto_mtls = mtls.is_some(),
        protocol_version = version,
        async_workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "plugin serving"
    );

    let server = tonic::transport::Server::builder()
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(services::Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(services::Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(services::Broker {
            shutdown: shutdown.clone(),
        }))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, io::Error>),
            shutdown.clone().cancelled_owned(),
        );
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(opts.grace).await } => {
            tracing::warn!(grace_ms = opts.grace.as_millis() as u64, "calls still running after shutdown; exiting anyway");
        }
    }
    shutdown.cancel();
    tracing::debug!("plugin stopped");
    Ok(())
}

/// Runs [`serve`] on a fresh tokio runtime and turns the outcome into the process exit code,
/// printing the error (plain text, for a human) on stderr. For a provider's `main`.
pub fn serve_blocking<S: Provider>(provider: S, opts: ServeOptions) -> std::process::ExitCode {
    let workers = worker_threads(
        std::env::var(WORKER_THREADS_ENV).ok().as_deref(),
        opts.worker_threads,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(provider, opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Plain text: read by a human, or logged raw by go-plugin.
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The worker count: `TFPLUG_WORKER_THREADS` when it is a positive integer, else `default`
/// (at least 1). A bad value is not worth refusing to start over.
fn worker_threads(env: Option<&str>, default: usize) -> usize {
    env.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
        .max(1)
}

/// Accepts connections; TLS handshakes run in their own tasks so a stalled or refused client
/// never holds up Terraform's. Refusals are logged with the peer and the reason.
async fn accept_loop(
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: tokio::sync::mpsc::Sender<Conn>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(acceptor) = tls.clone() else {
            if tx.send(Conn::Plain(stream)).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send(Conn::Tls(Box::new(stream))).await;
                }
                Ok(Err(e)) => refused(&peer, &e.to_string()),
                Err(_) => refused(&peer, "TLS handshake not completed within 10 s"),
            }
        });
    }
}

fn refused(peer: &str, reason: &str) {
    tracing::error!(peer = %peer, reason, "refused connection: TLS handshake failed (AutoMTLS accepts only the client certificate Terraform passed in PLUGIN_CLIENT_CERT)");
}

fn spawn_signal_handlers(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::interrupt()) {
        Ok(mut sigint) => {
            tokio::spawn(async move {
                while sigint.recv().await.is_some() {
                    tracing::debug!(
                        "SIGINT ignored: Terraform stops the provider with StopProvider"
                    );
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGINT; Ctrl-C may kill the provider"),
    }
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            tokio::spawn(async move {
                if sigterm.recv().await.is_some() {
                    tracing::info!("SIGTERM received, shutting down");
                    shutdown.cancel();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGTERM"),
    }
}

/// Polls the parent pid: when Terraform dies the plugin is re-parented and should exit. Reading
/// stdin to detect this is not an option: it is Terraform's terminal and shared with prompts.
fn spawn_parent_watch(shutdown: CancellationToken) {
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => if std::os::unix::process::parent_id() != parent {
                    tracing::info!(parent, "parent process exited, shutting down");
                    shutdown.cancel();
                    return;
                },
            }
        }
    });
}

/// One accepted connection, plain or TLS, as the gRPC server sees it.
enum Conn {
    Plain(Stream),
    Tls(Box<tokio_rustls::server::TlsStream<Stream>>),
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn worker_threads_from_the_environment_or_the_default() {
        assert_eq!(worker_threads(None, 1), 1);
        assert_eq!(worker_threads(Some("4"), 1), 4);
        assert_eq!(worker_threads(Some(" 2 "), 1), 2);
        // Not a positive integer: the default, never a runtime without workers.
        for bad in ["0", "-1", "two", ""] {
            assert_eq!(worker_threads(Some(bad), 1), 1, "{bad:?}");
        }
        assert_eq!(worker_threads(None, 0), 1);
    }
}

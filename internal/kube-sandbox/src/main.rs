//! `testnet-kube-sandbox`: a small HTTPS Kubernetes API server with real kube-apiserver
//! semantics for the kinds terraform-provider-testnet manages, for tests and the demo.

mod controller;
mod kinds;
mod patch;
mod quantity;
mod selector;
mod server;
mod status;
mod store;
mod tls;
mod util;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const USAGE: &str = "usage: testnet-kube-sandbox --listen 127.0.0.1:PORT --kubeconfig PATH [--data-dir DIR] [--token TOKEN] [--bind-delay-ms N] [--clock-offset-seconds N]";

struct Args {
    listen: SocketAddr,
    kubeconfig: PathBuf,
    data_dir: Option<PathBuf>,
    token: Option<String>,
    bind_delay: Duration,
    clock_offset: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut listen, mut kubeconfig, mut data_dir, mut token, mut delay) =
        (None, None, None, None, 200u64);
    let mut clock_offset = 0i64;
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--listen" => {
                let v = val("--listen")?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v:?}: {e}"))?,
                );
            }
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(val("--kubeconfig")?)),
            "--data-dir" => data_dir = Some(PathBuf::from(val("--data-dir")?)),
            "--token" => token = Some(val("--token")?),
            "--bind-delay-ms" => {
                let v = val("--bind-delay-ms")?;
                delay = v
                    .parse()
                    .map_err(|e| format!("--bind-delay-ms {v:?}: {e}"))?;
            }
            "--clock-offset-seconds" => {
                let v = val("--clock-offset-seconds")?;
                clock_offset = v
                    .parse()
                    .map_err(|e| format!("--clock-offset-seconds {v:?}: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or(format!("--listen is required\n{USAGE}"))?,
        kubeconfig: kubeconfig.ok_or(format!("--kubeconfig is required\n{USAGE}"))?,
        data_dir,
        token,
        bind_delay: Duration::from_millis(delay),
        clock_offset,
    })
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("testnet-kube-sandbox: {msg}");
    std::process::exit(1)
}

/// Namespaces every cluster starts with.
fn seed(store: &store::Store) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if store.get(&kinds::NAMESPACES, "", ns).is_none() {
            let obj = json!({
                "metadata": {"name": ns, "uid": util::new_uid(), "creationTimestamp": util::now_rfc3339()},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            if let Err(e) = store.create(&kinds::NAMESPACES, obj) {
                fail(format!("seeding namespace {ns}: {e}"));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args().unwrap_or_else(|e| fail(e));
    util::set_clock_offset(args.clock_offset);
    if let Some(d) = &args.data_dir {
        std::fs::create_dir_all(d)
            .unwrap_or_else(|e| fail(format!("creating data dir {}: {e}", d.display())));
    }
    let store = store::Store::open(args.data_dir.clone()).unwrap_or_else(|e| fail(e));
    seed(&store);
    let listener = TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", args.listen)));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(format!("local address: {e}")));
    let certs = tls::generate().unwrap_or_else(|e| fail(e));
    let token = args.token.clone().unwrap_or_else(util::random_token);
    let url = format!("https://{addr}");
    tls::write_kubeconfig(&args.kubeconfig, &url, &certs.ca_pem, &token)
        .unwrap_or_else(|e| fail(e));

    let app = Arc::new(server::App {
        store: store.clone(),
        token,
        address: addr.to_string(),
    });
    tokio::spawn(controller::run(store, args.bind_delay));
    let acceptor = TlsAcceptor::from(certs.server_config);
    println!("ready {url}");

    let accept = async move {
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                };
                // Our own `Date` (the server's clock, offset or not): clients judge lease
                // expiry by it.
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move {
                        let mut resp = server::handle(app, req).await?;
                        if let Ok(v) = http::HeaderValue::from_str(&util::http_date()) {
                            resp.headers_mut().insert(http::header::DATE, v);
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .auto_date_header(false)
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(format!("installing SIGTERM handler: {e}")));
    tokio::select! {
        _ = accept => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // Every change is persisted as it happens, so there is nothing to flush.
    std::process::exit(0);
}

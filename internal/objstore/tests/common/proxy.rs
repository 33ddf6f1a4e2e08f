//! A TCP proxy between a store and its server that misbehaves on chosen connections: resets
//! them part-way through a request, answers 500/503 without asking the server, or stalls.
//! Faults are chosen per connection by a plan, so a run is reproducible up to the client's
//! connection reuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded untouched.
    Pass,
    /// Forwards this many request bytes, then resets both sides (RST).
    ResetAfter(usize),
    /// Reads the request head, answers with this status and an S3-style error, closes.
    Status(u16),
    /// Forwards everything but flips one byte at this offset of the client's byte stream
    /// (bits corrupted in flight).
    Corrupt(usize),
    /// Swallows the request and answers nothing for this long, then closes.
    Stall(Duration),
}

/// Faults the proxy injected, by kind.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
    pub statuses: AtomicU64,
    pub stalls: AtomicU64,
    pub corruptions: AtomicU64,
}

impl Stats {
    pub fn faults(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
            + self.statuses.load(Ordering::SeqCst)
            + self.stalls.load(Ordering::SeqCst)
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections, {} resets, {} error statuses, {} stalls",
            self.connections.load(Ordering::SeqCst),
            self.resets.load(Ordering::SeqCst),
            self.statuses.load(Ordering::SeqCst),
            self.stalls.load(Ordering::SeqCst)
        )
    }
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Listens on a free loopback port and forwards to `upstream`; `plan(n)` decides the fate of
    /// the n-th connection (0-based).
    pub async fn start(
        upstream: SocketAddr,
        plan: impl Fn(u64) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let plan = Arc::new(plan);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let n = st.connections.fetch_add(1, Ordering::SeqCst);
                let fault = plan(n);
                let st = st.clone();
                conns.spawn(async move {
                    let _ = handle(client, upstream, fault, &st).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        FaultProxy { addr, stats, task }
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    st: &Stats,
) -> std::io::Result<()> {
    match fault {
        Fault::Pass => {
            let mut server = TcpStream::connect(upstream).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        Fault::ResetAfter(limit) => {
            let mut server = TcpStream::connect(upstream).await?;
            {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 64 * 1024];
                    while sent < limit {
                        let n = cr.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        let take = n.min(limit - sent);
                        sw.write_all(&buf[..take]).await?;
                        sent += take;
                    }
                    std::io::Result::Ok(())
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            }
            st.resets.fetch_add(1, Ordering::SeqCst);
            // Linger 0: closing sends RST, as a crashed peer or middlebox would (a zero linger
            // never blocks, which is what tokio's deprecation is about).
            #[allow(deprecated)]
            {
                client.set_linger(Some(Duration::ZERO))?;
                server.set_linger(Some(Duration::ZERO))?;
            }
        }
        Fault::Corrupt(at) => {
            let mut server = TcpStream::connect(upstream).await?;
            let (mut cr, mut cw) = client.split();
            let (mut sr, mut sw) = server.split();
            let up = async {
                let mut seen = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = cr.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    if at >= seen && at < seen + n {
                        buf[at - seen] ^= 0x20;
                        st.corruptions.fetch_add(1, Ordering::SeqCst);
                    }
                    seen += n;
                    sw.write_all(&buf[..n]).await?;
                }
                sw.shutdown().await
            };
            let down = tokio::io::copy(&mut sr, &mut cw);
            let _ = tokio::join!(up, down);
        }
        Fault::Status(code) => {
            let mut head = Vec::new();
            let mut buf = [0u8; 8192];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = client.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                head.extend_from_slice(&buf[..n]);
            }
            st.statuses.fetch_add(1, Ordering::SeqCst);
            let (reason, s3code) = match code {
                503 => ("Service Unavailable", "SlowDown"),
                _ => ("Internal Server Error", "InternalError"),
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{s3code}</Code><Message>injected by the fault proxy</Message></Error>"
            );
            let resp = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await?;
            client.shutdown().await?;
            // Drain what the client still sends so closing does not reset before it reads the answer.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(n) = client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
        Fault::Stall(d) => {
            st.stalls.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = tokio::time::timeout(d, async {
                while let Ok(n) = client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
    }
    Ok(())
}

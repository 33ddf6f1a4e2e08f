//! A TCP proxy between a store and its server that misbehaves on chosen requests: resets the
//! connection part-way through a request body, answers 500/503 without asking the server,
//! stalls, loses the server's answer after the server acted on the request, or flips a bit.
//!
//! Faults are chosen per HTTP request (not per connection) from the request's index and head,
//! so a test can say "the first attempt of part 3" or "every CompleteMultipartUpload" and get
//! the same run whatever connections the client pools. Clients are assumed not to pipeline
//! (hyper does not), so a new request head on a connection means the previous answer is done.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded untouched.
    Pass,
    /// Forwards the head and this many body bytes, then resets both connections (RST).
    ResetAfter(usize),
    /// Reads the request, answers this status with an S3-style error without asking the
    /// server (500 InternalError, 503 SlowDown, 404 NoSuchUpload), and closes the connection.
    Status(u16),
    /// Forwards the request but flips one bit at this offset of its body (bits corrupted in
    /// flight).
    Corrupt(usize),
    /// Reads the request, answers nothing for this long, then closes.
    Stall(Duration),
    /// Forwards the request whole (the server acts on it) and resets the connection as the
    /// answer starts, so the client never learns the outcome.
    LoseResponse,
    /// Forwards the request whole (the server acts on it) and holds the answer this long, as a
    /// slow link would.
    DelayResponse(Duration),
    /// Forwards the request whole and this many bytes of its answer (head included), then resets
    /// both connections: a download dying part-way.
    ResetResponseAfter(usize),
    /// Forwards the request whole and this many bytes of its answer, then sends nothing more
    /// for this long (a download that stalls).
    HoldResponseAfter(usize, Duration),
}

/// One request as the plan sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// 0-based over the proxy's lifetime.
    pub index: u64,
    pub method: &'a str,
    /// Path and query, e.g. `/bucket/key?partNumber=2&uploadId=...`.
    pub target: &'a str,
    /// The `Range` header's value, e.g. `bytes=0-1023`.
    pub range: Option<&'a str>,
}

impl Request<'_> {
    /// The value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if kv == name => Some(""),
            _ => None,
        })
    }

    /// The S3 part number of an UploadPart request.
    pub fn part_number(&self) -> Option<u32> {
        if self.method != "PUT" {
            return None;
        }
        self.query("partNumber")?.parse().ok()
    }

    /// CreateMultipartUpload: `POST ...?uploads`.
    pub fn is_create_multipart(&self) -> bool {
        self.method == "POST" && self.query("uploads").is_some()
    }

    /// CompleteMultipartUpload: `POST ...?uploadId=...`.
    pub fn is_complete_multipart(&self) -> bool {
        self.method == "POST" && self.query("uploadId").is_some()
    }

    /// The first and last byte a `Range: bytes=a-b` header asks for.
    pub fn byte_range(&self) -> Option<(u64, u64)> {
        let (a, b) = self.range?.trim().strip_prefix("bytes=")?.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    /// AbortMultipartUpload: `DELETE ...?uploadId=...`.
    pub fn is_abort_multipart(&self) -> bool {
        self.method == "DELETE" && self.query("uploadId").is_some()
    }
}

/// Requests seen and faults injected, by kind.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub resets: AtomicU64,
    pub statuses: AtomicU64,
    pub stalls: AtomicU64,
    pub lost: AtomicU64,
    pub corruptions: AtomicU64,
    pub delays: AtomicU64,
}

/// A counter's value.
pub fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::SeqCst)
}

impl Stats {
    pub fn faults(&self) -> u64 {
        get(&self.resets)
            + get(&self.statuses)
            + get(&self.stalls)
            + get(&self.lost)
            + get(&self.corruptions)
            + get(&self.delays)
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections, {} requests, {} resets, {} error statuses, {} stalls, {} lost answers, {} corruptions, {} delayed answers",
            get(&self.connections),
            get(&self.requests),
            get(&self.resets),
            get(&self.statuses),
            get(&self.stalls),
            get(&self.lost),
            get(&self.corruptions),
            get(&self.delays),
        )
    }
}

type Plan = dyn Fn(&Request) -> Fault + Send + Sync;

/// A running proxy; stops accepting and drops its connections when dropped.
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

    /// Listens on a free loopback port and forwards to `upstream`; `plan` decides the fate of
    /// each request.
    pub async fn start(
        upstream: SocketAddr,
        plan: impl Fn(&Request) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let plan: Arc<Plan> = Arc::new(plan);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                st.connections.fetch_add(1, Ordering::SeqCst);
                let (st, plan) = (st.clone(), plan.clone());
                conns.spawn(async move {
                    let _ = connection(client, upstream, plan, st).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        FaultProxy { addr, stats, task }
    }
}

/// Sets linger 0 so that closing sends RST, as a crashed peer or middlebox would (a zero linger
/// never blocks, which is what tokio's deprecation is about).
#[allow(deprecated)]
fn arm_reset(s: &TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
}

/// Reads from `r` until `buf` holds a whole request head; returns its length, `None` at EOF.
async fn read_head(r: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut tmp = [0u8; 16 * 1024];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(p + 4));
        }
        let n = r.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Takes the next `len` body bytes: first from `buf`, then from the client.
async fn read_body(
    r: &mut OwnedReadHalf,
    buf: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut tmp = [0u8; 64 * 1024];
    while buf.len() < len {
        let n = r.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let rest = buf.split_off(len);
    Ok(std::mem::replace(buf, rest))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn is_chunked(head: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")
        })
    })
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    plan: Arc<Plan>,
    st: Arc<Stats>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (mut cr, cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let cw = Arc::new(Mutex::new(cw));
    // Set when the next answer from the server must be lost.
    let lose = Arc::new(AtomicBool::new(false));
    // Set when the next answer from the server must wait this long.
    let delay = Arc::new(std::sync::Mutex::new(None::<Duration>));
    // Set when the next answer must break off after this many bytes: reset, or hold this long.
    let cut = Arc::new(std::sync::Mutex::new(None::<(usize, Option<Duration>)>));
    // Told by the answer direction that it reset the client: the request direction must drop
    // its half too, or the socket stays open and the client only sees a stall.
    let killed = Arc::new(tokio::sync::Notify::new());
    let down = {
        let (cw, lose, st, delay) = (cw.clone(), lose.clone(), st.clone(), delay.clone());
        let (cut, killed) = (cut.clone(), killed.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let mut n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut ends = None;
                if let Ok(mut c) = cut.lock() {
                    if let Some((left, how)) = c.as_mut() {
                        if n >= *left {
                            n = *left;
                            ends = Some(*how);
                            *c = None;
                        } else {
                            *left -= n;
                        }
                    }
                }
                if let Some(how) = ends {
                    let mut w = cw.lock().await;
                    let _ = w.write_all(&buf[..n]).await;
                    match how {
                        None => {
                            st.resets.fetch_add(1, Ordering::SeqCst);
                            arm_reset(w.as_ref());
                            killed.notify_one();
                            return;
                        }
                        Some(hold) => {
                            st.stalls.fetch_add(1, Ordering::SeqCst);
                            let _ = w.flush().await;
                            drop(w);
                            tokio::time::sleep(hold).await;
                            return;
                        }
                    }
                }
                let wait = delay.lock().map(|mut d| d.take()).unwrap_or(None);
                if let Some(d) = wait {
                    tokio::time::sleep(d).await;
                }
                let mut w = cw.lock().await;
                if lose.load(Ordering::SeqCst) {
                    st.lost.fetch_add(1, Ordering::SeqCst);
                    arm_reset(w.as_ref());
                    return;
                }
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = cw.lock().await.shutdown().await;
        })
    };
    let mut buf = Vec::new();
    let outcome = async {
        loop {
            let next = tokio::select! {
                r = read_head(&mut cr, &mut buf) => r?,
                _ = killed.notified() => {
                    arm_reset(sw.as_ref());
                    return Ok(());
                }
            };
            let Some(head_len) = next else {
                // The client is done: let the server close so the answer direction ends.
                sw.shutdown().await?;
                return Ok(());
            };
            let head = read_body(&mut cr, &mut buf, head_len).await?;
            let text = String::from_utf8_lossy(&head).into_owned();
            let mut first = text.lines().next().unwrap_or("").split_whitespace();
            let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
            let index = st.requests.fetch_add(1, Ordering::SeqCst);
            let fault = plan(&Request {
                index,
                method,
                target,
                range: header(&text, "range"),
            });
            if is_chunked(&text) {
                // Not framed here: pass the rest of the connection through untouched.
                sw.write_all(&head).await?;
                sw.write_all(&buf).await?;
                tokio::io::copy(&mut cr, &mut sw).await?;
                return Ok(());
            }
            let len = content_length(&text).unwrap_or(0);
            match fault {
                Fault::Pass => {
                    let body = read_body(&mut cr, &mut buf, len).await?;
                    sw.write_all(&head).await?;
                    sw.write_all(&body).await?;
                }
                Fault::Corrupt(at) => {
                    let mut body = read_body(&mut cr, &mut buf, len).await?;
                    if let Some(b) = body.get_mut(at) {
                        *b ^= 0x20;
                        st.corruptions.fetch_add(1, Ordering::SeqCst);
                    }
                    sw.write_all(&head).await?;
                    sw.write_all(&body).await?;
                }
                Fault::ResetAfter(k) => {
                    sw.write_all(&head).await?;
                    let body = read_body(&mut cr, &mut buf, k.min(len)).await?;
                    sw.write_all(&body).await?;
                    st.resets.fetch_add(1, Ordering::SeqCst);
                    down.abort();
                    arm_reset(cw.lock().await.as_ref());
                    arm_reset(sw.as_ref());
                    return Ok(());
                }
                Fault::Status(code) => {
                    let _ = read_body(&mut cr, &mut buf, len).await?;
                    st.statuses.fetch_add(1, Ordering::SeqCst);
                    down.abort();
                    let (reason, s3code) = match code {
                        503 => ("Service Unavailable", "SlowDown"),
                        404 => ("Not Found", "NoSuchUpload"),
                        _ => ("Internal Server Error", "InternalError"),
                    };
                    let body = format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{s3code}</Code><Message>injected by the fault proxy</Message></Error>"
                    );
                    let resp = format!(
                        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let mut w = cw.lock().await;
                    w.write_all(resp.as_bytes()).await?;
                    w.shutdown().await?;
                    drop(w);
                    // Let the client read the answer before the socket goes.
                    let mut tmp = [0u8; 8192];
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Ok(n) = cr.read(&mut tmp).await {
                            if n == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                    return Ok(());
                }
                Fault::Stall(d) => {
                    st.stalls.fetch_add(1, Ordering::SeqCst);
                    down.abort();
                    let mut tmp = [0u8; 64 * 1024];
                    let _ = tokio::time::timeout(d, async {
                        while let Ok(n) = cr.read(&mut tmp).await {
                            if n == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                    return Ok(());
                }
                Fault::DelayResponse(d) => {
                    let body = read_body(&mut cr, &mut buf, len).await?;
                    st.delays.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut slot) = delay.lock() {
                        *slot = Some(d);
                    }
                    sw.write_all(&head).await?;
                    sw.write_all(&body).await?;
                }
                Fault::ResetResponseAfter(k) | Fault::HoldResponseAfter(k, _) => {
                    let body = read_body(&mut cr, &mut buf, len).await?;
                    let how = match fault {
                        Fault::HoldResponseAfter(_, d) => Some(d),
                        _ => None,
                    };
                    if let Ok(mut c) = cut.lock() {
                        *c = Some((k, how));
                    }
                    sw.write_all(&head).await?;
                    sw.write_all(&body).await?;
                }
                Fault::LoseResponse => {
                    let body = read_body(&mut cr, &mut buf, len).await?;
                    lose.store(true, Ordering::SeqCst);
                    sw.write_all(&head).await?;
                    sw.write_all(&body).await?;
                    // The answer task resets the client's side when the server answers.
                    let _ = tokio::time::timeout(Duration::from_secs(30), async {
                        while !down.is_finished() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    arm_reset(sw.as_ref());
                    return Ok(());
                }
            }
        }
    };
    let r: std::io::Result<()> = outcome.await;
    // Wait for the answer direction unless this side ended in a fault that killed it.
    if !down.is_finished() && r.is_ok() {
        let _ = down.await;
    } else {
        down.abort();
    }
    r
}

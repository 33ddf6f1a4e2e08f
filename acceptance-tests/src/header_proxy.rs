//! An HTTP proxy that removes the conditional-write headers (`If-Match`, `If-None-Match`) from
//! every request before it reaches the server: in front of a server that enforces them, it makes
//! a store that ignores them, as some S3-compatible servers do. The server's answers pass
//! through untouched.
//!
//! Requests are framed by `Content-Length`; a request with a chunked body is passed on untouched
//! together with the rest of its connection (our S3 client sends none). Use it in front of a
//! server that does not check SigV4 (moto): the stripped headers are signed ones.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A running proxy; stops accepting when dropped.
pub struct StripConditionsProxy {
    pub port: u16,
    /// How many conditional headers were removed.
    pub stripped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl StripConditionsProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> StripConditionsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stripped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (stripped.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = relay(client, upstream, &count);
                });
            }
        });
        StripConditionsProxy {
            port,
            stripped,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StripConditionsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(mut client: TcpStream, upstream: SocketAddr, stripped: &AtomicU64) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream)?;
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    let answers = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut buf = Vec::new();
    let result = (|| loop {
        let Some(head_len) = read_head(&mut client, &mut buf)? else {
            return Ok(());
        };
        let head: Vec<u8> = buf.drain(..head_len).collect();
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut kept = String::with_capacity(text.len());
        let mut chunked = false;
        let mut length = 0usize;
        for line in text.split_inclusive("\r\n") {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if name == "if-match" || name == "if-none-match" {
                stripped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if let Some((_, v)) = line.split_once(':') {
                if name == "content-length" {
                    length = v.trim().parse().unwrap_or(0);
                }
                if name == "transfer-encoding" && v.contains("chunked") {
                    chunked = true;
                }
            }
            kept.push_str(line);
        }
        server.write_all(kept.as_bytes())?;
        if chunked {
            server.write_all(&buf)?;
            std::io::copy(&mut client, &mut server)?;
            return Ok(());
        }
        while buf.len() < length {
            let mut tmp = [0u8; 64 * 1024];
            let n = client.read(&mut tmp)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        server.write_all(&body)?;
    })();
    let _ = server.shutdown(Shutdown::Write);
    let _ = answers.join();
    result
}

/// Reads until `buf` holds a whole request head; its length, `None` at end of stream.
fn read_head(r: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut tmp = [0u8; 16 * 1024];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(p + 4));
        }
        let n = r.read(&mut tmp)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

//! Where the plugin listens. Like go-plugin's own servers on Unix: a Unix domain socket in a
//! temporary directory, so no port is picked from a shared range and nothing listens on the
//! network namespace (the client certificate is still required). A 200-resource plan measured
//! the same over it as over loopback TCP. TCP on 127.0.0.1 (within `PLUGIN_MIN_PORT`..
//! `PLUGIN_MAX_PORT`) remains for when no socket can be made, e.g. a temporary directory whose
//! path is too long for one.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::either::Either;

use super::ServeError;

/// The address printed in the handshake line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// go-plugin's network name for the handshake line.
    pub fn network(&self) -> &'static str {
        match self {
            ListenAddr::Unix(_) => "unix",
            ListenAddr::Tcp(_) => "tcp",
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

pub(crate) enum Listener {
    /// The socket file is removed when the listener is dropped.
    Unix(UnixListener, SocketFile),
    Tcp(TcpListener),
}

pub(crate) struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    pub fn addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Unix(_, f) => Ok(ListenAddr::Unix(f.0.clone())),
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
        }
    }

    /// The next connection and a description of its peer for logs.
    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                let peer = s
                    .peer_cred()
                    .ok()
                    .and_then(|c| c.pid())
                    .map_or_else(|| "unix socket".to_string(), |p| format!("pid {p}"));
                Ok((Either::Left(s), peer))
            }
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Either::Right(s), peer.to_string()))
            }
        }
    }
}

/// A Unix socket in `socket_dir` (go-plugin's `PLUGIN_UNIX_SOCKET_DIR`, else the temporary
/// directory); TCP in `range` when that fails.
pub(crate) async fn listen(
    socket_dir: Option<PathBuf>,
    range: Option<(u16, u16)>,
) -> Result<Listener, ServeError> {
    let dir = socket_dir.unwrap_or_else(std::env::temp_dir);
    match unix_socket(&dir) {
        Ok(l) => return Ok(l),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "no Unix socket; listening on TCP")
        }
    }
    tcp(range).await
}

fn unix_socket(dir: &Path) -> io::Result<Listener> {
    let mut last = io::Error::other("no attempt");
    for attempt in 0..8u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!("plugin{}{:09}{attempt}", std::process::id(), nanos));
        match UnixListener::bind(&path) {
            Ok(l) => return Ok(Listener::Unix(l, SocketFile(path))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

async fn tcp(range: Option<(u16, u16)>) -> Result<Listener, ServeError> {
    let Some((lo, hi)) = range else {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map(Listener::Tcp)
            .map_err(|source| ServeError::Listen {
                range: "any".into(),
                source,
            });
    };
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "empty port range");
    for port in lo..=hi {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(l) => return Ok(Listener::Tcp(l)),
            Err(e) => last = e,
        }
    }
    Err(ServeError::Listen {
        range: format!("{lo}-{hi}"),
        source: last,
    })
}

/// One accepted connection before TLS.
pub(crate) type Stream = Either<UnixStream, TcpStream>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unix_socket_in_the_given_dir_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let l = listen(Some(dir.path().to_path_buf()), None).await.unwrap();
        let ListenAddr::Unix(path) = l.addr().unwrap() else {
            panic!("expected a Unix socket");
        };
        assert_eq!(path.parent(), Some(dir.path()));
        assert!(path.exists());
        drop(l);
        assert!(
            !path.exists(),
            "the socket file is removed with the listener"
        );
    }

    #[tokio::test]
    async fn tcp_in_range_when_no_socket_can_be_made() {
        // A socket path must fit in 108 bytes; this directory name alone does not.
        let long = std::env::temp_dir().join("d".repeat(200));
        let l = listen(Some(long), None).await.unwrap();
        let addr = l.addr().unwrap();
        assert_eq!(addr.network(), "tcp");
        let ListenAddr::Tcp(a) = addr else {
            unreachable!()
        };
        assert!(a.ip().is_loopback());
    }
}

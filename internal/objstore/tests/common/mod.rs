//! Test support: finds and starts the servers `scripts/test-servers install` provides, each on a
//! free loopback port in its own temporary directory, killed when the guard drops; opens stores
//! on them; and a fault-injecting TCP proxy.
#![allow(dead_code)]

pub mod proxy;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use objstore::gcs::{GcsSettings, GcsStore};
use objstore::s3::{S3Settings, S3Store, StaticCredentials};
use objstore::StoreConfig;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "testnet-access";
pub const SECRET_KEY: &str = "testnet-secret-key-0123456789";

/// A server process and its data directory; both go when this drops.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub name: &'static str,
}

impl Server {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cache_dir() -> PathBuf {
    if let Ok(c) = std::env::var("TESTNET_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/testnet")
}

/// The binary for a server: `$ENV_VAR`, else its place in the cache. `None` means the test must
/// be skipped (`TESTNET_SKIP_CLOUD_TESTS=1`); a missing server otherwise fails the test with
/// what to run.
pub fn server_binary(env_var: &str, cache_rel: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join(cache_rel));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("TESTNET_SKIP_CLOUD_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "skipping: {} not found and TESTNET_SKIP_CLOUD_TESTS=1",
            path.display()
        );
        return None;
    }
    panic!(
        "test server binary {} not found (set {env_var} or run `scripts/test-servers install`; \
         TESTNET_SKIP_CLOUD_TESTS=1 skips these tests)",
        path.display()
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

fn start(name: &'static str, mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
    let log2 = log.try_clone().expect("server log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = Server {
        child,
        addr,
        dir,
        name,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let log =
                std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
            panic!("{name} exited with {status} before listening on {addr}:\n{log}");
        }
        if Instant::now() > deadline {
            panic!("{name} did not listen on {addr} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto's S3 server; its minimum multipart part size is lowered to 1 KiB so tests can use small parts.
pub fn start_moto() -> Option<Server> {
    let bin = server_binary("TESTNET_MOTO", "venv/bin/moto_server")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("S3_UPLOAD_PART_MIN_SIZE", "1024")
        .current_dir(dir.path());
    Some(start("moto_server", cmd, port, dir))
}

/// s3s-fs, which checks SigV4 signatures and `x-amz-checksum-sha256`.
pub fn start_s3s_fs() -> Option<Server> {
    let bin = server_binary("TESTNET_S3S_FS", "s3s-fs/bin/s3s-fs")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    std::fs::create_dir(&root).expect("data dir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ])
    .arg(&root);
    Some(start("s3s-fs", cmd, port, dir))
}

pub fn start_gcs_emulator() -> Option<Server> {
    let bin = server_binary("TESTNET_GCS_EMULATOR", "venv/bin/gcp-storage-emulator")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args([
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--in-memory",
    ])
    .current_dir(dir.path());
    Some(start("gcp-storage-emulator", cmd, port, dir))
}

pub fn s3_settings(part_size: u64) -> S3Settings {
    S3Settings {
        part_size,
        parts_in_flight: 3,
        credentials: Some(StaticCredentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        max_attempts: 5,
    }
}

pub fn s3_config(endpoint: &str) -> StoreConfig {
    StoreConfig {
        endpoint: Some(endpoint.to_string()),
        force_path_style: true,
        region: Some("us-east-1".into()),
        sse: None,
    }
}

/// Opens a store on `endpoint` and creates its bucket.
pub async fn s3_store(endpoint: &str, bucket: &str, prefix: &str, settings: S3Settings) -> S3Store {
    let store = S3Store::open_with(bucket, prefix, &s3_config(endpoint), settings)
        .await
        .expect("opening the S3 store");
    create_bucket(&store).await;
    store
}

pub async fn create_bucket(store: &S3Store) {
    match store
        .client()
        .create_bucket()
        .bucket(store.bucket())
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) => {
            let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e));
            assert!(
                text.contains("BucketAlready"),
                "creating bucket {}: {text}",
                store.bucket()
            );
        }
    }
}

/// Uploads still open in the bucket, as the server lists them (moto).
pub async fn open_uploads(store: &S3Store) -> Vec<String> {
    let out = store
        .client()
        .list_multipart_uploads()
        .bucket(store.bucket())
        .send()
        .await
        .expect("ListMultipartUploads");
    out.uploads()
        .iter()
        .map(|u| format!("{} {}", u.key().unwrap_or(""), u.upload_id().unwrap_or("")))
        .collect()
}

/// s3s-fs has no ListMultipartUploads; it keeps each open upload as `.upload-<id>.json` and its
/// parts as `.upload_id-<id>.part-<n>` in its root.
pub fn s3s_open_upload_files(server: &Server) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(server.dir.path().join("data")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with(".upload-") || n.starts_with(".upload_id-") {
                out.push(n);
            }
        }
    }
    out
}

pub async fn gcs_store(endpoint: &str, bucket: &str, prefix: &str, chunk_size: usize) -> GcsStore {
    let config = StoreConfig {
        endpoint: Some(endpoint.to_string()),
        ..Default::default()
    };
    let settings = GcsSettings {
        chunk_size,
        ..Default::default()
    };
    let store = GcsStore::open_with(bucket, prefix, &config, settings)
        .await
        .expect("opening the GCS store");
    store.create_bucket().await.expect("creating the bucket");
    store
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A stream of `data` in pieces of `piece` bytes, as the archiver would hand it over.
pub fn stream_of(data: Bytes, piece: usize) -> objstore::ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(piece.max(1))
        .map(|i| Ok(data.slice(i..(i + piece).min(data.len()))))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

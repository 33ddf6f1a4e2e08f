//! Test support: finds and starts the servers `scripts/test-servers install` provides, each on a
//! free loopback port in its own temporary directory, killed when the guard drops; opens stores
//! on them; and a fault-injecting TCP proxy.
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use bytes::Bytes;
use objstore::gcs::{GcsSettings, GcsStore};
use objstore::s3::{S3Settings, S3Store, StaticCredentials};
use objstore::StoreConfig;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "testnet-access";
pub const SECRET_KEY: &str = "testnet-secret-key-0123456789";

/// A server process and its data directory; both go when this drops.
/// Test servers come from the acceptance harness, which picks ports nobody else takes and
/// restarts a server whose port was taken meanwhile.
pub use acceptance_tests::servers::TestServer as Server;

/// moto's S3 server; its minimum multipart part size is lowered to 1 KiB so tests can use small parts.
pub fn start_moto() -> Option<Server> {
    Server::moto()
}

/// s3s-fs, which checks SigV4 signatures and `x-amz-checksum-sha256`.
pub fn start_s3s_fs() -> Option<Server> {
    Server::s3s_fs(ACCESS_KEY, SECRET_KEY)
}

pub fn start_gcs_emulator() -> Option<Server> {
    Server::gcs_emulator()
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
        reads: Default::default(),
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
    if let Ok(rd) = std::fs::read_dir(server.dir().join("data")) {
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

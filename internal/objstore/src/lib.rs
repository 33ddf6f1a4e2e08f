//! One [`ObjectStore`] trait over a local directory (`file:///dir`), S3 (`s3://bucket/prefix`) and
//! GCS (`gs://bucket/prefix`), so the archiver and the catalog never know which one they write to.
//!
//! Keys are relative to the store's prefix, `/`-separated, never starting with `/`.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio_util::sync::CancellationToken;

pub mod gcs;
pub mod local;
pub mod probe;
pub mod ranged;
pub mod s3;
pub mod url;

pub use local::LocalStore;
pub use ranged::{RangedReads, DEFAULT_CONNECTIONS};
pub use url::StoreUrl;

/// A stream of bytes going to or coming from a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An opaque version of an object (S3 ETag, GCS generation, a local content stamp): what a
/// conditional write compares against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// What a store says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub version: Version,
    /// SHA-256 of the whole object as the store attests it, where the store can.
    pub sha256: Option<[u8; 32]>,
    pub content_type: Option<String>,
    /// Set by a streamed write when the store compared what it now holds with the bytes it was
    /// handed (the local store re-reads the file and compares it) instead of attesting a SHA-256:
    /// a caller that hashed those bytes itself needs no second SHA-256 pass.
    pub confirmed: bool,
}

/// When a write may happen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// Only if no object exists at the key.
    IfAbsent,
    /// Only if the object is still at this version.
    IfMatch(Version),
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub precondition: Precondition,
    /// On S3, `x-amz-website-redirect-location`; ignored elsewhere.
    pub website_redirect: Option<String>,
    /// Interrupts a long upload; an interrupted upload leaves nothing behind.
    pub cancel: Option<CancellationToken>,
    /// The caller reads the whole object back after the upload (full verification), a stronger
    /// check of what the store holds than the store's own. The local store, whose own check is
    /// a second read of the file, then skips it and leaves `ObjectMeta::confirmed` false; S3 and
    /// GCS confirm server-side at no cost and ignore this.
    pub full_read_follows: bool,
}

/// Errors of every store, carrying the object and what the server said.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("object {url} does not exist")]
    NotFound { url: String },
    #[error("bucket {bucket:?} does not exist or is not accessible: create it, or correct the store URL or the credentials")]
    NoSuchBucket { bucket: String },
    #[error("{url}: precondition failed (the object changed or already exists)")]
    PreconditionFailed { url: String },
    #[error("{url}: access denied: {detail}")]
    AccessDenied { url: String, detail: String },
    #[error("{url}: the store's checksum does not match what was sent ({detail})")]
    ChecksumMismatch { url: String, detail: String },
    #[error("{url}: upload cancelled")]
    Cancelled { url: String },
    #[error("{url}: {detail}")]
    Io { url: String, detail: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A place objects are written to and read from.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The full URL of a key, e.g. `s3://bucket/prefix/key`.
    fn url(&self, key: &str) -> String;

    /// Writes a small object held in memory (metadata, index, pointers).
    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> Result<ObjectMeta>;

    /// Streams a large object. The object becomes visible only when complete; on error or
    /// cancellation nothing is left (no temporary file, no open multipart upload). The store
    /// confirms the bytes it holds (S3 checksums, GCS CRC32C, a local re-read) and returns
    /// their SHA-256 in `ObjectMeta::sha256`, or sets `ObjectMeta::confirmed` when it checked
    /// the stored bytes against the bytes it received without a SHA-256.
    async fn put_stream(&self, key: &str, body: ByteStream, opts: PutOptions)
        -> Result<ObjectMeta>;

    /// Reads a small object whole.
    async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta)>;

    /// Streams an object.
    async fn get_stream(&self, key: &str) -> Result<ByteStream>;

    /// Metadata of an object, `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// Removes an object; absent is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Objects whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
}

/// Connection settings that are not part of the URL.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// A custom endpoint (S3-compatible server, GCS emulator).
    pub endpoint: Option<String>,
    /// S3 path-style addressing (most S3-compatible servers need it).
    pub force_path_style: bool,
    pub region: Option<String>,
    /// S3 server-side encryption (`AES256` or `aws:kms`).
    pub sse: Option<String>,
}

/// Opens the store a URL names.
pub async fn open(url: &str, config: &StoreConfig) -> Result<Arc<dyn ObjectStore>> {
    open_with_reads(url, config, RangedReads::default()).await
}

/// [`open`], choosing how S3 and GCS objects are read (connections per object, range size,
/// retries); a local store reads files directly and ignores it.
pub async fn open_with_reads(
    url: &str,
    config: &StoreConfig,
    reads: RangedReads,
) -> Result<Arc<dyn ObjectStore>> {
    match StoreUrl::parse(url)? {
        StoreUrl::S3 { bucket, prefix } => {
            let settings = s3::S3Settings {
                reads,
                ..Default::default()
            };
            Ok(Arc::new(
                s3::S3Store::open_with(&bucket, &prefix, config, settings).await?,
            ))
        }
        StoreUrl::Gcs { bucket, prefix } => {
            let settings = gcs::GcsSettings {
                reads,
                ..Default::default()
            };
            Ok(Arc::new(
                gcs::GcsStore::open_with(&bucket, &prefix, config, settings).await?,
            ))
        }
        StoreUrl::Local { dir } => Ok(Arc::new(local::LocalStore::open(&dir)?)),
    }
}

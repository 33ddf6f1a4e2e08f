//! Google Cloud Storage through its JSON API over reqwest (rustls, aws-lc-rs), with Application
//! Default Credentials from google-cloud-auth.
//!
//! Why not the google-cloud-storage client for the data path: its object metadata, listing and
//! deletion go through the gRPC StorageControl API, which no installable emulator serves, and the
//! tests must run against `gcp-storage-emulator` (JSON API only). One JSON-API client serves both
//! the emulator and GCS, so the code the tests exercise is the code production runs.
//!
//! Integrity: CRC32C and MD5 are computed in flight and compared with the `crc32c` / `md5Hash`
//! the server reports for the stored object; a mismatch deletes the object (at exactly the
//! generation just written) and fails. Conditional writes use `ifGenerationMatch` (0 = absent).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use md5::Md5;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ranged::{RangeSource, RangedReads};
use crate::s3::{committing, upload_until_commit, with_cancel, ChunkReader};
use crate::url::{join_key, strip_key};
use crate::{
    ByteStream, ObjectMeta, ObjectStore, Precondition, PutOptions, Result, StoreConfig, StoreError,
    Version,
};

const GCS_ENDPOINT: &str = "https://storage.googleapis.com";
/// Resumable upload chunks must be multiples of this.
pub const CHUNK_GRANULE: usize = 256 * 1024;

/// Characters kept as-is in an object name inside a URL path.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Tuning of the GCS client that is not part of [`StoreConfig`].
#[derive(Debug, Clone)]
pub struct GcsSettings {
    /// A stream shorter than this goes as one media upload; longer ones as a resumable upload in
    /// chunks of this size (rounded up to a multiple of 256 KiB).
    pub chunk_size: usize,
    /// Attempts per chunk of a resumable upload before giving up.
    pub max_attempts: u32,
    pub timeout: Duration,
    /// How objects are read: ranges over several connections, each retried on its own.
    pub reads: RangedReads,
}

impl Default for GcsSettings {
    fn default() -> Self {
        GcsSettings {
            chunk_size: 16 * 1024 * 1024,
            max_attempts: 5,
            timeout: Duration::from_secs(300),
            reads: RangedReads::default(),
        }
    }
}

/// A GCS bucket and key prefix.
#[derive(Clone)]
pub struct GcsStore {
    http: reqwest::Client,
    endpoint: String,
    /// `None` with a custom endpoint (emulators take no credentials).
    credentials: Option<Arc<google_cloud_auth::credentials::Credentials>>,
    bucket: String,
    prefix: String,
    settings: GcsSettings,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("authenticated", &self.credentials.is_some())
            .finish()
    }
}

/// The part of the JSON API's object resource we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcsObject {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    md5_hash: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcsList {
    #[serde(default)]
    items: Vec<GcsObject>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Running digests of an upload.
#[derive(Clone, Default)]
struct Digests {
    sha256: Sha256,
    md5: Md5,
    crc32c: u32,
    len: u64,
}

impl Digests {
    fn update(&mut self, b: &[u8]) {
        self.sha256.update(b);
        md5::Digest::update(&mut self.md5, b);
        self.crc32c = crc32c::crc32c_append(self.crc32c, b);
        self.len += b.len() as u64;
    }
}

impl GcsStore {
    /// Opens a bucket: with `config.endpoint` set, anonymously against that endpoint (an
    /// emulator); otherwise against GCS with Application Default Credentials.
    pub async fn open(bucket: &str, prefix: &str, config: &StoreConfig) -> Result<GcsStore> {
        Self::open_with(bucket, prefix, config, GcsSettings::default()).await
    }

    pub async fn open_with(
        bucket: &str,
        prefix: &str,
        config: &StoreConfig,
        settings: GcsSettings,
    ) -> Result<GcsStore> {
        let url = format!("gs://{bucket}/{prefix}");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(settings.timeout)
            .build()
            .map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("building the HTTP client: {e}"),
            })?;
        let (endpoint, credentials) = match &config.endpoint {
            Some(e) => (e.trim_end_matches('/').to_string(), None),
            None => {
                let creds = google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| StoreError::AccessDenied {
                        url: url.clone(),
                        detail: format!("no Application Default Credentials: {e}"),
                    })?;
                (GCS_ENDPOINT.to_string(), Some(Arc::new(creds)))
            }
        };
        let mut settings = settings;
        settings.chunk_size = settings
            .chunk_size
            .max(CHUNK_GRANULE)
            .div_ceil(CHUNK_GRANULE)
            * CHUNK_GRANULE;
        Ok(GcsStore {
            http,
            endpoint,
            credentials,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            settings,
        })
    }

    /// Creates the bucket (emulator set-up in tests; real buckets are made by their owners).
    pub async fn create_bucket(&self) -> Result<()> {
        let url = format!("{}/storage/v1/b", self.endpoint);
        let req = self
            .http
            .post(url)
            .json(&serde_json::json!({ "name": self.bucket }));
        let resp = self.send(req, "").await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::CONFLICT => Ok(()),
            _ => Err(self.http_err("", resp, false).await),
        }
    }

    fn full_key(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            self.bucket,
            utf8_percent_encode(&self.full_key(key), NAME)
        )
    }

    async fn auth_headers(&self, key: &str) -> Result<Option<HeaderMap>> {
        let Some(creds) = &self.credentials else {
            return Ok(None);
        };
        match creds.headers(http::Extensions::new()).await {
            Ok(google_cloud_auth::credentials::CacheableResource::New { data, .. }) => {
                Ok(Some(data))
            }
            Ok(google_cloud_auth::credentials::CacheableResource::NotModified) => Ok(None),
            Err(e) => Err(StoreError::AccessDenied {
                url: self.url(key),
                detail: format!("fetching a token: {e}"),
            }),
        }
    }

    /// Sends a request; one that got no answer at all (refused, reset, closed before the
    /// answer) is sent again, up to `max_attempts` times, when its body can be replayed. A
    /// lost answer after the server acted is possible; callers of non-idempotent requests
    /// check the outcome (see `put_media`).
    async fn send(&self, req: RequestBuilder, key: &str) -> Result<reqwest::Response> {
        Ok(self
            .send_counted(req, key, self.settings.max_attempts)
            .await?
            .0)
    }

    /// [`Self::send`], also saying whether an earlier attempt may have reached the server.
    async fn send_counted(
        &self,
        req: RequestBuilder,
        key: &str,
        max_attempts: u32,
    ) -> Result<(reqwest::Response, bool)> {
        let req = match self.auth_headers(key).await? {
            Some(h) => req.headers(h),
            None => req,
        };
        let mut attempt = 1;
        let mut req = req;
        loop {
            let spare = req.try_clone();
            match req.send().await {
                Ok(r) => return Ok((r, attempt > 1)),
                Err(e) => {
                    let mut detail = format!("request failed: {e}");
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        detail.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    match spare {
                        Some(next) if attempt < max_attempts && !e.is_builder() => {
                            tracing::warn!(object = %self.url(key), error = %detail, attempt, "no answer from the store; retrying");
                            tokio::time::sleep(Duration::from_millis(100 * (1 << attempt.min(5))))
                                .await;
                            attempt += 1;
                            req = next;
                        }
                        _ => {
                            return Err(StoreError::Io {
                                url: self.url(key),
                                detail: format!(
                                    "{detail} (no answer after {attempt} attempt(s); check the endpoint and the network, then try again)"
                                ),
                            })
                        }
                    }
                }
            }
        }
    }

    /// Turns an unsuccessful response into the error it means; `object_op` says a 404 is about
    /// the object (else the bucket).
    async fn http_err(&self, key: &str, resp: reqwest::Response, object_op: bool) -> StoreError {
        let url = self.url(key);
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(300).collect());
        let detail = format!("HTTP {}: {message}", status.as_u16());
        match status.as_u16() {
            404 if object_op && !message.to_ascii_lowercase().contains("bucket") => {
                StoreError::NotFound { url }
            }
            404 => StoreError::NoSuchBucket {
                bucket: self.bucket.clone(),
            },
            412 => StoreError::PreconditionFailed { url },
            401 | 403 => StoreError::AccessDenied { url, detail },
            400 if message.to_ascii_lowercase().contains("hash")
                || message.to_ascii_lowercase().contains("checksum") =>
            {
                StoreError::ChecksumMismatch { url, detail }
            }
            _ => StoreError::Io { url, detail },
        }
    }

    fn precondition_query(pre: &Precondition) -> Vec<(&'static str, String)> {
        match pre {
            Precondition::None => vec![],
            Precondition::IfAbsent => vec![("ifGenerationMatch", "0".into())],
            Precondition::IfMatch(v) => vec![("ifGenerationMatch", v.0.clone())],
        }
    }

    fn meta(&self, o: GcsObject) -> Option<ObjectMeta> {
        let key = strip_key(&self.prefix, &o.name)?.to_string();
        Some(ObjectMeta {
            key,
            size: o.size.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0),
            version: Version(o.generation.unwrap_or_default()),
            sha256: None,
            content_type: o.content_type,
            confirmed: false,
        })
    }

    /// Compares what the server reports for the stored object with what was sent; on a
    /// mismatch removes that generation and fails.
    async fn verify(
        &self,
        key: &str,
        obj: GcsObject,
        d: Digests,
        content_type: &Option<String>,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let size: Option<u64> = obj.size.as_deref().and_then(|s| s.parse().ok());
        let md5_ours = B64.encode(md5::Digest::finalize(d.md5));
        let crc_ours = B64.encode(d.crc32c.to_be_bytes());
        let sha: [u8; 32] = d.sha256.finalize().into();
        let mut problems = Vec::new();
        if let Some(s) = size {
            if s != d.len {
                problems.push(format!("sent {} bytes, the store holds {s}", d.len));
            }
        }
        if let Some(m) = &obj.md5_hash {
            if *m != md5_ours {
                problems.push(format!("MD5 sent {md5_ours}, stored {m}"));
            }
        }
        if let Some(c) = &obj.crc32c {
            if *c != crc_ours {
                problems.push(format!("CRC32C sent {crc_ours}, stored {c}"));
            }
        }
        let generation = obj.generation.clone().unwrap_or_default();
        if !problems.is_empty() {
            let del = self
                .http
                .delete(self.object_url(key))
                .query(&[("ifGenerationMatch", generation.as_str())]);
            if let Err(e) = self.send(del, key).await {
                tracing::warn!(object = %url, error = %e, "removing a corrupted upload failed");
            }
            return Err(StoreError::ChecksumMismatch {
                url,
                detail: problems.join("; "),
            });
        }
        let confirmed = obj.md5_hash.is_some() || obj.crc32c.is_some();
        tracing::debug!(object = %url, bytes = d.len, confirmed, "GCS upload verified");
        Ok(ObjectMeta {
            key: key.to_string(),
            size: d.len,
            version: Version(generation),
            sha256: confirmed.then_some(sha),
            content_type: obj.content_type.or_else(|| content_type.clone()),
            confirmed: false,
        })
    }

    async fn put_media(&self, key: &str, data: Bytes, opts: &PutOptions) -> Result<ObjectMeta> {
        let mut d = Digests::default();
        let hashed = data.clone();
        d = tokio::task::spawn_blocking(move || {
            d.update(&hashed);
            d
        })
        .await
        .map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("hashing: {e}"),
        })?;
        // A multipart upload (metadata + media) rather than a media upload: it carries the
        // content type and our MD5/CRC32C in the metadata, which GCS checks before storing,
        // and gcp-storage-emulator cannot take a media upload whose content type is JSON (it
        // parses the body and fails with a closed connection).
        let url = format!("{}/upload/storage/v1/b/{}/o", self.endpoint, self.bucket);
        let mut query = vec![("uploadType", "multipart".to_string())];
        query.extend(Self::precondition_query(&opts.precondition));
        let content_type = opts
            .content_type
            .as_deref()
            .unwrap_or("application/octet-stream");
        let metadata = serde_json::json!({
            "name": self.full_key(key),
            "contentType": content_type,
            "md5Hash": B64.encode(md5::Digest::finalize(d.md5.clone())),
            "crc32c": B64.encode(d.crc32c.to_be_bytes()),
        });
        // The content cannot contain a boundary made of its own digest.
        let boundary = format!("testnet-{}", hex::encode(d.sha256.clone().finalize()));
        let mut body = Vec::with_capacity(data.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .http
            .post(url)
            .query(&query)
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(body);
        let (resp, retried) = committing(
            opts.cancel.as_ref(),
            &self.url(key),
            self.send_counted(req, key, self.settings.max_attempts),
        )
        .await??;
        if retried && resp.status() == StatusCode::PRECONDITION_FAILED {
            // An earlier attempt may have written the object and lost the answer: if what is
            // there now carries our digests, it is ours.
            let ours = B64.encode(md5::Digest::finalize(d.md5.clone()));
            let get = self.http.get(self.object_url(key));
            if let Ok(r) = self.send(get, key).await {
                if let Ok(obj) = r.json::<GcsObject>().await {
                    if obj.md5_hash.as_deref() == Some(ours.as_str()) {
                        return self.verify(key, obj, d, &opts.content_type).await;
                    }
                }
            }
        }
        if !resp.status().is_success() {
            return Err(self.http_err(key, resp, false).await);
        }
        let obj: GcsObject = resp.json().await.map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("reading the upload's answer: {e}"),
        })?;
        self.verify(key, obj, d, &opts.content_type).await
    }

    async fn put_resumable(
        &self,
        key: &str,
        first: Bytes,
        mut reader: ChunkReader,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let init = format!("{}/upload/storage/v1/b/{}/o", self.endpoint, self.bucket);
        let mut query = vec![
            ("uploadType", "resumable".to_string()),
            ("name", self.full_key(key)),
        ];
        query.extend(Self::precondition_query(&opts.precondition));
        let mut body = serde_json::json!({ "name": self.full_key(key) });
        if let Some(ct) = &opts.content_type {
            body["contentType"] = serde_json::Value::String(ct.clone());
        }
        let resp = with_cancel(
            opts.cancel.as_ref(),
            &url,
            self.send(self.http.post(init).query(&query).json(&body), key),
        )
        .await??;
        if !resp.status().is_success() {
            return Err(self.http_err(key, resp, false).await);
        }
        let session = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| StoreError::Io {
                url: url.clone(),
                detail: "resumable upload started without a Location".into(),
            })?;
        let finalizing = std::sync::atomic::AtomicBool::new(false);
        let work = self.upload_chunks(key, &session, first, &mut reader, opts, &finalizing);
        // Once the last chunk is on the wire GCS may have made the object, which cancelling the
        // session would not remove: a cancellation then lets that chunk finish.
        let outcome = upload_until_commit(opts.cancel.as_ref(), &url, &finalizing, work).await;
        match outcome {
            Ok(m) => Ok(m),
            Err(e) => {
                // Cancels the session so no partial upload lingers (GCS would expire it in a week).
                let _ = self.send(self.http.delete(&session), key).await;
                Err(e)
            }
        }
    }

    async fn upload_chunks(
        &self,
        key: &str,
        session: &str,
        first: Bytes,
        reader: &mut ChunkReader,
        opts: &PutOptions,
        finalizing: &std::sync::atomic::AtomicBool,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let io = |e: std::io::Error| StoreError::Io {
            url: url.clone(),
            detail: format!("reading the upload's source: {e}"),
        };
        let mut d = Digests::default();
        let mut offset: u64 = 0;
        let mut chunk = first;
        loop {
            let next = reader
                .next_chunk(self.settings.chunk_size)
                .await
                .map_err(io)?;
            let last = next.is_none();
            let hashed = chunk.clone();
            d = tokio::task::spawn_blocking(move || {
                d.update(&hashed);
                d
            })
            .await
            .map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("hashing: {e}"),
            })?;
            let end = offset + chunk.len() as u64;
            let total = if last {
                end.to_string()
            } else {
                "*".to_string()
            };
            if last {
                finalizing.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let resp = self.put_chunk(key, session, offset, chunk, &total).await?;
            if last {
                if !resp.status().is_success() {
                    return Err(self.http_err(key, resp, false).await);
                }
                let obj: GcsObject = resp.json().await.map_err(|e| StoreError::Io {
                    url: url.clone(),
                    detail: format!("reading the upload's answer: {e}"),
                })?;
                return self.verify(key, obj, d, &opts.content_type).await;
            }
            if resp.status().as_u16() != 308 && !resp.status().is_success() {
                return Err(self.http_err(key, resp, false).await);
            }
            offset = end;
            chunk = next.unwrap_or_default();
        }
    }

    /// Sends one chunk (`offset` is its first byte's position in the object, `total` the
    /// object's size or `*`), retrying transient failures. Before a retry it asks the server how
    /// many bytes it persisted (an interrupted request may have left part of the chunk there)
    /// and resends only the rest, as the resumable protocol requires.
    async fn put_chunk(
        &self,
        key: &str,
        session: &str,
        offset: u64,
        chunk: Bytes,
        total: &str,
    ) -> Result<reqwest::Response> {
        let end = offset + chunk.len() as u64;
        let mut start = offset;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rest = chunk.slice((start - offset) as usize..);
            let range = if rest.is_empty() {
                format!("bytes */{total}")
            } else {
                format!("bytes {start}-{}/{total}", end - 1)
            };
            let req = self
                .http
                .request(Method::PUT, session)
                .header("content-range", range)
                .body(rest);
            match self.send_counted(req, key, 1).await {
                Ok((r, _))
                    if r.status().is_server_error() && attempt < self.settings.max_attempts =>
                {
                    tracing::warn!(object = %self.url(key), status = r.status().as_u16(), attempt, "retrying a chunk");
                }
                Ok((r, _)) => return Ok(r),
                Err(e) if attempt < self.settings.max_attempts => {
                    tracing::warn!(object = %self.url(key), error = %e, attempt, "retrying a chunk");
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200 * (1 << attempt.min(5)))).await;
            let status = self
                .http
                .request(Method::PUT, session)
                .header("content-range", format!("bytes */{total}"))
                .body(Bytes::new());
            let Ok((r, _)) = self.send_counted(status, key, 1).await else {
                continue;
            };
            if r.status().is_success() {
                // The interrupted request completed the upload after all.
                return Ok(r);
            }
            if r.status().as_u16() != 308 {
                continue;
            }
            // `Range: bytes=0-N` means N+1 bytes persisted; no Range means none.
            let persisted = r
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('-'))
                .and_then(|(_, n)| n.trim().parse::<u64>().ok())
                .map_or(0, |n| n + 1);
            if persisted < offset || persisted > end {
                return Err(StoreError::Io {
                    url: self.url(key),
                    detail: format!(
                        "resumable upload: the server holds {persisted} bytes, expected between {offset} and {end}"
                    ),
                });
            }
            start = persisted;
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for GcsStore {
    fn url(&self, key: &str) -> String {
        format!("gs://{}/{}", self.bucket, self.full_key(key))
    }

    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        self.put_media(key, data, &opts).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let mut reader = ChunkReader::new(body);
        let size = self.settings.chunk_size;
        let first = with_cancel(opts.cancel.as_ref(), &url, reader.next_chunk(size))
            .await?
            .map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("reading the upload's source: {e}"),
            })?
            .unwrap_or_default();
        if first.len() < size {
            self.put_media(key, first, &opts).await
        } else {
            self.put_resumable(key, first, reader, &opts).await
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let meta = self
            .head(key)
            .await?
            .ok_or_else(|| StoreError::NotFound { url: self.url(key) })?;
        // Reads exactly the generation just described, so data and metadata agree.
        let req = self
            .http
            .get(self.object_url(key))
            .query(&[("alt", "media"), ("generation", meta.version.0.as_str())]);
        let resp = self.send(req, key).await?;
        if !resp.status().is_success() {
            return Err(self.http_err(key, resp, true).await);
        }
        let data = resp.bytes().await.map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("reading the body: {e}"),
        })?;
        Ok((data, meta))
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let meta = self
            .head(key)
            .await?
            .ok_or_else(|| StoreError::NotFound { url: self.url(key) })?;
        if meta.size == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let source = GcsRange {
            store: self.clone(),
            key: key.to_string(),
            generation: meta.version.0,
        };
        Ok(crate::ranged::read(
            Arc::new(source),
            meta.size,
            &self.settings.reads,
        ))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let resp = self.send(self.http.get(self.object_url(key)), key).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return match self.http_err(key, resp, true).await {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            };
        }
        if !resp.status().is_success() {
            return Err(self.http_err(key, resp, true).await);
        }
        let obj: GcsObject = resp.json().await.map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("reading metadata: {e}"),
        })?;
        Ok(self.meta(obj))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let resp = self
            .send(self.http.delete(self.object_url(key)), key)
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        match self.http_err(key, resp, true).await {
            StoreError::NotFound { .. } => Ok(()),
            other => Err(other),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full_prefix = join_key(&self.prefix, prefix);
        let url = format!("{}/storage/v1/b/{}/o", self.endpoint, self.bucket);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("prefix", full_prefix.clone())];
            if let Some(t) = token.take() {
                query.push(("pageToken", t));
            }
            let resp = self.send(self.http.get(&url).query(&query), prefix).await?;
            if !resp.status().is_success() {
                return Err(self.http_err(prefix, resp, false).await);
            }
            let page: GcsList = resp.json().await.map_err(|e| StoreError::Io {
                url: self.url(prefix),
                detail: format!("reading a listing: {e}"),
            })?;
            out.extend(page.items.into_iter().filter_map(|o| self.meta(o)));
            match page.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Ranges of one generation of one object: a newer generation written mid-read cannot mix in.
struct GcsRange {
    store: GcsStore,
    key: String,
    generation: String,
}

#[async_trait::async_trait]
impl RangeSource for GcsRange {
    async fn fetch(&self, start: u64, end: u64) -> Result<ByteStream> {
        let mut query = vec![("alt", "media".to_string())];
        if !self.generation.is_empty() {
            query.push(("generation", self.generation.clone()));
        }
        let req = self
            .store
            .http
            .get(self.store.object_url(&self.key))
            .query(&query)
            .header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1));
        let resp = self.store.send(req, &self.key).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {}
            // A whole object for a range covering all of it is the same bytes.
            StatusCode::OK if start == 0 && resp.content_length() == Some(end) => {}
            StatusCode::OK => {
                return Err(StoreError::Io {
                    url: self.url(),
                    detail: format!(
                        "the server ignored the range bytes={start}-{} (HTTP 200 instead of 206)",
                        end - 1
                    ),
                })
            }
            _ => return Err(self.store.http_err(&self.key, resp, true).await),
        }
        Ok(Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        ))
    }

    fn url(&self) -> String {
        self.store.url(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_vectors() {
        let mut d = Digests::default();
        d.update(b"1234");
        d.update(b"56789");
        // CRC32C check value of "123456789" (RFC 3720, iSCSI).
        assert_eq!(d.crc32c, 0xE306_9283);
        assert_eq!(
            hex::encode(md5::Digest::finalize(d.md5)),
            "25f9e794323b453885f5181f1b624d0b"
        );
        assert_eq!(d.len, 9);
    }

    #[test]
    fn object_names_are_escaped_in_paths() {
        assert_eq!(
            utf8_percent_encode("a/b c+d", NAME).to_string(),
            "a%2Fb%20c%2Bd"
        );
    }
}

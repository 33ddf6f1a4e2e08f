//! An in-memory [`ObjectStore`] with real conditional writes, for tests of the catalog logic
//! (and of code built on it) without a server or a directory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use objstore::{
    ByteStream, ObjectMeta, ObjectStore, Precondition, PutOptions, Result, StoreError, Version,
};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    version: u64,
    content_type: Option<String>,
    website_redirect: Option<String>,
}

/// Objects in a map behind a mutex; every write gets a fresh version number.
#[derive(Debug)]
pub struct MemStore {
    base_url: String,
    attest_sha256: bool,
    enforce_conditions: bool,
    objects: Mutex<BTreeMap<String, Object>>,
    next_version: AtomicU64,
}

impl MemStore {
    /// `base_url` is what [`ObjectStore::url`] prefixes keys with; use an `s3://bucket/prefix`
    /// URL to exercise S3-only behaviour (website redirects).
    pub fn new(base_url: impl Into<String>) -> Self {
        MemStore {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            attest_sha256: true,
            enforce_conditions: true,
            objects: Mutex::new(BTreeMap::new()),
            next_version: AtomicU64::new(1),
        }
    }

    /// A store that, like some S3-compatible servers, attests no SHA-256 on upload.
    pub fn without_checksums(mut self) -> Self {
        self.attest_sha256 = false;
        self
    }

    /// A store that, like some S3-compatible servers and the GCS emulator, accepts every write
    /// whatever its precondition says.
    pub fn ignoring_conditions(mut self) -> Self {
        self.enforce_conditions = false;
        self
    }

    /// The website redirect stored with an object.
    pub fn website_redirect(&self, key: &str) -> Option<String> {
        self.lock()
            .get(key)
            .and_then(|o| o.website_redirect.clone())
    }

    /// Replaces an object's bytes behind the catalog's back (bit rot, a tampering test).
    pub fn overwrite_raw(&self, key: &str, data: Bytes) {
        let version = self.next_version.fetch_add(1, Ordering::Relaxed);
        let mut objects = self.lock();
        let entry = objects.entry(key.to_string()).or_insert(Object {
            data: Bytes::new(),
            version,
            content_type: None,
            website_redirect: None,
        });
        entry.data = data;
        entry.version = version;
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A poisoned lock only means another test thread panicked; the map itself is consistent.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(&self, key: &str, o: &Object, with_sha: bool) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: o.data.len() as u64,
            version: Version(o.version.to_string()),
            sha256: (with_sha && self.attest_sha256).then(|| Sha256::digest(&o.data).into()),
            content_type: o.content_type.clone(),
            confirmed: false,
        }
    }

    fn write(&self, key: &str, data: Bytes, opts: &PutOptions) -> Result<ObjectMeta> {
        let mut objects = self.lock();
        let current = objects.get(key);
        let allowed = match &opts.precondition {
            Precondition::None => true,
            Precondition::IfAbsent => current.is_none(),
            Precondition::IfMatch(v) => current.is_some_and(|o| o.version.to_string() == v.0),
        };
        if !allowed && self.enforce_conditions {
            return Err(StoreError::PreconditionFailed { url: self.url(key) });
        }
        let object = Object {
            data,
            version: self.next_version.fetch_add(1, Ordering::Relaxed),
            content_type: opts.content_type.clone(),
            website_redirect: opts.website_redirect.clone(),
        };
        let meta = self.meta(key, &object, true);
        objects.insert(key.to_string(), object);
        Ok(meta)
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound { url: self.url(key) }
    }
}

#[async_trait]
impl ObjectStore for MemStore {
    fn url(&self, key: &str) -> String {
        format!("{}/{}", self.base_url, key)
    }

    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        self.write(key, data, &opts)
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let mut buf = BytesMut::new();
        loop {
            let next = match &opts.cancel {
                Some(c) => tokio::select! {
                    _ = c.cancelled() => return Err(StoreError::Cancelled { url: self.url(key) }),
                    n = body.next() => n,
                },
                None => body.next().await,
            };
            match next {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(StoreError::Io {
                        url: self.url(key),
                        detail: e.to_string(),
                    })
                }
                None => break,
            }
        }
        self.write(key, buf.freeze(), &opts)
    }

    async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let objects = self.lock();
        let o = objects.get(key).ok_or_else(|| self.not_found(key))?;
        Ok((o.data.clone(), self.meta(key, o, false)))
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let data = self
            .lock()
            .get(key)
            .map(|o| o.data.clone())
            .ok_or_else(|| self.not_found(key))?;
        // Small chunks, so readers see a real stream rather than one buffer.
        let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
            .step_by(64 * 1024)
            .map(|i| Ok(data.slice(i..(i + 64 * 1024).min(data.len()))))
            .collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.lock().get(key).map(|o| self.meta(key, o, false)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        Ok(self
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| self.meta(k, o, false))
            .collect())
    }
}

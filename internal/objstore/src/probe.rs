//! Finding out whether a store enforces conditional writes.
//!
//! Concurrent writers of one shared document are only safe when the store refuses a write whose
//! precondition no longer holds. S3 and GCS do; some S3-compatible servers and the GCS emulator
//! accept the write anyway. [`conditional_writes`] asks the store itself, once per process and
//! store prefix: it writes a probe object under a reserved key, makes its first version stale,
//! then tries a create-if-absent over it and an if-match against the stale version. Both must be
//! refused. The probe object is removed afterwards.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;

use crate::{ObjectStore, Precondition, PutOptions, Result, StoreError};

/// Prefix of probe keys. Catalog names start with a DNS label, never with `.`, so a probe never
/// collides with an artifact, its metadata, the index or a pointer.
pub const PROBE_KEY_PREFIX: &str = ".conditional-write-probe-";

/// What a store did with writes that must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    /// A create-if-absent (`If-None-Match: *`, `ifGenerationMatch=0`) over an existing object
    /// was refused.
    pub if_absent: bool,
    /// A write naming a stale version (`If-Match`, `ifGenerationMatch`) was refused.
    pub if_match: bool,
}

impl Enforcement {
    /// Both kinds of conditional write are enforced.
    pub fn complete(&self) -> bool {
        self.if_absent && self.if_match
    }

    /// What the store does not enforce, in words, e.g. `create-if-absent (If-None-Match: *)`.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.if_absent {
            out.push("create-if-absent (S3 If-None-Match: *, GCS ifGenerationMatch=0)");
        }
        if !self.if_match {
            out.push("writes conditional on a version (S3 If-Match, GCS ifGenerationMatch)");
        }
        out
    }
}

fn cache() -> &'static Mutex<HashMap<String, Enforcement>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Enforcement>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Whether `store` enforces conditional writes, probed on first use per store prefix in this
/// process and remembered after.
pub async fn conditional_writes(store: &dyn ObjectStore) -> Result<Enforcement> {
    let prefix = store.url("");
    if let Some(e) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&prefix)
    {
        return Ok(*e);
    }
    let e = probe(store).await?;
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(prefix, e);
    Ok(e)
}

/// Probes without the cache: four small writes and a delete.
pub async fn probe(store: &dyn ObjectStore) -> Result<Enforcement> {
    let started = Instant::now();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Unique per process and call, so probers in parallel never see each other's object.
    let key = format!("{PROBE_KEY_PREFIX}{}-{nanos:x}", std::process::id());
    let put = |body: &'static str, precondition: Precondition| {
        let opts = PutOptions {
            content_type: Some("text/plain".into()),
            precondition,
            ..PutOptions::default()
        };
        store.put_bytes(&key, Bytes::from_static(body.as_bytes()), opts)
    };
    let outcome = async {
        let first = put("first\n", Precondition::IfAbsent).await?;
        // An unconditional rewrite with other bytes makes the first version stale (an S3 ETag is
        // the content's MD5, so the bytes must differ).
        put("second\n", Precondition::None).await?;
        let refused = |r: Result<_>| match r {
            Ok(_) => Ok(false),
            Err(StoreError::PreconditionFailed { .. }) => Ok(true),
            Err(e) => Err(e),
        };
        // One after the other: sent at once, a store that takes both would have each one's
        // read-back (S3 confirms a write by a HEAD where the server echoes no checksum) see the
        // other's bytes.
        let if_absent = refused(put("third\n", Precondition::IfAbsent).await)?;
        let if_match = refused(put("fourth\n", Precondition::IfMatch(first.version)).await)?;
        Ok(Enforcement {
            if_absent,
            if_match,
        })
    };
    let result: Result<Enforcement> = outcome.await;
    if let Err(e) = store.delete(&key).await {
        tracing::warn!(object = %store.url(&key), error = %e, "could not remove the conditional-write probe");
    }
    if let Ok(e) = &result {
        tracing::debug!(
            store = %store.url(""),
            if_absent = e.if_absent,
            if_match = e.if_match,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "conditional-write probe"
        );
    }
    result
}

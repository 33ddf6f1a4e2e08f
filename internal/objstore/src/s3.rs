//! S3 and S3-compatible servers through aws-sdk-s3.
//!
//! Checksums are ours, not the SDK's: the SDK's default (CRC32 on every request, aws-chunked
//! framing) is switched to "when required", and every write carries the SHA-256 we computed, so
//! servers that do not understand aws-chunked bodies store the bytes we meant and servers that
//! check `x-amz-checksum-sha256` (AWS, s3s-fs) reject a corrupted body. `ObjectMeta::sha256` is
//! returned only when the server attested that digest (PUT response, HEAD with `ChecksumMode`, or
//! a composite multipart checksum equal to ours).

use std::time::Duration;

use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ServerSideEncryption,
};
use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ranged::{RangeSource, RangedReads};
use crate::url::{join_key, strip_key};
use crate::{
    ByteStream, ObjectMeta, ObjectStore, Precondition, PutOptions, Result, StoreConfig, StoreError,
    Version,
};

/// S3 allows at most this many parts in one multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Parts at the first size before it doubles, so an upload of unknown length can reach TiBs.
const PARTS_PER_SIZE_STEP: u32 = 1000;

/// Credentials given directly instead of the standard chain (tests, S3-compatible servers).
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Tuning of the S3 client that is not part of [`StoreConfig`].
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Size of the first parts of a multipart upload; a stream shorter than this goes as one PUT.
    /// AWS needs at least 5 MiB; S3-compatible test servers accept less.
    pub part_size: u64,
    /// Parts uploaded at the same time (memory is about `(parts_in_flight + 1) * part_size`:
    /// 40 MiB with the defaults, so a create to S3 stays near a create into a local store).
    pub parts_in_flight: usize,
    /// `None`: the standard chain (env, profile, web identity, IMDS).
    pub credentials: Option<StaticCredentials>,
    /// Gives up on a request whose server sends nothing for this long (a stalled connection).
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per request, retries included (throttling, 5xx, reset connections).
    pub max_attempts: u32,
    /// How objects are read: ranges over several connections, each retried on its own.
    pub reads: RangedReads,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 4,
            credentials: None,
            read_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 5,
            reads: RangedReads::default(),
        }
    }
}

/// Part size of part `part_number` (1-based): `base` for the first 1000 parts, doubling every
/// 1000 parts after, capped at 5 GiB; with an 8 MiB base, 10,000 parts hold more than 5 TiB.
pub fn part_size_for(part_number: u32, base: u64) -> u64 {
    let step = (part_number.saturating_sub(1) / PARTS_PER_SIZE_STEP).min(20);
    base.saturating_mul(1u64 << step).min(MAX_PART_SIZE)
}

/// The most bytes a multipart upload with this base part size can hold.
pub fn max_object_size(base: u64) -> u64 {
    (1..=MAX_PARTS).map(|n| part_size_for(n, base)).sum()
}

/// An S3 bucket and key prefix.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    sse: Option<String>,
    settings: S3Settings,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("sse", &self.sse)
            .field("settings", &self.settings)
            .finish()
    }
}

impl S3Store {
    /// Opens a bucket with the standard credential chain and default settings.
    pub async fn open(bucket: &str, prefix: &str, config: &StoreConfig) -> Result<S3Store> {
        Self::open_with(bucket, prefix, config, S3Settings::default()).await
    }

    /// Opens a bucket with explicit settings. Region: `config.region`, else the SDK's chain
    /// (`AWS_REGION`, profile), else `us-east-1` when a custom endpoint is set.
    pub async fn open_with(
        bucket: &str,
        prefix: &str,
        config: &StoreConfig,
        settings: S3Settings,
    ) -> Result<S3Store> {
        let url = format!("s3://{bucket}/{prefix}");
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(settings.max_attempts.max(1)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .read_timeout(settings.read_timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(c) = &settings.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                None,
                None,
                "testnet-static",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
            if shared.region().is_none() {
                builder = builder.region(Region::new("us-east-1"));
            }
        } else if shared.region().is_none() {
            return Err(StoreError::BadUrl {
                url,
                reason: "no AWS region: set the store's region or AWS_REGION".into(),
            });
        }
        let prefix = prefix.trim_matches('/').to_string();
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_string(),
            prefix,
            sse: config.sse.clone(),
            settings,
        })
    }

    /// The SDK client, for tests that need to inspect the bucket (e.g. open multipart uploads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    fn map_err<E>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let url = self.url(key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let detail = match (&code, status) {
            // Nothing usable came back: a timeout, a reset or a refused connection, after the
            // retries the settings allow.
            (None, None) => format!(
                "no answer from the server after {} attempt(s); check the endpoint and the network, then try again: {}",
                self.settings.max_attempts.max(1),
                DisplayErrorContext(&err)
            ),
            _ => format!(
                "{}{}: {}",
                code.as_deref().unwrap_or("no error code"),
                status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                err.message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
            ),
        };
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => StoreError::NoSuchBucket {
                bucket: self.bucket.clone(),
            },
            (Some("NoSuchKey") | Some("NotFound"), _) | (None, Some(404)) => {
                StoreError::NotFound { url }
            }
            (Some("PreconditionFailed") | Some("ConditionalRequestConflict"), _)
            | (_, Some(412)) => StoreError::PreconditionFailed { url },
            (
                Some("AccessDenied")
                | Some("InvalidAccessKeyId")
                | Some("SignatureDoesNotMatch")
                | Some("ExpiredToken")
                | Some("InvalidToken")
                | Some("AllAccessDisabled"),
                _,
            )
            | (_, Some(401 | 403)) => StoreError::AccessDenied { url, detail },
            (
                Some("BadDigest")
                | Some("InvalidDigest")
                | Some("XAmzContentSHA256Mismatch")
                | Some("InvalidChecksum"),
                _,
            ) => StoreError::ChecksumMismatch { url, detail },
            _ => StoreError::Io { url, detail },
        }
    }

    /// One PUT of a whole object with its SHA-256; the server checks it where it can.
    ///
    /// `discard_unconfirmed`: remove the object when the write succeeded but its confirmation
    /// failed (an artifact must be verified or absent); small documents such as an index keep
    /// their conditional write instead.
    async fn put_single(
        &self,
        key: &str,
        data: Bytes,
        sha: [u8; 32],
        opts: &PutOptions,
        discard_unconfirmed: bool,
    ) -> Result<ObjectMeta> {
        let len = data.len() as u64;
        let sha_b64 = B64.encode(sha);
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_length(len as i64)
            .checksum_sha256(&sha_b64)
            .body(SdkByteStream::from(data));
        if let Some(ct) = &opts.content_type {
            req = req.content_type(ct);
        }
        if let Some(r) = &opts.website_redirect {
            req = req.website_redirect_location(r);
        }
        if let Some(sse) = &self.sse {
            req = req.server_side_encryption(ServerSideEncryption::from(sse.as_str()));
        }
        match &opts.precondition {
            Precondition::None => {}
            Precondition::IfAbsent => req = req.if_none_match("*"),
            Precondition::IfMatch(v) => req = req.if_match(&v.0),
        }
        let url = self.url(key);
        // The signed x-amz-checksum-sha256 already binds the body, and the server checks it: a
        // SigV4 payload hash would be another SHA-256 pass over every byte.
        let req = req.customize().disable_payload_signing();
        let resp = committing(opts.cancel.as_ref(), &url, req.send())
            .await?
            .map_err(|e| self.map_err(key, e))?;
        let echoed = resp.checksum_sha256().is_some_and(|c| c == sha_b64);
        let confirmed = self
            .confirm(
                key,
                len,
                sha,
                echoed,
                resp.e_tag().map(str::to_string),
                opts,
            )
            .await;
        if confirmed.is_err() && discard_unconfirmed {
            self.discard(key).await;
        }
        confirmed
    }

    /// Removes an object this call wrote but could not confirm.
    async fn discard(&self, key: &str) {
        match self.delete(key).await {
            Ok(()) => {
                tracing::info!(object = %self.url(key), "removed an upload that could not be confirmed")
            }
            Err(e) => {
                tracing::warn!(object = %self.url(key), error = %e, "could not remove an upload that could not be confirmed")
            }
        }
    }

    /// HEADs an object just uploaded with `len` bytes: it must be there, at that size.
    async fn head_uploaded(&self, key: &str, len: u64) -> Result<ObjectMeta> {
        let url = self.url(key);
        let head = self.head(key).await?.ok_or_else(|| StoreError::Io {
            url: url.clone(),
            detail: "the object is absent right after its upload succeeded".into(),
        })?;
        if head.size != len {
            return Err(StoreError::ChecksumMismatch {
                url,
                detail: format!("sent {len} bytes, the store holds {}", head.size),
            });
        }
        Ok(head)
    }

    /// HEADs what was written: the size must match; the SHA-256 is returned when the PUT
    /// response or the HEAD attest it (`checksum_ok`), and a different attested digest is an error.
    async fn confirm(
        &self,
        key: &str,
        len: u64,
        sha: [u8; 32],
        checksum_ok: bool,
        etag: Option<String>,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let head = self.head_uploaded(key, len).await?;
        if let Some(theirs) = head.sha256 {
            if theirs != sha {
                return Err(StoreError::ChecksumMismatch {
                    url: self.url(key),
                    detail: format!(
                        "sent SHA-256 {}, the store reports {}",
                        hex::encode(sha),
                        hex::encode(theirs)
                    ),
                });
            }
        }
        let confirmed = checksum_ok || head.sha256 == Some(sha);
        Ok(ObjectMeta {
            key: key.to_string(),
            size: len,
            version: etag.map(Version).unwrap_or(head.version),
            sha256: confirmed.then_some(sha),
            content_type: head.content_type.or_else(|| opts.content_type.clone()),
            confirmed: false,
        })
    }

    /// HEADs what a multipart upload wrote: the size must match. When the store attested the
    /// composite of our part digests (`parts_attested`), it holds exactly the bytes this upload
    /// was handed, in order: the object is `confirmed`, and a caller that hashed those bytes
    /// needs no further SHA-256 pass (hashing the whole object here as well would be a third
    /// pass over every byte, after the caller's and the per-part one).
    async fn confirm_parts(
        &self,
        key: &str,
        len: u64,
        parts_attested: bool,
        etag: Option<String>,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let head = self.head_uploaded(key, len).await?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: len,
            version: etag.map(Version).unwrap_or(head.version),
            sha256: None,
            content_type: head.content_type.or_else(|| opts.content_type.clone()),
            confirmed: parts_attested,
        })
    }

    /// Fails early when a multipart upload's precondition cannot hold (the final
    /// `CompleteMultipartUpload` carries it too, for servers that check it there).
    async fn precheck(&self, key: &str, pre: &Precondition) -> Result<()> {
        match pre {
            Precondition::None => Ok(()),
            Precondition::IfAbsent => match self.head(key).await? {
                Some(_) => Err(StoreError::PreconditionFailed { url: self.url(key) }),
                None => Ok(()),
            },
            Precondition::IfMatch(v) => match self.head(key).await? {
                Some(m) if m.version == *v => Ok(()),
                _ => Err(StoreError::PreconditionFailed { url: self.url(key) }),
            },
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        first: Bytes,
        reader: ChunkReader,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        self.precheck(key, &opts.precondition).await?;
        let full = self.full_key(key);
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(ct) = &opts.content_type {
            req = req.content_type(ct);
        }
        if let Some(r) = &opts.website_redirect {
            req = req.website_redirect_location(r);
        }
        if let Some(sse) = &self.sse {
            req = req.server_side_encryption(ServerSideEncryption::from(sse.as_str()));
        }
        let created = with_cancel(opts.cancel.as_ref(), &url, req.send())
            .await?
            .map_err(|e| self.map_err(key, e))?;
        let upload_id = created
            .upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Io {
                url: url.clone(),
                detail: "CreateMultipartUpload returned no upload id".into(),
            })?;
        tracing::debug!(object = %url, upload_id = %upload_id, "multipart upload started");
        self.abort_orphaned_creates(key, &full, &upload_id).await;

        let stage = CompletionStage::default();
        let work = self.upload_and_complete(key, &upload_id, first, reader, opts, &stage);
        // Once CompleteMultipartUpload is on the wire, aborting would find no upload and leave
        // the object: a cancellation then lets the completion finish.
        let outcome =
            upload_until_commit(opts.cancel.as_ref(), &url, &stage.completing, work).await;
        match outcome {
            Ok(meta) => Ok(meta),
            Err(e) if stage.completed.load(std::sync::atomic::Ordering::SeqCst) => {
                // The object exists but was not confirmed (or the caller cancelled meanwhile).
                self.discard(key).await;
                Err(e)
            }
            Err(e) => {
                let abort = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&full)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                match abort {
                    Ok(_) => {
                        tracing::info!(object = %url, upload_id = %upload_id, error = %e, "multipart upload aborted")
                    }
                    Err(ae) => tracing::warn!(object = %url, upload_id = %upload_id, error = %e,
                        abort_error = %DisplayErrorContext(&ae), "aborting the multipart upload failed"),
                }
                Err(e)
            }
        }
    }

    /// When the answer to a CreateMultipartUpload is lost (connection reset after the server
    /// acted), the SDK's retry creates a second upload and the first stays open, holding storage,
    /// forever. Right after our create succeeds, this aborts the other uploads of the same key
    /// that the server initiated within our retry window before ours; times are the server's,
    /// so no clock comparison is involved. A concurrent publisher of the very same key within that
    /// window may lose its upload, but only one of two such uploads could ever win the key's
    /// `IfAbsent` anyway. Servers that cannot list uploads (s3s-fs) or deny the listing are left
    /// as they are, with a debug log.
    async fn abort_orphaned_creates(&self, key: &str, full: &str, ours: &str) {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(full)
            .send()
            .await;
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(object = %self.url(key), error = %DisplayErrorContext(&e), "cannot list multipart uploads; orphans of retried creates are not looked for");
                return;
            }
        };
        let uploads = listed.uploads();
        let Some(our_time) = uploads
            .iter()
            .find(|u| u.upload_id() == Some(ours))
            .and_then(|u| u.initiated())
            .map(|t| t.secs())
        else {
            return;
        };
        let attempts = i64::from(self.settings.max_attempts.max(1));
        let window = attempts
            * (self.settings.read_timeout.as_secs() as i64
                + self.settings.connect_timeout.as_secs() as i64)
            + 30;
        for u in uploads {
            let (Some(id), Some(k), Some(t)) = (u.upload_id(), u.key(), u.initiated()) else {
                continue;
            };
            if id == ours || k != full || t.secs() > our_time || t.secs() < our_time - window {
                continue;
            }
            match self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(id)
                .send()
                .await
            {
                Ok(_) => {
                    tracing::info!(object = %self.url(key), upload_id = %id, "aborted a multipart upload orphaned by a retried create")
                }
                Err(e) => {
                    tracing::warn!(object = %self.url(key), upload_id = %id, error = %DisplayErrorContext(&e), "could not abort a multipart upload orphaned by a retried create")
                }
            }
        }
    }

    async fn upload_and_complete(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        mut reader: ChunkReader,
        opts: &PutOptions,
        stage: &CompletionStage,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let full_key = self.full_key(key);
        let full = full_key.as_str();
        let io_err = |e: std::io::Error| StoreError::Io {
            url: url.clone(),
            detail: format!("reading the upload's source: {e}"),
        };
        let mut tasks: JoinSet<Result<UploadedPart>> = JoinSet::new();
        let mut done: Vec<UploadedPart> = Vec::new();
        let mut total: u64 = 0;
        let mut part_number: u32 = 1;
        let mut chunk = first;
        loop {
            while tasks.len() >= self.settings.parts_in_flight.max(1) {
                done.push(join_part(&url, tasks.join_next().await)?);
            }
            total += chunk.len() as u64;
            let store = self.clone();
            let (key_s, full_s, id_s) = (key.to_string(), full.to_string(), upload_id.to_string());
            tasks.spawn(async move {
                store
                    .upload_part(&key_s, &full_s, &id_s, part_number, chunk)
                    .await
            });
            let next = reader
                .next_chunk(part_size_for(part_number + 1, self.settings.part_size) as usize)
                .await
                .map_err(io_err)?;
            match next {
                Some(c) => {
                    if part_number >= MAX_PARTS {
                        return Err(StoreError::Io {
                            url: url.clone(),
                            detail: format!(
                                "the object exceeds {MAX_PARTS} parts ({} bytes)",
                                max_object_size(self.settings.part_size)
                            ),
                        });
                    }
                    part_number += 1;
                    chunk = c;
                }
                None => break,
            }
        }
        // The source is spent: its buffers go now, before the read-back below takes its own.
        drop(reader);
        while let Some(joined) = tasks.join_next().await {
            done.push(join_part(&url, Some(joined))?);
        }
        done.sort_by_key(|(n, _, _, _)| *n);
        let mut composite = Sha256::new();
        for (_, digest, _, _) in &done {
            composite.update(digest);
        }
        let prints: Vec<PartPrint> = done.iter().map(|(_, _, _, p)| *p).collect();
        let composite: [u8; 32] = composite.finalize().into();
        let composite_b64 = B64.encode(composite);

        let mut req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done.into_iter().map(|(_, _, p, _)| p).collect()))
                    .build(),
            );
        match &opts.precondition {
            Precondition::None => {}
            Precondition::IfAbsent => req = req.if_none_match("*"),
            Precondition::IfMatch(v) => req = req.if_match(&v.0),
        }
        stage
            .completing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (etag, checksum) = match req.send().await {
            Ok(r) => (
                r.e_tag().map(str::to_string),
                r.checksum_sha256().map(str::to_string),
            ),
            // The SDK retried a completion whose answer was lost after the server completed it:
            // the upload is gone because it became the object. Accept the object only if it is
            // exactly what this upload made (size and part count); the checks below still apply.
            Err(e) if e.code() == Some("NoSuchUpload") => match self.head(key).await? {
                Some(h) if h.size == total && etag_parts(&h.version.0) == Some(part_number) => {
                    tracing::info!(object = %url, "completion retried after a lost answer; the object is complete");
                    (Some(h.version.0), None)
                }
                _ => return Err(self.map_err(key, e)),
            },
            Err(e) => return Err(self.map_err(key, e)),
        };
        stage
            .completed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let attested = |c: Option<&str>| {
            c.is_some_and(|c| c.split('-').next() == Some(composite_b64.as_str()))
        };
        let mut ok = attested(checksum.as_deref());
        if !ok {
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(full)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .map_err(|e| self.map_err(key, e))?;
            ok = attested(head.checksum_sha256());
        }
        // A server that attests no composite checksum may not have checked the parts' SHA-256
        // either (s3s-fs 0.14 checks a single PUT's checksum, not a part's); reading the object
        // back and comparing it with the fingerprints of the parts sent confirms it holds exactly
        // those bytes, without a second SHA-256 pass. A full read-back by the caller follows
        // otherwise and is the stronger check.
        let read_back = !ok && !opts.full_read_follows;
        if read_back {
            self.compare_read_back(key, &prints).await?;
        }
        tracing::info!(object = %url, bytes = total, parts = part_number, attested = ok, read_back, "multipart upload complete");
        self.confirm_parts(key, total, ok || read_back, etag, opts)
            .await
    }

    /// Reads the completed object back (in parallel ranges, as any large read) and compares
    /// each part's bytes with the fingerprint taken when it was sent.
    async fn compare_read_back(&self, key: &str, prints: &[PartPrint]) -> Result<()> {
        let url = self.url(key);
        let mismatch = |detail: String| StoreError::ChecksumMismatch {
            url: url.clone(),
            detail,
        };
        let mut stream = self.get_stream(key).await?;
        let mut check = ReadBackCheck::new(prints);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("reading the object back: {e}"),
            })?;
            check.feed(&chunk).map_err(mismatch)?;
        }
        check.finish().map_err(mismatch)
    }

    async fn upload_part(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        n: u32,
        data: Bytes,
    ) -> Result<UploadedPart> {
        let data2 = data.clone();
        let (digest, print) = tokio::task::spawn_blocking(move || {
            let digest: [u8; 32] = Sha256::digest(&data2).into();
            (digest, PartPrint::of(&data2))
        })
        .await
        .map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("hashing part {n}: {e}"),
        })?;
        let digest_b64 = B64.encode(digest);
        let resp = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .part_number(n as i32)
            .content_length(data.len() as i64)
            .checksum_sha256(&digest_b64)
            .body(SdkByteStream::from(data))
            .customize()
            // As for a single PUT: the signed part checksum binds the body.
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.map_err(key, e))?;
        if let Some(theirs) = resp.checksum_sha256() {
            if theirs != digest_b64 {
                return Err(StoreError::ChecksumMismatch {
                    url: self.url(key),
                    detail: format!(
                        "part {n}: sent SHA-256 {digest_b64}, the store reports {theirs}"
                    ),
                });
            }
        }
        let etag = resp.e_tag().map(str::to_string);
        Ok((
            n,
            digest,
            CompletedPart::builder()
                .part_number(n as i32)
                .set_e_tag(etag)
                .checksum_sha256(digest_b64)
                .build(),
            print,
        ))
    }
}

/// The part count of a multipart object's ETag (`"<md5>-<parts>"`), `None` for other ETags.
fn etag_parts(etag: &str) -> Option<u32> {
    etag.trim_matches('"').rsplit_once('-')?.1.parse().ok()
}

/// One uploaded part: its number, its SHA-256, what CompleteMultipartUpload needs and the
/// fingerprint of the bytes sent.
type UploadedPart = (u32, [u8; 32], CompletedPart, PartPrint);

/// The length and xxHash3-128 of a part as sent: a read-back compares against it at memory
/// speed (an accidental difference goes unnoticed with probability 2^-128 per part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartPrint {
    len: u64,
    xxh: u128,
}

impl PartPrint {
    pub(crate) fn of(data: &[u8]) -> PartPrint {
        PartPrint {
            len: data.len() as u64,
            xxh: twox_hash::XxHash3_128::oneshot(data),
        }
    }
}

/// Checks an object read back in order, chunk by chunk, against the prints of its parts.
pub(crate) struct ReadBackCheck<'a> {
    prints: &'a [PartPrint],
    part: usize,
    seen: u64,
    hasher: twox_hash::XxHash3_128,
}

impl<'a> ReadBackCheck<'a> {
    pub(crate) fn new(prints: &'a [PartPrint]) -> Self {
        ReadBackCheck {
            prints,
            part: 0,
            seen: 0,
            hasher: twox_hash::XxHash3_128::new(),
        }
    }

    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> std::result::Result<(), String> {
        while !chunk.is_empty() {
            let Some(want) = self.prints.get(self.part) else {
                return Err("the object reads back longer than the parts sent".into());
            };
            let k = ((want.len - self.seen) as usize).min(chunk.len());
            self.hasher.write(&chunk[..k]);
            self.seen += k as u64;
            chunk = &chunk[k..];
            if self.seen == want.len {
                self.close_part()?;
            }
        }
        Ok(())
    }

    fn close_part(&mut self) -> std::result::Result<(), String> {
        let want = self.prints[self.part];
        let got = std::mem::take(&mut self.hasher).finish_128();
        if got != want.xxh {
            return Err(format!(
                "part {} reads back different bytes from those sent",
                self.part + 1
            ));
        }
        self.part += 1;
        self.seen = 0;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> std::result::Result<(), String> {
        // Empty parts (an empty object) close without bytes.
        while self.part < self.prints.len() && self.seen == self.prints[self.part].len {
            self.close_part()?;
        }
        if self.part != self.prints.len() {
            return Err("the object reads back shorter than the parts sent".into());
        }
        Ok(())
    }
}

fn join_part(
    url: &str,
    joined: Option<std::result::Result<Result<UploadedPart>, tokio::task::JoinError>>,
) -> Result<UploadedPart> {
    match joined {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(StoreError::Io {
            url: url.to_string(),
            detail: format!("part upload task failed: {e}"),
        }),
        None => Err(StoreError::Io {
            url: url.to_string(),
            detail: "no part upload in flight".into(),
        }),
    }
}

/// How far a multipart upload got, for cleaning up after it fails or is cancelled.
#[derive(Default)]
struct CompletionStage {
    /// CompleteMultipartUpload was sent: the object may exist even if no answer arrives.
    completing: std::sync::atomic::AtomicBool,
    /// CompleteMultipartUpload succeeded: the object exists and the upload is gone.
    completed: std::sync::atomic::AtomicBool,
}

/// How long a cancelled upload still waits for a request that may already have created the
/// object (a PUT, a multipart or resumable completion) before it stops listening.
pub(crate) const COMMIT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Awaits `fut`, a request that may create the object, through a cancellation: dropping it in
/// flight could leave an object the server made after we stopped listening, with the caller told
/// nothing was written. So a cancelled caller still gets the request's real outcome (a caller
/// that no longer wants the object removes it); only if the request outlasts [`COMMIT_GRACE`]
/// after the cancellation is the answer `Cancelled`, with a warning that the object may exist.
pub(crate) async fn committing<F: std::future::Future>(
    cancel: Option<&CancellationToken>,
    url: &str,
    fut: F,
) -> Result<F::Output> {
    let Some(token) = cancel else {
        return Ok(fut.await);
    };
    tokio::pin!(fut);
    tokio::select! {
        out = &mut fut => Ok(out),
        _ = token.cancelled() => finish_commit(url, &mut fut)
            .await
            .ok_or_else(|| StoreError::Cancelled { url: url.to_string() }),
    }
}

/// Awaits an upload whose last request commits the object; `commit_started` is set by the
/// upload when that request goes out. A cancellation before it stops the upload at once; one
/// after it lets the commit finish (see [`finish_commit`]) and returns the real outcome, so a
/// caller told "cancelled" never finds an object the server made anyway.
pub(crate) async fn upload_until_commit<F: std::future::Future<Output = Result<ObjectMeta>>>(
    cancel: Option<&CancellationToken>,
    url: &str,
    commit_started: &std::sync::atomic::AtomicBool,
    work: F,
) -> Result<ObjectMeta> {
    let Some(token) = cancel else {
        return work.await;
    };
    tokio::pin!(work);
    let cancelled = || StoreError::Cancelled {
        url: url.to_string(),
    };
    tokio::select! {
        r = &mut work => r,
        _ = token.cancelled() => {
            if commit_started.load(std::sync::atomic::Ordering::SeqCst) {
                finish_commit(url, &mut work).await.unwrap_or_else(|| Err(cancelled()))
            } else {
                Err(cancelled())
            }
        }
    }
}

/// The rest of a committing request after a cancellation, for at most [`COMMIT_GRACE`].
pub(crate) async fn finish_commit<F: std::future::Future + Unpin>(
    url: &str,
    fut: F,
) -> Option<F::Output> {
    tracing::info!(object = %url, "cancelled while the store was committing the object; waiting for its answer");
    match tokio::time::timeout(COMMIT_GRACE, fut).await {
        Ok(out) => Some(out),
        Err(_) => {
            tracing::warn!(object = %url, grace_s = COMMIT_GRACE.as_secs(), "no answer to the commit after the cancellation; the object may exist");
            None
        }
    }
}

/// Runs `fut` unless `cancel` fires first.
pub(crate) async fn with_cancel<F: std::future::Future>(
    cancel: Option<&CancellationToken>,
    url: &str,
    fut: F,
) -> Result<F::Output> {
    match cancel {
        None => Ok(fut.await),
        Some(token) => tokio::select! {
            biased;
            _ = token.cancelled() => Err(StoreError::Cancelled { url: url.to_string() }),
            out = fut => Ok(out),
        },
    }
}

/// Cuts a byte stream into chunks of a requested size, copying each byte once into a buffer
/// allocated at exactly the chunk's size: a buffer left to grow by doubling would hold up to
/// twice each part in memory.
pub(crate) struct ChunkReader {
    body: ByteStream,
    /// Bytes read for the next chunk.
    pending: BytesMut,
    /// The rest of a stream piece that crossed the previous chunk's end.
    carry: Bytes,
    eof: bool,
}

impl ChunkReader {
    pub(crate) fn new(body: ByteStream) -> Self {
        ChunkReader {
            body,
            pending: BytesMut::new(),
            carry: Bytes::new(),
            eof: false,
        }
    }

    /// The next `size` bytes, fewer at the end of the stream, `None` after it.
    pub(crate) async fn next_chunk(&mut self, size: usize) -> std::io::Result<Option<Bytes>> {
        if self.pending.capacity() < size {
            let mut fresh = BytesMut::with_capacity(size);
            fresh.extend_from_slice(&self.pending);
            self.pending = fresh;
        }
        while self.pending.len() < size {
            if self.carry.is_empty() {
                if self.eof {
                    break;
                }
                match self.body.next().await {
                    Some(Ok(b)) => self.carry = b,
                    Some(Err(e)) => return Err(e),
                    None => self.eof = true,
                }
                continue;
            }
            let take = (size - self.pending.len()).min(self.carry.len());
            self.pending.extend_from_slice(&self.carry.split_to(take));
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let n = size.min(self.pending.len());
        Ok(Some(self.pending.split_to(n).freeze()))
    }

    /// Puts bytes back in front of what is still to be read.
    pub(crate) fn unread(&mut self, front: &[u8]) {
        let mut pending = BytesMut::with_capacity(front.len() + self.pending.len());
        pending.extend_from_slice(front);
        pending.extend_from_slice(&self.pending);
        self.pending = pending;
    }
}

/// Ranges of one version of one object: every range carries `If-Match` with the ETag the HEAD
/// saw, so an object replaced mid-read fails instead of mixing two versions.
struct S3Range {
    store: S3Store,
    key: String,
    etag: String,
}

#[async_trait::async_trait]
impl RangeSource for S3Range {
    async fn fetch(&self, start: u64, end: u64) -> Result<ByteStream> {
        let mut req = self
            .store
            .client
            .get_object()
            .bucket(&self.store.bucket)
            .key(self.store.full_key(&self.key))
            .range(format!("bytes={start}-{}", end - 1));
        if !self.etag.is_empty() {
            req = req.if_match(&self.etag);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.store.map_err(&self.key, e))?;
        let stream = futures::stream::unfold(resp.body, |mut body| async move {
            match body.next().await {
                Some(Ok(b)) => Some((Ok(b), body)),
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), body)),
                None => None,
            }
        });
        Ok(Box::pin(stream))
    }

    fn url(&self) -> String {
        self.store.url(&self.key)
    }
}

/// The whole-object SHA-256 a response attests, if any. A multipart object's checksum is
/// composite (the digest of the part digests; AWS appends `-N`, moto does not, and says so only
/// through the `-N` ETag), so it is not the object's SHA-256.
fn decode_sha256(
    c: Option<&str>,
    kind: Option<&ChecksumType>,
    etag: Option<&str>,
) -> Option<[u8; 32]> {
    let c = c?;
    let multipart_etag = etag.is_some_and(|e| {
        e.trim_matches('"')
            .rsplit_once('-')
            .is_some_and(|(_, n)| n.parse::<u32>().is_ok())
    });
    if c.contains('-') || kind == Some(&ChecksumType::Composite) || multipart_etag {
        return None;
    }
    B64.decode(c).ok()?.try_into().ok()
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        let d = data.clone();
        let sha: [u8; 32] = tokio::task::spawn_blocking(move || Sha256::digest(&d).into())
            .await
            .map_err(|e| StoreError::Io {
                url: self.url(key),
                detail: format!("hashing: {e}"),
            })?;
        self.put_single(key, data, sha, &opts, false).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        let mut reader = ChunkReader::new(body);
        let first_size = part_size_for(1, self.settings.part_size) as usize;
        let read_first = async {
            let first = reader.next_chunk(first_size).await?;
            // A stream that fits one part goes as one PUT: peek whether more follows.
            let more = match &first {
                Some(f) if f.len() == first_size => reader.next_chunk(1).await?,
                _ => None,
            };
            std::io::Result::Ok((first, more))
        };
        let (first, more) = with_cancel(opts.cancel.as_ref(), &url, read_first)
            .await?
            .map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("reading the upload's source: {e}"),
            })?;
        let first = first.unwrap_or_default();
        match more {
            None => {
                let d = first.clone();
                let sha: [u8; 32] = tokio::task::spawn_blocking(move || Sha256::digest(&d).into())
                    .await
                    .map_err(|e| StoreError::Io {
                        url: url.clone(),
                        detail: format!("hashing: {e}"),
                    })?;
                self.put_single(key, first, sha, &opts, true).await
            }
            Some(one) => {
                // Put the peeked byte back in front of the rest.
                reader.unread(&one);
                self.put_multipart(key, first, reader, &opts).await
            }
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.map_err(key, e))?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size: resp.content_length().unwrap_or(0).max(0) as u64,
            version: Version(resp.e_tag().unwrap_or_default().to_string()),
            sha256: decode_sha256(resp.checksum_sha256(), resp.checksum_type(), resp.e_tag()),
            content_type: resp.content_type().map(str::to_string),
            confirmed: false,
        };
        let data = resp
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Io {
                url: self.url(key),
                detail: format!("reading the body: {e}"),
            })?
            .into_bytes();
        if let Some(want) = meta.sha256 {
            let got: [u8; 32] = Sha256::digest(&data).into();
            if got != want {
                return Err(StoreError::ChecksumMismatch {
                    url: self.url(key),
                    detail: format!(
                        "read SHA-256 {}, the store reports {}",
                        hex::encode(got),
                        hex::encode(want)
                    ),
                });
            }
        }
        let meta = ObjectMeta {
            size: data.len() as u64,
            ..meta
        };
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
        let source = S3Range {
            store: self.clone(),
            key: key.to_string(),
            etag: meta.version.0,
        };
        Ok(crate::ranged::read(
            std::sync::Arc::new(source),
            meta.size,
            &self.settings.reads,
        ))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let resp = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match resp {
            Ok(r) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: r.content_length().unwrap_or(0).max(0) as u64,
                version: Version(r.e_tag().unwrap_or_default().to_string()),
                sha256: decode_sha256(r.checksum_sha256(), r.checksum_type(), r.e_tag()),
                content_type: r.content_type().map(str::to_string),
                confirmed: false,
            })),
            Err(e) => match self.map_err(key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.map_err(key, e) {
                StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{}", self.prefix, prefix)
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.map_err(prefix, e))?;
            for o in resp.contents() {
                let Some(name) = o.key() else { continue };
                let Some(key) = strip_key(&self.prefix, name) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    version: Version(o.e_tag().unwrap_or_default().to_string()),
                    sha256: None,
                    content_type: None,
                    confirmed: false,
                });
            }
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_reach_five_tib_within_ten_thousand_parts() {
        let base = 16 * 1024 * 1024;
        assert_eq!(part_size_for(1, base), base);
        assert_eq!(part_size_for(1000, base), base);
        assert_eq!(part_size_for(1001, base), 2 * base);
        assert_eq!(part_size_for(10_000, base), MAX_PART_SIZE);
        assert!(
            max_object_size(base) >= 5 * 1024 * 1024 * 1024 * 1024,
            "{}",
            max_object_size(base)
        );
        // A 6 GiB object needs fewer than 1000 parts already at the base size.
        assert!(6 * 1024 * 1024 * 1024 / base < 1000);
        assert!((1..=MAX_PARTS).all(|n| part_size_for(n, base) <= MAX_PART_SIZE));
    }

    #[test]
    fn read_back_check_accepts_the_parts_sent_in_any_chunking() {
        let parts: [&[u8]; 3] = [b"abcdefgh", b"ijklmnop", b"qr"];
        let prints: Vec<PartPrint> = parts.iter().map(|p| PartPrint::of(p)).collect();
        let whole: Vec<u8> = parts.concat();
        for size in [1, 3, 8, 18] {
            let mut c = ReadBackCheck::new(&prints);
            for chunk in whole.chunks(size) {
                c.feed(chunk).expect("same bytes");
            }
            c.finish().expect("complete");
        }
        let empty = [PartPrint::of(b"")];
        ReadBackCheck::new(&empty)
            .finish()
            .expect("an empty object");
    }

    #[test]
    fn read_back_check_refuses_other_bytes_and_other_lengths() {
        let parts: [&[u8]; 2] = [b"abcdefgh", b"ijkl"];
        let prints: Vec<PartPrint> = parts.iter().map(|p| PartPrint::of(p)).collect();
        let mut flipped = parts.concat();
        flipped[9] ^= 1;
        let mut c = ReadBackCheck::new(&prints);
        let err = c.feed(&flipped).expect_err("a flipped byte");
        assert!(err.contains("part 2"), "{err}");

        let mut c = ReadBackCheck::new(&prints);
        c.feed(b"abcdefghijk").expect("a prefix");
        assert!(c.finish().expect_err("short").contains("shorter"));

        let mut c = ReadBackCheck::new(&prints);
        assert!(c
            .feed(b"abcdefghijklm")
            .expect_err("long")
            .contains("longer"));
    }

    #[test]
    fn composite_checksums_are_not_object_digests() {
        let d = B64.encode([7u8; 32]);
        assert_eq!(
            decode_sha256(Some(&d), None, Some("\"abc\"")),
            Some([7u8; 32])
        );
        assert_eq!(decode_sha256(Some(&format!("{d}-3")), None, None), None);
        assert_eq!(
            decode_sha256(Some(&d), Some(&ChecksumType::Composite), None),
            None
        );
        assert_eq!(decode_sha256(Some(&d), None, Some("\"0123abcd-17\"")), None);
        assert_eq!(decode_sha256(Some("not base64!"), None, None), None);
        assert_eq!(etag_parts("\"0123abcd-17\""), Some(17));
        assert_eq!(etag_parts("\"0123abcd\""), None);
    }

    #[tokio::test]
    async fn chunk_reader_cuts_exact_sizes() {
        let parts: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defgh")),
            Ok(Bytes::from_static(b"i")),
        ];
        let mut r = ChunkReader::new(Box::pin(futures::stream::iter(parts)));
        assert_eq!(
            r.next_chunk(4).await.unwrap().unwrap(),
            Bytes::from_static(b"abcd")
        );
        assert_eq!(
            r.next_chunk(4).await.unwrap().unwrap(),
            Bytes::from_static(b"efgh")
        );
        assert_eq!(
            r.next_chunk(4).await.unwrap().unwrap(),
            Bytes::from_static(b"i")
        );
        assert!(r.next_chunk(4).await.unwrap().is_none());
    }
}

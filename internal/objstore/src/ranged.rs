//! Reading a large object as byte ranges over several connections at once, handed on in order.
//!
//! One stream from a real bucket tops out around 90 MB/s, and a connection reset at 90% of a
//! 300 GB artifact must not start it over. So the object is cut into ranges; up to
//! `connections` of them are in flight, each on its own request; each finished range waits for
//! the ones before it, so the consumer sees the bytes in order and memory holds at most about
//! `connections * range_size`. A range that fails is retried on its own (from the first byte it
//! did not get), with bounded attempts and a doubling backoff; every other range is untouched.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::{ByteStream, StoreError};

/// How large objects are read.
#[derive(Debug, Clone)]
pub struct RangedReads {
    /// Ranges fetched at the same time, each on its own connection (at least 1).
    pub connections: usize,
    /// Bytes per range. Memory is about `connections * range_size`.
    pub range_size: u64,
    /// Attempts per range, the first included.
    pub attempts: u32,
    /// Wait before the first retry of a range; doubles with each further retry.
    pub backoff: Duration,
}

/// Connections per object by default. One stream from a bucket is slow (about 90 MB/s from S3;
/// s3s-fs serves a range at about 115 MB/s here), so the throughput of a read is roughly the
/// connections times that, until the processing or the machine's network is the limit. The AWS
/// CLI reads 10 ranges at once.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// Bytes of ranges in flight whatever the number of connections: what keeps a restore from a
/// bucket within its memory bound (128 MiB) however many connections are asked for.
const IN_FLIGHT_BUDGET: u64 = 32 << 20;
/// Range sizes the budget is shared into: below 1 MiB a request's latency outweighs its bytes;
/// above 8 MiB a range only adds memory.
const MIN_RANGE: u64 = 1 << 20;
const MAX_RANGE: u64 = 8 << 20;

impl RangedReads {
    /// `connections` at once, each range a share of the in-flight budget: 8 connections read
    /// 4 MiB ranges, 4 read 8 MiB, 32 read 1 MiB.
    pub fn with_connections(connections: usize) -> RangedReads {
        let connections = connections.max(1);
        RangedReads {
            connections,
            range_size: (IN_FLIGHT_BUDGET / connections as u64).clamp(MIN_RANGE, MAX_RANGE),
            attempts: 5,
            backoff: Duration::from_millis(200),
        }
    }
}

impl Default for RangedReads {
    fn default() -> Self {
        RangedReads::with_connections(DEFAULT_CONNECTIONS)
    }
}

/// One store's way of reading `[start, end)` of one version of one object.
#[async_trait::async_trait]
pub(crate) trait RangeSource: Send + Sync + 'static {
    async fn fetch(&self, start: u64, end: u64) -> crate::Result<ByteStream>;
    /// The object's URL, for errors.
    fn url(&self) -> String;
}

/// The object (`size` bytes) as one ordered stream read in ranges.
pub(crate) fn read(source: Arc<dyn RangeSource>, size: u64, cfg: &RangedReads) -> ByteStream {
    let step = cfg.range_size.max(1);
    let ranges = (0..size.div_ceil(step)).map(move |i| (i * step, ((i + 1) * step).min(size)));
    let cfg = cfg.clone();
    let connections = cfg.connections.max(1);
    let pieces = futures::stream::iter(ranges)
        .map(move |(start, end)| {
            let (source, cfg) = (source.clone(), cfg.clone());
            async move { fetch_range(&*source, start, end, &cfg).await }
        })
        .buffered(connections);
    // Each range arrives as one buffer; the first error ends the stream.
    let stream = pieces.scan(false, |failed, r| {
        let out = if *failed {
            None
        } else {
            *failed = r.is_err();
            Some(r)
        };
        futures::future::ready(out)
    });
    Box::pin(stream)
}

/// Reads `[start, end)` into one buffer, retrying from the first missing byte.
///
/// The connection delivers the range in pieces of a few KiB. Gathering them here, as they
/// arrive, is the one copy of the bytes on their way in: the consumer then sees a few large
/// buffers (8 MiB by default) instead of tens of thousands of small ones, each of which would
/// cost it a hand-off between threads, and an LZ4 block lies whole inside one buffer instead of
/// being gathered again from many.
async fn fetch_range(
    source: &dyn RangeSource,
    start: u64,
    end: u64,
    cfg: &RangedReads,
) -> io::Result<Bytes> {
    let mut chunks = BytesMut::with_capacity((end - start) as usize);
    let mut got = 0u64;
    let mut attempt = 1u32;
    loop {
        let from = start + got;
        let outcome: Result<(), Failure> = async {
            let mut body = source.fetch(from, end).await.map_err(Failure::Store)?;
            while let Some(c) = body.next().await {
                let c = c.map_err(Failure::Body)?;
                if got + c.len() as u64 > end - start {
                    return Err(Failure::Body(io::Error::other(
                        "the server sent more bytes than the range holds",
                    )));
                }
                got += c.len() as u64;
                chunks.extend_from_slice(&c);
            }
            if got < end - start {
                return Err(Failure::Body(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the answer ended {} bytes short", end - start - got),
                )));
            }
            Ok(())
        }
        .await;
        let err = match outcome {
            Ok(()) => return Ok(chunks.freeze()),
            Err(e) => e,
        };
        let what = format!("bytes={start}-{}", end - 1);
        if !err.retryable() || attempt >= cfg.attempts.max(1) {
            return Err(io::Error::other(format!(
                "{}: range {what} failed after {attempt} attempt(s): {err}",
                source.url()
            )));
        }
        let wait = cfg.backoff.saturating_mul(1 << (attempt - 1).min(6));
        tracing::warn!(object = %source.url(), range = %what, attempt, error = %err,
            resume_at = start + got, "range read failed; retrying this range");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

enum Failure {
    /// The request itself failed (after the client's own retries).
    Store(StoreError),
    /// The answer broke off or was malformed.
    Body(io::Error),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Body(_) => true,
            Failure::Store(StoreError::Io { .. }) => true,
            // Gone, replaced (the version precondition failed), forbidden: retrying cannot help.
            Failure::Store(_) => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Store(e) => write!(f, "{e}"),
            Failure::Body(e) => write!(f, "reading the answer: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_connections_read_smaller_ranges_within_one_budget() {
        let mib = 1u64 << 20;
        let size = |n: usize| RangedReads::with_connections(n).range_size;
        assert_eq!(RangedReads::default().connections, 8);
        assert_eq!(size(8), 4 * mib);
        assert_eq!(size(4), 8 * mib);
        assert_eq!(
            size(1),
            8 * mib,
            "one connection still reads 8 MiB at a time"
        );
        assert_eq!(size(32), mib);
        assert_eq!(size(64), mib, "never below 1 MiB");
        assert_eq!(RangedReads::with_connections(0).connections, 1);
        for n in 4..=32 {
            assert!(n as u64 * size(n) <= 32 * mib, "{n} connections");
        }
    }
}

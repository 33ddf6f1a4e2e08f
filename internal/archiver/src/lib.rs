//! Snapshot archives of a node-state directory: directory -> tar -> one LZ4 frame (4 MiB
//! independent blocks, content checksum) -> SHA-256 of the compressed bytes -> a byte stream the
//! caller sends wherever it likes (a store, a file, a pipe).
//!
//! The crate knows nothing of stores, clouds or Terraform: it produces and consumes
//! [`ByteStream`]s. Compression runs on every core, hashing on its own thread, and memory stays
//! flat whatever the input size.

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio_util::sync::CancellationToken;

mod create;
pub mod digests;
mod error;
mod filewrite;
mod frame;
mod inflate;
pub mod lz4block;
mod pool;
mod read;
mod stage;
mod walk;

pub use create::ArchiveHandle;
pub use error::ArchiveError;
pub use stage::{stage as stage_restore, RestoreOptions, StagedRestore};

/// A stream of bytes; the same type as `objstore::ByteStream`, so archives flow straight into
/// a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The file a catalog restore leaves at the root of the tree it restored, naming the artifact,
/// so that a restarting init container sees the work is done. It describes the restore, not the
/// node's state, hence excluded by default: a snapshot of a restored node must not carry it.
pub const RESTORE_MARKER: &str = ".testnet-restored.json";

/// Files a node regenerates or must not share between nodes (a node identity copied into a
/// snapshot would make every restored node claim the same identity), and the restore marker.
pub const DEFAULT_EXCLUDES: &[&str] = &["identity.json", "peers.json", RESTORE_MARKER];

/// The uncompressed size of each LZ4 block (the frame's 4 MiB maximum).
pub const BLOCK_SIZE: usize = frame::BLOCK_SIZE;

/// The LZ4 acceleration archives are compressed with (see [`lz4block`]).
pub const LZ4_ACCELERATION: u32 = create::ACCELERATION;

/// What to archive and how to report on it.
///
/// Patterns are globs (`*`, `?`, `[..]`, `**`). A pattern without `/` matches an entry's name
/// at any depth (`*.log`); a pattern with `/` matches the path relative to the archived
/// directory (`store/*.tmp`, `/lock`). An excluded directory is skipped whole; an included
/// directory brings everything under it.
#[derive(Clone)]
pub struct ArchiveOptions {
    pub excludes: Vec<String>,
    /// When non-empty, only matching entries (and their parent directories) are archived.
    pub includes: Vec<String>,
    /// Apply [`DEFAULT_EXCLUDES`] in addition to `excludes`.
    pub use_default_excludes: bool,
    pub cancel: Option<CancellationToken>,
    /// Called from the archiver's threads at most every 100 ms and once at the end.
    pub progress: Option<Arc<dyn Fn(&Progress) + Send + Sync>>,
    /// Called with each regular file's path after it is opened and before it is read. For
    /// instrumentation and tests (e.g. to modify a file mid-archive deterministically).
    pub on_file_open: Option<Arc<dyn Fn(&Path) + Send + Sync>>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            excludes: Vec::new(),
            includes: Vec::new(),
            use_default_excludes: true,
            cancel: None,
            progress: None,
            on_file_open: None,
        }
    }
}

impl fmt::Debug for ArchiveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveOptions")
            .field("excludes", &self.excludes)
            .field("includes", &self.includes)
            .field("use_default_excludes", &self.use_default_excludes)
            .field("cancel", &self.cancel.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A progress report while archiving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Tar bytes compressed so far (file contents plus headers).
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
    /// Regular files read so far.
    pub files: u64,
    /// Sum of regular file sizes found by the walk (0 until the walk is done).
    pub total_bytes_estimate: u64,
    pub elapsed: Duration,
}

/// What was archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// SHA-256 of the compressed stream, exactly as emitted.
    pub sha256: [u8; 32],
    pub compressed_bytes: u64,
    /// Sum of regular file sizes.
    pub uncompressed_bytes: u64,
    pub file_count: u64,
    /// Entries skipped (sockets, FIFOs, devices).
    pub warnings: Vec<String>,
}

/// What a verify or restore read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// SHA-256 of the compressed bytes read: compare with the published checksum.
    pub sha256: [u8; 32],
    pub compressed_bytes: u64,
    /// Sum of regular file sizes in the archive.
    pub uncompressed_bytes: u64,
    pub file_count: u64,
}

/// How an archive is read back (verify, restore).
#[derive(Clone, Default)]
pub struct ReadOptions {
    /// Stops the read; the restore's staging directory is removed.
    pub cancel: Option<CancellationToken>,
    /// Size of the compressed object when the caller knows it, for progress reports.
    pub total_bytes: Option<u64>,
    /// Called at most every 100 ms and once at the end.
    pub progress: Option<Arc<dyn Fn(&ReadProgress) + Send + Sync>>,
}

impl fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOptions")
            .field("cancel", &self.cancel.is_some())
            .field("total_bytes", &self.total_bytes)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A progress report while reading an archive back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProgress {
    pub compressed_bytes: u64,
    /// The object's size when known.
    pub total_bytes: Option<u64>,
    pub elapsed: Duration,
}

/// Starts archiving `dir` on background threads; returns the compressed stream and a handle
/// resolving to the summary once the stream is fully produced (or to the error).
///
/// Errors about `dir` itself and bad patterns come back at once; errors found while walking or
/// reading (unreadable file, file changed, nothing left after excludes) end the stream with an
/// `io::Error` and come back typed from [`ArchiveHandle::finish`]. A stream that ends without an
/// error is a complete archive.
pub fn archive(
    dir: &Path,
    opts: ArchiveOptions,
) -> Result<(ByteStream, ArchiveHandle), ArchiveError> {
    create::start(dir, opts)
}

/// Reads a whole archive: hashes the compressed bytes, decompresses the LZ4 frame (checking its
/// content checksum) and walks the tar, without writing anything.
pub async fn verify(stream: ByteStream) -> Result<VerifySummary, ArchiveError> {
    read::run(stream, None, ReadOptions::default()).await
}

/// [`verify`] with cancellation and progress.
pub async fn verify_with(
    stream: ByteStream,
    opts: ReadOptions,
) -> Result<VerifySummary, ArchiveError> {
    read::run(stream, None, opts).await
}

/// Extracts an archive as `into` (a missing or empty directory), all or nothing: the archive is
/// read into a staging directory beside it, refusing absolute paths, `..`, symlinks pointing
/// outside the tree and writes through symlinked parents, and moved into place only when the
/// whole LZ4 frame checked out. On any error the target is left as it was. Restores contents,
/// modes, file mtimes and symlinks.
///
/// A caller with more to check (the published SHA-256) uses [`stage_restore`] and commits
/// after its checks.
pub async fn restore(stream: ByteStream, into: &Path) -> Result<VerifySummary, ArchiveError> {
    stage::stage(stream, into, RestoreOptions::default())
        .await?
        .commit()
}

/// Lower-case hex of a SHA-256, as published in metadata files.
pub fn hex(sha256: &[u8; 32]) -> String {
    sha256.iter().map(|b| format!("{b:02x}")).collect()
}

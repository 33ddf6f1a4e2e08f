//! The one error type of the archiver: every variant names the path or the stage that failed,
//! so the caller (provider, CLI) can tell the user what to fix.

use std::io;
use std::path::PathBuf;

/// Why archiving, verifying or restoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("directory {dir} does not exist")]
    DirNotFound { dir: PathBuf },
    #[error("{dir} is not a directory")]
    NotADirectory { dir: PathBuf },
    #[error("invalid pattern {pattern:?}: {detail}")]
    BadPattern { pattern: String, detail: String },
    #[error("nothing to archive in {dir}: every entry was excluded or the directory is empty")]
    NothingToArchive { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} changed while it was being archived ({detail}); stop the writer and retry")]
    FileChanged { path: PathBuf, detail: String },
    #[error("archiving was cancelled")]
    Cancelled,
    #[error("reading the archive was cancelled")]
    ReadCancelled,
    #[error(
        "restore target {dir} is not empty: restoring over existing files would mix two states; \
         choose an empty or missing directory, or replace its contents (--replace)"
    )]
    TargetNotEmpty { dir: PathBuf },
    #[error("the archive stream was dropped before it was fully read")]
    StreamDropped,
    #[error("reading the archive stream failed: {source}")]
    Source {
        #[source]
        source: io::Error,
    },
    #[error("archive checksum mismatch: {detail}")]
    ChecksumMismatch { detail: String },
    #[error("corrupt LZ4 frame: {detail}")]
    CorruptFrame { detail: String },
    #[error("the archive ends before the end of its LZ4 frame (truncated)")]
    Truncated,
    #[error("corrupt tar stream: {detail}")]
    CorruptTar { detail: String },
    #[error("refusing archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("internal archiver failure: {detail}")]
    Internal { detail: String },
}

impl ArchiveError {
    /// The `io::ErrorKind` used when this error is carried through a byte stream.
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        match self {
            ArchiveError::Cancelled | ArchiveError::ReadCancelled => io::ErrorKind::Interrupted,
            ArchiveError::DirNotFound { .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        }
    }

    /// A copy for the byte stream; the typed original goes to the [`crate::ArchiveHandle`].
    pub(crate) fn to_io(&self) -> io::Error {
        io::Error::new(self.io_kind(), self.to_string())
    }
}

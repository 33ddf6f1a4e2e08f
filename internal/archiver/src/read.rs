//! Reading archives back: [`crate::verify`] and [`crate::restore`] share one pipeline.
//!
//! ```text
//! ByteStream --(async pump)--> sha thread: SHA-256 of the compressed bytes
//!                          \--> inflate: LZ4 blocks on every core (content checksum)
//!                                  --one block at a time, in order--> tar thread: entries
//! ```
//!
//! Hashing, decompression and the tar walk run on separate threads, so a read-back uses every
//! core; the hash and the inflater see the same `Bytes` (shared, not copied), and decompressed
//! blocks circulate through a fixed pool, so memory stays flat.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::{ArchiveError, ByteStream, ReadOptions, ReadProgress, VerifySummary};

/// Totals the decode thread reports.
#[derive(Default)]
struct Decoded {
    files: u64,
    file_bytes: u64,
}

/// Compressed pieces queued for the hash and the inflater (shared, not copied). Stores hand on
/// large pieces (a whole 8 MiB range from S3 and GCS), so one queued each keeps both busy; every
/// further one is up to 8 MiB of resident memory.
const CHUNKS_IN_FLIGHT: usize = 1;

/// Time between two progress reports.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

pub(crate) async fn run(
    mut stream: ByteStream,
    into: Option<PathBuf>,
    opts: ReadOptions,
) -> Result<VerifySummary, ArchiveError> {
    let (dec_tx, dec_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let (sha_tx, mut sha_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut sha = Sha256::new();
        let mut n = 0u64;
        while let Some(b) = sha_rx.blocking_recv() {
            n += b.len() as u64;
            sha.update(&b);
        }
        (<[u8; 32]>::from(sha.finalize()), n)
    });
    let walker = tokio::task::spawn_blocking(move || walk_tar(dec_rx, into.as_deref()));

    let mut source_err = None;
    let cancel = opts.cancel.clone().unwrap_or_default();
    let started = Instant::now();
    let mut last_report = started;
    let mut read = 0u64;
    let report = |read: u64| {
        if let Some(p) = &opts.progress {
            p(&ReadProgress {
                compressed_bytes: read,
                total_bytes: opts.total_bytes,
                elapsed: started.elapsed(),
            });
        }
    };
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                source_err = Some(ArchiveError::ReadCancelled);
                break;
            }
            item = stream.next() => match item {
                Some(item) => item,
                None => break,
            },
        };
        match item {
            Ok(b) => {
                if b.is_empty() {
                    continue;
                }
                read += b.len() as u64;
                if last_report.elapsed() >= PROGRESS_EVERY {
                    last_report = Instant::now();
                    report(read);
                }
                // A closed inflater channel means a later stage already failed; its error wins.
                if dec_tx.send(b.clone()).await.is_err() {
                    break;
                }
                if sha_tx.send(b).await.is_err() {
                    break;
                }
            }
            Err(source) => {
                source_err = Some(ArchiveError::Source { source });
                break;
            }
        }
    }
    drop(dec_tx);
    drop(sha_tx);
    drop(stream);
    let join = |e: tokio::task::JoinError| ArchiveError::Internal {
        detail: format!("reader thread failed: {e}"),
    };
    let walked = walker.await.map_err(join)?;
    let (sha256, compressed_bytes) = hasher.await.map_err(join)?;
    // The first cause wins: a broken source explains a bad frame, and a bad frame explains a
    // tar stream that ends early.
    if let Some(e) = source_err {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(ArchiveError::ReadCancelled);
    }
    let d = walked?;
    report(read);
    Ok(VerifySummary {
        sha256,
        compressed_bytes,
        uncompressed_bytes: d.file_bytes,
        file_count: d.files,
    })
}

pub(crate) fn classify_lz4(e: &io::Error) -> ArchiveError {
    use lz4_flex::frame::Error as F;
    if let Some(f) = e.get_ref().and_then(|r| r.downcast_ref::<F>()) {
        return match f {
            F::ContentChecksumError => ArchiveError::ChecksumMismatch {
                detail:
                    "the LZ4 content checksum (xxHash32 of the uncompressed bytes) does not match"
                        .into(),
            },
            F::BlockChecksumError => ArchiveError::ChecksumMismatch {
                detail: "an LZ4 block checksum does not match".into(),
            },
            F::HeaderChecksumError => ArchiveError::ChecksumMismatch {
                detail: "the LZ4 frame header checksum does not match".into(),
            },
            F::IoError(inner) if inner.kind() == io::ErrorKind::UnexpectedEof => {
                ArchiveError::Truncated
            }
            other => ArchiveError::CorruptFrame {
                detail: other.to_string(),
            },
        };
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ArchiveError::Truncated;
    }
    ArchiveError::CorruptFrame {
        detail: e.to_string(),
    }
}

/// Decodes the compressed chunks and walks the tar stream inside: counts (verify) or extracts
/// (restore) its entries. A problem in the LZ4 layer is reported as such, not as the damaged tar
/// it causes.
fn walk_tar(rx: mpsc::Receiver<Bytes>, into: Option<&Path>) -> Result<Decoded, ArchiveError> {
    let mut decoder = crate::inflate::Decoder::start(rx)?;
    let walked = walk_entries(&mut decoder, into);
    match decoder.error() {
        Some(e) => Err(e),
        None => walked,
    }
}

fn walk_entries(
    decoder: &mut crate::inflate::Decoder,
    into: Option<&Path>,
) -> Result<Decoded, ArchiveError> {
    let fail = |e: io::Error| -> ArchiveError {
        ArchiveError::CorruptTar {
            detail: e.to_string(),
        }
    };
    let mut out = Decoded::default();
    let mut ar = tar::Archive::new(decoder);
    let mut restorer = match into {
        Some(dir) => Some(Restorer::new(dir)?),
        None => None,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut saw_entry = false;
    // Verifying needs the headers only: skip file contents instead of copying them out.
    let entries = if restorer.is_some() {
        ar.entries()
    } else {
        ar.entries_with_seek()
    };
    for entry in entries.map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        saw_entry = true;
        let kind = entry.header().entry_type();
        if let Some(r) = restorer.as_mut() {
            let n = r.entry(&mut entry).map_err(|e| match e {
                EntryError::Read(io) => fail(io),
                EntryError::Archive(a) => a,
            })?;
            if kind.is_file() {
                out.files += 1;
                out.file_bytes += n;
            }
        } else if kind.is_file() {
            out.files += 1;
            out.file_bytes += entry.size();
        }
    }
    // The tar end marker comes before the frame's end mark and content checksum: read to the
    // end so the inflate thread reaches them and checks the checksum.
    let rest = ar.into_inner();
    let mut tail = 0u64;
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => tail += n as u64,
            Err(e) => return Err(fail(e)),
        }
    }
    if !saw_entry && tail == 0 {
        return Err(ArchiveError::CorruptTar {
            detail: "the archive holds no entries".into(),
        });
    }
    if let Some(r) = restorer {
        r.finish()?;
    }
    Ok(out)
}

enum EntryError {
    Read(io::Error),
    Archive(ArchiveError),
}

impl From<ArchiveError> for EntryError {
    fn from(e: ArchiveError) -> Self {
        EntryError::Archive(e)
    }
}

/// Extracts entries under one directory, never writing outside it: no absolute paths, no `..`,
/// no symlink whose target leaves the tree, no writing through a symlinked parent.
struct Restorer {
    root: PathBuf,
    /// Writes file contents (large files with `O_DIRECT`) beside the tar walk.
    writer: crate::filewrite::FileWriter,
    /// The filesystem refused `O_DIRECT` once: not asked again.
    no_direct: bool,
    /// Relative directories known to be real directories (not symlinks) under `root`.
    dirs: HashSet<PathBuf>,
    /// Directory modes applied at the end, deepest first, so read-only dirs can be filled.
    dir_modes: Vec<(PathBuf, u32)>,
}

fn unsafe_entry(path: &Path, reason: &str) -> ArchiveError {
    ArchiveError::UnsafeEntry {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The entry's path as plain `Normal` components, or why it is refused.
fn sanitize(raw: &Path) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(raw, "path contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(raw, "absolute path"))
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `rel` pointing to `target` stays inside the tree, judged lexically.
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

impl Restorer {
    fn new(root: &Path) -> Result<Self, ArchiveError> {
        match fs::symlink_metadata(root) {
            Ok(md) if md.is_dir() => {}
            Ok(md) if md.file_type().is_symlink() && root.is_dir() => {}
            Ok(_) => {
                return Err(ArchiveError::NotADirectory {
                    dir: root.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(|source| ArchiveError::Write {
                    path: root.to_path_buf(),
                    source,
                })?
            }
            Err(source) => {
                return Err(ArchiveError::Write {
                    path: root.to_path_buf(),
                    source,
                })
            }
        }
        let mut dirs = HashSet::new();
        dirs.insert(PathBuf::new());
        let writer = crate::filewrite::FileWriter::start().map_err(|e| ArchiveError::Internal {
            detail: format!("cannot start the file writer thread: {e}"),
        })?;
        Ok(Restorer {
            root: root.to_path_buf(),
            writer,
            no_direct: false,
            dirs,
            dir_modes: Vec::new(),
        })
    }

    fn write_err(&self, rel: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Write {
            path: self.root.join(rel),
            source,
        }
    }

    /// Makes sure every ancestor of `rel` is a real directory inside the root.
    fn parents(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        let mut cur = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            self.real_dir(&cur, rel)?;
        }
        Ok(())
    }

    fn real_dir(&mut self, dir: &Path, for_entry: &Path) -> Result<(), ArchiveError> {
        let abs = self.root.join(dir);
        match fs::symlink_metadata(&abs) {
            Ok(md) if md.is_dir() => {}
            Ok(md) if md.file_type().is_symlink() => {
                return Err(unsafe_entry(for_entry, "a parent directory is a symlink"));
            }
            Ok(_) => return Err(unsafe_entry(for_entry, "a parent path is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&abs).map_err(|source| self.write_err(dir, source))?
            }
            Err(source) => return Err(self.write_err(dir, source)),
        }
        self.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    /// Removes a non-directory already at `rel` (never following it), so the new entry replaces it.
    fn clear(&self, rel: &Path) -> Result<(), ArchiveError> {
        let abs = self.root.join(rel);
        match fs::symlink_metadata(&abs) {
            Ok(md) if md.is_dir() => {
                Err(unsafe_entry(rel, "a directory already exists at this path"))
            }
            Ok(_) => fs::remove_file(&abs).map_err(|source| self.write_err(rel, source)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(self.write_err(rel, source)),
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<u64, EntryError> {
        let raw = e.path().map_err(EntryError::Read)?.into_owned();
        let rel = sanitize(&raw)?;
        let kind = e.header().entry_type();
        let mode = e.header().mode().map_err(EntryError::Read)? & 0o7777;
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                return Ok(0);
            }
            return Err(unsafe_entry(&raw, "entry has an empty path").into());
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                self.parents(&rel)?;
                if !self.dirs.contains(&rel) {
                    self.real_dir(&rel, &rel)?;
                }
                self.dir_modes.push((rel, mode));
                Ok(0)
            }
            T::Regular | T::Continuous => {
                self.parents(&rel)?;
                let f = self.create_file(&rel, e.size())?;
                let mut n = 0u64;
                loop {
                    let Some(mut buf) = self.writer.buffer() else {
                        return Err(self.writer_failed().into());
                    };
                    // Whole buffers, so every direct write but a file's last is aligned.
                    let mut fill = 0;
                    let space = buf.as_mut_slice();
                    while fill < space.len() {
                        match e.read(&mut space[fill..]) {
                            Ok(0) => break,
                            Ok(k) => fill += k,
                            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                            Err(err) => return Err(EntryError::Read(err)),
                        }
                    }
                    n += fill as u64;
                    let full = fill == crate::filewrite::BUF_LEN;
                    if fill == 0 {
                        self.writer.give_back(buf);
                    } else if !self.writer.write(&f, buf, fill) {
                        return Err(self.writer_failed().into());
                    }
                    if !full {
                        break;
                    }
                }
                let mtime = e
                    .header()
                    .mtime()
                    .ok()
                    .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t));
                if !self.writer.close(f, mode, mtime) {
                    return Err(self.writer_failed().into());
                }
                Ok(n)
            }
            T::Symlink => {
                let target = e
                    .link_name()
                    .map_err(EntryError::Read)?
                    .ok_or_else(|| unsafe_entry(&raw, "symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    return Err(unsafe_entry(
                        &raw,
                        &format!(
                            "symlink target {:?} points outside the restore directory",
                            target
                        ),
                    )
                    .into());
                }
                self.parents(&rel)?;
                self.clear(&rel)?;
                std::os::unix::fs::symlink(&target, self.root.join(&rel))
                    .map_err(|source| self.write_err(&rel, source))?;
                Ok(0)
            }
            T::Link => Err(unsafe_entry(&raw, "hard links are not restored").into()),
            T::XHeader | T::XGlobalHeader | T::GNULongName | T::GNULongLink => Ok(0),
            other => Err(unsafe_entry(&raw, &format!("unsupported entry type {:?}", other)).into()),
        }
    }

    /// Creates a regular file for an entry of `size` bytes, with `O_DIRECT` when it is large.
    fn create_file(
        &mut self,
        rel: &Path,
        size: u64,
    ) -> Result<std::sync::Arc<crate::filewrite::OpenFile>, ArchiveError> {
        let abs = self.root.join(rel);
        let direct = !self.no_direct && size >= crate::filewrite::DIRECT_MIN;
        let create = |direct: bool| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(if direct { libc::O_DIRECT } else { 0 })
                .open(&abs)
        };
        // The staging directory starts empty, so the path is free unless the archive names it
        // twice: look at what is there only then (one stat saved per file).
        let mut opened = match create(direct) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(rel)?;
                create(direct)
            }
            other => other,
        };
        let mut direct = direct;
        if direct && matches!(&opened, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            // A filesystem without direct I/O (tmpfs).
            self.no_direct = true;
            direct = false;
            opened = create(false);
        }
        let f = opened.map_err(|source| self.write_err(rel, source))?;
        Ok(crate::filewrite::OpenFile::new(
            f,
            rel.to_path_buf(),
            direct,
        ))
    }

    /// The writer's error, once it stopped.
    fn writer_failed(&mut self) -> ArchiveError {
        let writer = std::mem::replace(&mut self.writer, crate::filewrite::FileWriter::idle());
        match writer.finish() {
            Err((rel, source)) => self.write_err(&rel, source),
            Ok(()) => ArchiveError::Internal {
                detail: "the file writer stopped without an error".into(),
            },
        }
    }

    fn finish(mut self) -> Result<(), ArchiveError> {
        let writer = std::mem::replace(&mut self.writer, crate::filewrite::FileWriter::idle());
        writer
            .finish()
            .map_err(|(rel, source)| self.write_err(&rel, source))?;
        self.dir_modes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, mode) in &self.dir_modes {
            fs::set_permissions(self.root.join(rel), fs::Permissions::from_mode(*mode))
                .map_err(|source| self.write_err(rel, source))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_refuses_escapes() {
        assert!(sanitize(Path::new("/etc/passwd")).is_err());
        assert!(sanitize(Path::new("a/../../b")).is_err());
        assert_eq!(sanitize(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
    }

    #[test]
    fn symlink_confinement() {
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../b")));
        assert!(link_stays_inside(Path::new("l"), Path::new("b/c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../b")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../b")));
        assert!(!link_stays_inside(
            Path::new("a/l"),
            Path::new("b/../../../c")
        ));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/etc")));
    }
}

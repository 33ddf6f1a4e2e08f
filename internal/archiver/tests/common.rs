#![allow(dead_code)]
//! Helpers shared by the archiver tests: building trees, collecting streams, comparing trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use archiver::{ArchiveOptions, ArchiveSummary, ByteStream};
use bytes::Bytes;
use futures::StreamExt;

/// Deterministic pseudo-random bytes (xorshift), incompressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Archives `dir` and returns the whole compressed archive and the summary.
pub async fn archive_bytes(
    dir: &Path,
    opts: ArchiveOptions,
) -> Result<(Vec<u8>, ArchiveSummary), archiver::ArchiveError> {
    let (mut stream, handle) = archiver::archive(dir, opts)?;
    let mut out = Vec::new();
    let mut stream_err = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => {
                stream_err = Some(e);
                break;
            }
        }
    }
    let summary = handle.finish().await?;
    assert!(
        stream_err.is_none(),
        "stream failed but summary succeeded: {stream_err:?}"
    );
    Ok((out, summary))
}

/// Reads `stream` to its end and returns how many bytes came before it ended, and whether it
/// ended in an error (an archive that failed must never look complete).
pub async fn drain_stream(stream: &mut ByteStream) -> (usize, bool) {
    let mut bytes = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => bytes += b.len(),
            Err(_) => return (bytes, true),
        }
    }
    (bytes, false)
}

/// Verifies `bytes`, an archive damaged on purpose, served in chunks of `chunk`, and asserts the
/// damage is caught as a checksum mismatch, a corrupt frame or a corrupt tar.
pub async fn assert_damage_caught(bytes: Vec<u8>, chunk: usize, what: &str) {
    let err = archiver::verify(stream_of(bytes, chunk)).await.unwrap_err();
    assert!(
        matches!(
            err,
            archiver::ArchiveError::ChecksumMismatch { .. }
                | archiver::ArchiveError::CorruptFrame { .. }
                | archiver::ArchiveError::CorruptTar { .. }
        ),
        "{what}: {err:?}"
    );
}

/// A stream serving `data` in chunks of `chunk` bytes.
pub fn stream_of(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, data: Vec<u8> },
    Dir { mode: u32 },
    Link { target: PathBuf },
}

/// Everything under `root` that a restore must reproduce: paths, types, modes, contents, links.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            if ft.is_symlink() {
                out.insert(
                    rel,
                    Node::Link {
                        target: fs::read_link(&p).unwrap(),
                    },
                );
            } else if ft.is_dir() {
                out.insert(
                    rel,
                    Node::Dir {
                        mode: md.mode() & 0o7777,
                    },
                );
                go(root, &p, out);
            } else if ft.is_file() {
                out.insert(
                    rel,
                    Node::File {
                        mode: md.mode() & 0o7777,
                        data: fs::read(&p).unwrap(),
                    },
                );
            }
        }
    }
    go(root, root, &mut out);
    out
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

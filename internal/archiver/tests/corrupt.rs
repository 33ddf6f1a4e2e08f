//! Damaged and hostile archives: verify must catch damage, restore must never write outside.

mod common;

use std::fs;
use std::io::Write;

use archiver::{ArchiveError, ArchiveOptions};
use common::*;

#[tokio::test]
async fn a_flipped_byte_fails_verification_with_a_checksum_error() {
    let src = tempfile::tempdir().unwrap();
    // Incompressible: the block is stored raw, so a flipped byte decodes fine and only the
    // content checksum can catch it.
    write(src.path(), "random.sst", &noise(2 * 1024 * 1024, 11), 0o644);
    let (mut bytes, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let err = archiver::verify(stream_of(bytes.clone(), 65536))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    let dst = tempfile::tempdir().unwrap();
    let err = archiver::restore(stream_of(bytes, 65536), dst.path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::ChecksumMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn damage_in_compressed_data_is_detected() {
    let src = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..100_000 {
        text.extend_from_slice(format!("line {i} of a log file\n").as_bytes());
    }
    write(src.path(), "node.log", &text, 0o644);
    let (good, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    for pos in [good.len() / 3, good.len() / 2, good.len() - 20] {
        let mut bytes = good.clone();
        bytes[pos] = bytes[pos].wrapping_add(1);
        assert_damage_caught(bytes, 10_000, &format!("byte {pos}")).await;
    }
}

#[tokio::test]
async fn truncation_and_source_errors_are_reported() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a", &noise(100_000, 5), 0o644);
    let (bytes, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    let cut = bytes[..bytes.len() - 4].to_vec();
    let err = archiver::verify(stream_of(cut, 4096)).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Truncated), "{err:?}");

    let chunks: Vec<std::io::Result<bytes::Bytes>> = vec![
        Ok(bytes::Bytes::copy_from_slice(&bytes[..1000])),
        Err(std::io::Error::other("connection reset by peer")),
    ];
    let err = archiver::verify(Box::pin(futures::stream::iter(chunks)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Source { source } if source.to_string().contains("connection reset")),
        "{err:?}"
    );
}

/// A raw tar header with whatever name the attacker likes (the tar crate's setters would refuse).
fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let n = name.as_bytes();
    h.as_old_mut().name[..n.len()].copy_from_slice(n);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    h
}

fn lz4_tar(entries: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut tarball = Vec::new();
    for (h, data) in entries {
        tarball.extend_from_slice(h.as_bytes());
        tarball.extend_from_slice(data);
        tarball.resize(tarball.len().div_ceil(512) * 512, 0);
    }
    tarball.resize(tarball.len() + 1024, 0);
    let mut info = lz4_flex::frame::FrameInfo::new();
    info.content_checksum = true;
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(&tarball).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn hostile_entries_are_refused_on_restore() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    let victim_s = victim.display().to_string();
    let cases: Vec<(&str, Vec<(tar::Header, &[u8])>)> = vec![
        (
            "absolute path",
            vec![(
                raw_header(&victim_s, tar::EntryType::Regular, 4, None),
                b"evil",
            )],
        ),
        (
            "dot-dot path",
            vec![(
                raw_header("a/../../victim", tar::EntryType::Regular, 4, None),
                b"evil",
            )],
        ),
        (
            "absolute symlink",
            vec![(
                raw_header("l", tar::EntryType::Symlink, 0, Some(&victim_s)),
                b"",
            )],
        ),
        (
            "escaping symlink",
            vec![(
                raw_header("a/l", tar::EntryType::Symlink, 0, Some("../../victim")),
                b"",
            )],
        ),
        (
            "write through an escaping symlinked dir",
            vec![
                (
                    raw_header(
                        "d",
                        tar::EntryType::Symlink,
                        0,
                        Some(outside.path().to_str().unwrap()),
                    ),
                    b"",
                ),
                (
                    raw_header("d/victim", tar::EntryType::Regular, 4, None),
                    b"evil",
                ),
            ],
        ),
        (
            "write through an inner symlinked dir",
            vec![
                (raw_header("real/", tar::EntryType::Directory, 0, None), b""),
                (
                    raw_header("d", tar::EntryType::Symlink, 0, Some("real")),
                    b"",
                ),
                (
                    raw_header("d/victim", tar::EntryType::Regular, 4, None),
                    b"evil",
                ),
            ],
        ),
        (
            "hard link",
            vec![(
                raw_header("h", tar::EntryType::Link, 0, Some(&victim_s)),
                b"",
            )],
        ),
        (
            "device",
            vec![(raw_header("dev", tar::EntryType::Char, 0, None), b"")],
        ),
    ];
    for (what, entries) in cases {
        fs::write(&victim, b"original").unwrap();
        let bytes = lz4_tar(&entries);
        let dst = tempfile::tempdir().unwrap();
        let into = dst.path().join("r");
        let err = archiver::restore(stream_of(bytes, 777), &into)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsafeEntry { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"original",
            "{what}: wrote outside"
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            1,
            "{what}: created outside"
        );
    }
}

#[tokio::test]
async fn concatenated_garbage_is_not_an_archive() {
    let err = archiver::verify(stream_of(b"this is not lz4 at all".to_vec(), 5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::CorruptFrame { .. } | ArchiveError::Truncated
        ),
        "{err:?}"
    );
}

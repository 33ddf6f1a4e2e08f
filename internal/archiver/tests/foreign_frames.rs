//! Archives compressed by other tools: `tar | lz4` as the snapshot tooling writes them today, with
//! each frame option Debian's `lz4` offers. Independent blocks take the parallel decoder, linked
//! blocks lz4_flex's sequential one; both must verify and restore the same tree, and damage must
//! be caught whichever path reads it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use archiver::ArchiveError;
use common::*;

/// A tree of compressible and incompressible files, and its plain tar (GNU tar).
fn tree_and_tar() -> Option<(tempfile::TempDir, Vec<u8>)> {
    let src = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    for i in 0..120_000 {
        log.extend_from_slice(format!("block {i} applied, peers {}\n", i % 17).as_bytes());
    }
    write(src.path(), "logs/node.log", &log, 0o644);
    write(src.path(), "store/000001.sst", &noise(3 << 20, 5), 0o644);
    write(
        src.path(),
        "config/daemon.json",
        b"{\"port\": 8302}\n",
        0o600,
    );
    let out = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(src.path())
        .arg(".")
        .output()
        .ok()?;
    assert!(out.status.success());
    Some((src, out.stdout))
}

/// `lz4 ARGS` over `input`, or None (with a notice) when Debian's lz4 is not installed.
fn lz4(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut child = match Command::new("lz4")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            eprintln!("NOTICE: `lz4` is not installed; skipping (scripts/test installs it)");
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&data).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "lz4 {args:?} failed");
    Some(out.stdout)
}

async fn verify_and_restore(bytes: Vec<u8>, src: &Path) {
    let v = archiver::verify(stream_of(bytes.clone(), 100_000))
        .await
        .unwrap();
    assert_eq!(v.file_count, 3);
    let sizes: u64 = ["logs/node.log", "store/000001.sst", "config/daemon.json"]
        .iter()
        .map(|rel| fs_size(src, rel))
        .sum();
    assert_eq!(v.uncompressed_bytes, sizes);
    let dst = tempfile::tempdir().unwrap();
    archiver::restore(stream_of(bytes, 77_777), dst.path())
        .await
        .unwrap();
    for rel in ["logs/node.log", "store/000001.sst", "config/daemon.json"] {
        assert_eq!(
            std::fs::read(src.join(rel)).unwrap(),
            std::fs::read(dst.path().join(rel)).unwrap(),
            "{rel}"
        );
    }
}

fn fs_size(root: &Path, rel: &str) -> u64 {
    std::fs::metadata(root.join(rel)).unwrap().len()
}

#[tokio::test]
async fn frames_with_every_lz4_option_verify_and_restore() {
    let Some((src, tar)) = tree_and_tar() else {
        return;
    };
    let variants: &[&[&str]] = &[
        &["-1", "-c"],                   // the tooling's default: 4 MiB independent blocks
        &["-1", "-c", "-B4"],            // 64 KiB blocks
        &["-1", "-c", "-B5", "-BX"],     // block checksums
        &["-1", "-c", "--content-size"], // content size in the header
        &["-1", "-c", "--no-frame-crc", "-B6"], // no content checksum
        &["-1", "-c", "-BD", "-B4"],     // linked blocks: the sequential path
    ];
    for args in variants {
        let Some(bytes) = lz4(args, &tar) else {
            return;
        };
        verify_and_restore(bytes, src.path()).await;
    }
}

#[tokio::test]
async fn concatenated_and_skippable_frames_read_as_one_stream() {
    let Some((src, tar)) = tree_and_tar() else {
        return;
    };
    // A skippable frame (magic 0x184D2A5?) first, then the tar split over two frames.
    let mut bytes = vec![0x53, 0x2A, 0x4D, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5];
    let cut = 1 << 20;
    let Some(a) = lz4(&["-1", "-c"], &tar[..cut]) else {
        return;
    };
    let Some(b) = lz4(&["-1", "-c", "-BX"], &tar[cut..]) else {
        return;
    };
    bytes.extend_from_slice(&a);
    bytes.extend_from_slice(&b);
    verify_and_restore(bytes, src.path()).await;
}

#[tokio::test]
async fn damage_is_caught_on_both_paths() {
    let Some((_src, tar)) = tree_and_tar() else {
        return;
    };
    for args in [
        &["-1", "-c", "-BX", "-B5"][..],
        &["-1", "-c", "-BD", "-B4"][..],
    ] {
        let Some(good) = lz4(args, &tar) else {
            return;
        };
        for pos in [30, good.len() / 2, good.len() - 3] {
            let mut bytes = good.clone();
            bytes[pos] ^= 0x10;
            assert_damage_caught(bytes, 65_536, &format!("lz4 {args:?}, byte {pos}")).await;
        }
        let err = archiver::verify(stream_of(good[..good.len() - 10].to_vec(), 65_536))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::Truncated | ArchiveError::CorruptFrame { .. }
            ),
            "lz4 {args:?}, truncated: {err:?}"
        );
    }
}

#[tokio::test]
async fn not_an_lz4_frame_is_named() {
    let err = archiver::verify(stream_of(b"PK\x03\x04 a zip file".to_vec(), 4))
        .await
        .unwrap_err();
    match err {
        ArchiveError::CorruptFrame { detail } => {
            assert!(detail.contains("not an LZ4 frame"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    let err = archiver::verify(stream_of(Vec::new(), 4))
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Truncated), "{err:?}");
    // A skippable frame that claims 4 GiB and ends early: truncated (skipped as it streams).
    let huge = vec![0x50, 0x2A, 0x4D, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
    let err = archiver::verify(stream_of(huge, 4)).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Truncated), "{err:?}");
}

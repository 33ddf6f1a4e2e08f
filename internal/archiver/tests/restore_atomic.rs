//! Restores are all or nothing: a damaged archive, a refused target or a cancellation leaves the
//! target exactly as it was and no staging directory behind; a replace swaps the whole tree.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use archiver::{ArchiveError, ArchiveOptions, ReadOptions, RestoreOptions};
use bytes::Bytes;
use common::*;
use tokio_util::sync::CancellationToken;

/// A node-state tree big enough to span several 4 MiB LZ4 blocks.
fn state(root: &Path, seed: u64) {
    write(
        root,
        "config.json",
        format!("{{\"seed\":{seed}}}").as_bytes(),
        0o644,
    );
    for i in 0..6u64 {
        write(
            root,
            &format!("store/{i:06}.sst"),
            &noise(2 * 1024 * 1024 + i as usize, seed * 10 + i),
            0o644,
        );
    }
    write(root, "LOCK", b"", 0o600);
}

/// The parent's entries: a staging or old directory left behind shows up here.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A target that already holds an older state, and its exact contents.
fn existing_target(parent: &Path) -> (PathBuf, BTreeMap<PathBuf, Node>) {
    let target = parent.join("data");
    state(&target, 1);
    write(&target, "store/stale.sst", b"from the old state", 0o644);
    let before = snapshot(&target);
    (target, before)
}

async fn archive_of(seed: u64) -> (tempfile::TempDir, Vec<u8>) {
    let src = tempfile::tempdir().unwrap();
    state(src.path(), seed);
    let (bytes, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    (src, bytes)
}

fn replace() -> RestoreOptions {
    RestoreOptions {
        replace: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_byte_flipped_mid_archive_leaves_the_target_untouched() {
    let (_src, mut bytes) = archive_of(2).await;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;

    // Into a target holding an older state, even when asked to replace it.
    let parent = tempfile::tempdir().unwrap();
    let (target, before) = existing_target(parent.path());
    let listing = entries(parent.path());
    let err = archiver::stage_restore(stream_of(bytes.clone(), 65536), &target, replace())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::ChecksumMismatch { .. } | ArchiveError::CorruptFrame { .. }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&target), before, "the target changed");
    assert_eq!(entries(parent.path()), listing, "something left beside it");

    // Into a missing target: it stays missing.
    let missing = parent.path().join("fresh");
    let err = archiver::restore(stream_of(bytes, 65536), &missing)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(!missing.exists(), "a failed restore created its target");
    assert_eq!(entries(parent.path()), listing);
}

#[tokio::test]
async fn a_staged_restore_dropped_before_commit_leaves_nothing() {
    // What the catalog does when the SHA-256 of the object differs from the published one: the
    // archive itself is sound, the caller's check fails, the staged tree goes.
    let (_src, bytes) = archive_of(3).await;
    let parent = tempfile::tempdir().unwrap();
    let (target, before) = existing_target(parent.path());
    let listing = entries(parent.path());
    let staged = archiver::stage_restore(stream_of(bytes, 100_000), &target, replace())
        .await
        .unwrap();
    let staging = staged.staging_dir().unwrap().to_path_buf();
    assert!(staging.join("store/000005.sst").is_file());
    assert_eq!(snapshot(&target), before, "staging touched the target");
    drop(staged);
    assert!(!staging.exists());
    assert_eq!(snapshot(&target), before);
    assert_eq!(entries(parent.path()), listing);
}

#[tokio::test]
async fn a_non_empty_target_is_refused_and_replace_swaps_it() {
    let (src, bytes) = archive_of(4).await;
    let parent = tempfile::tempdir().unwrap();
    let (target, before) = existing_target(parent.path());
    let listing = entries(parent.path());

    let err = archiver::restore(stream_of(bytes.clone(), 65536), &target)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::TargetNotEmpty { dir } if dir.ends_with("data")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("not empty") && msg.contains("--replace"),
        "{msg}"
    );
    assert_eq!(snapshot(&target), before);
    assert_eq!(entries(parent.path()), listing);

    let summary = archiver::stage_restore(stream_of(bytes, 65536), &target, replace())
        .await
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(summary.file_count, 8);
    // The new state whole, nothing of the old one (its stale file) left.
    assert_eq!(snapshot(&target), snapshot(src.path()));
    assert!(!target.join("store/stale.sst").exists());
    assert_eq!(
        entries(parent.path()),
        listing,
        "the old tree was not removed"
    );
}

#[tokio::test]
async fn an_empty_target_is_filled_and_keeps_its_mode() {
    let (src, bytes) = archive_of(5).await;
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    archiver::restore(stream_of(bytes, 65536), &target)
        .await
        .unwrap();
    assert_eq!(snapshot(&target), snapshot(src.path()));
    let mode = std::os::unix::fs::MetadataExt::mode(&fs::metadata(&target).unwrap()) & 0o7777;
    assert_eq!(mode, 0o750);
    assert_eq!(entries(parent.path()), vec!["data".to_string()]);
}

#[tokio::test]
async fn cancelling_mid_restore_leaves_nothing() {
    let (_src, bytes) = archive_of(6).await;
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    let listing = entries(parent.path());

    // Half the archive, then a source that never answers again (a stalled connection).
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    let stream: archiver::ByteStream = Box::pin(
        futures::stream::iter(vec![Ok(half)])
            .chain(futures::stream::pending::<std::io::Result<Bytes>>()),
    );
    let cancel = CancellationToken::new();
    let opts = RestoreOptions {
        replace: false,
        read: ReadOptions {
            cancel: Some(cancel.clone()),
            ..Default::default()
        },
    };
    // The source stalls after half the archive, so the restore cannot end by itself: cancel
    // once the staging directory holds restored entries (the read is under way).
    let watcher = {
        let (cancel, parent) = (cancel.clone(), parent.path().to_path_buf());
        tokio::spawn(async move {
            loop {
                let busy = fs::read_dir(&parent).unwrap().flatten().any(|e| {
                    e.file_name().to_string_lossy().contains(".restore-")
                        && fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
                });
                if busy {
                    cancel.cancel();
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let err = archiver::stage_restore(stream, &target, opts)
        .await
        .unwrap_err();
    watcher.await.unwrap();
    assert!(matches!(err, ArchiveError::ReadCancelled), "{err:?}");
    assert!(!target.exists(), "a cancelled restore created its target");
    assert_eq!(entries(parent.path()), listing, "staging left behind");
}

use futures::StreamExt as _;

/// A tmpfs mounted for one test (root only), unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path) -> Option<Mount> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_mount_point_target_is_restored_in_place() {
    // A volume mounted at the data directory, as in a pod: it cannot be renamed, so the staging
    // directory goes inside it and the commit moves entries up. A fresh filesystem's lost+found
    // is not content.
    let (src, bytes) = archive_of(7).await;
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    let Some(_mount) = Mount::tmpfs(&target) else {
        return;
    };
    fs::create_dir(target.join("lost+found")).unwrap();
    let fresh = archiver::restore(stream_of(bytes.clone(), 65536), &target)
        .await
        .unwrap();
    assert_eq!(fresh.file_count, 8);
    let mut want = snapshot(src.path());
    want.insert(PathBuf::from("lost+found"), Node::Dir { mode: 0o755 });
    let mut got = snapshot(&target);
    if let Some(Node::Dir { mode }) = got.get_mut(Path::new("lost+found")) {
        *mode = 0o755;
    }
    assert_eq!(got, want);

    // Holding a state now: refused without replace; a damaged archive changes nothing.
    write(&target, "store/stale.sst", b"old", 0o644);
    let before = snapshot(&target);
    let err = archiver::restore(stream_of(bytes.clone(), 65536), &target)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::TargetNotEmpty { .. }),
        "{err:?}"
    );
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    archiver::stage_restore(stream_of(bad, 65536), &target, replace())
        .await
        .unwrap_err();
    assert_eq!(
        snapshot(&target),
        before,
        "a failed restore changed the mount"
    );

    // Replace: the new state, lost+found kept, nothing of ours left inside.
    archiver::stage_restore(stream_of(bytes, 65536), &target, replace())
        .await
        .unwrap()
        .commit()
        .unwrap();
    assert!(!target.join("store/stale.sst").exists());
    assert!(target.join("lost+found").is_dir());
    assert_eq!(
        fs::read(target.join("config.json")).unwrap(),
        b"{\"seed\":7}"
    );
    let names = entries(&target);
    assert!(
        names.iter().all(|n| !n.starts_with(".testnet-")),
        "{names:?}"
    );
}

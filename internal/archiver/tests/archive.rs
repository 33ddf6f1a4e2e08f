//! Archive -> verify -> restore behaviour a snapshot publisher relies on.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::{Arc, Mutex};

use archiver::{ArchiveError, ArchiveOptions};
use common::*;
use futures::StreamExt;

fn node_tree(root: &Path) {
    write(root, "identity.json", b"{\"peer_id\":\"secret\"}", 0o600);
    write(root, "peers.json", b"[]", 0o644);
    write(root, "config.json", b"{\"network\":\"ghostnet\"}", 0o644);
    write(
        root,
        "store/sst/000001.sst",
        &noise(5 * 1024 * 1024 + 17, 1),
        0o644,
    );
    let mut rep = Vec::new();
    for i in 0..200_000u32 {
        rep.extend_from_slice(format!("block {i} level {}\n", i / 7).as_bytes());
    }
    write(root, "store/sst/000002.sst", &rep, 0o640);
    write(root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "empty-file", b"", 0o444);
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    let long_dir = "d".repeat(90);
    let long_name = format!("{long_dir}/{}", "f".repeat(120));
    write(root, &long_name, b"long name", 0o644);
    symlink("store/sst/000001.sst", root.join("current")).unwrap();
    symlink(
        format!("../{}", "x".repeat(150)),
        root.join("store/long-link"),
    )
    .unwrap();
    fs::create_dir_all(root.join("ro")).unwrap();
    write(root, "ro/inside", b"read-only dir", 0o644);
    fs::set_permissions(
        root.join("ro"),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
}

#[tokio::test]
async fn round_trip_restores_identical_tree_minus_default_excludes() {
    let src = tempfile::tempdir().unwrap();
    node_tree(src.path());
    let (bytes, summary) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();

    let mut expected = snapshot(src.path());
    expected.remove(Path::new("identity.json"));
    expected.remove(Path::new("peers.json"));
    let file_bytes: u64 = expected
        .values()
        .map(|n| match n {
            Node::File { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum();
    let files = expected
        .values()
        .filter(|n| matches!(n, Node::File { .. }))
        .count() as u64;
    assert_eq!(summary.file_count, files);
    assert_eq!(summary.uncompressed_bytes, file_bytes);
    assert_eq!(summary.compressed_bytes, bytes.len() as u64);
    assert!(summary.warnings.is_empty());

    let v = archiver::verify(stream_of(bytes.clone(), 1000))
        .await
        .unwrap();
    assert_eq!(v.sha256, summary.sha256);
    assert_eq!(v.compressed_bytes, summary.compressed_bytes);
    assert_eq!(v.file_count, files);
    assert_eq!(v.uncompressed_bytes, file_bytes);

    let dst = tempfile::tempdir().unwrap();
    let into = dst.path().join("restored");
    let r = archiver::restore(stream_of(bytes, 64 * 1024), &into)
        .await
        .unwrap();
    assert_eq!(r.sha256, summary.sha256);
    assert_eq!(snapshot(&into), expected);
    // file mtimes come back too (whole seconds)
    let m = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
    let a = m(&src.path().join("config.json"))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let b = m(&into.join("config.json"))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(a, b);
    fs::set_permissions(
        src.path().join("ro"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    fs::set_permissions(
        into.join("ro"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

#[tokio::test]
async fn archive_is_reproducible_and_readable_by_lz4_and_tar() {
    let src = tempfile::tempdir().unwrap();
    node_tree(src.path());
    let (a, sa) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    let (b, sb) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    assert_eq!(sa.sha256, sb.sha256);
    assert_eq!(a, b);

    // Interoperability with the reference tools, when installed (Debian: lz4, tar).
    let have = |c: &str| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok()
    };
    if !(have("lz4") && have("tar")) {
        eprintln!("lz4 or tar not installed: skipping the interoperability half");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a.tar.lz4");
    fs::write(&file, &a).unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "lz4 -dc {} | tar -xf - -C {}",
            file.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let mut expected = snapshot(src.path());
    expected.remove(Path::new("identity.json"));
    expected.remove(Path::new("peers.json"));
    assert_eq!(snapshot(&out), expected);
    for d in [src.path().join("ro"), out.join("ro")] {
        fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
}

fn names_in(bytes: &[u8]) -> Vec<String> {
    let dec = lz4_flex::frame::FrameDecoder::new(bytes);
    let mut ar = tar::Archive::new(dec);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[tokio::test]
async fn excludes_and_includes_select_entries() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "identity.json", b"id", 0o600);
    write(src.path(), "a/identity.json", b"nested id", 0o600);
    write(src.path(), "a/keep.sst", b"k", 0o644);
    write(src.path(), "a/drop.log", b"l", 0o644);
    write(src.path(), "b/c/deep.sst", b"d", 0o644);
    write(src.path(), "b/other.txt", b"o", 0o644);
    write(src.path(), "tmp/x", b"x", 0o644);

    let (bytes, _) = archive_bytes(
        src.path(),
        ArchiveOptions {
            excludes: vec!["*.log".into(), "/tmp".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        names_in(&bytes),
        [
            "a/",
            "a/keep.sst",
            "b/",
            "b/c/",
            "b/c/deep.sst",
            "b/other.txt"
        ]
    );

    let (bytes, _) = archive_bytes(
        src.path(),
        ArchiveOptions {
            use_default_excludes: false,
            excludes: vec!["a".into(), "b".into(), "tmp".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(names_in(&bytes), ["identity.json"]);

    let (bytes, s) = archive_bytes(
        src.path(),
        ArchiveOptions {
            includes: vec!["*.sst".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        names_in(&bytes),
        ["a/", "a/keep.sst", "b/", "b/c/", "b/c/deep.sst"]
    );
    assert_eq!(s.file_count, 2);

    let (bytes, _) = archive_bytes(
        src.path(),
        ArchiveOptions {
            includes: vec!["b/c".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(names_in(&bytes), ["b/", "b/c/", "b/c/deep.sst"]);

    let err = archive_bytes(
        src.path(),
        ArchiveOptions {
            excludes: vec!["*".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::NothingToArchive { dir } if dir == src.path()),
        "{err:?}"
    );

    let err = archiver::archive(
        src.path(),
        ArchiveOptions {
            excludes: vec!["a[".into()],
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, ArchiveError::BadPattern { pattern, .. } if pattern == "a["),
        "{err:?}"
    );
}

#[tokio::test]
async fn symlinks_are_stored_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret/data", b"outside the tree", 0o644);
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "real/file", b"inside", 0o644);
    symlink(outside.path().join("secret"), src.path().join("escape")).unwrap();
    symlink("real", src.path().join("dirlink")).unwrap();
    symlink("missing-target", src.path().join("dangling")).unwrap();

    let (bytes, s) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    assert_eq!(s.file_count, 1, "only real/file is a regular file");
    let mut ar = tar::Archive::new(lz4_flex::frame::FrameDecoder::new(&bytes[..]));
    let mut links = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.header().entry_type() == tar::EntryType::Symlink {
            links.push((
                e.path().unwrap().display().to_string(),
                e.link_name().unwrap().unwrap().display().to_string(),
            ));
        }
    }
    assert_eq!(
        links,
        [
            ("dangling".to_string(), "missing-target".to_string()),
            ("dirlink".to_string(), "real".to_string()),
            (
                "escape".to_string(),
                outside.path().join("secret").display().to_string()
            ),
        ]
    );
    // Restoring it refuses the link that leaves the restore directory.
    let dst = tempfile::tempdir().unwrap();
    let err = archiver::restore(stream_of(bytes, 4096), dst.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsafeEntry { path, .. } if path == "escape"),
        "{err:?}"
    );
    assert!(fs::symlink_metadata(dst.path().join("escape")).is_err());

    // Without the escaping link the tree restores with its links intact.
    fs::remove_file(src.path().join("escape")).unwrap();
    let (bytes, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    let dst = tempfile::tempdir().unwrap();
    archiver::restore(stream_of(bytes, 4096), dst.path())
        .await
        .unwrap();
    assert_eq!(snapshot(dst.path()), snapshot(src.path()));
}

#[tokio::test]
async fn sockets_and_fifos_are_skipped_with_a_warning() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "data", b"d", 0o644);
    let fifo = src.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let sock = src.path().join("node.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();

    let (bytes, s) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    assert_eq!(names_in(&bytes), ["data"]);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("node.sock") && w.contains("socket")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("pipe") && w.contains("FIFO")));
}

#[tokio::test]
async fn a_file_changing_while_read_fails_the_archive() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a.sst", &noise(10_000, 3), 0o644);
    write(src.path(), "growing.log", &noise(9 * 1024 * 1024, 4), 0o644);
    write(src.path(), "z.sst", b"z", 0o644);

    for (what, action) in [("grows", 0), ("shrinks", 1), ("rewritten", 2)] {
        let target = src.path().join("growing.log");
        let t = target.clone();
        let hook = Arc::new(move |p: &Path| {
            if p == t {
                use std::io::Write;
                match action {
                    0 => {
                        let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
                        f.write_all(b"more").unwrap();
                    }
                    1 => fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .unwrap()
                        .set_len(100)
                        .unwrap(),
                    _ => {
                        let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                        f.set_modified(
                            std::time::SystemTime::UNIX_EPOCH
                                + std::time::Duration::from_secs(1000),
                        )
                        .unwrap();
                    }
                }
            }
        });
        let (mut stream, handle) = archiver::archive(
            src.path(),
            ArchiveOptions {
                on_file_open: Some(hook),
                ..Default::default()
            },
        )
        .unwrap();
        let (_, saw_error) = drain_stream(&mut stream).await;
        assert!(
            saw_error,
            "{what}: the stream must end in an error, never look complete"
        );
        let err = handle.finish().await.unwrap_err();
        assert!(
            matches!(&err, ArchiveError::FileChanged { path, .. } if *path == target),
            "{what}: {err:?}"
        );
        write(src.path(), "growing.log", &noise(9 * 1024 * 1024, 4), 0o644);
    }
}

#[tokio::test]
async fn bad_source_directories_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = archiver::archive(&missing, ArchiveOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, ArchiveError::DirNotFound { dir } if *dir == missing),
        "{err:?}"
    );
    write(tmp.path(), "file", b"x", 0o644);
    let file = tmp.path().join("file");
    let err = archiver::archive(&file, ArchiveOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, ArchiveError::NotADirectory { dir } if *dir == file),
        "{err:?}"
    );
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = archive_bytes(&empty, ArchiveOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::NothingToArchive { dir } if *dir == empty),
        "{err:?}"
    );

    if is_root() {
        eprintln!(
            "running as root: permission bits do not stop reads, skipping the unreadable-file case"
        );
        return;
    }
    let src = tmp.path().join("src");
    write(&src, "locked", b"x", 0o000);
    let err = archive_bytes(&src, ArchiveOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Unreadable { path, .. } if *path == src.join("locked")),
        "{err:?}"
    );
}

/// The walk runs ahead of the archive on its own thread. A directory it cannot read after
/// files were already archived still fails the whole archive (the stream ends in an error, never
/// looks complete) and names the directory. The directory is nested past PATH_MAX, which stops
/// even root.
#[tokio::test]
async fn a_walk_error_after_archiving_started_fails_the_archive() {
    let src = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(
            src.path(),
            &format!("a/{i:02}.sst"),
            &noise(300_000, i),
            0o644,
        );
    }
    // z/ddd.../ddd.../...: each level is made and opened relative to the one above it, so the
    // absolute path may exceed PATH_MAX (4096), which the walk's read_dir of it cannot.
    use std::os::fd::{AsRawFd, FromRawFd};
    let component = std::ffi::CString::new("d".repeat(250)).unwrap();
    let mut deep = src.path().join("z");
    fs::create_dir(&deep).unwrap();
    let mut dir = fs::File::open(&deep).unwrap();
    for _ in 0..20 {
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        let made = unsafe { libc::mkdirat(dir.as_raw_fd(), component.as_ptr(), 0o755) };
        assert_eq!(made, 0, "{}", std::io::Error::last_os_error());
        // SAFETY: as above; the new descriptor is owned by the File.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                component.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
        };
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        dir = unsafe { fs::File::from_raw_fd(fd) };
        deep.push(component.to_str().unwrap());
    }
    assert!(deep.as_os_str().len() > 4096);

    let (mut stream, handle) = archiver::archive(src.path(), ArchiveOptions::default()).unwrap();
    let (bytes, saw_error) = drain_stream(&mut stream).await;
    assert!(
        saw_error,
        "the stream must end in an error, never look complete"
    );
    let err = handle.finish().await.unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Unreadable { path, .. } if path.starts_with(src.path().join("z"))),
        "{err:?}"
    );
    // Nothing says how far the archive got before the walk failed; that it may have got going
    // is the point of the streamed walk, so only report it.
    eprintln!("{bytes} bytes streamed before the walk failed");
}

#[tokio::test]
async fn cancellation_stops_the_archive() {
    let src = tempfile::tempdir().unwrap();
    for i in 0..8 {
        write(
            src.path(),
            &format!("f{i}"),
            &noise(4 * 1024 * 1024, i),
            0o644,
        );
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let (mut stream, handle) = archiver::archive(
        src.path(),
        ArchiveOptions {
            cancel: Some(cancel.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    // Read a little, then stop reading and cancel while the pipeline is blocked on us.
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    cancel.cancel();
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), handle.finish())
        .await
        .expect("archiver did not stop after cancellation")
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Cancelled), "{err:?}");
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    let e = last.unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}");
}

#[tokio::test]
async fn dropping_the_stream_ends_the_archive() {
    let src = tempfile::tempdir().unwrap();
    for i in 0..8 {
        write(
            src.path(),
            &format!("f{i}"),
            &noise(4 * 1024 * 1024, i),
            0o644,
        );
    }
    let (mut stream, handle) = archiver::archive(src.path(), ArchiveOptions::default()).unwrap();
    let _ = stream.next().await;
    drop(stream);
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), handle.finish())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ArchiveError::StreamDropped), "{err:?}");
}

#[tokio::test]
async fn progress_reports_reach_the_totals() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a", &noise(3 * 1024 * 1024, 9), 0o644);
    write(src.path(), "b", &vec![7u8; 6 * 1024 * 1024], 0o644);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let (bytes, summary) = archive_bytes(
        src.path(),
        ArchiveOptions {
            progress: Some(Arc::new(move |p| s2.lock().unwrap().push(p.clone()))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    let last = seen.last().expect("at least the final progress report");
    assert_eq!(last.compressed_bytes, bytes.len() as u64);
    assert_eq!(last.files, 2);
    assert_eq!(last.total_bytes_estimate, summary.uncompressed_bytes);
    assert!(
        last.uncompressed_bytes > summary.uncompressed_bytes,
        "tar headers count too"
    );
    assert!(seen
        .windows(2)
        .all(|w| w[0].compressed_bytes <= w[1].compressed_bytes));
}

/// Large files take the direct-I/O path of restore (whole aligned buffers, the tail through the
/// page cache, mode and mtime set after the last write): each size around the boundaries comes
/// back byte for byte with its mode and mtime.
#[tokio::test]
async fn large_files_come_back_with_their_bytes_modes_and_mtimes() {
    let src = tempfile::tempdir().unwrap();
    let sizes = [
        1 << 20,
        (1 << 20) + 1,
        4 << 20,
        (4 << 20) + 4095,
        (9 << 20) + 513,
    ];
    let modes = [0o644, 0o600, 0o755, 0o444, 0o640];
    for (i, (size, mode)) in sizes.iter().zip(modes).enumerate() {
        let name = format!("db/{i}.sst");
        write(src.path(), &name, &noise(*size, i as u64 + 7), mode);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + i as u64);
        fs::File::options()
            .write(true)
            .open(src.path().join(&name))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let (bytes, _) = archive_bytes(src.path(), ArchiveOptions::default())
        .await
        .unwrap();
    let dst = tempfile::tempdir().unwrap();
    let into = dst.path().join("restored");
    archiver::restore(stream_of(bytes, 300 * 1024), &into)
        .await
        .unwrap();
    assert_eq!(snapshot(&into), snapshot(src.path()));
    for i in 0..sizes.len() {
        let name = format!("db/{i}.sst");
        let mtime = |root: &Path| fs::metadata(root.join(&name)).unwrap().modified().unwrap();
        assert_eq!(mtime(&into), mtime(src.path()), "{name}");
    }
}

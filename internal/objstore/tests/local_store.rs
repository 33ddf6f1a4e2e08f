//! The local-directory store: atomic visible writes, re-read checksums, preconditions that hold
//! across processes, nothing left behind on error or cancellation.

use bytes::Bytes;
use futures::StreamExt;
use objstore::{ByteStream, LocalStore, ObjectStore, Precondition, PutOptions, StoreError};

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let n = e.file_name().unwrap().to_string_lossy().to_string();
        if n.starts_with(".testnet-tmp") {
            out.push(n);
        }
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v
}

async fn local(dir: &std::path::Path) -> std::sync::Arc<dyn objstore::ObjectStore> {
    objstore::open(&format!("file://{}", dir.display()), &Default::default())
        .await
        .unwrap()
}

fn body_of(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn read_all(store: &dyn objstore::ObjectStore, key: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut s = store.get_stream(key).await.unwrap();
    while let Some(b) = s.next().await {
        got.extend_from_slice(&b.unwrap());
    }
    got
}

#[tokio::test]
async fn put_get_list_delete_and_preconditions() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let meta = store
        .put_stream(
            "snapshots/a.tar.lz4",
            body_of(&data, 100_000),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    // The store re-read the file and matched it with what it was sent (CRC32C), so it attests
    // no SHA-256 of its own: the caller hashed those bytes already.
    assert!(
        meta.confirmed,
        "a streamed local write is confirmed by re-reading it"
    );
    assert_eq!(meta.sha256, None);
    assert_eq!(read_all(store.as_ref(), "snapshots/a.tar.lz4").await, data);

    let v1 = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"[1]"),
            PutOptions {
                precondition: Precondition::IfAbsent,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .version;
    let err = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"[2]"),
            PutOptions {
                precondition: Precondition::IfAbsent,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    // Same size, same content length, written within the same tick: still a new version.
    let v2 = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"[1]"),
            PutOptions {
                precondition: Precondition::IfMatch(v1.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .version;
    assert_ne!(v1, v2);
    let err = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"[3]"),
            PutOptions {
                precondition: Precondition::IfMatch(v1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    let (b, m) = store.get_bytes("base.json").await.unwrap();
    assert_eq!(&b[..], b"[1]");
    assert_eq!(m.version, v2);

    let keys: Vec<String> = store
        .list("snap")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["snapshots/a.tar.lz4"]);
    assert_eq!(
        store.list("").await.unwrap().len(),
        2,
        "lock and temp files are never listed"
    );
    store.delete("base.json").await.unwrap();
    store.delete("base.json").await.unwrap();
    assert!(store.head("base.json").await.unwrap().is_none());
    assert!(matches!(
        store.get_bytes("base.json").await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(matches!(
        store
            .put_bytes("../x", Bytes::new(), Default::default())
            .await
            .unwrap_err(),
        StoreError::BadUrl { .. }
    ));
    assert!(leftovers(tmp.path()).is_empty());
}

#[tokio::test]
async fn a_write_the_caller_reads_back_in_full_is_not_read_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let store = local(tmp.path()).await;
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let opts = PutOptions {
        full_read_follows: true,
        ..PutOptions::default()
    };
    let meta = store
        .put_stream("full/a.tar.lz4", body_of(&data, 65_536), opts)
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    // Nothing attested: the caller's full read is the check.
    assert!(!meta.confirmed);
    assert_eq!(meta.sha256, None);
    assert_eq!(read_all(store.as_ref(), "full/a.tar.lz4").await, data);
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[tokio::test]
async fn failed_or_cancelled_uploads_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path()).unwrap();
    let chunks: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(vec![1u8; 1 << 20])),
        Err(std::io::Error::other("archiver failed")),
    ];
    let err = store
        .put_stream(
            "x",
            Box::pin(futures::stream::iter(chunks)),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { detail, .. } if detail.contains("archiver failed")),
        "{err:?}"
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let c2 = cancel.clone();
    let body: ByteStream = Box::pin(futures::stream::iter(0..).then(move |i| {
        let c = c2.clone();
        async move {
            if i == 3 {
                c.cancel();
            }
            Ok(Bytes::from(vec![2u8; 65536]))
        }
    }));
    let err = store
        .put_stream(
            "y",
            body,
            PutOptions {
                cancel: Some(cancel),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Cancelled { .. }), "{err:?}");
    assert!(store.head("x").await.unwrap().is_none());
    assert!(store.head("y").await.unwrap().is_none());
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

const CHILD_ENV: &str = "LOCAL_STORE_RACE_DIR";
const ROUNDS: usize = 10;

/// Not a test on its own: the body of each racing publisher process.
#[tokio::test]
async fn race_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let id = std::env::var("LOCAL_STORE_RACE_ID").unwrap();
    let store = LocalStore::open(std::path::Path::new(&dir)).unwrap();
    for round in 0..ROUNDS {
        loop {
            let (text, pre) = match store.get_bytes("index.txt").await {
                Ok((b, m)) => (
                    String::from_utf8(b.to_vec()).unwrap(),
                    Precondition::IfMatch(m.version),
                ),
                Err(StoreError::NotFound { .. }) => (String::new(), Precondition::IfAbsent),
                Err(e) => panic!("{e}"),
            };
            let new = format!("{text}{id}-{round}\n");
            match store
                .put_bytes(
                    "index.txt",
                    Bytes::from(new),
                    PutOptions {
                        precondition: pre,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => break,
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn eight_processes_racing_on_one_index_lose_no_update() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            std::process::Command::new(&exe)
                .args(["--exact", "race_child", "--nocapture"])
                .env(CHILD_ENV, tmp.path())
                .env("LOCAL_STORE_RACE_ID", i.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(tmp.path().join("index.txt")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8 * ROUNDS, "lost updates:\n{text}");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 8 * ROUNDS);
}

//! Catalog logic against the in-memory store (real conditional writes, no server), with the
//! real archiver producing the artifacts.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use catalog::memstore::MemStore;
use catalog::{CatalogError, Index, LatestPointer, PublishRequest, VerifyMode};
use futures::StreamExt;
use objstore::{ByteStream, ObjectMeta, ObjectStore, PutOptions};

fn source_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::create_dir_all(p.join("context/blocks")).expect("mkdir");
    std::fs::write(p.join("config.json"), br#"{"network":"ghostnet"}"#).expect("write");
    std::fs::write(p.join("identity.json"), b"secret node identity").expect("write");
    for i in 0..5 {
        let data: Vec<u8> = (0..20_000u32)
            .map(|x| (x.wrapping_mul(31).wrapping_add(i) % 251) as u8)
            .collect();
        std::fs::write(p.join(format!("context/blocks/{i}.dat")), data).expect("write");
    }
    dir
}

fn request(network: &str, label: &str, height: u64, dir: &Path) -> PublishRequest {
    let mut r = PublishRequest::new(network, "rolling", dir);
    r.label = Some(label.to_string());
    r.block_height = Some(height);
    r
}

async fn index_of(store: &dyn ObjectStore) -> Index {
    let (bytes, _) = store
        .get_bytes("base.json")
        .await
        .expect("base.json exists");
    serde_json::from_slice(&bytes).expect("base.json parses")
}

async fn pointer_of(store: &dyn ObjectStore, key: &str) -> LatestPointer {
    let (bytes, _) = store.get_bytes(key).await.expect("pointer exists");
    serde_json::from_slice(&bytes).expect("pointer parses")
}

#[tokio::test]
async fn publish_indexes_points_latest_and_applies_retention() {
    let src = source_dir();
    let store = MemStore::new("s3://bucket/snapshots");

    let first = catalog::publish(&store, request("ghostnet", "a", 100, src.path()))
        .await
        .expect("publish a");
    assert_eq!(first.name, "ghostnet-rolling-a");
    assert_eq!(
        first.url,
        "s3://bucket/snapshots/ghostnet-rolling-a.tar.lz4"
    );
    assert_eq!(
        first.file_count, 6,
        "identity.json is excluded by default: {first:?}"
    );
    assert!(first.excludes.iter().any(|e| e == "identity.json"));
    let (body, _) = store
        .get_bytes("ghostnet-rolling-a.tar.lz4")
        .await
        .expect("artifact");
    assert_eq!(body.len() as u64, first.size_bytes);
    assert_eq!(
        catalog::hex(&sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&body)
        )),
        first.sha256
    );
    let meta_doc: catalog::ArtifactMeta = serde_json::from_slice(
        &store
            .get_bytes("ghostnet-rolling-a.json")
            .await
            .expect("metadata")
            .0,
    )
    .expect("json");
    assert_eq!(meta_doc, first);

    // A newer block moves the pointer; an older one published later does not.
    let third = catalog::publish(&store, request("ghostnet", "c", 300, src.path()))
        .await
        .expect("publish c");
    let second = catalog::publish(&store, request("ghostnet", "b", 200, src.path()))
        .await
        .expect("publish b");
    let pointer = pointer_of(&store, "ghostnet-rolling-latest.json").await;
    assert_eq!(pointer.name, third.name);
    assert_eq!(pointer.sha256, third.sha256);
    assert_eq!(
        store
            .website_redirect("ghostnet-rolling-tarball")
            .as_deref(),
        Some("/snapshots/ghostnet-rolling-c.tar.lz4")
    );
    assert_eq!(
        catalog::latest(&store, "ghostnet", "rolling")
            .await
            .expect("latest"),
        Some(third.clone())
    );

    // Another network has its own pointer and is not touched by retention.
    let other = catalog::publish(&store, request("mainnet", "x", 1, src.path()))
        .await
        .expect("publish x");

    let index = index_of(&store).await;
    assert_eq!(index.format_version, catalog::INDEX_FORMAT_VERSION);
    let names: Vec<&str> = index.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ghostnet-rolling-a",
            "ghostnet-rolling-b",
            "ghostnet-rolling-c",
            "mainnet-rolling-x"
        ]
    );

    // Retention 2 without a grace period: height 400 arrives, the two lowest (a=100, b=200)
    // go, index first, then pointer, then objects.
    let mut req = request("ghostnet", "d", 400, src.path());
    req.retain = Some(2);
    req.retention_grace = std::time::Duration::ZERO;
    let fourth = catalog::publish(&store, req).await.expect("publish d");
    let index = index_of(&store).await;
    let names: Vec<&str> = index.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ghostnet-rolling-c",
            "ghostnet-rolling-d",
            "mainnet-rolling-x"
        ]
    );
    for gone in [&first, &second] {
        assert!(
            store
                .head(&gone.artifact_key())
                .await
                .expect("head")
                .is_none(),
            "{} deleted",
            gone.name
        );
        assert!(store
            .head(&format!("{}.json", gone.name))
            .await
            .expect("head")
            .is_none());
    }
    assert_eq!(
        pointer_of(&store, "ghostnet-rolling-latest.json")
            .await
            .name,
        fourth.name
    );
    assert_eq!(
        pointer_of(&store, "mainnet-rolling-latest.json").await.name,
        other.name
    );
    assert_eq!(catalog::list(&store).await.expect("list"), index);
}

async fn exists(store: &dyn ObjectStore, name: &str) -> (bool, bool) {
    let a = store.head(&format!("{name}.tar.lz4")).await.expect("head");
    let m = store.head(&format!("{name}.json")).await.expect("head");
    (a.is_some(), m.is_some())
}

#[tokio::test]
async fn retention_deletes_only_after_the_grace_period() {
    let src = source_dir();
    let store = MemStore::new("s3://bucket/snapshots");
    let hour = std::time::Duration::from_secs(3600);
    for (label, height) in [("a", 100), ("b", 200), ("c", 300)] {
        let mut req = request("ghostnet", label, height, src.path());
        req.retain = Some(2);
        assert_eq!(req.retention_grace, hour, "the default grace is one hour");
        catalog::publish(&store, req).await.expect("publish");
    }
    // `a` left the index and the pointer names the newest, but `a` is still readable.
    let index = index_of(&store).await;
    let listed: Vec<&str> = index.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(listed, ["ghostnet-rolling-b", "ghostnet-rolling-c"]);
    let retired: Vec<&str> = index.retired.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(retired, ["ghostnet-rolling-a"]);
    assert_eq!(exists(&store, "ghostnet-rolling-a").await, (true, true));
    let pointer = pointer_of(&store, "ghostnet-rolling-latest.json").await;
    assert_eq!(pointer.name, "ghostnet-rolling-c");
    // Readers of the index never see the retired entry.
    assert_eq!(
        catalog::list(&store).await.expect("list").artifacts.len(),
        2
    );

    // Half the grace later: nothing deleted.
    let now = time::OffsetDateTime::now_utc();
    let r = catalog::apply_retention_at(&store, "ghostnet", "rolling", 2, hour, now + hour / 2)
        .await
        .expect("retention");
    assert_eq!(r, catalog::RetentionReport::default());
    assert_eq!(exists(&store, "ghostnet-rolling-a").await, (true, true));

    // Past the grace: `a`'s objects go, its retired entry too; the pointer is untouched.
    let r = catalog::apply_retention_at(&store, "ghostnet", "rolling", 2, hour, now + hour * 2)
        .await
        .expect("retention");
    assert_eq!(r.deleted, ["ghostnet-rolling-a"]);
    assert!(r.retired.is_empty());
    assert_eq!(exists(&store, "ghostnet-rolling-a").await, (false, false));
    let index = index_of(&store).await;
    assert!(index.retired.is_empty(), "{:?}", index.retired);
    assert_eq!(index.artifacts.len(), 2);
    assert_eq!(
        pointer_of(&store, "ghostnet-rolling-latest.json")
            .await
            .name,
        "ghostnet-rolling-c"
    );
    assert_eq!(exists(&store, "ghostnet-rolling-b").await, (true, true));

    // Keeping 1 retires `b`; the pointer already names `c`, which is kept; with no grace left
    // to wait, `b` goes in the same run, after the pointer is settled.
    let r = catalog::apply_retention(&store, "ghostnet", "rolling", 1, std::time::Duration::ZERO)
        .await
        .expect("retention");
    assert_eq!(r.retired, ["ghostnet-rolling-b"]);
    assert_eq!(r.deleted, ["ghostnet-rolling-b"]);
    let p = pointer_of(&store, "ghostnet-rolling-latest.json").await;
    assert_eq!(p.name, "ghostnet-rolling-c");
    assert_eq!(exists(&store, &p.name).await, (true, true));
}

#[tokio::test]
async fn verify_and_restore_round_trip_and_detect_tampering() {
    let src = source_dir();
    let store = MemStore::new("file:///unused");
    let meta = catalog::publish(&store, request("ghostnet", "v", 7, src.path()))
        .await
        .expect("publish");

    for mode in [VerifyMode::Checksum, VerifyMode::Full] {
        let report = catalog::verify_artifact(&store, &meta.artifact_key(), mode)
            .await
            .expect("verify");
        assert_eq!(report.sha256, meta.sha256);
        assert_eq!(report.compressed_bytes, meta.size_bytes);
    }
    let full = catalog::verify_artifact(&store, &meta.name, VerifyMode::Full)
        .await
        .expect("full");
    assert_eq!(full.file_count, Some(meta.file_count));

    let out = tempfile::tempdir().expect("tempdir");
    catalog::restore_artifact(&store, &meta.name, out.path(), Default::default())
        .await
        .expect("restore");
    for rel in [
        "config.json",
        "context/blocks/0.dat",
        "context/blocks/4.dat",
    ] {
        assert_eq!(
            std::fs::read(out.path().join(rel)).expect("restored"),
            std::fs::read(src.path().join(rel)).expect("src"),
            "{rel}"
        );
    }
    assert!(
        !out.path().join("identity.json").exists(),
        "excluded file must not be restored"
    );

    // Flip one byte in the stored artifact: both modes must refuse it.
    let (mut body, _) = store
        .get_bytes(&meta.artifact_key())
        .await
        .map(|(b, m)| (b.to_vec(), m))
        .expect("get");
    let mid = body.len() / 2;
    body[mid] ^= 0x01;
    store.overwrite_raw(&meta.artifact_key(), Bytes::from(body));
    for mode in [VerifyMode::Checksum, VerifyMode::Full] {
        let err = catalog::verify_artifact(&store, &meta.name, mode)
            .await
            .expect_err("tampered artifact must fail");
        assert!(
            matches!(
                err,
                CatalogError::VerifyFailed { .. } | CatalogError::ReadBack { .. }
            ),
            "{mode:?}: {err}"
        );
    }

    // Restoring it: refused, and the target (missing or holding files) stays as it was.
    let parent = tempfile::tempdir().expect("tempdir");
    let fresh = parent.path().join("fresh");
    let err = catalog::restore_artifact(&store, &meta.name, &fresh, Default::default())
        .await
        .expect_err("tampered artifact must not restore");
    assert!(matches!(err, CatalogError::Restore { .. }), "{err}");
    assert!(err.to_string().starts_with("restore of"), "{err}");
    assert!(!fresh.exists());
    assert_eq!(std::fs::read_dir(parent.path()).expect("ls").count(), 0);
}

/// Wraps a store and flips one byte of every streamed upload (or of every streamed read), like a
/// broken proxy: the store honestly attests what it received.
#[derive(Debug)]
struct Corrupting {
    inner: MemStore,
    on_upload: bool,
}

fn flip_first_byte(body: ByteStream) -> ByteStream {
    let mut first = true;
    Box::pin(body.map(move |chunk| {
        chunk.map(|c| {
            if first && !c.is_empty() {
                first = false;
                let mut v = c.to_vec();
                v[c.len() / 2] ^= 0x40;
                Bytes::from(v)
            } else {
                c
            }
        })
    }))
}

#[async_trait::async_trait]
impl ObjectStore for Corrupting {
    fn url(&self, key: &str) -> String {
        self.inner.url(key)
    }
    async fn put_bytes(
        &self,
        key: &str,
        data: Bytes,
        opts: PutOptions,
    ) -> objstore::Result<ObjectMeta> {
        self.inner.put_bytes(key, data, opts).await
    }
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> objstore::Result<ObjectMeta> {
        let body = if self.on_upload {
            flip_first_byte(body)
        } else {
            body
        };
        self.inner.put_stream(key, body, opts).await
    }
    async fn get_bytes(&self, key: &str) -> objstore::Result<(Bytes, ObjectMeta)> {
        self.inner.get_bytes(key).await
    }
    async fn get_stream(&self, key: &str) -> objstore::Result<ByteStream> {
        let s = self.inner.get_stream(key).await?;
        Ok(if self.on_upload {
            s
        } else {
            flip_first_byte(s)
        })
    }
    async fn head(&self, key: &str) -> objstore::Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> objstore::Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> objstore::Result<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
}

#[tokio::test]
async fn verification_failure_publishes_nothing() {
    let src = source_dir();
    // Corrupted in transit: the checksum check (default mode) catches it.
    let store = Corrupting {
        inner: MemStore::new("file:///c"),
        on_upload: true,
    };
    let err = catalog::publish(&store, request("ghostnet", "bad", 1, src.path()))
        .await
        .expect_err("must refuse");
    assert!(
        matches!(&err, CatalogError::VerifyFailed { what: "sha256", .. }),
        "{err}"
    );
    assert!(
        store.inner.keys().is_empty(),
        "nothing left behind: {:?}",
        store.inner.keys()
    );

    // Reads come back corrupted: only a full verification notices.
    let store = Corrupting {
        inner: MemStore::new("file:///c"),
        on_upload: false,
    };
    let mut req = request("ghostnet", "bad", 1, src.path());
    req.verify = VerifyMode::Full;
    let err = catalog::publish(&store, req)
        .await
        .expect_err("must refuse");
    assert!(
        matches!(
            &err,
            CatalogError::VerifyFailed { .. } | CatalogError::Archive(_)
        ),
        "{err}"
    );
    assert!(
        store.inner.keys().is_empty(),
        "nothing left behind: {:?}",
        store.inner.keys()
    );
}

#[tokio::test]
async fn store_without_checksums_is_reread() {
    let src = source_dir();
    let store = MemStore::new("file:///n").without_checksums();
    let meta = catalog::publish(&store, request("ghostnet", "n", 1, src.path()))
        .await
        .expect("publish");
    assert_eq!(
        catalog::get(&store, &meta.name).await.expect("get"),
        Some(meta)
    );
}

#[tokio::test]
async fn invalid_index_is_reported_and_left_untouched() {
    let src = source_dir();
    let store = MemStore::new("file:///i");
    let garbage = Bytes::from_static(b"{\"format_version\": 1, \"artifacts\": [ oops");
    store
        .put_bytes("base.json", garbage.clone(), PutOptions::default())
        .await
        .expect("seed");
    let err = catalog::publish(&store, request("ghostnet", "i", 1, src.path()))
        .await
        .expect_err("must fail");
    match &err {
        CatalogError::CorruptDocument { url, .. } => assert_eq!(url, "file:///i/base.json"),
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert_eq!(
        store.get_bytes("base.json").await.expect("still there").0,
        garbage
    );
    assert_eq!(
        store.keys(),
        ["base.json"],
        "the artifact and its metadata were removed"
    );
    assert!(matches!(
        catalog::list(&store).await,
        Err(CatalogError::CorruptDocument { .. })
    ));
}

#[tokio::test]
async fn existing_artifact_is_never_overwritten() {
    let src = source_dir();
    let store = MemStore::new("file:///e");
    let meta = catalog::publish(&store, request("ghostnet", "same", 1, src.path()))
        .await
        .expect("publish");
    std::fs::write(src.path().join("config.json"), b"changed").expect("write");
    let err = catalog::publish(&store, request("ghostnet", "same", 2, src.path()))
        .await
        .expect_err("must refuse");
    match &err {
        CatalogError::ArtifactExists { existing, .. } => assert_eq!(existing, &meta.sha256),
        other => panic!("unexpected error: {other}"),
    }
    catalog::verify_artifact(&store, &meta.name, VerifyMode::Full)
        .await
        .expect("original intact");
    assert_eq!(index_of(&store).await.artifacts, vec![meta]);
}

#[tokio::test]
async fn invalid_input_is_rejected_before_anything_is_written() {
    let src = source_dir();
    let store = MemStore::new("file:///v");
    let cases: Vec<(PublishRequest, &str)> = vec![
        (request("Ghostnet", "a", 1, src.path()), "network"),
        (request("ghost_net", "a", 1, src.path()), "network"),
        (
            PublishRequest {
                kind: "full-node".into(),
                ..request("ghostnet", "a", 1, src.path())
            },
            "kind",
        ),
        (request("ghostnet", "latest", 1, src.path()), "label"),
        (request("ghostnet", "x-tarball", 1, src.path()), "label"),
        (
            PublishRequest {
                retain: Some(0),
                ..request("ghostnet", "a", 1, src.path())
            },
            "retain",
        ),
        (
            PublishRequest {
                block_time: Some("yesterday".into()),
                ..request("ghostnet", "a", 1, src.path())
            },
            "block_time",
        ),
        (
            request("ghostnet", "a", 1, &src.path().join("missing")),
            "source directory",
        ),
    ];
    for (req, field) in cases {
        let err = catalog::publish(&store, req).await.expect_err(field);
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn cancelled_publish_leaves_nothing() {
    let src = source_dir();
    let store = MemStore::new("file:///x");
    let token = tokio_util::sync::CancellationToken::new();
    token.cancel();
    let mut req = request("ghostnet", "x", 1, src.path());
    req.archive.cancel = Some(token);
    let err = catalog::publish(&store, req).await.expect_err("cancelled");
    assert!(
        matches!(err, CatalogError::Cancelled | CatalogError::Archive(_)),
        "{err}"
    );
    assert!(store.keys().is_empty(), "{:?}", store.keys());
}

#[tokio::test]
async fn delete_moves_pointer_back_and_removes_objects() {
    let src = source_dir();
    let store = MemStore::new("s3://b/p");
    let older = catalog::publish(&store, request("ghostnet", "o", 1, src.path()))
        .await
        .expect("o");
    let newer = catalog::publish(&store, request("ghostnet", "n", 2, src.path()))
        .await
        .expect("n");
    assert!(catalog::delete_artifact(&store, &newer.name)
        .await
        .expect("delete"));
    assert_eq!(
        pointer_of(&store, "ghostnet-rolling-latest.json")
            .await
            .name,
        older.name
    );
    assert_eq!(
        store
            .website_redirect("ghostnet-rolling-tarball")
            .as_deref(),
        Some("/p/ghostnet-rolling-o.tar.lz4")
    );
    assert!(store
        .head(&newer.artifact_key())
        .await
        .expect("head")
        .is_none());
    assert!(
        !catalog::delete_artifact(&store, &newer.name)
            .await
            .expect("second delete"),
        "already gone"
    );
    assert!(catalog::delete_artifact(&store, &older.artifact_key())
        .await
        .expect("delete"));
    assert!(index_of(&store).await.artifacts.is_empty());
    assert!(store
        .head("ghostnet-rolling-latest.json")
        .await
        .expect("head")
        .is_none());
    assert!(store
        .head("ghostnet-rolling-tarball")
        .await
        .expect("head")
        .is_none());
    assert_eq!(
        catalog::latest(&store, "ghostnet", "rolling")
            .await
            .expect("latest"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_lose_no_entry() {
    let src = Arc::new(source_dir());
    let store = Arc::new(MemStore::new("file:///m"));
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let (store, src) = (store.clone(), src.clone());
            tokio::spawn(async move {
                catalog::publish(
                    &*store,
                    request("ghostnet", &format!("p{i}"), i, src.path()),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("publish");
    }
    let index = index_of(&*store).await;
    assert_eq!(
        index.artifacts.len(),
        8,
        "{:?}",
        index.artifacts.iter().map(|a| &a.name).collect::<Vec<_>>()
    );
    assert_eq!(
        pointer_of(&*store, "ghostnet-rolling-latest.json")
            .await
            .name,
        "ghostnet-rolling-p7"
    );
}

#[tokio::test]
async fn a_restore_whose_sha256_differs_from_the_published_one_changes_nothing() {
    // The archive itself is sound (LZ4 checksums pass); only the published SHA-256 disagrees,
    // which the catalog learns after the whole object was read: the staged tree must go.
    let src = source_dir();
    let store = MemStore::new("file:///unused");
    let meta = catalog::publish(&store, request("ghostnet", "s", 9, src.path()))
        .await
        .expect("publish");
    let mut lie = meta.clone();
    lie.sha256 = "0".repeat(64);
    store.overwrite_raw(
        &format!("{}.json", meta.name),
        Bytes::from(serde_json::to_vec(&lie).expect("json")),
    );
    let parent = tempfile::tempdir().expect("tempdir");
    let target = parent.path().join("data");
    std::fs::create_dir_all(target.join("store")).expect("mkdir");
    std::fs::write(target.join("store/LOCK"), b"old").expect("write");
    let opts = archiver::RestoreOptions {
        replace: true,
        ..Default::default()
    };
    let err = catalog::restore_artifact(&store, &meta.name, &target, opts)
        .await
        .expect_err("a SHA-256 mismatch must not restore");
    assert!(
        matches!(err, CatalogError::RestoreMismatch { what: "sha256", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("left as it was"), "{err}");
    assert_eq!(
        std::fs::read(target.join("store/LOCK")).expect("kept"),
        b"old"
    );
    assert_eq!(
        std::fs::read_dir(&target).expect("ls").count(),
        1,
        "only the old store/ directory"
    );
    assert_eq!(
        std::fs::read_dir(parent.path()).expect("ls").count(),
        1,
        "no staging directory left beside the target"
    );
}

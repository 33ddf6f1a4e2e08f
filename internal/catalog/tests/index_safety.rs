//! Publishing to stores that do not keep the catalog's promises by themselves: stores that
//! ignore conditional writes (refused unless publishers hold an index lock or vouch for a single
//! publisher), stores that lose a write (the entry is read back and written again, or the run
//! fails), and torn reads (read again before being called corrupt).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use catalog::memstore::MemStore;
use catalog::{CatalogError, HeldIndexLock, Index, IndexLock, IndexWrites, PublishRequest};
use objstore::{ByteStream, ObjectMeta, ObjectStore, PutOptions, Result as StoreResult};

fn source_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("blocks")).expect("mkdir");
    for i in 0..3u8 {
        std::fs::write(dir.path().join(format!("blocks/{i}.dat")), vec![i; 10_000]).expect("write");
    }
    dir
}

fn request(label: &str, height: u64, dir: &Path, writes: IndexWrites) -> PublishRequest {
    let mut r = PublishRequest::new("ghostnet", "rolling", dir);
    r.label = Some(label.to_string());
    r.block_height = Some(height);
    r.index_writes = writes;
    r
}

async fn names_in_index(store: &dyn ObjectStore) -> Vec<String> {
    let (bytes, _) = store.get_bytes("base.json").await.expect("base.json");
    let index: Index = serde_json::from_slice(&bytes).expect("base.json parses");
    index.artifacts.into_iter().map(|a| a.name).collect()
}

/// A store in front of a [`MemStore`] that yields to the scheduler before every call, so
/// concurrent publishers interleave their read-modify-writes, and can lose writes of or tear
/// reads of `base.json`.
#[derive(Debug)]
struct Flaky {
    inner: MemStore,
    /// Writes of base.json still to be acknowledged but not stored.
    drop_index_writes: AtomicU32,
    /// Reads of base.json still to be served cut in half.
    tear_index_reads: AtomicU32,
}

impl Flaky {
    fn new(inner: MemStore) -> Flaky {
        Flaky {
            inner,
            drop_index_writes: AtomicU32::new(0),
            tear_index_reads: AtomicU32::new(0),
        }
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait]
impl ObjectStore for Flaky {
    fn url(&self, key: &str) -> String {
        self.inner.url(key)
    }
    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> StoreResult<ObjectMeta> {
        tokio::task::yield_now().await;
        if key == "base.json" && take(&self.drop_index_writes) {
            return Ok(ObjectMeta {
                key: key.into(),
                size: data.len() as u64,
                version: objstore::Version("lost".into()),
                sha256: None,
                content_type: None,
                confirmed: false,
            });
        }
        self.inner.put_bytes(key, data, opts).await
    }
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> StoreResult<ObjectMeta> {
        self.inner.put_stream(key, body, opts).await
    }
    async fn get_bytes(&self, key: &str) -> StoreResult<(Bytes, ObjectMeta)> {
        tokio::task::yield_now().await;
        let (bytes, meta) = self.inner.get_bytes(key).await?;
        if key == "base.json" && take(&self.tear_index_reads) {
            return Ok((bytes.slice(..bytes.len() / 2), meta));
        }
        Ok((bytes, meta))
    }
    async fn get_stream(&self, key: &str) -> StoreResult<ByteStream> {
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        tokio::task::yield_now().await;
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
}

/// An in-process index lock; counts how often it was taken and checks nobody holds it twice.
#[derive(Default)]
struct TestLock {
    mutex: Arc<tokio::sync::Mutex<()>>,
    taken: AtomicU32,
}

struct TestHeld(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

#[async_trait]
impl IndexLock for TestLock {
    fn describe(&self) -> String {
        "test lock".into()
    }
    async fn acquire(&self) -> Result<Box<dyn HeldIndexLock>, String> {
        let guard = self.mutex.clone().lock_owned().await;
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(TestHeld(guard)))
    }
}

#[async_trait]
impl HeldIndexLock for TestHeld {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    async fn release(self: Box<Self>) {}
}

// Every store below has a URL of its own: the probe's answer is cached per process and prefix.

#[tokio::test]
async fn probe_tells_enforcing_from_ignoring_stores() {
    let good = MemStore::new("s3://probe/enforcing");
    let e = objstore::probe::probe(&good).await.expect("probe");
    assert!(e.complete(), "{e:?}");
    assert!(
        good.keys().is_empty(),
        "probe object left: {:?}",
        good.keys()
    );

    let bad = MemStore::new("s3://probe/ignoring").ignoring_conditions();
    let e = objstore::probe::probe(&bad).await.expect("probe");
    assert!(!e.if_absent && !e.if_match, "{e:?}");
    assert_eq!(e.missing().len(), 2);
    assert!(bad.keys().is_empty(), "probe object left: {:?}", bad.keys());
}

#[tokio::test]
async fn publishing_to_a_store_ignoring_conditions_is_refused_before_the_upload() {
    let src = source_dir();
    let store = MemStore::new("s3://refuse/snapshots").ignoring_conditions();
    let err = catalog::publish(
        &store,
        request("a", 1, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect_err("must refuse");
    match &err {
        CatalogError::UnsafeStore { url, missing } => {
            assert_eq!(url, "s3://refuse/snapshots");
            assert_eq!(missing.len(), 2, "{missing:?}");
        }
        other => panic!("unexpected error: {other}"),
    }
    let text = err.to_string();
    for needle in [
        "s3://refuse/snapshots",
        "If-None-Match",
        "If-Match",
        "missing from the index",
        "index lock",
        "only one publisher",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    assert!(store.keys().is_empty(), "written: {:?}", store.keys());
    // Reads need no probe and no acknowledgement.
    assert!(catalog::list(&store)
        .await
        .expect("list")
        .artifacts
        .is_empty());
}

#[tokio::test]
async fn single_publisher_may_publish_to_a_store_ignoring_conditions() {
    let src = source_dir();
    let store = MemStore::new("s3://single/snapshots").ignoring_conditions();
    for (i, label) in ["a", "b"].iter().enumerate() {
        catalog::publish(
            &store,
            request(label, i as u64, src.path(), IndexWrites::SinglePublisher),
        )
        .await
        .expect("publish");
    }
    assert_eq!(
        names_in_index(&store).await,
        ["ghostnet-rolling-a", "ghostnet-rolling-b"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_lock_keeps_every_entry_of_eight_concurrent_publishers() {
    let src = source_dir();
    let store = Arc::new(Flaky::new(
        MemStore::new("s3://locked/snapshots").ignoring_conditions(),
    ));
    let lock = Arc::new(TestLock::default());
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let (store, lock) = (store.clone(), lock.clone());
            let dir = src.path().to_path_buf();
            tokio::spawn(async move {
                let writes = IndexWrites::Locked(lock);
                catalog::publish(&*store, request(&format!("p{i}"), i, &dir, writes)).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("publish");
    }
    assert_eq!(lock.taken.load(Ordering::SeqCst), 8);
    let names = names_in_index(&*store).await;
    assert_eq!(names.len(), 8, "{names:?}");
    let pointer = catalog::latest(&*store, "ghostnet", "rolling")
        .await
        .expect("latest")
        .expect("a latest artifact");
    assert_eq!(pointer.name, "ghostnet-rolling-p7");
}

#[tokio::test]
async fn a_lost_index_write_is_written_again() {
    let src = source_dir();
    let store = Flaky::new(MemStore::new("s3://lossy/once"));
    catalog::publish(
        &store,
        request("a", 1, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect("publish a");
    store.drop_index_writes.store(1, Ordering::SeqCst);
    catalog::publish(
        &store,
        request("b", 2, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect("publish b despite one lost write");
    assert_eq!(store.drop_index_writes.load(Ordering::SeqCst), 0);
    assert_eq!(
        names_in_index(&store).await,
        ["ghostnet-rolling-a", "ghostnet-rolling-b"]
    );
}

#[tokio::test]
async fn an_entry_the_store_keeps_losing_fails_the_publish_and_leaves_nothing() {
    let src = source_dir();
    let store = Flaky::new(MemStore::new("s3://lossy/always"));
    catalog::publish(
        &store,
        request("a", 1, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect("publish a");
    store.drop_index_writes.store(u32::MAX, Ordering::SeqCst);
    let err = catalog::publish(
        &store,
        request("b", 2, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect_err("must fail");
    match &err {
        CatalogError::NotIndexed {
            name, what, url, ..
        } => {
            assert_eq!(name, "ghostnet-rolling-b");
            assert_eq!(*what, "the index");
            assert_eq!(url, "s3://lossy/always/base.json");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(names_in_index(&store).await, ["ghostnet-rolling-a"]);
    assert!(
        !store.inner.keys().iter().any(|k| k.contains("rolling-b")),
        "unindexed objects left: {:?}",
        store.inner.keys()
    );
}

#[tokio::test]
async fn a_torn_read_is_read_again_and_a_corrupt_index_is_reported_with_its_size() {
    let src = source_dir();
    let store = Flaky::new(MemStore::new("s3://torn/snapshots"));
    catalog::publish(
        &store,
        request("a", 1, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect("publish a");
    store.tear_index_reads.store(2, Ordering::SeqCst);
    catalog::publish(
        &store,
        request("b", 2, src.path(), IndexWrites::Conditional),
    )
    .await
    .expect("torn reads are read again");
    store.tear_index_reads.store(2, Ordering::SeqCst);
    assert_eq!(
        catalog::list(&store).await.expect("list").artifacts.len(),
        2
    );

    store.tear_index_reads.store(u32::MAX, Ordering::SeqCst);
    let full = store
        .inner
        .get_bytes("base.json")
        .await
        .expect("index")
        .0
        .len();
    match catalog::list(&store).await {
        Err(e @ CatalogError::CorruptDocument { .. }) => {
            let text = e.to_string();
            assert!(text.contains("s3://torn/snapshots/base.json"), "{text}");
            assert!(text.contains(&format!("({} bytes)", full / 2)), "{text}");
        }
        other => panic!("expected a corrupt document, got {other:?}"),
    }
}

#[tokio::test]
async fn removing_an_artifact_follows_the_same_rules() {
    let src = source_dir();
    let store = MemStore::new("s3://remove/snapshots").ignoring_conditions();
    catalog::publish(
        &store,
        request("a", 1, src.path(), IndexWrites::SinglePublisher),
    )
    .await
    .expect("publish");
    let err =
        catalog::delete_artifact_with(&store, "ghostnet-rolling-a", &IndexWrites::Conditional)
            .await
            .expect_err("must refuse");
    assert!(matches!(err, CatalogError::UnsafeStore { .. }), "{err}");
    assert_eq!(names_in_index(&store).await, ["ghostnet-rolling-a"]);

    let lock = Arc::new(TestLock::default());
    let removed = catalog::delete_artifact_with(
        &store,
        "ghostnet-rolling-a",
        &IndexWrites::Locked(lock.clone()),
    )
    .await
    .expect("delete");
    assert!(removed);
    assert_eq!(lock.taken.load(Ordering::SeqCst), 1);
    assert!(names_in_index(&store).await.is_empty());
}

//! A publish done elsewhere (a Job in a cluster) is recorded only when the store confirms what
//! it reported: metadata, object and index entry.

use bytes::Bytes;
use catalog::memstore::MemStore;
use catalog::{confirm_report, ConfirmError, PublishReport, PublishRequest};
use objstore::ObjectStore;

fn source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.dat"), vec![7u8; 50_000]).expect("write");
    dir
}

async fn published(store: &MemStore) -> PublishReport {
    let src = source();
    let mut r = PublishRequest::new("ghostnet", "rolling", src.path());
    r.label = Some("100".into());
    let m = catalog::publish(store, r).await.expect("publish");
    // What `testnet-archiver create --result-file` writes, after other output.
    let text = format!(
        "progress...\n{}\n",
        serde_json::json!({"name": m.name, "url": m.url, "sha256": m.sha256, "size_bytes": m.size_bytes})
    );
    PublishReport::parse(&text).expect("report parses")
}

#[tokio::test]
async fn a_true_report_is_confirmed() {
    let store = MemStore::new("s3://bucket/p");
    let report = published(&store).await;
    let meta = confirm_report(&store, &report).await.expect("confirmed");
    assert_eq!(meta.name, "ghostnet-rolling-100");
    assert_eq!(meta.sha256, report.sha256);
}

#[tokio::test]
async fn a_report_the_store_contradicts_is_refused() {
    let store = MemStore::new("s3://bucket/p");
    let report = published(&store).await;

    let mut wrong = report.clone();
    wrong.sha256 = "00".repeat(32);
    let e = confirm_report(&store, &wrong).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConfirmError::Mismatch {
                what: "sha256",
                source_: "metadata",
                ..
            }
        ),
        "{e}"
    );

    let mut wrong = report.clone();
    wrong.size_bytes += 1;
    let e = confirm_report(&store, &wrong).await.unwrap_err();
    assert!(
        matches!(e, ConfirmError::Mismatch { what: "size", .. }),
        "{e}"
    );

    let mut wrong = report.clone();
    wrong.name = "ghostnet-rolling-101".into();
    let e = confirm_report(&store, &wrong).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConfirmError::Missing {
                what: "metadata",
                ..
            }
        ),
        "{e}"
    );

    // The object changed behind the metadata's back (this store attests no SHA-256 on HEAD,
    // like moto: the size is what can be checked without reading the object back).
    store.overwrite_raw(
        "ghostnet-rolling-100.tar.lz4",
        Bytes::from(vec![1u8; report.size_bytes as usize + 10]),
    );
    let e = confirm_report(&store, &report).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConfirmError::Mismatch {
                what: "size",
                source_: "object",
                ..
            }
        ),
        "{e}"
    );

    // The object is gone.
    store
        .delete("ghostnet-rolling-100.tar.lz4")
        .await
        .expect("delete");
    let e = confirm_report(&store, &report).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConfirmError::Missing {
                what: "artifact object",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_report_without_an_index_entry_is_refused() {
    let store = MemStore::new("s3://bucket/p");
    let report = published(&store).await;
    store.overwrite_raw(
        "base.json",
        Bytes::from(serde_json::to_vec(&catalog::Index::default()).expect("json")),
    );
    let e = confirm_report(&store, &report).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConfirmError::Missing {
                what: "base.json entry",
                ..
            }
        ),
        "{e}"
    );
}

//! The GCS store against gcp-storage-emulator: lifecycle, resumable upload, and what the
//! emulator does with generation preconditions.

mod common;

use bytes::Bytes;
use common::*;
use objstore::{ObjectStore, Precondition, PutOptions, StoreError};

#[tokio::test]
async fn gcs_lifecycle_and_resumable_upload() {
    let Some(server) = start_gcs_emulator() else {
        return;
    };
    let store = gcs_store(&server.endpoint(), "snaps", "net1", 256 * 1024).await;
    let body = Bytes::from_static(b"{\"a\":1}");
    let m = store
        .put_bytes("meta.json", body.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(m.size, body.len() as u64);
    assert_eq!(store.get_bytes("meta.json").await.unwrap().0, body);
    let big = data(700 * 1024 + 5, 9);
    let m = store
        .put_stream(
            "big.bin",
            stream_of(big.clone(), 10_000),
            PutOptions::default(),
        )
        .await
        .unwrap();
    eprintln!(
        "emulator resumable upload sha256 confirmed: {}",
        m.sha256.is_some()
    );
    assert_eq!(m.size, big.len() as u64);
    assert_eq!(
        sha256(&store.get_bytes("big.bin").await.unwrap().0),
        sha256(&big)
    );
    let mut keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["big.bin", "meta.json"]);
    store.delete("meta.json").await.unwrap();
    assert!(store.head("meta.json").await.unwrap().is_none());
    match store.get_bytes("meta.json").await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    // FACTS.md: the emulator ignores ifGenerationMatch; record what it does.
    let r = store
        .put_bytes(
            "big.bin",
            Bytes::from_static(b"x"),
            PutOptions {
                precondition: Precondition::IfAbsent,
                ..Default::default()
            },
        )
        .await;
    assert!(r.is_ok(), "the emulator now enforces ifGenerationMatch ({r:?}): update FACTS.md and assert PreconditionFailed");
}

#[tokio::test]
async fn gcs_objects_are_read_in_ranges() {
    let Some(server) = start_gcs_emulator() else {
        return;
    };
    let writer = gcs_store(&server.endpoint(), "ranges", "net1", 256 * 1024).await;
    let big = data(9 * 64 * 1024 + 777, 12);
    writer
        .put_stream(
            "big.bin",
            stream_of(big.clone(), 10_000),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let config = objstore::StoreConfig {
        endpoint: Some(server.endpoint()),
        ..Default::default()
    };
    let settings = objstore::gcs::GcsSettings {
        reads: objstore::RangedReads {
            connections: 3,
            range_size: 64 * 1024,
            ..Default::default()
        },
        ..Default::default()
    };
    let reader = objstore::gcs::GcsStore::open_with("ranges", "net1", &config, settings)
        .await
        .unwrap();
    let mut s = reader.get_stream("big.bin").await.unwrap();
    let mut got = Vec::new();
    while let Some(b) = futures::StreamExt::next(&mut s).await {
        got.extend_from_slice(&b.unwrap());
    }
    assert!(got == big[..], "ranged read differs from the object");
}

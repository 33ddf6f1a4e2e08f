//! The S3 store against moto and s3s-fs: object lifecycle, prefixes, conditional writes,
//! multipart uploads with per-part SHA-256, and the errors each server produces.

mod common;

use bytes::Bytes;
use common::*;
use objstore::s3::S3Store;
use objstore::{ObjectStore, Precondition, PutOptions, StoreError};

const KIB: usize = 1024;
/// s3s-fs rejects parts under 5 MiB but the last (EntityTooSmall), as AWS does.
const S3S_PART: u64 = 5 * 1024 * 1024;

fn opts(pre: Precondition) -> PutOptions {
    PutOptions {
        precondition: pre,
        ..Default::default()
    }
}

/// Put, head, get, list (prefix-relative keys), delete, on one server.
async fn lifecycle(endpoint: &str, part: u64) {
    let store = s3_store(endpoint, "snaps", "tezos/ghostnet", s3_settings(part)).await;
    let root = s3_store(endpoint, "snaps", "", s3_settings(part)).await;
    root.put_bytes(
        "elsewhere/x",
        Bytes::from_static(b"outside the prefix"),
        PutOptions::default(),
    )
    .await
    .unwrap();

    let body = Bytes::from_static(b"{\"chain\":\"ghostnet\"}");
    let put = store
        .put_bytes(
            "meta/one.json",
            body.clone(),
            PutOptions {
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(put.key, "meta/one.json");
    assert_eq!(put.size, body.len() as u64);
    assert!(!put.version.0.is_empty());
    assert_eq!(
        store.url("meta/one.json"),
        "s3://snaps/tezos/ghostnet/meta/one.json"
    );

    let head = store.head("meta/one.json").await.unwrap().expect("present");
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.version, put.version);
    assert_eq!(head.content_type.as_deref(), Some("application/json"));
    // The prefix is real on the server.
    assert!(root
        .head("tezos/ghostnet/meta/one.json")
        .await
        .unwrap()
        .is_some());

    let (got, meta) = store.get_bytes("meta/one.json").await.unwrap();
    assert_eq!(got, body);
    assert_eq!(meta.version, put.version);

    // Two parts and a bit: a multipart upload.
    let streamed = data(2 * part as usize + 7, 1);
    let m = store
        .put_stream(
            "data/blob",
            stream_of(streamed.clone(), 10_000),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(m.size, streamed.len() as u64);
    let mut s = store.get_stream("data/blob").await.unwrap();
    let mut back = Vec::new();
    use futures::StreamExt;
    while let Some(chunk) = s.next().await {
        back.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(sha256(&back), sha256(&streamed));

    let mut keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["data/blob", "meta/one.json"]);
    let listed = store.list("meta/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, body.len() as u64);

    store.delete("meta/one.json").await.unwrap();
    assert!(store.head("meta/one.json").await.unwrap().is_none());
    store
        .delete("meta/one.json")
        .await
        .expect("deleting an absent object is not an error");
    match store.get_bytes("meta/one.json").await {
        Err(StoreError::NotFound { url }) => {
            assert_eq!(url, "s3://snaps/tezos/ghostnet/meta/one.json")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// IfAbsent and IfMatch, single PUT and multipart.
async fn preconditions(endpoint: &str, part: u64, s3s: Option<&Server>) {
    let store = s3_store(endpoint, "locks", "", s3_settings(part)).await;
    let first = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"v1"),
            opts(Precondition::IfAbsent),
        )
        .await
        .unwrap();
    match store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"v2"),
            opts(Precondition::IfAbsent),
        )
        .await
    {
        Err(StoreError::PreconditionFailed { url }) => assert_eq!(url, "s3://locks/base.json"),
        other => {
            panic!("IfAbsent over an existing object: expected PreconditionFailed, got {other:?}")
        }
    }
    let second = store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"v2"),
            opts(Precondition::IfMatch(first.version.clone())),
        )
        .await
        .unwrap();
    assert_ne!(second.version, first.version);
    match store
        .put_bytes(
            "base.json",
            Bytes::from_static(b"v3"),
            opts(Precondition::IfMatch(first.version.clone())),
        )
        .await
    {
        Err(StoreError::PreconditionFailed { .. }) => {}
        other => panic!("IfMatch on a stale version: expected PreconditionFailed, got {other:?}"),
    }
    assert_eq!(
        store.get_bytes("base.json").await.unwrap().0,
        Bytes::from_static(b"v2")
    );

    // Multipart (3+ parts) under preconditions.
    let big = data(3 * part as usize + 100, 2);
    match store.put_stream("base.json", stream_of(big.clone(), 4096), opts(Precondition::IfAbsent)).await {
        Err(StoreError::PreconditionFailed { .. }) => {}
        other => panic!("multipart IfAbsent over an existing object: expected PreconditionFailed, got {other:?}"),
    }
    let m = store
        .put_stream(
            "base.json",
            stream_of(big.clone(), 4096),
            opts(Precondition::IfMatch(second.version.clone())),
        )
        .await
        .unwrap();
    assert_eq!(m.size, big.len() as u64);
    assert_eq!(
        sha256(&store.get_bytes("base.json").await.unwrap().0),
        sha256(&big)
    );
    match s3s {
        None => assert!(open_uploads(&store).await.is_empty()),
        Some(server) => assert!(s3s_open_upload_files(server).is_empty()),
    }
}

/// A stream of `parts - 1` whole parts and a bit, 3 parts in flight.
async fn multipart(
    endpoint: &str,
    part: u64,
    parts: i32,
) -> (S3Store, objstore::ObjectMeta, [u8; 32]) {
    let store = s3_store(endpoint, "artifacts", "mp", s3_settings(part)).await;
    let big = data((parts as usize - 1) * part as usize + 123, 3);
    let meta = store
        .put_stream(
            "snap.tar.lz4",
            stream_of(big.clone(), 3000),
            PutOptions {
                content_type: Some("application/x-lz4".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(meta.size, big.len() as u64);
    let (back, _) = store.get_bytes("snap.tar.lz4").await.unwrap();
    assert_eq!(back.len(), big.len());
    assert_eq!(sha256(&back), sha256(&big));
    let head = store.head("snap.tar.lz4").await.unwrap().unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/x-lz4"));
    let first_part = store
        .client()
        .head_object()
        .bucket("artifacts")
        .key("mp/snap.tar.lz4")
        .part_number(1)
        .send()
        .await;
    if let Ok(p) = first_part {
        if let Some(n) = p.parts_count() {
            assert_eq!(n, parts, "parts of the object");
        }
    }
    (store, meta, sha256(&big))
}

#[tokio::test]
async fn moto_lifecycle() {
    let Some(server) = start_moto() else { return };
    lifecycle(&server.endpoint(), 64 * KIB as u64).await;
}

#[tokio::test]
async fn s3s_fs_lifecycle() {
    let Some(server) = start_s3s_fs() else { return };
    lifecycle(&server.endpoint(), S3S_PART).await;
}

#[tokio::test]
async fn moto_enforces_preconditions() {
    let Some(server) = start_moto() else { return };
    preconditions(&server.endpoint(), 16 * KIB as u64, None).await;
}

#[tokio::test]
async fn s3s_fs_enforces_preconditions() {
    let Some(server) = start_s3s_fs() else { return };
    preconditions(&server.endpoint(), S3S_PART, Some(&server)).await;
}

#[tokio::test]
async fn moto_multipart() {
    let Some(server) = start_moto() else { return };
    let (store, meta, sha) = multipart(&server.endpoint(), 64 * KIB as u64, 17).await;
    assert!(open_uploads(&store).await.is_empty());
    // moto returns the composite SHA-256 of the parts, so the whole-object digest is confirmed.
    eprintln!("moto multipart sha256 confirmed: {}", meta.sha256.is_some());
    if let Some(s) = meta.sha256 {
        assert_eq!(s, sha);
    }
}

#[tokio::test]
async fn s3s_fs_multipart() {
    let Some(server) = start_s3s_fs() else { return };
    let (_store, meta, sha) = multipart(&server.endpoint(), S3S_PART, 3).await;
    assert!(s3s_open_upload_files(&server).is_empty());
    eprintln!(
        "s3s-fs multipart sha256 confirmed: {}",
        meta.sha256.is_some()
    );
    if let Some(s) = meta.sha256 {
        assert_eq!(s, sha);
    }
}

#[tokio::test]
async fn s3s_fs_attests_the_sha256_of_a_single_put() {
    let Some(server) = start_s3s_fs() else { return };
    let store = s3_store(
        &server.endpoint(),
        "bucket-one",
        "",
        s3_settings(64 * KIB as u64),
    )
    .await;
    let body = data(10 * KIB, 4);
    let m = store
        .put_bytes("x", body.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        m.sha256,
        Some(sha256(&body)),
        "s3s-fs returns the checksum on HEAD"
    );
    assert_eq!(
        store.head("x").await.unwrap().unwrap().sha256,
        Some(sha256(&body))
    );
}

#[tokio::test]
async fn moto_single_put_sha256() {
    let Some(server) = start_moto() else { return };
    let store = s3_store(
        &server.endpoint(),
        "bucket-one",
        "",
        s3_settings(64 * KIB as u64),
    )
    .await;
    let body = data(10 * KIB, 4);
    let m = store
        .put_bytes("x", body.clone(), PutOptions::default())
        .await
        .unwrap();
    eprintln!(
        "moto single PUT sha256 confirmed: {:?}",
        m.sha256.map(hex::encode)
    );
    // Whatever moto attests must be the digest of what was sent.
    if let Some(s) = m.sha256 {
        assert_eq!(s, sha256(&body));
    }
}

#[tokio::test]
async fn s3s_fs_stores_the_website_redirect() {
    let Some(server) = start_s3s_fs() else { return };
    let store = s3_store(&server.endpoint(), "web", "", s3_settings(64 * KIB as u64)).await;
    let o = PutOptions {
        website_redirect: Some("/ghostnet/snap-42.tar.lz4".into()),
        ..Default::default()
    };
    store
        .put_bytes("ghostnet/latest", Bytes::new(), o)
        .await
        .unwrap();
    let h = store
        .client()
        .head_object()
        .bucket("web")
        .key("ghostnet/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.website_redirect_location(),
        Some("/ghostnet/snap-42.tar.lz4")
    );
}

#[tokio::test]
async fn s3s_fs_rejects_a_wrong_secret_as_access_denied() {
    let Some(server) = start_s3s_fs() else { return };
    let _ = s3_store(
        &server.endpoint(),
        "private",
        "",
        s3_settings(64 * KIB as u64),
    )
    .await;
    let mut settings = s3_settings(64 * KIB as u64);
    settings.credentials.as_mut().unwrap().secret_access_key = "not-the-secret".into();
    let store = S3Store::open_with("private", "", &s3_config(&server.endpoint()), settings)
        .await
        .unwrap();
    match store
        .put_bytes("x", Bytes::from_static(b"x"), PutOptions::default())
        .await
    {
        Err(StoreError::AccessDenied { url, detail }) => {
            assert_eq!(url, "s3://private/x");
            assert!(detail.contains("SignatureDoesNotMatch"), "{detail}");
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    match store.list("").await {
        Err(StoreError::AccessDenied { .. }) => {}
        other => panic!("expected AccessDenied on list, got {other:?}"),
    }
}

/// `writes_check_bucket`: false for s3s-fs 0.14.1, whose PUT creates a missing bucket's directory.
async fn missing_bucket(endpoint: &str, writes_check_bucket: bool) {
    let store = S3Store::open_with(
        "no-such-bucket",
        "p",
        &s3_config(endpoint),
        s3_settings(5 * 1024 * 1024),
    )
    .await
    .unwrap();
    match store.list("").await {
        Err(StoreError::NoSuchBucket { bucket }) => assert_eq!(bucket, "no-such-bucket"),
        other => panic!("list of a missing bucket: expected NoSuchBucket, got {other:?}"),
    }
    match store.get_bytes("x").await {
        Err(StoreError::NoSuchBucket { .. }) | Err(StoreError::NotFound { .. }) => {}
        other => {
            panic!("get from a missing bucket: expected NoSuchBucket or NotFound, got {other:?}")
        }
    }
    if !writes_check_bucket {
        return;
    }
    match store
        .put_bytes("x", Bytes::from_static(b"x"), PutOptions::default())
        .await
    {
        Err(StoreError::NoSuchBucket { bucket }) => assert_eq!(bucket, "no-such-bucket"),
        other => panic!("put into a missing bucket: expected NoSuchBucket, got {other:?}"),
    }
    match store
        .put_stream(
            "big",
            stream_of(data(11 * 1024 * KIB, 5), 65536),
            PutOptions::default(),
        )
        .await
    {
        Err(StoreError::NoSuchBucket { .. }) => {}
        other => panic!("multipart into a missing bucket: expected NoSuchBucket, got {other:?}"),
    }
}

#[tokio::test]
async fn moto_missing_bucket() {
    let Some(server) = start_moto() else { return };
    missing_bucket(&server.endpoint(), true).await;
}

#[tokio::test]
async fn s3s_fs_missing_bucket() {
    let Some(server) = start_s3s_fs() else { return };
    missing_bucket(&server.endpoint(), false).await;
}

/// A wrong `x-amz-checksum-sha256` sent directly: s3s-fs answers BadDigest. Unlike AWS it has
/// already written the body by then (0.14.1 verifies after writing), so the object is there:
/// asserted so that a fixed s3s-fs shows up here and the notes get updated.
#[tokio::test]
async fn s3s_fs_rejects_a_wrong_sha256_checksum() {
    let Some(server) = start_s3s_fs() else { return };
    let store = s3_store(&server.endpoint(), "sums", "", s3_settings(64 * KIB as u64)).await;
    use base64::Engine;
    let wrong = base64::engine::general_purpose::STANDARD.encode(sha256(b"something else"));
    let err = store
        .client()
        .put_object()
        .bucket("sums")
        .key("x")
        .checksum_sha256(wrong)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"the real body",
        ))
        .send()
        .await
        .expect_err("a wrong checksum must be rejected");
    use aws_sdk_s3::error::ProvideErrorMetadata;
    assert_eq!(
        err.code(),
        Some("BadDigest"),
        "{}",
        aws_sdk_s3::error::DisplayErrorContext(&err)
    );
    let left = store.get_bytes("x").await.map(|(b, _)| b).ok();
    assert_eq!(
        left.as_deref(),
        Some(&b"the real body"[..]),
        "s3s-fs 0.14.1 keeps a body it rejected"
    );
}

/// Moto accepts a wrong checksum silently (this is why SHA-256 is only trusted when a server
/// attests it, and why the checksum tests run on s3s-fs).
#[tokio::test]
async fn moto_accepts_a_wrong_sha256_checksum() {
    let Some(server) = start_moto() else { return };
    let store = s3_store(&server.endpoint(), "sums", "", s3_settings(64 * KIB as u64)).await;
    use base64::Engine;
    let wrong = base64::engine::general_purpose::STANDARD.encode(sha256(b"something else"));
    let r = store
        .client()
        .put_object()
        .bucket("sums")
        .key("x")
        .checksum_sha256(wrong)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"the real body",
        ))
        .send()
        .await;
    eprintln!(
        "moto, wrong checksum: {:?}",
        r.as_ref()
            .map(|_| ())
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
    );
    assert!(
        r.is_ok(),
        "moto 5.2.5 accepted a wrong checksum before; it now rejects it: update FACTS.md"
    );
}

//! Multipart uploads to moto through a fault-injecting proxy: connections reset mid-part,
//! 500/503 answers, stalls longer than the read timeout, answers lost after the server acted,
//! bits flipped in flight, and cancellation. Whatever happens, the outcome is either a whole,
//! readable object whose attested SHA-256 is true, or a typed error with nothing left behind:
//! no object at the key and no multipart upload open on the server (moto lists them).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::proxy::{get, Fault, FaultProxy, Request};
use common::*;
use futures::StreamExt;
use objstore::s3::S3Store;
use objstore::{ObjectMeta, ObjectStore, PutOptions, StoreError};
use tokio_util::sync::CancellationToken;

const PART: u64 = 64 * 1024;
/// Ten parts, the last one short.
const LEN: usize = 9 * PART as usize + 12_345;
const KEY: &str = "ghostnet-rolling-7.tar.lz4";

struct Rig {
    _moto: Server,
    proxy: FaultProxy,
    /// Through the proxy.
    store: S3Store,
    /// Straight to moto, to inspect what the server holds.
    direct: S3Store,
}

async fn rig(plan: impl Fn(&Request) -> Fault + Send + Sync + 'static) -> Option<Rig> {
    let moto = start_moto()?;
    let direct = s3_store(&moto.endpoint(), "snaps", "ghostnet", s3_settings(PART)).await;
    let proxy = FaultProxy::start(moto.addr(), plan).await;
    let store = S3Store::open_with(
        "snaps",
        "ghostnet",
        &s3_config(&proxy.endpoint()),
        s3_settings(PART),
    )
    .await
    .expect("opening the proxied store");
    Some(Rig {
        _moto: moto,
        proxy,
        store,
        direct,
    })
}

/// A fault on the first attempt of each request `pick` selects (keyed by what `pick` returns),
/// every later attempt passes.
fn first_attempt(
    pick: impl Fn(&Request) -> Option<(String, Fault)> + Send + Sync + 'static,
) -> impl Fn(&Request) -> Fault + Send + Sync + 'static {
    let seen = Mutex::new(HashSet::new());
    move |r: &Request| match pick(r) {
        Some((id, fault)) if seen.lock().expect("plan lock").insert(id.clone()) => fault,
        _ => Fault::Pass,
    }
}

async fn upload(
    store: &S3Store,
    body: &Bytes,
    cancel: Option<CancellationToken>,
) -> objstore::Result<ObjectMeta> {
    store
        .put_stream(
            KEY,
            stream_of(body.clone(), 10_000),
            PutOptions {
                content_type: Some("application/x-lz4".into()),
                cancel,
                ..Default::default()
            },
        )
        .await
}

/// The object is whole, and the SHA-256 the store returned is the digest of what the server holds.
async fn assert_whole(rig: &Rig, body: &Bytes, meta: &ObjectMeta) {
    assert_eq!(meta.size, body.len() as u64);
    let mut got = Vec::with_capacity(body.len());
    let mut s = rig.direct.get_stream(KEY).await.expect("reading back");
    while let Some(b) = s.next().await {
        got.extend_from_slice(&b.expect("reading back"));
    }
    assert!(
        got == body[..],
        "the stored object differs from what was sent"
    );
    if let Some(attested) = meta.sha256 {
        assert_eq!(
            attested,
            sha256(&got),
            "attested SHA-256 is the stored bytes'"
        );
    }
    assert_no_open_uploads(rig).await;
}

async fn assert_no_open_uploads(rig: &Rig) {
    assert_eq!(
        open_uploads(&rig.direct).await,
        Vec::<String>::new(),
        "multipart uploads left open on the server"
    );
}

/// Nothing at the key, nothing else in the prefix, nothing open.
async fn assert_nothing_left(rig: &Rig) {
    assert!(
        rig.direct.head(KEY).await.expect("HEAD").is_none(),
        "object left at the key"
    );
    let listed: Vec<String> = rig
        .direct
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(listed.is_empty(), "objects left in the prefix: {listed:?}");
    assert_no_open_uploads(rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_part_are_retried() {
    // The first attempt of every part dies after 20 KB of its 64 KiB body.
    let plan = first_attempt(|r| {
        r.part_number()
            .map(|n| (n.to_string(), Fault::ResetAfter(20_000)))
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 1);
    let meta = upload(&rig.store, &body, None)
        .await
        .expect("retries carry the upload through resets");
    eprintln!("{}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.resets), 10, "one reset per part");
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_retried() {
    // 500 on the first attempt of odd parts and of the completion, 503 SlowDown on even parts.
    let plan = first_attempt(|r| {
        if let Some(n) = r.part_number() {
            let code = if n % 2 == 1 { 500 } else { 503 };
            return Some((n.to_string(), Fault::Status(code)));
        }
        r.is_complete_multipart()
            .then(|| ("complete".into(), Fault::Status(500)))
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 2);
    let meta = upload(&rig.store, &body, None)
        .await
        .expect("retries carry the upload through 5xx");
    eprintln!("{}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.statuses), 11);
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_the_read_timeout_is_retried() {
    // The first attempt of part 2 gets no answer for 6x the read timeout.
    let stall = s3_settings(PART).read_timeout * 6;
    let plan = first_attempt(move |r| {
        (r.part_number() == Some(2)).then(|| ("2".into(), Fault::Stall(stall)))
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 3);
    let started = Instant::now();
    let meta = upload(&rig.store, &body, None)
        .await
        .expect("the stalled part is retried");
    eprintln!(
        "{}; upload took {:.1} s with a {:?} read timeout",
        rig.proxy.stats,
        started.elapsed().as_secs_f64(),
        s3_settings(PART).read_timeout
    );
    assert_eq!(get(&rig.proxy.stats.stalls), 1);
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_leaves_no_orphan_upload() {
    // moto creates the upload but the client never hears; its retry creates a second one.
    let plan = first_attempt(|r| {
        r.is_create_multipart()
            .then(|| ("create".into(), Fault::LoseResponse))
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 4);
    let meta = upload(&rig.store, &body, None)
        .await
        .expect("the create is retried");
    eprintln!("{}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.lost), 1);
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_complete_answer_is_resolved() {
    // moto completes the object but the client never hears; the retried completion finds no
    // upload. The outcome must still be one of the two allowed: the whole object and success,
    // or an error and no object.
    let plan = first_attempt(|r| {
        r.is_complete_multipart()
            .then(|| ("complete".into(), Fault::LoseResponse))
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 5);
    let outcome = upload(&rig.store, &body, None).await;
    eprintln!("{}; outcome {outcome:?}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.lost), 1);
    match outcome {
        Ok(meta) => assert_whole(&rig, &body, &meta).await,
        Err(e) => {
            assert!(
                e.to_string().contains(KEY),
                "the error names the object: {e}"
            );
            assert_nothing_left(&rig).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_complete_that_finds_no_upload_accepts_the_finished_object() {
    // As AWS may answer a completion retried after a lost answer: the upload is gone (it
    // became the object), NoSuchUpload.
    let completes = std::sync::atomic::AtomicU64::new(0);
    let plan = move |r: &Request| {
        if !r.is_complete_multipart() {
            return Fault::Pass;
        }
        match completes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Fault::LoseResponse,
            _ => Fault::Status(404),
        }
    };
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 13);
    let meta = upload(&rig.store, &body, None)
        .await
        .expect("the completed object is recognised");
    eprintln!("{}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.lost), 1);
    assert_eq!(get(&rig.proxy.stats.statuses), 1);
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_cannot_be_confirmed_is_removed() {
    // Every HEAD fails: the upload goes through but the store cannot check what it holds, so
    // the object must not stay (an artifact is verified or absent).
    let plan = |r: &Request| {
        if r.method == "HEAD" {
            Fault::Status(500)
        } else {
            Fault::Pass
        }
    };
    let Some(rig) = rig(plan).await else { return };
    for (what, len) in [("multipart", LEN), ("single PUT", 1000)] {
        let body = data(len, 14);
        let err = upload(&rig.store, &body, None)
            .await
            .expect_err("the confirmation cannot succeed");
        eprintln!("{what}: {}; error: {err}", rig.proxy.stats);
        assert!(err.to_string().contains(KEY), "{err}");
        assert_nothing_left(&rig).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_always_fails_is_a_clean_error() {
    let plan = |r: &Request| {
        if r.part_number() == Some(4) {
            Fault::Status(500)
        } else {
            Fault::Pass
        }
    };
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 6);
    let err = upload(&rig.store, &body, None)
        .await
        .expect_err("part 4 never gets through");
    eprintln!("{}; error: {err}", rig.proxy.stats);
    match &err {
        StoreError::Io { url, detail } => {
            assert_eq!(url, &format!("s3://snaps/ghostnet/{KEY}"));
            assert!(
                detail.contains("InternalError") && detail.contains("500"),
                "{detail}"
            );
        }
        other => panic!("expected an I/O error naming the object, got {other:?}"),
    }
    // Five attempts (the retry setting) of part 4.
    assert_eq!(get(&rig.proxy.stats.statuses), 5);
    assert_nothing_left(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_always_stalls_is_a_clean_error() {
    let plan = |r: &Request| {
        if r.part_number() == Some(3) {
            Fault::Stall(Duration::from_secs(120))
        } else {
            Fault::Pass
        }
    };
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 7);
    let started = Instant::now();
    let err = upload(&rig.store, &body, None)
        .await
        .expect_err("part 3 never gets an answer");
    eprintln!(
        "{}; gave up after {:.1} s: {err}",
        rig.proxy.stats,
        started.elapsed().as_secs_f64()
    );
    match &err {
        StoreError::Io { url, detail } => {
            assert!(url.ends_with(KEY), "{url}");
            assert!(
                detail.contains("no answer from the server after 5 attempt(s)")
                    && detail.contains("timeout"),
                "{detail}"
            );
        }
        other => panic!("expected an I/O error naming the object, got {other:?}"),
    }
    assert_nothing_left(&rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_upload_aborts_it() {
    let token = CancellationToken::new();
    let t = token.clone();
    let cancelled_at = Arc::new(Mutex::new(None::<Instant>));
    let at = cancelled_at.clone();
    // Part 3's first attempt triggers the cancellation and hangs, as a slow link would.
    let plan = first_attempt(move |r| {
        (r.part_number() == Some(3)).then(|| {
            *at.lock().expect("lock") = Some(Instant::now());
            t.cancel();
            ("3".into(), Fault::Stall(Duration::from_secs(60)))
        })
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 8);
    let err = upload(&rig.store, &body, Some(token))
        .await
        .expect_err("cancelled");
    let took = cancelled_at.lock().expect("lock").map(|t| t.elapsed());
    eprintln!(
        "{}; returned {took:?} after the cancellation: {err}",
        rig.proxy.stats
    );
    assert!(
        matches!(err, StoreError::Cancelled { ref url } if url.ends_with(KEY)),
        "{err:?}"
    );
    assert_nothing_left(&rig).await;
}

/// A cancellation that fires on a timer once a request is on its way, while the fault proxy
/// holds that request's answer: the server acts first, the client hears nothing yet.
fn cancel_soon(t: &CancellationToken) {
    let t = t.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        t.cancel();
    });
}

/// Cancelling while CompleteMultipartUpload is on the wire: the server may have made the object
/// already, and aborting would find no upload and leave it. The store finishes the call and
/// reports the object it made (the catalog removes an artifact it no longer wants); it never
/// says "cancelled" while an object it wrote stays behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_the_completion_reports_the_object_made() {
    let token = CancellationToken::new();
    let t = token.clone();
    let plan = first_attempt(move |r| {
        r.is_complete_multipart().then(|| {
            cancel_soon(&t);
            (
                "complete".into(),
                Fault::DelayResponse(Duration::from_secs(2)),
            )
        })
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 9);
    let meta = upload(&rig.store, &body, Some(token.clone()))
        .await
        .expect("the completion the server performed is reported");
    eprintln!("{}", rig.proxy.stats);
    assert!(token.is_cancelled());
    assert_eq!(get(&rig.proxy.stats.delays), 1);
    assert_whole(&rig, &body, &meta).await;
}

/// The same for a single PUT (objects below the part size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_a_single_put_reports_the_object_made() {
    let token = CancellationToken::new();
    let t = token.clone();
    let plan = first_attempt(move |r| {
        (r.method == "PUT" && r.part_number().is_none()).then(|| {
            cancel_soon(&t);
            ("put".into(), Fault::DelayResponse(Duration::from_secs(2)))
        })
    });
    let Some(rig) = rig(plan).await else { return };
    let body = data(PART as usize / 2, 13);
    let meta = upload(&rig.store, &body, Some(token.clone()))
        .await
        .expect("the PUT the server performed is reported");
    assert!(token.is_cancelled());
    assert_eq!(get(&rig.proxy.stats.delays), 1);
    assert_whole(&rig, &body, &meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bits_flipped_in_flight_are_never_attested() {
    // moto does not check x-amz-checksum-sha256, so a corrupted part may be stored; the store
    // must then not claim the SHA-256 it sent (the catalog re-reads what is not attested).
    let plan =
        first_attempt(|r| (r.part_number() == Some(2)).then(|| ("2".into(), Fault::Corrupt(1000))));
    let Some(rig) = rig(plan).await else { return };
    let body = data(LEN, 9);
    let outcome = upload(&rig.store, &body, None).await;
    eprintln!("{}; outcome {outcome:?}", rig.proxy.stats);
    assert_eq!(get(&rig.proxy.stats.corruptions), 1);
    match outcome {
        Ok(meta) => {
            let (held, _) = rig.direct.get_bytes(KEY).await.expect("read back");
            if let Some(attested) = meta.sha256 {
                assert_eq!(
                    attested,
                    sha256(&held),
                    "the store attested a digest the object does not have"
                );
            }
            assert_no_open_uploads(&rig).await;
        }
        Err(e) => {
            assert!(matches!(e, StoreError::ChecksumMismatch { .. }), "{e:?}");
            assert_nothing_left(&rig).await;
        }
    }
}

// ------------------------------------------------------------------------------------- GCS

/// gcp-storage-emulator behind the proxy; `None` when not installed and skipping is allowed.
async fn gcs_rig(
    plan: impl Fn(&Request) -> Fault + Send + Sync + 'static,
) -> Option<(Server, FaultProxy, objstore::gcs::GcsStore)> {
    let emulator = start_gcs_emulator()?;
    let proxy = FaultProxy::start(emulator.addr(), plan).await;
    // 256 KiB chunks: a 700 KiB stream goes as a resumable upload of three chunks.
    let store = gcs_store(&proxy.endpoint(), "snaps", "ghostnet", 256 * 1024).await;
    Some((emulator, proxy, store))
}

/// The n-th (0-based) request with this method gets `fault`, every other passes.
fn nth(method: &'static str, n: u64, fault: Fault) -> impl Fn(&Request) -> Fault + Send + Sync {
    let seen = std::sync::atomic::AtomicU64::new(0);
    move |r: &Request| {
        if r.method == method && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == n {
            fault
        } else {
            Fault::Pass
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_small_upload_reset_midway_is_retried() {
    // POST 0 creates the bucket; POST 1 is the upload, reset after 100 bytes of its body.
    let Some((_emulator, proxy, store)) = gcs_rig(nth("POST", 1, Fault::ResetAfter(100))).await
    else {
        return;
    };
    let body = data(40_000, 10);
    let m = store
        .put_bytes(
            "ghostnet-rolling-latest.json",
            body.clone(),
            PutOptions::default(),
        )
        .await
        .expect("the upload is sent again");
    eprintln!("{}", proxy.stats);
    assert_eq!(get(&proxy.stats.resets), 1);
    assert_eq!(
        m.sha256,
        Some(sha256(&body)),
        "confirmed by the store's digests"
    );
    let (got, _) = store
        .get_bytes("ghostnet-rolling-latest.json")
        .await
        .expect("read back");
    assert!(got == body, "stored bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_chunk_reset_midway_is_resent() {
    // PUT 1 is the second chunk of the resumable upload.
    let Some((_emulator, proxy, store)) = gcs_rig(nth("PUT", 1, Fault::ResetAfter(100_000))).await
    else {
        return;
    };
    let body = data(700 * 1024 + 5, 11);
    let m = store
        .put_stream(KEY, stream_of(body.clone(), 10_000), PutOptions::default())
        .await
        .expect("the chunk is sent again");
    eprintln!("{}", proxy.stats);
    assert_eq!(get(&proxy.stats.resets), 1);
    assert_eq!(m.size, body.len() as u64);
    let (got, _) = store.get_bytes(KEY).await.expect("read back");
    assert!(got == body, "stored bytes differ");
    if let Some(s) = m.sha256 {
        assert_eq!(s, sha256(&got));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_cancel_during_a_stalled_chunk_leaves_nothing() {
    let token = CancellationToken::new();
    let t = token.clone();
    let stall = nth("PUT", 1, Fault::Stall(Duration::from_secs(60)));
    let plan = move |r: &Request| {
        let f = stall(r);
        if f != Fault::Pass {
            t.cancel();
        }
        f
    };
    let Some((_emulator, proxy, store)) = gcs_rig(plan).await else {
        return;
    };
    let body = data(700 * 1024 + 5, 12);
    let started = Instant::now();
    let err = store
        .put_stream(
            KEY,
            stream_of(body, 10_000),
            PutOptions {
                cancel: Some(token),
                ..Default::default()
            },
        )
        .await
        .expect_err("cancelled");
    eprintln!(
        "{}; returned after {:?}: {err}",
        proxy.stats,
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Cancelled { .. }), "{err:?}");
    assert!(
        store.head(KEY).await.expect("HEAD").is_none(),
        "nothing at the key"
    );
    assert!(
        store.list("").await.expect("list").is_empty(),
        "nothing in the prefix"
    );
}

/// GCS: a cancellation while the last chunk of a resumable upload (which makes the object) is on
/// the wire. The store reports the object rather than a cancellation that would leave it unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_cancelling_during_the_last_chunk_reports_the_object_made() {
    let token = CancellationToken::new();
    let t = token.clone();
    // PUTs: the three chunks of a 700 KiB upload in 256 KiB chunks; the third is the last.
    let delay = nth("PUT", 2, Fault::DelayResponse(Duration::from_secs(2)));
    let plan = move |r: &Request| {
        let f = delay(r);
        if f != Fault::Pass {
            cancel_soon(&t);
        }
        f
    };
    let Some((_emulator, proxy, store)) = gcs_rig(plan).await else {
        return;
    };
    let body = data(700 * 1024 + 5, 14);
    let meta = store
        .put_stream(
            KEY,
            stream_of(body.clone(), 10_000),
            PutOptions {
                cancel: Some(token.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("the object GCS made is reported");
    eprintln!("{}", proxy.stats);
    assert!(token.is_cancelled());
    assert_eq!(get(&proxy.stats.delays), 1);
    assert_eq!(meta.size, body.len() as u64);
    let (stored, _) = store.get_bytes(KEY).await.expect("the object exists");
    assert!(stored == body, "the stored object is what was sent");
}

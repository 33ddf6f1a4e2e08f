//! Objects are read as byte ranges over several connections, handed on in order; a range whose
//! connection dies is read again on its own (from where it broke off), never the whole object;
//! a range that keeps failing ends the read with an error naming the object and the range.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::proxy::{get, Fault, FaultProxy, Request};
use common::*;
use futures::StreamExt;
use objstore::s3::{S3Settings, S3Store};
use objstore::{ObjectStore, PutOptions, RangedReads};

const RANGE: u64 = 64 * 1024;
/// Ten ranges, the last one short.
const LEN: usize = 9 * RANGE as usize + 12_345;
const KEY: &str = "ghostnet-rolling-9.tar.lz4";

fn reads(attempts: u32) -> RangedReads {
    RangedReads {
        connections: 4,
        range_size: RANGE,
        attempts,
        backoff: Duration::from_millis(10),
    }
}

/// moto with one object, and a store reading it through a proxy that applies `plan` and records
/// the byte range of every GET of the object.
struct Rig {
    _moto: Server,
    proxy: FaultProxy,
    store: S3Store,
    body: Bytes,
    gets: Arc<Mutex<Vec<(u64, u64)>>>,
}

async fn rig(
    settings: S3Settings,
    plan: impl Fn(&Request) -> Fault + Send + Sync + 'static,
) -> Option<Rig> {
    let moto = start_moto()?;
    let direct = s3_store(&moto.endpoint(), "snaps", "ghostnet", s3_settings(RANGE)).await;
    let body = data(LEN, 21);
    direct
        .put_stream(KEY, stream_of(body.clone(), 50_000), PutOptions::default())
        .await
        .expect("upload");
    let gets = Arc::new(Mutex::new(Vec::new()));
    let seen = gets.clone();
    let proxy = FaultProxy::start(moto.addr(), move |r: &Request| {
        if r.method == "GET" && r.target.contains(KEY) {
            if let Some(range) = r.byte_range() {
                seen.lock().expect("lock").push(range);
            }
        }
        plan(r)
    })
    .await;
    let store = S3Store::open_with("snaps", "ghostnet", &s3_config(&proxy.endpoint()), settings)
        .await
        .expect("opening the proxied store");
    Some(Rig {
        _moto: moto,
        proxy,
        store,
        body,
        gets,
    })
}

async fn read_all(store: &S3Store) -> std::io::Result<Vec<u8>> {
    let mut s = store.get_stream(KEY).await.map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

fn settings(attempts: u32, sdk_attempts: u32) -> S3Settings {
    S3Settings {
        reads: reads(attempts),
        max_attempts: sdk_attempts,
        ..s3_settings(RANGE)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_is_read_in_ranges_in_order() {
    let Some(rig) = rig(settings(3, 3), |_| Fault::Pass).await else {
        return;
    };
    let got = read_all(&rig.store).await.expect("read");
    assert!(got == rig.body[..], "the bytes differ from the object's");
    let mut gets = rig.gets.lock().expect("lock").clone();
    gets.sort();
    let want: Vec<(u64, u64)> = (0..10)
        .map(|i| (i * RANGE, ((i + 1) * RANGE).min(LEN as u64) - 1))
        .collect();
    assert_eq!(gets, want, "one GET per range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_at_ninety_percent_rereads_only_that_range() {
    // The first GET of the ninth range (bytes 90% in) dies 30 kB into its answer.
    let hit = std::sync::atomic::AtomicBool::new(false);
    let plan = move |r: &Request| {
        let ninth = r.byte_range().is_some_and(|(a, _)| a == 8 * RANGE);
        if r.method == "GET" && ninth && !hit.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Fault::ResetResponseAfter(30_000)
        } else {
            Fault::Pass
        }
    };
    let Some(rig) = rig(settings(3, 1), plan).await else {
        return;
    };
    let got = read_all(&rig.store)
        .await
        .expect("the reset range is retried");
    eprintln!("{}", rig.proxy.stats);
    assert!(got == rig.body[..], "the bytes differ from the object's");
    assert_eq!(get(&rig.proxy.stats.resets), 1);
    let gets = rig.gets.lock().expect("lock").clone();
    assert_eq!(gets.len(), 11, "ten ranges and one retry: {gets:?}");
    for i in 0..10u64 {
        let end = ((i + 1) * RANGE).min(LEN as u64) - 1;
        let n = gets.iter().filter(|(_, e)| *e == end).count();
        assert_eq!(n, if i == 8 { 2 } else { 1 }, "range {i}: {gets:?}");
    }
    // The retry starts where the broken answer stopped, inside the ninth range.
    let retry = gets
        .iter()
        .filter(|(_, e)| *e == 9 * RANGE - 1)
        .map(|(a, _)| *a)
        .max()
        .expect("retry");
    assert!(
        (8 * RANGE..8 * RANGE + 30_000).contains(&retry),
        "retry from {retry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_that_keeps_failing_names_the_object_and_the_range() {
    let plan = |r: &Request| {
        // Every attempt at the fourth range, resumed or not.
        if r.method == "GET" && r.byte_range().is_some_and(|(_, e)| e == 4 * RANGE - 1) {
            Fault::ResetResponseAfter(20_000)
        } else {
            Fault::Pass
        }
    };
    let Some(rig) = rig(settings(3, 1), plan).await else {
        return;
    };
    let Err(err) = read_all(&rig.store).await else {
        panic!("a range that always fails cannot be read");
    };
    let msg = err.to_string();
    eprintln!("{}; {msg}", rig.proxy.stats);
    assert!(msg.contains(&format!("s3://snaps/ghostnet/{KEY}")), "{msg}");
    assert!(
        msg.contains(&format!("bytes={}-{}", 3 * RANGE, 4 * RANGE - 1)),
        "{msg}"
    );
    assert!(msg.contains("3 attempt(s)"), "{msg}");
    assert_eq!(get(&rig.proxy.stats.resets), 3, "bounded attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_a_reset_range_is_reread_alone() {
    let Some(emulator) = start_gcs_emulator() else {
        return;
    };
    let writer = gcs_store(&emulator.endpoint(), "snaps", "ghostnet", 256 * 1024).await;
    let body = data(LEN, 31);
    writer
        .put_stream(KEY, stream_of(body.clone(), 50_000), PutOptions::default())
        .await
        .expect("upload");
    // Every GET of the object is recorded; the first one of the ninth range dies 30 kB in.
    let gets = Arc::new(Mutex::new(Vec::new()));
    let (seen, hit) = (gets.clone(), std::sync::atomic::AtomicBool::new(false));
    let proxy = FaultProxy::start(emulator.addr(), move |r: &Request| {
        let Some((a, e)) = r.byte_range().filter(|_| r.method == "GET") else {
            return Fault::Pass;
        };
        seen.lock().expect("lock").push((a, e));
        if a == 8 * RANGE && !hit.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Fault::ResetResponseAfter(30_000)
        } else {
            Fault::Pass
        }
    })
    .await;
    let config = objstore::StoreConfig {
        endpoint: Some(proxy.endpoint()),
        ..Default::default()
    };
    let settings = objstore::gcs::GcsSettings {
        reads: reads(3),
        max_attempts: 1,
        ..Default::default()
    };
    let reader = objstore::gcs::GcsStore::open_with("snaps", "ghostnet", &config, settings)
        .await
        .expect("open");
    let mut s = reader.get_stream(KEY).await.expect("get");
    let mut got = Vec::new();
    while let Some(b) = s.next().await {
        got.extend_from_slice(&b.expect("the reset range is retried"));
    }
    eprintln!("{}", proxy.stats);
    assert!(got == body[..], "the bytes differ from the object's");
    assert_eq!(get(&proxy.stats.resets), 1);
    let gets = gets.lock().expect("lock").clone();
    assert_eq!(gets.len(), 11, "ten ranges and one retry: {gets:?}");
    let ninth = gets.iter().filter(|(_, e)| *e == 9 * RANGE - 1).count();
    assert_eq!(ninth, 2, "{gets:?}");
}

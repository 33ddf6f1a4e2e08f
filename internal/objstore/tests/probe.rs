//! The conditional-write probe against real servers: s3s-fs and moto enforce both kinds, the
//! GCS emulator neither, and moto behind a proxy that strips `If-Match` / `If-None-Match`
//! neither. The probe object never stays behind. Prints the probe's cost per server
//! (`cargo test -p objstore --test probe -- --nocapture`).

mod common;

use std::time::Instant;

use acceptance_tests::header_proxy::StripConditionsProxy;
use common::*;
use objstore::probe::{probe, Enforcement, PROBE_KEY_PREFIX};
use objstore::ObjectStore;

const BOTH: Enforcement = Enforcement {
    if_absent: true,
    if_match: true,
};
const NEITHER: Enforcement = Enforcement {
    if_absent: false,
    if_match: false,
};

async fn check(label: &str, store: &dyn ObjectStore, expected: Enforcement) {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let e = probe(store).await.expect("probe");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(e, expected, "{label}");
    }
    let left: Vec<String> = store
        .list(PROBE_KEY_PREFIX)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(left.is_empty(), "{label}: probe objects left: {left:?}");
    times.sort_by(f64::total_cmp);
    eprintln!(
        "{label}: probe {:.1} ms median of 5 (min {:.1}, max {:.1})",
        times[2], times[0], times[4]
    );
}

#[tokio::test]
async fn enforcing_s3_servers() {
    if let Some(server) = start_s3s_fs() {
        let store = s3_store(&server.endpoint(), "snaps", "p", s3_settings(5 << 20)).await;
        check("s3s-fs", &store, BOTH).await;
    }
    if let Some(server) = start_moto() {
        let store = s3_store(&server.endpoint(), "snaps", "p", s3_settings(5 << 20)).await;
        check("moto", &store, BOTH).await;
    }
}

#[tokio::test]
async fn moto_behind_a_proxy_stripping_conditions() {
    let Some(server) = start_moto() else { return };
    let proxy = StripConditionsProxy::start(server.addr());
    let store = s3_store(&proxy.endpoint(), "snaps", "p", s3_settings(5 << 20)).await;
    check("moto behind the stripping proxy", &store, NEITHER).await;
}

#[tokio::test]
async fn gcs_emulator() {
    let Some(server) = start_gcs_emulator() else {
        return;
    };
    let store = gcs_store(&server.endpoint(), "snaps", "p", 256 * 1024).await;
    check("gcp-storage-emulator", &store, NEITHER).await;
}

#[tokio::test]
async fn local_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = objstore::LocalStore::open(dir.path()).expect("local store");
    check("file://", &store, BOTH).await;
}

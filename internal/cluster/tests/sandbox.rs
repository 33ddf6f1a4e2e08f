//! Behaviour against a Kubernetes API server: the local sandbox always, and the real cluster of
//! `TESTNET_ACC_KUBECONFIG` for the scenarios that do not need a controller manager.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster::*;
use common::{acc_cluster, sandbox, unique};

macro_rules! with_sandbox {
    ($sb:ident, $c:ident) => {
        let Some($sb) = sandbox() else { return };
        let $c = $sb.cluster().await;
    };
}

macro_rules! with_acc {
    ($c:ident) => {
        let Some($c) = acc_cluster().await else {
            eprintln!("SKIPPED: TESTNET_ACC_KUBECONFIG not set");
            return;
        };
    };
}

// ---------------------------------------------------------------- connection

#[tokio::test]
async fn connect_from_kubeconfig_and_check() {
    with_sandbox!(sb, c);
    assert!(matches!(c.source(), Source::Kubeconfig { .. }));
    let v = c.check().await.expect("check");
    assert!(!v.git_version.is_empty());
    assert_eq!(c.url(), sb.url.trim_end_matches('/'));
}

#[tokio::test]
async fn connect_explicit_token_and_ca() {
    let Some(sb) = sandbox() else { return };
    let c = connect(&ConnectionConfig {
        host: Some(sb.url.clone()),
        token: Some(sb.token.clone()),
        cluster_ca_certificate: Some(sb.ca_pem()),
        ..Default::default()
    })
    .await
    .expect("connect");
    assert_eq!(c.source(), &Source::Explicit);
    c.check().await.expect("check with explicit token and CA");
    // An authenticated call, not just /version.
    assert_eq!(c.get_storage_class("nope").await.expect("get"), None);

    // Without the CA the server certificate cannot be verified: say so.
    let no_ca = connect(&ConnectionConfig {
        host: Some(sb.url.clone()),
        token: Some(sb.token.clone()),
        ..Default::default()
    })
    .await
    .expect("connect");
    match no_ca.check().await {
        Err(ClusterError::Unreachable { hint, .. }) => {
            assert!(hint.contains("cluster_ca_certificate"), "{hint}")
        }
        other => panic!("expected Unreachable with a TLS hint, got {other:?}"),
    }
    // insecure skips verification.
    let insecure = connect(&ConnectionConfig {
        host: Some(sb.url.clone()),
        token: Some(sb.token.clone()),
        insecure: true,
        ..Default::default()
    })
    .await
    .expect("connect");
    insecure.check().await.expect("insecure check");
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let Some(sb) = sandbox() else { return };
    // Explicit token overrides the kubeconfig's user.
    let c = connect(&ConnectionConfig {
        kubeconfig_paths: vec![sb.kubeconfig.clone()],
        token: Some("wrong".into()),
        ..Default::default()
    })
    .await
    .expect("connect");
    match c.check().await {
        Err(ClusterError::Unauthorized { url, .. }) => {
            assert_eq!(url, sb.url.trim_end_matches('/'))
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(matches!(
        c.get_storage_class("x").await,
        Err(ClusterError::Unauthorized { .. })
    ));
    assert!(matches!(
        c.read("default", "lock").await,
        Err(ClusterError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn unknown_context_and_unreachable() {
    let Some(sb) = sandbox() else { return };
    let e = connect(&ConnectionConfig {
        kubeconfig_paths: vec![sb.kubeconfig.clone()],
        context: Some("prod".into()),
        ..Default::default()
    })
    .await
    .expect_err("unknown context");
    match e {
        ClusterError::UnknownContext {
            context, available, ..
        } => {
            assert_eq!(context, "prod");
            assert_eq!(available, vec!["testnet-sandbox"]);
        }
        other => panic!("expected UnknownContext, got {other}"),
    }
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let c = connect(&ConnectionConfig {
        host: Some(format!("https://127.0.0.1:{port}")),
        token: Some("t".into()),
        insecure: true,
        ..Default::default()
    })
    .await
    .expect("connect builds without contacting the server");
    assert!(matches!(
        c.check().await,
        Err(ClusterError::Unreachable { .. })
    ));
}

// ---------------------------------------------------------------- storage classes

async fn storage_class_lifecycle(c: &Cluster) {
    let name = unique("sc");
    let (provisioner, parameters) = tier_preset(Cloud::Aws, Tier::Ssd);
    let mut spec = StorageClassSpec::new(&name, provisioner);
    spec.parameters = parameters;
    spec.labels.insert("testnet.io/network".into(), "t1".into());

    let created = c.create_storage_class(&spec).await.expect("create");
    assert_eq!(created.spec, spec);
    assert_eq!(
        created.spec.volume_binding_mode,
        VolumeBindingMode::WaitForFirstConsumer
    );
    assert!(matches!(
        c.create_storage_class(&spec).await,
        Err(ClusterError::AlreadyExists { .. })
    ));

    // Mutable fields change in place.
    let mut updated = spec.clone();
    updated.allow_volume_expansion = true;
    updated.mount_options = vec!["noatime".into()];
    updated.annotations.insert("note".into(), "ssd tier".into());
    let after = c.update_storage_class(&updated).await.expect("update");
    assert_eq!(after.spec, updated);
    assert_ne!(after.resource_version, created.resource_version);
    assert_eq!(
        c.get_storage_class(&name)
            .await
            .expect("get")
            .map(|i| i.spec),
        Some(updated.clone())
    );
    assert!(c.expansion_allowed(&name).await.expect("expansion"));

    // Immutable fields need a replacement; nothing is sent.
    let mut replace = updated.clone();
    replace.parameters = tier_preset(Cloud::Aws, Tier::Standard).1;
    replace.reclaim_policy = ReclaimPolicy::Retain;
    match c.update_storage_class(&replace).await {
        Err(ClusterError::Immutable { fields, .. }) => {
            assert_eq!(fields, vec!["parameters", "reclaim_policy"])
        }
        other => panic!("expected Immutable, got {other:?}"),
    }
    // And the server agrees: a raw replace with new parameters is refused on `parameters`.
    {
        use k8s_openapi::api::storage::v1::StorageClass;
        let api: kube::Api<StorageClass> = kube::Api::all(c.client().clone());
        let mut raw = api.get(&name).await.expect("raw get");
        raw.parameters = Some(BTreeMap::from([("type".into(), "st1".into())]));
        match api.replace(&name, &Default::default(), &raw).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
                let causes = s.details.map(|d| d.causes).unwrap_or_default();
                assert!(
                    causes
                        .iter()
                        .any(|c| c.field == "parameters" && c.reason == "FieldValueForbidden"),
                    "{causes:?}"
                );
            }
            other => panic!("server accepted a parameters change: {other:?}"),
        }
    }

    assert!(c.delete_storage_class(&name).await.expect("delete"));
    assert!(!c.delete_storage_class(&name).await.expect("delete again"));
    assert_eq!(c.get_storage_class(&name).await.expect("get"), None);
    assert!(matches!(
        c.update_storage_class(&updated).await,
        Err(ClusterError::NotFound { .. })
    ));
}

#[tokio::test]
async fn sandbox_storage_class_lifecycle() {
    with_sandbox!(sb, c);
    storage_class_lifecycle(&c).await;
}

#[tokio::test]
async fn acc_storage_class_lifecycle() {
    with_acc!(c);
    storage_class_lifecycle(&c).await;
}

// ---------------------------------------------------------------- claims

fn claim(ns: &str, name: &str, class: &str, size: &str) -> ClaimSpec {
    ClaimSpec {
        namespace: ns.into(),
        name: name.into(),
        network: Some("t1".into()),
        role: Some("shared-state".into()),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        access_modes: vec![AccessMode::ReadWriteOnce],
        storage: parse_quantity(size).expect("quantity"),
        storage_class_name: Some(class.into()),
        volume_mode: None,
        volume_name: None,
        data_source: None,
        selector: None,
    }
}

async fn class(c: &Cluster, mode: VolumeBindingMode, expand: bool) -> String {
    let name = unique("sc");
    let mut spec = StorageClassSpec::new(&name, "kubernetes.io/no-provisioner");
    spec.volume_binding_mode = mode;
    spec.allow_volume_expansion = expand;
    c.create_storage_class(&spec).await.expect("create class");
    name
}

async fn namespace(c: &Cluster) -> String {
    let ns = unique("ns");
    assert!(c
        .ensure_namespace(&ns, &BTreeMap::new())
        .await
        .expect("ensure ns"));
    assert!(!c
        .ensure_namespace(&ns, &BTreeMap::new())
        .await
        .expect("ensure ns again"));
    ns
}

async fn wffc_claim_is_ready_while_pending(c: &Cluster) {
    let ns = namespace(c).await;
    let sc = class(c, VolumeBindingMode::WaitForFirstConsumer, false).await;
    let created = c
        .create_claim(&claim(&ns, "shared", &sc, "1Gi"))
        .await
        .expect("create claim");
    assert_eq!(created.labels[LABEL_MANAGED_BY], MANAGED_BY);
    assert_eq!(created.labels[LABEL_NETWORK], "t1");
    assert_eq!(created.requested, Some(Quantity::from_bytes(1 << 30)));
    let cancel = CancellationToken::new();
    let ready = c
        .wait_ready(&ns, "shared", Duration::from_secs(10), &cancel)
        .await
        .expect("WaitForFirstConsumer claim is ready while Pending");
    assert_eq!(ready.phase, "Pending");
    c.delete_storage_class(&sc).await.expect("cleanup class");
}

#[tokio::test]
async fn sandbox_wffc_claim_ready_while_pending() {
    with_sandbox!(sb, c);
    wffc_claim_is_ready_while_pending(&c).await;
}

#[tokio::test]
async fn acc_wffc_claim_ready_while_pending() {
    with_acc!(c);
    wffc_claim_is_ready_while_pending(&c).await;
}

#[tokio::test]
async fn immediate_claim_binds_and_resizes() {
    with_sandbox!(sb, c);
    let ns = namespace(&c).await;
    let sc = class(&c, VolumeBindingMode::Immediate, true).await;
    c.create_claim(&claim(&ns, "data", &sc, "1Gi"))
        .await
        .expect("create");
    assert!(matches!(
        c.create_claim(&claim(&ns, "data", &sc, "1Gi")).await,
        Err(ClusterError::AlreadyExists { .. })
    ));
    let cancel = CancellationToken::new();
    let bound = c
        .wait_ready(&ns, "data", Duration::from_secs(20), &cancel)
        .await
        .expect("binds");
    assert_eq!(bound.phase, "Bound");
    assert!(bound.bound_volume.is_some());
    assert!(bound.capacity.is_some_and(|q| q.bytes >= 1 << 30));

    let grown = c
        .resize_claim(&ns, "data", parse_quantity("2Gi").expect("q"))
        .await
        .expect("resize");
    assert_eq!(grown.requested, Some(Quantity::from_bytes(2 << 30)));
    assert!(matches!(
        c.resize_claim(&ns, "data", parse_quantity("1Gi").expect("q"))
            .await,
        Err(ClusterError::ShrinkNotAllowed { .. })
    ));
    // Same size: nothing to do.
    c.resize_claim(&ns, "data", parse_quantity("2048Mi").expect("q"))
        .await
        .expect("no-op resize");

    // A class without expansion refuses before the server is asked.
    let fixed = class(&c, VolumeBindingMode::Immediate, false).await;
    c.create_claim(&claim(&ns, "fixed", &fixed, "1Gi"))
        .await
        .expect("create");
    match c
        .resize_claim(&ns, "fixed", parse_quantity("5Gi").expect("q"))
        .await
    {
        Err(ClusterError::ExpansionNotAllowed { class, .. }) => assert_eq!(class, fixed),
        other => panic!("expected ExpansionNotAllowed, got {other:?}"),
    }
}

#[tokio::test]
async fn claim_with_missing_class_times_out_with_events() {
    with_sandbox!(sb, c);
    let ns = namespace(&c).await;
    // Immediate semantics apply when the class cannot be found.
    c.create_claim(&claim(&ns, "orphan", "no-such-class", "1Gi"))
        .await
        .expect("create");
    let cancel = CancellationToken::new();
    match c
        .wait_ready(&ns, "orphan", Duration::from_millis(1500), &cancel)
        .await
    {
        Err(ClusterError::NotReady { phase, events, .. }) => {
            assert_eq!(phase, "Pending");
            assert!(
                events.iter().any(|e| e.starts_with("ProvisioningFailed")),
                "{events:?}"
            );
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    // Cancellation ends the wait with Cancelled.
    let cancel = CancellationToken::new();
    let c2 = c.clone();
    let ns2 = ns.clone();
    let t = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            c2.wait_ready(&ns2, "orphan", Duration::from_secs(600), &cancel)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    assert!(matches!(
        t.await.expect("join"),
        Err(ClusterError::Cancelled { .. })
    ));
    assert!(matches!(
        c.wait_ready(
            &ns,
            "absent",
            Duration::from_secs(1),
            &CancellationToken::new()
        )
        .await,
        Err(ClusterError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delete_waits_for_pvc_protection() {
    use k8s_openapi::api::core::v1::Pod;
    with_sandbox!(sb, c);
    let ns = namespace(&c).await;
    let sc = class(&c, VolumeBindingMode::Immediate, false).await;
    c.create_claim(&claim(&ns, "db", &sc, "1Gi"))
        .await
        .expect("create");
    let status = c.get_claim(&ns, "db").await.expect("get").expect("exists");
    assert!(status
        .finalizers
        .iter()
        .any(|f| f == PVC_PROTECTION_FINALIZER));

    let pods: kube::Api<Pod> = kube::Api::namespaced(c.client().clone(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "node-0"},
        "spec": {
            "containers": [{"name": "n", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "db"}}]
        }
    }))
    .expect("pod json");
    pods.create(&Default::default(), &pod)
        .await
        .expect("create pod");

    let cancel = CancellationToken::new();
    match c
        .delete_claim(&ns, "db", Duration::from_millis(800), &cancel)
        .await
    {
        Err(ClusterError::StillInUse {
            pods, finalizers, ..
        }) => {
            assert_eq!(pods, vec!["node-0"]);
            assert_eq!(finalizers, vec![PVC_PROTECTION_FINALIZER]);
        }
        other => panic!("expected StillInUse, got {other:?}"),
    }
    assert!(
        c.get_claim(&ns, "db")
            .await
            .expect("get")
            .expect("still there")
            .deleting
    );

    pods.delete("node-0", &Default::default())
        .await
        .expect("delete pod");
    c.delete_claim(&ns, "db", Duration::from_secs(20), &cancel)
        .await
        .expect("deleted once unused");
    assert_eq!(c.get_claim(&ns, "db").await.expect("get"), None);
    // Deleting an absent claim succeeds.
    c.delete_claim(&ns, "db", Duration::from_secs(1), &cancel)
        .await
        .expect("idempotent");
}

// ---------------------------------------------------------------- lock

async fn lock_basics(c: &Cluster) {
    let ns = namespace(c).await;
    let cancel = CancellationToken::new();
    let alice = LockRequest::new(&ns, "net", "alice@a", 300);
    let bob = LockRequest::new(&ns, "net", "bob@b", 300);
    assert_eq!(c.read(&ns, "net").await.expect("read"), None);

    let a1 = c
        .acquire(&alice, &cancel)
        .await
        .expect("alice takes the free lock");
    assert_eq!(a1.holder.as_deref(), Some("alice@a"));
    assert_eq!(a1.fencing_token, 0);
    assert!(a1.expires_at > a1.renewed_at);

    // Re-acquiring renews.
    let a2 = c.acquire(&alice, &cancel).await.expect("renew by acquire");
    assert_eq!(a2.fencing_token, 0);
    assert_eq!(a2.acquired_at, a1.acquired_at);
    let a3 = c.renew(&a2).await.expect("renew");
    assert_eq!(a3.holder.as_deref(), Some("alice@a"));

    // Bob is told who holds it and when to retry.
    match c.acquire(&bob, &cancel).await {
        Err(LockError::Held {
            holder,
            retry_after,
            expires_at,
            ..
        }) => {
            assert_eq!(holder, "alice@a");
            assert_eq!(retry_after, Duration::from_secs(300));
            assert_eq!(Some(expires_at), a3.expires_at);
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Bob cannot release Alice's lock.
    let mut fake = a3.clone();
    fake.holder = Some("bob@b".into());
    assert_eq!(
        c.release(&fake).await.expect("release"),
        ReleaseOutcome::NotOurs {
            holder: Some("alice@a".into())
        }
    );

    assert_eq!(
        c.release(&a3).await.expect("release"),
        ReleaseOutcome::Cleared
    );
    let read = c.read(&ns, "net").await.expect("read").expect("lease kept");
    assert_eq!(read.holder, None);
    let b = c
        .acquire(&bob, &cancel)
        .await
        .expect("bob takes the released lock");
    assert_eq!(b.fencing_token, 1, "fencing token grows across holders");
    assert!(
        matches!(c.renew(&a3).await, Err(LockError::Lost { holder: Some(h), .. }) if h == "bob@b")
    );

    let bad = LockRequest::new(&ns, "net", "x", 0);
    assert!(matches!(
        c.acquire(&bad, &cancel).await,
        Err(LockError::Invalid(_))
    ));
}

#[tokio::test]
async fn sandbox_lock_basics() {
    with_sandbox!(sb, c);
    lock_basics(&c).await;
}

#[tokio::test]
async fn acc_lock_basics() {
    with_acc!(c);
    lock_basics(&c).await;
}

async fn lock_expiry_takeover(c: &Cluster) {
    let ns = namespace(c).await;
    let cancel = CancellationToken::new();
    let a = c
        .acquire(&LockRequest::new(&ns, "net", "crashed@a", 1), &cancel)
        .await
        .expect("a");
    let mut b_req = LockRequest::new(&ns, "net", "b@b", 60);
    b_req.wait_timeout = Some(Duration::from_secs(15));
    b_req.poll_interval = Duration::from_millis(100);
    let b = c
        .acquire(&b_req, &cancel)
        .await
        .expect("b takes over after expiry");
    assert_eq!(b.holder.as_deref(), Some("b@b"));
    assert_eq!(b.fencing_token, a.fencing_token + 1);
    assert!(matches!(c.renew(&a).await, Err(LockError::Lost { .. })));
    assert_eq!(
        c.release(&a).await.expect("release"),
        ReleaseOutcome::NotOurs {
            holder: Some("b@b".into())
        }
    );
    assert_eq!(
        c.read(&ns, "net")
            .await
            .expect("read")
            .and_then(|s| s.holder),
        Some("b@b".into())
    );

    // A waiter can be interrupted.
    let mut w = LockRequest::new(&ns, "net", "waiter@w", 60);
    w.wait_timeout = Some(Duration::from_secs(600));
    w.poll_interval = Duration::from_millis(50);
    let cancel2 = CancellationToken::new();
    let c2 = c.clone();
    let t = tokio::spawn({
        let cancel2 = cancel2.clone();
        async move { c2.acquire(&w, &cancel2).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel2.cancel();
    assert!(matches!(
        t.await.expect("join"),
        Err(LockError::Cancelled { .. })
    ));
}

#[tokio::test]
async fn sandbox_lock_expiry_takeover() {
    with_sandbox!(sb, c);
    lock_expiry_takeover(&c).await;
}

#[tokio::test]
async fn acc_lock_expiry_takeover() {
    with_acc!(c);
    lock_expiry_takeover(&c).await;
}

/// Ten clients race for a fresh lease without waiting: exactly one wins, nine are told who holds it.
async fn lock_race_one_winner(c: &Cluster) {
    let ns = namespace(c).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let c = c.clone();
        let req = LockRequest::new(&ns, "race", &format!("client-{i}"), 300);
        tasks.push(tokio::spawn(async move {
            c.acquire(&req, &CancellationToken::new()).await
        }));
    }
    let mut winners = Vec::new();
    let mut held = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(s) => winners.push(s.holder),
            Err(LockError::Held { .. }) => held += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(held, 9);
    let state = c.read(&ns, "race").await.expect("read").expect("lease");
    assert_eq!(state.holder, winners[0]);
}

/// Ten clients each take the lock, work, and release, waiting for each other: never two inside at
/// once, every one gets its turn, and the fencing tokens are all different.
async fn lock_mutual_exclusion(c: &Cluster) {
    let ns = namespace(c).await;
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let c = c.clone();
        let inside = inside.clone();
        let max_inside = max_inside.clone();
        let mut req = LockRequest::new(&ns, "mutex", &format!("client-{i}"), 60);
        req.wait_timeout = Some(Duration::from_secs(120));
        req.poll_interval = Duration::from_millis(30);
        tasks.push(tokio::spawn(async move {
            let state = c
                .acquire(&req, &CancellationToken::new())
                .await
                .expect("acquire");
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(40)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            assert_eq!(
                c.release(&state).await.expect("release"),
                ReleaseOutcome::Cleared
            );
            state.fencing_token
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.expect("join"));
    }
    assert_eq!(max_inside.load(Ordering::SeqCst), 1);
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 10, "fencing tokens {tokens:?}");
}

#[tokio::test]
async fn sandbox_lock_race_one_winner() {
    with_sandbox!(sb, c);
    lock_race_one_winner(&c).await;
}

#[tokio::test]
async fn sandbox_lock_mutual_exclusion() {
    with_sandbox!(sb, c);
    lock_mutual_exclusion(&c).await;
}

#[tokio::test]
async fn acc_lock_contention() {
    with_acc!(c);
    lock_race_one_winner(&c).await;
    lock_mutual_exclusion(&c).await;
}

// ---------------------------------------------------------------- metadata, exec, prices

async fn claim_metadata_patch(c: &Cluster) {
    let ns = namespace(c).await;
    let sc = class(c, VolumeBindingMode::WaitForFirstConsumer, false).await;
    let mut spec = claim(&ns, "meta", &sc, "1Gi");
    spec.labels.insert("keep".into(), "1".into());
    spec.labels.insert("drop".into(), "1".into());
    spec.annotations.insert("note".into(), "a".into());
    let created = c.create_claim(&spec).await.expect("create claim");
    let old_labels = spec.effective_labels();
    let old_annotations = spec.annotations.clone();
    spec.labels.remove("drop");
    spec.labels.insert("keep".into(), "2".into());
    spec.role = None;
    spec.annotations.clear();
    let patch = MetadataPatch::between(
        &old_labels,
        &spec.effective_labels(),
        &old_annotations,
        &spec.annotations,
    );
    let patched = c
        .patch_claim_metadata(&ns, "meta", &patch)
        .await
        .expect("patch metadata");
    assert_eq!(patched.uid, created.uid);
    assert_eq!(patched.labels, spec.effective_labels());
    assert!(!patched.annotations.contains_key("note"));
    assert_eq!(patched.requested, created.requested);
    let missing = c.patch_claim_metadata(&ns, "nope", &patch).await;
    assert!(
        matches!(missing, Err(ClusterError::NotFound { .. })),
        "{missing:?}"
    );
    c.delete_storage_class(&sc).await.expect("cleanup class");
}

#[tokio::test]
async fn sandbox_claim_metadata_patch() {
    with_sandbox!(sb, c);
    claim_metadata_patch(&c).await;
}

#[tokio::test]
async fn acc_claim_metadata_patch() {
    with_acc!(c);
    claim_metadata_patch(&c).await;
}

/// An exec plugin script printing `body` (or failing with `stderr` when `exit` is non-zero).
fn plugin(dir: &std::path::Path, name: &str, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).expect("write plugin");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p.display().to_string()
}

#[tokio::test]
async fn exec_plugin_token_and_failures() {
    let Some(sb) = sandbox() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let exec = |command: String, token: &str| ConnectionConfig {
        kubeconfig_paths: vec![sb.kubeconfig.clone()],
        exec: Some(ExecConfig {
            api_version: "client.authentication.k8s.io/v1beta1".into(),
            command,
            args: vec![],
            env: vec![("SECRET_TOKEN".into(), token.into())],
        }),
        ..Default::default()
    };
    let good = plugin(
        dir.path(),
        "good",
        r#"printf '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"%s"}}' "$SECRET_TOKEN""#,
    );
    let c = connect(&exec(good.clone(), &sb.token))
        .await
        .expect("connect with plugin");
    c.check().await.expect("plugin token accepted");

    let c = connect(&exec(good, "wrong")).await.expect("connect");
    assert!(
        matches!(c.check().await, Err(ClusterError::Unauthorized { .. })),
        "a wrong plugin token is Unauthorized"
    );

    let failing = plugin(dir.path(), "failing", "echo 'please log in' >&2; exit 3");
    match connect(&exec(failing.clone(), "s3cret")).await {
        Err(e @ ClusterError::CredentialPlugin { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&failing) && msg.contains("please log in"),
                "{msg}"
            );
            assert!(msg.contains("exit status: 3"), "{msg}");
            assert!(!msg.contains("s3cret"), "plugin environment leaked: {msg}");
        }
        other => panic!("expected CredentialPlugin, got {other:?}"),
    }
    let garbage = plugin(dir.path(), "garbage", "echo not json at all: [");
    assert!(matches!(
        connect(&exec(garbage, "x")).await,
        Err(ClusterError::CredentialPlugin { detail, .. }) if detail.contains("not an ExecCredential")
    ));
    let missing = dir.path().join("missing").display().to_string();
    assert!(matches!(
        connect(&exec(missing, "x")).await,
        Err(ClusterError::CredentialPlugin { detail, .. }) if detail.contains("could not be started")
    ));
}

#[tokio::test]
async fn prices_from_the_class_in_the_cluster() {
    with_sandbox!(sb, c);
    let table = PriceTable::default();
    let (prov, params) = tier_preset(Cloud::Aws, Tier::Standard);
    let mut spec = StorageClassSpec::new(&unique("bulk"), prov);
    spec.parameters = params;
    let info = c.create_storage_class(&spec).await.expect("create class");
    let p = table.by_class(&info).expect("priced by preset");
    assert_eq!((p.usd_per_gib_month, p.key.as_str()), (0.04, "standard"));
    let mut labelled = StorageClassSpec::new(&unique("local"), "rancher.io/local-path");
    labelled.labels.insert(LABEL_TIER.into(), "ssd".into());
    let read_back = {
        c.create_storage_class(&labelled).await.expect("create");
        c.get_storage_class(&labelled.name)
            .await
            .expect("get")
            .expect("exists")
    };
    assert_eq!(
        table.by_class(&read_back).map(|p| p.usd_per_gib_month),
        Some(0.17)
    );
    assert_eq!(monthly_cost(parse_quantity("100Gi").unwrap(), 0.17), 17.0);
}

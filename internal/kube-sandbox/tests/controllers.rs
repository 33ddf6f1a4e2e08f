//! What the sandbox's controllers and generic verbs do for a kube-rs client: claim binding,
//! WaitForFirstConsumer, pvc-protection, namespace termination, optimistic concurrency,
//! label selectors and watch.

mod common;

use common::{api_error, client, eventually, obj, start};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

async fn make_class(c: &kube::Client, name: &str, mode: &str) {
    let api: Api<StorageClass> = Api::all(c.clone());
    api.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": name}, "provisioner": "example.com/none",
                    "volumeBindingMode": mode}),
        ),
    )
    .await
    .expect("create class");
}

async fn make_claim(c: &kube::Client, ns: &str, name: &str, class: &str) -> PersistentVolumeClaim {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    api.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": class, "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
    )
    .await
    .expect("create claim")
}

async fn make_pod(c: &kube::Client, ns: &str, name: &str, claim: &str) {
    let api: Api<Pod> = Api::namespaced(c.clone(), ns);
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "node", "image": "busybox"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}})),
    )
    .await
    .expect("create pod");
}

fn phase(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.status.as_ref().and_then(|s| s.phase.as_deref())
}

async fn events_for(c: &kube::Client, ns: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(c.clone(), ns);
    api.list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .expect("list events")
        .items
}

#[tokio::test]
async fn immediate_claim_binds_to_a_provisioned_volume() {
    let sb = start(&["--bind-delay-ms", "50"]);
    let c = client(&sb).await;
    make_class(&c, "imm", "Immediate").await;
    let created = make_claim(&c, "default", "data", "imm").await;
    assert_eq!(phase(&created), Some("Pending"));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let bound = eventually("claim data Bound", || async {
        let p = claims.get("data").await.ok()?;
        (phase(&p) == Some("Bound")).then_some(p)
    })
    .await;
    let volume = bound
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .expect("volumeName set on a bound claim");
    let pv = Api::<PersistentVolume>::all(c.clone())
        .get(&volume)
        .await
        .expect("the bound volume exists");
    let claim_ref = pv.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(claim_ref.name.as_deref(), Some("data"));
    assert_eq!(claim_ref.uid, created.metadata.uid);
    let capacity = bound.status.and_then(|s| s.capacity).expect("capacity");
    assert_eq!(capacity["storage"].0, "1Gi");
}

#[tokio::test]
async fn claim_binds_to_the_volume_reserved_for_it() {
    let sb = start(&["--bind-delay-ms", "50"]);
    let c = client(&sb).await;
    make_class(&c, "manual", "Immediate").await;
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let pv = pvs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "reserved"}, "spec": {
                "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual", "hostPath": {"path": "/tmp/reserved"},
                "claimRef": {"namespace": "default", "name": "mine"}}})),
        )
        .await
        .expect("create volume");
    assert_eq!(
        pv.metadata.finalizers,
        Some(vec!["kubernetes.io/pv-protection".to_string()])
    );
    make_claim(&c, "default", "mine", "manual").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let bound = eventually("claim mine Bound", || async {
        let p = claims.get("mine").await.ok()?;
        (phase(&p) == Some("Bound")).then_some(p)
    })
    .await;
    assert_eq!(
        bound.spec.and_then(|s| s.volume_name).as_deref(),
        Some("reserved")
    );
    // The claim reports the volume's size, not its own request.
    assert_eq!(
        bound.status.and_then(|s| s.capacity).expect("capacity")["storage"].0,
        "2Gi"
    );
    // A Bound volume keeps pv-protection; once its claim is gone it is Released and deletable.
    claims
        .delete("mine", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("volume reserved Released", || async {
        let p = pvs.get("reserved").await.ok()?;
        (p.status?.phase.as_deref() == Some("Released")).then_some(())
    })
    .await;
    pvs.delete("reserved", &DeleteParams::default())
        .await
        .expect("delete volume");
    eventually("volume reserved gone", || async {
        pvs.get_opt("reserved").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn wait_for_first_consumer_claim_stays_pending_until_a_pod_uses_it() {
    let sb = start(&["--bind-delay-ms", "50"]);
    let c = client(&sb).await;
    make_class(&c, "wffc", "WaitForFirstConsumer").await;
    make_claim(&c, "default", "late", "wffc").await;
    let ev = eventually("WaitForFirstConsumer event", || async {
        events_for(&c, "default", "late")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WaitForFirstConsumer"))
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    // The event is emitted on the same pass that leaves the claim alone: it is still Pending
    // with no volume after the controller has looked at it.
    let still = claims.get("late").await.expect("get claim");
    assert_eq!(phase(&still), Some("Pending"));
    assert!(still.spec.and_then(|s| s.volume_name).is_none());
    make_pod(&c, "default", "consumer", "late").await;
    eventually("claim late Bound after a consumer appears", || async {
        let p = claims.get("late").await.ok()?;
        (phase(&p) == Some("Bound")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pvc_protection_keeps_a_used_claim_terminating() {
    let sb = start(&["--bind-delay-ms", "50"]);
    let c = client(&sb).await;
    make_class(&c, "imm", "Immediate").await;
    make_claim(&c, "default", "held", "imm").await;
    make_pod(&c, "default", "user", "held").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    claims
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete claim");
    // Prove the controller has run since the delete: a later claim gets bound meanwhile.
    make_claim(&c, "default", "witness", "imm").await;
    eventually("witness Bound", || async {
        let p = claims.get("witness").await.ok()?;
        (phase(&p) == Some("Bound")).then_some(())
    })
    .await;
    let held = claims
        .get("held")
        .await
        .expect("claim still there while a pod uses it");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        held.metadata.finalizers,
        Some(vec!["kubernetes.io/pvc-protection".to_string()])
    );
    Api::<Pod>::namespaced(c.clone(), "default")
        .delete("user", &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("claim held gone once unused", || async {
        claims.get_opt("held").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn stale_resource_version_conflicts_and_leases_need_one() {
    let sb = start(&[]);
    let c = client(&sb).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "default");
    let first = leases
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "lock"},
                        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})),
        )
        .await
        .expect("create lease");
    let mut mine = first.clone();
    mine.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    let updated = leases
        .replace("lock", &PostParams::default(), &mine)
        .await
        .expect("replace with the current resourceVersion");
    assert_ne!(
        updated.metadata.resource_version,
        first.metadata.resource_version
    );
    // Writing again from the old copy must not overwrite b's hold.
    let mut theirs = first.clone();
    theirs.spec.as_mut().expect("spec").holder_identity = Some("c".into());
    let s = api_error(
        leases
            .replace("lock", &PostParams::default(), &theirs)
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    theirs.metadata.resource_version = None;
    let s = api_error(
        leases
            .replace("lock", &PostParams::default(), &theirs)
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let causes = s.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes[0].field, "metadata.resourceVersion");
    let now = leases.get("lock").await.expect("get lease");
    assert_eq!(
        now.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    let sb = start(&[]);
    let c = client(&sb).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "default");
    for (name, labels) in [
        ("a", json!({"role": "genesis", "tier": "fast"})),
        ("b", json!({"role": "validator"})),
        ("c", json!({})),
    ] {
        leases
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name, "labels": labels}, "spec": {}})),
            )
            .await
            .expect("create lease");
    }
    let names = |sel: &'static str| {
        let leases = leases.clone();
        async move {
            let mut n: Vec<String> = leases
                .list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
                .into_iter()
                .filter_map(|l| l.metadata.name)
                .collect();
            n.sort();
            n
        }
    };
    assert_eq!(names("role=genesis").await, ["a"]);
    assert_eq!(names("role!=genesis").await, ["b", "c"]);
    assert_eq!(names("role in (genesis,validator)").await, ["a", "b"]);
    assert_eq!(names("role notin (genesis)").await, ["b", "c"]);
    assert_eq!(names("tier").await, ["a"]);
    assert_eq!(names("!role").await, ["c"]);
    assert_eq!(names("role,tier=fast").await, ["a"]);
    let s = api_error(
        leases
            .list(&ListParams::default().labels("role in genesis"))
            .await,
    );
    assert_eq!(s.code, 400);
}

#[tokio::test]
async fn watch_from_a_list_sees_changes_in_order() {
    let sb = start(&[]);
    let c = client(&sb).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "default");
    let rv = leases
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let stream = leases
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    let created = leases
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "w"}, "spec": {"holderIdentity": "a"}})),
        )
        .await
        .expect("create");
    let mut l = created.clone();
    l.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    leases
        .replace("w", &PostParams::default(), &l)
        .await
        .expect("replace");
    leases
        .delete("w", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.try_next().await.expect("watch event") {
            Some(WatchEvent::Added(o)) => {
                seen.push(("ADDED", o.spec.and_then(|s| s.holder_identity)))
            }
            Some(WatchEvent::Modified(o)) => {
                seen.push(("MODIFIED", o.spec.and_then(|s| s.holder_identity)))
            }
            Some(WatchEvent::Deleted(o)) => {
                seen.push(("DELETED", o.spec.and_then(|s| s.holder_identity)))
            }
            Some(other) => panic!("unexpected watch event {other:?}"),
            None => panic!("watch ended after {seen:?}"),
        }
    }
    let a = Some("a".to_string());
    let b = Some("b".to_string());
    assert_eq!(
        seen,
        [("ADDED", a), ("MODIFIED", b.clone()), ("DELETED", b)]
    );
}

#[tokio::test]
async fn terminating_namespace_refuses_new_content_then_goes() {
    let sb = start(&[]);
    let c = client(&sb).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    namespaces
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "net1"}})),
        )
        .await
        .expect("create namespace");
    let leases: Api<Lease> = Api::namespaced(c.clone(), "net1");
    leases
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "old"}, "spec": {}})),
        )
        .await
        .expect("create lease");
    namespaces
        .delete("net1", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let s = api_error(
        leases
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "late"}, "spec": {}})),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    let causes = s.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes[0].reason, "NamespaceTerminating");
    assert_eq!(causes[0].field, "metadata.namespace");
    eventually("namespace net1 gone with its contents", || async {
        namespaces
            .get_opt("net1")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let s = api_error(leases.get("old").await);
    assert_eq!(s.code, 404);
}

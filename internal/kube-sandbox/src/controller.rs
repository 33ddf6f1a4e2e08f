//! The controllers a real cluster runs beside the API server, reduced to what our users see:
//! the PV binder/provisioner (Immediate and WaitForFirstConsumer), volume expansion, the
//! pvc-protection finalizer, and namespace termination.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::kinds::{
    Kind, CONFIG_MAPS, EVENTS, LEASES, NAMESPACES, PODS, PVCS, PVS, STORAGE_CLASSES,
};
use crate::quantity;
use crate::store::{meta_str, rv_of, Store};
use crate::util;
use crate::validate::{PVC_PROTECTION, PV_PROTECTION};

#[derive(Default)]
struct State {
    /// When a claim first became bindable (class found, consumer present if needed).
    bindable_since: HashMap<String, Instant>,
    /// When a bound claim's larger request was first seen.
    resize_since: HashMap<String, Instant>,
    /// Events already emitted, per (claim uid, reason).
    emitted: HashSet<(String, String)>,
    /// When a namespace (by uid) was first seen Terminating.
    terminating_since: HashMap<String, Instant>,
}

/// How long a deleted namespace stays Terminating at least, like the real namespace controller
/// (which takes seconds), so clients can observe the 403 NamespaceTerminating window.
const NAMESPACE_TERMINATING_MIN: Duration = Duration::from_millis(1500);

/// Runs forever, reacting to store changes (and a short tick for the delays).
pub async fn run(store: Store, bind_delay: Duration) {
    let mut st = State::default();
    loop {
        tokio::select! {
            _ = store.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        terminate_namespaces(&store, &mut st);
        reconcile_volumes(&store);
        reconcile_claims(&store, &mut st, bind_delay);
    }
}

fn new_meta(name: &str, ns: Option<&str>) -> Value {
    let mut m =
        json!({"name": name, "uid": util::new_uid(), "creationTimestamp": util::now_rfc3339()});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

/// Deletes like the API would: finalizers make it Terminating, otherwise it goes.
fn delete_obj(store: &Store, kind: &'static Kind, obj: &Value) {
    let (ns, name) = (meta_str(obj, "namespace"), meta_str(obj, "name"));
    if !meta_str(obj, "deletionTimestamp").is_empty() {
        return;
    }
    let has_fin = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if has_fin {
        let mut o = obj.clone();
        o["metadata"]["deletionTimestamp"] = json!(util::now_rfc3339());
        o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let _ = store.update(kind, o, rv_of(obj));
    } else {
        let _ = store.remove(kind, ns, name, Some(rv_of(obj)));
    }
}

fn terminate_namespaces(store: &Store, st: &mut State) {
    let (namespaces, _) = store.list(&NAMESPACES, None);
    let terminating: HashSet<String> = namespaces
        .iter()
        .filter(|n| !meta_str(n, "deletionTimestamp").is_empty())
        .map(|n| meta_str(n, "uid").to_string())
        .collect();
    st.terminating_since
        .retain(|uid, _| terminating.contains(uid));
    for ns in namespaces
        .iter()
        .filter(|n| !meta_str(n, "deletionTimestamp").is_empty())
    {
        let name = meta_str(ns, "name");
        let mut remaining = 0;
        // Pods first, so that claims they hold can lose pvc-protection.
        for kind in [&PODS, &LEASES, &CONFIG_MAPS, &EVENTS, &PVCS] {
            let (items, _) = store.list(kind, Some(name));
            remaining += items.len();
            for o in &items {
                delete_obj(store, kind, o);
            }
        }
        let since = *st
            .terminating_since
            .entry(meta_str(ns, "uid").to_string())
            .or_insert_with(Instant::now);
        if remaining == 0 && since.elapsed() >= NAMESPACE_TERMINATING_MIN {
            let _ = store.remove(&NAMESPACES, "", name, Some(rv_of(ns)));
        }
    }
}

/// The volume side of the binder and pv-protection: a new volume becomes Available, and a
/// deleted volume that is not Bound loses its pv-protection finalizer (and so goes away).
fn reconcile_volumes(store: &Store) {
    let (pvs, _) = store.list(&PVS, None);
    for pv in &pvs {
        let phase = pv
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !meta_str(pv, "deletionTimestamp").is_empty() {
            if phase == "Bound" {
                continue;
            }
            let mut p = pv.clone();
            if let Some(f) = p["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != PV_PROTECTION);
            }
            let _ = store.update(&PVS, p, rv_of(pv));
        } else if phase == "Pending" || phase.is_empty() {
            let mut p = pv.clone();
            p["status"]["phase"] = json!("Available");
            let _ = store.update(&PVS, p, rv_of(pv));
        }
    }
}

/// A volume an administrator reserved for this claim (`spec.claimRef` naming it), if any.
fn reserved_volume(store: &Store, claim: &Value) -> Option<Value> {
    let (pvs, _) = store.list(&PVS, None);
    pvs.into_iter().find(|pv| {
        meta_str(pv, "deletionTimestamp").is_empty()
            && pv
                .pointer("/spec/claimRef/namespace")
                .and_then(Value::as_str)
                == Some(meta_str(claim, "namespace"))
            && pv.pointer("/spec/claimRef/name").and_then(Value::as_str)
                == Some(meta_str(claim, "name"))
            && pv
                .pointer("/spec/claimRef/uid")
                .and_then(Value::as_str)
                .is_none_or(|u| u.is_empty() || u == meta_str(claim, "uid"))
    })
}

fn emit(store: &Store, st: &mut State, claim: &Value, ty: &str, reason: &str, message: &str) {
    let uid = meta_str(claim, "uid").to_string();
    if !st.emitted.insert((uid.clone(), reason.to_string())) {
        return;
    }
    let ns = meta_str(claim, "namespace");
    let name = format!("{}.{}", meta_str(claim, "name"), util::random_suffix(10));
    let now = util::now_rfc3339();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": new_meta(&name, Some(ns)),
        "involvedObject": {
            "kind": "PersistentVolumeClaim", "namespace": ns, "name": meta_str(claim, "name"),
            "uid": uid, "apiVersion": "v1", "resourceVersion": rv_of(claim),
        },
        "reason": reason, "message": message, "type": ty, "count": 1,
        "source": {"component": "persistentvolume-controller"},
        "firstTimestamp": now, "lastTimestamp": now,
        "reportingComponent": "", "reportingInstance": "",
    });
    let _ = store.create(&EVENTS, ev);
}

/// Claims referenced by live pods, as (namespace, claim name).
fn claims_in_use(store: &Store) -> HashSet<(String, String)> {
    let (pods, _) = store.list(&PODS, None);
    let mut used = HashSet::new();
    for p in pods
        .iter()
        .filter(|p| meta_str(p, "deletionTimestamp").is_empty())
    {
        for v in p
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(c) = v
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                used.insert((meta_str(p, "namespace").to_string(), c.to_string()));
            }
        }
    }
    used
}

fn reconcile_claims(store: &Store, st: &mut State, bind_delay: Duration) {
    let used = claims_in_use(store);
    let (claims, _) = store.list(&PVCS, None);
    let live: HashSet<String> = claims
        .iter()
        .map(|c| meta_str(c, "uid").to_string())
        .collect();
    st.bindable_since.retain(|k, _| live.contains(k));
    st.resize_since.retain(|k, _| live.contains(k));
    for claim in &claims {
        let (ns, name, uid) = (
            meta_str(claim, "namespace"),
            meta_str(claim, "name"),
            meta_str(claim, "uid"),
        );
        let in_use = used.contains(&(ns.to_string(), name.to_string()));
        if !meta_str(claim, "deletionTimestamp").is_empty() {
            if !in_use {
                release(store, claim);
            }
            continue;
        }
        let phase = claim
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending");
        let class_name = claim
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if phase == "Bound" {
            resize(store, st, claim, bind_delay);
            continue;
        }
        if class_name.is_empty() {
            emit(
                store,
                st,
                claim,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            );
            continue;
        }
        let Some(class) = store.get(&STORAGE_CLASSES, "", class_name) else {
            emit(
                store,
                st,
                claim,
                "Warning",
                "ProvisioningFailed",
                &format!("storageclass.storage.k8s.io {class_name:?} not found"),
            );
            continue;
        };
        if class.get("volumeBindingMode").and_then(Value::as_str) == Some("WaitForFirstConsumer")
            && !in_use
        {
            emit(
                store,
                st,
                claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            );
            continue;
        }
        let since = *st
            .bindable_since
            .entry(uid.to_string())
            .or_insert_with(Instant::now);
        if since.elapsed() >= bind_delay {
            bind(store, st, claim, &class);
        }
    }
}

fn bind(store: &Store, st: &mut State, claim: &Value, class: &Value) {
    let (ns, name, uid) = (
        meta_str(claim, "namespace"),
        meta_str(claim, "name"),
        meta_str(claim, "uid"),
    );
    let pv_name = format!("pvc-{uid}");
    let size = claim
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or(json!("0"));
    let modes = claim
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or(json!([]));
    let provisioner = class
        .get("provisioner")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut pv_name = pv_name;
    let mut size = size;
    let reserved = reserved_volume(store, claim);
    let provisioned = reserved.is_none();
    if let Some(pv) = reserved {
        let mut p = pv.clone();
        p["spec"]["claimRef"] = json!({"kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
            "uid": uid, "apiVersion": "v1", "resourceVersion": rv_of(claim)});
        p["status"]["phase"] = json!("Bound");
        if store.update(&PVS, p, rv_of(&pv)).is_err() {
            return;
        }
        pv_name = meta_str(&pv, "name").to_string();
        size = pv
            .pointer("/spec/capacity/storage")
            .cloned()
            .unwrap_or(size);
    } else if store.get(&PVS, "", &pv_name).is_none() {
        let mut meta = new_meta(&pv_name, None);
        meta["annotations"] = json!({"pv.kubernetes.io/provisioned-by": provisioner});
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta,
            "spec": {
                "capacity": {"storage": size}, "accessModes": modes,
                "persistentVolumeReclaimPolicy": class.get("reclaimPolicy").cloned().unwrap_or(json!("Delete")),
                "storageClassName": meta_str(class, "name"),
                "volumeMode": claim.pointer("/spec/volumeMode").cloned().unwrap_or(json!("Filesystem")),
                "mountOptions": class.get("mountOptions").cloned().unwrap_or(Value::Null),
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name, "uid": uid,
                             "apiVersion": "v1", "resourceVersion": rv_of(claim)},
                "hostPath": {"path": format!("/var/lib/testnet-kube-sandbox/{pv_name}"), "type": ""},
            },
            "status": {"phase": "Bound"},
        });
        if store.create(&PVS, pv).is_err() {
            return;
        }
    }
    let mut c = claim.clone();
    c["spec"]["volumeName"] = json!(pv_name);
    let ann = &mut c["metadata"]["annotations"];
    if !ann.is_object() {
        *ann = json!({});
    }
    ann["pv.kubernetes.io/bind-completed"] = json!("yes");
    ann["pv.kubernetes.io/bound-by-controller"] = json!("yes");
    ann["volume.beta.kubernetes.io/storage-provisioner"] = json!(provisioner);
    c["status"] = json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}});
    // Static binding to an administrator's volume provisions nothing, so it reports nothing.
    if store.update(&PVCS, c, rv_of(claim)).is_ok() && provisioned {
        emit(
            store,
            st,
            claim,
            "Normal",
            "ProvisioningSucceeded",
            &format!("Successfully provisioned volume {pv_name} using {provisioner}"),
        );
    }
}

fn resize(store: &Store, st: &mut State, claim: &Value, delay: Duration) {
    let want = claim
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .unwrap_or("");
    let have = claim
        .pointer("/status/capacity/storage")
        .and_then(Value::as_str)
        .unwrap_or("");
    let bigger = match (quantity::parse(want), quantity::parse(have)) {
        (Ok(w), Ok(h)) => w > h,
        _ => false,
    };
    let uid = meta_str(claim, "uid").to_string();
    if !bigger {
        st.resize_since.remove(&uid);
        return;
    }
    let since = *st
        .resize_since
        .entry(uid.clone())
        .or_insert_with(Instant::now);
    if since.elapsed() < delay {
        return;
    }
    let pv_name = claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(pv) = store.get(&PVS, "", pv_name) {
        let mut p = pv.clone();
        p["spec"]["capacity"]["storage"] = json!(want);
        let _ = store.update(&PVS, p, rv_of(&pv));
    }
    let mut c = claim.clone();
    c["status"]["capacity"]["storage"] = json!(want);
    if store.update(&PVCS, c, rv_of(claim)).is_ok() {
        st.resize_since.remove(&uid);
    }
}

/// A deleted claim no pod uses: drop pvc-protection (the store then removes the claim) and
/// reclaim its volume per the class's policy.
fn release(store: &Store, claim: &Value) {
    let mut c = claim.clone();
    let fins: Vec<Value> = c["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter(|x| *x != PVC_PROTECTION).cloned().collect())
        .unwrap_or_default();
    let had = c["metadata"]["finalizers"].as_array().map_or(0, Vec::len);
    if had == fins.len() {
        return;
    }
    c["metadata"]["finalizers"] = Value::Array(fins);
    if store.update(&PVCS, c, rv_of(claim)).is_err() {
        return;
    }
    let pv_name = claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(pv) = store.get(&PVS, "", pv_name) {
        if pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            == Some("Retain")
        {
            let mut p = pv.clone();
            p["status"]["phase"] = json!("Released");
            let _ = store.update(&PVS, p, rv_of(&pv));
        } else {
            let _ = store.remove(&PVS, "", pv_name, None);
        }
    }
}

//! Does our local Kubernetes sandbox answer like a real kube-apiserver?
//!
//! One table of raw HTTP requests, each with the answer a real kube-apiserver v1.20.2 gives
//! (recorded with `scripts/kube-real.d/probe.sh`, see `scripts/kube-real.d/FINDINGS.md`): status
//! code, Status `reason`, `details.kind` / `details.group`, the causes' `(reason, field)` pairs and
//! a few body fields users rely on (finalizers, phases, events). The same table runs against:
//!
//! - the sandbox (`testnet-kube-sandbox`, always);
//! - the real server started by `scripts/kube-real start` when `TESTNET_KUBE_REAL=1`, or when the
//!   build cache exists and `TESTNET_KUBE_REAL` is not `0`; that test also runs the sandbox and
//!   diffs the two servers row by row, so a difference the table does not pin down still shows;
//! - any cluster named by `TESTNET_ACC_KUBECONFIG` (its current context).
//!
//! Messages are never compared: their text changes across versions; codes, reasons and fields do not.
//! Every name carries a per-run suffix, and the table ends by deleting what it created, so it can
//! run against a shared cluster.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acceptance_tests::servers::KubeServer;
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

// ------------------------------------------------------------------------------------------ table

/// A body field the answer must carry (JSON pointer into the response body).
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Equal to this JSON literal.
    Eq(&'static str),
    /// Present, any value.
    Present,
}

/// What one request must get back.
#[derive(Clone, Debug)]
struct Expect {
    code: u16,
    /// `reason` of the Status body; `None` for success answers (an object, not a Status).
    reason: Option<&'static str>,
    /// `details.causes[].(reason, field)`, compared as a multiset (order is validation order).
    causes: &'static [(&'static str, &'static str)],
    /// `details.kind` when it matters (Kind for 422, lower-case resource for 404/409/403).
    kind: Option<&'static str>,
    /// `details.group`; `Some("")` means the key must be absent (core group).
    group: Option<&'static str>,
    fields: Vec<(&'static str, Want)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Auth {
    Token,
    WrongToken,
}

/// One row of the table: a raw request and its expected answer. Paths and bodies may contain
/// `{ns}` (this run's namespace) and `{sfx}` (this run's suffix).
#[derive(Clone, Debug)]
struct Row {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    content_type: &'static str,
    auth: Auth,
    /// Repeat the request (up to [`POLL_LIMIT`]) until the answer matches: for results that
    /// controllers produce some time after the request (binding, finalizers, events, deletion).
    poll: bool,
    expect: Expect,
}

/// How long a polled row waits for a controller; generous, since a real namespace deletion on a
/// loaded 2-core machine takes 5-15 s.
const POLL_LIMIT: Duration = Duration::from_secs(120);

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

fn req(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
) -> Row {
    Row {
        what,
        method,
        path,
        body,
        content_type: JSON,
        auth: Auth::Token,
        poll: false,
        expect: Expect {
            code: 200,
            reason: None,
            causes: &[],
            kind: None,
            group: None,
            fields: vec![],
        },
    }
}
fn get(what: &'static str, path: &'static str) -> Row {
    req(what, "GET", path, None)
}
fn post(what: &'static str, path: &'static str, body: &'static str) -> Row {
    req(what, "POST", path, Some(body)).ok(201)
}
fn put(what: &'static str, path: &'static str, body: &'static str) -> Row {
    req(what, "PUT", path, Some(body))
}
fn patch(what: &'static str, path: &'static str, body: &'static str) -> Row {
    Row {
        content_type: MERGE,
        ..req(what, "PATCH", path, Some(body))
    }
}
fn delete(what: &'static str, path: &'static str) -> Row {
    req(what, "DELETE", path, None)
}

impl Row {
    fn ok(mut self, code: u16) -> Row {
        self.expect.code = code;
        self.expect.reason = None;
        self
    }
    fn status(mut self, code: u16, reason: &'static str) -> Row {
        self.expect.code = code;
        self.expect.reason = Some(reason);
        self
    }
    fn causes(mut self, causes: &'static [(&'static str, &'static str)]) -> Row {
        self.expect.causes = causes;
        self
    }
    fn details(mut self, kind: &'static str, group: &'static str) -> Row {
        self.expect.kind = Some(kind);
        self.expect.group = Some(group);
        self
    }
    fn field(mut self, pointer: &'static str, want: Want) -> Row {
        self.expect.fields.push((pointer, want));
        self
    }
    fn content_type(mut self, ct: &'static str) -> Row {
        self.content_type = ct;
        self
    }
    fn wrong_token(mut self) -> Row {
        self.auth = Auth::WrongToken;
        self
    }
    fn poll(mut self) -> Row {
        self.poll = true;
        self
    }
}

const SC: &str = "storage.k8s.io";
const COORD: &str = "coordination.k8s.io";
const CORE: &str = "";

/// A ConfigMap whose data is one byte over the 1 MiB the server allows.
fn oversized_config_map() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
            "x".repeat(1024 * 1024 + 1)
        )
    })
}

/// The table. Order matters: later rows use objects earlier rows created.
fn table() -> Vec<Row> {
    use Want::*;
    vec![
        // ---- namespace
        post("create the run's namespace", "/api/v1/namespaces", r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"{ns}"}}"#)
            .field("/status/phase", Eq(r#""Active""#)),
        // ---- StorageClass
        post("create Immediate class without expansion", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-imm-{sfx}"},"provisioner":"example.com/none","parameters":{"tier":"fast"},"reclaimPolicy":"Delete","volumeBindingMode":"Immediate","allowVolumeExpansion":false}"#)
            .field("/parameters/tier", Eq(r#""fast""#)),
        post("create class whose name exists", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-imm-{sfx}"},"provisioner":"example.com/none"}"#)
            .status(409, "AlreadyExists").details("storageclasses", SC),
        patch("change class parameters", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"parameters":{"tier":"slow"}}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "parameters")]).details("StorageClass", SC),
        patch("change class provisioner", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"provisioner":"example.com/other"}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "provisioner")]).details("StorageClass", SC),
        patch("change class reclaimPolicy", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"reclaimPolicy":"Retain"}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "reclaimPolicy")]).details("StorageClass", SC),
        patch("change class parameters and reclaimPolicy", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}",
            r#"{"parameters":{"tier":"slow"},"reclaimPolicy":"Retain"}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "parameters"), ("FieldValueForbidden", "reclaimPolicy")]),
        patch("change class volumeBindingMode", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"volumeBindingMode":"WaitForFirstConsumer"}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "volumeBindingMode")]).details("StorageClass", SC),
        patch("change class mountOptions", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"mountOptions":["noatime"]}"#)
            .field("/mountOptions/0", Eq(r#""noatime""#)),
        patch("set allowVolumeExpansion (mutable)", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"allowVolumeExpansion":false}"#)
            .field("/allowVolumeExpansion", Eq("false")),
        get("class keeps its parameters after refused patches", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}")
            .field("/parameters/tier", Eq(r#""fast""#))
            .field("/reclaimPolicy", Eq(r#""Delete""#)),
        post("create class with invalid name", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"Bad_Name-{sfx}"},"provisioner":"example.com/none"}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "metadata.name")]).details("StorageClass", SC),
        post("create class with invalid provisioner", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-badprov-{sfx}"},"provisioner":"bad provisioner!"}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "provisioner")]).details("StorageClass", SC),
        post("create class with unsupported enum values", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-badenum-{sfx}"},"provisioner":"example.com/none","reclaimPolicy":"Keep","volumeBindingMode":"Sometimes"}"#)
            .status(422, "Invalid")
            .causes(&[("FieldValueNotSupported", "reclaimPolicy"), ("FieldValueNotSupported", "volumeBindingMode")])
            .details("StorageClass", SC),
        get("get missing class", "/apis/storage.k8s.io/v1/storageclasses/agree-missing-{sfx}")
            .status(404, "NotFound").details("storageclasses", SC).field("/details/name", Eq(r#""agree-missing-{sfx}""#)),
        put("replace class with a stale resourceVersion", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-imm-{sfx}","resourceVersion":"1"},"provisioner":"example.com/none","parameters":{"tier":"fast"},"reclaimPolicy":"Delete","volumeBindingMode":"Immediate"}"#)
            .status(409, "Conflict").details("storageclasses", SC),
        patch("patch with Content-Type application/json", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}", r#"{"mountOptions":[]}"#)
            .content_type(JSON)
            .status(415, "UnsupportedMediaType"),
        post("create WaitForFirstConsumer class", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-wffc-{sfx}"},"provisioner":"example.com/none","volumeBindingMode":"WaitForFirstConsumer"}"#)
            .field("/volumeBindingMode", Eq(r#""WaitForFirstConsumer""#))
            .field("/reclaimPolicy", Eq(r#""Delete""#)),
        post("create Immediate class with expansion", "/apis/storage.k8s.io/v1/storageclasses",
            r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"agree-exp-{sfx}"},"provisioner":"example.com/none","allowVolumeExpansion":true}"#)
            .field("/volumeBindingMode", Eq(r#""Immediate""#)),
        // ---- PersistentVolumeClaim (unbound: a WaitForFirstConsumer class and no pod keep it Pending)
        post("create claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"pending"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"agree-wffc-{sfx}","resources":{"requests":{"storage":"1Gi"}}}}"#)
            .field("/metadata/finalizers", Eq(r#"["kubernetes.io/pvc-protection"]"#))
            .field("/status/phase", Eq(r#""Pending""#)),
        post("create claim with malformed quantity 10Gii", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"quantity"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"agree-wffc-{sfx}","resources":{"requests":{"storage":"10Gii"}}}}"#)
            .status(400, "BadRequest"),
        post("create claim with invalid name", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"Bad.Name_"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "metadata.name")]).details("PersistentVolumeClaim", CORE),
        post("create claim with invalid access mode", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"accessmode"},"spec":{"accessModes":["ReadWriteSometimes"],"resources":{"requests":{"storage":"1Gi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueNotSupported", "spec.accessModes")]).details("PersistentVolumeClaim", CORE),
        post("create claim without access modes", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"noaccess"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueRequired", "spec.accessModes")]),
        post("create claim without storage request", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"nostorage"},"spec":{"accessModes":["ReadWriteOnce"]}}"#)
            .status(422, "Invalid").causes(&[("FieldValueRequired", "spec.resources[storage]")]),
        post("create claim with negative storage", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"negative"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"-1Gi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "spec.resources[storage]")]),
        patch("change claim storageClassName", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending", r#"{"spec":{"storageClassName":"agree-imm-{sfx}"}}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "spec")]).details("PersistentVolumeClaim", CORE),
        patch("grow an unbound claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending", r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "spec")]),
        patch("shrink an unbound claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending", r#"{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}"#)
            .status(422, "Invalid")
            .causes(&[("FieldValueForbidden", "spec"), ("FieldValueForbidden", "spec.resources.requests.storage")]),
        patch("label a claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending", r#"{"metadata":{"labels":{"testnet.io/role":"genesis"}}}"#)
            .field("/metadata/labels/testnet.io~1role", Eq(r#""genesis""#))
            .field("/spec/resources/requests/storage", Eq(r#""1Gi""#)),
        post("create claim in a missing namespace", "/api/v1/namespaces/agree-missing-{sfx}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#)
            .status(404, "NotFound").details("namespaces", CORE).field("/details/name", Eq(r#""agree-missing-{sfx}""#)),
        post("create claim naming a missing class (accepted)", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"noclass"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"agree-missing-{sfx}","resources":{"requests":{"storage":"1Gi"}}}}"#)
            .field("/status/phase", Eq(r#""Pending""#)),
        get("event for the WaitForFirstConsumer claim", "/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dpending")
            .poll()
            .field("/items/0/reason", Eq(r#""WaitForFirstConsumer""#))
            .field("/items/0/type", Eq(r#""Normal""#)),
        get("event for the claim with a missing class", "/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dnoclass")
            .poll()
            .field("/items/0/reason", Eq(r#""ProvisioningFailed""#))
            .field("/items/0/type", Eq(r#""Warning""#)),
        get("claim with a missing class stays Pending", "/api/v1/namespaces/{ns}/persistentvolumeclaims/noclass")
            .field("/status/phase", Eq(r#""Pending""#)),
        // ---- bound claims. A real server without a provisioner binds a claim only to a volume an
        // administrator made for it; the sandbox provisions one itself. Either way the claim binds.
        post("create a volume reserved for claim bound-fixed", "/api/v1/persistentvolumes",
            r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"agree-pv-fixed-{sfx}"},"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"storageClassName":"agree-imm-{sfx}","persistentVolumeReclaimPolicy":"Retain","hostPath":{"path":"/tmp/agree-pv-fixed-{sfx}"},"claimRef":{"namespace":"{ns}","name":"bound-fixed"}}}"#),
        post("create a volume reserved for claim bound-grow", "/api/v1/persistentvolumes",
            r#"{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"agree-pv-grow-{sfx}"},"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"storageClassName":"agree-exp-{sfx}","persistentVolumeReclaimPolicy":"Retain","hostPath":{"path":"/tmp/agree-pv-grow-{sfx}"},"claimRef":{"namespace":"{ns}","name":"bound-grow"}}}"#),
        post("create claim in the class without expansion", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"bound-fixed"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"agree-imm-{sfx}","resources":{"requests":{"storage":"1Gi"}}}}"#),
        post("create claim in the class with expansion", "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"bound-grow"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"agree-exp-{sfx}","resources":{"requests":{"storage":"1Gi"}}}}"#),
        get("claim bound-fixed binds", "/api/v1/namespaces/{ns}/persistentvolumeclaims/bound-fixed")
            .poll()
            .field("/status/phase", Eq(r#""Bound""#))
            .field("/spec/volumeName", Present)
            .field("/status/capacity/storage", Eq(r#""1Gi""#)),
        get("claim bound-grow binds", "/api/v1/namespaces/{ns}/persistentvolumeclaims/bound-grow")
            .poll()
            .field("/status/phase", Eq(r#""Bound""#)),
        patch("grow a bound claim whose class forbids expansion", "/api/v1/namespaces/{ns}/persistentvolumeclaims/bound-fixed",
            r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#)
            .status(403, "Forbidden").details("persistentvolumeclaims", CORE),
        patch("shrink a bound claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims/bound-fixed",
            r#"{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}"#)
            .status(422, "Invalid").causes(&[("FieldValueForbidden", "spec.resources.requests.storage")]).details("PersistentVolumeClaim", CORE),
        patch("grow a bound claim whose class allows expansion", "/api/v1/namespaces/{ns}/persistentvolumeclaims/bound-grow",
            r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#)
            .field("/spec/resources/requests/storage", Eq(r#""2Gi""#)),
        // ---- Lease
        post("create lease", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"node-a","leaseDurationSeconds":15}}"#)
            .field("/spec/holderIdentity", Eq(r#""node-a""#)),
        post("create lease whose name exists", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"node-b","leaseDurationSeconds":15}}"#)
            .status(409, "AlreadyExists").details("leases", COORD),
        post("create lease with duration 0", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"zero"},"spec":{"holderIdentity":"node-a","leaseDurationSeconds":0}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "spec.leaseDurationSeconds")]).details("Lease", COORD),
        post("create lease with negative duration and transitions", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"negative"},"spec":{"holderIdentity":"node-a","leaseDurationSeconds":-5,"leaseTransitions":-1}}"#)
            .status(422, "Invalid")
            .causes(&[("FieldValueInvalid", "spec.leaseDurationSeconds"), ("FieldValueInvalid", "spec.leaseTransitions")]),
        post("create lease with invalid name", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"Bad_Lease"},"spec":{"holderIdentity":"node-a"}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "metadata.name")]).details("Lease", COORD),
        patch("set lease duration 0", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock", r#"{"spec":{"leaseDurationSeconds":0}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "spec.leaseDurationSeconds")]),
        put("replace lease with a stale resourceVersion", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock","resourceVersion":"1"},"spec":{"holderIdentity":"node-b","leaseDurationSeconds":15}}"#)
            .status(409, "Conflict").details("leases", COORD),
        // ---- ConfigMap (the network-state document)
        post("create configmap", "/api/v1/namespaces/{ns}/configmaps",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"state"},"data":{"network-state.json":"{}"}}"#)
            .ok(201),
        put("replace configmap with a stale resourceVersion", "/api/v1/namespaces/{ns}/configmaps/state",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"state","resourceVersion":"1"},"data":{"network-state.json":"{}"}}"#)
            .status(409, "Conflict").details("configmaps", CORE),
        put("replace a configmap that does not exist", "/api/v1/namespaces/{ns}/configmaps/absent",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"absent","resourceVersion":"5"},"data":{"k":"v"}}"#)
            .status(404, "NotFound").details("configmaps", CORE),
        post("create configmap with a bad key", "/api/v1/namespaces/{ns}/configmaps",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"badkey"},"data":{"a b":"v"}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "data[a b]")]).details("ConfigMap", CORE),
        post("create configmap over 1 MiB", "/api/v1/namespaces/{ns}/configmaps", oversized_config_map())
            .status(422, "Invalid").causes(&[("FieldValueTooLong", "[]")]).details("ConfigMap", CORE),
        put("replace lease without resourceVersion", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"node-b","leaseDurationSeconds":15}}"#)
            .status(422, "Invalid").causes(&[("FieldValueInvalid", "metadata.resourceVersion")]).details("leases", COORD),
        put("replace lease with a body naming another lease", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/other",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"node-b"}}"#)
            .status(400, "BadRequest"),
        get("lease unchanged after refused writes", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock")
            .field("/spec/holderIdentity", Eq(r#""node-a""#))
            .field("/spec/leaseDurationSeconds", Eq("15")),
        delete("delete missing lease", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/missing")
            .status(404, "NotFound").details("leases", COORD),
        // ---- authentication
        get("wrong token", "/api/v1/namespaces").wrong_token().status(401, "Unauthorized"),
        // ---- deletion: finalizers and the namespace controller
        delete("delete an unused claim", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending")
            .field("/metadata/deletionTimestamp", Present),
        get("the unused claim disappears once its finalizer is removed", "/api/v1/namespaces/{ns}/persistentvolumeclaims/pending")
            .poll()
            .status(404, "NotFound")
            .details("persistentvolumeclaims", CORE),
        delete("delete the namespace", "/api/v1/namespaces/{ns}").field("/status/phase", Eq(r#""Terminating""#)),
        post("create in a terminating namespace", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"late"},"spec":{"holderIdentity":"node-a"}}"#)
            .status(403, "Forbidden").causes(&[("NamespaceTerminating", "metadata.namespace")]).details("leases", COORD),
        get("the namespace disappears with its contents", "/api/v1/namespaces/{ns}")
            .poll()
            .status(404, "NotFound")
            .details("namespaces", CORE),
        // ---- cleanup of cluster-scoped objects
        delete("delete Immediate class", "/apis/storage.k8s.io/v1/storageclasses/agree-imm-{sfx}"),
        delete("delete WaitForFirstConsumer class", "/apis/storage.k8s.io/v1/storageclasses/agree-wffc-{sfx}"),
        delete("delete expansion class", "/apis/storage.k8s.io/v1/storageclasses/agree-exp-{sfx}"),
        delete("delete volume agree-pv-fixed", "/api/v1/persistentvolumes/agree-pv-fixed-{sfx}"),
        delete("delete volume agree-pv-grow", "/api/v1/persistentvolumes/agree-pv-grow-{sfx}"),
    ]
}

// ------------------------------------------------------------------------------------ observing

/// The parts of an answer the table compares.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    code: u16,
    reason: Option<String>,
    causes: Vec<(String, String)>,
    kind: Option<String>,
    group: Option<String>,
    body: Value,
}

impl Observed {
    fn from_response(code: u16, text: &str) -> Observed {
        let body: Value =
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        let is_status = body.get("kind").and_then(Value::as_str) == Some("Status");
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let details = body.get("details");
        let mut causes: Vec<(String, String)> = details
            .and_then(|d| d.get("causes"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            s(c.get("reason")).unwrap_or_default(),
                            s(c.get("field")).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        causes.sort();
        Observed {
            code,
            reason: if is_status {
                s(body.get("reason"))
            } else {
                None
            },
            causes: if is_status { causes } else { vec![] },
            kind: if is_status {
                s(details.and_then(|d| d.get("kind")))
            } else {
                None
            },
            group: if is_status {
                s(details.and_then(|d| d.get("group")))
            } else {
                None
            },
            body,
        }
    }

    /// What differs from the expectation, in words; empty when it matches.
    fn mismatches(&self, e: &Expect, vars: &Vars) -> Vec<String> {
        let mut out = vec![];
        if self.code != e.code {
            out.push(format!("code {} (want {})", self.code, e.code));
        }
        if let Some(reason) = e.reason {
            if self.reason.as_deref() != Some(reason) {
                out.push(format!("reason {:?} (want {reason:?})", self.reason));
            }
            let mut want: Vec<(String, String)> = e
                .causes
                .iter()
                .map(|(r, f)| (r.to_string(), f.to_string()))
                .collect();
            want.sort();
            if self.causes != want {
                out.push(format!("causes {:?} (want {want:?})", self.causes));
            }
        }
        if let Some(kind) = e.kind {
            if self.kind.as_deref() != Some(kind) {
                out.push(format!("details.kind {:?} (want {kind:?})", self.kind));
            }
        }
        match e.group {
            Some("") if self.group.is_some() => {
                out.push(format!("details.group {:?} (want none)", self.group))
            }
            Some(g) if !g.is_empty() && self.group.as_deref() != Some(g) => {
                out.push(format!("details.group {:?} (want {g:?})", self.group))
            }
            _ => {}
        }
        for (pointer, want) in &e.fields {
            let got = self.body.pointer(pointer);
            match want {
                Want::Present if got.is_none() => out.push(format!("{pointer} missing")),
                Want::Eq(lit) => {
                    let lit = vars.fill(lit);
                    let expected: Value =
                        serde_json::from_str(&lit).unwrap_or_else(|_| Value::String(lit.clone()));
                    if got != Some(&expected) {
                        out.push(format!(
                            "{pointer} = {} (want {expected})",
                            got.map_or("missing".into(), Value::to_string)
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The comparable summary of two servers' answers (bodies hold timestamps and uids).
    fn summary(
        &self,
    ) -> (
        u16,
        Option<&str>,
        &[(String, String)],
        Option<&str>,
        Option<&str>,
    ) {
        (
            self.code,
            self.reason.as_deref(),
            &self.causes,
            self.kind.as_deref(),
            self.group.as_deref(),
        )
    }
}

/// Per-run names, so runs against a shared cluster never collide.
struct Vars {
    ns: String,
    sfx: String,
}

impl Vars {
    fn new() -> Vars {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let sfx = format!("{:x}{:x}", std::process::id() % 0xffff, nanos % 0xfffff);
        Vars {
            ns: format!("agree-{sfx}"),
            sfx,
        }
    }
    fn fill(&self, s: &str) -> String {
        s.replace("{ns}", &self.ns).replace("{sfx}", &self.sfx)
    }
}

// ---------------------------------------------------------------------------------------- client

/// A server to run the table against: where it is, how to authenticate, and what to stop after.
struct Server {
    name: String,
    url: String,
    token: Option<String>,
    agent: Agent,
    _running: Running,
}

/// What keeps the server alive: one the harness started (stopped on drop) or one the user runs.
enum Running {
    Started(#[allow(dead_code)] KubeServer),
    External,
}

/// What a kubeconfig's current context says about reaching its cluster.
struct KubeconfigAccess {
    server: String,
    ca_pem: Option<Vec<u8>>,
    token: Option<String>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

fn read_kubeconfig(path: &Path) -> KubeconfigAccess {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read kubeconfig {}: {e}", path.display()));
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("parse kubeconfig {}: {e}", path.display()));
    let named = |list: &str, name: &str| -> serde_yaml::Value {
        doc[list]
            .as_sequence()
            .and_then(|s| s.iter().find(|e| e["name"].as_str() == Some(name)))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "kubeconfig {}: no {list} entry named {name:?}",
                    path.display()
                )
            })
    };
    let context_name = doc["current-context"]
        .as_str()
        .unwrap_or_else(|| panic!("kubeconfig {}: no current-context", path.display()));
    let context = named("contexts", context_name)["context"].clone();
    let cluster =
        named("clusters", context["cluster"].as_str().unwrap_or_default())["cluster"].clone();
    let user = named("users", context["user"].as_str().unwrap_or_default())["user"].clone();
    let base_dir = path.parent().unwrap_or(Path::new("."));
    // `*-data` is base64 inline; the plain key names a file relative to the kubeconfig.
    let material = |m: &serde_yaml::Value, key: &str| -> Option<Vec<u8>> {
        if let Some(b64) = m[format!("{key}-data").as_str()].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_else(|e| {
                    panic!(
                        "kubeconfig {}: {key}-data is not base64: {e}",
                        path.display()
                    )
                });
            return Some(bytes);
        }
        m[key].as_str().map(|file| {
            std::fs::read(base_dir.join(file))
                .unwrap_or_else(|e| panic!("kubeconfig {}: read {file}: {e}", path.display()))
        })
    };
    let token = user["token"].as_str().map(str::to_owned).or_else(|| {
        user["tokenFile"].as_str().map(|f| {
            std::fs::read_to_string(base_dir.join(f))
                .unwrap_or_else(|e| {
                    panic!("kubeconfig {}: read tokenFile {f}: {e}", path.display())
                })
                .trim()
                .to_owned()
        })
    });
    let client_cert = material(&user, "client-certificate").zip(material(&user, "client-key"));
    KubeconfigAccess {
        server: cluster["server"]
            .as_str()
            .unwrap_or_else(|| panic!("kubeconfig {}: cluster has no server", path.display()))
            .trim_end_matches('/')
            .to_owned(),
        ca_pem: material(&cluster, "certificate-authority"),
        token,
        client_cert,
    }
}

/// A blocking HTTPS client that trusts only the kubeconfig's CA, on rustls with aws-lc-rs.
fn agent_for(access: &KubeconfigAccess) -> Agent {
    let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ));
    if let Some(pem) = &access.ca_pem {
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        assert!(
            !certs.is_empty(),
            "kubeconfig CA data holds no PEM certificate"
        );
        tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    if let Some((cert_pem, key_pem)) = &access.client_cert {
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(cert_pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let key = PrivateKey::from_pem(key_pem).expect("kubeconfig client key is PEM");
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key.to_owned())));
    }
    Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Server {
    fn from_kubeconfig(name: &str, path: &Path, running: Running) -> Server {
        let access = read_kubeconfig(path);
        Server {
            name: name.to_owned(),
            url: access.server.clone(),
            token: access.token.clone(),
            agent: agent_for(&access),
            _running: running,
        }
    }

    /// Starts `testnet-kube-sandbox` with its own kubeconfig.
    fn sandbox() -> Server {
        Server::started(KubeServer::sandbox())
    }

    /// Starts etcd + kube-apiserver + kube-controller-manager with `scripts/kube-real start`.
    fn real() -> Server {
        Server::started(KubeServer::real())
    }

    fn started(k: KubeServer) -> Server {
        let kubeconfig = k.kubeconfig.clone();
        let (label, url) = (k.label, k.url.clone());
        let server = Server::from_kubeconfig(label, &kubeconfig, Running::Started(k));
        assert_eq!(
            server.url,
            url.trim_end_matches('/'),
            "the kubeconfig of {label} names another server than it serves"
        );
        server
    }

    fn send(&self, row: &Row, vars: &Vars) -> Observed {
        let url = format!("{}{}", self.url, vars.fill(row.path));
        let mut builder = ureq::http::Request::builder().method(row.method).uri(&url);
        let token = match row.auth {
            Auth::Token => self.token.clone(),
            Auth::WrongToken => Some("not-the-token".to_owned()),
        };
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        builder = builder.header("Accept", "application/json");
        let result = match row.body {
            Some(body) => {
                let req = builder
                    .header("Content-Type", row.content_type)
                    .body(vars.fill(body))
                    .expect("request");
                self.agent.run(req)
            }
            None => self.agent.run(builder.body(()).expect("request")),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{} {} {url}: {e}", self.name, row.method));
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("{} {url}: read body: {e}", self.name));
        Observed::from_response(code, &text)
    }

    /// Runs the whole table; returns every row's last answer and the rows that did not match.
    fn run_table(&self, vars: &Vars) -> (Vec<Observed>, Vec<String>) {
        let mut observed = vec![];
        let mut failures = vec![];
        for (i, row) in table().iter().enumerate() {
            let started = Instant::now();
            let (obs, problems) = loop {
                let obs = self.send(row, vars);
                let problems = obs.mismatches(&row.expect, vars);
                if problems.is_empty() || !row.poll || started.elapsed() > POLL_LIMIT {
                    break (obs, problems);
                }
                std::thread::sleep(Duration::from_millis(250));
            };
            if !problems.is_empty() {
                failures.push(format!(
                    "[{}] row {i} \"{}\": {} {}\n    {}\n    body: {}",
                    self.name,
                    row.what,
                    row.method,
                    vars.fill(row.path),
                    problems.join("; "),
                    truncate(&obs.body.to_string(), 600)
                ));
            }
            observed.push(obs);
        }
        (observed, failures)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn assert_table(server: &Server) -> Vec<Observed> {
    let vars = Vars::new();
    let (observed, failures) = server.run_table(&vars);
    assert!(
        failures.is_empty(),
        "{} of {} rows differ from kube-apiserver v1.20.2's answers on {}:\n{}",
        failures.len(),
        observed.len(),
        server.name,
        failures.join("\n")
    );
    observed
}

// ----------------------------------------------------------------------------------------- tests

#[test]
fn sandbox_answers_like_kube_apiserver() {
    let sandbox = Server::sandbox();
    assert_table(&sandbox);
}

/// Keeps the table honest (every expectation is what the real server says), then runs the sandbox
/// too and compares the two servers row by row on code, reason, causes and details.
#[test]
fn real_kube_apiserver_answers_as_recorded_and_like_the_sandbox() {
    if !KubeServer::real_available() {
        eprintln!("skipped: no real kube-apiserver (run scripts/kube-real build, or set TESTNET_KUBE_REAL=1)");
        return;
    }
    let real = Server::real();
    let real_answers = assert_table(&real);
    drop(real);

    let sandbox = Server::sandbox();
    let vars = Vars::new();
    let (sandbox_answers, _) = sandbox.run_table(&vars);
    let rows = table();
    let diffs: Vec<String> = rows
        .iter()
        .zip(real_answers.iter().zip(&sandbox_answers))
        .enumerate()
        .filter(|(_, (_, (r, s)))| r.summary() != s.summary())
        .map(|(i, (row, (r, s)))| {
            format!(
                "row {i} \"{}\":\n    real    {:?}\n    sandbox {:?}",
                row.what,
                r.summary(),
                s.summary()
            )
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "{} rows answer differently on the sandbox and the real server:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn cluster_at_testnet_acc_kubeconfig_answers_like_kube_apiserver() {
    let Some(path) = std::env::var_os("TESTNET_ACC_KUBECONFIG") else {
        eprintln!("skipped: TESTNET_ACC_KUBECONFIG is not set");
        return;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cluster = Server::from_kubeconfig(
        "TESTNET_ACC_KUBECONFIG cluster",
        Path::new(&path),
        Running::External,
    );
    assert_table(&cluster);
}

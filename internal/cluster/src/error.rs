//! The one error type of every cluster operation, carrying what the caller needs to explain it:
//! which object, which value, what the server said, and what to do about it.

use std::time::Duration;

/// One `details.causes[]` entry of a Kubernetes `Status`: which field the server rejected and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// Machine-readable cause, e.g. `FieldValueForbidden`, `FieldValueInvalid`.
    pub reason: String,
    /// The rejected field path, e.g. `parameters`, `spec.resources.requests.storage`.
    pub field: String,
    /// The server's explanation.
    pub message: String,
}

/// Which object an operation was about; every server error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Kubernetes kind, e.g. `StorageClass`.
    pub kind: &'static str,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

impl ObjectRef {
    pub(crate) fn cluster(kind: &'static str, name: &str) -> Self {
        Self {
            kind,
            namespace: None,
            name: name.to_string(),
        }
    }
    pub(crate) fn namespaced(kind: &'static str, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} \"{}/{}\"", self.kind, ns, self.name),
            None => write!(f, "{} \"{}\"", self.kind, self.name),
        }
    }
}

/// Errors of connecting to and working with a Kubernetes cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No configuration source gave a cluster to talk to.
    #[error("no Kubernetes cluster configured: tried {tried}. Set `host` (and a token or client certificate), point `kubeconfig_path` or KUBECONFIG at a kubeconfig, or set TESTNET_KUBE_HOST/TESTNET_KUBE_TOKEN")]
    NoConfiguration {
        /// The sources looked at, in order.
        tried: String,
    },
    /// A kubeconfig file could not be read or parsed, or describes an unusable cluster/user.
    #[error("bad kubeconfig {path}: {reason}. Fix the file or point `kubeconfig_path`/KUBECONFIG at a valid one")]
    BadKubeconfig {
        /// The file(s) involved, colon-separated.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The requested context is not in the kubeconfig.
    #[error("context {context:?} is not in kubeconfig {path}; available contexts: {}. Set `kube_context` (or TESTNET_KUBE_CONTEXT) to one of them", available.join(", "))]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// The kubeconfig file(s).
        path: String,
        /// Context names the kubeconfig does define.
        available: Vec<String>,
    },
    /// An explicit connection setting is malformed (bad URL, bad PEM, ...).
    #[error("invalid connection setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `host`, `cluster_ca_certificate`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The API server could not be reached or the TLS handshake failed.
    #[error("cannot reach the Kubernetes API server at {url}: {detail}. {hint}")]
    Unreachable {
        /// The server URL.
        url: String,
        /// The transport error.
        detail: String,
        /// What to check.
        hint: &'static str,
    },
    /// The exec credential plugin (e.g. `gke-gcloud-auth-plugin`) could not give a token. Carries
    /// the plugin's own words (stderr), never its environment, which may hold secrets.
    #[error("the exec credential plugin {command:?} failed: {detail}. Run it by hand to see why (is it installed, on PATH, and logged in?)")]
    CredentialPlugin {
        /// The plugin command.
        command: String,
        /// Exit status and stderr, or why it could not start or be understood.
        detail: String,
    },
    /// The server rejected the credentials (HTTP 401).
    #[error("the Kubernetes API server at {url} rejected the credentials (401 Unauthorized): {message}. Check the token, client certificate or exec plugin, and that it belongs to this cluster")]
    Unauthorized {
        /// The server URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The credentials are valid but not allowed to do this (HTTP 403).
    #[error(
        "forbidden to {verb} {object} (403): {message}. Grant the identity RBAC permission for it"
    )]
    Forbidden {
        /// What was attempted: `get`, `create`, `update`, `delete`, `list`.
        verb: &'static str,
        /// The object.
        object: ObjectRef,
        /// The server's message.
        message: String,
    },
    /// The object does not exist.
    #[error("{object} not found")]
    NotFound {
        /// The object.
        object: ObjectRef,
    },
    /// Creating an object that already exists.
    #[error("{object} already exists; import it or choose another name")]
    AlreadyExists {
        /// The object.
        object: ObjectRef,
    },
    /// The object changed since it was read (optimistic concurrency, HTTP 409 Conflict).
    #[error("{object} was modified concurrently: {message}")]
    Conflict {
        /// The object.
        object: ObjectRef,
        /// The server's message.
        message: String,
    },
    /// The server refused the object as invalid (HTTP 422), with the fields it named.
    #[error("{object} is invalid: {message}")]
    Invalid {
        /// The object.
        object: ObjectRef,
        /// The server's message.
        message: String,
        /// Each rejected field.
        causes: Vec<FieldCause>,
    },
    /// Any other answer of the server.
    #[error("{verb} {object} failed: HTTP {code} {reason}: {message}")]
    Api {
        /// What was attempted.
        verb: &'static str,
        /// The object.
        object: ObjectRef,
        /// HTTP status code.
        code: u16,
        /// Kubernetes `Status.reason`.
        reason: String,
        /// Kubernetes `Status.message`.
        message: String,
    },
    /// A transport error during an operation (after connecting).
    #[error("{verb} {object} failed: {detail}")]
    Transport {
        /// What was attempted.
        verb: &'static str,
        /// The object.
        object: ObjectRef,
        /// The underlying error.
        detail: String,
    },
    /// An update would change fields the server never lets change; the object must be replaced.
    #[error("{object} cannot be updated in place: {} cannot change after creation; it must be replaced", fields.join(", "))]
    Immutable {
        /// The object.
        object: ObjectRef,
        /// The immutable fields that differ.
        fields: Vec<&'static str>,
    },
    /// A claim's storage request would shrink; Kubernetes only grows volumes.
    #[error("{object}: storage can only grow, from {current} to {requested} is a shrink. Replace the claim to get a smaller volume")]
    ShrinkNotAllowed {
        /// The claim.
        object: ObjectRef,
        /// The current request.
        current: String,
        /// The new request.
        requested: String,
    },
    /// A claim's class does not allow expansion.
    #[error("{object}: storage class {class:?} does not allow volume expansion; set allow_volume_expansion on the class or replace the claim")]
    ExpansionNotAllowed {
        /// The claim.
        object: ObjectRef,
        /// Its storage class.
        class: String,
    },
    /// Waiting for a claim to bind ran out of time.
    #[error("{object} not ready after {waited:?} (phase {phase}); events: {}", if events.is_empty() { "none".to_string() } else { events.join("; ") })]
    NotReady {
        /// The claim.
        object: ObjectRef,
        /// Last phase seen.
        phase: String,
        /// How long we waited.
        waited: Duration,
        /// The claim's Events (`reason: message`), oldest first.
        events: Vec<String>,
    },
    /// A claim stays Terminating because pods still mount it (the pvc-protection finalizer).
    #[error("{object} is still in use after {waited:?}: {}; finalizers {}. {}", if pods.is_empty() { "no pod found using it".to_string() } else { format!("mounted by pods {}", pods.join(", ")) }, finalizers.join(", "), if pods.is_empty() { "Check for pods in other states and that kube-controller-manager (which removes kubernetes.io/pvc-protection) is running" } else { "Delete those pods or wait for them to finish" })]
    StillInUse {
        /// The claim.
        object: ObjectRef,
        /// Pods (in the claim's namespace) whose volumes reference the claim.
        pods: Vec<String>,
        /// Finalizers still on the claim.
        finalizers: Vec<String>,
        /// How long we waited.
        waited: Duration,
    },
    /// The operation was cancelled (Terraform interrupt).
    #[error("{what} cancelled")]
    Cancelled {
        /// What was being waited for.
        what: String,
    },
}

impl ClusterError {
    /// Map a kube error of an operation on `object` to a typed error.
    pub(crate) fn from_kube(e: kube::Error, verb: &'static str, object: ObjectRef) -> Self {
        match e {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = status.message.clone();
                match code {
                    401 => ClusterError::Unauthorized {
                        url: String::new(),
                        message,
                    },
                    403 => ClusterError::Forbidden {
                        verb,
                        object,
                        message,
                    },
                    404 if verb != "list" => ClusterError::NotFound { object },
                    409 if status.reason == "AlreadyExists" => {
                        ClusterError::AlreadyExists { object }
                    }
                    409 => ClusterError::Conflict { object, message },
                    422 => ClusterError::Invalid {
                        object,
                        message,
                        causes: status
                            .details
                            .map(|d| {
                                d.causes
                                    .into_iter()
                                    .map(|c| FieldCause {
                                        reason: c.reason,
                                        field: c.field,
                                        message: c.message,
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    },
                    _ => ClusterError::Api {
                        verb,
                        object,
                        code,
                        reason: status.reason,
                        message,
                    },
                }
            }
            other => ClusterError::Transport {
                verb,
                object,
                detail: other.to_string(),
            },
        }
    }

    /// True when the error is a 409 Conflict (stale resourceVersion).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClusterError::Conflict { .. })
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::NotFound { .. })
    }
}

//! The Kubernetes side of terraform-provider-testnet: connecting to a cluster, StorageClasses,
//! shared-state PersistentVolumeClaims, the network-state lock and the snapshot index lock on
//! Leases, and Jobs that run next to the data.
//!
//! Plain Rust types in, typed errors ([`ClusterError`], [`LockError`]) out; nothing here knows
//! Terraform, so the same code serves the provider, command-line tools and tests. All operations
//! go through kube-rs's generic `Api<K>`, so every kind shares one error mapping.
//!
//! k8s-openapi needs exactly one Kubernetes version feature per build; this crate enables `latest`
//! (v1_37). Every crate in the workspace that depends on k8s-openapi must pick the same one.

mod claim;
mod config_map;
mod connect;
mod cost;
mod error;
mod index_lock;
mod job;
mod job_log;
mod lock;
mod restore_job;
mod self_hosted_class;
mod server_time;
mod span;
mod storage_class;
mod validate;

pub use claim::{
    claim_ready, ClaimSpec, ClaimStatus, DataSource, MetadataPatch, SelectorRequirement,
    VolumeSelector, LABEL_MANAGED_BY, LABEL_NETWORK, LABEL_ROLE, MANAGED_BY,
    PVC_PROTECTION_FINALIZER,
};
pub use config_map::{StoredMap, CONFIG_MAP_MAX_BYTES};
pub use connect::{
    connect, resolve_source, Cluster, ConnectionConfig, ExecConfig, ServerVersion, Source,
    ENV_CONTEXT, ENV_HOST, ENV_TOKEN,
};
pub use cost::{
    gib, monthly_cost, Price, PriceError, PriceTable, DEFAULT_SSD_PRICE, DEFAULT_STANDARD_PRICE,
    LABEL_TIER,
};
pub use error::{ClusterError, FieldCause, ObjectRef};
pub use index_lock::{
    parse_lease_ref, unique_holder, HeldLease, LeaseIndexLock, INDEX_LOCK_LEASE_SECONDS,
};
pub use job::{ClaimMount, JobError, JobOutcome, JobSpec, LineSink};
pub use lock::{
    default_holder, holder_from, lease_expiry, next_poll, retry_after, view_lease, LeaseView,
    LockError, LockRequest, LockState, ReleaseOutcome,
};
pub use restore_job::{restore_job, JobSettings, RestoreRequest, StoreAccess, RESTORE_MOUNT};
pub use self_hosted_class::{
    check_target, infer_self_hosted, self_hosted_preset, CephTarget, PresetError, SelfHosted,
    LOCAL_PATH_PROVISIONER, ROOK_CEPHFS_PROVISIONER, ROOK_OPERATOR_NAMESPACE, ROOK_RBD_PROVISIONER,
};
pub use server_time::{parse_http_date, ServerTime};
pub use span::{
    acquire_span, read_span, release_span, renew_span, span_holder, still_ours, BadToken, Behind,
    FencingToken, Member, Reading, ReleaseReport, SpanError, SpanState,
};
pub use storage_class::{
    immutable_changes, infer_preset, tier_preset, Cloud, StorageClassInfo, StorageClassSpec, Tier,
    TopologyTerm, DEFAULT_CLASS_ANNOTATION,
};
pub use validate::{
    parse_quantity, validate_dns1123_label, validate_dns1123_subdomain, AccessMode, EnumError,
    NameError, Quantity, QuantityError, ReclaimPolicy, VolumeBindingMode, VolumeMode,
};

/// Timestamps of lock state (RFC 3339 when displayed).
pub use k8s_openapi::jiff::Timestamp;
/// Cancellation of long waits (Terraform interrupt).
pub use tokio_util::sync::CancellationToken;

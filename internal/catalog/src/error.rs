use objstore::StoreError;

/// Everything that can go wrong while publishing or reading a catalog. Each variant names the
/// object or value at fault and, where there is one, what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid {field} {value:?}: {allowed}")]
    InvalidName {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("source directory {path}: {detail}")]
    Source { path: String, detail: String },
    #[error(
        "artifact {url} already exists (sha256 {existing}); artifacts are never overwritten: \
         choose another label or delete the existing artifact first"
    )]
    ArtifactExists { url: String, existing: String },
    #[error("archiving failed: {0}")]
    Archive(#[from] archiver::ArchiveError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "verification of {url} failed: {what} is {actual} in the store but {expected} was expected; \
         nothing was published"
    )]
    VerifyFailed {
        url: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    /// A document that still failed to parse after being read again a few times (a torn read
    /// of an object being rewritten parses on a later read and never ends up here).
    #[error(
        "{url} ({size} bytes) is not a valid catalog document ({detail}); it was left untouched: \
         repair or remove it by hand"
    )]
    CorruptDocument {
        url: String,
        size: u64,
        detail: String,
    },
    #[error(
        "store {url} does not enforce {}: concurrent publishers into it could overwrite each \
         other's base.json and latest-pointer changes, and a publisher could report an artifact \
         published that is missing from the index. The catalog was left untouched. Serialise publishers \
         with an index lock (a Kubernetes Lease), or acknowledge that only one publisher writes \
         to this prefix at a time",
        missing.join(" and ")
    )]
    UnsafeStore {
        url: String,
        missing: Vec<&'static str>,
    },
    #[error("index lock {lock}: {detail}; the index was not changed")]
    IndexLock { lock: String, detail: String },
    #[error("the index lock was lost while {step}: {detail}")]
    IndexLockLost { step: &'static str, detail: String },
    #[error(
        "artifact {name} was uploaded, but {what} at {url} still does not name it after \
         {attempts} writes read back; the store is losing writes (does another publisher \
         write to this prefix without the index lock?)"
    )]
    NotIndexed {
        name: String,
        what: &'static str,
        url: String,
        attempts: u32,
    },
    #[error(
        "{url} has format version {found}, this tool understands up to {supported}; \
         use a newer tool"
    )]
    UnsupportedFormat {
        url: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "{url} kept changing under {attempts} conditional writes; too many concurrent \
         publishers, try again"
    )]
    Contention { url: String, attempts: u32 },
    #[error("artifact {name:?} is not in the catalog at {url}")]
    NotInCatalog { name: String, url: String },
    #[error("artifact {name} was published and indexed, but {step} failed: {source}")]
    PartiallyPublished {
        name: String,
        step: &'static str,
        source: Box<CatalogError>,
    },
    #[error("restore of {name} into {into} failed: {source}; {into} was left as it was")]
    Restore {
        name: String,
        into: String,
        #[source]
        source: archiver::ArchiveError,
    },
    #[error("reading {url} back failed: {source}")]
    ReadBack {
        url: String,
        #[source]
        source: archiver::ArchiveError,
    },
    #[error(
        "restore of {name} into {into} failed: what was read does not match its metadata: \
         {what} is {actual}, expected {expected}; {into} was left as it was"
    )]
    RestoreMismatch {
        name: String,
        into: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("cancelled; nothing was published")]
    Cancelled,
    #[error(
        "no artifact of network {network:?} and kind {kind:?} in {store}: no latest pointer \
         ({pointer}) and no index entry; publish one first, or check --store, --network and --kind"
    )]
    NoLatest {
        network: String,
        kind: String,
        store: String,
        pointer: String,
    },
    #[error(
        "{into} already holds artifact {held} (sha256 {held_sha256}, restored {restored_at}), \
         not {wanted} (sha256 {wanted_sha256}); it was left as it was: replace it with --replace"
    )]
    HoldsOtherArtifact {
        into: String,
        held: String,
        held_sha256: String,
        restored_at: String,
        wanted: String,
        wanted_sha256: String,
    },
    #[error(
        "{into} is not empty: it holds files but no restore marker ({marker}) saying which \
         artifact they are; \
         restoring {wanted} over them would mix two states, so it was left as it was: choose an \
         empty or missing directory, or replace its contents with --replace"
    )]
    HoldsUnmarked {
        into: String,
        marker: String,
        wanted: String,
    },
    #[error(
        "{path} is not a readable restore marker ({detail}); {into} was left as it was: \
         replace its contents with --replace"
    )]
    BadMarker {
        path: String,
        into: String,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, CatalogError>;

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
    #[error(
        "{url} is not a valid catalog document ({detail}); it was left untouched: \
         repair or remove it by hand"
    )]
    CorruptDocument { url: String, detail: String },
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
}

pub type Result<T> = std::result::Result<T, CatalogError>;

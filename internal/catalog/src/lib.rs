//! The catalog of snapshot artifacts in one store prefix: publishing (archive → upload → verify
//! → metadata → index → latest pointer → retention), reading, verifying, restoring and deleting.
//!
//! Layout of a store prefix (see `README.md`):
//!
//! | key | what |
//! |---|---|
//! | `<network>-<kind>-<label>.tar.lz4` | the artifact (tar stream, LZ4 frame) |
//! | `<network>-<kind>-<label>.json` | its [`ArtifactMeta`] |
//! | `base.json` | the [`Index`] of every artifact |
//! | `<network>-<kind>-latest.json` | a [`LatestPointer`] to the newest artifact of a network and kind |
//! | `<network>-<kind>-tarball` | S3 only: empty object whose website redirect forwards to the newest artifact |
//!
//! Retention takes artifacts out of the index at once but deletes their objects only after a
//! grace period (see [`apply_retention`]), so a reader that just followed the index or a pointer
//! can finish.
//!
//! Concurrent publishers into one prefix are safe: every change of `base.json` and of a pointer is
//! a conditional write retried on conflict, so no entry is lost and pointers only move forward.
//! That needs a store that enforces conditional writes; publishing probes for it and refuses a
//! store that does not, unless publishers hold an index lock or the caller vouches for a single
//! publisher ([`IndexWrites`]). Every publish reads its index entry back before it succeeds.

mod confirm;
mod doc;
mod error;
mod guard;
mod marker;
pub mod memstore;
mod meta;
pub mod names;
mod ops;
mod publish;
mod restore_source;
mod retention;

pub use confirm::{confirm_report, ConfirmError, PublishReport};
pub use error::{CatalogError, Result};
pub use guard::{delete_artifact_with, HeldIndexLock, IndexLock, IndexWrites};
pub use marker::{
    read_marker, restore_latest, restore_marked, MarkerOptions, RestoreMarker, RestoreOutcome,
    MARKER_FILE,
};
pub use meta::{hex, ArtifactMeta, Index, LatestPointer, INDEX_FORMAT_VERSION};
pub use names::{artifact_key, latest_key, metadata_key, redirect_key, INDEX_KEY};
pub use ops::{
    delete_artifact, get, latest, list, restore_artifact, verify_artifact, verify_artifact_with,
    VerifyReport,
};
pub use publish::{default_label, publish, PublishRequest, VerifyMode};
pub use restore_source::{
    check_restore_source, normalize_sha256, split_artifact_url, RestoreReport, RestoreSourceError,
    REMOTE_SCHEMES,
};
pub use retention::{
    apply_retention, apply_retention_at, RetentionReport, Retired, DEFAULT_RETENTION_GRACE,
};

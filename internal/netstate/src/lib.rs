//! The network-state document: the network's own record of which component runs where, at which
//! version, and who applied what, kept as one ConfigMap (`<network>-network-state`) in every
//! cluster the network spans.
//!
//! What it guarantees: writes are compare-and-swap on each ConfigMap's `resourceVersion`, so two
//! concurrent writers never lose each other's history entry; a write carrying a fencing token
//! older than the document's (a lock holder that lost the lock) is refused; copies that differ
//! between clusters stop the write with an explanation (unless `repair_from` names the copy to
//! trust); a document written by a newer schema is refused, older ones are migrated step by step.
//! Nothing here knows Terraform.

mod compare;
mod document;
mod migrate;
mod store;

pub use compare::{compare, Divergence};
pub use document::{
    changes, config_map_name, secret_paths, Document, HistoryEntry, CURRENT_SCHEMA, DATA_KEY,
    DEFAULT_HISTORY_LIMIT,
};
pub use migrate::{read_document, v1_to_v2, v2_to_v3, version_of, MigrateError};
pub use store::{
    check_components, delete, read, read_all, write, StateError, WriteRequest, LABEL_NETWORK,
};

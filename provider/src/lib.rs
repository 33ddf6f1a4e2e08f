//! `terraform-provider-testnet`: the state blockchain testnets live on, in one `terraform apply`.
//!
//! Thin by design: each file maps Terraform values to the domain crates' plain types and their
//! typed errors to diagnostics. A library as well as a binary so that tools beside the plugin
//! (the registry docs generator, `testnet-docs`) read the very schemas Terraform is served.

mod clusters;
mod config;
mod convert;
mod job_settings;
mod network_lock;
mod network_state;
mod pvc_restore;
mod shared_state_pvc;
mod snapshot_artifact;
mod snapshot_data;
mod snapshot_job;
mod storage_class;

pub use config::TestnetProvider;

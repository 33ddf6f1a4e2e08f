//! `terraform-provider-testnet`: the state blockchain testnets live on, in one `terraform apply`.
//!
//! Thin by design: each file maps Terraform values to the domain crates' plain types and their
//! typed errors to diagnostics.

mod config;
mod convert;
mod network_lock;
mod shared_state_pvc;
mod snapshot_artifact;
mod snapshot_data;
mod storage_class;

fn main() -> std::process::ExitCode {
    tfplug::serve_blocking(config::TestnetProvider::default())
}

//! The plugin binary Terraform starts; everything lives in the library.

fn main() -> std::process::ExitCode {
    tfplug::serve_blocking(terraform_provider_testnet::TestnetProvider::default())
}

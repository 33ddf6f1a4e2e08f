//! tfplug: a framework for Terraform providers written in Rust, over plugin protocol v6.
//!
//! A provider author implements [`Provider`], [`Resource`], [`DataSource`],
//! [`EphemeralResource`] and [`Function`] with plain [`Value`]s and [`Diagnostics`]; the
//! framework speaks the protocol (handshake, mutual TLS, gRPC, msgpack), does the shared plan
//! mechanics and turns panics into diagnostics. `serve` runs a provider as Terraform's plugin.

pub mod diag;
pub mod path;
mod plan;
pub mod proto;
pub mod resource;
pub mod schema;
mod server;
pub mod transport;
pub mod value;

pub use server::ProviderServer;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use path::AttributePath;
pub use resource::{
    Context, DataSource, EphemeralResource, Function, FunctionError, Opened, Parameter, PlanChange,
    Private, Provider, Resource, Signature,
};
pub use schema::{Attribute, Block, BlockNesting, NestedBlock, Nesting, Schema};
pub use value::{Number, Type, Value};

/// Serves `provider` as Terraform's plugin from a provider binary's `main`: logging in the form
/// Terraform reads, handshake, AutoMTLS, until Terraform shuts the plugin down.
pub fn serve_blocking<P: Provider>(provider: P) -> std::process::ExitCode {
    transport::init_logging();
    transport::serve_blocking(
        ProviderServer::new(provider),
        transport::ServeOptions::default(),
    )
}

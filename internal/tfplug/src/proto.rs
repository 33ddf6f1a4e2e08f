//! Generated protobuf and gRPC code: Terraform's plugin protocol 6.8 and the go-plugin services
//! every plugin serves beside it. Definitions live in `proto/`; `build.rs` compiles them.

/// Terraform plugin protocol 6 (`tfplugin6`), as spoken by Terraform 1.11.
#[allow(clippy::all, missing_docs)]
pub mod tfplugin6 {
    include!(concat!(env!("OUT_DIR"), "/tfplugin6.rs"));
}

/// go-plugin's own services (`plugin` package): controller, stdio, broker.
#[allow(clippy::all, missing_docs)]
pub mod plugin {
    include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
}

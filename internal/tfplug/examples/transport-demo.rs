//! The smallest plugin tfplug's transport can serve: an empty provider schema and nothing else.
//! Used by tests/transport_*.rs and scripts/bench-handshake to exercise the handshake, AutoMTLS,
//! health, stdio, shutdown and logging without the framework layer above the transport.

use tfplug::proto::tfplugin6 as pb;
use tonic::{Request, Response, Status};

struct Empty;

#[tonic::async_trait]
impl pb::provider_server::Provider for Empty {
    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        tracing::info!(resources = 0u64, "schema requested");
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(pb::Schema {
                version: 0,
                block: Some(pb::schema::Block::default()),
            }),
            server_capabilities: Some(pb::ServerCapabilities {
                get_provider_schema_optional: true,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        _req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        tracing::debug!(terraform_version = %req.get_ref().terraform_version, "configured");
        Ok(Response::new(Default::default()))
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}

fn main() -> std::process::ExitCode {
    tfplug::transport::init_logging();
    tfplug::transport::serve_blocking(Empty, tfplug::transport::ServeOptions::default())
}

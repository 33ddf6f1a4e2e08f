//! The go-plugin services served beside the provider: controller (Shutdown), stdio, broker.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::plugin;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream that sends nothing and ends when the plugin shuts down, so graceful shutdown is not
/// held up by streams Terraform keeps open for the life of the plugin.
fn silent_until<T: Send + 'static>(shutdown: CancellationToken) -> BoxStream<T> {
    Box::pin(
        futures::stream::once(async move { shutdown.cancelled_owned().await })
            .filter_map(|_| async { None }),
    )
}

/// `plugin.GRPCController`: Terraform's request to exit when it is done with the plugin.
pub struct Controller {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _req: Request<plugin::Empty>,
    ) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("Shutdown requested by Terraform");
        self.shutdown.cancel();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// `plugin.GRPCStdio`: the stream stays open and silent. Logs already go to stderr, which
/// go-plugin reads directly; nothing of ours writes to stdout after the handshake.
pub struct Stdio {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_stdio_server::GrpcStdio for Stdio {
    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<BoxStream<plugin::StdioData>>, Status> {
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// `plugin.GRPCBroker`: Terraform opens the stream on connect but never brokers connections for
/// providers; the stream is accepted and kept open so the client does not log a failure.
pub struct Broker {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_broker_server::GrpcBroker for Broker {
    async fn start_stream(
        &self,
        req: Request<Streaming<plugin::ConnInfo>>,
    ) -> Result<Response<BoxStream<plugin::ConnInfo>>, Status> {
        let mut incoming = req.into_inner();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = incoming.next() => match msg {
                        Some(Ok(info)) => tracing::debug!(service_id = info.service_id, "ignoring broker connection info"),
                        _ => break,
                    },
                }
            }
        });
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

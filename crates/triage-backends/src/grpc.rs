//! The backends over gRPC: a server around any [`Backends`], and a client that is one.

use crate::{Backends, ChunkStream, Error, Result};
use futures::StreamExt;
use std::pin::Pin;
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::{TracedChannel, server_span};
use triage_proto::pb;
use triage_proto::pb::backends_client::BackendsClient;

/// Serves [`Backends`] as `triage.v1.Backends`.
pub struct BackendsServer(pub Arc<dyn Backends>);

impl BackendsServer {
    /// The tonic service.
    pub fn into_service(self) -> pb::backends_server::BackendsServer<Self> {
        pb::backends_server::BackendsServer::new(self)
    }
}

type StatusStream = Pin<Box<dyn futures::Stream<Item = std::result::Result<pb::GenerateChunk, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::backends_server::Backends for BackendsServer {
    async fn generate(
        &self,
        request: tonic::Request<pb::GenerateRequest>,
    ) -> std::result::Result<tonic::Response<pb::GenerateResponse>, tonic::Status> {
        let span = server_span("Backends/Generate", request.metadata());
        let res = self.0.generate(request.into_inner()).instrument(span).await?;
        Ok(tonic::Response::new(res))
    }

    type GenerateStreamStream = StatusStream;

    async fn generate_stream(
        &self,
        request: tonic::Request<pb::GenerateRequest>,
    ) -> std::result::Result<tonic::Response<Self::GenerateStreamStream>, tonic::Status> {
        let span = server_span("Backends/GenerateStream", request.metadata());
        let stream = self.0.generate_stream(request.into_inner()).instrument(span).await?;
        Ok(tonic::Response::new(Box::pin(stream.map(|r| r.map_err(tonic::Status::from)))))
    }

    async fn list_models(
        &self,
        request: tonic::Request<pb::ListModelsRequest>,
    ) -> std::result::Result<tonic::Response<pb::ListModelsResponse>, tonic::Status> {
        let span = server_span("Backends/ListModels", request.metadata());
        let res = self.0.list_models().instrument(span).await?;
        Ok(tonic::Response::new(res))
    }
}

/// [`Backends`] in another process.
#[derive(Clone)]
pub struct RemoteBackends(BackendsClient<TracedChannel>);

impl RemoteBackends {
    /// Client over a (lazily connecting) channel.
    pub fn new(channel: TracedChannel) -> Self {
        Self(BackendsClient::new(channel))
    }
}

#[async_trait::async_trait]
impl Backends for RemoteBackends {
    async fn generate(&self, req: pb::GenerateRequest) -> Result<pb::GenerateResponse> {
        let mut c = self.0.clone();
        c.generate(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }

    async fn generate_stream(&self, req: pb::GenerateRequest) -> Result<ChunkStream> {
        let mut c = self.0.clone();
        let stream = c.generate_stream(req).await.map_err(Error::Remote)?.into_inner();
        Ok(stream.map(|r| r.map_err(Error::Remote)).boxed())
    }

    async fn list_models(&self) -> Result<pb::ListModelsResponse> {
        let mut c = self.0.clone();
        c.list_models(pb::ListModelsRequest {}).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }
}

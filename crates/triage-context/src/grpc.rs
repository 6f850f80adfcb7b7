//! The context store over gRPC: a server around any [`ContextStore`], and a client that is one.

use crate::{ContextStore, Error, Result};
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::{TracedChannel, server_span};
use triage_proto::pb;
use triage_proto::pb::context_store_client::ContextStoreClient;

/// Serves a [`ContextStore`] as `triage.v1.ContextStore`.
pub struct ContextServer(pub Arc<dyn ContextStore>);

impl ContextServer {
    /// The tonic service.
    pub fn into_service(self) -> pb::context_store_server::ContextStoreServer<Self> {
        pb::context_store_server::ContextStoreServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::context_store_server::ContextStore for ContextServer {
    async fn get(
        &self,
        request: tonic::Request<pb::GetConversationRequest>,
    ) -> std::result::Result<tonic::Response<pb::Conversation>, tonic::Status> {
        let span = server_span("ContextStore/Get", request.metadata());
        Ok(tonic::Response::new(self.0.get(request.into_inner()).instrument(span).await?))
    }

    async fn append(
        &self,
        request: tonic::Request<pb::AppendRequest>,
    ) -> std::result::Result<tonic::Response<pb::AppendResponse>, tonic::Status> {
        let span = server_span("ContextStore/Append", request.metadata());
        Ok(tonic::Response::new(self.0.append(request.into_inner()).instrument(span).await?))
    }

    async fn handoff(
        &self,
        request: tonic::Request<pb::HandoffRequest>,
    ) -> std::result::Result<tonic::Response<pb::HandoffSummary>, tonic::Status> {
        let span = server_span("ContextStore/Handoff", request.metadata());
        Ok(tonic::Response::new(self.0.handoff(request.into_inner()).instrument(span).await?))
    }
}

/// A [`ContextStore`] in another process.
#[derive(Clone)]
pub struct RemoteContext(ContextStoreClient<TracedChannel>);

impl RemoteContext {
    /// Client over a (lazily connecting) channel.
    pub fn new(channel: TracedChannel) -> Self {
        Self(ContextStoreClient::new(channel))
    }
}

#[async_trait::async_trait]
impl ContextStore for RemoteContext {
    async fn get(&self, req: pb::GetConversationRequest) -> Result<pb::Conversation> {
        let mut c = self.0.clone();
        c.get(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }

    async fn append(&self, req: pb::AppendRequest) -> Result<pb::AppendResponse> {
        let mut c = self.0.clone();
        c.append(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }

    async fn handoff(&self, req: pb::HandoffRequest) -> Result<pb::HandoffSummary> {
        let mut c = self.0.clone();
        c.handoff(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }
}

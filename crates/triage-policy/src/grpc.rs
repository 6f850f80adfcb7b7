//! The policy over gRPC: a server around any [`Policy`], and a client that is one.

use crate::{Error, Policy, Result};
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::{TracedChannel, server_span};
use triage_proto::pb;
use triage_proto::pb::policy_client::PolicyClient;

/// Serves a [`Policy`] as `triage.v1.Policy`.
pub struct PolicyServer(pub Arc<dyn Policy>);

impl PolicyServer {
    /// The tonic service.
    pub fn into_service(self) -> pb::policy_server::PolicyServer<Self> {
        pb::policy_server::PolicyServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::policy_server::Policy for PolicyServer {
    async fn decide(
        &self,
        request: tonic::Request<pb::DecideRequest>,
    ) -> std::result::Result<tonic::Response<pb::DecideResponse>, tonic::Status> {
        let span = server_span("Policy/Decide", request.metadata());
        let res = self.0.decide(request.into_inner()).instrument(span).await?;
        Ok(tonic::Response::new(res))
    }
}

/// A [`Policy`] in another process.
#[derive(Clone)]
pub struct RemotePolicy(PolicyClient<TracedChannel>);

impl RemotePolicy {
    /// Client over a (lazily connecting) channel.
    pub fn new(channel: TracedChannel) -> Self {
        Self(PolicyClient::new(channel))
    }
}

#[async_trait::async_trait]
impl Policy for RemotePolicy {
    async fn decide(&self, req: pb::DecideRequest) -> Result<pb::DecideResponse> {
        let mut c = self.0.clone();
        c.decide(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }
}

//! The classifier over gRPC: a server around any [`Classifier`], and a client that is one.

use crate::{Classifier, Error, Result};
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::{TracedChannel, server_span};
use triage_proto::pb;
use triage_proto::pb::classifier_client::ClassifierClient;

/// Serves a [`Classifier`] as `triage.v1.Classifier`.
pub struct ClassifierServer(pub Arc<dyn Classifier>);

impl ClassifierServer {
    /// The tonic service.
    pub fn into_service(self) -> pb::classifier_server::ClassifierServer<Self> {
        pb::classifier_server::ClassifierServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::classifier_server::Classifier for ClassifierServer {
    async fn classify(
        &self,
        request: tonic::Request<pb::ClassifyRequest>,
    ) -> std::result::Result<tonic::Response<pb::ClassifyResponse>, tonic::Status> {
        let span = server_span("Classifier/Classify", request.metadata());
        let res = self.0.classify(request.into_inner()).instrument(span).await?;
        Ok(tonic::Response::new(res))
    }
}

/// A [`Classifier`] in another process.
#[derive(Clone)]
pub struct RemoteClassifier(ClassifierClient<TracedChannel>);

impl RemoteClassifier {
    /// Client over a (lazily connecting) channel.
    pub fn new(channel: TracedChannel) -> Self {
        Self(ClassifierClient::new(channel))
    }
}

#[async_trait::async_trait]
impl Classifier for RemoteClassifier {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let mut c = self.0.clone();
        c.classify(req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }
}

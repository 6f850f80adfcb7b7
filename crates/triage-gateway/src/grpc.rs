//! `triage.v1.Router` over gRPC.

use crate::Gateway;
use std::pin::Pin;
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::server_span;
use triage_proto::pb;

/// The tenant a request was authenticated as; set by the authentication layer in request
/// extensions. Without one the configured default tenant is used.
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

/// Serves the gateway as `triage.v1.Router`.
pub struct RouterServer {
    gateway: Arc<Gateway>,
    default_tenant: String,
    auth: Option<Arc<crate::auth::Auth>>,
}

impl RouterServer {
    /// A server for `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        let default_tenant = gateway.config.server.default_tenant.clone();
        Self { gateway, default_tenant, auth: None }
    }

    /// Charges each answer's tokens to its tenant's token rate (the interceptor admits by
    /// request rate before the size of the answer is known).
    pub fn with_auth(mut self, auth: Arc<crate::auth::Auth>) -> Self {
        self.auth = Some(auth);
        self
    }

    fn charge_tokens(auth: Option<&Arc<crate::auth::Auth>>, tenant: &str, resp: &pb::RouteResponse) {
        if let (Some(auth), Some(u)) = (auth, resp.usage) {
            auth.limiter().settle(tenant, 0, u64::from(u.input_tokens) + u64::from(u.output_tokens));
        }
    }

    /// The tonic service.
    pub fn into_service(self) -> pb::router_server::RouterServer<Self> {
        pb::router_server::RouterServer::new(self)
    }

    fn tenant<T>(&self, req: &tonic::Request<T>) -> String {
        req.extensions().get::<Tenant>().map(|t| t.0.clone()).unwrap_or_else(|| self.default_tenant.clone())
    }
}

type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<pb::RouteChunk, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::router_server::Router for RouterServer {
    async fn route(
        &self,
        request: tonic::Request<pb::RouteRequest>,
    ) -> Result<tonic::Response<pb::RouteResponse>, tonic::Status> {
        let span = server_span("Router/Route", request.metadata());
        let tenant = self.tenant(&request);
        let resp = self.gateway.route(&tenant, request.into_inner()).instrument(span).await?;
        Self::charge_tokens(self.auth.as_ref(), &tenant, &resp);
        Ok(tonic::Response::new(resp))
    }

    type RouteStreamStream = ChunkStream;

    async fn route_stream(
        &self,
        request: tonic::Request<pb::RouteRequest>,
    ) -> Result<tonic::Response<Self::RouteStreamStream>, tonic::Status> {
        let span = server_span("Router/RouteStream", request.metadata());
        let tenant = self.tenant(&request);
        let rx = {
            let _enter = span.enter();
            self.gateway.route_stream(tenant.clone(), request.into_inner())
        };
        let auth = self.auth.clone();
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let stream = futures::StreamExt::map(stream, move |r| {
            if let Ok(pb::RouteChunk { chunk: Some(pb::route_chunk::Chunk::Done(resp)) }) = &r {
                Self::charge_tokens(auth.as_ref(), &tenant, resp);
            }
            r.map_err(tonic::Status::from)
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn feedback(
        &self,
        request: tonic::Request<pb::FeedbackRequest>,
    ) -> Result<tonic::Response<pb::FeedbackResponse>, tonic::Status> {
        let tenant = self.tenant(&request);
        let fb = request.into_inner();
        if fb.request_id.is_empty() {
            return Err(tonic::Status::invalid_argument("request_id: must not be empty"));
        }
        if fb.satisfaction.is_some_and(|s| s > 10) {
            return Err(tonic::Status::invalid_argument("satisfaction: must be 0..10"));
        }
        let model = self.gateway.log.add_feedback(&tenant, fb.clone()).await?;
        if let Some(model) = &model {
            crate::metrics::feedback(model, &fb);
        }
        Ok(tonic::Response::new(pb::FeedbackResponse { recorded: model.is_some() }))
    }

    async fn explain(
        &self,
        request: tonic::Request<pb::ExplainRequest>,
    ) -> Result<tonic::Response<pb::DecisionRecord>, tonic::Status> {
        let tenant = self.tenant(&request);
        let id = request.into_inner().request_id;
        if id.is_empty() {
            return Err(tonic::Status::invalid_argument("request_id: must not be empty"));
        }
        Ok(tonic::Response::new(self.gateway.log.get(&tenant, &id).await?))
    }
}

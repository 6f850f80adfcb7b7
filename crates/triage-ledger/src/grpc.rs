//! The ledger over gRPC: a server around any [`Ledger`], and a client that is one.

use crate::{Error, Ledger, Result};
use std::sync::Arc;
use tracing::Instrument;
use triage_core::grpc::{TracedChannel, server_span};
use triage_proto::pb;
use triage_proto::pb::ledger_client::LedgerClient;

/// Serves a [`Ledger`] as `triage.v1.Ledger`.
pub struct LedgerServer(pub Arc<dyn Ledger>);

impl LedgerServer {
    /// The tonic service.
    pub fn into_service(self) -> pb::ledger_server::LedgerServer<Self> {
        pb::ledger_server::LedgerServer::new(self)
    }
}

macro_rules! serve_rpc {
    ($self:ident, $request:ident, $name:literal, $method:ident) => {{
        let span = server_span($name, $request.metadata());
        Ok(tonic::Response::new($self.0.$method($request.into_inner()).instrument(span).await?))
    }};
}

type Reply<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::ledger_server::Ledger for LedgerServer {
    async fn reserve(&self, request: tonic::Request<pb::ReserveRequest>) -> Reply<pb::ReserveResponse> {
        serve_rpc!(self, request, "Ledger/Reserve", reserve)
    }

    async fn commit(&self, request: tonic::Request<pb::CommitRequest>) -> Reply<pb::CommitResponse> {
        serve_rpc!(self, request, "Ledger/Commit", commit)
    }

    async fn release(&self, request: tonic::Request<pb::ReleaseRequest>) -> Reply<pb::ReleaseResponse> {
        serve_rpc!(self, request, "Ledger/Release", release)
    }

    async fn spend(&self, request: tonic::Request<pb::SpendRequest>) -> Reply<pb::SpendResponse> {
        serve_rpc!(self, request, "Ledger/Spend", spend)
    }

    async fn limits(&self, request: tonic::Request<pb::LimitsRequest>) -> Reply<pb::LimitsResponse> {
        serve_rpc!(self, request, "Ledger/Limits", limits)
    }
}

/// A [`Ledger`] in another process.
#[derive(Clone)]
pub struct RemoteLedger(LedgerClient<TracedChannel>);

impl RemoteLedger {
    /// Client over a (lazily connecting) channel.
    pub fn new(channel: TracedChannel) -> Self {
        Self(LedgerClient::new(channel))
    }
}

macro_rules! call_rpc {
    ($self:ident, $req:ident, $method:ident) => {{
        let mut c = $self.0.clone();
        c.$method($req).await.map(tonic::Response::into_inner).map_err(Error::Remote)
    }};
}

#[async_trait::async_trait]
impl Ledger for RemoteLedger {
    async fn reserve(&self, req: pb::ReserveRequest) -> Result<pb::ReserveResponse> {
        call_rpc!(self, req, reserve)
    }

    async fn commit(&self, req: pb::CommitRequest) -> Result<pb::CommitResponse> {
        call_rpc!(self, req, commit)
    }

    async fn release(&self, req: pb::ReleaseRequest) -> Result<pb::ReleaseResponse> {
        call_rpc!(self, req, release)
    }

    async fn spend(&self, req: pb::SpendRequest) -> Result<pb::SpendResponse> {
        call_rpc!(self, req, spend)
    }

    async fn limits(&self, req: pb::LimitsRequest) -> Result<pb::LimitsResponse> {
        call_rpc!(self, req, limits)
    }
}

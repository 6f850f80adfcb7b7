//! Pushing model sets and policies to Triage processes (`triage.v1.Admin`), behind a trait so
//! the reconcile logic is tested with a recording fake as well as over real gRPC.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tonic::transport::ClientTlsConfig;
use triage_core::grpc::{TracedChannel, channel};
use triage_proto::pb;
use triage_proto::pb::admin_client::AdminClient;

/// Why a push did not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The process refused the change as invalid; it keeps serving what it had.
    #[error("refused: {0}")]
    Rejected(String),
    /// The process could not be reached or failed; worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<tonic::Status> for PushError {
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => PushError::Rejected(s.message().into()),
            code => PushError::Unavailable(format!("{code:?}: {}", s.message())),
        }
    }
}

/// Talks to the Admin service of one Triage process, addressed by URL (`http://10.0.0.7:50051`).
#[async_trait::async_trait]
pub trait Pusher: Send + Sync + 'static {
    /// What the process serves now.
    async fn revision(&self, endpoint: &str) -> Result<pb::RevisionResponse, PushError>;
    /// Replaces its models.
    async fn apply_models(&self, endpoint: &str, req: pb::ApplyModelsRequest) -> Result<pb::ApplyResponse, PushError>;
    /// Replaces its policy.
    async fn apply_policy(&self, endpoint: &str, req: pb::ApplyPolicyRequest) -> Result<pb::ApplyResponse, PushError>;
    /// The endpoints that exist now; state kept for others (connections) may be dropped.
    fn retain(&self, _endpoints: &[String]) {}
}

/// [`Pusher`] over tonic, with the services' mTLS when configured. Channels are kept per
/// endpoint and connect lazily, so a pod that is not up yet costs one failed call.
pub struct GrpcPusher {
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
    /// Bearer token the Admin service requires (`server.admin_token` of the processes).
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    channels: Mutex<HashMap<String, TracedChannel>>,
}

impl GrpcPusher {
    /// A pusher; `tls` as built by [`triage_core::grpc::client_tls`].
    pub fn new(tls: Option<ClientTlsConfig>, timeout: Duration) -> Self {
        Self { tls, timeout, token: None, channels: Mutex::new(HashMap::new()) }
    }

    /// Sends `token` as `authorization: Bearer` on every call; an unusable token is an error
    /// here rather than a refusal on every push.
    pub fn with_token(mut self, token: &str) -> Result<Self, PushError> {
        let v = format!("Bearer {token}")
            .parse()
            .map_err(|_| PushError::Rejected("the admin token is not a valid header value".into()))?;
        self.token = Some(v);
        Ok(self)
    }

    fn client(&self, endpoint: &str) -> Result<AdminClient<TracedChannel>, PushError> {
        let mut channels = self.channels.lock().map_err(|_| PushError::Unavailable("channel cache poisoned".into()))?;
        if let Some(ch) = channels.get(endpoint) {
            return Ok(AdminClient::new(ch.clone()));
        }
        let ch = channel(endpoint, self.tls.as_ref()).map_err(|e| PushError::Unavailable(e.to_string()))?;
        channels.insert(endpoint.to_string(), ch.clone());
        Ok(AdminClient::new(ch))
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout);
        if let Some(t) = &self.token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        req
    }
}

#[async_trait::async_trait]
impl Pusher for GrpcPusher {
    async fn revision(&self, endpoint: &str) -> Result<pb::RevisionResponse, PushError> {
        let mut c = self.client(endpoint)?;
        Ok(c.get_revision(self.request(pb::GetRevisionRequest {})).await?.into_inner())
    }

    async fn apply_models(&self, endpoint: &str, req: pb::ApplyModelsRequest) -> Result<pb::ApplyResponse, PushError> {
        let mut c = self.client(endpoint)?;
        Ok(c.apply_models(self.request(req)).await?.into_inner())
    }

    async fn apply_policy(&self, endpoint: &str, req: pb::ApplyPolicyRequest) -> Result<pb::ApplyResponse, PushError> {
        let mut c = self.client(endpoint)?;
        Ok(c.apply_policy(self.request(req)).await?.into_inner())
    }

    fn retain(&self, endpoints: &[String]) {
        // Pods are replaced, not reused: forget the channels of the ones that are gone.
        if let Ok(mut channels) = self.channels.lock() {
            channels.retain(|k, _| endpoints.contains(k));
        }
    }
}

/// What happened on one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Already served that revision.
    Current,
    /// Applied now.
    Applied,
    /// Failed.
    Failed(PushError),
}

/// Brings one endpoint's models to `revision`: asks first, so a resync costs one cheap call
/// per process and a restarted process (back on its file) gets the set again.
pub async fn ensure_models(p: &dyn Pusher, endpoint: &str, models_yaml: &str, revision: &str) -> PushOutcome {
    match p.revision(endpoint).await {
        Ok(r) if r.models_revision == revision => return PushOutcome::Current,
        Ok(_) => {}
        Err(e) => return PushOutcome::Failed(e),
    }
    let req = pb::ApplyModelsRequest { models_yaml: models_yaml.to_string(), revision: revision.to_string() };
    match p.apply_models(endpoint, req).await {
        Ok(_) => PushOutcome::Applied,
        Err(e) => PushOutcome::Failed(e),
    }
}

/// Brings one endpoint's policy to `revision`.
pub async fn ensure_policy(p: &dyn Pusher, endpoint: &str, policy_yaml: &str, revision: &str) -> PushOutcome {
    match p.revision(endpoint).await {
        Ok(r) if r.policy_revision == revision => return PushOutcome::Current,
        Ok(_) => {}
        Err(e) => return PushOutcome::Failed(e),
    }
    let req = pb::ApplyPolicyRequest { policy_yaml: policy_yaml.to_string(), revision: revision.to_string() };
    match p.apply_policy(endpoint, req).await {
        Ok(_) => PushOutcome::Applied,
        Err(e) => PushOutcome::Failed(e),
    }
}

//! `triage.v1.Admin`: live model and policy changes pushed by the operator. Each process
//! applies what concerns the services it runs: the policy recompiles its rules against the new
//! models first (so a set that breaks a rule is refused before anything changes), then the
//! backends rebuild their adapters (unchanged versions keep their state), then the gateway
//! swaps its catalog. Served only when `server.admin_token` is set, and only to callers that
//! present it.

use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};
use triage_core::config::{Config, ModelSet};
use triage_proto::pb;

/// The live parts of this process a change reaches.
pub struct Admin {
    config: Mutex<Arc<Config>>,
    policy: Option<Arc<triage_policy::LocalPolicy>>,
    backends: Option<triage_backends::LocalBackends>,
    gateway: Option<Arc<triage_gateway::Gateway>>,
    revisions: Mutex<pb::RevisionResponse>,
    /// One change at a time: the steps of two applies must not interleave.
    applying: tokio::sync::Mutex<()>,
}

impl Admin {
    /// Admin over the local services of this process.
    pub fn new(
        config: Arc<Config>,
        policy: Option<Arc<triage_policy::LocalPolicy>>,
        backends: Option<triage_backends::LocalBackends>,
        gateway: Option<Arc<triage_gateway::Gateway>>,
    ) -> Admin {
        Admin {
            config: Mutex::new(config),
            policy,
            backends,
            gateway,
            revisions: Mutex::new(pb::RevisionResponse::default()),
            applying: tokio::sync::Mutex::new(()),
        }
    }

    /// The config with the models in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.lock().clone()
    }
}

fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

#[async_trait::async_trait]
impl pb::admin_server::Admin for Admin {
    async fn apply_models(&self, req: Request<pb::ApplyModelsRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let req = req.into_inner();
        let origin = Path::new("<Admin.ApplyModels>");
        let set = ModelSet::from_yaml(&req.models_yaml, origin).map_err(invalid)?;
        let _one = self.applying.lock().await;
        let next = Arc::new(self.config().with_models(&set, origin).map_err(invalid)?);
        let mut applied_to = Vec::new();
        let mut warnings = Vec::new();
        if let Some(p) = &self.policy {
            warnings = p.apply_models(&next).map_err(|e| Status::failed_precondition(e.to_string()))?;
            applied_to.push("policy".to_string());
        }
        if let Some(b) = &self.backends {
            b.apply_models(&next).await;
            applied_to.push("backends".to_string());
        }
        if let Some(g) = &self.gateway {
            g.apply_models(&next);
            applied_to.push("gateway".to_string());
        }
        *self.config.lock() = next;
        self.revisions.lock().models_revision = req.revision.clone();
        tracing::info!(revision = %req.revision, ?applied_to, "models applied");
        Ok(Response::new(pb::ApplyResponse { revision: req.revision, warnings, applied_to }))
    }

    async fn apply_policy(&self, req: Request<pb::ApplyPolicyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let req = req.into_inner();
        let _one = self.applying.lock().await;
        let mut applied_to = Vec::new();
        let mut warnings = Vec::new();
        if let Some(p) = &self.policy {
            let (version, w) = p.apply_policy(&req.policy_yaml, Path::new("<Admin.ApplyPolicy>")).map_err(invalid)?;
            tracing::info!(revision = %req.revision, %version, "policy applied");
            warnings = w;
            applied_to.push("policy".to_string());
        }
        self.revisions.lock().policy_revision = req.revision.clone();
        Ok(Response::new(pb::ApplyResponse { revision: req.revision, warnings, applied_to }))
    }

    async fn get_revision(&self, _: Request<pb::GetRevisionRequest>) -> Result<Response<pb::RevisionResponse>, Status> {
        Ok(Response::new(self.revisions.lock().clone()))
    }
}

/// Refuses calls without `authorization: Bearer <server.admin_token>`, comparing in constant
/// time; the refusal says nothing about why.
pub fn interceptor(token: String) -> impl tonic::service::Interceptor + Clone {
    let want = format!("Bearer {token}").into_bytes();
    move |req: Request<()>| {
        let got = req.metadata().get("authorization").map(|v| v.as_bytes()).unwrap_or_default();
        if bool::from(got.ct_eq(&want)) { Ok(req) } else { Err(Status::unauthenticated("unauthenticated")) }
    }
}

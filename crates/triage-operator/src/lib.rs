//! The Triage operator: `LlmModel` and `RoutingPolicy` custom resources, validated like the
//! config file and pushed to every running Triage process with `Admin.ApplyModels` /
//! `Admin.ApplyPolicy`, so model versions roll without restarts or dropped conversations.
//!
//! The decisions (which model set to push, what status to write, when to look again) are pure
//! functions in [`plan`]; [`controller`] does the Kubernetes and gRPC I/O around them.

pub mod controller;
pub mod convert;
pub mod crd;
pub mod plan;
pub mod push;

pub use controller::{Discovery, OperatorConfig, OperatorTls, reconcile, run, run_with};
pub use crd::{LlmModel, LlmModelSpec, LlmModelStatus, RoutingPolicy, RoutingPolicySpec, RoutingPolicyStatus};
pub use push::{GrpcPusher, PushError, Pusher};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Everything that can stop the operator or one reconcile pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed.
    #[error("kubernetes api: {0}")]
    Kube(#[from] kube::Error),
    /// No Kubernetes client configuration (in-cluster or kubeconfig) was found.
    #[error("kubernetes client config: {0}")]
    KubeConfig(String),
    /// The base config file could not be loaded.
    #[error(transparent)]
    Config(#[from] triage_core::Error),
    /// Serialising a resource or the model set failed.
    #[error("serialise: {0}")]
    Serialize(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The CustomResourceDefinitions of the operator's resources.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![LlmModel::crd(), RoutingPolicy::crd()]
}

/// The CRDs as one YAML stream (`triage crds | kubectl apply -f -`).
pub fn crds_yaml() -> Result<String> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

/// The committed file of one CRD (`helm/triage/crds/<plural>.yaml`): a header and the YAML.
pub fn crd_file(crd: &CustomResourceDefinition) -> Result<(String, String)> {
    let text =
        format!("# Generated from crates/triage-operator/src/crd.rs (`triage crds`); do not edit.\n{}", crd_yaml(crd)?);
    Ok((format!("{}.yaml", crd.spec.names.plural), text))
}

/// One CRD as YAML.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String> {
    serde_yaml::to_string(crd).map_err(|e| Error::Serialize(e.to_string()))
}

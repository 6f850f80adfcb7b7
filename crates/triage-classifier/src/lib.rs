//! Classifier service: labels a query, in its conversation, with complexity, category,
//! requires_context, a calibrated confidence and the language.

mod error;
mod grpc;

pub use error::{Error, Result};
pub use grpc::{ClassifierServer, RemoteClassifier};

use triage_proto::pb;

/// Labels queries. Implemented in-process and by the gRPC client, so the gateway runs the
/// same flow either way.
#[async_trait::async_trait]
pub trait Classifier: Send + Sync + 'static {
    /// Labels one query with its recent history.
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse>;
}

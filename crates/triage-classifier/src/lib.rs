//! Classifier service: labels a query, in its conversation, with complexity, category,
//! requires_context, a calibrated confidence and the language.
//!
//! - [`HeuristicClassifier`]: keyword rules (the baseline and the last resort).
//! - [`EmbeddedClassifier`]: all-MiniLM-L6-v2 embeddings + trained heads, on CPU (default).
//! - [`CachedClassifier`]: a Redis cache in front of either.
//! - [`build`]: the classifier a [`ClassifierConfig`] asks for, falling back to the heuristic
//!   when model files are missing.

pub mod batcher;
mod cache;
pub mod dataset;
mod embedded;
pub mod encoder;
mod error;
pub mod features;
mod grpc;
pub mod heads;
mod heuristic;
pub mod labels;
pub mod lang;
pub mod llm;
#[cfg(feature = "mistralrs")]
pub mod llm_mistralrs;
pub mod train;

pub use batcher::BatchConfig;
pub use cache::{CacheStats, CachedClassifier, DEFAULT_LOCAL_ENTRIES, cache_key, history_fingerprint};
pub use embedded::EmbeddedClassifier;
pub use error::{Error, Result};
pub use grpc::{ClassifierServer, RemoteClassifier};
pub use heuristic::{HEURISTIC_VERSION, HeuristicClassifier};

use std::sync::Arc;
use triage_core::config::{ClassifierConfig, ClassifierKind};
use triage_proto::pb;

/// Labels queries. Implemented in-process and by the gRPC client, so the gateway runs the
/// same flow either way.
#[async_trait::async_trait]
pub trait Classifier: Send + Sync + 'static {
    /// Labels one query with its recent history.
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse>;
}

#[async_trait::async_trait]
impl<T: Classifier + ?Sized> Classifier for Arc<T> {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        (**self).classify(req).await
    }
}

/// A freshly computed (not cached) answer, timed from `start`.
pub(crate) fn fresh_response(classification: pb::Classification, start: std::time::Instant) -> pb::ClassifyResponse {
    pb::ClassifyResponse {
        classification: Some(classification),
        cache_hit: false,
        latency_us: start.elapsed().as_micros() as u64,
    }
}

/// The classifier `cfg` asks for, behind the Redis cache when `cfg.cache.enabled` and a
/// `redis_url` is given. Inside a tokio runtime the embedded classifier gets a batcher.
///
/// Missing encoder files degrade to [`HeuristicClassifier`] with a warning rather than
/// failing start-up: routing on keywords beats not routing. Corrupt files or heads are
/// errors. `Mistralrs` is not built into this crate yet and also degrades, with a warning.
pub fn build(cfg: &ClassifierConfig, redis_url: Option<&str>) -> Result<Arc<dyn Classifier>> {
    let (inner, version): (Arc<dyn Classifier>, String) = match cfg.kind {
        ClassifierKind::Embedded if encoder::Encoder::files_present(&cfg.encoder_dir) => {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let mut c = EmbeddedClassifier::from_config(cfg)?;
            // Outside a runtime (a sync caller) requests go straight to spawn_blocking.
            if tokio::runtime::Handle::try_current().is_ok() {
                c = c.with_batching(BatchConfig { workers, ..BatchConfig::default() })?;
            }
            let v = c.model_version().to_string();
            (Arc::new(c), v)
        }
        ClassifierKind::Heuristic => (Arc::new(HeuristicClassifier::new()?), HEURISTIC_VERSION.to_string()),
        ClassifierKind::Embedded | ClassifierKind::Mistralrs => {
            tracing::warn!(
                kind = ?cfg.kind,
                encoder_dir = %cfg.encoder_dir.display(),
                "classifier model unavailable (kind mistralrs needs the `mistralrs` build and build_async); using the keyword heuristic"
            );
            (Arc::new(HeuristicClassifier::new()?), HEURISTIC_VERSION.to_string())
        }
    };
    with_cache(inner, version, cfg, redis_url)
}

/// [`build`], plus the seed's LLM classifier on mistral.rs (`classifier.kind: mistralrs`,
/// feature `mistralrs`), whose model loads asynchronously. `TRIAGE_FORCE_CPU=1` keeps it off
/// the GPU.
pub async fn build_async(cfg: &ClassifierConfig, redis_url: Option<&str>) -> Result<Arc<dyn Classifier>> {
    #[cfg(feature = "mistralrs")]
    if cfg.kind == ClassifierKind::Mistralrs {
        let path = cfg.llm_path.as_ref().ok_or_else(|| {
            Error::Model("classifier.llm_path must name the model (GGUF) for kind `mistralrs`".into())
        })?;
        let force_cpu = std::env::var("TRIAGE_FORCE_CPU").is_ok_and(|v| v == "1");
        let chat = llm_mistralrs::MistralRsChat::load(path, force_cpu).await?;
        let c = llm::LlmClassifier::new(chat, cfg.history_turns as usize);
        let version = c.model_version().to_string();
        return with_cache(Arc::new(c), version, cfg, redis_url);
    }
    build(cfg, redis_url)
}

fn with_cache(
    inner: Arc<dyn Classifier>,
    version: String,
    cfg: &ClassifierConfig,
    redis_url: Option<&str>,
) -> Result<Arc<dyn Classifier>> {
    match redis_url {
        Some(url) if cfg.cache.enabled => {
            let cached = CachedClassifier::new(inner, url, version, cfg.history_turns as usize, cfg.cache.ttl)?
                .with_local_entries(cfg.cache.local_entries);
            Ok(Arc::new(cached))
        }
        _ => Ok(inner),
    }
}

//! [`LocalBackends`]: the backends service in this process. Holds one adapter, breaker and
//! retry budget per declared model; walks only the request's declared fallbacks.

use crate::breaker::Breaker;
use crate::provider::{self, Finish, Provider};
use crate::retry::RetryBudget;
use crate::{Backends, ChunkStream, Error, Result};
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use triage_core::config::{Config, RetryConfig};
use triage_core::{Catalog, ModelSpec};
use triage_proto::pb;

/// Counters of one model, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Provider calls made (each retry is one more).
    pub calls: u64,
    /// Attempts that ended in an error after their retries.
    pub failures: u64,
    /// Retries made.
    pub retries: u64,
    /// Retries refused by the retry budget.
    pub retries_denied: u64,
    /// Replies whose reported model differed from the pin.
    pub drift: u64,
    /// Requests that named this model while deprecated.
    pub deprecated_calls: u64,
    /// Times the model was skipped because its breaker was open.
    pub breaker_rejections: u64,
    /// Times the breaker opened.
    pub breaker_opens: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) retries_denied: AtomicU64,
    pub(crate) drift: AtomicU64,
    pub(crate) deprecated_calls: AtomicU64,
    pub(crate) breaker_rejections: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One declared model and its live state.
pub(crate) struct Model {
    pub(crate) spec: Arc<ModelSpec>,
    pub(crate) provider: Option<Arc<dyn Provider>>,
    pub(crate) unavailable: Option<String>,
    pub(crate) breaker: Arc<Breaker>,
    pub(crate) budget: Arc<RetryBudget>,
    pub(crate) timeout: Duration,
    pub(crate) ttft_timeout: Duration,
    pub(crate) counters: Arc<Counters>,
    pub(crate) last_drift: Arc<Mutex<String>>,
    /// The declaration this version was built from (see `registry`).
    pub(crate) fingerprint: String,
}

impl Model {
    /// The same live version (adapter, breaker, budget, counters) under a new catalog entry.
    pub(crate) fn with_spec(&self, spec: Arc<ModelSpec>) -> Model {
        Model {
            spec,
            provider: self.provider.clone(),
            unavailable: self.unavailable.clone(),
            breaker: self.breaker.clone(),
            budget: self.budget.clone(),
            timeout: self.timeout,
            ttft_timeout: self.ttft_timeout,
            counters: self.counters.clone(),
            last_drift: self.last_drift.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// Compares the model id a provider reported with the pin. Providers answer with the
    /// dated id for an alias, so either the pinned provider id or the pinned version
    /// matches; anything else is drift: counted, logged once per new value, and returned
    /// as a warning for the decision.
    pub(crate) fn check_drift(&self, reported: &str) -> Option<String> {
        if reported.is_empty() || reported == self.spec.provider_model_id || reported == self.spec.version {
            return None;
        }
        bump(&self.counters.drift);
        triage_core::metrics::global()
            .version_drift
            .get_or_create(&triage_core::metrics::ModelLabel { model: self.spec.name.clone() })
            .inc();
        let mut last = self.last_drift.lock();
        if *last != reported {
            tracing::warn!(
                model = %self.spec.name,
                pinned = %self.spec.version,
                reported = %reported,
                "model version drift: the provider reports a model other than the pin"
            );
            *last = reported.to_string();
        }
        Some(format!(
            "version drift: `{}` is pinned to `{}` but the provider reported `{reported}`",
            self.spec.name, self.spec.version
        ))
    }

    /// The response for a finished reply.
    pub(crate) fn response(&self, text: String, finish: Finish, ctx: crate::failover::Outcome) -> pb::GenerateResponse {
        let answered = [&finish.reported_model, &self.spec.provider_model_id, &self.spec.version]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", |s| s.as_str());
        // The caller holds the model call's GenAI span as the current one.
        triage_core::telemetry::gen_ai::record_response(
            &tracing::Span::current(),
            answered,
            finish.input_tokens,
            finish.output_tokens,
            &finish.stop_reason,
        );
        let mut warnings = ctx.warnings;
        let mut reported_model = String::new();
        if let Some(w) = self.check_drift(&finish.reported_model) {
            warnings.push(w);
            reported_model = finish.reported_model;
        }
        pb::GenerateResponse {
            text,
            model: self.spec.name.clone(),
            model_version: self.spec.version.clone(),
            provider: self.spec.provider.to_string(),
            usage: Some(pb::Usage { input_tokens: finish.input_tokens, output_tokens: finish.output_tokens }),
            stop_reason: finish.stop_reason,
            attempts: ctx.attempts,
            downgraded: ctx.downgraded,
            reported_model,
            warnings,
            tier: self.spec.tier.to_pb() as i32,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) models: BTreeMap<String, Arc<Model>>,
    /// Versions being replaced in a rolling swap, by model name.
    pub(crate) previous: BTreeMap<String, crate::registry::Draining>,
    pub(crate) catalog: Catalog,
    pub(crate) retry: RetryConfig,
    /// The whole generation, failover included (`server.deadlines.generate`).
    pub(crate) deadline: Duration,
}

/// The backends service in this process.
#[derive(Clone)]
pub struct LocalBackends {
    pub(crate) inner: Arc<ArcSwap<Inner>>,
    http: reqwest::Client,
    /// Serializes applies: two model sets built at once would each miss the other's reuse.
    apply: Arc<tokio::sync::Mutex<()>>,
}

impl LocalBackends {
    /// Builds every declared model's adapter. Never fails because of one model: a missing
    /// key, a missing model file or a retired lifecycle makes that model unavailable (one
    /// `warn!` line each, with the reason) and the process carries on. Local models load
    /// on the blocking pool.
    pub async fn new(cfg: &Config) -> Result<LocalBackends> {
        let http = provider::http_client(&cfg.backends)?;
        let inner = crate::registry::build(cfg, &http, None).await;
        Ok(LocalBackends {
            inner: Arc::new(ArcSwap::from_pointee(inner)),
            http,
            apply: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Replaces the declared models (`Admin.ApplyModels`; `cfg` is already validated). Calls in
    /// flight finish on the set they started with; unchanged versions keep their state.
    pub async fn apply_models(&self, cfg: &Config) {
        let _one_at_a_time = self.apply.lock().await;
        let old = self.inner.load_full();
        let next = crate::registry::build(cfg, &self.http, Some(&old)).await;
        let draining: Vec<String> =
            next.previous.iter().map(|(n, d)| format!("{n}@{}", d.model.spec.version)).collect();
        self.inner.store(Arc::new(next));
        tracing::info!(models = cfg.models.len(), ?draining, "backends: declared models replaced");
    }

    fn now(&self) -> Arc<Inner> {
        self.inner.load_full()
    }

    /// Breaker state of every declared model (a policy input). A model whose rolling swap
    /// still serves its previous version also gets each version's state under
    /// `model@version`, and its own key holds the better of the two: one failing version must
    /// not take the model, and the conversations on its healthy version, out of routing.
    pub fn breaker_states(&self) -> BTreeMap<String, pb::BreakerState> {
        let now = Instant::now();
        let inner = self.now();
        let mut out = BTreeMap::new();
        for name in inner.models.keys() {
            let (state, versions) = Self::breakers_of(&inner, name, now);
            for (version, s) in versions {
                out.insert(triage_core::catalog::version_key(name, &version), s);
            }
            out.insert(name.clone(), state);
        }
        out
    }

    /// A model's breaker state, and each version's while its swap still serves two (the
    /// model's state is then the better of them).
    fn breakers_of(inner: &Inner, name: &str, now: Instant) -> (pb::BreakerState, Vec<(String, pb::BreakerState)>) {
        let Some(m) = inner.models.get(name) else { return (pb::BreakerState::Unspecified, Vec::new()) };
        let current = m.breaker.state_at(now);
        let draining =
            inner.previous.get(name).filter(|d| d.model.provider.is_some() && std::time::SystemTime::now() < d.until);
        match draining {
            None => (current, Vec::new()),
            Some(d) => {
                let previous = d.model.breaker.state_at(now);
                let versions = vec![(m.spec.version.clone(), current), (d.model.spec.version.clone(), previous)];
                (better(current, previous), versions)
            }
        }
    }

    /// Models that cannot be called at all (no key, failed to load, retired).
    pub fn unavailable(&self) -> Vec<String> {
        self.now().models.iter().filter(|(_, m)| m.provider.is_none()).map(|(n, _)| n.clone()).collect()
    }

    /// Why a model is unavailable, when it is.
    pub fn unavailable_reason(&self, model: &str) -> Option<String> {
        self.now().models.get(model).and_then(|m| m.unavailable.clone())
    }

    /// Counters of every model.
    pub fn stats(&self) -> BTreeMap<String, ModelStats> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.now()
            .models
            .iter()
            .map(|(n, m)| {
                let c = &m.counters;
                let s = ModelStats {
                    calls: load(&c.calls),
                    failures: load(&c.failures),
                    retries: load(&c.retries),
                    retries_denied: load(&c.retries_denied),
                    drift: load(&c.drift),
                    deprecated_calls: load(&c.deprecated_calls),
                    breaker_rejections: load(&c.breaker_rejections),
                    breaker_opens: m.breaker.opens(),
                };
                (n.clone(), s)
            })
            .collect()
    }

    fn model_info(inner: &Inner, spec: &ModelSpec, now: Instant) -> pb::ModelInfo {
        let m = inner.models.get(&spec.name);
        let (breaker, versions) = Self::breakers_of(inner, &spec.name, now);
        pb::ModelInfo {
            name: spec.name.clone(),
            provider: spec.provider.to_string(),
            provider_model_id: spec.provider_model_id.clone(),
            version: spec.version.clone(),
            tier: spec.tier.to_pb() as i32,
            available: m.is_some_and(|m| m.provider.is_some()),
            unavailable_reason: m.and_then(|m| m.unavailable.clone()).unwrap_or_default(),
            breaker: breaker as i32,
            lifecycle: spec.lifecycle_pb() as i32,
            replacement: spec.lifecycle.replacement().unwrap_or_default().to_string(),
            context_window: spec.context_window,
            input_micros_per_mtok: spec.price.input_per_mtok.0,
            output_micros_per_mtok: spec.price.output_per_mtok.0,
            fallbacks: spec.fallbacks.clone(),
            version_breakers: versions.into_iter().map(|(v, s)| (v, s as i32)).collect(),
        }
    }
}

#[async_trait::async_trait]
impl Backends for LocalBackends {
    async fn generate(&self, req: pb::GenerateRequest) -> Result<pb::GenerateResponse> {
        crate::failover::generate(&self.now(), &req).await
    }

    async fn generate_stream(&self, req: pb::GenerateRequest) -> Result<ChunkStream> {
        crate::failover::generate_stream(&self.now(), &req).await
    }

    async fn list_models(&self) -> Result<pb::ListModelsResponse> {
        let now = Instant::now();
        let inner = self.now();
        let models = inner.catalog.iter().map(|spec| Self::model_info(&inner, spec, now)).collect();
        Ok(pb::ListModelsResponse { models })
    }
}

impl std::fmt::Debug for LocalBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackends").field("models", &self.now().models.keys().collect::<Vec<_>>()).finish()
    }
}

/// Fails on an unknown name: used by the request checks.
pub(crate) fn known(inner: &Inner, name: &str) -> Result<()> {
    if inner.models.contains_key(name) { Ok(()) } else { Err(Error::UnknownModel(name.to_string())) }
}

/// The state that lets more through: closed, then half-open, then open.
fn better(a: pb::BreakerState, b: pb::BreakerState) -> pb::BreakerState {
    let rank = |s: pb::BreakerState| match s {
        pb::BreakerState::Open => 2,
        pb::BreakerState::HalfOpen => 1,
        _ => 0,
    };
    if rank(a) <= rank(b) { a } else { b }
}

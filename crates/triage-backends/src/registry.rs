//! The live model set: built from the config at start and rebuilt when the operator applies
//! new models (`Admin.ApplyModels`). A model version whose declaration did not change keeps
//! its adapter, breaker, retry budget and counters, and a loaded local model stays loaded; a
//! changed one starts fresh. During a rolling swap the version being replaced keeps an
//! adapter of its own until its drain deadline, for the conversations still pinned to it.

use crate::breaker::Breaker;
use crate::provider;
use crate::retry::RetryBudget;
use crate::service::{Counters, Inner, Model};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use triage_core::config::{Config, Lifecycle, ModelConfig};
use triage_core::{Catalog, ModelSpec};

/// The version being replaced in a rolling swap, served until `until`.
pub(crate) struct Draining {
    pub(crate) until: SystemTime,
    pub(crate) model: Arc<Model>,
}

/// What identifies one callable version: everything of its declaration but the rollout.
fn fingerprint(m: &ModelConfig) -> String {
    let mut one = m.clone();
    one.rollout = None;
    serde_json::to_string(&one).unwrap_or_default()
}

/// The declaration of the draining version: the model with the previous version and provider.
fn previous_config(m: &ModelConfig) -> Option<ModelConfig> {
    let r = m.rollout.as_ref()?;
    let mut prev = m.clone();
    prev.version = r.previous.version.clone();
    prev.provider = r.previous.provider.clone();
    prev.rollout = None;
    Some(prev)
}

/// Builds the model set of `cfg`, reusing the live state of `old` where a version is unchanged.
pub(crate) async fn build(cfg: &Config, http: &reqwest::Client, old: Option<&Inner>) -> Inner {
    let catalog = Catalog::from_config(cfg);
    let reusable: BTreeMap<String, Arc<Model>> = old
        .map(|o| {
            let current = o.models.values().cloned();
            let draining = o.previous.values().map(|d| d.model.clone());
            current.chain(draining).map(|m| (m.fingerprint.clone(), m)).collect()
        })
        .unwrap_or_default();

    let mut wanted: Vec<(String, ModelConfig, Arc<ModelSpec>, bool)> = Vec::new();
    for (name, m) in &cfg.models {
        let Some(spec) = catalog.get(name).cloned() else { continue };
        if let Some(prev) = previous_config(m) {
            let mut prev_spec = (*spec).clone();
            prev_spec.version = prev.version.clone();
            prev_spec.provider_model_id = prev.provider.provider_model_id();
            prev_spec.provider = prev.provider.kind();
            prev_spec.rollout = None;
            wanted.push((name.clone(), prev, Arc::new(prev_spec), true));
        }
        wanted.push((name.clone(), m.clone(), spec, false));
    }

    let now = Instant::now();
    let builds = wanted.into_iter().map(|(name, m, spec, is_previous)| {
        let reused = reusable.get(&fingerprint(&m)).cloned();
        async move {
            let model = match reused {
                // Same declaration: keep the adapter and its state, with the new catalog entry.
                Some(live) => Arc::new(live.with_spec(spec)),
                None => Arc::new(fresh(&name, &m, spec, cfg, http, now).await),
            };
            (name, m, model, is_previous)
        }
    });
    let mut models = BTreeMap::new();
    let mut previous = BTreeMap::new();
    for (name, m, model, is_previous) in futures::future::join_all(builds).await {
        if is_previous {
            // `m` is the previous version's own declaration; the deadline is on the model's.
            let until = cfg
                .models
                .get(&name)
                .and_then(|c| c.rollout.as_ref())
                .map_or(SystemTime::UNIX_EPOCH, |r| r.drain_until);
            drop(m);
            previous.insert(name, Draining { until, model });
        } else {
            models.insert(name, model);
        }
    }
    Inner { models, previous, catalog, retry: cfg.backends.retry.clone(), deadline: cfg.server.deadlines.generate }
}

/// A version's adapter and fresh state. Never fails: a missing key, a missing model file or a
/// retired lifecycle makes the version unavailable (one log line with the reason).
async fn fresh(
    name: &str,
    m: &ModelConfig,
    spec: Arc<ModelSpec>,
    cfg: &Config,
    http: &reqwest::Client,
    now: Instant,
) -> Model {
    let built = match &m.lifecycle {
        Lifecycle::Retired { replacement } => {
            Err(format!("retired; requests go to the declared replacement `{replacement}`"))
        }
        _ => provider::build(name, m, cfg, http).await,
    };
    let (provider, unavailable) = match built {
        Ok(p) => (Some(p), None),
        Err(reason) => {
            if spec.is_retired() {
                tracing::info!(model = %name, "model {name} is {reason}");
            } else {
                tracing::warn!(model = %name, version = %m.version, "model {name} unavailable: {reason}");
            }
            (None, Some(reason))
        }
    };
    Model {
        spec,
        provider,
        unavailable,
        breaker: Arc::new(Breaker::new(name, &cfg.backends.breaker)),
        budget: Arc::new(RetryBudget::new(&cfg.backends.retry, now)),
        timeout: m.timeout.unwrap_or(cfg.backends.timeout),
        ttft_timeout: m.ttft_timeout.unwrap_or(cfg.backends.ttft_timeout),
        counters: Arc::new(Counters::default()),
        last_drift: Arc::new(Mutex::new(String::new())),
        fingerprint: fingerprint(m),
    }
}

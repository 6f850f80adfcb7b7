//! The gateway: the request flow of `Router.Route` over the five service traits, so the
//! same code runs in one process or across many.
//!
//! context.Get → classify (with history) → signals → policy.Decide → handoff on escalation
//! → ledger.Reserve → backends.Generate → ledger.Commit → context.Append → decision log.

pub mod auth;
mod decision_log;
mod error;
mod flow;
mod grpc;
pub mod http;
mod idempotency;
mod lock;
mod metrics;
mod signals;
mod validate;

pub use decision_log::DecisionLog;
pub use error::{Error, Result};
pub use grpc::{RouterServer, Tenant};
pub use signals::LoadTracker;

use std::sync::Arc;
use triage_backends::Backends;
use triage_classifier::Classifier;
use triage_context::ContextStore;
use triage_core::{Catalog, Config};
use triage_ledger::Ledger;
use triage_policy::Policy;

/// The five services the gateway composes, in-process or remote.
#[derive(Clone)]
pub struct Services {
    /// Labels queries.
    pub classifier: Arc<dyn Classifier>,
    /// Picks models.
    pub policy: Arc<dyn Policy>,
    /// Calls models.
    pub backends: Arc<dyn Backends>,
    /// Owns conversations.
    pub context: Arc<dyn ContextStore>,
    /// Accounts for money.
    pub ledger: Arc<dyn Ledger>,
}

/// The request flow and everything it keeps between requests.
pub struct Gateway {
    services: Services,
    config: Arc<Config>,
    /// Swapped whole when the operator applies models (`Admin.ApplyModels`).
    catalog: arc_swap::ArcSwap<Catalog>,
    redis: redis::aio::ConnectionManager,
    log: DecisionLog,
    load: LoadTracker,
    signals: signals::ModelSignals,
}

impl Gateway {
    /// A gateway over `services`, keeping idempotency records, conversation locks and the
    /// decision log in `redis`.
    pub fn new(services: Services, config: Arc<Config>, redis: redis::aio::ConnectionManager) -> Arc<Gateway> {
        let catalog = arc_swap::ArcSwap::from_pointee(Catalog::from_config(&config));
        let prefix = config.redis.key_prefix.clone();
        Arc::new(Gateway {
            log: DecisionLog::new(redis.clone(), &prefix).with_retention(&config).with_files(&config),
            load: LoadTracker::new(config.server.capacity),
            signals: signals::ModelSignals::new(services.backends.clone()),
            services,
            catalog,
            redis,
            config,
        })
    }

    /// The decision log.
    pub fn decision_log(&self) -> &DecisionLog {
        &self.log
    }

    /// Waits until every decision record queued so far is stored: at shutdown, after the
    /// servers have drained.
    pub async fn flush_decisions(&self) {
        self.log.flush().await;
    }

    /// Waits until no Route is running or `deadline` passes; returns how many still run.
    /// Routes run in tasks of their own and outlive callers that went away after their model
    /// was called (they are charged and stored at the end): at shutdown, after the servers
    /// have drained, they get the rest of the grace period before the decision log's flush.
    pub async fn finish_routes(&self, deadline: std::time::Instant) -> u32 {
        loop {
            let running = self.load.in_flight();
            if running == 0 || std::time::Instant::now() >= deadline {
                return running;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// In-flight requests and the load signal derived from them.
    pub fn load(&self) -> &LoadTracker {
        &self.load
    }

    /// The declared models.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Replaces the declared models (`Admin.ApplyModels`; `cfg` is already validated):
    /// prices and windows for reservations and prompts come from the new set from now on.
    pub fn apply_models(&self, cfg: &Config) {
        self.catalog.store(Arc::new(Catalog::from_config(cfg)));
    }

    /// The services this gateway calls.
    pub fn services(&self) -> &Services {
        &self.services
    }
}

//! Builds the services a process runs: local implementations for its targets, gRPC clients
//! for the rest, so the gateway runs the same flow in one process or many.

use crate::embedded_redis::EmbeddedRedis;
use anyhow::{Context as _, Result, bail};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use triage_backends::Backends;
use triage_classifier::Classifier;
use triage_context::ContextStore;
use triage_core::Config;
use triage_core::grpc;
use triage_gateway::{Gateway, Services};
use triage_ledger::Ledger;
use triage_policy::Policy;

/// Fully-qualified gRPC name of a service, as health reports it.
pub fn service_full_name(service: &str) -> &'static str {
    match service {
        "gateway" => "triage.v1.Router",
        "classifier" => "triage.v1.Classifier",
        "policy" => "triage.v1.Policy",
        "backends" => "triage.v1.Backends",
        "context" => "triage.v1.ContextStore",
        "ledger" => "triage.v1.Ledger",
        _ => "",
    }
}

/// The services of one process.
pub struct Stack {
    /// What the gateway calls (local or remote).
    pub services: Services,
    /// The gateway, when this process runs it.
    pub gateway: Option<Arc<Gateway>>,
    /// API keys and rate limits of the public endpoints, with the gateway.
    pub auth: Option<Arc<triage_gateway::auth::Auth>>,
    /// Live model and policy changes (`server.admin_token` set), with its token.
    admin: Option<(Arc<crate::admin::Admin>, String)>,
    /// The services this process runs itself.
    local: BTreeSet<&'static str>,
    embedded: Option<EmbeddedRedis>,
    stop: CancellationToken,
}

async fn connection(url: &str) -> Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url).with_context(|| format!("redis url `{url}`"))?;
    client.get_connection_manager().await.with_context(|| format!("connecting to redis at {url}"))
}

/// One real inference before the process listens, so health reports SERVING (and the
/// Deployment's readiness passes) only once the model is loaded and has answered. The query is
/// unique, so a shared label cache cannot answer it instead of the model.
async fn warm_up(c: &dyn Classifier) -> Result<()> {
    let started = std::time::Instant::now();
    let query = format!("warm-up {}: where is my order?", uuid::Uuid::new_v4());
    let r = c
        .classify(triage_proto::pb::ClassifyRequest { query, history: Vec::new() })
        .await
        .context("classifier warm-up inference failed")?;
    let version = r.classification.map(|c| c.model_version).unwrap_or_default();
    tracing::info!(%version, warm_up_ms = started.elapsed().as_millis(), "classifier warmed up");
    Ok(())
}

impl Stack {
    /// Starts the local services of `targets` and connects to the others.
    pub async fn build(
        config: Arc<Config>,
        targets: &BTreeSet<&'static str>,
        all_in_one: bool,
        stop: CancellationToken,
    ) -> Result<Stack> {
        let needs_redis = ["gateway", "context", "ledger", "classifier"].iter().any(|s| targets.contains(s));
        let (redis_url, embedded) = match crate::serve::redis_url(&config) {
            Some(url) => (Some(url), None),
            None if needs_redis && all_in_one => {
                let e = EmbeddedRedis::start(&config.redis.server_binary).await?;
                (Some(e.url()), Some(e))
            }
            None if needs_redis => {
                bail!(
                    "redis.url (or TRIAGE_REDIS_URL) must be set when services run in separate processes: they must share one Redis"
                )
            }
            None => (None, None),
        };
        let prefix = config.redis.key_prefix.clone();
        let client_tls = match &config.services.tls {
            Some(t) => Some(grpc::client_tls(
                &config.resolve_path(&t.ca),
                Some((&config.resolve_path(&t.cert), &config.resolve_path(&t.key))),
            )?),
            None => None,
        };
        let remote = |name: &str| -> Result<grpc::TracedChannel> {
            let ep = config.services.get(name).with_context(|| format!("no endpoint for {name}"))?;
            Ok(grpc::channel(&ep.connect, client_tls.as_ref())?)
        };

        let local_backends = match targets.contains("backends") {
            true => Some(triage_backends::LocalBackends::new(&config).await?),
            false => None,
        };
        let backends: Arc<dyn Backends> = if let Some(b) = &local_backends {
            Arc::new(b.clone())
        } else {
            Arc::new(triage_backends::RemoteBackends::new(remote("backends")?))
        };
        let classifier: Arc<dyn Classifier> = if targets.contains("classifier") {
            let c = triage_classifier::build_async(&config.classifier_resolved(), redis_url.as_deref()).await?;
            warm_up(c.as_ref()).await?;
            c
        } else {
            Arc::new(triage_classifier::RemoteClassifier::new(remote("classifier")?))
        };
        let mut local_policy = None;
        let policy: Arc<dyn Policy> = if targets.contains("policy") {
            let p = Arc::new(triage_policy::LocalPolicy::from_config(&config)?);
            for w in p.warnings() {
                tracing::warn!(warning = %w, "policy");
            }
            if config.policy.file.is_some() {
                p.spawn_reload(config.policy.reload_interval, stop.clone());
            }
            local_policy = Some(p.clone());
            p
        } else {
            Arc::new(triage_policy::RemotePolicy::new(remote("policy")?))
        };
        // The gateway, the context store and (in one process) the ledger share one multiplexed
        // connection: their commands go out together in one write (and one Redis read).
        let shared = tokio::sync::OnceCell::new();
        let shared_connection = |what: &'static str| {
            let (shared, url) = (&shared, redis_url.as_deref());
            async move {
                let url = url.with_context(|| format!("{what} needs redis"))?;
                shared.get_or_try_init(|| connection(url)).await.cloned()
            }
        };
        let context: Arc<dyn ContextStore> = if targets.contains("context") {
            Arc::new(triage_context::RedisContext::new(
                shared_connection("context").await?,
                &config.context,
                prefix.clone(),
                Some(backends.clone()),
            ))
        } else {
            Arc::new(triage_context::RemoteContext::new(remote("context")?))
        };
        let ledger: Arc<dyn Ledger> = if targets.contains("ledger") {
            let url = redis_url.as_deref().context("ledger needs redis")?;
            // In one process the gateway already needs Redis to start, so the ledger shares
            // its connection; on its own it connects lazily and can start (and fail open)
            // while Redis is still down.
            let target: triage_ledger::RedisTarget = if targets.contains("gateway") {
                shared_connection("ledger").await?.into()
            } else {
                url.to_string().into()
            };
            let l = triage_ledger::RedisLedger::new(target, &config.ledger, &prefix)?;
            l.spawn_reaper(std::time::Duration::from_secs(5));
            Arc::new(l)
        } else {
            Arc::new(triage_ledger::RemoteLedger::new(remote("ledger")?))
        };
        let services = Services { classifier, policy, backends, context, ledger };
        let gateway = if targets.contains("gateway") {
            Some(Gateway::new(services.clone(), config.clone(), shared_connection("gateway").await?))
        } else {
            None
        };
        let auth = match &gateway {
            Some(_) => {
                let auth = triage_gateway::auth::Auth::from_config(&config)?;
                auth.spawn_reload(config.auth.reload_interval, stop.clone());
                Some(auth)
            }
            None => None,
        };
        let admin = match &config.server.admin_token {
            Some(secret) => {
                let token = secret
                    .resolve()
                    .map_err(|e| anyhow::anyhow!("server.admin_token: {e}"))
                    .context("the Admin service needs its token")?;
                let admin = crate::admin::Admin::new(config.clone(), local_policy, local_backends, gateway.clone());
                Some((Arc::new(admin), token))
            }
            None => None,
        };
        Ok(Stack { services, gateway, auth, admin, local: targets.clone(), embedded, stop })
    }

    /// The tonic routes of `names` (each must be local) and their health names.
    pub fn routes(&self, names: &[&'static str]) -> Result<(tonic::service::Routes, Vec<&'static str>)> {
        let mut builder = tonic::service::RoutesBuilder::default();
        let mut health = Vec::new();
        for name in names {
            if !self.local.contains(name) {
                bail!("{name} does not run in this process");
            }
            match *name {
                "gateway" => {
                    let gw = self.gateway.clone().context("gateway not built")?;
                    let auth = self.auth.clone().context("auth not built")?;
                    let svc = triage_gateway::RouterServer::new(gw).with_auth(auth.clone()).into_service();
                    builder.add_service(tonic::service::interceptor::InterceptedService::new(
                        svc,
                        auth.grpc_interceptor(),
                    ));
                }
                "classifier" => {
                    builder.add_service(
                        triage_classifier::ClassifierServer(self.services.classifier.clone()).into_service(),
                    );
                }
                "policy" => {
                    builder.add_service(triage_policy::PolicyServer(self.services.policy.clone()).into_service());
                }
                "backends" => {
                    builder.add_service(triage_backends::BackendsServer(self.services.backends.clone()).into_service());
                }
                "context" => {
                    builder.add_service(triage_context::ContextServer(self.services.context.clone()).into_service());
                }
                "ledger" => {
                    builder.add_service(triage_ledger::LedgerServer(self.services.ledger.clone()).into_service());
                }
                other => bail!("unknown service {other}"),
            }
            health.push(service_full_name(name));
        }
        if let Some((admin, token)) = &self.admin {
            let svc = triage_proto::pb::admin_server::AdminServer::from_arc(admin.clone());
            builder.add_service(tonic::service::interceptor::InterceptedService::new(
                svc,
                crate::admin::interceptor(token.clone()),
            ));
        }
        Ok((builder.routes(), health))
    }

    /// Lets Routes whose callers went away finish until `deadline` (the end of the grace
    /// period), stores the decision records still queued, then stops background tasks and
    /// the embedded Redis.
    pub async fn shutdown(self, deadline: std::time::Instant) {
        if let Some(gw) = &self.gateway {
            let running = gw.load().in_flight();
            if running > 0 {
                tracing::info!(running, "waiting for Routes whose callers went away (they are charged at the end)");
            }
            let unfinished = gw.finish_routes(deadline).await;
            if unfinished > 0 {
                tracing::warn!(
                    unfinished,
                    "grace period over; Routes still running are abandoned (their reservations are reaped)"
                );
            }
            gw.flush_decisions().await;
        }
        self.stop.cancel();
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}

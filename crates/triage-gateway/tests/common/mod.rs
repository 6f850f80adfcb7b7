//! The in-process stack the gateway tests route through: every service local, on one Redis.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use triage_core::Config;
use triage_core::config::{ClassifierKind, ProviderConfig, SecretRef};
use triage_gateway::{Gateway, Services};
use triage_testkit::{FakeOpenAi, RedisServer};

/// The default config with every model on one fake OpenAI-compatible provider, each under
/// the provider id `NAME-id`, and the keyword classifier.
pub fn config_on(fake: &FakeOpenAi, redis: &RedisServer, key: &std::path::Path) -> Config {
    let mut config = Config::embedded_default().unwrap();
    config.redis.url = Some(redis.url());
    config.classifier.kind = ClassifierKind::Heuristic;
    for (name, m) in config.models.iter_mut() {
        m.provider = ProviderConfig::Openai {
            base_url: fake.base_url(),
            model_id: format!("{name}-id"),
            api_key: Some(SecretRef { env: None, file: Some(key.to_path_buf()) }),
        };
    }
    config
}

/// A redis-server, the fake provider, a key file for it (in the returned directory) and
/// [`config_on`] them: what most gateway tests start from.
pub async fn fake_stack() -> (RedisServer, FakeOpenAi, Config, tempfile::TempDir) {
    let redis = RedisServer::start().unwrap();
    let fake = FakeOpenAi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    let config = config_on(&fake, &redis, &key);
    (redis, fake, config, dir)
}

/// Every service in process over `redis`, keys under `prefix`, plus the connection the
/// gateway itself uses.
pub async fn local_services(
    config: &Arc<Config>,
    redis: &RedisServer,
    prefix: &str,
) -> (Services, redis::aio::ConnectionManager) {
    let backends: Arc<dyn triage_backends::Backends> =
        Arc::new(triage_backends::LocalBackends::new(config).await.unwrap());
    let conn = redis::Client::open(redis.url()).unwrap().get_connection_manager().await.unwrap();
    let services = Services {
        classifier: triage_classifier::build(&config.classifier, None).unwrap(),
        policy: Arc::new(triage_policy::LocalPolicy::from_config(config).unwrap()),
        backends: backends.clone(),
        context: Arc::new(triage_context::RedisContext::new(conn.clone(), &config.context, prefix, Some(backends))),
        ledger: Arc::new(triage_ledger::RedisLedger::new(redis.url(), &config.ledger, prefix).unwrap()),
    };
    (services, conn)
}

/// A gateway over [`local_services`].
pub async fn local_gateway(config: &Arc<Config>, redis: &RedisServer, prefix: &str) -> Arc<Gateway> {
    let (services, conn) = local_services(config, redis, prefix).await;
    Gateway::new(services, config.clone(), conn)
}

//! `triage serve --target operator`: the kube-rs controller that pushes `LlmModel` and
//! `RoutingPolicy` resources to the running services, plus gRPC health and `/metrics` on
//! its own port for the kubelet and Prometheus.

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use triage_core::Config;
use triage_core::grpc::{self, Shutdown};
use triage_operator::{Discovery, OperatorConfig, OperatorTls};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The operator's settings: the namespace and pod selector from the environment the chart
/// sets, TLS and the Admin token from the same config file the services read.
pub fn settings(config: &Config, config_path: Option<PathBuf>) -> Result<OperatorConfig> {
    let namespace = env("TRIAGE_OPERATOR_WATCH_NAMESPACE")
        .or_else(|| env("POD_NAMESPACE"))
        .context("set TRIAGE_OPERATOR_WATCH_NAMESPACE or POD_NAMESPACE: the namespace whose resources and pods the operator manages")?;
    let mut cfg = OperatorConfig::new(namespace);
    cfg.base_config = config_path;
    let mut discovery = Discovery::default();
    if let Some(sel) = env("TRIAGE_OPERATOR_SELECTOR") {
        discovery.label_selector = Some(sel);
    }
    if let Some(port) = env("TRIAGE_OPERATOR_PORT_NAME") {
        discovery.port_name = port;
    }
    if let Some(list) = env("TRIAGE_OPERATOR_ENDPOINTS") {
        discovery.static_endpoints = list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    cfg.discovery = discovery;
    cfg.tls = config.services.tls.as_ref().map(|t| OperatorTls {
        ca: config.resolve_path(&t.ca),
        identity: Some((config.resolve_path(&t.cert), config.resolve_path(&t.key))),
        domain_name: env("TRIAGE_OPERATOR_TLS_DOMAIN"),
    });
    cfg.admin_token = match &config.server.admin_token {
        Some(s) => Some(s.resolve().map_err(|e| anyhow::anyhow!("server.admin_token: {e}"))?),
        None => None,
    };
    Ok(cfg)
}

/// Runs the controller until a signal, serving health on `TRIAGE_OPERATOR_LISTEN`.
pub async fn run(config: Config, config_path: Option<PathBuf>, stop: CancellationToken) -> Result<()> {
    let settings = settings(&config, config_path)?;
    if settings.admin_token.is_none() {
        tracing::warn!("server.admin_token is not set: the services will refuse every push (Admin is not served)");
    }
    let listen = env("TRIAGE_OPERATOR_LISTEN").unwrap_or_else(|| "0.0.0.0:50057".into());
    let listener = grpc::bind(&listen).await.context("operator health port")?;
    tracing::info!(addr = %listener.local_addr()?, namespace = %settings.namespace, "operator starting");
    let shutdown = Shutdown { drain_delay: config.server.drain_delay, grace_period: config.server.grace_period };
    let routes = tonic::service::RoutesBuilder::default().routes();
    let health_stop = stop.clone();
    let health = tokio::spawn(async move { grpc::serve(listener, routes, &[], health_stop, shutdown, None).await });
    let res = triage_operator::run(settings, stop.clone()).await;
    stop.cancel();
    let _ = health.await;
    res.context("operator")
}

//! `triage serve`: runs some or all services; SIGTERM flips health to NOT_SERVING, drains
//! in-flight calls within the grace period, and exits 0.

use crate::stack::Stack;
use anyhow::{Context as _, Result, bail};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use triage_core::Config;
use triage_core::config::SERVICE_NAMES;
use triage_core::grpc::{self, Shutdown};

/// Parses `all` or a comma list of service names.
pub fn parse_targets(target: &str) -> Result<BTreeSet<&'static str>> {
    if target.trim() == "all" {
        return Ok(SERVICE_NAMES.into_iter().collect());
    }
    let mut out = BTreeSet::new();
    for t in target.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match SERVICE_NAMES.iter().find(|n| **n == t) {
            Some(n) => {
                out.insert(*n);
            }
            None => {
                bail!("--target: unknown service `{t}`; expected all or a comma list of {}", SERVICE_NAMES.join(", "))
            }
        }
    }
    if out.is_empty() {
        bail!("--target: name at least one service");
    }
    Ok(out)
}

/// Cancels `stop` on SIGTERM or Ctrl-C.
pub fn stop_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    stop.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        stop.cancel();
    });
}

/// Runs the targets until a signal.
pub async fn serve(config: Config, target: &str) -> Result<()> {
    let targets = parse_targets(target)?;
    let all_in_one = targets.len() == SERVICE_NAMES.len();
    let config = Arc::new(config);
    let stop = CancellationToken::new();
    stop_on_signal(stop.clone());

    let stack = Stack::build(config.clone(), &targets, all_in_one, stop.clone()).await?;
    let shutdown = Shutdown { drain_delay: config.server.drain_delay, grace_period: config.server.grace_period };

    // Shutdown's one clock: in-flight calls, and the Routes that outlive their callers, have
    // until the drain delay and the grace period after the stop are over.
    let stopped_at = {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            std::time::Instant::now()
        })
    };
    let mut servers = tokio::task::JoinSet::new();
    let auth_on = stack.auth.as_ref().is_some_and(|a| a.enabled());
    let groups: Vec<(&str, Vec<&'static str>)> = if all_in_one && auth_on {
        // Internal services take the tenant from the request body; with authentication on,
        // the public port serves the Router alone so no key can reach another tenant's data.
        vec![("gateway", vec!["gateway"])]
    } else if all_in_one {
        vec![("gateway", targets.iter().copied().collect())]
    } else {
        targets.iter().map(|t| (*t, vec![*t])).collect()
    };
    let mut reported: Vec<&'static str> = Vec::new();
    for (listen_of, services) in groups {
        let Some(ep) = config.services.get(listen_of) else { continue };
        let listener = grpc::bind(&ep.listen).await.with_context(|| format!("serving {}", services.join(",")))?;
        let addr = listener.local_addr()?;
        let (routes, names) = stack.routes(&services)?;
        reported.extend(names.iter().copied());
        let tls = grpc_tls(&config, listen_of)?;
        tracing::info!(%addr, services = %services.join(","), tls = tls.is_some(), "listening");
        let stop = stop.clone();
        servers.spawn(async move {
            let names: Vec<&str> = names.to_vec();
            grpc::serve(listener, routes, &names, stop, shutdown, tls).await
        });
    }
    if let (Some(gw), Some(auth)) = (stack.gateway.clone(), stack.auth.clone()) {
        let listener = grpc::bind(&config.server.http_listen).await.context("serving the HTTP endpoint")?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP (OpenAI-compatible) listening");
        let (router, stop) = (triage_gateway::http::router(gw, auth), stop.clone());
        let header_timeout = config.server.header_read_timeout;
        let tls = match &config.server.tls {
            Some(t) => {
                Some(triage_gateway::http::tls::acceptor(&config.resolve_path(&t.cert), &config.resolve_path(&t.key))?)
            }
            None => None,
        };
        servers.spawn(async move {
            triage_gateway::http::serve_http(listener, router, stop, shutdown, header_timeout, tls)
                .await
                .map_err(|e| triage_core::Error::Address { addr: "http".into(), reason: e.to_string() })
        });
    }
    // Bound before any server ends, so a port already taken fails the start, not a probe.
    let health_done = CancellationToken::new();
    let health = match &config.server.health_listen {
        Some(addr) => {
            let listener = grpc::bind(addr).await.context("serving server.health_listen")?;
            tracing::info!(addr = %listener.local_addr()?, "health (plain text, grpc.health.v1 only) listening");
            let (stop, done) = (stop.clone(), health_done.clone());
            Some(tokio::spawn(async move {
                let res = grpc::serve_health(listener, &reported, stop.clone(), done).await;
                if let Err(e) = &res {
                    // Probes would fail from now on: stop as any other server's failure does.
                    tracing::error!(error = %e, "health server failed");
                    stop.cancel();
                }
                res
            }))
        }
        None => None,
    };
    let mut failed = None;
    while let Some(res) = servers.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server failed");
                failed = Some(anyhow::Error::from(e));
                stop.cancel();
            }
            Err(e) => {
                failed = Some(anyhow::anyhow!("server task: {e}"));
                stop.cancel();
            }
        }
    }
    stop.cancel(); // servers that ended on their own: stopping now
    health_done.cancel();
    if let Some(h) = health
        && let Ok(Err(e)) = h.await
    {
        failed.get_or_insert(anyhow::Error::from(e));
    }
    let stopped_at = stopped_at.await.unwrap_or_else(|_| std::time::Instant::now());
    stack.shutdown(stopped_at + shutdown.drain_delay + shutdown.grace_period).await;
    tracing::info!("stopped");
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// TLS of the gRPC port of `listen_of`: the public gateway port uses `server.tls` (server
/// TLS only: public clients have no client certificate); every other service's port uses
/// `services.tls` and requires a client certificate signed by its CA.
fn grpc_tls(config: &Config, listen_of: &str) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    let tls = if listen_of == "gateway" {
        match &config.server.tls {
            Some(t) => Some(grpc::server_tls(&config.resolve_path(&t.cert), &config.resolve_path(&t.key), None)?),
            None => None,
        }
    } else {
        match &config.services.tls {
            Some(t) => Some(grpc::server_tls(
                &config.resolve_path(&t.cert),
                &config.resolve_path(&t.key),
                Some(&config.resolve_path(&t.ca)),
            )?),
            None => None,
        }
    };
    Ok(tls)
}

/// The Redis URL: `TRIAGE_REDIS_URL`, else `redis.url`, else none (embedded).
pub fn redis_url(config: &Config) -> Option<String> {
    std::env::var("TRIAGE_REDIS_URL").ok().filter(|s| !s.is_empty()).or_else(|| config.redis.url.clone())
}

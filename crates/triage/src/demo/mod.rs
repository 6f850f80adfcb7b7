//! `triage demo`: plays bundled conversations through the all-in-one stack, in process, and
//! shows per turn what was decided and why, then the shares and costs the seed measures.

mod report;
mod simulated;

use crate::stack::Stack;
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use triage_core::Config;
use triage_core::config::{LimitConfig, SERVICE_NAMES, TelemetryConfig, Window};
use triage_proto::pb;

const SCRIPT: &str = include_str!("../../demo/conversations.yaml");

/// One bundled conversation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Conversation {
    name: String,
    tenant: String,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    outage: Option<String>,
    turns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    user_id: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    premium: bool,
}

/// Runs the demo.
pub async fn run(mut config: Config, max_tokens: u32, simulate: bool, only: Option<&str>) -> Result<()> {
    // The demo prints its own account of each turn; only errors go to the log.
    let quiet = TelemetryConfig { log_filter: "error".into(), ..config.telemetry.clone() };
    triage_core::telemetry::install(&quiet, None)?;
    let script: Vec<Conversation> = serde_yaml::from_str(SCRIPT).context("bundled demo/conversations.yaml")?;
    let gguf_missing = config.models.values().any(|m| match &m.provider {
        triage_core::config::ProviderConfig::Local { gguf, .. } => !config.resolve_path(gguf).exists(),
        _ => false,
    });
    if gguf_missing {
        bail!("model files are missing: run scripts/fetch-models.sh (scripts/demo.sh does it for you)");
    }

    let sims = if simulate { Some(simulated::Providers::start(&mut config).await?) } else { None };
    // A tenant with a tiny hourly budget, so the demo shows the spend limit downgrading.
    config.ledger.limits.push(LimitConfig {
        scope: "tenant".into(),
        id: Some("tiny-budget".into()),
        window: Window::Hour,
        limit_micros: 2_500,
    });
    // CPU prompt processing dominates local latency; four recent turns keep the demo brisk.
    config.context.prompt_turns = config.context.prompt_turns.min(4);
    config.server.deadlines.classify = std::time::Duration::from_secs(2);
    let config = Arc::new(config);
    let stop = CancellationToken::new();
    let all = SERVICE_NAMES.into_iter().collect();
    let stack = Stack::build(config.clone(), &all, true, stop.clone()).await?;
    let gateway = stack.gateway.clone().context("gateway not built")?;

    report::header(&stack.services.backends.list_models().await?, simulate);
    let mut turns = Vec::new();
    for conv in script.iter().filter(|c| only.is_none_or(|o| c.name.contains(o))) {
        if let (Some(provider), Some(s)) = (&conv.outage, &sims) {
            s.outage(provider, true);
            println!("\n!! simulated outage: every {provider} call now fails with HTTP 529/503");
        }
        println!("\n== {} (tenant {})", conv.name, conv.tenant);
        let conversation_id = format!("demo-{}-{}", conv.name, uuid::Uuid::new_v4().simple());
        for (i, turn) in conv.turns.iter().enumerate() {
            let req = pb::RouteRequest {
                conversation_id: conversation_id.clone(),
                create_if_missing: true,
                turn: turn.clone(),
                max_tokens,
                temperature: Some(0.0),
                user: conv.user.as_ref().map(|u| pb::UserContext {
                    user_id: u.user_id.clone(),
                    plan: u.plan.clone(),
                    premium: u.premium,
                    revenue_per_conversation_micros: 0,
                }),
                ..Default::default()
            };
            let start = Instant::now();
            let res = gateway.route(&conv.tenant, req).await;
            let wall = start.elapsed();
            report::turn(i + 1, turn, &res, wall);
            turns.push(report::Turn::new(&conv.name, res, wall, &config));
        }
        if let (Some(provider), Some(s)) = (&conv.outage, &sims) {
            s.outage(provider, false);
        }
    }
    report::summary(&turns, &config);
    // Every turn was awaited: no Route is left running.
    stack.shutdown(Instant::now()).await;
    drop(sims);
    Ok(())
}

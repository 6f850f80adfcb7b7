//! Dispatch of the subcommands that are not long-running services.

use crate::cli::{Cli, Command, ConfigCommand, PolicyCommand};
use anyhow::{Context as _, Result};
use std::process::ExitCode;
use triage_core::Config;
use triage_proto::pb;
use triage_proto::pb::router_client::RouterClient;

mod classify;
mod explain;
mod replay;

/// Wraps a message in a request carrying the API key, when one is set.
fn authorized<T>(msg: T, api_key: Option<&str>) -> Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    if let Some(key) = api_key {
        let value = format!("Bearer {key}").parse().context("the API key is not valid header text")?;
        req.metadata_mut().insert("authorization", value);
    }
    Ok(req)
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let api_key = cli.api_key.clone();
    let api_key = api_key.as_deref();
    let tls = match &cli.ca {
        Some(ca) => Some(triage_core::grpc::client_tls(ca, None)?),
        None => None,
    };
    let tls = tls.as_ref();
    match cli.command {
        Command::Serve { target } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            let _guard = triage_core::telemetry::init(&config.telemetry)?;
            if target.trim() == "operator" {
                let stop = tokio_util::sync::CancellationToken::new();
                crate::serve::stop_on_signal(stop.clone());
                crate::operator::run(config, cli.config.clone(), stop).await?;
            } else {
                crate::serve::serve(config, &target).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds { check } => {
            let yaml = triage_operator::crds_yaml()?;
            match check {
                None => print!("{yaml}"),
                Some(dir) => {
                    // Same comparison as the drift test, for CI steps and operators' hands.
                    let mut stale = Vec::new();
                    for crd in triage_operator::crds() {
                        let (name, want) = triage_operator::crd_file(&crd)?;
                        let file = dir.join(name);
                        if std::fs::read_to_string(&file).ok().as_deref() != Some(want.as_str()) {
                            stale.push(file.display().to_string());
                        }
                    }
                    if !stale.is_empty() {
                        anyhow::bail!(
                            "CRDs differ from the Rust types: {} (regenerate with TRIAGE_UPDATE_CRDS=1 cargo test -p triage-operator --test crds)",
                            stale.join(", ")
                        );
                    }
                    println!("CRDs match the Rust types");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { max_tokens, no_simulated_providers, only } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            crate::demo::run(config, max_tokens, !no_simulated_providers, only.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Route { text, conversation, create, request_id, max_tokens, stream, json, addr } => {
            let req = pb::RouteRequest {
                request_id: request_id.unwrap_or_default(),
                conversation_id: conversation.unwrap_or_default(),
                turn: text,
                max_tokens,
                create_if_missing: create,
                ..Default::default()
            };
            route(&addr, req, stream, json, api_key, tls).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { request_id, json, addr } => {
            let mut client = RouterClient::new(triage_core::grpc::channel(&addr, tls)?);
            let rec = client
                .explain(authorized(pb::ExplainRequest { request_id }, api_key)?)
                .await
                .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
                .into_inner();
            if json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else {
                print!("{}", explain::render(&rec));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command: ConfigCommand::Check { file } } => match Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} models, fast={}, middle={}, frontier={})",
                    file.display(),
                    cfg.models.len(),
                    cfg.tiers.fast,
                    cfg.tiers.middle,
                    cfg.tiers.frontier
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Config { command: ConfigCommand::Default } => {
            print!("{}", triage_core::config::DEFAULT_CONFIG_YAML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Spend { kind, tenant, conversation, window, json, addr } => {
            let (kind, id) = match (kind, tenant, conversation) {
                (_, Some(t), Some(c)) => ("conversation".to_string(), format!("{t}:{c}")),
                (_, None, Some(c)) => ("conversation".to_string(), c),
                (_, Some(t), None) => ("tenant".to_string(), t),
                (Some(k), None, None) => (k, String::new()),
                (None, None, None) => (String::new(), String::new()),
            };
            let mut client = pb::ledger_client::LedgerClient::new(triage_core::grpc::channel(&addr, tls)?);
            let req = pb::SpendRequest { kind, id, window: window.unwrap_or_default() };
            let rows = client
                .spend(authorized(req, api_key)?)
                .await
                .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
                .into_inner()
                .rows;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", spend_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Classify { input, output } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            classify::run(&config, &input, output.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { input, policy, json, sweep, plot } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            replay::run(&config, replay::Args { input, policy, json, sweep, plot }).await
        }
        Command::Policy { command: PolicyCommand::Test { policy, cases } } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            let local = triage_policy::LocalPolicy::new(&config, Some(&policy))?;
            let cases_yaml = std::fs::read_to_string(&cases).with_context(|| format!("reading {}", cases.display()))?;
            let report = triage_policy::run_policy_tests(&local, &cases_yaml)
                .with_context(|| format!("policy test {} {}", policy.display(), cases.display()))?;
            println!("{}", report.to_string().trim_end());
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

async fn route(
    addr: &str,
    req: pb::RouteRequest,
    stream: bool,
    json: bool,
    api_key: Option<&str>,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<()> {
    use std::io::Write;
    let mut client = RouterClient::new(triage_core::grpc::channel(addr, tls)?);
    let status = |s: tonic::Status| anyhow::anyhow!("{:?}: {}", s.code(), s.message());
    let resp = if stream {
        let mut s = client.route_stream(authorized(req, api_key)?).await.map_err(status)?.into_inner();
        let mut done = None;
        while let Some(chunk) = s.message().await.map_err(status)? {
            match chunk.chunk {
                Some(pb::route_chunk::Chunk::Delta(d)) if !json => {
                    print!("{d}");
                    std::io::stdout().flush()?;
                }
                Some(pb::route_chunk::Chunk::Done(r)) => done = Some(r),
                _ => {}
            }
        }
        if !json {
            println!();
        }
        done.context("stream ended without its final metadata")?
    } else {
        client.route(authorized(req, api_key)?).await.map_err(status)?.into_inner()
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else {
        if !stream {
            println!("{}", resp.reply);
        }
        eprintln!(
            "-- {} ({}) rule={} cost=${:.6} tokens={}+{} request_id={} conversation={}{}",
            resp.model,
            resp.model_version,
            resp.rule_id,
            resp.cost_micros as f64 / 1e6,
            resp.usage.map(|u| u.input_tokens).unwrap_or(0),
            resp.usage.map(|u| u.output_tokens).unwrap_or(0),
            resp.request_id,
            resp.conversation_id,
            if resp.warnings.is_empty() {
                String::new()
            } else {
                format!("\n-- warnings: {}", resp.warnings.join("; "))
            },
        );
    }
    Ok(())
}

/// Spend rows as a table for a person; revenue and margin (over the whole conversation)
/// only on conversation rows whose caller sent a revenue.
fn spend_table(rows: &[pb::ScopeSpend]) -> String {
    use std::fmt::Write;
    let money = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| triage_core::Micros(v).to_string());
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<44} {:<6} {:>12} {:>12} {:>12} {:>9} {:>12} {:>12}",
        "scope", "window", "spent", "reserved", "limit", "requests", "revenue", "margin"
    );
    for r in rows {
        let scope = r.scope.clone().unwrap_or_default();
        let name = if scope.id.is_empty() { scope.kind } else { format!("{}:{}", scope.kind, scope.id) };
        let limit = if r.limit_micros > 0 { triage_core::Micros(r.limit_micros).to_string() } else { "-".into() };
        let _ = writeln!(
            o,
            "{:<44} {:<6} {:>12} {:>12} {:>12} {:>9} {:>12} {:>12}",
            name,
            r.window,
            triage_core::Micros(r.spent_micros).to_string(),
            triage_core::Micros(r.reserved_micros).to_string(),
            limit,
            r.requests,
            money(r.revenue_micros),
            money(r.margin_micros),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_table_shows_revenue_and_margin_on_conversation_rows() {
        let row = |kind: &str, id: &str, revenue: Option<i64>, margin: Option<i64>| pb::ScopeSpend {
            scope: Some(pb::Scope { kind: kind.into(), id: id.into() }),
            window: "day".into(),
            spent_micros: 1_500,
            revenue_micros: revenue,
            margin_micros: margin,
            ..Default::default()
        };
        let t =
            spend_table(&[row("tenant", "acme", None, None), row("conversation", "acme:c1", Some(1_000), Some(-500))]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("revenue       margin"), "{t}");
        assert!(lines[1].ends_with("-            -"), "{t}");
        assert!(lines[2].starts_with("conversation:acme:c1") && lines[2].ends_with("$0.001000   -$0.000500"), "{t}");
    }
}

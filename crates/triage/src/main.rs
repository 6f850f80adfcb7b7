//! `triage`: one binary for every Triage service and its operator commands.

// mimalloc's per-thread free lists: a Route allocates and frees many small strings and
// protobuf messages across tokio worker threads, where glibc malloc spent ~20 % of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cli;
mod commands;
mod demo;
mod drift;
mod embedded_redis;
mod operator;
mod serve;
mod stack;

use clap::{CommandFactory as _, FromArgMatches as _, Subcommand as _};
use std::path::PathBuf;

/// What the command line asked for: one of the `cli` commands, or `drift`.
enum Work {
    Cli(cli::Cli),
    Drift(Option<PathBuf>, drift::DriftCommand),
}

/// The `cli` commands plus `drift`.
fn command() -> clap::Command {
    let drift = clap::Command::new("drift").subcommand_required(true).arg_required_else_help(true);
    cli::Cli::command().subcommand(drift::DriftCommand::augment_subcommands(drift))
}

fn parse() -> Work {
    let matches = command().get_matches();
    match matches.subcommand() {
        Some(("drift", sub)) => {
            let cmd = drift::DriftCommand::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
            let config = matches.get_one::<PathBuf>("config").or_else(|| sub.get_one::<PathBuf>("config")).cloned();
            Work::Drift(config, cmd)
        }
        _ => Work::Cli(cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())),
    }
}

fn main() -> std::process::ExitCode {
    let work = parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("triage: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = runtime.block_on(async {
        match work {
            Work::Cli(cli) => commands::run(cli).await,
            Work::Drift(config, cmd) => {
                let config = triage_core::Config::load_or_default(config.as_deref())?;
                drift::run(&config, cmd).await
            }
        }
    });
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("triage: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `triage`: one binary for every Triage service and its operator commands.

mod cli;
mod commands;
mod demo;
mod embedded_redis;
mod serve;
mod stack;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("triage: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("triage: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

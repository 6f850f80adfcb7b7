//! Command-line interface.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Routes each LLM request to the cheapest model that can answer it well.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about)]
pub struct Cli {
    /// Config file (YAML); the embedded default when absent.
    #[arg(long, global = true, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// API key sent by `route` and `explain` when the gateway requires one.
    #[arg(long, global = true, env = "TRIAGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// CA certificate (PEM) `route` and `explain` trust to reach a TLS gateway (`server.tls`).
    #[arg(long, global = true, env = "TRIAGE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs services: all in one process (default), or some, reaching the rest by address.
    Serve {
        /// `all`, a comma list of gateway, classifier, policy, backends, context, ledger, or
        /// `operator` (the Kubernetes controller; alone in its process).
        #[arg(long, default_value = "all")]
        target: String,
    },
    /// Prints the CustomResourceDefinitions (LlmModel, RoutingPolicy) generated from the Rust
    /// types, or checks the files in a directory against them.
    Crds {
        /// Directory of committed CRDs to compare (e.g. helm/triage/crds); non-zero exit on drift.
        #[arg(long)]
        check: Option<std::path::PathBuf>,
    },
    /// Plays bundled conversations through the all-in-one stack and prints what it decided.
    Demo {
        /// Max tokens per reply.
        #[arg(long, default_value_t = 48)]
        max_tokens: u32,
        /// Do not start the simulated providers: every provider model is then unavailable
        /// (no keys) and the fallbacks answer.
        #[arg(long)]
        no_simulated_providers: bool,
        /// Play only the conversations whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Sends one turn to a running server.
    Route {
        /// The user turn.
        text: String,
        /// Conversation to continue (a new one when absent).
        #[arg(long)]
        conversation: Option<String>,
        /// Create the conversation under --conversation when missing.
        #[arg(long)]
        create: bool,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
        /// Max tokens of the reply.
        #[arg(long, default_value_t = 0)]
        max_tokens: u32,
        /// Stream the reply.
        #[arg(long)]
        stream: bool,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
        /// Gateway URL.
        #[arg(long, env = "TRIAGE_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
    },
    /// Prints the decision record of a request.
    Explain {
        /// Request id.
        request_id: String,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
        /// Gateway URL.
        #[arg(long, env = "TRIAGE_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
    },
    /// Config file commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Labels a JSONL log (`{"id", "query", "history"?}` per line, extra fields ignored)
    /// with the configured classifier; one JSON line of labels per input line.
    Classify {
        /// Input file.
        #[arg(long)]
        input: PathBuf,
        /// Output file (stdout when absent).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// What-if routing of a query log (JSONL) under a policy: share per model and tier, cost
    /// per 1,000 queries against all-frontier, escalation rate; no model is called.
    Replay {
        /// JSONL log: `{"id", "query", "history"?}` a line, optionally pre-classified
        /// (`complexity`, `category`, `requires_context`, `confidence`, `language`) and labelled
        /// (`expected_complexity` or `label`), with `conversation_id`, `tokens_in`, `tokens_out`.
        #[arg(long)]
        input: PathBuf,
        /// Policy file (default: `policy.file` of the config, else the built-in policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Replay at each value of the fast-tier confidence gate: `confidence=LO:HI:STEP`.
        #[arg(long)]
        sweep: Option<String>,
        /// Write the sweep's plot (SVG) here.
        #[arg(long, requires = "sweep")]
        plot: Option<PathBuf>,
    },
    /// Spend per scope and window, from the ledger service.
    Spend {
        /// Only this scope kind: global, tenant, user, model or conversation.
        #[arg(long)]
        kind: Option<String>,
        /// Only this tenant (shorthand for --kind tenant --id T).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this conversation (with its revenue and margin): its scope id
        /// `TENANT:CONVERSATION`, or the conversation id together with --tenant.
        #[arg(long, conflicts_with = "kind")]
        conversation: Option<String>,
        /// Only this window: hour, day or month; `conversation` (with --conversation) for the
        /// conversation's whole life.
        #[arg(long)]
        window: Option<String>,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
        /// Ledger service URL (the gateway port in all-in-one mode without authentication).
        #[arg(long, env = "TRIAGE_LEDGER_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
    },
    /// Policy commands.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validates a config file without starting anything.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Prints the embedded default config.
    Default,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Runs table tests (input -> expected model/rule) against a policy file.
    Test {
        /// Policy file.
        policy: PathBuf,
        /// Cases file.
        cases: PathBuf,
    },
}

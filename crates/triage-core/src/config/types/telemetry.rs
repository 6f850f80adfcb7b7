//! Logs, traces, metrics and the decision log files.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Logs and traces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` or `json` logs on stderr.
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP gRPC endpoint for traces; `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    pub service_name: String,
    /// How long decision records stay in Redis, and how many the live stream keeps.
    pub decision_records: DecisionRecordsConfig,
    /// Decision records also appended to rotating JSONL files (none by default).
    pub decision_log_files: Option<DecisionLogFilesConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            otlp_endpoint: None,
            service_name: "triage".into(),
            decision_records: DecisionRecordsConfig::default(),
            decision_log_files: None,
        }
    }
}

/// Decision records in Redis: one key per request, which Explain and Feedback read, and a
/// capped stream for tools that follow decisions as they happen. Each record is about 1-2 KB
/// (turn and reply are cut at 2,000 bytes each), and it is stored in both, so Redis holds
/// about `record size x (requests per ttl + stream_max_len)` of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionRecordsConfig {
    /// How long a request's record can be explained and given feedback.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entries the stream keeps (about: it is trimmed in whole nodes); 0 writes no stream.
    pub stream_max_len: u64,
}

impl Default for DecisionRecordsConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(7 * 24 * 3600), stream_max_len: 100_000 }
    }
}

/// Decision records as JSONL files: `DIR/decisions.jsonl`, rotated by size to
/// `decisions.1.jsonl` (newest) .. `decisions.N.jsonl`, the oldest deleted past `max_files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogFilesConfig {
    /// Directory of the files (created when missing).
    pub dir: PathBuf,
    /// Size at which the current file is rotated.
    #[serde(default = "default_decision_file_bytes")]
    pub max_file_bytes: u64,
    /// Files kept, the current one included.
    #[serde(default = "default_decision_files")]
    pub max_files: u32,
    /// Records waiting for the writer; past this they are dropped (and counted), never
    /// slowing a request down.
    #[serde(default = "default_decision_queue")]
    pub queue: usize,
}

fn default_decision_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_decision_files() -> u32 {
    10
}

fn default_decision_queue() -> usize {
    4096
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

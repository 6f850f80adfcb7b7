//! Logs and traces: `tracing` everywhere, exported over OTLP when an endpoint is set, with
//! W3C trace context propagated across gRPC hops.

pub mod gen_ai;

use crate::config::{LogFormat, TelemetryConfig};
use crate::error::{Error, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log lines a server queues for its writer thread before it drops (rather than waits).
pub const LOG_QUEUE_LINES: usize = 100_000;

/// Keeps the trace pipeline and the log writer alive; flushes both when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    _log_writer: Option<WorkerGuard>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// A writer that hands lines to a thread of its own, which writes them to `out`. A server's
/// log must never hold a request up: stderr is a pipe to the container runtime, and a write
/// to it blocks while the runtime's reader falls behind, which would stall a tokio worker
/// and every request on it. Past `lines` queued, lines are dropped (counted by the writer's
/// `error_counter`, which a server exports as `triage_log_lines_dropped_total`) instead.
pub fn log_writer<W: std::io::Write + Send + 'static>(out: W, lines: usize) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default().lossy(true).buffered_lines_limit(lines).thread_name("triage-log").finish(out)
}

/// Installs the global subscriber for a server: logs to stderr through [`log_writer`], and
/// OTLP traces when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `telemetry.otlp_endpoint`) is set.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().or_else(|| cfg.otlp_endpoint.clone());
    let (writer, log_guard) = log_writer(std::io::stderr(), LOG_QUEUE_LINES);
    crate::metrics::watch_log_drops(writer.error_counter());
    let provider = match endpoint {
        Some(ep) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(ep)
                .build()
                .map_err(|e| Error::Telemetry(e.to_string()))?;
            Some(tracer_provider(exporter, &cfg.service_name, true))
        }
        None => None,
    };
    install_with_writer(cfg, provider.as_ref(), writer)?;
    Ok(TelemetryGuard { provider, _log_writer: Some(log_guard) })
}

/// A tracer provider over any exporter (tests pass the SDK's in-memory exporter).
pub fn tracer_provider<E: SpanExporter + 'static>(exporter: E, service_name: &str, batch: bool) -> SdkTracerProvider {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_string()).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = if batch { builder.with_batch_exporter(exporter) } else { builder.with_simple_exporter(exporter) };
    builder.build()
}

/// Installs the subscriber with an optional trace provider, and the W3C propagator; logs go
/// straight to stderr (commands and tests; a server uses [`init`]).
pub fn install(cfg: &TelemetryConfig, provider: Option<&SdkTracerProvider>) -> Result<()> {
    install_with_writer(cfg, provider, std::io::stderr)
}

/// [`install`] with logs written by `writer`.
pub fn install_with_writer<W>(cfg: &TelemetryConfig, provider: Option<&SdkTracerProvider>, writer: W) -> Result<()>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log_filter))
        .map_err(|e| Error::Telemetry(format!("log filter `{}`: {e}", cfg.log_filter)))?;
    let fmt = match cfg.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_writer(writer).boxed(),
    };
    let otel = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("triage")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| Error::Telemetry(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::log_writer;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use tracing_subscriber::layer::SubscriberExt;

    /// stderr whose reader has fallen behind: every write takes 10 ms.
    struct SlowPipe(Arc<AtomicUsize>);

    impl Write for SlowPipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(10));
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_log_reader_neither_holds_up_the_logging_thread_nor_loses_lines_silently() {
        let written = Arc::new(AtomicUsize::new(0));
        // A queue the guard can drain within its one-second flush at exit.
        let (writer, guard) = log_writer(SlowPipe(written.clone()), 16);
        let dropped = writer.error_counter();
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_writer(writer));
        let started = Instant::now();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1_000 {
                tracing::info!(i, "routed");
            }
        });
        // Written in place, 1,000 lines would have taken 10 s.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "logging waited for the writer: {took:?}");
        assert!(dropped.dropped_lines() > 0, "a full queue drops, and counts it");
        drop(guard);
        let kept = written.load(Ordering::Relaxed);
        assert_eq!(kept + dropped.dropped_lines(), 1_000, "every line written at exit or counted as dropped");
    }

    #[test]
    fn dropped_log_lines_are_exported() {
        let (mut writer, _guard) = log_writer(SlowPipe(Arc::default()), 2);
        crate::metrics::watch_log_drops(writer.error_counter());
        for _ in 0..50 {
            writer.write_all(b"routed\n").unwrap();
        }
        let dropped = writer.error_counter().dropped_lines();
        assert!(dropped > 0);
        let text = crate::metrics::global().encode();
        // Equal, or more if the writer dropped again between the two reads.
        let exported: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("triage_log_lines_dropped_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        assert!(exported >= dropped as u64 && exported <= 50, "{exported} exported, {dropped} dropped");
    }
}

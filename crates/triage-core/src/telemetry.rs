//! Logs and traces: `tracing` everywhere, exported over OTLP when an endpoint is set, with
//! W3C trace context propagated across gRPC hops.

pub mod gen_ai;

use crate::config::{LogFormat, TelemetryConfig};
use crate::error::{Error, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace pipeline alive; flushes spans when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: logs to stderr, and OTLP traces when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `telemetry.otlp_endpoint`) is set.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().or_else(|| cfg.otlp_endpoint.clone());
    match endpoint {
        Some(ep) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(ep)
                .build()
                .map_err(|e| Error::Telemetry(e.to_string()))?;
            let provider = tracer_provider(exporter, &cfg.service_name, true);
            install(cfg, Some(&provider))?;
            Ok(TelemetryGuard { provider: Some(provider) })
        }
        None => {
            install(cfg, None)?;
            Ok(TelemetryGuard::default())
        }
    }
}

/// A tracer provider over any exporter (tests pass the SDK's in-memory exporter).
pub fn tracer_provider<E: SpanExporter + 'static>(exporter: E, service_name: &str, batch: bool) -> SdkTracerProvider {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_string()).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = if batch { builder.with_batch_exporter(exporter) } else { builder.with_simple_exporter(exporter) };
    builder.build()
}

/// Installs the subscriber with an optional trace provider, and the W3C propagator.
pub fn install(cfg: &TelemetryConfig, provider: Option<&SdkTracerProvider>) -> Result<()> {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log_filter))
        .map_err(|e| Error::Telemetry(format!("log filter `{}`: {e}", cfg.log_filter)))?;
    let fmt = match cfg.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    let otel = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("triage")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| Error::Telemetry(e.to_string()))
}

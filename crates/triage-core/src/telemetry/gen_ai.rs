//! Spans of model calls in the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.*`, `gen_ai.response.*`,
//! `gen_ai.usage.*`), so any GenAI-aware trace backend reads them without configuration.

use opentelemetry::{Array, StringValue, Value};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A client span for one chat call to `request_model` at `provider`; `declared_model` is
/// Triage's name for it (`triage.model`). `max_tokens` 0 (the adapter's default) is left out.
pub fn chat_span(provider: &str, declared_model: &str, request_model: &str, max_tokens: u32) -> tracing::Span {
    let span = tracing::info_span!(
        "gen_ai.chat",
        otel.name = %format!("chat {request_model}"),
        otel.kind = "client",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = provider,
        "gen_ai.system" = provider,
        "gen_ai.request.model" = request_model,
        "gen_ai.request.max_tokens" = Empty,
        "gen_ai.response.model" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "error.type" = Empty,
        "triage.model" = declared_model,
    );
    if max_tokens > 0 {
        span.record("gen_ai.request.max_tokens", i64::from(max_tokens));
    }
    span
}

// Numbers are recorded as i64: tracing-opentelemetry turns a u64 recorded after the span
// started into a string attribute.

/// Records the reply on `span`: the model the provider says answered, usage and the finish
/// reason (Triage's normalised stop reason mapped back to the convention's values).
pub fn record_response(
    span: &tracing::Span,
    response_model: &str,
    input_tokens: u32,
    output_tokens: u32,
    stop_reason: &str,
) {
    span.record("gen_ai.response.model", response_model);
    span.record("gen_ai.usage.input_tokens", i64::from(input_tokens));
    span.record("gen_ai.usage.output_tokens", i64::from(output_tokens));
    if !stop_reason.is_empty() {
        let reason = StringValue::from(finish_reason(stop_reason).to_string());
        span.set_attribute("gen_ai.response.finish_reasons", Value::Array(Array::String(vec![reason])));
    }
}

/// Records a failed call (`error.type`, the attempt's outcome such as `timeout`).
pub fn record_error(span: &tracing::Span, error_type: &str) {
    span.record("error.type", error_type);
    span.set_status(opentelemetry::trace::Status::error(error_type.to_string()));
}

/// The convention's finish reason for a normalised stop reason.
pub fn finish_reason(stop_reason: &str) -> &str {
    match stop_reason {
        "end_turn" | "stop_sequence" | "stop" => "stop",
        "max_tokens" | "length" => "length",
        "tool_use" => "tool_calls",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finish_reasons_follow_the_convention() {
        assert_eq!(super::finish_reason("end_turn"), "stop");
        assert_eq!(super::finish_reason("max_tokens"), "length");
        assert_eq!(super::finish_reason("content_filter"), "content_filter");
    }
}

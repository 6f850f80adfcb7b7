//! Walking a request's chain: the model, then its declared fallbacks in order and nothing
//! else. Each model gets retries (under its budget and breaker) within its deadline; every
//! attempt, skipped or tried, is recorded for the decision.

use crate::breaker::{Outcome as BreakerOutcome, Permit};
use crate::provider::{Provider, ProviderCall, ProviderEvent, ProviderStream};
use crate::retry::backoff;
use crate::service::{Inner, Model, bump, known};
use crate::{ChunkStream, Error, Result};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;
use triage_core::config::Lifecycle;
use triage_core::telemetry::gen_ai;
use triage_proto::pb;

/// What the walk has gathered so far; becomes the response's metadata.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) attempts: Vec<pb::Attempt>,
    pub(crate) warnings: Vec<String>,
    pub(crate) downgraded: bool,
}

/// A checked request.
struct Prepared {
    chain: Vec<String>,
    schema: Option<serde_json::Value>,
    deadline: Instant,
}

fn prepare(inner: &Inner, req: &pb::GenerateRequest) -> Result<Prepared> {
    if req.model.is_empty() {
        return Err(Error::InvalidRequest("model is required".into()));
    }
    known(inner, &req.model)?;
    if req.messages.is_empty() {
        return Err(Error::InvalidRequest("messages must not be empty".into()));
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !matches!(pb::Role::try_from(m.role), Ok(pb::Role::User | pb::Role::Assistant | pb::Role::System)) {
            return Err(Error::InvalidRequest(format!("messages[{i}]: role must be user, assistant or system")));
        }
    }
    if let Some(t) = req.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        return Err(Error::InvalidRequest(format!("temperature {t} is outside 0..2")));
    }
    let schema = match req.json_schema.trim() {
        "" => None,
        s => Some(
            serde_json::from_str(s)
                .map_err(|e| Error::InvalidRequest(format!("json_schema is not valid JSON: {e}")))?,
        ),
    };
    let mut chain = vec![req.model.clone()];
    for f in &req.fallbacks {
        if !chain.contains(f) {
            chain.push(f.clone());
        }
    }
    Ok(Prepared { chain, schema, deadline: Instant::now() + inner.deadline })
}

fn call<'a>(req: &'a pb::GenerateRequest, schema: Option<&'a serde_json::Value>) -> ProviderCall<'a> {
    ProviderCall {
        request_id: &req.request_id,
        system: &req.system,
        messages: &req.messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        json_schema: schema,
    }
}

fn attempt(model: &str, provider: &str, outcome: &str, error: String, started: Instant, retries: u32) -> pb::Attempt {
    pb::Attempt {
        model: model.to_string(),
        provider: provider.to_string(),
        outcome: outcome.to_string(),
        error,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        retries,
    }
}

/// The model to try for `name`, or `None` (with the skip recorded): follows a retirement
/// to the declared replacement, warns about deprecation, skips unavailable models and
/// models already tried in this walk.
fn resolve(inner: &Inner, name: &str, tried: &mut Vec<String>, out: &mut Outcome) -> Option<Arc<Model>> {
    let now = Instant::now();
    let Some(mut m) = inner.models.get(name).cloned() else {
        out.attempts.push(attempt(name, "", "unknown_model", "not a declared model".into(), now, 0));
        return None;
    };
    if m.spec.is_retired() {
        match inner.catalog.resolve_retired(name).and_then(|s| inner.models.get(&s.name)) {
            Some(r) => {
                out.warnings.push(format!(
                    "model `{name}` is retired; its declared replacement `{}` answers instead",
                    r.spec.name
                ));
                m = r.clone();
            }
            None => {
                let error = "retired without a usable replacement".to_string();
                out.attempts.push(attempt(name, m.spec.provider, "unavailable", error, now, 0));
                return None;
            }
        }
    }
    if tried.contains(&m.spec.name) {
        return None;
    }
    tried.push(m.spec.name.clone());
    if let Lifecycle::Deprecated { replacement, sunset } = &m.spec.lifecycle {
        bump(&m.counters.deprecated_calls);
        triage_core::metrics::global()
            .deprecated_calls
            .get_or_create(&triage_core::metrics::ModelLabel { model: m.spec.name.clone() })
            .inc();
        let sunset = sunset.as_deref().map(|s| format!(" (sunset {s})")).unwrap_or_default();
        out.warnings.push(format!(
            "model `{}` is deprecated{sunset}; its declared replacement is `{replacement}`",
            m.spec.name
        ));
    }
    if m.provider.is_none() {
        let reason = m.unavailable.clone().unwrap_or_default();
        out.attempts.push(attempt(&m.spec.name, m.spec.provider, "unavailable", reason, now, 0));
        return None;
    }
    Some(m)
}

/// The live version of the requested model: the previous version while a rolling swap drains
/// it and the request is pinned to it (a running conversation finishes where it started),
/// else the current one, with a warning when the pin named a version no longer served.
///
/// The previous version stays callable for one generate deadline past the drain deadline:
/// after the deadline the policy moves every pin (with a handoff), so only a turn decided
/// just before it still names the previous version, and that turn is answered by the version
/// it was decided (and its prompt built) for, not switched under it without a handoff.
fn pick_version(inner: &Inner, m: Arc<Model>, version: &str, out: &mut Outcome) -> Arc<Model> {
    if version.is_empty() || version == m.spec.version {
        return m;
    }
    if let Some(d) = inner.previous.get(&m.spec.name)
        && d.model.spec.version == version
        && SystemTime::now() < d.until + inner.deadline
        && d.model.provider.is_some()
    {
        return d.model.clone();
    }
    out.warnings.push(format!(
        "version `{version}` of `{}` is not served any more; its current version `{}` answers",
        m.spec.name, m.spec.version
    ));
    m
}

/// Calls `once` until it succeeds, the error is not retryable, `max_retries` is reached,
/// the retry budget is spent, the breaker refuses, or the next wait would pass the
/// deadline. `once` gets the time it may take.
async fn with_retries<T, F, Fut>(inner: &Inner, m: &Model, deadline: Instant, mut once: F) -> (Result<(T, Permit)>, u32)
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retries = 0u32;
    let mut last: Option<Error> = None;
    m.budget.on_request(Instant::now());
    loop {
        let Some(permit) = Permit::acquire(&m.breaker) else {
            // On a retry the breaker may have opened meanwhile (other calls failing too):
            // report the failure that was seen, not the refusal of the retry.
            return (Err(last.unwrap_or_else(|| Error::BreakerOpen(m.spec.name.clone()))), retries);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let e = Error::Timeout { model: m.spec.name.clone(), what: "generate", after: inner.deadline };
            return (Err(last.unwrap_or(e)), retries);
        }
        if last.is_some() {
            retries += 1;
            bump(&m.counters.retries);
        }
        bump(&m.counters.calls);
        let e = match once(m.timeout.min(left)).await {
            Ok(v) => return (Ok((v, permit)), retries),
            Err(e) => e,
        };
        permit.finish(if e.counts_for_breaker() { BreakerOutcome::Failure } else { BreakerOutcome::Neutral });
        if !e.is_retryable() || retries >= inner.retry.max_retries {
            return (Err(e), retries);
        }
        let retry_after = match &e {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        let wait = backoff(&inner.retry, retries, retry_after, &mut rand::rng());
        if Instant::now() + wait >= deadline {
            return (Err(e), retries);
        }
        if !m.budget.try_withdraw(Instant::now()) {
            bump(&m.counters.retries_denied);
            tracing::debug!(model = %m.spec.name, "retry budget spent; failing over instead");
            return (Err(e), retries);
        }
        tracing::debug!(model = %m.spec.name, error = %e, ?wait, "retrying");
        tokio::time::sleep(wait).await;
        last = Some(e);
    }
}

fn failed(m: &Model, e: &Error, started: Instant, retries: u32, out: &mut Outcome) {
    if matches!(e, Error::BreakerOpen(_)) {
        bump(&m.counters.breaker_rejections);
    } else {
        bump(&m.counters.failures);
        tracing::warn!(model = %m.spec.name, outcome = e.outcome(), retries, error = %e, "model attempt failed");
    }
    out.attempts.push(attempt(&m.spec.name, m.spec.provider, e.outcome(), e.to_string(), started, retries));
}

fn exhausted(out: Outcome) -> Error {
    let summary = out
        .attempts
        .iter()
        .map(|a| {
            if a.error.is_empty() {
                format!("{}: {}", a.model, a.outcome)
            } else {
                format!("{}: {} ({})", a.model, a.outcome, a.error)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Error::Exhausted { summary, attempts: out.attempts }
}

/// The GenAI span of the calls to `m` (retries included) for `req`.
fn chat_span(m: &Model, req: &pb::GenerateRequest) -> tracing::Span {
    let id = if m.spec.provider_model_id.is_empty() { &m.spec.version } else { &m.spec.provider_model_id };
    gen_ai::chat_span(m.spec.provider, &m.spec.name, id, req.max_tokens)
}

fn provider_of(m: &Model) -> Result<Arc<dyn Provider>> {
    m.provider.clone().ok_or_else(|| Error::Unavailable {
        model: m.spec.name.clone(),
        reason: m.unavailable.clone().unwrap_or_default(),
    })
}

/// Unary generation along the chain.
pub(crate) async fn generate(inner: &Inner, req: &pb::GenerateRequest) -> Result<pb::GenerateResponse> {
    let p = prepare(inner, req)?;
    let call = call(req, p.schema.as_ref());
    let mut out = Outcome::default();
    let mut tried = Vec::new();
    for (i, name) in p.chain.iter().enumerate() {
        let Some(m) = resolve(inner, name, &mut tried, &mut out) else {
            continue;
        };
        let m =
            if i == 0 && m.spec.name == req.model { pick_version(inner, m, &req.model_version, &mut out) } else { m };
        let provider = provider_of(&m)?;
        let started = Instant::now();
        let model_name = &m.spec.name;
        let span = chat_span(&m, req);
        let (res, retries) = with_retries(inner, &m, p.deadline, |limit| {
            let (provider, call) = (&provider, &call);
            async move {
                match tokio::time::timeout(limit, provider.generate(call)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout { model: model_name.clone(), what: "request", after: limit }),
                }
            }
        })
        .instrument(span.clone())
        .await;
        match res {
            Ok((reply, permit)) => {
                permit.finish(BreakerOutcome::Success);
                out.attempts.push(attempt(model_name, m.spec.provider, "ok", String::new(), started, retries));
                out.downgraded = i > 0;
                let _entered = span.enter();
                return Ok(m.response(reply.text, reply.finish, out));
            }
            Err(e) => {
                gen_ai::record_error(&span, e.outcome());
                failed(&m, &e, started, retries, &mut out)
            }
        }
    }
    Err(exhausted(out))
}

/// Opens a stream and waits for its first event: until then nothing reached the caller
/// and the call may still be retried or failed over.
async fn open_first(
    provider: &Arc<dyn Provider>,
    call: &ProviderCall<'_>,
    model: &str,
) -> Result<(ProviderStream, ProviderEvent)> {
    let mut s = provider.stream(call).await?;
    match s.next().await {
        Some(Ok(ev)) => Ok((s, ev)),
        Some(Err(e)) => Err(e),
        None => {
            Err(Error::StreamCut { model: model.to_string(), message: "stream ended before the first token".into() })
        }
    }
}

/// Streaming generation: failover and retries happen only before the first token; this
/// returns once a model has produced it, or fails with every attempt recorded.
pub(crate) async fn generate_stream(inner: &Inner, req: &pb::GenerateRequest) -> Result<ChunkStream> {
    let p = prepare(inner, req)?;
    let call = call(req, p.schema.as_ref());
    let mut out = Outcome::default();
    let mut tried = Vec::new();
    for (i, name) in p.chain.iter().enumerate() {
        let Some(m) = resolve(inner, name, &mut tried, &mut out) else {
            continue;
        };
        let m =
            if i == 0 && m.spec.name == req.model { pick_version(inner, m, &req.model_version, &mut out) } else { m };
        let provider = provider_of(&m)?;
        let started = Instant::now();
        let model_name = &m.spec.name;
        let ttft = m.ttft_timeout;
        let span = chat_span(&m, req);
        let (res, retries) = with_retries(inner, &m, p.deadline, |limit| {
            let (provider, call) = (&provider, &call);
            let limit = ttft.min(limit);
            async move {
                match tokio::time::timeout(limit, open_first(provider, call, model_name)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::Timeout { model: model_name.clone(), what: "first token", after: limit }),
                }
            }
        })
        .instrument(span.clone())
        .await;
        match res {
            Ok(((stream, first), permit)) => {
                // Latency of a streamed attempt is its time to first token.
                out.attempts.push(attempt(model_name, m.spec.provider, "ok", String::new(), started, retries));
                out.downgraded = i > 0;
                let deadline = (Instant::now() + m.timeout).min(p.deadline);
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                // The span ends with the stream, where the usage is known.
                let forward = crate::stream::forward(m.clone(), stream, first, permit, out, deadline, tx);
                tokio::spawn(forward.instrument(span));
                return Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed());
            }
            Err(e) => {
                gen_ai::record_error(&span, e.outcome());
                failed(&m, &e, started, retries, &mut out)
            }
        }
    }
    Err(exhausted(out))
}

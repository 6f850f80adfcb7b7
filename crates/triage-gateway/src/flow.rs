//! The Route flow. Each step has a deadline and a declared failure mode, and everything it
//! sees and decides goes into the decision record.

use crate::idempotency::{Entry, Idempotency};
use crate::{Error, Gateway, Result, validate};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use triage_core::{Micros, Tier, now_unix_ms};
use triage_proto::pb;

mod steps;

/// Bytes of turn and reply kept in decision records.
const RECORD_TEXT_LIMIT: usize = 2_000;

/// A timed step for the decision record.
pub(crate) struct Steps(Vec<pb::StepTiming>);

impl Steps {
    pub(crate) async fn run<T, E>(
        &mut self,
        step: &'static str,
        deadline: Duration,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<std::result::Result<T, E>, ()> {
        let start = Instant::now();
        let res = tokio::time::timeout(deadline, fut).await;
        let outcome = match &res {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        };
        self.0.push(pb::StepTiming {
            step: step.into(),
            duration_us: start.elapsed().as_micros() as u64,
            outcome: outcome.into(),
        });
        res.map_err(|_| ())
    }

    pub(crate) fn set_outcome(&mut self, outcome: &str) {
        if let Some(last) = self.0.last_mut() {
            last.outcome = outcome.into();
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Whether the caller still waits for the answer. A Route runs in a task of its own, so a
/// caller that goes away cannot cut it short once its model is called: the provider bills
/// that call, so it runs to the end, is charged, and its answer is stored under the request id
/// (a retry with the same id replays it instead of paying again). Before the model is called
/// a caller that left stops the Route: nothing generated, the reservation released.
pub(crate) enum Caller {
    /// A unary call: cancelled when the caller's future was dropped before the answer.
    Unary(CancellationToken),
    /// A stream: the caller is gone when its end of the stream is.
    Stream(mpsc::Sender<Result<pb::RouteChunk>>),
}

impl Caller {
    pub(crate) fn gone(&self) -> bool {
        match self {
            Caller::Unary(left) => left.is_cancelled(),
            Caller::Stream(tx) => tx.is_closed(),
        }
    }
}

/// Runs in the Route's own task once the Route has ended, whether or not its caller still
/// waits: what a front end holds for the call (the HTTP endpoint's token-rate estimate) is
/// settled there, since a caller gone early never sees the end.
pub(crate) type OnEnd = Box<dyn FnOnce(&Result<pb::RouteResponse>) + Send>;

impl Gateway {
    /// Answers one turn.
    pub async fn route(self: &Arc<Self>, tenant: &str, req: pb::RouteRequest) -> Result<pb::RouteResponse> {
        self.route_in(tenant, req, false, None).await
    }

    /// [`Gateway::route`]; `named_here`: the caller (the HTTP endpoint) made the conversation
    /// id up for this turn, so no history exists and classification need not wait for it.
    pub(crate) async fn route_in(
        self: &Arc<Self>,
        tenant: &str,
        req: pb::RouteRequest,
        named_here: bool,
        on_end: Option<OnEnd>,
    ) -> Result<pb::RouteResponse> {
        // Dropped with this future (a cancelled gRPC call, a closed HTTP connection).
        let left = CancellationToken::new();
        let _leaving = left.clone().drop_guard();
        let (gw, tenant) = (self.clone(), tenant.to_string());
        let flow = tokio::spawn(
            async move {
                let res = gw.execute(&tenant, req, named_here, None, Caller::Unary(left)).await;
                if let Some(end) = on_end {
                    end(&res);
                }
                res
            }
            .in_current_span(),
        );
        flow.await.unwrap_or_else(|e| Err(Error::Store(format!("route task: {e}"))))
    }

    /// Answers one turn as a stream: deltas, then one `done` chunk with the metadata. Once
    /// its model is called the flow runs to completion (and is accounted for) even if the
    /// caller goes away.
    pub fn route_stream(
        self: &Arc<Self>,
        tenant: String,
        req: pb::RouteRequest,
    ) -> mpsc::Receiver<Result<pb::RouteChunk>> {
        self.route_stream_in(tenant, req, false, None)
    }

    /// [`Gateway::route_stream`]; `named_here` and `on_end` as for [`Gateway::route_in`].
    pub(crate) fn route_stream_in(
        self: &Arc<Self>,
        tenant: String,
        req: pb::RouteRequest,
        named_here: bool,
        on_end: Option<OnEnd>,
    ) -> mpsc::Receiver<Result<pb::RouteChunk>> {
        let (tx, rx) = mpsc::channel(64);
        let gw = self.clone();
        tokio::spawn(
            async move {
                let (delta_tx, mut delta_rx) = mpsc::channel::<String>(64);
                let fwd_tx = tx.clone();
                let forward = tokio::spawn(async move {
                    while let Some(d) = delta_rx.recv().await {
                        let chunk = pb::RouteChunk { chunk: Some(pb::route_chunk::Chunk::Delta(d)) };
                        if fwd_tx.send(Ok(chunk)).await.is_err() {
                            // Caller gone: keep draining so generation is not blocked.
                            continue;
                        }
                    }
                });
                let caller = Caller::Stream(tx.clone());
                let res = gw.execute(&tenant, req, named_here, Some(delta_tx), caller).await;
                if let Some(end) = on_end {
                    end(&res);
                }
                let _ = forward.await;
                let last = res.map(|resp| pb::RouteChunk { chunk: Some(pb::route_chunk::Chunk::Done(resp)) });
                let _ = tx.send(last).await;
            }
            .in_current_span(),
        );
        rx
    }

    /// `named_here`: the caller made the conversation id up for this turn (a new conversation).
    async fn execute(
        &self,
        tenant: &str,
        mut req: pb::RouteRequest,
        named_here: bool,
        sink: Option<mpsc::Sender<String>>,
        caller: Caller,
    ) -> Result<pb::RouteResponse> {
        let started = Instant::now();
        validate::route_request(&req, &self.config.server)?;
        let id_minted = req.request_id.is_empty();
        if id_minted {
            req.request_id = uuid::Uuid::now_v7().to_string();
        }
        let fresh = named_here || req.conversation_id.is_empty();
        // Ids made up for this call are unknown to everyone else until the answer carries
        // them: nobody can repeat the request or send the conversation's next turn before
        // then, so there is nothing to claim or lock (two round trips saved).
        let private = id_minted && fresh;
        if req.conversation_id.is_empty() {
            req.conversation_id = uuid::Uuid::new_v4().to_string();
            req.create_if_missing = true;
        }
        let span = tracing::info_span!(
            "route",
            request_id = %req.request_id,
            conversation_id = %req.conversation_id,
            tenant,
            "triage.request_id" = %req.request_id,
            "triage.model" = tracing::field::Empty,
            "triage.tier" = tracing::field::Empty,
            "triage.rule" = tracing::field::Empty,
            "triage.cost_micros" = tracing::field::Empty,
        );
        async move {
            let _in_flight = self.load.enter();
            let _in_flight_gauge = crate::metrics::InFlightGauge::enter();
            let deadlines = &self.config.server.deadlines;
            let lease = deadlines.generate + deadlines.context * 4 + Duration::from_secs(30);
            let idem = Idempotency::new(self.redis.clone(), &self.config.redis.key_prefix);
            let lock = match private {
                true => None,
                false => {
                    let lock_key = format!("{}:lock:{tenant}:{}", self.config.redis.key_prefix, req.conversation_id);
                    match idem.enter(tenant, &req.request_id, lock_key, lease).await? {
                        Entry::Replay(resp) => {
                            if let Some(sink) = &sink {
                                let _ = sink.send(resp.reply.clone()).await;
                            }
                            return Ok(*resp);
                        }
                        // The flow runs in its own task, so it is dropped before an answer or
                        // an error only when that task dies (a panic, a runtime stopped past
                        // the grace period): the request id is freed with the lock, so a retry
                        // need not wait out the lease; the reservation is reaped as usual.
                        Entry::Owned(lock) => Some(lock.on_drop(idem.abandon_cmd(tenant, &req.request_id))),
                    }
                }
            };
            let mut rec = pb::DecisionRecord {
                reservation_id: reservation_id(&req.request_id, id_minted),
                request_id: req.request_id.clone(),
                conversation_id: req.conversation_id.clone(),
                tenant: tenant.to_string(),
                received_at_unix_ms: now_unix_ms(),
                turn: truncate(&req.turn, RECORD_TEXT_LIMIT),
                user: req.user.clone(),
                ..Default::default()
            };
            let mut steps = Steps(Vec::new());
            let res = self.run(tenant, &req, fresh, sink, &caller, &mut rec, &mut steps).await;
            rec.steps = steps.0;
            rec.latency_us = started.elapsed().as_micros() as u64;
            match res {
                Ok(mut resp) => {
                    resp.latency_us = rec.latency_us;
                    rec.status = "ok".into();
                    // The answer is stored before the next turn of the conversation can start.
                    if let Some(lock) = lock {
                        lock.release_with(Some(idem.complete_cmd(tenant, &req.request_id, &resp))).await;
                    }
                    crate::metrics::route(&rec, rec.conversation_turns == 0);
                    record_route_span(&rec);
                    tracing::info!(
                        model = %resp.model, version = %resp.model_version, rule = %resp.rule_id,
                        cost_micros = resp.cost_micros, latency_us = resp.latency_us, "routed"
                    );
                    self.log.write(rec).await;
                    Ok(resp)
                }
                Err(e) => {
                    rec.status = format!("{:?}", e.code());
                    rec.warnings.push(e.to_string());
                    if let Some(lock) = lock {
                        lock.release_with(Some(idem.abandon_cmd(tenant, &req.request_id))).await;
                    }
                    self.log.write(rec).await;
                    crate::metrics::route_error(e.code());
                    tracing::warn!(error = %e, "route failed");
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// `fresh`: the conversation id was chosen by this gateway for this turn.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        fresh: bool,
        sink: Option<mpsc::Sender<String>>,
        caller: &Caller,
        rec: &mut pb::DecisionRecord,
        steps: &mut Steps,
    ) -> Result<pb::RouteResponse> {
        // A conversation this gateway just named has no history: its turn is classified
        // alongside the conversation read instead of after it.
        let mut early_steps = Steps(Vec::new());
        let early = async {
            match fresh {
                true => Some(self.classify_with(req, Vec::new(), &mut early_steps).await),
                false => None,
            }
        };
        // Nothing to read for a conversation named here: the append after the answer creates it.
        let conv = async {
            match fresh {
                true => Ok(new_conversation(tenant, req)),
                false => self.load_conversation(tenant, req, steps).await,
            }
        };
        let (conv, (budget, budget_warning), early) = tokio::join!(conv, self.budget_signals(tenant, req), early);
        steps.0.append(&mut early_steps.0);
        let conv = conv?;
        rec.warnings.extend(budget_warning);
        rec.conversation_turns = conv.turn_count;
        rec.conversation_tier = conv.tier;

        let classified = match early {
            Some(c) => c,
            None => self.classify(req, &conv, steps).await,
        };
        let classification = classified.record(rec);
        let mut decide = self.decide_request(tenant, req, &conv, classification.clone(), budget, rec).await;
        let mut decision = self.decide(decide.clone(), steps).await?;

        let mut prompt = self.prepare_prompt(tenant, req, &conv, &decision, rec, steps).await?;
        let max_tokens = if req.max_tokens == 0 { self.config.server.default_max_tokens } else { req.max_tokens };

        // Reserve the worst case; past a hard limit, ask the policy again with no budget left
        // so it picks a free model, and fail only if none can answer.
        let mut reservation = self.reserve(tenant, req, &decision, prompt.tokens, max_tokens, rec, steps).await?;
        if let Some(refusal) = reservation.refusal.take() {
            for v in decide.system.get_or_insert_with(Default::default).budget_remaining.values_mut() {
                *v = 0.0;
            }
            decide.system.get_or_insert_with(Default::default).budget_remaining.insert("refused".into(), 0.0);
            decision = self.decide(decide, steps).await?;
            let free = self.catalog().get(&decision.model).is_some_and(|m| m.price.is_free());
            if !free {
                return Err(Error::BudgetExhausted(refusal));
            }
            decision.warnings.push(format!("hard spend limit reached ({refusal}); answered by a free model"));
            decision.budget_downgrade = true;
            // The prompt was built for the refused model: the free one has its own window and
            // share of history (and a handoff summary when the conversation changes model).
            prompt = self.prepare_prompt(tenant, req, &conv, &decision, rec, steps).await?;
            reservation = self.reserve(tenant, req, &decision, prompt.tokens, max_tokens, rec, steps).await?;
            if let Some(refusal) = reservation.refusal {
                return Err(Error::BudgetExhausted(refusal));
            }
        }
        self.record_decision(rec, &decision);
        // The last moment a Route can stop for free: past it the provider bills the call.
        if caller.gone() {
            self.release(&rec.reservation_id, steps).await;
            return Err(Error::CallerGone);
        }

        let generated = self.generate(req, &decision, prompt, max_tokens, sink, rec, steps).await;
        let generated = match generated {
            Ok(g) => g,
            Err(e) => {
                self.release(&rec.reservation_id, steps).await;
                return Err(e);
            }
        };
        let usage = generated.usage.unwrap_or_default();
        let cost = self
            .catalog()
            .get(&generated.model)
            .map(|m| m.price.cost(u64::from(usage.input_tokens), u64::from(usage.output_tokens)))
            .unwrap_or(Micros::ZERO);
        let tier = Tier::from_pb(generated.tier).or_else(|| self.catalog().get(&generated.model).map(|m| m.tier));
        let escalated = decision.escalation;
        // The reply is turn `turn_count + 2` (after the user's): commitments carry that number.
        let commitments = triage_context::extract_commitments(
            &generated.text,
            &generated.model,
            &generated.model_version,
            conv.turn_count + 2,
        );
        rec.commitments = commitments.clone();
        // Settling the money and storing the turn do not depend on each other: one wait, not
        // two, after the answer (the conversation lock is still held for the append).
        let (mut commit_steps, mut append_steps) = (Steps(Vec::new()), Steps(Vec::new()));
        let mut commit_warnings = Vec::new();
        let commit = self.commit(
            req,
            &rec.reservation_id,
            &generated.model,
            cost,
            reservation.unaccounted,
            &mut commit_warnings,
            &mut commit_steps,
        );
        let append = self.append(tenant, req, &conv, &decision, &generated, escalated, commitments, &mut append_steps);
        // Append first: its command goes into the Redis connection's queue during this poll,
        // and the commit's task, spawned after it, runs before the connection's writer does
        // (tokio runs the task spawned last first), so both leave in one write (measured:
        // 4 -> 3 Redis writes per Route).
        let (appended, ()) = tokio::join!(append, commit);
        steps.0.extend(commit_steps.0.into_iter().chain(append_steps.0));
        rec.warnings.extend(commit_warnings);
        appended?;

        let mut warnings = decision.warnings.clone();
        warnings.extend(generated.warnings.iter().cloned());
        rec.attempts = generated.attempts.clone();
        rec.model = generated.model.clone();
        rec.model_version = generated.model_version.clone();
        rec.tier = tier.map(|t| t.to_pb() as i32).unwrap_or_default();
        rec.downgraded = generated.downgraded;
        rec.escalated = escalated;
        rec.cost_micros = cost.0;
        rec.usage = Some(usage);
        rec.reply = truncate(&generated.text, RECORD_TEXT_LIMIT);
        rec.warnings.extend(warnings.iter().cloned());

        Ok(pb::RouteResponse {
            request_id: req.request_id.clone(),
            conversation_id: req.conversation_id.clone(),
            reply: generated.text,
            model: generated.model,
            model_version: generated.model_version,
            tier: rec.tier,
            rule_id: decision.rule_id,
            reason: decision.reason,
            usage: Some(usage),
            cost_micros: cost.0,
            classification,
            escalated,
            downgraded: generated.downgraded,
            warnings,
            latency_us: 0,
            replayed: false,
        })
    }
}

/// The ledger's id for this attempt's reservation. The ledger's ids are global and final (a
/// released reservation is not granted again), while a caller's request id is per tenant and
/// may be retried after a failure: such ids get a suffix unique to the attempt. An id made up
/// here is already unique.
fn reservation_id(request_id: &str, minted: bool) -> String {
    match minted {
        true => request_id.to_string(),
        false => format!("{request_id}/{}", uuid::Uuid::now_v7().simple()),
    }
}

/// A conversation named for this turn, as the context store would return it once created.
fn new_conversation(tenant: &str, req: &pb::RouteRequest) -> pb::Conversation {
    pb::Conversation {
        tenant: tenant.to_string(),
        id: req.conversation_id.clone(),
        created_at_unix_ms: now_unix_ms(),
        ..Default::default()
    }
}

/// The decision's `triage.*` attributes on the current (route) span.
fn record_route_span(rec: &pb::DecisionRecord) {
    let span = tracing::Span::current();
    span.record("triage.model", rec.model.as_str());
    span.record("triage.tier", Tier::from_pb(rec.tier).map_or("unknown", |t| t.as_str()));
    span.record("triage.rule", rec.rule_id.as_str());
    span.record("triage.cost_micros", rec.cost_micros);
}

/// Remaining-budget fractions keyed `kind[:id]/window`, from the ledger's limits.
pub(crate) fn budget_map(limits: &pb::LimitsResponse) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for l in &limits.limits {
        let scope = l.scope.clone().unwrap_or_default();
        let key = if scope.id.is_empty() {
            format!("{}/{}", scope.kind, l.window)
        } else {
            format!("{}:{}/{}", scope.kind, scope.id, l.window)
        };
        out.insert(key, l.remaining_fraction);
    }
    out
}

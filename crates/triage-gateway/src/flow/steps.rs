//! The steps of the Route flow, one method each, with their deadlines and failure modes.

use super::{Steps, budget_map};
use crate::{Error, Gateway, Result};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;
use triage_core::{Micros, now_unix_ms};
use triage_proto::pb;

/// The messages sent to the model, and their estimated size.
pub(crate) struct Prompt {
    pub(crate) system: String,
    pub(crate) messages: Vec<pb::Message>,
    pub(crate) tokens: u64,
}

/// What the classifier said, and how it went (`ok`, `cache_hit`, `classifier_unavailable`,
/// `classifier_timeout`).
pub(crate) struct Classified {
    pub(crate) classification: Option<pb::Classification>,
    pub(crate) outcome: &'static str,
}

impl Classified {
    /// Into the decision record; the labels for the policy.
    pub(crate) fn record(self, rec: &mut pb::DecisionRecord) -> Option<pb::Classification> {
        rec.classifier_outcome = self.outcome.into();
        rec.classification = self.classification.clone();
        self.classification
    }
}

/// What the ledger said to a reservation.
pub(crate) struct Reservation {
    pub(crate) refusal: Option<String>,
    pub(crate) unaccounted: bool,
}

/// Providers' tokenizers differ and remote ones are not at hand; ~3 bytes a token
/// over-estimates every BPE tokenizer we route to, so reservations stay worst-case.
pub(crate) fn estimate_tokens(text: &str) -> u32 {
    (text.len() as u32).div_ceil(3) + 4
}

impl Gateway {
    pub(super) async fn load_conversation(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        steps: &mut Steps,
    ) -> Result<pb::Conversation> {
        let turns = self.config.context.prompt_turns.max(self.config.classifier.history_turns);
        let get = pb::GetConversationRequest {
            tenant: tenant.to_string(),
            conversation_id: req.conversation_id.clone(),
            create_if_missing: req.create_if_missing,
            last_turns: turns,
        };
        match steps.run("context_get", self.config.server.deadlines.context, self.services.context.get(get)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                if matches!(e, triage_context::Error::NotFound(_)) {
                    return Err(Error::NotFound(format!(
                        "conversation `{}` not found; send an empty conversation_id to start one, or set create_if_missing",
                        req.conversation_id
                    )));
                }
                Err(Error::dependency("context", e.into()))
            }
            Err(()) => Err(Error::Deadline("context.Get")),
        }
    }

    /// Labels the turn with the conversation's recent turns; on timeout or failure the policy
    /// gets no labels and its classifier-fallback rule decides.
    pub(super) async fn classify(
        &self,
        req: &pb::RouteRequest,
        conv: &pb::Conversation,
        steps: &mut Steps,
    ) -> Classified {
        let n = self.config.classifier.history_turns as usize;
        self.classify_with(req, conv.turns[conv.turns.len().saturating_sub(n)..].to_vec(), steps).await
    }

    /// [`Gateway::classify`] with the history given.
    pub(super) async fn classify_with(
        &self,
        req: &pb::RouteRequest,
        history: Vec<pb::Message>,
        steps: &mut Steps,
    ) -> Classified {
        let creq = pb::ClassifyRequest { query: req.turn.clone(), history };
        let (classification, outcome) = match steps
            .run("classify", self.config.server.deadlines.classify, self.services.classifier.classify(creq))
            .await
        {
            Ok(Ok(r)) => (r.classification, if r.cache_hit { "cache_hit" } else { "ok" }),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "classifier unavailable; policy default applies");
                (None, "classifier_unavailable")
            }
            Err(()) => {
                tracing::warn!("classifier timed out; policy default applies");
                (None, "classifier_timeout")
            }
        };
        steps.set_outcome(outcome);
        Classified { classification, outcome }
    }

    /// Remaining budget of every limit the request's scopes touch, for the policy; a
    /// failure leaves the policy without budget signals and says why. Depends on nothing
    /// else the flow reads, so it runs alongside the conversation read.
    pub(super) async fn budget_signals(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
    ) -> (std::collections::HashMap<String, f64>, Option<String>) {
        let scopes = self.scopes(tenant, req, "");
        match tokio::time::timeout(
            self.config.server.deadlines.ledger,
            self.services.ledger.limits(pb::LimitsRequest { scopes }),
        )
        .await
        {
            Ok(Ok(l)) => (budget_map(&l), None),
            Ok(Err(e)) => (Default::default(), Some(format!("budget signal unavailable: {e}"))),
            Err(_) => (Default::default(), Some("budget signal timed out".into())),
        }
    }

    pub(super) async fn decide_request(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        conv: &pb::Conversation,
        classification: Option<pb::Classification>,
        budget: std::collections::HashMap<String, f64>,
        rec: &mut pb::DecisionRecord,
    ) -> pb::DecideRequest {
        let models = self.signals.get().await;
        crate::metrics::signals(&models, &budget);
        let load = self.load.load();
        rec.system_load = load;
        rec.budget_remaining = budget.clone();
        rec.breakers = models.breakers.clone();
        pb::DecideRequest {
            classifier_failure: if classification.is_none() { rec.classifier_outcome.clone() } else { String::new() },
            classification,
            conversation: Some(pb::ConversationState {
                turns: conv.turn_count,
                tier: conv.tier,
                model: conv.pinned_model.clone(),
                model_version: conv.pinned_version.clone(),
                tokens: conv.token_count,
                conversation_id: req.conversation_id.clone(),
            }),
            user: req.user.clone(),
            tenant: tenant.to_string(),
            system: Some(pb::SystemSignals {
                load,
                budget_remaining: budget,
                breakers: models.breakers.clone(),
                unavailable: models.unavailable.clone(),
            }),
            requested_model: req.model.clone(),
        }
    }

    pub(super) async fn decide(&self, req: pb::DecideRequest, steps: &mut Steps) -> Result<pb::DecideResponse> {
        match steps.run("policy", self.config.server.deadlines.policy, self.services.policy.decide(req)).await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(Error::dependency("policy", e.into())),
            Err(()) => Err(Error::Deadline("policy.Decide")),
        }
    }

    pub(super) fn record_decision(&self, rec: &mut pb::DecisionRecord, d: &pb::DecideResponse) {
        rec.rule_id = d.rule_id.clone();
        rec.reason = d.reason.clone();
        rec.policy_version = d.policy_version.clone();
        rec.chosen_model = d.model.clone();
        rec.fallbacks = d.fallbacks.clone();
    }

    /// The spend scopes a request touches; `model` empty leaves the model scope out.
    pub(super) fn scopes(&self, tenant: &str, req: &pb::RouteRequest, model: &str) -> Vec<pb::Scope> {
        let scope = |kind: &str, id: String| pb::Scope { kind: kind.into(), id };
        let mut s = vec![scope("global", String::new()), scope("tenant", tenant.to_string())];
        if let Some(u) = req.user.as_ref().filter(|u| !u.user_id.is_empty()) {
            s.push(scope("user", format!("{tenant}:{}", u.user_id)));
        }
        if !model.is_empty() {
            s.push(scope("model", model.to_string()));
        }
        s.push(scope("conversation", format!("{tenant}:{}", req.conversation_id)));
        s
    }

    /// Handoff summary first when the conversation changes model, then the prompt: system
    /// prompt, summary and the most recent turns that fit the model's window.
    pub(super) async fn prepare_prompt(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        conv: &pb::Conversation,
        decision: &pb::DecideResponse,
        rec: &mut pb::DecisionRecord,
        steps: &mut Steps,
    ) -> Result<Prompt> {
        // Only a handoff changes the conversation the prompt is built from (its summary): the
        // history is copied then, not on every turn.
        let mut conv = std::borrow::Cow::Borrowed(conv);
        // A version move at a rolling swap's drain deadline is a change of model too: the new
        // version gets the same handoff summary as an escalation.
        let version_moves = conv.pinned_model == decision.model
            && !conv.pinned_version.is_empty()
            && conv.pinned_version != decision.model_version;
        let model_changes = !conv.pinned_model.is_empty() && (conv.pinned_model != decision.model || version_moves);
        if model_changes && conv.turn_count > 0 {
            let hreq = pb::HandoffRequest {
                tenant: tenant.to_string(),
                conversation_id: req.conversation_id.clone(),
                from_model: conv.pinned_model.clone(),
                to_model: decision.model.clone(),
                summarizer_model: self.config.context.summarizer_model.clone().unwrap_or_default(),
            };
            let deadline = self.config.server.deadlines.generate.min(Duration::from_secs(15));
            match steps.run("handoff", deadline, self.services.context.handoff(hreq)).await {
                Ok(Ok(summary)) => {
                    rec.handoff_summary_json = serde_json::to_string(&summary).unwrap_or_default();
                    conv.to_mut().summary = Some(summary);
                }
                Ok(Err(e)) => rec.warnings.push(format!("handoff summary failed: {e}; continuing with history only")),
                Err(()) => rec.warnings.push("handoff summary timed out; continuing with history only".into()),
            }
        }
        let catalog = self.catalog();
        let model = catalog.get(&decision.model);
        let window = model.map(|m| m.context_window).unwrap_or(4096);
        let turns = model.and_then(|m| m.prompt_turns).unwrap_or(self.config.context.prompt_turns);
        let max_tokens = if req.max_tokens == 0 { self.config.server.default_max_tokens } else { req.max_tokens };
        let (system, messages) = triage_context::build_prompt(
            &conv,
            &self.config.context.system_prompt,
            turns,
            window,
            &estimate_tokens,
            &req.turn,
            max_tokens,
        );
        let tokens = u64::from(estimate_tokens(&system))
            + messages.iter().map(|m| u64::from(estimate_tokens(&m.content))).sum::<u64>();
        Ok(Prompt { system, messages, tokens })
    }

    /// Reserves the worst case of the whole failover chain, since any of it may answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reserve(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        decision: &pb::DecideResponse,
        prompt_tokens: u64,
        max_tokens: u32,
        rec: &mut pb::DecisionRecord,
        steps: &mut Steps,
    ) -> Result<super::steps::Reservation> {
        let catalog = self.catalog();
        let chain = std::iter::once(&decision.model).chain(decision.fallbacks.iter());
        let worst = chain
            .filter_map(|m| catalog.get(m))
            .map(|m| m.worst_case_cost(prompt_tokens, u64::from(max_tokens)))
            .max()
            .unwrap_or(Micros::ZERO);
        rec.reserved_micros = worst.0;
        let rreq = pb::ReserveRequest {
            request_id: rec.reservation_id.clone(),
            scopes: self.scopes(tenant, req, &decision.model),
            amount_micros: worst.0,
            model: decision.model.clone(),
        };
        let free = worst == Micros::ZERO;
        match steps.run("reserve", self.config.server.deadlines.ledger, self.services.ledger.reserve(rreq)).await {
            Ok(Ok(r)) if r.granted => {
                if r.unaccounted {
                    rec.warnings.push("ledger unreachable: spend counted locally (fail-open)".into());
                }
                Ok(Reservation { refusal: None, unaccounted: r.unaccounted })
            }
            Ok(Ok(r)) => {
                steps.set_outcome("refused");
                Ok(Reservation { refusal: Some(r.refusal), unaccounted: false })
            }
            // A ledger outage only blocks calls that cost money.
            Ok(Err(e)) if free => {
                rec.warnings.push(format!("ledger unavailable ({e}); free model answered unaccounted"));
                Ok(Reservation { refusal: None, unaccounted: true })
            }
            Err(()) if free => {
                rec.warnings.push("ledger timed out; free model answered unaccounted".into());
                Ok(Reservation { refusal: None, unaccounted: true })
            }
            Ok(Err(e)) => Err(Error::Dependency {
                service: "ledger",
                message: format!("{e}; paid models fail closed"),
                code: tonic::Code::Unavailable,
            }),
            Err(()) => Err(Error::Deadline("ledger.Reserve")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn generate(
        &self,
        req: &pb::RouteRequest,
        decision: &pb::DecideResponse,
        prompt: Prompt,
        max_tokens: u32,
        sink: Option<mpsc::Sender<String>>,
        rec: &mut pb::DecisionRecord,
        steps: &mut Steps,
    ) -> Result<pb::GenerateResponse> {
        let greq = pb::GenerateRequest {
            request_id: req.request_id.clone(),
            model: decision.model.clone(),
            fallbacks: decision.fallbacks.clone(),
            system: prompt.system,
            messages: prompt.messages,
            max_tokens,
            temperature: req.temperature,
            json_schema: String::new(),
            model_version: decision.model_version.clone(),
        };
        let deadline = self.config.server.deadlines.generate;
        let backends = self.services.backends.clone();
        let res = match sink {
            None => steps.run("generate", deadline, backends.generate(greq)).await,
            Some(sink) => steps.run("generate", deadline, stream_into(backends, greq, sink)).await,
        };
        if let Ok(Ok(g)) = &res {
            self.load.record_answer(g, self.config.server.latency_target);
        }
        match res {
            Ok(Ok(g)) => Ok(g),
            Ok(Err(triage_backends::Error::Exhausted { summary, attempts })) => {
                rec.attempts = attempts;
                Err(Error::ModelsExhausted(summary))
            }
            Ok(Err(e)) => Err(Error::dependency("backends", e.into())),
            Err(()) => Err(Error::Deadline("backends.Generate")),
        }
    }

    pub(super) async fn release(&self, reservation_id: &str, steps: &mut Steps) {
        let r = pb::ReleaseRequest { request_id: reservation_id.to_string() };
        match steps.run("release", self.config.server.deadlines.ledger, self.services.ledger.release(r)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "reservation not released; the reaper frees it"),
            Err(()) => tracing::warn!("reservation release timed out; the reaper frees it"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn commit(
        &self,
        req: &pb::RouteRequest,
        reservation_id: &str,
        model: &str,
        cost: Micros,
        unaccounted: bool,
        warnings: &mut Vec<String>,
        steps: &mut Steps,
    ) {
        let c = pb::CommitRequest {
            request_id: reservation_id.to_string(),
            actual_micros: cost.0,
            conversation_id: req.conversation_id.clone(),
            model: model.to_string(),
            // Already micro-dollars (validated non-negative); 0 is proto3's "not sent".
            revenue_micros: req.user.as_ref().map(|u| u.revenue_per_conversation_micros).filter(|r| *r > 0),
        };
        // The model has answered and the provider will bill it: the commit runs to the end in
        // a task of its own even when this Route is dropped now (its caller went away) or
        // stops waiting at the deadline (the commit is idempotent and bounded by the ledger's
        // own timeout).
        let ledger = self.services.ledger.clone();
        let settle = tokio::spawn(async move { ledger.commit(c).await }.in_current_span());
        let settled =
            async { settle.await.unwrap_or_else(|e| Err(triage_ledger::Error::Store(format!("commit task: {e}")))) };
        match steps.run("commit", self.config.server.deadlines.ledger, settled).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if unaccounted => tracing::debug!(error = %e, "commit skipped for unaccounted call"),
            Ok(Err(e)) => warnings.push(format!("commit failed ({e}); reservation stays until reaped")),
            Err(()) => warnings.push("commit timed out; reservation stays until reaped".into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn append(
        &self,
        tenant: &str,
        req: &pb::RouteRequest,
        conv: &pb::Conversation,
        decision: &pb::DecideResponse,
        g: &pb::GenerateResponse,
        escalated: bool,
        commitments: Vec<pb::Commitment>,
        steps: &mut Steps,
    ) -> Result<()> {
        let now = now_unix_ms();
        let usage = g.usage.unwrap_or_default();
        // The conversation stays pinned to the policy's choice, not a fallback that stood in
        // for it once: the next turn tries the chosen model again.
        let (pin_model, pin_version, pin_tier) =
            if conv.pinned_model != decision.model || conv.pinned_version != decision.model_version {
                (decision.model.clone(), decision.model_version.clone(), decision.tier)
            } else {
                (String::new(), String::new(), 0)
            };
        let a = pb::AppendRequest {
            tenant: tenant.to_string(),
            conversation_id: req.conversation_id.clone(),
            messages: vec![
                pb::Message {
                    role: pb::Role::User as i32,
                    content: req.turn.clone(),
                    at_unix_ms: now,
                    ..Default::default()
                },
                pb::Message {
                    role: pb::Role::Assistant as i32,
                    content: g.text.clone(),
                    model: g.model.clone(),
                    model_version: g.model_version.clone(),
                    at_unix_ms: now,
                },
            ],
            pin_model,
            pin_version,
            pin_tier,
            tokens: u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
            commitments,
            escalation: escalated,
        };
        match steps.run("append", self.config.server.deadlines.context, self.services.context.append(a)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::dependency("context", e.into())),
            Err(()) => Err(Error::Deadline("context.Append")),
        }
    }
}

/// Streams a generation into `sink` and returns the final metadata chunk.
async fn stream_into(
    backends: std::sync::Arc<dyn triage_backends::Backends>,
    greq: pb::GenerateRequest,
    sink: mpsc::Sender<String>,
) -> triage_backends::Result<pb::GenerateResponse> {
    use futures::StreamExt;
    let mut stream = backends.generate_stream(greq).await?;
    while let Some(chunk) = stream.next().await {
        match chunk?.chunk {
            Some(pb::generate_chunk::Chunk::Delta(d)) => {
                let _ = sink.send(d).await;
            }
            Some(pb::generate_chunk::Chunk::Done(done)) => return Ok(done),
            None => {}
        }
    }
    Err(triage_backends::Error::Malformed { model: String::new(), message: "stream ended without metadata".into() })
}

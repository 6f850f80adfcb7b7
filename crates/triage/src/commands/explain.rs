//! A decision record rendered for a person.

use std::fmt::Write;
use triage_proto::pb;

fn tier_name(t: i32) -> &'static str {
    match pb::Tier::try_from(t) {
        Ok(pb::Tier::Fast) => "fast",
        Ok(pb::Tier::Middle) => "middle",
        Ok(pb::Tier::Frontier) => "frontier",
        _ => "-",
    }
}

/// Multi-line text for `triage explain`.
pub fn render(r: &pb::DecisionRecord) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "request      {}  (status {})", r.request_id, r.status);
    let _ = writeln!(
        o,
        "conversation {}  tenant {}  turns before {}  tier before {}",
        r.conversation_id,
        r.tenant,
        r.conversation_turns,
        tier_name(r.conversation_tier)
    );
    let _ = writeln!(o, "turn         {}", r.turn);
    if let Some(c) = &r.classification {
        let _ = writeln!(
            o,
            "classified   {} / {} / requires_context={} / confidence {:.3} / {}  by {}  ({})",
            pb::Complexity::try_from(c.complexity).map(|x| x.as_str_name()).unwrap_or("?"),
            pb::Category::try_from(c.category).map(|x| x.as_str_name()).unwrap_or("?"),
            c.requires_context,
            c.confidence,
            c.language,
            c.model_version,
            r.classifier_outcome
        );
    } else {
        let _ = writeln!(o, "classified   none ({})", r.classifier_outcome);
    }
    let mut budget: Vec<_> = r.budget_remaining.iter().collect();
    budget.sort_by(|a, b| a.0.cmp(b.0));
    let _ = writeln!(
        o,
        "signals      load {:.2}; budget {}",
        r.system_load,
        budget.iter().map(|(k, v)| format!("{k}={v:.2}")).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(o, "rule         {} (policy {}): {}", r.rule_id, r.policy_version, r.reason);
    let _ = writeln!(o, "chosen       {}  fallbacks [{}]", r.chosen_model, r.fallbacks.join(", "));
    for a in &r.attempts {
        let _ = writeln!(
            o,
            "  attempt    {} via {}: {} {} ({} µs, {} retries)",
            a.model, a.provider, a.outcome, a.error, a.latency_us, a.retries
        );
    }
    let _ = writeln!(
        o,
        "answered by  {} ({}) tier {}{}{}",
        r.model,
        r.model_version,
        tier_name(r.tier),
        if r.downgraded { "  DOWNGRADED" } else { "" },
        if r.escalated { "  ESCALATED" } else { "" }
    );
    if !r.handoff_summary_json.is_empty() {
        let _ = writeln!(o, "handoff      {}", r.handoff_summary_json);
    }
    let u = r.usage.unwrap_or_default();
    let _ = writeln!(
        o,
        "cost         ${:.6} (reserved ${:.6})  tokens {} in / {} out",
        r.cost_micros as f64 / 1e6,
        r.reserved_micros as f64 / 1e6,
        u.input_tokens,
        u.output_tokens
    );
    let _ = writeln!(
        o,
        "steps        {}  total {} µs",
        r.steps.iter().map(|s| format!("{}={}µs({})", s.step, s.duration_us, s.outcome)).collect::<Vec<_>>().join(" "),
        r.latency_us
    );
    for c in &r.commitments {
        let _ = writeln!(o, "commitment   {} (by {} {}, turn {})", c.text, c.model, c.model_version, c.turn);
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning      {w}");
    }
    if let Some(f) = &r.feedback {
        let _ = writeln!(
            o,
            "feedback     resolved={:?} human={} satisfaction={:?} {}",
            f.resolved, f.escalated_to_human, f.satisfaction, f.comment
        );
    }
    let _ = writeln!(o, "reply        {}", r.reply);
    o
}

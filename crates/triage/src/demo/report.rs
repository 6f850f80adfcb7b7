//! What the demo prints: one block per turn, then the shares and costs the seed measures.

use std::collections::BTreeMap;
use std::time::Duration;
use triage_core::{Catalog, Config, Micros, Tier};
use triage_proto::pb;

fn label<E: Copy>(v: i32, f: impl Fn(i32) -> Option<E>, name: impl Fn(E) -> &'static str) -> &'static str {
    f(v).map(name).unwrap_or("?")
}

fn complexity(c: &pb::Classification) -> &'static str {
    label(
        c.complexity,
        |v| pb::Complexity::try_from(v).ok(),
        |c| match c {
            pb::Complexity::Simple => "simple",
            pb::Complexity::Moderate => "moderate",
            pb::Complexity::Complex => "complex",
            pb::Complexity::Unspecified => "?",
        },
    )
}

fn category(c: &pb::Classification) -> &'static str {
    label(
        c.category,
        |v| pb::Category::try_from(v).ok(),
        |c| match c {
            pb::Category::Transactional => "transactional",
            pb::Category::Analytical => "analytical",
            pb::Category::Creative => "creative",
            pb::Category::Unspecified => "?",
        },
    )
}

fn short(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

/// The models and whether each can be called.
pub fn header(models: &pb::ListModelsResponse, simulated: bool) {
    println!("Triage demo: every turn goes through context -> classify -> policy -> ledger -> backends -> context.");
    if simulated {
        println!(
            "Provider models are served by simulated providers on 127.0.0.1 speaking the real Groq/OpenAI/Anthropic wire formats (canned replies, real prices); the fast tier is the real local model."
        );
    }
    println!("\n{:<20} {:<9} {:<10} {:<28} state", "model", "tier", "provider", "pinned version");
    for m in &models.models {
        let tier = Tier::from_pb(m.tier).map(|t| t.as_str()).unwrap_or("?");
        let state =
            if m.available { "available".to_string() } else { format!("unavailable: {}", m.unavailable_reason) };
        println!("{:<20} {:<9} {:<10} {:<28} {}", m.name, tier, m.provider, m.version, state);
    }
}

/// One turn's block.
pub fn turn(n: usize, text: &str, res: &Result<pb::RouteResponse, triage_gateway::Error>, wall: Duration) {
    println!("  t{n:<2} user: {}", short(text, 100));
    match res {
        Ok(r) => {
            let class = r
                .classification
                .as_ref()
                .map(|c| {
                    format!(
                        "{}/{} conf {:.2} {}{}",
                        complexity(c),
                        category(c),
                        c.confidence,
                        c.language,
                        if c.requires_context { " +ctx" } else { "" }
                    )
                })
                .unwrap_or_else(|| "no classification (classifier failed)".into());
            let tier = Tier::from_pb(r.tier).map(|t| t.as_str()).unwrap_or("?");
            let mut flags = String::new();
            if r.escalated {
                flags.push_str(" ESCALATED(handoff)");
            }
            if r.downgraded {
                flags.push_str(" FAILOVER");
            }
            println!("      {class}  ->  rule {}  ->  {} [{tier}] {}{flags}", r.rule_id, r.model, r.model_version);
            println!("      {} ms  {}  ({})", wall.as_millis(), Micros(r.cost_micros), short(&r.reason, 110));
            for w in &r.warnings {
                println!("      ! {}", short(w, 140));
            }
            println!("      assistant: {}", short(&r.reply, 140));
        }
        Err(e) => println!("      ERROR {:?}: {e}", e.code()),
    }
}

/// What the summary needs of one turn.
pub struct Turn {
    model: Option<String>,
    tier: Option<Tier>,
    cost: Micros,
    frontier_cost: Micros,
    escalated: bool,
    downgraded: bool,
    wall: Duration,
}

impl Turn {
    /// Records a turn.
    pub fn new(
        _conv: &str,
        res: Result<pb::RouteResponse, triage_gateway::Error>,
        wall: Duration,
        config: &Config,
    ) -> Turn {
        let catalog = Catalog::from_config(config);
        match res {
            Ok(r) => {
                let usage = r.usage.unwrap_or_default();
                let frontier_cost = catalog
                    .frontier_baseline()
                    .map(|m| m.price.cost(u64::from(usage.input_tokens), u64::from(usage.output_tokens)))
                    .unwrap_or_default();
                Turn {
                    model: Some(r.model),
                    tier: Tier::from_pb(r.tier),
                    cost: Micros(r.cost_micros),
                    frontier_cost,
                    escalated: r.escalated,
                    downgraded: r.downgraded,
                    wall,
                }
            }
            Err(_) => Turn {
                model: None,
                tier: None,
                cost: Micros::ZERO,
                frontier_cost: Micros::ZERO,
                escalated: false,
                downgraded: false,
                wall,
            },
        }
    }
}

/// The closing table.
pub fn summary(turns: &[Turn], config: &Config) {
    let n = turns.len().max(1) as f64;
    let mut by_model: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_tier: BTreeMap<&str, usize> = BTreeMap::new();
    for t in turns {
        *by_model.entry(t.model.as_deref().unwrap_or("(failed)")).or_default() += 1;
        *by_tier.entry(t.tier.map(|t| t.as_str()).unwrap_or("(failed)")).or_default() += 1;
    }
    println!("\n== summary: {} turns", turns.len());
    println!("{:<22} {:>6} {:>7}", "answered by", "turns", "share");
    for (m, c) in &by_model {
        println!("{:<22} {:>6} {:>6.1}%", m, c, *c as f64 * 100.0 / n);
    }
    println!("{:<22} {:>6} {:>7}", "tier", "turns", "share");
    for (t, c) in &by_tier {
        println!("{:<22} {:>6} {:>6.1}%", t, c, *c as f64 * 100.0 / n);
    }
    let cost = turns.iter().fold(Micros::ZERO, |a, t| a.saturating_add(t.cost));
    let frontier = turns.iter().fold(Micros::ZERO, |a, t| a.saturating_add(t.frontier_cost));
    let baseline = Catalog::from_config(config).frontier_baseline().map(|m| m.name.clone()).unwrap_or_default();
    println!("cost                   {cost}");
    if frontier.0 > 0 {
        println!(
            "all-frontier cost      {frontier} (every turn on {baseline} with the same tokens): routed costs {:.1}% of it, a {:.1}% cut",
            cost.0 as f64 * 100.0 / frontier.0 as f64,
            100.0 - cost.0 as f64 * 100.0 / frontier.0 as f64
        );
    }
    let escalations = turns.iter().filter(|t| t.escalated).count();
    let failovers = turns.iter().filter(|t| t.downgraded).count();
    let failures = turns.iter().filter(|t| t.model.is_none()).count();
    println!("escalation rate        {:.1}% of turns ({escalations})", escalations as f64 * 100.0 / n);
    println!("failovers              {failovers}    failed turns {failures}");
    let mut walls: Vec<u128> = turns.iter().map(|t| t.wall.as_millis()).collect();
    walls.sort_unstable();
    if let Some(p50) = walls.get(walls.len() / 2) {
        println!("latency p50            {p50} ms per turn (local CPU generation included)");
    }
}

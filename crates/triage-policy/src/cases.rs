//! Operators' table tests for a policy (`triage policy test POLICY CASES.yaml`): each case is
//! an input and the expected model and/or rule; mismatches come back as a readable diff.
//!
//! ```yaml
//! cases:
//!   - name: order status goes fast
//!     input:
//!       classification: { complexity: simple, category: transactional, confidence: 0.95 }
//!       conversation: { turns: 1 }
//!       user: { plan: free, premium: false }
//!       system: { load: 0.2, budget: 1.0 }
//!     expect: { rule: simple_confident, model: local-smollm2, tier: fast }
//! ```
//! An absent `classification` (or `available: false`) is a classifier failure.

use crate::{Error, LocalPolicy, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use triage_core::Tier;
use triage_proto::pb;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: Input,
    expect: Expect,
}

/// One case's input, in the names conditions use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    classification: Option<ClassificationIn>,
    #[serde(default)]
    classifier_failure: String,
    #[serde(default)]
    conversation: ConversationIn,
    #[serde(default)]
    user: UserIn,
    #[serde(default)]
    system: SystemIn,
    #[serde(default)]
    requested_model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassificationIn {
    #[serde(default = "yes")]
    available: bool,
    #[serde(default)]
    complexity: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    requires_context: bool,
    #[serde(default)]
    confidence: f32,
    #[serde(default)]
    language: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationIn {
    #[serde(default)]
    turns: u32,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    #[serde(default, alias = "tier")]
    plan: String,
    #[serde(default)]
    premium: bool,
    #[serde(default)]
    tenant: String,
    /// Dollars.
    #[serde(default)]
    revenue_per_conversation: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemIn {
    #[serde(default)]
    load: f64,
    /// Shorthand for one scope, `global`.
    budget: Option<f64>,
    #[serde(default)]
    budget_by_scope: BTreeMap<String, f64>,
    /// Model -> `closed | open | half_open`.
    #[serde(default)]
    breakers: BTreeMap<String, String>,
    #[serde(default)]
    unavailable: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    model: Option<String>,
    rule: Option<String>,
    tier: Option<String>,
    escalation: Option<bool>,
    budget_downgrade: Option<bool>,
    /// The decision must fail with an error containing this text.
    error: Option<String>,
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// `model`, `rule`, `tier`, ...
    pub field: String,
    /// What the case expects.
    pub expected: String,
    /// What the policy decided.
    pub actual: String,
}

/// A case that failed, with every mismatching field and the policy's own explanation.
#[derive(Debug, Clone)]
pub struct CaseFailure {
    /// Case name.
    pub name: String,
    /// Mismatches.
    pub diffs: Vec<FieldDiff>,
    /// The decision's reason (or the error), to see why it went elsewhere.
    pub explanation: String,
}

/// Outcome of a cases file.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// Cases run.
    pub total: usize,
    /// Cases whose expectations all held.
    pub passed: usize,
    /// The others.
    pub failures: Vec<CaseFailure>,
    /// Version of the policy tested.
    pub policy_version: String,
}

impl TestReport {
    /// True when every case passed (the CLI exits non-zero otherwise).
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.failures {
            writeln!(f, "FAIL {}", c.name)?;
            let width = c.diffs.iter().map(|d| d.field.len()).max().unwrap_or(0);
            for d in &c.diffs {
                writeln!(f, "  {:width$}  - expected {}", d.field, d.expected)?;
                writeln!(f, "  {:width$}  + actual   {}", "", d.actual)?;
            }
            writeln!(f, "  why: {}", c.explanation)?;
        }
        write!(
            f,
            "policy {}: {} cases, {} passed, {} failed",
            self.policy_version,
            self.total,
            self.passed,
            self.failures.len()
        )
    }
}

fn cases_error(message: String) -> Error {
    Error::Load { path: PathBuf::from("<policy cases>"), message }
}

/// Runs every case of `cases_yaml` against `policy`. `Err` only for a malformed cases file;
/// mismatches are in the report.
pub fn run_policy_tests(policy: &LocalPolicy, cases_yaml: &str) -> Result<TestReport> {
    let file: CasesFile = serde_yaml::from_str(cases_yaml).map_err(|e| cases_error(e.to_string()))?;
    let mut failures = Vec::new();
    for case in &file.cases {
        let req = request(&case.input).map_err(|e| cases_error(format!("case `{}`: {e}", case.name)))?;
        let (diffs, explanation) = check(policy, &req, &case.expect);
        if !diffs.is_empty() {
            failures.push(CaseFailure { name: case.name.clone(), diffs, explanation });
        }
    }
    Ok(TestReport {
        total: file.cases.len(),
        passed: file.cases.len() - failures.len(),
        failures,
        policy_version: policy.policy_version(),
    })
}

fn check(policy: &LocalPolicy, req: &pb::DecideRequest, want: &Expect) -> (Vec<FieldDiff>, String) {
    let mut diffs = Vec::new();
    let mut diff = |field: &str, expected: String, actual: String| {
        if expected != actual {
            diffs.push(FieldDiff { field: field.into(), expected, actual });
        }
    };
    match (policy.decide_now(req), &want.error) {
        (Err(e), Some(text)) => {
            let got = e.to_string();
            if !got.contains(text.as_str()) {
                diff("error", format!("containing `{text}`"), got.clone());
            }
            (diffs, got)
        }
        (Err(e), None) => {
            diff("decision", "a decision".into(), format!("error: {e}"));
            (diffs, e.to_string())
        }
        (Ok(d), Some(text)) => {
            diff("error", format!("containing `{text}`"), format!("decided `{}` by rule `{}`", d.model, d.rule_id));
            (diffs, d.reason)
        }
        (Ok(d), None) => {
            let tier = Tier::from_pb(d.tier).map_or("unspecified", |t| t.as_str());
            if let Some(m) = &want.model {
                diff("model", m.clone(), d.model.clone());
            }
            if let Some(r) = &want.rule {
                diff("rule", r.clone(), d.rule_id.clone());
            }
            if let Some(t) = &want.tier {
                diff("tier", t.clone(), tier.to_owned());
            }
            if let Some(e) = want.escalation {
                diff("escalation", e.to_string(), d.escalation.to_string());
            }
            if let Some(b) = want.budget_downgrade {
                diff("budget_downgrade", b.to_string(), d.budget_downgrade.to_string());
            }
            let mut why = d.reason;
            if !d.warnings.is_empty() {
                why.push_str(&format!(" [warnings: {}]", d.warnings.join("; ")));
            }
            (diffs, why)
        }
    }
}

fn request(i: &Input) -> std::result::Result<pb::DecideRequest, String> {
    let classification = match &i.classification {
        Some(c) if c.available => Some(pb::Classification {
            complexity: match c.complexity.as_str() {
                "simple" => pb::Complexity::Simple,
                "moderate" => pb::Complexity::Moderate,
                "complex" => pb::Complexity::Complex,
                "" => pb::Complexity::Unspecified,
                x => return Err(format!("unknown complexity `{x}`")),
            } as i32,
            category: match c.category.as_str() {
                "transactional" => pb::Category::Transactional,
                "analytical" => pb::Category::Analytical,
                "creative" => pb::Category::Creative,
                "" => pb::Category::Unspecified,
                x => return Err(format!("unknown category `{x}`")),
            } as i32,
            requires_context: c.requires_context,
            confidence: c.confidence,
            language: c.language.clone(),
            model_version: "policy-cases".into(),
        }),
        _ => None,
    };
    let conv = &i.conversation;
    let tier = match conv.tier.as_str() {
        "" => pb::Tier::Unspecified,
        t => Tier::parse(t).ok_or_else(|| format!("unknown tier `{t}`"))?.to_pb(),
    };
    let mut budget_remaining: std::collections::HashMap<String, f64> =
        i.system.budget_by_scope.iter().map(|(k, v)| (k.clone(), *v)).collect();
    if let Some(b) = i.system.budget {
        budget_remaining.insert("global".into(), b);
    }
    let mut breakers = std::collections::HashMap::new();
    for (m, s) in &i.system.breakers {
        let state = match s.as_str() {
            "closed" => pb::BreakerState::Closed,
            "open" => pb::BreakerState::Open,
            "half_open" => pb::BreakerState::HalfOpen,
            x => {
                return Err(format!("unknown breaker state `{x}` (closed, open, half_open)"));
            }
        };
        breakers.insert(m.clone(), state as i32);
    }
    Ok(pb::DecideRequest {
        classification,
        classifier_failure: match (&i.classification, i.classifier_failure.as_str()) {
            (Some(c), "") if !c.available => "classifier_unavailable".into(),
            (None, "") => "classifier_unavailable".into(),
            (_, f) => f.to_owned(),
        },
        conversation: Some(pb::ConversationState {
            turns: conv.turns,
            tier: tier as i32,
            model: conv.model.clone(),
            model_version: conv.version.clone(),
            tokens: conv.tokens,
            conversation_id: String::new(),
        }),
        user: Some(pb::UserContext {
            user_id: String::new(),
            plan: i.user.plan.clone(),
            premium: i.user.premium,
            revenue_per_conversation_micros: (i.user.revenue_per_conversation * 1_000_000.0).round() as i64,
        }),
        tenant: i.user.tenant.clone(),
        system: Some(pb::SystemSignals {
            load: i.system.load,
            budget_remaining,
            breakers,
            unavailable: i.system.unavailable.clone(),
        }),
        requested_model: i.requested_model.clone(),
    })
}

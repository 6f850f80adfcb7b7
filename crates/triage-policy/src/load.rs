//! Loading a policy: strict parse, compile every condition once, validate against the
//! declared models. Errors name the file, the rule and the reason; warnings (shadowed rules,
//! deprecated targets) are returned with the policy.

use crate::cel_env::{CelEnv, check_references, is_static_error};
use crate::facts::{Facts, sample_request};
use crate::rules::{POLICY_FORMAT_VERSION, PolicyFile, Rule, RuleSpec, Target};
use crate::{Error, Result};
use cel_interpreter::{Program, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triage_core::config::Lifecycle;
use triage_core::{Catalog, Tier};

/// The built-in policy: the seed's decision tree plus the rules around it.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../config/policy.yaml");

/// Origin reported for the built-in policy.
pub const DEFAULT_POLICY_ORIGIN: &str = "<built-in policy>";

/// Id of the required last rule.
pub const DEFAULT_RULE_ID: &str = "default";

/// A validated, compiled policy.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    pub rules: Vec<Rule>,
    /// Short content hash of the file text: the `policy_version` of every decision.
    pub version: String,
    pub source: PathBuf,
    pub env: CelEnv,
    pub warnings: Vec<String>,
    /// The text compiled, kept so a new model set can recompile it.
    pub text: String,
    /// The models it was compiled against: decisions read both from one snapshot, so a
    /// model change never meets a policy compiled for other models.
    pub catalog: Arc<Catalog>,
}

/// Short sha256 of a policy text (12 hex digits: unique enough to tell versions apart in
/// logs, short enough to read).
pub fn policy_version(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest)[..12].to_owned()
}

fn invalid(path: &Path, rule: &str, reason: impl Into<String>) -> Error {
    Error::InvalidRule { path: path.to_path_buf(), rule: rule.to_owned(), reason: reason.into() }
}

/// Whitespace-insensitive form of a condition, to spot exact duplicates.
fn normalised(when: &str) -> String {
    when.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn compile(text: &str, origin: &Path, catalog: &Arc<Catalog>) -> Result<CompiledPolicy> {
    let file: PolicyFile =
        serde_yaml::from_str(text).map_err(|e| Error::Load { path: origin.to_path_buf(), message: e.to_string() })?;
    if file.version != POLICY_FORMAT_VERSION {
        return Err(Error::Load {
            path: origin.to_path_buf(),
            message: format!("version {} is not supported (expected {POLICY_FORMAT_VERSION})", file.version),
        });
    }
    let env = CelEnv::new();
    let sample = Facts::from_request(&sample_request(catalog), catalog);
    let sample_ctx = env.context(&sample);
    let mut warnings = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules = Vec::with_capacity(file.rules.len());
    for (i, spec) in file.rules.iter().enumerate() {
        let id = if spec.id.trim().is_empty() { format!("#{}", i + 1) } else { spec.id.clone() };
        if spec.id.trim().is_empty() {
            return Err(invalid(origin, &id, "`id` must not be empty"));
        }
        if let Some(j) = seen.insert(spec.id.as_str(), i) {
            return Err(invalid(origin, &id, format!("duplicate id (also rule #{})", j + 1)));
        }
        if spec.reason.trim().is_empty() {
            return Err(invalid(origin, &id, "`reason` must not be empty: every decision says why"));
        }
        let target = target(spec, origin, catalog, &mut warnings)?;
        let program = condition(spec, origin)?;
        match program.execute(&sample_ctx) {
            Ok(Value::Bool(_)) => {}
            Ok(v) => {
                return Err(invalid(origin, &id, format!("`when` must be a bool, got {}", v.type_of())));
            }
            Err(e) if is_static_error(&e) => {
                return Err(invalid(origin, &id, format!("`when` fails for every request: {e}")));
            }
            Err(_) => {}
        }
        if spec.free_only && !catalog.iter().any(|m| m.price.is_free() && !m.is_retired()) {
            warnings.push(format!(
                "{}: rule `{id}`: free_only, but no zero-price model is declared: it will refuse every request",
                origin.display()
            ));
        }
        rules.push(Rule {
            id,
            when: spec.when.clone(),
            program,
            target,
            reason: spec.reason.trim().to_owned(),
            handoff: spec.handoff,
            budget_downgrade: spec.budget_downgrade,
            free_only: spec.free_only,
        });
    }
    check_default(&rules, origin)?;
    warnings.extend(shadowed(&rules, origin));
    drop(sample_ctx);
    Ok(CompiledPolicy {
        rules,
        version: policy_version(text),
        source: origin.to_path_buf(),
        env,
        warnings,
        text: text.to_owned(),
        catalog: Arc::clone(catalog),
    })
}

fn target(spec: &RuleSpec, origin: &Path, catalog: &Catalog, warnings: &mut Vec<String>) -> Result<Target> {
    let id = spec.id.as_str();
    match (&spec.model, &spec.tier) {
        (Some(_), Some(_)) => Err(invalid(origin, id, "set `model` or `tier`, not both")),
        (None, None) => Err(invalid(origin, id, "a target is required: `model: NAME` or `tier: fast|middle|frontier`")),
        (None, Some(t)) => Tier::parse(t.trim())
            .map(Target::Tier)
            .ok_or_else(|| invalid(origin, id, format!("unknown tier `{t}` (fast, middle, frontier)"))),
        (Some(m), None) => {
            let Some(spec_m) = catalog.get(m) else {
                let declared: Vec<&str> = catalog.iter().map(|m| m.name.as_str()).collect();
                return Err(invalid(origin, id, format!("unknown model `{m}` (declared: {})", declared.join(", "))));
            };
            match &spec_m.lifecycle {
                Lifecycle::Retired { replacement } => warnings.push(format!(
                    "{}: rule `{id}`: model `{m}` is retired; `{replacement}` serves instead",
                    origin.display()
                )),
                Lifecycle::Deprecated { replacement, .. } => warnings.push(format!(
                    "{}: rule `{id}`: model `{m}` is deprecated; move to `{replacement}`",
                    origin.display()
                )),
                Lifecycle::Active => {}
            }
            Ok(Target::Model(m.clone()))
        }
    }
}

fn condition(spec: &RuleSpec, origin: &Path) -> Result<Program> {
    let id = spec.id.as_str();
    if spec.when.trim().is_empty() {
        return Err(invalid(origin, id, "`when` must not be empty (use \"true\" to always match)"));
    }
    let ast = guarded(|| cel_parser::Parser::new().parse(&spec.when))
        .map_err(|e| invalid(origin, id, format!("`when` does not compile: {e}")))?;
    check_references(&ast).map_err(|e| invalid(origin, id, format!("`when`: {e}")))?;
    guarded(|| Program::compile(&spec.when)).map_err(|e| invalid(origin, id, format!("`when` does not compile: {e}")))
}

/// cel-parser 0.10 panics (in its ANTLR runtime) on some malformed input, e.g. a dangling
/// `==` at the end. A policy file is operator input and a reload must never take the process
/// down, so a parser panic becomes an ordinary compile error.
fn guarded<T, E: std::fmt::Display>(
    parse: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("syntax error (incomplete expression: a dangling operator or unbalanced bracket?)".into()),
    }
}

/// The last rule must be `default` with `when: "true"`, so every request gets a decision and
/// a classifier outage has a well-known landing place.
fn check_default(rules: &[Rule], origin: &Path) -> Result<()> {
    let need = "a final rule `default` with `when: \"true\"` is required";
    match rules.iter().position(|r| r.id == DEFAULT_RULE_ID) {
        None => Err(invalid(origin, DEFAULT_RULE_ID, format!("missing: {need}"))),
        Some(i) if i + 1 != rules.len() => {
            Err(invalid(origin, DEFAULT_RULE_ID, format!("must be the last rule: {need}")))
        }
        Some(i) if rules[i].when.trim() != "true" => {
            Err(invalid(origin, DEFAULT_RULE_ID, format!("`when` must be \"true\": {need}")))
        }
        Some(_) => Ok(()),
    }
}

/// Rules that can never fire: after an unconditional rule, or repeating an earlier condition.
fn shadowed(rules: &[Rule], origin: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut always: Option<&str> = None;
    let mut conds: BTreeMap<String, &str> = BTreeMap::new();
    for r in rules {
        if let Some(a) = always {
            out.push(format!("{}: rule `{}` is shadowed: rule `{a}` before it always matches", origin.display(), r.id));
        } else if let Some(prev) = conds.get(&normalised(&r.when)) {
            out.push(format!(
                "{}: rule `{}` is shadowed: rule `{prev}` before it has the same condition",
                origin.display(),
                r.id
            ));
        }
        conds.entry(normalised(&r.when)).or_insert(r.id.as_str());
        if r.when.trim() == "true" && always.is_none() {
            always = Some(r.id.as_str());
        }
    }
    out
}

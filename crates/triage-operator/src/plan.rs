//! The operator's decisions as pure functions of the resources, the base config and the
//! clock: the model set to push, the status each resource gets, and when to look again.
//! No I/O here, so every path is unit-tested without a cluster.

use crate::convert::{RolloutInput, drain_deadline, policy_yaml, to_model_config};
use crate::crd::{
    Condition, LlmModelSpec, LlmModelStatus, PreviousVersionStatus, ProviderSpec, RoutingPolicySpec,
    RoutingPolicyStatus,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use triage_core::Config;
use triage_core::config::{ModelConfig, ModelSet};

/// Type of the one condition the operator writes.
pub const ACCEPTED: &str = "Accepted";

/// One LlmModel as the planner sees it.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// `metadata.name`, the model's name in the pushed set.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The desired state.
    pub spec: LlmModelSpec,
    /// The status as last written (absent on a new resource).
    pub status: Option<LlmModelStatus>,
}

/// The last accepted form of a resource, kept so an invalid edit leaves the model serving
/// as it was instead of removing it.
#[derive(Debug, Clone)]
pub struct LastGood {
    /// Generation that was accepted.
    pub generation: i64,
    /// What was pushed for it.
    pub config: ModelConfig,
}

/// Which version a model serves and which one drains.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    /// The version new conversations get.
    pub version: String,
    /// How that version is called.
    pub provider: ProviderSpec,
    /// The draining version, until `drain_until`.
    pub previous: Option<(PreviousVersionStatus, SystemTime)>,
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// In the pushed set as written.
    Accepted,
    /// Left out (or kept at its last accepted generation): why.
    Invalid(String),
}

/// The model set to push and what each resource is told.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The base file's models overlaid by the accepted resources.
    pub models: BTreeMap<String, ModelConfig>,
    /// Sorted `name@generation` of the resources in the set, then a content hash.
    pub revision: String,
    /// Verdict per resource name.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Serving state per accepted resource.
    pub serving: BTreeMap<String, Serving>,
    /// Accepted configs, to remember as last good once pushed.
    pub accepted: BTreeMap<String, LastGood>,
    /// When a drain ends next (the set changes then without any edit).
    pub requeue_after: Option<Duration>,
}

/// The serving state after `spec` is applied over `status` at `now`.
///
/// A new `spec.version` starts a drain of the served version for `drainDeadline`; an expired
/// drain is dropped; anything else keeps the status as it is.
pub fn serving(spec: &LlmModelSpec, status: Option<&LlmModelStatus>, now: SystemTime) -> Result<Serving, String> {
    let drain = drain_deadline(spec)?;
    let fresh = || Serving { version: spec.version.clone(), provider: spec.provider.clone(), previous: None };
    let Some(st) = status else { return Ok(fresh()) };
    let Some(served) = st.served_version.as_deref().filter(|v| !v.is_empty()) else { return Ok(fresh()) };
    if served != spec.version {
        if drain.is_zero() {
            return Ok(fresh());
        }
        let old_provider = st.served_provider.clone().unwrap_or_else(|| spec.provider.clone());
        let previous = PreviousVersionStatus { version: served.to_string(), provider: old_provider };
        return Ok(Serving { previous: Some((previous, now + drain)), ..fresh() });
    }
    let previous = match (&st.previous_version, st.drain_until.as_deref().and_then(parse_time)) {
        (Some(p), Some(until)) if now < until && p.version != spec.version => Some((p.clone(), until)),
        _ => None,
    };
    Ok(Serving { previous, ..fresh() })
}

fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// RFC 3339 with seconds, the form every timestamp in a status takes.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Builds the model set: base models overlaid by every resource that converts and validates.
///
/// A resource that fails is reported `Invalid` and replaced by its last accepted form (when
/// the operator has one), so the others still apply and nothing that served stops serving.
pub fn plan_models(
    base: &Config,
    resources: &[ModelInput],
    last_good: &BTreeMap<String, LastGood>,
    now: SystemTime,
) -> ModelPlan {
    let mut verdicts = BTreeMap::new();
    let mut serving_by = BTreeMap::new();
    // name -> (generation, config, is the current generation)
    let mut chosen: BTreeMap<String, (i64, ModelConfig, bool)> = BTreeMap::new();
    for r in resources {
        let status = r.status.clone().or_else(|| taken_over(base, &r.name));
        let converted = serving(&r.spec, status.as_ref(), now).and_then(|s| {
            let rollout = s.previous.as_ref().map(|(p, until)| RolloutInput {
                previous_version: p.version.clone(),
                previous_provider: p.provider.clone(),
                drain_until: *until,
            });
            to_model_config(&r.spec, rollout.as_ref()).map(|c| (s, c))
        });
        match converted {
            Ok((s, c)) => {
                serving_by.insert(r.name.clone(), s);
                chosen.insert(r.name.clone(), (r.generation, c, true));
                verdicts.insert(r.name.clone(), Verdict::Accepted);
            }
            Err(e) => {
                verdicts.insert(r.name.clone(), Verdict::Invalid(e));
                if let Some(g) = last_good.get(&r.name) {
                    chosen.insert(r.name.clone(), (g.generation, g.config.clone(), false));
                }
            }
        }
    }
    // Validate the whole set; blame the resource the error names, drop or roll it back, repeat.
    // Each round removes one resource's current form, so this ends.
    loop {
        let mut models = base.models.clone();
        for (name, (_, c, _)) in &chosen {
            models.insert(name.clone(), c.clone());
        }
        let Err((field, reason)) = validate_set(base, &models) else {
            return finish(models, chosen, verdicts, serving_by, now);
        };
        let message = format!("{field}: {reason}");
        if chosen.is_empty() {
            // The file's models alone fail: nothing a resource did; push them as the file has them.
            return finish(models, chosen, verdicts, serving_by, now);
        }
        let Some(culprit) = blame(&field, &reason, base, &chosen) else {
            // Not attributable to one resource: serve the file's models alone.
            for (name, _) in std::mem::take(&mut chosen) {
                verdicts.insert(name.clone(), Verdict::Invalid(message.clone()));
                serving_by.remove(&name);
            }
            continue;
        };
        let Some((_, _, current)) = chosen.remove(&culprit) else { continue };
        serving_by.remove(&culprit);
        if current {
            verdicts.insert(culprit.clone(), Verdict::Invalid(message));
            if let Some(g) = last_good.get(&culprit) {
                chosen.insert(culprit, (g.generation, g.config.clone(), false));
            }
        }
    }
}

/// A resource that takes over a model of the config file starts from the file's version, so
/// a different version drains it like any other version change.
fn taken_over(base: &Config, name: &str) -> Option<LlmModelStatus> {
    let m = base.models.get(name)?;
    Some(LlmModelStatus {
        served_version: Some(m.version.clone()),
        served_provider: Some(crate::convert::provider_spec(&m.provider)?),
        ..Default::default()
    })
}

fn validate_set(base: &Config, models: &BTreeMap<String, ModelConfig>) -> Result<(), (String, String)> {
    let set = ModelSet { models: models.clone(), tiers: None };
    match base.with_models(&set, Path::new("<LlmModel resources>")) {
        Ok(_) => Ok(()),
        Err(triage_core::Error::ConfigInvalid { field, reason, .. }) => Err((field, reason)),
        Err(e) => Err(("models".into(), e.to_string())),
    }
}

/// The resource an error is about: the model its key path names, the model a tier points
/// at, or a resource named in the message (a fallback cycle through a file model).
fn blame(
    field: &str,
    reason: &str,
    base: &Config,
    chosen: &BTreeMap<String, (i64, ModelConfig, bool)>,
) -> Option<String> {
    let in_set = |n: &str| chosen.contains_key(n).then(|| n.to_string());
    if let Some(rest) = field.strip_prefix("models.") {
        // Names may contain dots; the longest chosen name that prefixes the path wins.
        let named =
            chosen.keys().filter(|n| rest == n.as_str() || rest.starts_with(&format!("{n}."))).max_by_key(|n| n.len());
        if let Some(n) = named {
            return Some(n.clone());
        }
    }
    if let Some(tier) = field.strip_prefix("tiers.")
        && let Some(t) = triage_core::Tier::parse(tier)
        && let Some(n) = in_set(base.tiers.model_for(t))
    {
        return Some(n);
    }
    chosen.keys().rev().find(|n| reason.contains(&format!("`{n}`")) || reason.contains(&format!(" {n} "))).cloned()
}

fn finish(
    models: BTreeMap<String, ModelConfig>,
    chosen: BTreeMap<String, (i64, ModelConfig, bool)>,
    verdicts: BTreeMap<String, Verdict>,
    serving: BTreeMap<String, Serving>,
    now: SystemTime,
) -> ModelPlan {
    let tags: Vec<String> = chosen.iter().map(|(n, (g, _, _))| format!("{n}@{g}")).collect();
    let revision = format!("{} #{}", tags.join(","), content_hash(&models));
    let accepted = chosen
        .into_iter()
        .filter(|(_, (_, _, current))| *current)
        .map(|(n, (generation, config, _))| (n, LastGood { generation, config }))
        .collect();
    let requeue_after = next_requeue(serving.values(), now);
    ModelPlan { models, revision, verdicts, serving, accepted, requeue_after }
}

fn content_hash(models: &BTreeMap<String, ModelConfig>) -> String {
    let text = serde_json::to_string(models).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// Time until the earliest drain ends, if any is running.
pub fn next_requeue<'a>(serving: impl Iterator<Item = &'a Serving>, now: SystemTime) -> Option<Duration> {
    serving.filter_map(|s| s.previous.as_ref()).filter_map(|(_, until)| until.duration_since(now).ok()).min()
}

/// The pushed set as `Admin.ApplyModels` YAML: the config file's `models:` map.
pub fn models_yaml(models: &BTreeMap<String, ModelConfig>) -> Result<String, String> {
    let set = ModelSet { models: models.clone(), tiers: None };
    serde_yaml::to_string(&set).map_err(|e| e.to_string())
}

/// The `Accepted` condition, keeping `lastTransitionTime` when the status did not flip.
pub fn accepted_condition(
    prev: &[Condition],
    ok: bool,
    reason: &str,
    message: String,
    generation: i64,
    now: SystemTime,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = prev
        .iter()
        .find(|c| c.type_ == ACCEPTED && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| format_time(now));
    Condition {
        type_: ACCEPTED.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
        observed_generation: Some(generation),
    }
}

/// The status an LlmModel gets. An invalid resource keeps its serving fields: its last
/// accepted form is what still serves.
pub fn model_status(
    prev: Option<&LlmModelStatus>,
    generation: i64,
    verdict: &Verdict,
    serving: Option<&Serving>,
    now: SystemTime,
) -> LlmModelStatus {
    let prev_conditions = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    match (verdict, serving) {
        (Verdict::Accepted, Some(s)) => {
            let message = match &s.previous {
                Some((p, until)) => {
                    format!("serving version {}; version {} drains until {}", s.version, p.version, format_time(*until))
                }
                None => format!("serving version {}", s.version),
            };
            LlmModelStatus {
                observed_generation: Some(generation),
                conditions: vec![accepted_condition(prev_conditions, true, "Applied", message, generation, now)],
                served_version: Some(s.version.clone()),
                served_provider: Some(s.provider.clone()),
                previous_version: s.previous.as_ref().map(|(p, _)| p.clone()),
                drain_until: s.previous.as_ref().map(|(_, t)| format_time(*t)),
            }
        }
        (verdict, _) => {
            let msg = match verdict {
                Verdict::Invalid(m) => m.clone(),
                Verdict::Accepted => "not in the pushed set".to_string(),
            };
            let mut st = prev.cloned().unwrap_or_default();
            st.observed_generation = Some(generation);
            st.conditions = vec![accepted_condition(prev_conditions, false, "Invalid", msg, generation, now)];
            st
        }
    }
}

/// The status after Triage refused a set the operator found valid: the spec is not served.
pub fn rejected_status(
    prev: Option<&LlmModelStatus>,
    generation: i64,
    message: String,
    now: SystemTime,
) -> LlmModelStatus {
    let prev_conditions = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let mut st = prev.cloned().unwrap_or_default();
    st.observed_generation = Some(generation);
    st.conditions = vec![accepted_condition(prev_conditions, false, "Rejected", message, generation, now)];
    st
}

/// One RoutingPolicy as the planner sees it.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `metadata.creationTimestamp`, RFC 3339 (orders which policy serves).
    pub created: String,
    /// The rules.
    pub spec: RoutingPolicySpec,
    /// The status as last written.
    pub status: Option<RoutingPolicyStatus>,
}

/// The policy to push and what each RoutingPolicy is told.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPlan {
    /// `(policy_yaml, revision)` to push; `None` leaves the processes' policy alone.
    pub push: Option<(String, String)>,
    /// `(ok, reason, message)` per resource name.
    pub verdicts: BTreeMap<String, (bool, String, String)>,
}

/// The revision of the config's own policy (its `policy.file`, or the built-in one): what a
/// process reports before any policy was pushed to it, so processes still on it are left
/// alone and only those running a RoutingPolicy's get the base back.
pub const BASE_POLICY_REVISION: &str = "";

/// Picks the served policy (the oldest resource; later ones are `Superseded`) and validates
/// it against `config` (the config with the pushed models). An invalid policy is not pushed:
/// the processes keep the last good one. With no RoutingPolicy at all (the last one was
/// deleted) the config's own policy, `base_policy`, serves again.
pub fn plan_policy(config: &Config, base_policy: Option<&str>, policies: &[PolicyInput]) -> PolicyPlan {
    let mut sorted: Vec<&PolicyInput> = policies.iter().collect();
    sorted.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    let mut verdicts = BTreeMap::new();
    let Some((first, rest)) = sorted.split_first() else {
        let push = base_policy.map(|text| (text.to_string(), BASE_POLICY_REVISION.to_string()));
        return PolicyPlan { push, verdicts };
    };
    let mut push = None;
    for p in rest {
        let msg = format!("only one RoutingPolicy serves per namespace; `{}` is the oldest and serves", first.name);
        verdicts.insert(p.name.clone(), (false, "Superseded".to_string(), msg));
    }
    let origin = format!("RoutingPolicy {}", first.name);
    let checked = policy_yaml(&first.spec).and_then(|y| {
        triage_policy::validate_policy(config, &y, Path::new(&origin)).map(|w| (y, w)).map_err(|e| e.to_string())
    });
    match checked {
        Ok((yaml, warnings)) => {
            let message =
                if warnings.is_empty() { "serving".to_string() } else { format!("serving; {}", warnings.join("; ")) };
            verdicts.insert(first.name.clone(), (true, "Applied".to_string(), message));
            push = Some((yaml, format!("{}@{}", first.name, first.generation)));
        }
        Err(e) => {
            verdicts.insert(first.name.clone(), (false, "Invalid".to_string(), e));
        }
    }
    PolicyPlan { push, verdicts }
}

/// The status a RoutingPolicy gets.
pub fn policy_status(
    prev: Option<&RoutingPolicyStatus>,
    generation: i64,
    verdict: &(bool, String, String),
    now: SystemTime,
) -> RoutingPolicyStatus {
    let prev_conditions = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let (ok, reason, message) = verdict;
    RoutingPolicyStatus {
        observed_generation: Some(generation),
        conditions: vec![accepted_condition(prev_conditions, *ok, reason, message.clone(), generation, now)],
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

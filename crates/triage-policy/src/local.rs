//! The in-process policy: a compiled policy behind an `ArcSwap`, so a reload never blocks or
//! tears a decision in flight.

use crate::load::{CompiledPolicy, DEFAULT_POLICY_ORIGIN, DEFAULT_POLICY_YAML, compile};
use crate::{Policy, Result, decide};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use triage_core::{Catalog, Config};
use triage_proto::pb;

/// The policy service in-process.
#[derive(Debug)]
pub struct LocalPolicy {
    pub(crate) current: ArcSwap<CompiledPolicy>,
    /// File reloads read; `None` for the built-in or an in-memory policy.
    pub(crate) file: Option<PathBuf>,
    /// Hash of the last file text tried (good or bad), so one bad version is reported once.
    pub(crate) last_seen: Mutex<Option<String>>,
    pub(crate) reload_failures: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Serializes applies and reloads, so two writers never interleave compile and store.
    pub(crate) apply_lock: Mutex<()>,
}

impl LocalPolicy {
    /// The policy of a config: `policy.file` (resolved like every config path) when set, else
    /// the built-in seed policy.
    pub fn from_config(cfg: &Config) -> Result<LocalPolicy> {
        let file = cfg.policy.file.as_ref().map(|p| cfg.resolve_path(p));
        Self::new(cfg, file.as_deref())
    }

    /// The policy in `file` (or the built-in one when `None`) over the models of `cfg`.
    pub fn new(cfg: &Config, file: Option<&Path>) -> Result<LocalPolicy> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| crate::Error::Load { path: path.to_path_buf(), message: e.to_string() })?;
                let mut p = Self::build(cfg, &text, path)?;
                p.file = Some(path.to_path_buf());
                p.last_seen = Mutex::new(Some(crate::load::policy_version(&text)));
                Ok(p)
            }
            None => Self::build(cfg, DEFAULT_POLICY_YAML, Path::new(DEFAULT_POLICY_ORIGIN)),
        }
    }

    /// A policy from YAML text (`origin` names it in errors); never reloaded.
    pub fn from_yaml(cfg: &Config, text: &str, origin: &Path) -> Result<LocalPolicy> {
        Self::build(cfg, text, origin)
    }

    fn build(cfg: &Config, text: &str, origin: &Path) -> Result<LocalPolicy> {
        let catalog = Arc::new(Catalog::from_config(cfg));
        let compiled = compile(text, origin, &catalog)?;
        drop(catalog);
        for w in &compiled.warnings {
            tracing::warn!(policy = %origin.display(), "{w}");
        }
        Ok(LocalPolicy {
            current: ArcSwap::from_pointee(compiled),
            file: None,
            last_seen: Mutex::new(None),
            reload_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            apply_lock: Mutex::new(()),
        })
    }

    /// Decides one turn without the async wrapper (benches, replay, policy tests).
    pub fn decide_now(&self, req: &pb::DecideRequest) -> Result<pb::DecideResponse> {
        let p = self.current.load();
        decide::decide(&p, &p.catalog, req)
    }

    /// Version (short content hash) of the policy now in force.
    pub fn policy_version(&self) -> String {
        self.current.load().version.clone()
    }

    /// Warnings of the policy now in force (shadowed rules, deprecated targets).
    pub fn warnings(&self) -> Vec<String> {
        self.current.load().warnings.clone()
    }

    /// Ids of the rules now in force, in order.
    pub fn rule_ids(&self) -> Vec<String> {
        self.current.load().rules.iter().map(|r| r.id.clone()).collect()
    }

    /// Where the policy now in force came from.
    pub fn source(&self) -> PathBuf {
        self.current.load().source.clone()
    }

    /// The declared models decisions are made over.
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.current.load().catalog)
    }

    /// Replaces the declared models (`Admin.ApplyModels`): the policy in force is recompiled
    /// against them first, so a model set that breaks a rule is refused and nothing changes.
    pub fn apply_models(&self, cfg: &Config) -> Result<Vec<String>> {
        let _one_at_a_time = self.apply_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.current.load();
        let catalog = Arc::new(Catalog::from_config(cfg));
        let compiled = compile(&now.text, &now.source, &catalog)?;
        let warnings = compiled.warnings.clone();
        self.current.store(Arc::new(compiled));
        tracing::info!(models = catalog.iter().count(), "policy: declared models replaced");
        Ok(warnings)
    }

    /// Replaces the policy (`Admin.ApplyPolicy`) after compiling it against the models in
    /// force; on error the last good policy keeps serving. Returns its version and warnings.
    pub fn apply_policy(&self, text: &str, origin: &Path) -> Result<(String, Vec<String>)> {
        let _one_at_a_time = self.apply_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let catalog = Arc::clone(&self.current.load().catalog);
        let compiled = compile(text, origin, &catalog)?;
        let out = (compiled.version.clone(), compiled.warnings.clone());
        self.current.store(Arc::new(compiled));
        tracing::info!(policy = %origin.display(), version = %out.0, "policy applied");
        Ok(out)
    }

    /// Reloads that failed (unreadable or invalid file) since start: the metric an alert
    /// watches, since a failed reload otherwise only leaves the old policy silently in force.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Why the last reload failed, while the file is still bad; cleared by a good reload.
    pub fn last_reload_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }
}

#[async_trait::async_trait]
impl Policy for LocalPolicy {
    async fn decide(&self, req: pb::DecideRequest) -> Result<pb::DecideResponse> {
        self.decide_now(&req)
    }
}

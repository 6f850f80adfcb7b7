//! Hot reload of the policy file. The file is polled (not watched): a content hash tells a
//! real change from a touch, works the same on every filesystem, and survives the symlink
//! swaps Kubernetes uses for mounted ConfigMaps. A bad version keeps the last good policy.

use crate::load::{compile, policy_version};
use crate::{Error, LocalPolicy, Result};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a reload check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// No file to reload (built-in or in-memory policy).
    NoFile,
    /// The file has not changed since it was last tried.
    Unchanged,
    /// A new version is in force.
    Applied {
        /// Its `policy_version`.
        version: String,
        /// Its warnings.
        warnings: Vec<String>,
    },
}

impl LocalPolicy {
    /// Checks the policy file once: applies a changed, valid version; on a bad one keeps the
    /// policy in force, counts the failure and returns the error. Each bad version counts once.
    pub fn reload_now(&self) -> Result<ReloadOutcome> {
        let Some(path) = &self.file else {
            return Ok(ReloadOutcome::NoFile);
        };
        let _one_at_a_time = self.apply_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (text, seen) = match std::fs::read_to_string(path) {
            Ok(t) => {
                let h = policy_version(&t);
                (Ok(t), h)
            }
            Err(e) => {
                let h = format!("unreadable: {}", e.kind());
                (Err(e), h)
            }
        };
        {
            let mut last = self.last_seen.lock().map_err(|_| poisoned(path))?;
            if last.as_deref() == Some(seen.as_str()) {
                return Ok(ReloadOutcome::Unchanged);
            }
            *last = Some(seen);
        }
        let result = text
            .map_err(|e| Error::Load { path: path.clone(), message: e.to_string() })
            .and_then(|t| compile(&t, path, &self.current.load().catalog));
        match result {
            Ok(compiled) => {
                let version = compiled.version.clone();
                let warnings = compiled.warnings.clone();
                for w in &warnings {
                    tracing::warn!(policy = %path.display(), "{w}");
                }
                self.current.store(Arc::new(compiled));
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
                tracing::info!(policy = %path.display(), %version, "policy reloaded");
                Ok(ReloadOutcome::Applied { version, warnings })
            }
            Err(e) => {
                let failures = self.reload_failures.fetch_add(1, Ordering::Relaxed) + 1;
                triage_core::metrics::global().policy_reload_failures.inc();
                tracing::error!(
                    policy = %path.display(),
                    error = %e,
                    failures,
                    kept = %self.policy_version(),
                    "policy reload failed; the last good policy stays in force"
                );
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Polls the policy file every `interval` until `cancel` fires or the policy is dropped
    /// (the task holds only a weak reference, so it never keeps a policy alive).
    pub fn spawn_reload(self: &Arc<Self>, interval: Duration, cancel: CancellationToken) -> JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = interval.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(policy) = weak.upgrade() else { return };
                // Reading and compiling a policy is a few milliseconds of blocking work; off
                // the async workers so decisions on the same runtime never wait for it.
                let res = tokio::task::spawn_blocking(move || policy.reload_now()).await;
                if let Err(e) = res {
                    tracing::error!(error = %e, "policy reload task failed");
                }
            }
        })
    }
}

fn poisoned(path: &std::path::Path) -> Error {
    Error::Load { path: path.to_path_buf(), message: "reload state lock poisoned".into() }
}

//! Configuration in two phases: strict serde types (unknown keys rejected), then a
//! validating load that names the file, the key path and what is wrong.

mod types;
mod validate;

pub use types::*;
pub use validate::tenant_name_problem;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The configuration compiled into the binary: every tier declared, the fast tier a local
/// in-process model, provider models unavailable until their keys are set.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../../config/triage.yaml");

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::ConfigRead { path: path.to_path_buf(), source })?;
        Self::from_yaml(&text, path)
    }

    /// The built-in default configuration.
    pub fn embedded_default() -> Result<Config> {
        Self::from_yaml(DEFAULT_CONFIG_YAML, Path::new("<embedded default config>"))
    }

    /// Loads `path` when given, else the embedded default.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(p) => Self::load(p),
            None => Self::embedded_default(),
        }
    }

    /// Parses and validates YAML text; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Config> {
        let mut cfg: Config = serde_yaml::from_str(text)
            .map_err(|e| Error::ConfigParse { path: origin.to_path_buf(), message: describe_yaml_error(&e) })?;
        cfg.source = origin.to_path_buf();
        validate::validate(&cfg).map_err(|(field, reason)| Error::ConfigInvalid {
            path: origin.to_path_buf(),
            field,
            reason,
        })?;
        Ok(cfg)
    }

    /// Resolves a path from the config: relative paths are taken from the directory named by
    /// `TRIAGE_HOME`, else the working directory (models live in `./models`).
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match std::env::var_os("TRIAGE_HOME") {
            Some(home) => PathBuf::from(home).join(p),
            None => p.to_path_buf(),
        }
    }
}

/// A model set pushed at run time (`Admin.ApplyModels`): the config file's `models:` map and,
/// optionally, its `tiers:`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSet {
    /// Every declared model, by name.
    pub models: std::collections::BTreeMap<String, ModelConfig>,
    /// Tier defaults; absent keeps the running ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<TiersConfig>,
}

impl ModelSet {
    /// Parses YAML in the config file's shape; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<ModelSet> {
        serde_yaml::from_str(text)
            .map_err(|e| Error::ConfigParse { path: origin.to_path_buf(), message: describe_yaml_error(&e) })
    }
}

impl Config {
    /// This config with its models (and tiers, when given) replaced, validated exactly like a
    /// config file: the ledger limits, summarizer and tiers must still name declared models.
    pub fn with_models(&self, set: &ModelSet, origin: &Path) -> Result<Config> {
        let mut cfg = self.clone();
        cfg.models = set.models.clone();
        if let Some(t) = &set.tiers {
            cfg.tiers = t.clone();
        }
        validate::validate(&cfg).map_err(|(field, reason)| Error::ConfigInvalid {
            path: origin.to_path_buf(),
            field,
            reason,
        })?;
        Ok(cfg)
    }

    /// The classifier settings with their model paths resolved (see [`Config::resolve_path`]).
    pub fn classifier_resolved(&self) -> ClassifierConfig {
        let mut c = self.classifier.clone();
        c.encoder_dir = self.resolve_path(&c.encoder_dir);
        c.heads = c.heads.as_ref().map(|h| self.resolve_path(h));
        c.llm_path = c.llm_path.as_ref().map(|h| self.resolve_path(h));
        c
    }
}

fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    // serde_yaml puts the key path first ("models.x.tier: unknown variant ...") and the
    // location last; keep both, they are what an operator needs to find the mistake.
    e.to_string()
}

#[cfg(test)]
mod tests;

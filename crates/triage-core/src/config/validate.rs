//! Second phase of config loading: values that parse but make no sense. Each failure names
//! the key path and the reason; the caller adds the file.

use super::types::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

type Invalid = (String, String);

pub(super) fn validate(cfg: &Config) -> Result<(), Invalid> {
    if cfg.models.is_empty() {
        return Err(("models".into(), "at least one model must be declared".into()));
    }
    for (name, m) in &cfg.models {
        validate_model(name, m, &cfg.models)?;
    }
    check_fallback_cycles(&cfg.models)?;
    for tier in crate::tier::Tier::ALL {
        let name = cfg.tiers.model_for(tier);
        let field = format!("tiers.{tier}");
        match cfg.models.get(name) {
            None => return Err((field, format!("unknown model `{name}`"))),
            Some(m) if m.tier != tier => {
                return Err((field, format!("`{name}` is declared with tier `{}`", m.tier)));
            }
            Some(m) if matches!(m.lifecycle, Lifecycle::Retired { .. }) => {
                return Err((field, format!("`{name}` is retired")));
            }
            Some(_) => {}
        }
    }
    validate_server(&cfg.server)?;
    for name in SERVICE_NAMES {
        let Some(ep) = cfg.services.get(name) else { continue };
        ep.listen.parse::<SocketAddr>().map_err(|e| {
            (format!("services.{name}.listen"), format!("`{}` is not a socket address: {e}", ep.listen))
        })?;
        if !(ep.connect.starts_with("http://") || ep.connect.starts_with("https://")) {
            return Err((
                format!("services.{name}.connect"),
                format!("`{}` must be an http:// or https:// URL", ep.connect),
            ));
        }
    }
    if let Some(url) = &cfg.redis.url
        && !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://")
            || url.starts_with("unix://"))
    {
        return Err(("redis.url".into(), format!("`{url}` is not a redis:// URL")));
    }
    if cfg.classifier.history_turns > 64 {
        return Err(("classifier.history_turns".into(), "must be at most 64".into()));
    }
    if cfg.classifier.cache.local_entries > 1_000_000 {
        return Err(("classifier.cache.local_entries".into(), "must be at most 1000000".into()));
    }
    if let Some(s) = &cfg.context.summarizer_model
        && !cfg.models.contains_key(s)
    {
        return Err(("context.summarizer_model".into(), format!("unknown model `{s}`")));
    }
    if cfg.context.prompt_turns == 0 {
        return Err(("context.prompt_turns".into(), "must be at least 1".into()));
    }
    validate_backends(&cfg.backends)?;
    validate_ledger(&cfg.ledger, &cfg.models)?;
    validate_auth(&cfg.auth)?;
    validate_telemetry(&cfg.telemetry)?;
    Ok(())
}

fn validate_telemetry(t: &TelemetryConfig) -> Result<(), Invalid> {
    let records = &t.decision_records;
    // Feedback arrives after the answer, often minutes later; past a year a record is an
    // archive, which the JSONL files are for.
    if records.ttl < Duration::from_secs(60) || records.ttl > Duration::from_secs(366 * 24 * 3600) {
        return Err(("telemetry.decision_records.ttl".into(), "must be 1m..366d".into()));
    }
    if records.stream_max_len > 100_000_000 {
        return Err(("telemetry.decision_records.stream_max_len".into(), "must be at most 100000000".into()));
    }
    let Some(f) = &t.decision_log_files else { return Ok(()) };
    let at = |k: &str| format!("telemetry.decision_log_files.{k}");
    if f.dir.as_os_str().is_empty() {
        return Err((at("dir"), "must not be empty".into()));
    }
    if f.max_file_bytes < 4096 {
        return Err((at("max_file_bytes"), "must be at least 4096".into()));
    }
    if f.max_files == 0 || f.max_files > 10_000 {
        return Err((at("max_files"), "must be 1..10000".into()));
    }
    if f.queue == 0 || f.queue > 1_000_000 {
        return Err((at("queue"), "must be 1..1000000".into()));
    }
    Ok(())
}

/// Key entries must be real sha256 digests so a typo cannot silently lock a tenant out.
fn validate_auth(a: &AuthConfig) -> Result<(), Invalid> {
    for (i, k) in a.keys.iter().enumerate() {
        validate_key(&format!("auth.keys[{i}]"), k)?;
    }
    if a.keys_file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
        return Err(("auth.keys_file".into(), "must name a file".into()));
    }
    if a.reload_interval.is_zero() {
        return Err(("auth.reload_interval".into(), "must be greater than 0".into()));
    }
    Ok(())
}

/// Checks one inline key entry.
fn validate_key(at: &str, k: &ApiKeyConfig) -> Result<(), Invalid> {
    if k.sha256.len() != 64 || !k.sha256.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        return Err((format!("{at}.sha256"), "must be 64 lowercase hex characters (sha256 of the key)".into()));
    }
    if let Some(why) = tenant_name_problem(&k.tenant) {
        return Err((format!("{at}.tenant"), why.into()));
    }
    Ok(())
}

fn validate_model(name: &str, m: &ModelConfig, all: &BTreeMap<String, ModelConfig>) -> Result<(), Invalid> {
    let at = |f: &str| format!("models.{name}.{f}");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c)) {
        return Err((format!("models.{name}"), "model names use letters, digits and - _ . : / only".into()));
    }
    if m.version.trim().is_empty() {
        return Err((at("version"), "a pinned version is required".into()));
    }
    if m.context_window == 0 {
        return Err((at("context_window"), "must be greater than 0".into()));
    }
    for (field, v) in [
        ("price.input_per_mtok", m.price.input_per_mtok.0),
        ("price.output_per_mtok", m.price.output_per_mtok.0),
        ("price.per_request", m.price.per_request.0),
    ] {
        if v < 0 {
            return Err((at(field), format!("must not be negative (got {v})")));
        }
    }
    match &m.provider {
        ProviderConfig::Openai { base_url, model_id, .. } | ProviderConfig::Anthropic { base_url, model_id, .. } => {
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err((at("provider.base_url"), format!("`{base_url}` must be an http(s) URL")));
            }
            if model_id.trim().is_empty() {
                return Err((at("provider.model_id"), "must not be empty".into()));
            }
        }
        ProviderConfig::Local { gguf, .. } => {
            if gguf.as_os_str().is_empty() {
                return Err((at("provider.gguf"), "must name a GGUF file".into()));
            }
        }
        ProviderConfig::Mistralrs { model_path } => {
            if model_path.as_os_str().is_empty() {
                return Err((at("provider.model_path"), "must name a model".into()));
            }
        }
    }
    if let ProviderConfig::Anthropic { api_key, .. } | ProviderConfig::Openai { api_key: Some(api_key), .. } =
        &m.provider
        && api_key.env.is_none()
        && api_key.file.is_none()
    {
        return Err((at("provider.api_key"), "name an `env` variable or a `file`; keys are never inline".into()));
    }
    let mut seen = BTreeSet::new();
    for (i, fb) in m.fallbacks.iter().enumerate() {
        if fb == name {
            return Err((format!("models.{name}.fallbacks[{i}]"), "a model cannot fall back to itself".into()));
        }
        if !all.contains_key(fb) {
            return Err((format!("models.{name}.fallbacks[{i}]"), format!("unknown model `{fb}`")));
        }
        if !seen.insert(fb) {
            return Err((format!("models.{name}.fallbacks[{i}]"), format!("`{fb}` is listed twice")));
        }
    }
    if let Some(r) = m.lifecycle.replacement() {
        match all.get(r) {
            None => return Err((at("lifecycle.replacement"), format!("unknown model `{r}`"))),
            Some(rm) if matches!(rm.lifecycle, Lifecycle::Retired { .. }) => {
                return Err((at("lifecycle.replacement"), format!("`{r}` is itself retired")));
            }
            Some(_) if r == name => return Err((at("lifecycle.replacement"), "a model cannot replace itself".into())),
            Some(_) => {}
        }
    }
    if let Some(r) = &m.rollout {
        if r.previous.version.trim().is_empty() {
            return Err((at("rollout.previous.version"), "must not be empty".into()));
        }
        if r.previous.version == m.version {
            return Err((at("rollout.previous.version"), format!("equals the new version `{}`", m.version)));
        }
        if r.canary_weight > 100 {
            return Err((at("rollout.canary_weight"), format!("{} is not a percent (0..=100)", r.canary_weight)));
        }
    }
    for (f, d) in [("timeout", m.timeout), ("ttft_timeout", m.ttft_timeout)] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err((at(f), "must be greater than 0".into()));
        }
    }
    Ok(())
}

/// Fallback chains are walked transitively at run time, so a cycle would loop forever.
fn check_fallback_cycles(models: &BTreeMap<String, ModelConfig>) -> Result<(), Invalid> {
    fn visit<'a>(
        n: &'a str,
        models: &'a BTreeMap<String, ModelConfig>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), Invalid> {
        if done.contains(n) {
            return Ok(());
        }
        if let Some(pos) = stack.iter().position(|s| *s == n) {
            let mut cycle: Vec<&str> = stack[pos..].to_vec();
            cycle.push(n);
            return Err((
                format!("models.{}.fallbacks", stack[pos]),
                format!("fallback cycle: {}", cycle.join(" -> ")),
            ));
        }
        stack.push(n);
        if let Some(m) = models.get(n) {
            for fb in &m.fallbacks {
                visit(fb, models, stack, done)?;
            }
        }
        stack.pop();
        done.insert(n);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for name in models.keys() {
        visit(name, models, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

fn validate_server(s: &ServerConfig) -> Result<(), Invalid> {
    if s.max_turn_bytes == 0 {
        return Err(("server.max_turn_bytes".into(), "must be greater than 0".into()));
    }
    if s.default_max_tokens == 0 || s.default_max_tokens > s.max_tokens_limit {
        return Err((
            "server.default_max_tokens".into(),
            format!("must be between 1 and server.max_tokens_limit ({})", s.max_tokens_limit),
        ));
    }
    if s.capacity == 0 {
        return Err(("server.capacity".into(), "must be greater than 0".into()));
    }
    s.http_listen
        .parse::<SocketAddr>()
        .map_err(|e| ("server.http_listen".to_string(), format!("`{}` is not a socket address: {e}", s.http_listen)))?;
    if let Some(addr) = &s.health_listen {
        addr.parse::<SocketAddr>()
            .map_err(|e| ("server.health_listen".to_string(), format!("`{addr}` is not a socket address: {e}")))?;
        if *addr == s.http_listen {
            return Err(("server.health_listen".into(), format!("`{addr}` is server.http_listen's address too")));
        }
    }
    if let Some(tls) = &s.tls
        && (tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty())
    {
        return Err(("server.tls".into(), "cert and key must name PEM files".into()));
    }
    if s.max_body_bytes == 0 || s.max_messages == 0 {
        return Err(("server.max_body_bytes".into(), "max_body_bytes and max_messages must be greater than 0".into()));
    }
    if s.header_read_timeout.is_zero() || s.body_read_timeout.is_zero() {
        return Err(("server.header_read_timeout".into(), "read timeouts must be greater than 0".into()));
    }
    if let Some(why) = tenant_name_problem(&s.default_tenant) {
        return Err(("server.default_tenant".into(), why.into()));
    }
    let d = &s.deadlines;
    for (f, v) in [
        ("context", d.context),
        ("classify", d.classify),
        ("policy", d.policy),
        ("ledger", d.ledger),
        ("generate", d.generate),
    ] {
        if v.is_zero() {
            return Err((format!("server.deadlines.{f}"), "must be greater than 0".into()));
        }
    }
    Ok(())
}

fn validate_backends(b: &BackendsConfig) -> Result<(), Invalid> {
    if b.timeout.is_zero() || b.ttft_timeout.is_zero() {
        return Err(("backends.timeout".into(), "timeouts must be greater than 0".into()));
    }
    if b.retry.base_delay > b.retry.max_delay {
        return Err(("backends.retry.base_delay".into(), "must not exceed backends.retry.max_delay".into()));
    }
    if !(0.0..=1.0).contains(&b.retry.budget_ratio) {
        return Err(("backends.retry.budget_ratio".into(), "must be within 0..1".into()));
    }
    if b.breaker.failure_threshold == 0 {
        return Err(("backends.breaker.failure_threshold".into(), "must be at least 1".into()));
    }
    Ok(())
}

fn validate_ledger(l: &LedgerConfig, models: &BTreeMap<String, ModelConfig>) -> Result<(), Invalid> {
    const KINDS: [&str; 5] = ["global", "tenant", "user", "model", "conversation"];
    for (i, lim) in l.limits.iter().enumerate() {
        let at = |f: &str| format!("ledger.limits[{i}].{f}");
        if !KINDS.contains(&lim.scope.as_str()) {
            return Err((at("scope"), format!("`{}` is not one of {}", lim.scope, KINDS.join(", "))));
        }
        if lim.scope == "global" && lim.id.is_some() {
            return Err((at("id"), "the global scope takes no id".into()));
        }
        if lim.scope == "model"
            && let Some(id) = &lim.id
            && !models.contains_key(id)
        {
            return Err((at("id"), format!("unknown model `{id}`")));
        }
        if lim.limit_micros <= 0 {
            return Err((at("limit_micros"), "must be greater than 0".into()));
        }
    }
    if l.reservation_ttl.is_zero() {
        return Err(("ledger.reservation_ttl".into(), "must be greater than 0".into()));
    }
    if l.signal_max_age > std::time::Duration::from_secs(60) {
        return Err(("ledger.signal_max_age".into(), "must be at most 1m".into()));
    }
    if !(std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(86_400)).contains(&l.reseed_interval) {
        return Err(("ledger.reseed_interval".into(), "must be within 1m..24h".into()));
    }
    if !(std::time::Duration::from_secs(3_600)..=std::time::Duration::from_secs(366 * 86_400))
        .contains(&l.conversation_retention)
    {
        return Err(("ledger.conversation_retention".into(), "must be within 1h..366d".into()));
    }
    if !(0.0..=1.0).contains(&l.alert_remaining_fraction) {
        return Err(("ledger.alert_remaining_fraction".into(), "must be within 0..1".into()));
    }
    let t = &l.alerts.thresholds;
    if let Some(bad) = t.iter().find(|f| !(f.is_finite() && **f > 0.0 && **f <= 1.0)) {
        return Err(("ledger.alerts.thresholds".into(), format!("{bad} is not within (0, 1]")));
    }
    if t.windows(2).any(|w| w[0] >= w[1]) {
        return Err(("ledger.alerts.thresholds".into(), "must be ascending without repeats".into()));
    }
    if let Some(w) = &l.alerts.webhook {
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Err((
                "ledger.alerts.webhook.url".into(),
                format!("`{}` must be an http:// or https:// URL", w.url),
            ));
        }
        if w.timeout.is_zero() {
            return Err(("ledger.alerts.webhook.timeout".into(), "must be greater than 0".into()));
        }
    }
    Ok(())
}

/// What is wrong with a tenant name, if anything. Tenants name Redis keys and scope ids
/// (`tenant:conversation`) followed by a caller's id, which may contain `:`; a tenant with
/// `:` could make its keys another tenant's (`a` + `b:c` against `a:b` + `c`).
pub fn tenant_name_problem(tenant: &str) -> Option<&'static str> {
    if tenant.trim().is_empty() {
        return Some("must not be empty");
    }
    if tenant.len() > 128 || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        return Some(
            "must be 1-128 characters of letters, digits and - _ . @ (no `:`, which separates it from ids in keys)",
        );
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod telemetry_tests {
    use crate::config::{Config, DEFAULT_CONFIG_YAML};
    use std::path::Path;

    /// The embedded default with `telemetry.KEY` set to `yaml`, loaded and validated.
    fn with_telemetry(key: &str, yaml: &str) -> crate::Result<Config> {
        let mut v: serde_yaml::Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap();
        v["telemetry"][key] = serde_yaml::from_str(yaml).unwrap();
        Config::from_yaml(&serde_yaml::to_string(&v).unwrap(), Path::new("t.yaml"))
    }

    fn with_files(files: &str) -> crate::Result<Config> {
        with_telemetry("decision_log_files", files)
    }

    fn with_records(records: &str) -> crate::Result<Config> {
        with_telemetry("decision_records", records)
    }

    #[test]
    fn decision_record_retention_has_defaults_and_is_checked() {
        let d = Config::embedded_default().unwrap().telemetry.decision_records;
        assert_eq!((d.ttl, d.stream_max_len), (std::time::Duration::from_secs(7 * 86_400), 100_000));
        let r = with_records("{ttl: 36h, stream_max_len: 0}").unwrap().telemetry.decision_records;
        assert_eq!((r.ttl, r.stream_max_len), (std::time::Duration::from_secs(36 * 3600), 0));
        let err = with_records("{ttl: 10s}").unwrap_err().to_string();
        assert!(err.contains("telemetry.decision_records.ttl") && err.contains("1m..366d"), "{err}");
        let err = with_records("{ttl: 400d}").unwrap_err().to_string();
        assert!(err.contains("telemetry.decision_records.ttl"), "{err}");
        let err = with_records("{stream_max_len: 1000000000}").unwrap_err().to_string();
        assert!(err.contains("telemetry.decision_records.stream_max_len"), "{err}");
        let err = with_records("{max_len: 5}").unwrap_err().to_string();
        assert!(err.contains("max_len"), "{err}");
    }

    #[test]
    fn decision_log_files_parse_with_defaults_and_are_checked() {
        let cfg = with_files("{dir: /var/log/triage}").unwrap();
        let f = cfg.telemetry.decision_log_files.unwrap();
        assert_eq!((f.max_file_bytes, f.max_files, f.queue), (64 * 1024 * 1024, 10, 4096));
        assert!(Config::embedded_default().unwrap().telemetry.decision_log_files.is_none());
        let err = with_files("{dir: /x, max_files: 0}").unwrap_err().to_string();
        assert!(err.contains("telemetry.decision_log_files.max_files"), "{err}");
        let err = with_files("{dir: /x, max_file_bytes: 10}").unwrap_err().to_string();
        assert!(err.contains("telemetry.decision_log_files.max_file_bytes"), "{err}");
        let err = with_files("{dir: /x, rotate: daily}").unwrap_err().to_string();
        assert!(err.contains("rotate"), "{err}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod ledger_alerts_tests {
    use crate::config::{Config, DEFAULT_CONFIG_YAML};
    use std::path::Path;

    fn with_alerts(alerts: &str) -> crate::Result<Config> {
        let mut v: serde_yaml::Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap();
        v["ledger"]["alerts"] = serde_yaml::from_str(alerts).unwrap();
        Config::from_yaml(&serde_yaml::to_string(&v).unwrap(), Path::new("t.yaml"))
    }

    #[test]
    fn alert_thresholds_and_webhook_parse_with_defaults_and_are_checked() {
        assert_eq!(Config::embedded_default().unwrap().ledger.alerts.thresholds, vec![0.5, 0.8, 1.0]);
        let cfg = with_alerts("{thresholds: [0.9], webhook: {url: 'https://hooks.example/x'}}").unwrap();
        let w = cfg.ledger.alerts.webhook.unwrap();
        assert_eq!((w.url.as_str(), w.timeout.as_secs()), ("https://hooks.example/x", 5));
        for (bad, field) in [
            ("{thresholds: [0.5, 1.5]}", "ledger.alerts.thresholds"),
            ("{thresholds: [0]}", "ledger.alerts.thresholds"),
            ("{thresholds: [0.8, 0.5]}", "ledger.alerts.thresholds"),
            ("{thresholds: [0.5, 0.5]}", "ledger.alerts.thresholds"),
            ("{webhook: {url: 'ftp://x'}}", "ledger.alerts.webhook.url"),
            ("{webhook: {url: 'http://x', timeout: 0s}}", "ledger.alerts.webhook.timeout"),
            ("{webhook: {url: 'http://x', retries: 3}}", "retries"),
            ("{threshold: [0.5]}", "threshold"),
        ] {
            let err = with_alerts(bad).unwrap_err().to_string();
            assert!(err.contains(field), "{bad}: {err}");
        }
    }

    /// The embedded default with `ledger.<key>` set to `value` (YAML).
    fn with_ledger(key: &str, value: &str) -> crate::Result<Config> {
        let mut v: serde_yaml::Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap();
        v["ledger"][key] = serde_yaml::from_str(value).unwrap();
        Config::from_yaml(&serde_yaml::to_string(&v).unwrap(), Path::new("t.yaml"))
    }

    #[test]
    fn signal_max_age_defaults_to_250ms_and_is_bounded() {
        assert_eq!(Config::embedded_default().unwrap().ledger.signal_max_age.as_millis(), 250);
        let with = |age: &str| with_ledger("signal_max_age", age);
        assert_eq!(with("1s").unwrap().ledger.signal_max_age.as_secs(), 1);
        assert!(with("0s").unwrap().ledger.signal_max_age.is_zero(), "0 disables the cache");
        assert!(with("2m").unwrap_err().to_string().contains("ledger.signal_max_age"));
        assert!(with("fast").is_err());
    }

    #[test]
    fn conversation_retention_defaults_to_90d_and_is_bounded() {
        let days = |c: Config| c.ledger.conversation_retention.as_secs() / 86_400;
        assert_eq!(days(Config::embedded_default().unwrap()), 90);
        assert_eq!(days(with_ledger("conversation_retention", "7d").unwrap()), 7);
        for bad in ["10m", "400d"] {
            let err = with_ledger("conversation_retention", bad).unwrap_err().to_string();
            assert!(err.contains("ledger.conversation_retention"), "{bad}: {err}");
        }
    }

    #[test]
    fn reseed_interval_defaults_to_10m_and_is_bounded() {
        assert_eq!(Config::embedded_default().unwrap().ledger.reseed_interval.as_secs(), 600);
        assert_eq!(with_ledger("reseed_interval", "1h").unwrap().ledger.reseed_interval.as_secs(), 3_600);
        for bad in ["30s", "2d"] {
            let err = with_ledger("reseed_interval", bad).unwrap_err().to_string();
            assert!(err.contains("ledger.reseed_interval"), "{bad}: {err}");
        }
    }
}

use super::*;
use std::path::Path;

fn load(yaml: &str) -> Result<Config> {
    Config::from_yaml(yaml, Path::new("test.yaml"))
}

fn with_default(patch: impl FnOnce(&mut serde_yaml::Value)) -> String {
    let mut v: serde_yaml::Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap();
    patch(&mut v);
    serde_yaml::to_string(&v).unwrap()
}

#[test]
fn embedded_default_is_valid() {
    let cfg = Config::embedded_default().unwrap();
    assert_eq!(cfg.tiers.fast, "local-smollm2");
    let cat = crate::Catalog::from_config(&cfg);
    assert_eq!(cat.get("claude-sonnet").unwrap().tier, crate::Tier::Frontier);
}

#[test]
fn unknown_key_names_file_and_path() {
    let y = with_default(|v| {
        v["models"]["claude-sonnet"]["colour"] = "blue".into();
    });
    let err = load(&y).unwrap_err().to_string();
    assert!(err.starts_with("test.yaml:"), "{err}");
    assert!(err.contains("models.claude-sonnet"), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn bad_value_is_rejected_with_reason() {
    let y = with_default(|v| {
        v["models"]["claude-sonnet"]["fallbacks"] = serde_yaml::from_str("[nowhere]").unwrap();
    });
    let err = load(&y).unwrap_err().to_string();
    assert_eq!(err, "test.yaml: models.claude-sonnet.fallbacks[0]: unknown model `nowhere`");
}

#[test]
fn fallback_cycle_is_rejected() {
    let y = with_default(|v| {
        v["models"]["local-smollm2"]["fallbacks"] = serde_yaml::from_str("[claude-sonnet]").unwrap();
    });
    let err = load(&y).unwrap_err().to_string();
    assert!(err.contains("fallback cycle"), "{err}");
}

#[test]
fn wrong_tier_default_is_rejected() {
    let y = with_default(|v| {
        v["tiers"]["fast"] = "claude-sonnet".into();
    });
    let err = load(&y).unwrap_err().to_string();
    assert!(err.contains("tiers.fast"), "{err}");
}

#[test]
fn inline_secret_is_not_accepted() {
    let y = with_default(|v| {
        v["models"]["claude-sonnet"]["provider"]["api_key"] = serde_yaml::from_str("{value: sk-123}").unwrap();
    });
    let err = load(&y).unwrap_err().to_string();
    assert!(err.contains("unknown field `value`"), "{err}");
}

#[test]
fn bad_duration_and_listen_address() {
    let y = with_default(|v| {
        v["server"] = serde_yaml::from_str("{grace_period: soon}").unwrap();
    });
    assert!(load(&y).unwrap_err().to_string().contains("server.grace_period"));
    let y = with_default(|v| {
        v["services"] = serde_yaml::from_str("{ledger: {listen: 'nowhere', connect: 'http://x:1'}}").unwrap();
    });
    let err = load(&y).unwrap_err().to_string();
    assert!(err.contains("services.ledger.listen"), "{err}");
}

#[test]
fn missing_file_names_it() {
    let err = Config::load(Path::new("/nonexistent/triage.yaml")).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/triage.yaml: cannot read"), "{err}");
}

#[test]
fn auth_and_http_keys_are_checked() {
    let ok = with_default(|v| {
        v["auth"] = serde_yaml::from_str(&format!(
            "{{keys: [{{sha256: '{}', tenant: acme, revoked: true}}], rate_limits: {{tenants: {{acme: {{requests_per_minute: 5}}}}}}}}",
            "a".repeat(64)
        ))
        .unwrap();
        v["server"] = serde_yaml::from_str("{http_listen: '0.0.0.0:8443', tls: {cert: c.pem, key: k.pem}}").unwrap();
    });
    let cfg = load(&ok).unwrap();
    assert_eq!(cfg.auth.rate_limits.tenants["acme"].requests_per_minute, 5);
    for (patch, expected) in [
        ("{keys: [{sha256: not-hex, tenant: acme}]}", "auth.keys[0].sha256"),
        ("{keys: [{sha256: 'AA', tenant: acme}]}", "auth.keys[0].sha256"),
        // `a` + id `b:c` and `a:b` + id `c` would name the same keys.
        (&*format!("{{keys: [{{sha256: '{}', tenant: 'a:b'}}]}}", "a".repeat(64)), "auth.keys[0].tenant"),
        ("{keys: [], colour: blue}", "colour"),
    ] {
        let y = with_default(|v| v["auth"] = serde_yaml::from_str(patch).unwrap());
        let err = load(&y).unwrap_err().to_string();
        assert!(err.contains(expected), "{patch}: {err}");
    }
    let y = with_default(|v| v["server"] = serde_yaml::from_str("{http_listen: 'nowhere'}").unwrap());
    assert!(load(&y).unwrap_err().to_string().contains("server.http_listen"));
    for patch in ["{health_listen: 'nowhere'}", "{http_listen: '0.0.0.0:9000', health_listen: '0.0.0.0:9000'}"] {
        let y = with_default(|v| v["server"] = serde_yaml::from_str(patch).unwrap());
        assert!(load(&y).unwrap_err().to_string().contains("server.health_listen"), "{patch}");
    }
    let y = with_default(|v| v["server"] = serde_yaml::from_str("{health_listen: '0.0.0.0:8086'}").unwrap());
    assert_eq!(load(&y).unwrap().server.health_listen.as_deref(), Some("0.0.0.0:8086"));
    let y = with_default(|v| v["server"] = serde_yaml::from_str("{default_tenant: 'x y'}").unwrap());
    assert!(load(&y).unwrap_err().to_string().contains("server.default_tenant"));
}

#[test]
fn classifier_cache_local_entries_defaults_and_is_bounded() {
    assert_eq!(Config::embedded_default().unwrap().classifier.cache.local_entries, 10_000);
    let with = |n: u64| {
        with_default(|v| v["classifier"]["cache"] = serde_yaml::from_str(&format!("{{local_entries: {n}}}")).unwrap())
    };
    assert_eq!(load(&with(0)).unwrap().classifier.cache.local_entries, 0);
    assert_eq!(load(&with(1_000_000)).unwrap().classifier.cache.local_entries, 1_000_000);
    let err = load(&with(1_000_001)).unwrap_err().to_string();
    assert!(err.contains("classifier.cache.local_entries"), "{err}");
}

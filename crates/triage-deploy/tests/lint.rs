//! `helm lint --strict` and `kubernetes-validate --strict` of the chart with its default values
//! and every alternative values file, plus the render-time checks (schema, grace period).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

use std::path::Path;
use triage_deploy::{Rendered, chart_dir, chart_min_kube_version, helm, run, tool, values_files};

/// Kinds whose schema is a CRD (not in kubernetes-validate): warnings about them are expected.
const CRD_KINDS: [&str; 1] = ["ServiceMonitor"];

/// The newest version the pinned kubernetes-validate (scripts/setup.sh) has schemas for.
const NEWEST_KUBE: &str = "1.37.0";

fn lint(values: Option<&Path>) {
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let mut args = vec!["lint", "--strict", chart];
    let v;
    if let Some(p) = values {
        v = p.to_str().unwrap().to_string();
        args.push("-f");
        args.push(&v);
    }
    let out = helm(&args).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("0 chart(s) failed"), "helm lint {values:?}:\n{out}");
}

fn validate(values: Option<&Path>) {
    let rendered = Rendered::render(values.as_slice(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let kv = tool("kubernetes-validate").unwrap_or_else(|e| panic!("{e}"));
    let min = chart_min_kube_version().unwrap();
    for version in [min.as_str(), NEWEST_KUBE] {
        let out = run(&kv, &["--strict", "--quiet", "--kubernetes-version", version, "-"], Some(&rendered.text))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.ok, "kubernetes-validate {version} with {values:?}:\n{}{}", out.stdout, out.stderr);
        // An unknown kind is only a warning there; only the CRD kinds may be unknown.
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            if line.starts_with("WARN") {
                assert!(
                    CRD_KINDS.iter().any(|k| line.contains(&format!("kind {k} "))),
                    "kubernetes-validate {version} with {values:?}: {line}"
                );
            }
        }
    }
}

#[test]
fn lint_default_values() {
    lint(None);
}

#[test]
fn lint_every_values_file() {
    let files = values_files().unwrap();
    assert!(files.len() >= 4, "expected values-oke.yaml and the ci/ files, got {files:?}");
    for f in &files {
        assert!(f.is_file(), "{} missing", f.display());
        lint(Some(f));
    }
}

#[test]
fn default_values_validate_against_kubernetes_schemas() {
    validate(None);
}

#[test]
fn every_values_file_validates_against_kubernetes_schemas() {
    for f in values_files().unwrap() {
        validate(Some(&f));
    }
}

#[test]
fn the_chart_supports_kubernetes_1_29_and_later() {
    assert_eq!(chart_min_kube_version().unwrap(), "1.29.0");
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    helm(&["template", "triage", chart, "--kube-version", "1.29.0"]).unwrap();
    let err = helm(&["template", "triage", chart, "--kube-version", "1.28.9"]).expect_err("1.28 accepted");
    assert!(err.contains("kubeVersion") || err.contains("incompatible"), "{err}");
}

#[test]
fn setup_installs_real_helm_and_kubectl() {
    let helm_version = helm(&["version", "--template", "{{.Version}}"]).unwrap();
    assert!(helm_version.starts_with("v3.") || helm_version.starts_with("v4."), "helm {helm_version}");
    let kubectl = tool("kubectl").unwrap();
    let out = run(&kubectl, &["version", "--client", "-o", "json"], None).unwrap();
    assert!(out.ok && out.stdout.contains("gitVersion"), "kubectl: {}{}", out.stdout, out.stderr);
}

#[test]
fn values_schema_rejects_unknown_keys() {
    for bad in ["bogus=1", "components.gateway.bogus=1", "redis.persistence.bogus=1", "tls.server.bogus=true"] {
        let err = Rendered::render(&[], &[bad]).expect_err(bad);
        assert!(err.contains("additional properties"), "{bad}: {err}");
    }
}

#[test]
fn a_grace_period_shorter_than_the_drain_is_refused() {
    // preStop 5 s + drain_delay 2 s + grace_period 20 s = 27 s: 27 is not enough.
    let err = Rendered::render(&[], &["shutdown.terminationGracePeriodSeconds=27"]).expect_err("27 s accepted");
    assert!(err.contains("must exceed"), "{err}");
    Rendered::render(&[], &["shutdown.terminationGracePeriodSeconds=28"]).unwrap();
}

#[test]
fn chart_owned_config_keys_are_refused_in_values() {
    for (set, key) in [
        ("config.redis.url=redis://x:6379", "config.redis"),
        ("config.server.http_listen=0.0.0.0:1", "config.server.http_listen"),
        ("config.policy.file=/x", "config.policy.file"),
    ] {
        let err = Rendered::render(&[], &[set]).expect_err(set);
        assert!(err.contains(key), "{set}: {err}");
    }
}

#[test]
fn tls_without_a_secret_is_refused() {
    let err = Rendered::render(&[], &["tls.server.enabled=true"]).expect_err("TLS without a Secret");
    assert!(err.contains("tls.existingSecret"), "{err}");
}

#[test]
fn external_redis_needs_a_url() {
    let err = Rendered::render(&[], &["redis.enabled=false"]).expect_err("no redis");
    assert!(err.contains("redis.external"), "{err}");
}

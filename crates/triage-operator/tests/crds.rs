//! The committed CRDs match the Rust types, and the example resources pass the CRDs' schema
//! and CEL rules (evaluated here with cel-interpreter, as the apiserver would), while one
//! broken example per rule is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cel_interpreter::{Context, Program, Value as Cel};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    triage_testkit::repo_root()
}

#[test]
fn committed_crds_match_the_rust_types() {
    let update = std::env::var_os("TRIAGE_UPDATE_CRDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for crd in triage_operator::crds() {
        let (name, want) = triage_operator::crd_file(&crd).unwrap();
        let file = repo().join("helm/triage/crds").join(name);
        if update {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &want).unwrap();
            continue;
        }
        if std::fs::read_to_string(&file).ok().as_deref() != Some(want.as_str()) {
            stale.push(file.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "CRDs out of date with crates/triage-operator/src/crd.rs: {}\n\
         regenerate with: TRIAGE_UPDATE_CRDS=1 cargo test -p triage-operator --test crds",
        stale.join(", ")
    );
}

#[test]
fn crds_yaml_is_one_stream_of_both() {
    let y = triage_operator::crds_yaml().unwrap();
    assert_eq!(y.matches("kind: CustomResourceDefinition").count(), 2);
    assert!(y.contains("llmmodels.triage.dev") && y.contains("routingpolicies.triage.dev"));
}

fn crd(kind: &str) -> CustomResourceDefinition {
    triage_operator::crds().into_iter().find(|c| c.spec.names.kind == kind).unwrap()
}

fn schema(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// `nullable` is OpenAPI, not JSON Schema: rewritten so draft 4 understands optional nulls.
fn json_schema(mut s: Value) -> Value {
    fn walk(v: &mut Value) {
        if let Value::Object(m) = v {
            if m.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = m.get("type").cloned()
            {
                m.insert("type".into(), json!([t, "null"]));
            }
            m.values_mut().for_each(walk);
        } else if let Value::Array(a) = v {
            a.iter_mut().for_each(walk);
        }
    }
    walk(&mut s);
    s
}

fn schema_errors(kind: &str, obj: &Value) -> Vec<String> {
    let v = jsonschema::draft4::new(&json_schema(schema(&crd(kind)))).unwrap();
    v.iter_errors(obj).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Every `x-kubernetes-validations` rule on the path the object takes through the schema,
/// with `self` bound to the value at that node. A rule that does not compile fails the test.
fn cel_failures(kind: &str, obj: &Value) -> Vec<String> {
    fn walk(schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
            for r in rules {
                let rule = r["rule"].as_str().unwrap();
                let program = Program::compile(rule).unwrap_or_else(|e| panic!("rule `{rule}` does not compile: {e}"));
                let mut ctx = Context::default();
                ctx.add_variable("self", v.clone()).unwrap();
                match program.execute(&ctx) {
                    Ok(Cel::Bool(true)) => {}
                    Ok(Cel::Bool(false)) => out.push(format!("{at}: {}", r["message"].as_str().unwrap_or(rule))),
                    other => out.push(format!("{at}: rule `{rule}` did not give a bool: {other:?}")),
                }
            }
        }
        if let (Some(props), Value::Object(m)) = (schema.get("properties").and_then(Value::as_object), v) {
            for (k, sv) in props {
                if let Some(child) = m.get(k) {
                    walk(sv, child, &format!("{at}.{k}"), out);
                }
            }
        }
        if let (Some(items), Value::Array(a)) = (schema.get("items"), v) {
            for (i, child) in a.iter().enumerate() {
                walk(items, child, &format!("{at}[{i}]"), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&schema(&crd(kind)), obj, "", &mut out);
    out
}

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/examples").join(name)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn examples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(repo().join("deploy/examples")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("llmmodel-") || name == "routingpolicy.yaml" {
            out.push((name.clone(), example(&name)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn examples_pass_schema_cel_and_deserialize() {
    let all = examples();
    assert!(all.len() >= 4, "{all:?}");
    for (name, obj) in &all {
        let kind = obj["kind"].as_str().unwrap();
        assert_eq!(schema_errors(kind, obj), Vec::<String>::new(), "{name}");
        assert_eq!(cel_failures(kind, obj), Vec::<String>::new(), "{name}");
        match kind {
            "LlmModel" => {
                let m: triage_operator::LlmModel = serde_json::from_value(obj.clone()).unwrap();
                triage_operator::convert::to_model_config(&m.spec, None).unwrap();
            }
            "RoutingPolicy" => {
                let p: triage_operator::RoutingPolicy = serde_json::from_value(obj.clone()).unwrap();
                let yaml = triage_operator::convert::policy_yaml(&p.spec).unwrap();
                let cfg = triage_core::Config::embedded_default().unwrap();
                triage_policy::validate_policy(&cfg, &yaml, Path::new(name)).unwrap();
            }
            other => panic!("{name}: unexpected kind {other}"),
        }
    }
}

/// Sets `pointer` in a copy of `obj` (`None` removes it).
fn with(obj: &Value, pointer: &str, v: Option<Value>) -> Value {
    let mut o = obj.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let p = o.pointer_mut(parent).unwrap();
    match (p, v) {
        (Value::Object(m), Some(v)) => {
            m.insert(key.into(), v);
        }
        (Value::Object(m), None) => {
            m.remove(key);
        }
        (Value::Array(a), Some(v)) => a[key.parse::<usize>().unwrap()] = v,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("{pointer}"),
    }
    o
}

#[test]
fn one_broken_example_per_rule_is_refused() {
    let groq = example("llmmodel-groq-llama-70b.yaml");
    let local = example("llmmodel-local-smollm2.yaml");
    let claude = example("llmmodel-claude-sonnet.yaml");
    let deprecated = example("llmmodel-openai-gpt-4o-mini-deprecated.yaml");
    let policy = example("routingpolicy.yaml");
    let last = policy["spec"]["rules"].as_array().unwrap().len() - 1;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("LlmModel", with(&groq, "/spec/fallbacks", Some(json!(["groq-llama-70b"]))), "cannot fall back to itself"),
        (
            "LlmModel",
            with(&deprecated, "/spec/lifecycle/replacement", Some(json!("openai-gpt-4o-mini"))),
            "cannot replace itself",
        ),
        ("LlmModel", with(&groq, "/spec/version", Some(json!("  "))), "a pinned version is required"),
        ("LlmModel", with(&groq, "/spec/canaryWeight", Some(json!(150))), "canaryWeight is a percent"),
        ("LlmModel", with(&groq, "/spec/drainDeadline", Some(json!("soon"))), "drainDeadline is a duration"),
        ("LlmModel", with(&groq, "/spec/provider/modelId", None), "needs modelId"),
        ("LlmModel", with(&groq, "/spec/provider/baseUrl", Some(json!("api.groq.com"))), "http(s) baseUrl"),
        ("LlmModel", with(&claude, "/spec/provider/apiKey", None), "anthropic provider needs apiKey"),
        ("LlmModel", with(&local, "/spec/provider/gguf", None), "local provider needs gguf"),
        (
            "LlmModel",
            with(&local, "/spec/provider", Some(json!({"kind": "mistralrs"}))),
            "mistralrs provider needs modelPath",
        ),
        ("LlmModel", with(&groq, "/spec/provider/apiKey", Some(json!({}))), "keys are never inline"),
        ("LlmModel", with(&deprecated, "/spec/lifecycle/replacement", None), "needs a replacement"),
        (
            "LlmModel",
            with(&groq, "/spec/lifecycle", Some(json!({"state": "active", "replacement": "x"}))),
            "takes no replacement",
        ),
        ("RoutingPolicy", with(&policy, &format!("/spec/rules/{last}"), None), "the last rule must be `default`"),
        ("RoutingPolicy", with(&policy, "/spec/version", Some(json!(2))), "version must be 1"),
        (
            "RoutingPolicy",
            with(&policy, "/spec/rules/0/model", Some(json!("local-smollm2"))),
            "set model or tier, not both",
        ),
    ];
    for (kind, obj, want) in &cases {
        let fails = cel_failures(kind, obj);
        assert!(fails.iter().any(|f| f.contains(want)), "expected a `{want}` failure, got {fails:?}");
    }
    // What the schema alone refuses.
    let schema_cases: Vec<(&str, Value, &str)> = vec![
        ("LlmModel", with(&groq, "/spec/tier", Some(json!("huge"))), "/spec/tier"),
        ("LlmModel", with(&groq, "/spec/canaryWeight", Some(json!(101))), "/spec/canaryWeight"),
        ("LlmModel", with(&groq, "/spec/price/inputPerMtok", Some(json!(-1))), "/spec/price/inputPerMtok"),
        ("LlmModel", with(&groq, "/spec/provider/kind", Some(json!("bedrock"))), "/spec/provider/kind"),
        ("LlmModel", with(&groq, "/spec/contextWindow", None), "contextWindow"),
        ("RoutingPolicy", with(&policy, "/spec/rules/0/tier", Some(json!("premium"))), "/spec/rules/0/tier"),
    ];
    for (kind, obj, want) in &schema_cases {
        let errs = schema_errors(kind, obj);
        assert!(errs.iter().any(|e| e.contains(want)), "expected a schema error at `{want}`, got {errs:?}");
    }
}

#[test]
fn printer_columns_and_short_names() {
    let m = crd("LlmModel");
    assert_eq!(m.spec.names.short_names.as_deref(), Some(&["llm".to_string()][..]));
    assert_eq!(crd("RoutingPolicy").spec.names.short_names.as_deref(), Some(&["rp".to_string()][..]));
    let cols: Vec<String> = m.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.to_uppercase())
        .collect();
    assert_eq!(cols, ["TIER", "VERSION", "STATE", "ACCEPTED", "AGE"]);
    assert!(m.spec.versions[0].subresources.as_ref().unwrap().status.is_some());
}

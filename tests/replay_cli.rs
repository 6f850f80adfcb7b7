//! `triage replay` end to end: the real binary on JSONL logs, with the keyword classifier so
//! no model files are needed, and on pre-classified lines where every decision is known.

// The whole file is test code; its helpers outside `#[test]` fns panic on setup failure
// by design.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    triage_testkit::repo_root()
}

/// The default config with the heuristic classifier, written into `dir`.
fn heuristic_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("config/triage.yaml")).unwrap();
    let mut cfg: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    cfg["classifier"] = serde_yaml::from_str("{kind: heuristic}").unwrap();
    let path = dir.join("triage.yaml");
    std::fs::write(&path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    path
}

fn triage(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
    cmd.args(args).current_dir(repo()).env_remove("TRIAGE_CONFIG").env_remove("TRIAGE_HOME");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "exactly one JSON object: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn sample_log_replays_with_the_heuristic_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = heuristic_config(dir.path());
    let v = ok_json(&triage(&["replay", "--input", "crates/triage/replay/sample.jsonl", "--json"], Some(&cfg)));
    let queries = v["queries"].as_array().unwrap();
    assert!(queries.len() >= 250, "{}", queries.len());
    for q in queries {
        for k in ["id", "model", "tier", "rule"] {
            assert!(q[k].as_str().is_some_and(|s| !s.is_empty()), "{q}");
        }
    }
    let shares = v["share_by_tier"].as_object().unwrap();
    let keys: Vec<&str> = shares.keys().map(String::as_str).collect();
    assert_eq!(keys, ["fast", "frontier", "middle"]);
    let sum: f64 = shares.values().map(|s| s.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    let ratio = v["cost_vs_all_frontier"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    assert!(v["cost_per_1k_usd"].as_f64().unwrap() > 0.0);
    // The sample's long fast-tier chat is handed to frontier, among other escalations.
    assert!(v["escalation_rate"].as_f64().unwrap() > 0.0);
    assert!(queries.iter().any(|q| q["rule"] == "fast_conversation_handoff"));

    let out = triage(&["replay", "--input", "crates/triage/replay/sample.jsonl"], Some(&cfg));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["fast", "middle", "frontier", "cost per 1,000 queries", "cost vs all-frontier", "escalation rate"] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

const CLASSIFIED: &str = r#"{"id": "a", "query": "opening hours?", "complexity": "simple", "category": "transactional", "confidence": 0.95, "language": "en", "tokens_in": 300, "tokens_out": 100}
{"id": "b", "query": "review this contract", "complexity": "complex", "category": "analytical", "confidence": 0.9, "tokens_in": 300, "tokens_out": 100}
{"id": "c", "query": "explain the plans", "complexity": "moderate", "category": "analytical", "confidence": 0.8, "tokens_in": 300, "tokens_out": 100}
{"id": "d", "query": "is this legal?", "complexity": "simple", "confidence": 0.85, "label": "complex", "tokens_in": 300, "tokens_out": 100}
{"id": "t1", "conversation_id": "c", "query": "where is my order?", "complexity": "simple", "confidence": 0.99}
{"id": "t2", "conversation_id": "c", "query": "change address", "complexity": "simple", "confidence": 0.99}
{"id": "t3", "conversation_id": "c", "query": "and the phone", "complexity": "simple", "confidence": 0.99}
{"id": "t4", "conversation_id": "c", "query": "gift wrap", "complexity": "simple", "confidence": 0.99}
{"id": "t5", "conversation_id": "c", "query": "date?", "complexity": "simple", "confidence": 0.99}
{"id": "t6", "conversation_id": "c", "query": "thanks", "complexity": "simple", "confidence": 0.99}
{"id": "t7", "conversation_id": "c", "query": "one more thing", "complexity": "simple", "confidence": 0.99}
"#;

fn classified_log(dir: &Path) -> PathBuf {
    let p = dir.join("classified.jsonl");
    std::fs::write(&p, CLASSIFIED).unwrap();
    p
}

#[test]
fn pre_classified_lines_are_decided_as_the_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let log = classified_log(dir.path());
    // No --config: the embedded default; no line needs the classifier.
    let v = ok_json(&triage(&["replay", "--input", log.to_str().unwrap(), "--json"], None));
    let got: Vec<(String, String, String)> = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (q["id"].as_str().unwrap().into(), q["tier"].as_str().unwrap().into(), q["rule"].as_str().unwrap().into())
        })
        .collect();
    let want = [
        ("a", "fast", "simple_confident"),
        ("b", "frontier", "complex_frontier"),
        ("c", "middle", "default"),
        ("d", "middle", "default"),
        ("t1", "fast", "simple_confident"),
        ("t6", "fast", "simple_confident"),
        // 12 messages on the fast tier: handed to frontier (the one escalation).
        ("t7", "frontier", "fast_conversation_handoff"),
    ];
    for (id, tier, rule) in want {
        let q = got.iter().find(|g| g.0 == id).unwrap();
        assert_eq!((q.1.as_str(), q.2.as_str()), (tier, rule), "{id}");
    }
    let esc = v["escalation_rate"].as_f64().unwrap();
    assert!((esc - 1.0 / 11.0).abs() < 1e-3, "{esc}");
    let share = &v["share_by_tier"];
    assert!((share["fast"].as_f64().unwrap() - 7.0 / 11.0).abs() < 1e-3, "{share}");
}

#[test]
fn sweep_prints_a_table_and_draws_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let log = classified_log(dir.path());
    let svg = dir.path().join("sweep.svg");
    let out = triage(
        &[
            "replay",
            "--input",
            log.to_str().unwrap(),
            "--sweep",
            "confidence=0.8:0.9:0.05",
            "--plot",
            svg.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for t in ["0.800", "0.850", "0.900"] {
        assert!(text.contains(t), "{t} missing from\n{text}");
    }
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("cost vs all-frontier"));

    let v = ok_json(&triage(
        &["replay", "--input", log.to_str().unwrap(), "--sweep", "confidence=0.8:0.9:0.05", "--json"],
        None,
    ));
    let points = v["sweep"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    // At 0.8 the mislabelled "is this legal?" (simple, 0.85; truly complex) goes fast; at
    // 0.85 and above it does not: the gate trades cost for keeping complex queries off fast.
    assert_eq!(points[0]["complex_kept_off_fast"].as_f64(), Some(0.5));
    assert_eq!(points[2]["complex_kept_off_fast"].as_f64(), Some(1.0));
    assert!(points[0]["cost_vs_all_frontier"].as_f64() <= points[2]["cost_vs_all_frontier"].as_f64());
}

#[test]
fn bad_input_names_the_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(&p, "{\"query\": \"ok\", \"complexity\": \"simple\"}\n{\"id\": 2}\n").unwrap();
    let out = triage(&["replay", "--input", p.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:2"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = triage(&["replay", "--input", p.to_str().unwrap(), "--sweep", "confidence=0.9:0.5:0.1"], None);
    assert!(!out.status.success());
}

/// `triage policy test`: the shipped cases pass (exit 0); a wrong expectation fails with a
/// readable diff and a non-zero exit.
#[test]
fn policy_test_passes_shipped_cases_and_diffs_a_mismatch() {
    let ok = triage(&["policy", "test", "config/policy.yaml", "config/policy-cases.yaml"], None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(" 0 failed"));

    let dir = tempfile::tempdir().unwrap();
    let cases = std::fs::read_to_string(repo().join("config/policy-cases.yaml")).unwrap();
    let mut v: serde_yaml::Value = serde_yaml::from_str(&cases).unwrap();
    let first = &mut v["cases"][0]["expect"];
    let wrong = if first["rule"].as_str() == Some("default") { "complex_frontier" } else { "default" };
    first["rule"] = wrong.into();
    let path = dir.path().join("cases.yaml");
    std::fs::write(&path, serde_yaml::to_string(&v).unwrap()).unwrap();
    let bad = triage(&["policy", "test", "config/policy.yaml", path.to_str().unwrap()], None);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("FAIL") && out.contains(wrong), "{out}");
}

/// `triage classify`: one stable JSON line per input line, in order; extra fields ignored.
#[test]
fn classify_writes_stable_labels_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = heuristic_config(dir.path());
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id": "a", "query": "where is my order 1234?", "extra": 1}"#,
            "\n",
            r#"{"id": "b", "query": "and the red one?", "history": [{"role": "user", "content": "is the blue jacket in stock?"}, {"role": "assistant", "content": "Yes."}]}"#,
            "\n",
            r#"{"id": "c", "query": "Review clause 14 against the indemnity in clause 9 and draft our legal position on the $900 refund."}"#,
            "\n"
        ),
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let out =
        triage(&["classify", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()], Some(&config));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["id"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "id",
            "complexity",
            "category",
            "requires_context",
            "confidence",
            "language",
            "latency_us",
            "model_version",
        ] {
            assert!(keys.contains(&k), "{k} missing in {l}");
        }
        assert_eq!(l["model_version"], "heuristic-v1");
    }
    assert_eq!(lines[0]["complexity"], "simple");
    assert_eq!(lines[2]["complexity"], "complex");
}

/// Decision records as the log exports them: the model that answered, and feedback that
/// arrived later (a second record of the same request id replaces the first).
const WITH_FEEDBACK: &str = r#"{"request_id": "r1", "turn": "where is my order?", "model": "local-smollm2"}
{"request_id": "r1", "turn": "where is my order?", "model": "local-smollm2", "feedback": {"request_id": "r1", "resolved": true, "satisfaction": 9}}
{"request_id": "r2", "turn": "cancel my plan", "model": "local-smollm2", "feedback": {"request_id": "r2", "resolved": false, "escalated_to_human": true, "satisfaction": 3}}
{"request_id": "r3", "turn": "review this contract for liability risks", "model": "claude-sonnet", "feedback": {"request_id": "r3", "resolved": true, "satisfaction": 8}}
{"request_id": "r4", "turn": "and the delivery date?", "model": "claude-sonnet"}
"#;

#[test]
fn feedback_in_the_log_is_reported_per_answering_model() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = heuristic_config(dir.path());
    let log = dir.path().join("decisions.jsonl");
    std::fs::write(&log, WITH_FEEDBACK).unwrap();
    let v = ok_json(&triage(&["replay", "--input", log.to_str().unwrap(), "--json"], Some(&cfg)));
    assert_eq!(v["queries"].as_array().unwrap().len(), 4, "r1's second record replaces its first");
    let fb = &v["feedback_by_model"];
    let fast = &fb["local-smollm2"];
    assert_eq!((fast["answers"].as_u64(), fast["with_feedback"].as_u64()), (Some(2), Some(2)), "{fb}");
    assert_eq!(fast["resolution_rate"].as_f64(), Some(0.5), "{fb}");
    assert_eq!(fast["escalated_to_human_rate"].as_f64(), Some(0.5), "{fb}");
    assert_eq!(fast["satisfaction_mean"].as_f64(), Some(6.0), "{fb}");
    let frontier = &fb["claude-sonnet"];
    assert_eq!((frontier["answers"].as_u64(), frontier["with_feedback"].as_u64()), (Some(2), Some(1)), "{fb}");
    assert_eq!(frontier["resolution_rate"].as_f64(), Some(1.0), "{fb}");

    let out = triage(&["replay", "--input", log.to_str().unwrap()], Some(&cfg));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, section) = text.split_once("feedback by answering model").unwrap_or_else(|| panic!("{text}"));
    let row = section.lines().find(|l| l.starts_with("local-smollm2")).unwrap();
    assert!(row.contains("50.0%") && row.contains("6.00"), "{row}");
}

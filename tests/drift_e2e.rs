//! `triage drift` end to end: the real binary against two fake OpenAI-compatible providers
//! (real HTTP). The first run writes the baselines; an unchanged rerun is stable; when one
//! provider's answers turn into refusals that model moves and the exit status is 3;
//! `drift report` shows the last run; `--accept` makes the new answers the baseline.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use triage_core::config::{ProviderConfig, SecretRef};
use triage_testkit::{FakeOpenAi, Reply};

fn repo() -> PathBuf {
    triage_testkit::repo_root()
}

fn triage(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(repo())
        .env("TRIAGE_HOME", repo())
        .env_remove("TRIAGE_CONFIG")
        .env_remove("TRIAGE_REDIS_URL")
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)))
}

fn model<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["models"].as_array().unwrap().iter().find(|m| m["model"] == name).unwrap()
}

const SUITE: &str = r#"queries:
  - {id: order, query: "Where is my order 1234?"}
  - {id: hours, query: "What are your opening hours?"}
  - {id: refund, query: "¿Puedo devolver un producto usado?"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_whose_answers_changed_is_reported_and_fails_the_run() {
    let changing = FakeOpenAi::start().await.unwrap();
    let steady = FakeOpenAi::start().await.unwrap();
    let answer = "Your order shipped yesterday and should arrive on Friday; you will get a tracking email.";
    for f in [&changing, &steady] {
        f.set_reply(Reply { text: answer.into(), ..Reply::default() });
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    let mut config = triage_core::Config::embedded_default().unwrap();
    for (name, m) in config.models.iter_mut() {
        if matches!(m.provider, ProviderConfig::Local { .. }) {
            continue;
        }
        let fake = if name == "groq-llama-70b" { &changing } else { &steady };
        m.provider = ProviderConfig::Openai {
            base_url: fake.base_url(),
            model_id: name.clone(),
            api_key: Some(SecretRef { env: None, file: Some(key.clone()) }),
        };
    }
    // Written as YAML the way an operator would.
    let mut v: serde_yaml::Value = serde_yaml::from_str(triage_core::config::DEFAULT_CONFIG_YAML).unwrap();
    for (name, m) in &config.models {
        if let ProviderConfig::Openai { base_url, .. } = &m.provider {
            v["models"][name.as_str()]["provider"] = serde_yaml::from_str(&format!(
                "{{kind: openai, base_url: '{base_url}', model_id: {name}, api_key: {{file: '{}'}}}}",
                key.display()
            ))
            .unwrap();
        }
    }
    let cfg = dir.path().join("triage.yaml");
    std::fs::write(&cfg, serde_yaml::to_string(&v).unwrap()).unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    let store = dir.path().join("store");
    let (suite_s, store_s) = (suite.to_str().unwrap().to_string(), store.to_str().unwrap().to_string());
    let run = move |extra: &[&str]| {
        let mut args = vec![
            "drift",
            "run",
            "--suite",
            &suite_s,
            "--store",
            &store_s,
            "--models",
            "groq-llama-70b,openai-gpt-4o-mini",
            "--json",
        ];
        args.extend_from_slice(extra);
        let cfg = cfg.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || triage(&args.iter().map(String::as_str).collect::<Vec<_>>(), &cfg))
                .await
                .unwrap()
        }
    };

    // First run: no baseline yet, both models become baselines.
    let out = run(&[]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drift: model"), "progress on stderr");
    let v = json_of(&out);
    assert_eq!(model(&v, "groq-llama-70b")["status"], "baseline");
    assert!(store.join("baselines/groq-llama-70b.json").exists());

    // Same answers: stable.
    let out = run(&[]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    for m in ["groq-llama-70b", "openai-gpt-4o-mini"] {
        assert_eq!(model(&v, m)["status"], "compared");
        assert!(model(&v, m)["score"].as_f64().unwrap() < 0.01, "{v}");
    }

    // One provider now refuses: that model moved, the other did not, exit 3.
    changing.set_reply(Reply { text: "I'm sorry, but I can't help with that request.".into(), ..Reply::default() });
    let out = run(&[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["moved"], serde_json::json!(["groq-llama-70b"]));
    let moved = model(&v, "groq-llama-70b");
    assert_eq!((moved["refusals_before"].as_u64(), moved["refusals_now"].as_u64()), (Some(0), Some(3)));
    assert!(moved["score"].as_f64().unwrap() > 0.9);
    assert!(moved["length_ratio"].as_f64().unwrap() < 1.0);
    assert_eq!(model(&v, "openai-gpt-4o-mini")["moved"], false);

    // The report shows the last run, as a table and as JSON.
    let store_arg = store.to_str().unwrap();
    let cfg = dir.path().join("triage.yaml");
    let out = triage(&["drift", "report", "--store", store_arg], &cfg);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MOVED") && text.contains("moved: groq-llama-70b"), "{text}");
    let v = json_of(&triage(&["drift", "report", "--store", store_arg, "--json"], &cfg));
    assert_eq!(v["moved"], serde_json::json!(["groq-llama-70b"]));

    // Accepted: the refusals are the new baseline, and the next run is stable again.
    let out = run(&["--accept"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json_of(&out)["moved"].as_array().unwrap().is_empty());
}

#[test]
fn bad_arguments_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("triage.yaml");
    std::fs::write(&cfg, triage_core::config::DEFAULT_CONFIG_YAML).unwrap();
    let suite = repo().join("config/drift-suite.yaml");
    let out = triage(
        &[
            "drift",
            "run",
            "--suite",
            suite.to_str().unwrap(),
            "--models",
            "nope",
            "--store",
            dir.path().to_str().unwrap(),
        ],
        &cfg,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope` is not a declared model"));
    let out = triage(&["drift", "report", "--store", dir.path().join("empty").to_str().unwrap()], &cfg);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no drift run"));
}

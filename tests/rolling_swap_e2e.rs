//! A rolling model swap under continuous traffic, through the real binary: the operator's
//! `Admin.ApplyModels` moves a model to a new version while Routes keep coming. No Route
//! fails; conversations that started on the old version stay on it until the drain deadline
//! and then move (with a handoff); new conversations start on the new version. And a swap in
//! which one version fails: its breaker opens after the threshold and its conversations move
//! to the other version (with a handoff) instead of living on a fallback until the deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Mutex;
use triage_proto::pb;
use triage_testkit::FakeOpenAi;

const OLD: &str = "llama-3.3-70b-versatile";
const NEW: &str = "llama-4-maverick";
const TOKEN: &str = "admin-token-for-tests";

/// When a turn of a running conversation was answered, by which version, with which warnings.
type Turn = (Instant, String, String);

fn policy_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("policy.yaml");
    let text = "version: 1\nrules:\n  - id: default\n    when: 'true'\n    model: groq-llama-70b\n    reason: every turn to the middle model\n";
    std::fs::write(&p, text).unwrap();
    p
}

fn models_yaml(base_url: &str, drain_until: SystemTime) -> String {
    let until = humantime::format_rfc3339_seconds(drain_until);
    format!(
        r#"models:
  local-smollm2:
    tier: fast
    provider: {{ kind: local, gguf: models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf }}
    version: smollm2-135m-instruct-q4_1
    context_window: 4096
  groq-llama-70b:
    tier: middle
    provider: {{ kind: openai, base_url: "{base_url}", model_id: {NEW}, api_key: {{ env: GROQ_API_KEY }} }}
    version: {NEW}
    context_window: 131072
    price: {{ input_per_mtok: 590000, output_per_mtok: 790000 }}
    fallbacks: [local-smollm2]
    rollout:
      previous:
        version: {OLD}
        provider: {{ kind: openai, base_url: "{base_url}", model_id: {OLD}, api_key: {{ env: GROQ_API_KEY }} }}
      drain_until: {until}
      canary_weight: 100
  claude-sonnet:
    tier: frontier
    provider: {{ kind: openai, base_url: "{base_url}", model_id: claude-proxy, api_key: {{ env: GROQ_API_KEY }} }}
    version: claude-proxy
    context_window: 200000
    price: {{ input_per_mtok: 3000000, output_per_mtok: 15000000 }}
    fallbacks: [local-smollm2]
"#
    )
}

/// The embedded default with the provider models on the fake at `base_url` (the middle model
/// falls back to the local one), the admin token, a policy that sends every turn to the middle
/// model, and `patch` applied last.
fn swap_config(
    redis: &triage_testkit::RedisServer,
    base_url: &str,
    prefix: &str,
    patch: impl FnOnce(&mut serde_yaml::Value),
) -> TestConfig {
    let cfg = TestConfig::new(&redis.url(), prefix, |v| {
        let models = v["models"].as_mapping_mut().unwrap();
        models.remove("openai-gpt-4o-mini");
        models.remove("openai-gpt-4o");
        let groq = &mut v["models"]["groq-llama-70b"];
        groq["provider"]["base_url"] = base_url.into();
        groq["fallbacks"] = serde_yaml::from_str("[local-smollm2]").unwrap();
        let claude: serde_yaml::Value = serde_yaml::from_str(&format!(
            "{{tier: frontier, provider: {{kind: openai, base_url: '{base_url}', model_id: claude-proxy, api_key: {{env: GROQ_API_KEY}}}}, version: claude-proxy, context_window: 200000, price: {{input_per_mtok: 3000000, output_per_mtok: 15000000}}, fallbacks: [local-smollm2]}}"
        ))
        .unwrap();
        v["models"]["claude-sonnet"] = claude;
        v["server"]["admin_token"] = serde_yaml::from_str("{env: TRIAGE_ADMIN_TOKEN}").unwrap();
        patch(v);
    });
    // The policy file sits next to the config; write it and point the config at it.
    let policy = policy_file(cfg.dir.path());
    let mut v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&cfg.path).unwrap()).unwrap();
    v["policy"] = serde_yaml::from_str(&format!("{{file: '{}'}}", policy.display())).unwrap();
    std::fs::write(&cfg.path, serde_yaml::to_string(&v).unwrap()).unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_swap_under_traffic_drops_nothing_and_keeps_running_conversations_on_their_version() {
    assert!(models_present(), "model files missing: run scripts/setup.sh");
    let redis = redis();
    let fake = FakeOpenAi::start().await.unwrap();
    let base_url = fake.base_url();
    let cfg = swap_config(&redis, &base_url, "swap", |_| {});
    let mut proc = Process::serve(&cfg, "all", &[("TRIAGE_ADMIN_TOKEN", TOKEN), ("GROQ_API_KEY", "k")]);
    wait_serving(&cfg.url("gateway"), "triage.v1.Router", &mut proc).await;
    let gw = cfg.url("gateway");

    // Conversations that start before the swap.
    let mut client = router(&gw).await;
    let mut running = Vec::new();
    for i in 0..6 {
        let r = client.route(turn(&format!("what is the status of order {i}?"))).await.unwrap().into_inner();
        assert_eq!(r.model_version, OLD, "before the swap");
        running.push(r.conversation_id);
    }

    // Admin refuses a caller without the token, and changes nothing.
    let channel = tonic::transport::Channel::from_shared(gw.clone()).unwrap().connect().await.unwrap();
    let mut admin = pb::admin_client::AdminClient::new(channel);
    let drain = Duration::from_secs(6);
    let drain_until = SystemTime::now() + drain;
    // The RFC 3339 form has whole seconds: the effective deadline may be up to 1 s earlier.
    let deadline = Instant::now() + drain - Duration::from_secs(1);
    let apply = pb::ApplyModelsRequest { models_yaml: models_yaml(&base_url, drain_until), revision: "groq@2".into() };
    let refused = admin.apply_models(apply.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Continuous traffic: every running conversation keeps talking, and new ones start.
    let seen: Arc<Mutex<BTreeMap<String, Vec<Turn>>>> = Arc::default();
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop_at = Instant::now() + drain + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for (w, conv) in running.iter().cloned().enumerate() {
        let (gw, seen, failures) = (gw.clone(), seen.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = router(&gw).await;
            let mut n = 0;
            while Instant::now() < stop_at {
                let mut t = turn(&format!("and order {w}-{n}?"));
                t.conversation_id = conv.clone();
                match c.route(t).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        let entry = (Instant::now(), r.model_version, r.warnings.join("; "));
                        seen.lock().await.entry(conv.clone()).or_default().push(entry);
                    }
                    Err(e) => failures.lock().await.push(format!("{conv}: {e}")),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut req = tonic::Request::new(apply);
    req.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let resp = admin.apply_models(req).await.unwrap().into_inner();
    assert_eq!(resp.revision, "groq@2");
    assert!(resp.applied_to.contains(&"backends".to_string()) && resp.applied_to.contains(&"gateway".to_string()));
    let mut rev = tonic::Request::new(pb::GetRevisionRequest {});
    rev.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    assert_eq!(admin.get_revision(rev).await.unwrap().into_inner().models_revision, "groq@2");

    // New conversations after the swap start on the new version.
    for i in 0..4 {
        let r = client.route(turn(&format!("new customer {i}: where is my parcel?"))).await.unwrap().into_inner();
        assert_eq!(r.model_version, NEW, "a conversation started after the swap");
    }
    for t in tasks {
        t.await.unwrap();
    }
    let failures = failures.lock().await;
    assert!(failures.is_empty(), "failed Routes during the swap: {failures:?}");

    // Each running conversation: the old version until the deadline, then the new one for good.
    let seen = seen.lock().await;
    let slack = Duration::from_millis(400);
    for conv in &running {
        let turns = &seen[conv];
        assert!(turns.len() >= 10, "{conv}: only {} turns", turns.len());
        let mut moved = false;
        let mut handed_off = false;
        for (at, version, warnings) in turns {
            if version == NEW && !moved {
                // The turn that moves the conversation says so (and gets the handoff summary).
                handed_off = warnings.contains("finished draining");
            }
            if *at + slack < deadline {
                assert_eq!(version, OLD, "{conv} changed version before the drain deadline");
            }
            if version == NEW {
                moved = true;
            } else {
                assert!(!moved, "{conv} went back to the old version");
            }
        }
        assert!(moved, "{conv} never moved to the new version after the deadline: {turns:?}");
        assert!(handed_off, "{conv}: the moving turn did not report the version move: {turns:?}");
    }
    // Both versions were called at the provider by their own model ids.
    let ids = fake.model_ids();
    assert!(ids.contains(&OLD.to_string()) && ids.contains(&NEW.to_string()), "{ids:?}");
    proc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_breaker_opens_mid_swap_hands_its_conversations_to_the_other_version() {
    assert!(models_present(), "model files missing: run scripts/setup.sh");
    let redis = redis();
    let fake = FakeOpenAi::start().await.unwrap();
    let base_url = fake.base_url();
    // A swap in progress from the start: the deadline far off, and every new conversation
    // on the previous version (canary weight 0), so all of them are pinned to OLD.
    let until = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(600));
    let cfg = swap_config(&redis, &base_url, "vbrk", |v| {
        let groq = &mut v["models"]["groq-llama-70b"];
        groq["version"] = NEW.into();
        groq["provider"]["model_id"] = NEW.into();
        groq["rollout"] = serde_yaml::from_str(&format!(
            "{{previous: {{version: {OLD}, provider: {{kind: openai, base_url: '{base_url}', model_id: {OLD}, api_key: {{env: GROQ_API_KEY}}}}}}, drain_until: '{until}', canary_weight: 0}}"
        ))
        .unwrap();
        v["backends"] =
            serde_yaml::from_str("{breaker: {failure_threshold: 3, cooldown: 300s}, retry: {max_retries: 0}}").unwrap();
    });
    let mut proc = Process::serve(&cfg, "all", &[("TRIAGE_ADMIN_TOKEN", TOKEN), ("GROQ_API_KEY", "k")]);
    wait_serving(&cfg.url("gateway"), "triage.v1.Router", &mut proc).await;
    let mut client = router(&cfg.url("gateway")).await;
    let mut running = Vec::new();
    for i in 0..3 {
        let r = client.route(turn(&format!("what is the status of order {i}?"))).await.unwrap().into_inner();
        assert_eq!((r.model.as_str(), r.model_version.as_str()), ("groq-llama-70b", OLD), "{r:?}");
        running.push(r.conversation_id);
    }

    // The previous version starts failing; the new one is healthy.
    fake.set_model_fault(OLD, Some(triage_testkit::Fault::status(503)));
    // Each conversation keeps talking. Turns while OLD's breaker counts failures fall back to
    // the local model; once it opens, the swap's other version serves and the conversation
    // moves to it, long before the drain deadline.
    let mut moved = BTreeMap::new();
    for round in 0..8 {
        for conv in &running {
            let mut t = turn(&format!("and what about the invoice, round {round}?"));
            t.conversation_id = conv.clone();
            t.max_tokens = 8;
            let r = client.route(t).await.unwrap_or_else(|e| panic!("{conv}: Route failed during the outage: {e}"));
            let r = r.into_inner();
            if r.model_version == NEW {
                assert!(!r.downgraded, "{r:?}");
                let warnings = r.warnings.join("; ");
                moved.entry(conv.clone()).or_insert_with(|| warnings);
            } else {
                assert!(!moved.contains_key(conv), "{conv} went back to {}: {r:?}", r.model_version);
                assert!(r.downgraded && r.model == "local-smollm2", "a failed OLD call falls back: {r:?}");
            }
        }
        // Signals reach the policy within 250 ms of a breaker's change.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for conv in &running {
        let warnings = moved.get(conv).unwrap_or_else(|| panic!("{conv} never moved to {NEW}: {moved:?}"));
        assert!(
            warnings.contains(&format!("version `{OLD}` of `groq-llama-70b` has its breaker open")),
            "the turn that moved {conv} does not say why: {warnings}"
        );
    }
    // The open breaker kept calls off the failing version: the threshold's worth, no more.
    assert_eq!(fake.requests_for(OLD), 3 + 3, "3 healthy first turns, then 3 failures to open the breaker");
    // New conversations, which would start on OLD, start on NEW while its breaker is open.
    let r = client.route(turn("a new customer: where is my parcel?")).await.unwrap().into_inner();
    assert_eq!(r.model_version, NEW, "{r:?}");
    proc.terminate();
}

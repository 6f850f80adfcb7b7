//! End-to-end: the real binary, all-in-one and split into one process per service, over
//! real sockets and a real redis-server, on the embedded defaults (no API keys).

mod common;

use common::*;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use triage_proto::pb;

fn skip() -> bool {
    if !models_present() {
        eprintln!("skipped: model files missing (scripts/fetch-models.sh)");
        return true;
    }
    false
}

/// Model, version, tier, rule and labels: what must match between two deployments.
type Decision = (String, String, i32, String, Option<(i32, i32, bool, String)>);

/// What must match between the two deployments: the decision, not the timing.
fn decision(r: &pb::RouteResponse) -> Decision {
    let c = r.classification.as_ref().map(|c| (c.complexity, c.category, c.requires_context, c.language.clone()));
    (r.model.clone(), r.model_version.clone(), r.tier, r.rule_id.clone(), c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_decision_all_in_one_and_split() {
    if skip() {
        return;
    }
    let redis = redis();
    let queries = [
        "What are your opening hours on Saturday?",
        "Given the liability cap in clause 14, can we claim lost profits after the supplier's subcontractor leaked our data?",
    ];

    let all_cfg = TestConfig::new(&redis.url(), "all", |_| {});
    let mut all = Process::serve(&all_cfg, "all", &[]);
    wait_serving(&all_cfg.url("gateway"), "triage.v1.Router", &mut all).await;
    let mut one = Vec::new();
    let mut c = router(&all_cfg.url("gateway")).await;
    for q in queries {
        one.push(c.route(turn(q)).await.unwrap().into_inner());
    }
    drop(all);

    let split_cfg = TestConfig::new(&redis.url(), "split", |_| {});
    let mut procs = Vec::new();
    for s in SERVICES {
        procs.push((s, Process::serve(&split_cfg, s, &[])));
    }
    for (s, p) in procs.iter_mut() {
        let name = match *s {
            "gateway" => "triage.v1.Router",
            "context" => "triage.v1.ContextStore",
            other => Box::leak(format!("triage.v1.{}{}", other[..1].to_uppercase(), &other[1..]).into_boxed_str()),
        };
        wait_serving(&split_cfg.url(s), name, p).await;
    }
    let mut c = router(&split_cfg.url("gateway")).await;
    for (q, expected) in queries.iter().zip(&one) {
        let got = c.route(turn(q)).await.unwrap().into_inner();
        assert_eq!(decision(&got), decision(expected), "query {q:?}");
        assert_eq!(got.reply, expected.reply, "greedy decoding on the same model gives the same reply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_explain_idempotency_bad_input_health_reflection() {
    if skip() {
        return;
    }
    let redis = redis();
    let cfg = TestConfig::new(&redis.url(), "e2e", |_| {});
    let mut p = Process::serve(&cfg, "all", &[]);
    let url = cfg.url("gateway");
    wait_serving(&url, "triage.v1.Router", &mut p).await;
    for s in [
        "triage.v1.Classifier",
        "triage.v1.Policy",
        "triage.v1.Backends",
        "triage.v1.ContextStore",
        "triage.v1.Ledger",
        "",
    ] {
        assert_eq!(health(&url, s).await, Some(ServingStatus::Serving), "{s}");
    }

    // Provider models have no keys here: they are reported unavailable at start-up.
    let log = p.log_text();
    for m in ["claude-sonnet", "groq-llama-70b", "openai-gpt-4o"] {
        assert!(log.contains(m) && log.contains("unavailable"), "no start-up line for {m}:\n{log}");
    }

    let mut c = router(&url).await;
    let mut req = turn("What are your opening hours on Saturday?");
    req.request_id = "req-idem-1".into();
    let first = c.route(req.clone()).await.unwrap().into_inner();
    assert!(!first.reply.is_empty());
    assert_eq!(first.model, "local-smollm2");
    assert!(!first.model_version.is_empty() && !first.rule_id.is_empty() && !first.reason.is_empty());
    assert!(first.usage.unwrap().output_tokens > 0);
    assert!(!first.replayed);

    // The same request id again: the stored answer, not a new generation or charge.
    let second = c.route(req.clone()).await.unwrap().into_inner();
    assert!(second.replayed);
    assert_eq!(second.reply, first.reply);
    assert_eq!(second.conversation_id, first.conversation_id);
    let mut ctx = pb::context_store_client::ContextStoreClient::connect(url.clone()).await.unwrap();
    let conv = ctx
        .get(pb::GetConversationRequest {
            tenant: "default".into(),
            conversation_id: first.conversation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(conv.turn_count, 2, "one user turn and one reply, not two of each");

    // A complex turn: the frontier is chosen, has no key, and a declared fallback answers.
    let hard = c
        .route(turn("Review clause 9 indemnity against the clause 14 liability cap and tell me whether the $600 refund I'm owed for the breach can be authorised."))
        .await
        .unwrap()
        .into_inner();
    let rec = c.explain(pb::ExplainRequest { request_id: hard.request_id.clone() }).await.unwrap().into_inner();
    assert_eq!(rec.request_id, hard.request_id);
    assert_eq!(rec.model, hard.model);
    assert_eq!(rec.rule_id, hard.rule_id);
    assert!(rec.classification.is_some());
    assert!(rec.steps.iter().any(|s| s.step == "classify") && rec.steps.iter().any(|s| s.step == "generate"));
    if rec.chosen_model != rec.model {
        assert!(hard.downgraded, "a fallback answered: {rec:?}");
        assert!(rec.attempts.iter().any(|a| a.outcome != "ok"), "{rec:?}");
    }

    // Prometheus metrics on the same port, over HTTP/1.1.
    let metrics = http_get(cfg.ports["gateway"], "/metrics");
    for needle in [
        "triage_routes_total{model=\"local-smollm2\",tier=\"fast\"",
        "triage_step_duration_seconds_count{step=\"classify\"}",
        "triage_breaker_state{model=\"claude-sonnet\"} 0",
        "triage_turns_total{tenant=\"default\"}",
        "triage_budget_remaining_ratio{scope=\"global/day\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }

    // Bad input: clear codes, nothing panics.
    let bad = [
        (turn(""), tonic::Code::InvalidArgument),
        (turn(&"x".repeat(1024 * 1024)), tonic::Code::InvalidArgument),
        (pb::RouteRequest { conversation_id: "does-not-exist".into(), ..turn("hi") }, tonic::Code::NotFound),
        (pb::RouteRequest { max_tokens: 10_000_000, ..turn("hi") }, tonic::Code::InvalidArgument),
        (pb::RouteRequest { temperature: Some(7.0), ..turn("hi") }, tonic::Code::InvalidArgument),
        (pb::RouteRequest { request_id: "has spaces".into(), ..turn("hi") }, tonic::Code::InvalidArgument),
    ];
    for (r, code) in bad {
        let e = c.route(r).await.unwrap_err();
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(!e.message().is_empty());
    }
    let e = c.explain(pb::ExplainRequest { request_id: "never-sent".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Reflection lists every service (what `grpcurl -plaintext ADDR list` asks).
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let channel = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await.unwrap();
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("{resp:?}") };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for s in ["triage.v1.Router", "triage.v1.Classifier", "triage.v1.Ledger", "grpc.health.v1.Health"] {
        assert!(names.contains(&s), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_streaming_route() {
    if skip() {
        return;
    }
    let redis = redis();
    let cfg = TestConfig::new(&redis.url(), "drain", |v| {
        // Patched, not replaced: the HTTP port stays this test's own.
        v["server"]["drain_delay"] = "1s".into();
        v["server"]["grace_period"] = "60s".into();
    });
    let mut p = Process::serve(&cfg, "all", &[]);
    let url = cfg.url("gateway");
    wait_serving(&url, "triage.v1.Router", &mut p).await;
    let mut c = router(&url).await;
    let mut req = turn("Tell me about your return policy for shoes.");
    req.max_tokens = 64;
    let mut stream = c.route_stream(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(first.chunk, Some(pb::route_chunk::Chunk::Delta(_))), "{first:?}");
    p.terminate();
    // Health flips before the drain.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health(&url, "triage.v1.Router").await, Some(ServingStatus::NotServing));
    let mut text = match first.chunk {
        Some(pb::route_chunk::Chunk::Delta(d)) => d,
        _ => unreachable!(),
    };
    let mut done = None;
    while let Some(chunk) = stream.message().await.unwrap() {
        match chunk.chunk {
            Some(pb::route_chunk::Chunk::Delta(d)) => text.push_str(&d),
            Some(pb::route_chunk::Chunk::Done(r)) => done = Some(r),
            None => {}
        }
    }
    let done = done.expect("the stream completed with its metadata despite SIGTERM");
    assert_eq!(done.reply, text);
    assert_eq!(done.model, "local-smollm2");
    let status = p.wait_exit(Duration::from_secs(30)).expect("exited after draining");
    assert!(status.success(), "{status}:\n{}", p.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_route_whose_caller_left_finish_and_be_charged() {
    if skip() {
        return;
    }
    let redis = redis();
    let cfg = TestConfig::new(&redis.url(), "left", |v| {
        v["server"]["drain_delay"] = "100ms".into();
        v["server"]["grace_period"] = "60s".into();
    });
    let mut p = Process::serve(&cfg, "all", &[]);
    let url = cfg.url("gateway");
    wait_serving(&url, "triage.v1.Router", &mut p).await;
    let mut c = router(&url).await;
    let mut req = turn("Write a long story about a lighthouse keeper and a storm.");
    req.conversation_id = "conv-left".into();
    req.create_if_missing = true;
    req.max_tokens = 256;
    // The caller gives up while the local model writes (dropping the call resets its stream),
    // and the process is told to stop right after.
    let gave_up = tokio::time::timeout(Duration::from_millis(400), c.route(req)).await;
    assert!(gave_up.is_err(), "answered within 400 ms: {gave_up:?}");
    p.terminate();
    let status = p.wait_exit(Duration::from_secs(60)).expect("exited");
    assert!(status.success(), "{status}:\n{}", p.log_text());
    let log = p.log_text();
    assert!(
        log.contains("waiting for Routes whose callers went away"),
        "the Route was not running at the stop:\n{log}"
    );
    assert!(!log.contains("grace period over"), "{log}");

    // The call was finished and accounted for before the process exited: charged once, and
    // the turn stored in its conversation.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let margins: Vec<String> = redis::cmd("KEYS").arg("*margin*:conv-left").query_async(&mut conn).await.unwrap();
    assert_eq!(margins.len(), 1, "{margins:?}");
    let requests: Option<u64> =
        redis::cmd("HGET").arg(&margins[0]).arg("requests").query_async(&mut conn).await.unwrap();
    assert_eq!(requests, Some(1));
    let held: Vec<String> =
        redis::cmd("ZRANGE").arg("{left:ledger}:deadlines").arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert!(held.is_empty(), "reservations left to the reaper: {held:?}");
}

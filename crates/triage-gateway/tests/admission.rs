//! Entering and leaving a Route: the request-id claim and the conversation lock (taken in
//! one round trip), their release with the stored answer, what a caller that goes away early
//! leaves behind, and the decision records written behind the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use triage_proto::pb;
use triage_testkit::{FakeOpenAi, RedisServer, Reply};

/// Redis, the fake provider and a config on them with keys under `prefix` (the key file
/// lives in the returned directory).
async fn setup(prefix: &str) -> (RedisServer, FakeOpenAi, Arc<triage_core::Config>, tempfile::TempDir) {
    let (redis, fake, mut config, dir) = common::fake_stack().await;
    config.redis.key_prefix = prefix.into();
    (redis, fake, Arc::new(config), dir)
}

async fn stack(prefix: &str) -> (RedisServer, FakeOpenAi, Arc<triage_gateway::Gateway>, tempfile::TempDir) {
    let (redis, fake, config, dir) = setup(prefix).await;
    let gw = common::local_gateway(&config, &redis, prefix).await;
    (redis, fake, gw, dir)
}

/// A Route of tenant `acme` in a task of its own, as a server runs it: aborting the task is
/// the caller going away.
fn spawn_route(
    gw: &Arc<triage_gateway::Gateway>,
    req: pb::RouteRequest,
) -> tokio::task::JoinHandle<triage_gateway::Result<pb::RouteResponse>> {
    let gw = gw.clone();
    tokio::spawn(async move { gw.route("acme", req).await })
}

/// A gateway over the in-process stack, with `ledger` in place of its own.
async fn gateway_over(
    config: &Arc<triage_core::Config>,
    redis: &RedisServer,
    prefix: &str,
    ledger: Arc<dyn triage_ledger::Ledger>,
) -> Arc<triage_gateway::Gateway> {
    let (mut services, conn) = common::local_services(config, redis, prefix).await;
    services.ledger = ledger;
    triage_gateway::Gateway::new(services, config.clone(), conn)
}

fn turn(conversation: &str, request_id: &str, text: &str) -> pb::RouteRequest {
    pb::RouteRequest {
        conversation_id: conversation.into(),
        request_id: request_id.into(),
        create_if_missing: true,
        turn: text.into(),
        max_tokens: 16,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_generate_once_and_replay_the_answer() {
    let (redis, fake, gw, _dir) = stack("dup").await;
    // Slow enough that every duplicate arrives while the first is still answering.
    fake.set_reply(Reply { text: "One answer.".into(), ..Reply::default() });
    fake.set_chunk_delay(Duration::from_millis(50));
    let calls: Vec<_> = (0..6).map(|_| spawn_route(&gw, turn("conv-dup", "req-dup", "Where is my order?"))).collect();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap().unwrap());
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|a| a.reply == answers[0].reply && a.request_id == "req-dup"));
    assert_eq!(fake.requests(), 1, "one generation for one request id");

    // Nothing is left held: the lock is gone and the id holds the stored answer.
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let lock: Option<String> = conn.get("dup:lock:acme:conv-dup").await.unwrap();
    assert_eq!(lock, None);
    let stored: Option<Vec<u8>> = conn.get("dup:req:acme:req-dup").await.unwrap();
    assert!(stored.is_some_and(|b| !b.starts_with(b"\x00pending")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_of_one_conversation_are_answered_one_after_the_other() {
    let (redis, _fake, gw, _dir) = stack("seq").await;
    let calls: Vec<_> = (0..5).map(|i| spawn_route(&gw, turn("conv-seq", &format!("req-seq-{i}"), "Hello"))).collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let conv = gw
        .services()
        .context
        .get(pb::GetConversationRequest {
            tenant: "acme".into(),
            conversation_id: "conv-seq".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(conv.turn_count, 10, "five user turns and five replies, none lost to a race");
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let lock: Option<String> = conn.get("seq:lock:acme:conv-seq").await.unwrap();
    assert_eq!(lock, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_route_frees_its_request_id_and_lock() {
    let (redis, _fake, gw, _dir) = stack("fail").await;
    let missing = pb::RouteRequest { create_if_missing: false, ..turn("conv-none", "req-fail", "Hello") };
    let e = gw.route("acme", missing.clone()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let id: Option<Vec<u8>> = conn.get("fail:req:acme:req-fail").await.unwrap();
    let lock: Option<String> = conn.get("fail:lock:acme:conv-none").await.unwrap();
    assert_eq!((id, lock), (None, None));
    // The freed id can be retried, and this time answered.
    let ok = gw.route("acme", pb::RouteRequest { create_if_missing: true, ..missing }).await.unwrap();
    assert!(!ok.replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_record_is_stored_behind_the_answers() {
    let (redis, _fake, gw, _dir) = stack("log").await;
    let calls: Vec<_> = (0..40).map(|i| spawn_route(&gw, turn(&format!("conv-log-{i}"), "", "Hello"))).collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap().request_id);
    }
    // A read waits for the records queued before it: the newest answer is explainable at once.
    let last = ids.last().unwrap();
    assert_eq!(&gw.decision_log().get("acme", last).await.unwrap().request_id, last);
    gw.flush_decisions().await;
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let len: usize = conn.xlen(gw.decision_log().stream_key()).await.unwrap();
    assert_eq!(len, ids.len(), "one stream entry per Route");
    for id in &ids {
        let rec = gw.decision_log().get("acme", id).await.unwrap();
        assert_eq!(rec.status, "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_conversation_is_classified_alongside_its_creation() {
    let (_redis, _fake, gw, _dir) = stack("fresh").await;
    // No conversation id: the gateway names one, so there is no history to wait for.
    let fresh = pb::RouteRequest { create_if_missing: false, ..turn("", "", "Where is my order?") };
    let first = gw.route("acme", fresh).await.unwrap();
    let rec = gw.decision_log().get("acme", &first.request_id).await.unwrap();
    let names: Vec<&str> = rec.steps.iter().map(|s| s.step.as_str()).collect();
    // Nothing to read either: the append after the answer creates the conversation.
    assert_eq!(names.first(), Some(&"classify"), "{names:?}");
    assert!(!names.contains(&"context_get"), "{names:?}");
    assert!(rec.classification.is_some() && !rec.classifier_outcome.is_empty(), "{rec:?}");
    // The next turn of it reads the conversation first and is classified with its history.
    let next = gw.route("acme", turn(&first.conversation_id, "", "and now?")).await.unwrap();
    let rec = gw.decision_log().get("acme", &next.request_id).await.unwrap();
    assert_eq!(rec.conversation_turns, 2);
    assert!(rec.classification.is_some(), "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_with_ids_made_here_claims_and_locks_nothing() {
    let (redis, _fake, gw, _dir) = stack("private").await;
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let new =
        |request_id: &str, text: &str| pb::RouteRequest { create_if_missing: false, ..turn("", request_id, text) };
    let first = gw.route("acme", new("", "Where is my order?")).await.unwrap();
    // Nobody knew either id before this answer: no claim, no lock, no stored answer.
    let claim: Option<Vec<u8>> = conn.get(format!("private:req:acme:{}", first.request_id)).await.unwrap();
    assert!(claim.is_none(), "no answer stored under a request id the caller never sent");
    let locks: Vec<String> = conn.keys("private:lock:*").await.unwrap();
    assert!(locks.is_empty(), "{locks:?}");
    // The conversation exists all the same, and its next turn is locked and claimed as usual.
    let next = gw.route("acme", turn(&first.conversation_id, "req-next", "and now?")).await.unwrap();
    let rec = gw.decision_log().get("acme", &next.request_id).await.unwrap();
    assert_eq!(rec.conversation_turns, 2);
    let again = gw.route("acme", turn(&first.conversation_id, "req-next", "and now?")).await.unwrap();
    assert!(again.replayed && again.reply == next.reply);

    // A caller that names its request id (but no conversation) can retry it safely.
    let named = gw.route("acme", new("req-own", "Hello")).await.unwrap();
    let retried = gw.route("acme", new("req-own", "Hello")).await.unwrap();
    assert!(retried.replayed, "{retried:?}");
    assert_eq!(retried.conversation_id, named.conversation_id);
}

/// The ledger with one step held back: the first reservation until `go` is notified
/// ([`Gated::first_reserve`]), or every commit for a while ([`Gated::commits`]); `started`
/// fires when the held step arrives.
struct Gated {
    inner: triage_ledger::RedisLedger,
    started: tokio::sync::Notify,
    go: tokio::sync::Notify,
    hold_first_reserve: std::sync::atomic::AtomicBool,
    commit_delay: Duration,
}

impl Gated {
    fn first_reserve(inner: triage_ledger::RedisLedger) -> Arc<Gated> {
        Arc::new(Gated { hold_first_reserve: true.into(), ..Gated::commits(inner, Duration::ZERO) })
    }

    fn commits(inner: triage_ledger::RedisLedger, delay: Duration) -> Gated {
        Gated {
            inner,
            started: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
            hold_first_reserve: false.into(),
            commit_delay: delay,
        }
    }
}

#[async_trait::async_trait]
impl triage_ledger::Ledger for Gated {
    async fn reserve(&self, req: pb::ReserveRequest) -> triage_ledger::Result<pb::ReserveResponse> {
        if self.hold_first_reserve.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.started.notify_one();
            self.go.notified().await;
        }
        self.inner.reserve(req).await
    }
    async fn commit(&self, req: pb::CommitRequest) -> triage_ledger::Result<pb::CommitResponse> {
        if !self.commit_delay.is_zero() {
            self.started.notify_one();
            tokio::time::sleep(self.commit_delay).await;
        }
        self.inner.commit(req).await
    }
    async fn release(&self, req: pb::ReleaseRequest) -> triage_ledger::Result<pb::ReleaseResponse> {
        self.inner.release(req).await
    }
    async fn spend(&self, req: pb::SpendRequest) -> triage_ledger::Result<pb::SpendResponse> {
        self.inner.spend(req).await
    }
    async fn limits(&self, req: pb::LimitsRequest) -> triage_ledger::Result<pb::LimitsResponse> {
        self.inner.limits(req).await
    }
}

/// Whether the conversation lock and the request id claim of `conv` / `id` under `prefix`
/// are held.
/// Waits until the provider has been called, then drops the caller (`call`'s task).
async fn leave_once_the_model_is_called<T: std::fmt::Debug>(fake: &FakeOpenAi, call: tokio::task::JoinHandle<T>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.requests() == 0 {
        assert!(std::time::Instant::now() < deadline, "the model was never called");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
}

async fn held(conn: &redis::aio::MultiplexedConnection, prefix: &str, conv: &str, id: &str) -> (bool, bool) {
    let mut conn = conn.clone();
    let lock: Option<String> = conn.get(format!("{prefix}:lock:acme:{conv}")).await.unwrap();
    let claim: Option<Vec<u8>> = conn.get(format!("{prefix}:req:acme:{id}")).await.unwrap();
    (lock.is_some(), claim.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_before_the_model_is_called_stops_the_route_and_frees_everything() {
    let (redis, fake, config, _dir) = setup("gone").await;
    let ledger = triage_ledger::RedisLedger::new(redis.url(), &config.ledger, "gone").unwrap();
    let held_reserves = Gated::first_reserve(ledger.clone());
    let gw = gateway_over(&config, &redis, "gone", held_reserves.clone()).await;
    let first = spawn_route(&gw, turn("conv-gone", "req-gone", "Where is my order?"));
    // The Route is reserving (lock and id taken); its caller goes away (a cancelled gRPC
    // call or a closed HTTP connection drops the handler's future the same way).
    held_reserves.started.notified().await;
    let check = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    assert_eq!(held(&check, "gone", "conv-gone", "req-gone").await, (true, true));
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    held_reserves.go.notify_one();

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held(&check, "gone", "conv-gone", "req-gone").await != (false, false) {
        assert!(std::time::Instant::now() < deadline, "lock and claim still held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stopped before the model: nothing generated, the reservation released, not left to
    // the reaper, nothing charged.
    assert_eq!(fake.requests(), 0);
    let mut c = check.clone();
    let records: Vec<String> = c.keys("{gone:ledger}:req:req-gone/*").await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let state: Option<String> = c.hget(&records[0], "state").await.unwrap();
    assert_eq!(state.as_deref(), Some("released"));
    assert!(ledger.conversation_spend("acme:conv-gone").await.unwrap().is_none());

    // The conversation's next turn and a retry of the same id are answered at once; the
    // retry reserves anew (the released reservation is over, the request id is not).
    let next = gw.route("acme", turn("conv-gone", "req-next", "And my invoice?")).await.unwrap();
    let retry = gw.route("acme", turn("conv-gone", "req-gone", "Where is my order?")).await.unwrap();
    assert!(!next.replayed && !retry.replayed, "{next:?} {retry:?}");
    assert_eq!(fake.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_while_the_model_answers_is_charged_once_and_its_retry_replays() {
    let (redis, fake, config, _dir) = setup("late").await;
    let gw = common::local_gateway(&config, &redis, "late").await;
    let ledger = triage_ledger::RedisLedger::new(redis.url(), &config.ledger, "late").unwrap();
    fake.set_mode(Some(triage_testkit::Fault::Latency(Duration::from_millis(700))));
    let first = spawn_route(&gw, turn("conv-late", "req-late", "Where is my order?"));
    // The provider is answering, and will bill for it: the caller goes away now.
    leave_once_the_model_is_called(&fake, first).await;
    let check = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    assert_eq!(held(&check, "late", "conv-late", "req-late").await, (true, true), "the Route stopped with its caller");

    // The caller's retry (same request id) waits for the running Route and gets its answer:
    // one generation, charged once.
    let retry = gw.route("acme", turn("conv-late", "req-late", "Where is my order?")).await.unwrap();
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(fake.requests(), 1);
    let spent = ledger.conversation_spend("acme:conv-late").await.unwrap().expect("the answer was charged");
    assert_eq!(spent.cost.requests, 1, "{spent:?}");
    assert!(!spent.last_model.is_empty(), "{spent:?}");
    assert!(!held(&check, "late", "conv-late", "req-late").await.0, "lock left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_dropped_after_the_model_answered_is_still_charged() {
    let (redis, fake, config, _dir) = setup("paid").await;
    let ledger = triage_ledger::RedisLedger::new(redis.url(), &config.ledger, "paid").unwrap();
    let slow = Arc::new(Gated::commits(ledger.clone(), Duration::from_millis(300)));
    let gw = gateway_over(&config, &redis, "paid", slow.clone()).await;

    let route = spawn_route(&gw, turn("conv-paid", "req-paid", "Where is my order?"));
    // The provider has answered and the commit is on its way: the caller goes away now.
    slow.started.notified().await;
    route.abort();
    assert!(route.await.unwrap_err().is_cancelled());
    assert_eq!(fake.requests(), 1);

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let spent = ledger.conversation_spend("acme:conv-paid").await.unwrap();
        // Charged once, as answered (the fast tier's model here is priced at zero).
        if let Some(c) = spent.filter(|c| c.cost.requests == 1) {
            assert!(!c.last_model.is_empty(), "{c:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the dropped Route's answer was never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_in_two_tenants_is_two_calls_charged_to_each() {
    let (redis, fake, config, _dir) = setup("two").await;
    let gw = common::local_gateway(&config, &redis, "two").await;
    let ledger = triage_ledger::RedisLedger::new(redis.url(), &config.ledger, "two").unwrap();
    let a = gw.route("acme", turn("c-1", "req-1", "Where is my order?")).await.unwrap();
    let b = gw.route("globex", turn("c-1", "req-1", "Where is my order?")).await.unwrap();
    assert!(!a.replayed && !b.replayed, "{a:?} {b:?}");
    assert_eq!(fake.requests(), 2);
    for scope in ["acme:c-1", "globex:c-1"] {
        let spent = ledger.conversation_spend(scope).await.unwrap();
        assert_eq!(spent.map(|s| s.cost.requests), Some(1), "{scope}");
    }
    // Each tenant's decision record is its own (one no longer overwrites the other).
    gw.flush_decisions().await;
    let (ra, rb) = (
        gw.decision_log().get("acme", "req-1").await.unwrap(),
        gw.decision_log().get("globex", "req-1").await.unwrap(),
    );
    assert_eq!((ra.tenant.as_str(), rb.tenant.as_str()), ("acme", "globex"));
    assert_ne!(ra.reservation_id, rb.reservation_id);
    assert!(ra.reservation_id.starts_with("req-1/"), "{}", ra.reservation_id);
}

/// A tenant's token rate under the HTTP endpoint is settled to what a Route used even when
/// its caller closed the connection before the answer: one whole estimate is not held for
/// a minute by a caller that gave up (`stream` as the caller asked).
async fn a_caller_gone_over_http_is_settled_to_what_it_used(stream: bool) {
    use tower::ServiceExt;
    let prefix = if stream { "rate-sse" } else { "rate" };
    let (redis, fake, mut config, _dir) = common::fake_stack().await;
    config.redis.key_prefix = prefix.into();
    // Room for one request's estimate (prompt + max_tokens 600), not two.
    config.auth.rate_limits.default.tokens_per_minute = 1000;
    let config = Arc::new(config);
    let gw = common::local_gateway(&config, &redis, prefix).await;
    let auth = triage_gateway::auth::Auth::from_config(&config).unwrap();
    let app = triage_gateway::http::router(gw, auth);
    let call = |app: axum::Router| async move {
        let body = serde_json::json!({
            "model": "triage/auto", "stream": stream, "max_tokens": 600,
            "messages": [{"role": "user", "content": "Where is my order?"}],
        });
        let req = axum::http::Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.oneshot(req).await.unwrap().status()
    };

    fake.set_mode(Some(triage_testkit::Fault::Latency(Duration::from_millis(500))));
    // The connection closes while the model answers: the Route runs on and is charged.
    leave_once_the_model_is_called(&fake, tokio::spawn(call(app.clone()))).await;
    fake.set_mode(None);
    let ledger = triage_ledger::RedisLedger::new(redis.url(), &config.ledger, prefix).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let today = || pb::SpendRequest { kind: "tenant".into(), id: "default".into(), window: "day".into() };
    while triage_ledger::Ledger::spend(&ledger, today()).await.unwrap().rows.iter().all(|r| r.requests == 0) {
        assert!(std::time::Instant::now() < deadline, "the abandoned Route was never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its estimate came back but for the few tokens it used: a second one fits.
    assert_eq!(call(app.clone()).await, axum::http::StatusCode::OK);
    assert_eq!(fake.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_over_http_gets_its_token_estimate_back() {
    a_caller_gone_over_http_is_settled_to_what_it_used(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_caller_gone_before_the_first_chunk_gets_its_token_estimate_back() {
    a_caller_gone_over_http_is_settled_to_what_it_used(true).await;
}

//! Reconcile passes against a mock Kubernetes API (tower-test) and Admin endpoints that are a
//! recording fake or a real tonic server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use triage_operator::controller::{
    Context, Discovery, OperatorConfig, State, endpoints_from_slices, reconcile, run_with,
};
use triage_operator::push::{GrpcPusher, PushError, Pusher};
use triage_proto::pb;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// What the mock apiserver answers to a status patch: by resource name, a queue of codes
/// (200 when the queue is empty).
#[derive(Default, Clone)]
struct Api {
    models: Vec<Value>,
    policies: Vec<Value>,
    slices: Vec<Value>,
    patch_codes: BTreeMap<String, Vec<u16>>,
}

#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    body: Value,
}

fn list(kind: &str, items: &[Value]) -> Value {
    json!({"apiVersion": "triage.dev/v1alpha1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "7"}, "items": items})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason, "reason": reason, "code": code})
}

fn spawn_api(mut handle: Handle, mut api: Api) -> Arc<Mutex<Vec<Call>>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    tokio::spawn(async move {
        let mut watches = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            if req.uri().query().is_some_and(|q| q.contains("watch=")) {
                // Watches stay open and silent: the run loop's passes are what is under test.
                watches.push(send);
                continue;
            }
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock().unwrap().push(Call { method: method.clone(), path: path.clone(), body: body.clone() });
            let (code, out) = match (method, path.as_str()) {
                (Method::GET, p) if p.ends_with("/llmmodels") => (200, list("LlmModel", &api.models)),
                (Method::GET, p) if p.ends_with("/routingpolicies") => (200, list("RoutingPolicy", &api.policies)),
                (Method::GET, p) if p.ends_with("/endpointslices") => (
                    200,
                    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {}, "items": api.slices}),
                ),
                (Method::PATCH, p) if p.ends_with("/status") => {
                    let name = p.trim_end_matches("/status").rsplit('/').next().unwrap().to_string();
                    let code = api
                        .patch_codes
                        .get_mut(&name)
                        .and_then(|q| (!q.is_empty()).then(|| q.remove(0)))
                        .unwrap_or(200);
                    let all = if p.contains("/llmmodels/") { &api.models } else { &api.policies };
                    match (code, all.iter().find(|o| o["metadata"]["name"] == name.as_str())) {
                        (200, Some(o)) => {
                            let mut o = o.clone();
                            o["status"] = body["status"].clone();
                            (200, o)
                        }
                        (200, None) | (404, _) => (404, status(404, "NotFound")),
                        (c, _) => (c, status(c, "Conflict")),
                    }
                }
                (m, p) => panic!("unexpected {m} {p}"),
            };
            let resp = Response::builder().status(code).body(Body::from(serde_json::to_vec(&out).unwrap())).unwrap();
            send.send_response(resp);
        }
    });
    calls
}

/// Records what was pushed and serves the last revision back, like a Triage process.
#[derive(Default)]
struct Recorder {
    models: Mutex<Vec<pb::ApplyModelsRequest>>,
    policies: Mutex<Vec<pb::ApplyPolicyRequest>>,
    reject_models: Option<String>,
}

#[async_trait::async_trait]
impl Pusher for Recorder {
    async fn revision(&self, _: &str) -> Result<pb::RevisionResponse, PushError> {
        Ok(pb::RevisionResponse {
            models_revision: self.models.lock().unwrap().last().map(|r| r.revision.clone()).unwrap_or_default(),
            policy_revision: self.policies.lock().unwrap().last().map(|r| r.revision.clone()).unwrap_or_default(),
        })
    }
    async fn apply_models(&self, _: &str, req: pb::ApplyModelsRequest) -> Result<pb::ApplyResponse, PushError> {
        if let Some(m) = &self.reject_models {
            return Err(PushError::Rejected(m.clone()));
        }
        let revision = req.revision.clone();
        self.models.lock().unwrap().push(req);
        Ok(pb::ApplyResponse { revision, warnings: vec![], applied_to: vec!["gateway".into()] })
    }
    async fn apply_policy(&self, _: &str, req: pb::ApplyPolicyRequest) -> Result<pb::ApplyResponse, PushError> {
        let revision = req.revision.clone();
        self.policies.lock().unwrap().push(req);
        Ok(pb::ApplyResponse { revision, warnings: vec![], applied_to: vec!["policy".into()] })
    }
}

fn model(name: &str, generation: i64, model_id: &str, fallbacks: &[&str]) -> Value {
    json!({
        "apiVersion": "triage.dev/v1alpha1", "kind": "LlmModel",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "resourceVersion": "1"},
        "spec": {
            "tier": "middle",
            "provider": {"kind": "openai", "baseUrl": "https://api.openai.com/v1", "modelId": model_id, "apiKey": {"env": "OPENAI_API_KEY"}},
            "version": model_id, "contextWindow": 128000,
            "price": {"inputPerMtok": 150000, "outputPerMtok": 600000},
            "fallbacks": fallbacks,
        }
    })
}

fn policy(name: &str, generation: i64, target: &str) -> Value {
    json!({
        "apiVersion": "triage.dev/v1alpha1", "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"version": 1, "rules": [
            {"id": "premium", "when": "user.premium", "model": target, "reason": "premium users"},
            {"id": "default", "when": "true", "tier": "middle", "reason": "middle ground"},
        ]}
    })
}

fn ctx(api: Api, pusher: Arc<dyn Pusher>, discovery: Discovery) -> (Context, Arc<Mutex<Vec<Call>>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = spawn_api(handle, api);
    let client = kube::Client::new(service, "default");
    let base = triage_core::Config::embedded_default().unwrap();
    (Context { client, namespace: "default".into(), base, discovery, pusher }, calls)
}

fn static_discovery(eps: &[&str]) -> Discovery {
    Discovery {
        label_selector: None,
        port_name: "grpc".into(),
        static_endpoints: eps.iter().map(|s| s.to_string()).collect(),
    }
}

fn patches(calls: &Mutex<Vec<Call>>) -> BTreeMap<String, Value> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.method == Method::PATCH)
        .map(|c| (c.path.trim_end_matches("/status").rsplit('/').next().unwrap().to_string(), c.body["status"].clone()))
        .collect()
}

fn accepted(status: &Value) -> (&str, &str) {
    let c = &status["conditions"][0];
    assert_eq!(c["type"], "Accepted");
    (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
}

#[tokio::test]
async fn accepted_models_are_pushed_and_statuses_written() {
    let api = Api {
        models: vec![model("gpt-a", 1, "a-1", &["local-smollm2"]), model("gpt-b", 2, "b-1", &["gpt-a"])],
        policies: vec![policy("default", 3, "gpt-b")],
        slices: vec![json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "triage-abc"},
            "addressType": "IPv4",
            "ports": [{"name": "grpc", "port": 50051}, {"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": true}}, {"addresses": ["10.0.0.8"], "conditions": {"ready": false}}],
        })],
        ..Default::default()
    };
    let rec = Arc::new(Recorder::default());
    let discovery =
        Discovery { label_selector: Some("app.kubernetes.io/part-of=triage".into()), ..static_discovery(&[]) };
    let (ctx, calls) = ctx(api.clone(), rec.clone(), discovery);
    let mut state = State::default();
    let requeue = reconcile(&ctx, &mut state).await.unwrap();
    assert_eq!(requeue, None);

    let pushed = rec.models.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1);
    assert!(pushed[0].revision.starts_with("gpt-a@1,gpt-b@2 #"), "{}", pushed[0].revision);
    let set = triage_core::config::ModelSet::from_yaml(&pushed[0].models_yaml, std::path::Path::new("push")).unwrap();
    assert_eq!(set.models["gpt-b"].fallbacks, ["gpt-a"]);
    assert!(set.models.contains_key("claude-sonnet"), "the file's models stay");
    assert_eq!(rec.policies.lock().unwrap()[0].revision, "default@3");

    let p = patches(&calls);
    for (name, generation) in [("gpt-a", 1), ("gpt-b", 2)] {
        assert_eq!(accepted(&p[name]), ("True", "Applied"));
        assert_eq!(p[name]["observedGeneration"], generation);
        assert_eq!(p[name]["conditions"][0]["observedGeneration"], generation);
        assert_eq!(p[name]["servedVersion"], if name == "gpt-a" { "a-1" } else { "b-1" });
    }
    assert_eq!(accepted(&p["default"]), ("True", "Applied"));
    let patch = calls.lock().unwrap().iter().find(|c| c.method == Method::PATCH).unwrap().clone();
    assert_eq!(patch.body["apiVersion"], "triage.dev/v1alpha1");

    // A second pass over the written statuses changes nothing and pushes nothing.
    let mut api2 = api;
    for m in api2.models.iter_mut() {
        m["status"] = p[m["metadata"]["name"].as_str().unwrap()].clone();
    }
    api2.policies[0]["status"] = p["default"].clone();
    let (ctx2, calls2) = self::ctx(api2, rec.clone(), static_discovery(&["http://10.0.0.7:50051"]));
    reconcile(&ctx2, &mut state).await.unwrap();
    assert_eq!(rec.models.lock().unwrap().len(), 1);
    assert!(patches(&calls2).is_empty(), "{:?}", patches(&calls2));
}

#[tokio::test]
async fn an_invalid_model_is_reported_and_not_pushed() {
    let api = Api {
        models: vec![model("good", 1, "g-1", &[]), model("bad", 4, "b-1", &["no-such-model"])],
        ..Default::default()
    };
    let rec = Arc::new(Recorder::default());
    let (ctx, calls) = ctx(api, rec.clone(), static_discovery(&["http://10.0.0.7:50051"]));
    reconcile(&ctx, &mut State::default()).await.unwrap();
    let pushed = rec.models.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1);
    let set = triage_core::config::ModelSet::from_yaml(&pushed[0].models_yaml, std::path::Path::new("push")).unwrap();
    assert!(set.models.contains_key("good") && !set.models.contains_key("bad"));
    assert!(!pushed[0].revision.contains("bad@"));
    let p = patches(&calls);
    assert_eq!(accepted(&p["good"]), ("True", "Applied"));
    assert_eq!(accepted(&p["bad"]), ("False", "Invalid"));
    assert!(p["bad"]["conditions"][0]["message"].as_str().unwrap().contains("no-such-model"));
    assert_eq!(p["bad"]["observedGeneration"], 4);
    assert!(rec.policies.lock().unwrap().is_empty(), "no RoutingPolicy: the processes keep theirs");
}

#[tokio::test]
async fn a_resource_deleted_before_its_status_is_written_is_not_an_error() {
    let api = Api {
        models: vec![model("gone", 1, "g-1", &[])],
        patch_codes: BTreeMap::from([("gone".to_string(), vec![404])]),
        ..Default::default()
    };
    let (ctx, calls) = ctx(api, Arc::new(Recorder::default()), static_discovery(&[]));
    assert_eq!(reconcile(&ctx, &mut State::default()).await.unwrap(), None);
    assert_eq!(patches(&calls).len(), 1);
}

#[tokio::test]
async fn a_status_conflict_is_retried_then_requeued() {
    let api = Api {
        models: vec![model("m", 1, "m-1", &[]), model("n", 1, "n-1", &[])],
        patch_codes: BTreeMap::from([("m".to_string(), vec![409]), ("n".to_string(), vec![409, 409, 409])]),
        ..Default::default()
    };
    let (ctx, calls) = ctx(api, Arc::new(Recorder::default()), static_discovery(&[]));
    let requeue = reconcile(&ctx, &mut State::default()).await.unwrap();
    let attempts = |n: &str| {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == Method::PATCH && c.path.ends_with(&format!("/{n}/status")))
            .count()
    };
    assert_eq!(attempts("m"), 2, "retried once, then written");
    assert_eq!(attempts("n"), 3, "gave up after three tries");
    assert_eq!(requeue, Some(Duration::from_secs(10)), "the next pass comes soon");
}

#[tokio::test]
async fn a_refused_set_marks_the_new_resources_rejected() {
    let api = Api { models: vec![model("m", 2, "m-1", &[])], ..Default::default() };
    let rec = Arc::new(Recorder { reject_models: Some("models.m: nope".into()), ..Default::default() });
    let (ctx, calls) = ctx(api, rec, static_discovery(&["http://10.0.0.7:50051"]));
    let mut state = State::default();
    reconcile(&ctx, &mut state).await.unwrap();
    assert_eq!(accepted(&patches(&calls)["m"]), ("False", "Rejected"));
    assert!(state.last_good.is_empty());
}

mod admin {
    use super::*;
    use tonic::{Request, Response, Status};
    use triage_proto::pb::admin_server::{Admin, AdminServer};

    #[derive(Default, Clone)]
    pub struct Server {
        pub models: Arc<Mutex<Vec<pb::ApplyModelsRequest>>>,
        pub policies: Arc<Mutex<Vec<pb::ApplyPolicyRequest>>>,
    }

    #[tonic::async_trait]
    impl Admin for Server {
        async fn apply_models(
            &self,
            r: Request<pb::ApplyModelsRequest>,
        ) -> Result<Response<pb::ApplyResponse>, Status> {
            let r = r.into_inner();
            if r.models_yaml.contains("refuse-me") {
                return Err(Status::invalid_argument("models.refuse-me: refused"));
            }
            let revision = r.revision.clone();
            self.models.lock().unwrap().push(r);
            Ok(Response::new(pb::ApplyResponse { revision, warnings: vec![], applied_to: vec!["backends".into()] }))
        }
        async fn apply_policy(
            &self,
            r: Request<pb::ApplyPolicyRequest>,
        ) -> Result<Response<pb::ApplyResponse>, Status> {
            let r = r.into_inner();
            let revision = r.revision.clone();
            self.policies.lock().unwrap().push(r);
            Ok(Response::new(pb::ApplyResponse { revision, warnings: vec![], applied_to: vec!["policy".into()] }))
        }
        async fn get_revision(
            &self,
            _: Request<pb::GetRevisionRequest>,
        ) -> Result<Response<pb::RevisionResponse>, Status> {
            Ok(Response::new(pb::RevisionResponse {
                models_revision: self.models.lock().unwrap().last().map(|r| r.revision.clone()).unwrap_or_default(),
                policy_revision: self.policies.lock().unwrap().last().map(|r| r.revision.clone()).unwrap_or_default(),
            }))
        }
    }

    pub async fn start() -> (Server, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = Server::default();
        let svc = AdminServer::new(server.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (server, url)
    }
}

#[tokio::test]
async fn the_grpc_pusher_reaches_a_real_admin_server() {
    let (server, url) = admin::start().await;
    let pusher = Arc::new(GrpcPusher::new(None, Duration::from_secs(5)));
    let api = Api {
        models: vec![model("gpt-a", 1, "a-1", &[])],
        policies: vec![policy("p", 1, "gpt-a")],
        ..Default::default()
    };
    let (ctx, calls) = ctx(api.clone(), pusher.clone(), static_discovery(&[&url]));
    let mut state = State::default();
    reconcile(&ctx, &mut state).await.unwrap();
    assert_eq!(server.models.lock().unwrap().len(), 1);
    assert!(server.models.lock().unwrap()[0].models_yaml.contains("gpt-a:"));
    assert_eq!(server.policies.lock().unwrap()[0].revision, "p@1");
    assert_eq!(accepted(&patches(&calls)["gpt-a"]), ("True", "Applied"));
    // Same set again: GetRevision says it is current, nothing is re-applied.
    let (ctx, _) = self::ctx(api, pusher.clone(), static_discovery(&[&url]));
    reconcile(&ctx, &mut state).await.unwrap();
    assert_eq!(server.models.lock().unwrap().len(), 1);

    // A refusal is a Rejected error; an endpoint that is down is Unavailable.
    let req = pb::ApplyModelsRequest { models_yaml: "models: {refuse-me: {}}".into(), revision: "x".into() };
    assert!(matches!(pusher.apply_models(&url, req).await, Err(PushError::Rejected(m)) if m.contains("refused")));
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let down = format!("http://{closed}");
    assert!(matches!(pusher.revision(&down).await, Err(PushError::Unavailable(_))));
}

#[tokio::test]
async fn an_unreachable_endpoint_requeues_soon() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let pusher = Arc::new(GrpcPusher::new(None, Duration::from_secs(2)));
    let api = Api { models: vec![model("m", 1, "m-1", &[])], ..Default::default() };
    let (ctx, _) = ctx(api, pusher, static_discovery(&[&format!("http://{closed}")]));
    assert_eq!(reconcile(&ctx, &mut State::default()).await.unwrap(), Some(Duration::from_secs(10)));
}

#[test]
fn endpoints_come_from_ready_addresses_on_the_named_port() {
    let slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice> = serde_json::from_value(json!([
        {"metadata": {"name": "a"}, "addressType": "IPv4", "ports": [{"name": "grpc", "port": 50051}],
         "endpoints": [{"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                       {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}]},
        {"metadata": {"name": "b"}, "addressType": "IPv6", "ports": [{"name": "grpc", "port": 50051}],
         "endpoints": [{"addresses": ["fd00::1"]}]},
        {"metadata": {"name": "c"}, "addressType": "IPv4", "ports": [{"name": "metrics", "port": 9090}],
         "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]))
    .unwrap();
    assert_eq!(
        endpoints_from_slices(&slices, "grpc", "http"),
        ["http://10.0.0.1:50051", "http://10.0.0.2:50051", "http://[fd00::1]:50051"]
    );
}

#[tokio::test]
async fn the_run_loop_pushes_and_stops_on_shutdown() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = Api { models: vec![model("m", 1, "m-1", &[])], ..Default::default() };
    let calls = spawn_api(handle, api);
    let rec = Arc::new(Recorder::default());
    let mut cfg = OperatorConfig::new("default");
    cfg.discovery = static_discovery(&["http://10.0.0.7:50051"]);
    cfg.debounce = Duration::from_millis(10);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(run_with(kube::Client::new(service, "default"), cfg, rec.clone(), shutdown.clone()));
    for _ in 0..200 {
        if !rec.models.lock().unwrap().is_empty() && !patches(&calls).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rec.models.lock().unwrap().len(), 1);
    assert_eq!(accepted(&patches(&calls)["m"]), ("True", "Applied"));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn deleting_the_routing_policy_brings_the_base_policy_back() {
    let rec = Arc::new(Recorder::default());
    let eps = static_discovery(&["http://10.0.0.7:50051"]);
    let mut state = State::default();

    // Processes that never had a policy pushed are on the base one: nothing to do.
    let (c, _) = ctx(Api::default(), rec.clone(), eps.clone());
    reconcile(&c, &mut state).await.unwrap();
    assert!(rec.policies.lock().unwrap().is_empty());

    // A RoutingPolicy serves...
    let with = Api { policies: vec![policy("default", 3, "claude-sonnet")], ..Default::default() };
    let (c, _) = ctx(with, rec.clone(), eps.clone());
    reconcile(&c, &mut state).await.unwrap();
    assert_eq!(rec.policies.lock().unwrap().last().unwrap().revision, "default@3");

    // ...until it is deleted: the config's own policy (here the built-in one) serves again.
    let (c, _) = ctx(Api::default(), rec.clone(), eps.clone());
    reconcile(&c, &mut state).await.unwrap();
    let pushed = rec.policies.lock().unwrap().clone();
    assert_eq!(pushed.len(), 2);
    assert_eq!(pushed[1].revision, triage_operator::plan::BASE_POLICY_REVISION);
    assert_eq!(pushed[1].policy_yaml, triage_policy::DEFAULT_POLICY_YAML);

    // Once back on it, nothing more is pushed; a fresh operator (no memory) agrees.
    let (c, _) = ctx(Api::default(), rec.clone(), eps.clone());
    reconcile(&c, &mut state).await.unwrap();
    reconcile(&c, &mut State::default()).await.unwrap();
    assert_eq!(rec.policies.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_fresh_operator_reverts_a_policy_deleted_while_it_was_down() {
    // The process still runs a RoutingPolicy's rules that no longer exists.
    let rec = Arc::new(Recorder::default());
    rec.policies.lock().unwrap().push(pb::ApplyPolicyRequest { policy_yaml: "old".into(), revision: "gone@7".into() });
    let (c, _) = ctx(Api::default(), rec.clone(), static_discovery(&["http://10.0.0.7:50051"]));
    reconcile(&c, &mut State::default()).await.unwrap();
    let last = rec.policies.lock().unwrap().last().unwrap().clone();
    assert_eq!((last.revision.as_str(), last.policy_yaml.as_str()), ("", triage_policy::DEFAULT_POLICY_YAML));
}

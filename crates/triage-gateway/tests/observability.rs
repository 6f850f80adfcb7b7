//! Traces of a Route: one trace id from the gateway through remote classifier, policy and
//! backends servers (real gRPC sockets), GenAI semantic-convention attributes on the model
//! call, `triage.*` attributes on the route span.
//!
//! Alone in its test binary: the subscriber is thread-local, and another test hitting the
//! same span callsites without one on another thread can leave them disabled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use triage_core::grpc::{self, Shutdown};
use triage_gateway::{Gateway, Services};
use triage_proto::pb;
use triage_testkit::{FakeOpenAi, RedisServer, Reply};

async fn start(routes: tonic::service::Routes, name: &'static str, stop: &CancellationToken) -> String {
    let listener = grpc::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown { drain_delay: Duration::ZERO, grace_period: Duration::from_secs(5) };
    let stop = stop.clone();
    tokio::spawn(async move { grpc::serve(listener, routes, &[name], stop, shutdown, None).await });
    format!("http://{addr}")
}

fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
    s.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn rpc<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == "rpc" && attr(s, "rpc").map(|v| v.as_str()) == Some(name.into()))
        .unwrap_or_else(|| panic!("no server span {name}"))
}

// current_thread: the subscriber below is thread-local, and every task must see it.
#[tokio::test(flavor = "current_thread")]
async fn one_trace_from_gateway_to_the_model_call_with_gen_ai_attributes() {
    let exporter = InMemorySpanExporter::default();
    let provider = triage_core::telemetry::tracer_provider(exporter.clone(), "triage-test", false);
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("triage")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = RedisServer::start().unwrap();
    let fake = FakeOpenAi::start().await.unwrap();
    fake.set_reply(Reply {
        text: "We open at nine.".into(),
        input_tokens: 21,
        output_tokens: 5,
        model: Some("served-model-0125".into()),
        stop_reason: None,
    });
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key");
    std::fs::write(&key, "k").unwrap();
    let config = Arc::new(common::config_on(&fake, &redis, &key));

    // Classifier, policy and backends each in "another service" on its own socket.
    let stop = CancellationToken::new();
    let classifier = triage_classifier::build(&config.classifier, None).unwrap();
    let c_url = start(
        tonic::service::Routes::new(triage_classifier::ClassifierServer(classifier).into_service()),
        "triage.v1.Classifier",
        &stop,
    )
    .await;
    let policy: Arc<dyn triage_policy::Policy> = Arc::new(triage_policy::LocalPolicy::from_config(&config).unwrap());
    let p_url = start(
        tonic::service::Routes::new(triage_policy::PolicyServer(policy).into_service()),
        "triage.v1.Policy",
        &stop,
    )
    .await;
    let local: Arc<dyn triage_backends::Backends> =
        Arc::new(triage_backends::LocalBackends::new(&config).await.unwrap());
    let b_url = start(
        tonic::service::Routes::new(triage_backends::BackendsServer(local.clone()).into_service()),
        "triage.v1.Backends",
        &stop,
    )
    .await;

    let backends: Arc<dyn triage_backends::Backends> =
        Arc::new(triage_backends::RemoteBackends::new(grpc::channel(&b_url, None).unwrap()));
    let conn = redis::Client::open(redis.url()).unwrap().get_connection_manager().await.unwrap();
    let services = Services {
        classifier: Arc::new(triage_classifier::RemoteClassifier::new(grpc::channel(&c_url, None).unwrap())),
        policy: Arc::new(triage_policy::RemotePolicy::new(grpc::channel(&p_url, None).unwrap())),
        backends,
        context: Arc::new(triage_context::RedisContext::new(conn.clone(), &config.context, "o", Some(local))),
        ledger: Arc::new(triage_ledger::RedisLedger::new(redis.url(), &config.ledger, "o").unwrap()),
    };
    let gateway = Gateway::new(services, config.clone(), conn);
    let resp = gateway
        .route(
            "acme",
            pb::RouteRequest { turn: "What are your opening hours?".into(), max_tokens: 16, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(resp.reply, "We open at nine.");
    // Close the channels and servers: a connection task started inside the route keeps a
    // span open until it ends; then wait until the spans are all exported.
    drop(gateway);
    stop.cancel();
    let mut spans = Vec::new();
    for _ in 0..100 {
        let _ = provider.force_flush();
        spans = exporter.get_finished_spans().unwrap();
        if spans.iter().any(|s| s.name == "route") && spans.iter().any(|s| s.name.starts_with("chat ")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let route = spans.iter().find(|s| s.name == "route").expect("gateway route span");
    let trace = route.span_context.trace_id();
    for name in ["Classifier/Classify", "Policy/Decide", "Backends/Generate"] {
        let s = rpc(&spans, name);
        assert_eq!(s.span_context.trace_id(), trace, "{name} is in the route's trace");
        assert_ne!(s.parent_span_id, SpanId::INVALID, "{name} has the caller as parent");
    }

    // The route span carries the decision.
    assert_eq!(attr(route, "triage.request_id"), Some(&Value::from(resp.request_id.clone())));
    assert_eq!(attr(route, "triage.rule"), Some(&Value::from(resp.rule_id.clone())));
    assert_eq!(attr(route, "triage.model"), Some(&Value::from(resp.model.clone())));
    let tier = triage_core::Tier::from_pb(resp.tier).unwrap().as_str();
    assert_eq!(attr(route, "triage.tier"), Some(&Value::from(tier)));
    assert_eq!(attr(route, "triage.cost_micros"), Some(&Value::I64(resp.cost_micros)));

    // The model call, in the GenAI conventions, under the backends server span.
    let want_model = format!("{}-id", resp.model);
    let chat = spans.iter().find(|s| s.name == format!("chat {want_model}")).expect("gen_ai chat span");
    assert_eq!(chat.span_context.trace_id(), trace);
    assert_eq!(chat.parent_span_id, rpc(&spans, "Backends/Generate").span_context.span_id());
    assert_eq!(chat.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(attr(chat, "gen_ai.operation.name"), Some(&Value::from("chat")));
    assert_eq!(attr(chat, "gen_ai.provider.name"), Some(&Value::from("openai")));
    assert_eq!(attr(chat, "gen_ai.request.model"), Some(&Value::from(want_model.clone())));
    assert_eq!(attr(chat, "gen_ai.response.model"), Some(&Value::from("served-model-0125")));
    assert_eq!(attr(chat, "gen_ai.request.max_tokens"), Some(&Value::I64(16)));
    assert_eq!(attr(chat, "gen_ai.usage.input_tokens"), Some(&Value::I64(21)));
    assert_eq!(attr(chat, "gen_ai.usage.output_tokens"), Some(&Value::I64(5)));
    assert_eq!(attr(chat, "triage.model"), Some(&Value::from(resp.model.clone())));
    let reasons = attr(chat, "gen_ai.response.finish_reasons").expect("finish reasons");
    assert_eq!(reasons, &Value::Array(opentelemetry::Array::String(vec!["stop".into()])));
}

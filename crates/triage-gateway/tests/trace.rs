//! One trace per Route across services: the gateway calls a classifier in another server
//! over a real gRPC socket, and both sides' spans share one trace id via metadata.

mod common;

use opentelemetry_sdk::trace::InMemorySpanExporter;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use triage_core::Config;
use triage_core::grpc::{self, Shutdown};
use triage_gateway::Gateway;
use triage_proto::pb;

fn root() -> PathBuf {
    triage_testkit::repo_root()
}

// current_thread: the subscriber below is thread-local, and every task must see it.
#[tokio::test(flavor = "current_thread")]
async fn one_trace_id_across_the_gateway_and_a_remote_classifier() {
    let gguf = root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.exists() {
        eprintln!("skipped: model files missing (scripts/fetch-models.sh)");
        return;
    }
    let exporter = InMemorySpanExporter::default();
    let provider = triage_core::telemetry::tracer_provider(exporter.clone(), "triage-test", false);
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    use opentelemetry::trace::TracerProvider as _;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("triage")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = triage_testkit::RedisServer::start().unwrap();
    let mut config = Config::embedded_default().unwrap();
    config.redis.url = Some(redis.url());
    config.classifier.kind = triage_core::config::ClassifierKind::Heuristic;
    for m in config.models.values_mut() {
        if let triage_core::config::ProviderConfig::Local { gguf: g, .. } = &mut m.provider {
            *g = gguf.clone();
        }
    }
    let config = Arc::new(config);

    // The classifier runs in "another service": its own gRPC server on a real socket.
    let classifier = triage_classifier::build(&config.classifier, None).unwrap();
    let listener = grpc::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let routes = tonic::service::Routes::new(triage_classifier::ClassifierServer(classifier).into_service());
    let server = tokio::spawn(grpc::serve(
        listener,
        routes,
        &["triage.v1.Classifier"],
        stop.clone(),
        Shutdown { drain_delay: std::time::Duration::ZERO, grace_period: std::time::Duration::from_secs(5) },
        None,
    ));
    let remote = triage_classifier::RemoteClassifier::new(grpc::channel(&format!("http://{addr}"), None).unwrap());

    let (mut services, conn) = common::local_services(&config, &redis, "t").await;
    services.classifier = Arc::new(remote);
    let gateway = Gateway::new(services, config.clone(), conn);
    let resp = gateway
        .route(
            "acme",
            pb::RouteRequest { turn: "What are your opening hours?".into(), max_tokens: 4, ..Default::default() },
        )
        .await
        .unwrap();
    assert!(!resp.reply.is_empty() || resp.usage.unwrap().output_tokens > 0);
    stop.cancel();
    let _ = server.await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let route = spans.iter().find(|s| s.name == "route").expect("gateway route span");
    let classify = spans
        .iter()
        .find(|s| s.name == "rpc" && s.attributes.iter().any(|kv| kv.value.as_str() == "Classifier/Classify"))
        .expect("classifier server span");
    assert_eq!(classify.span_context.trace_id(), route.span_context.trace_id(), "one trace across the gRPC hop");
    assert_ne!(
        classify.parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "the server span has the caller as parent"
    );
}

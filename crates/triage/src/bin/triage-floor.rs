//! The floor under the gateway's latency: a proxy built from the gateway's own serving code
//! (gRPC server with health and reflection, the HTTP/1.1 server, TCP_NODELAY everywhere, the
//! backends' HTTP client, the same multiplexed Redis connection) that does nothing of
//! Triage's work: each `Router.Route` or `POST /v1/chat/completions` makes `--redis-trips`
//! sequential round trips to Redis (INCR of one key, the cheapest write there is), then one
//! call to the upstream, and answers with its reply.
//!
//! `scripts/bench.sh --floor K` measures it exactly as it measures the gateway. With K = 0 it
//! is what any Rust proxy on this stack costs on the machine; with K = 3 it is the least a
//! design costs that must reserve budget before the call and settle it (and store the
//! conversation) before answering, in Redis: three round trips, whatever they carry.
//!
//! ```text
//! triage-floor --grpc-listen ADDR --http-listen ADDR --redis URL --upstream URL [--redis-trips K]
//! ```

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clap::Parser;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use triage_core::grpc::Shutdown;
use triage_proto::pb;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Latency floor: the gateway's serving stack with K Redis round trips and one upstream call")]
struct Args {
    /// gRPC address to serve Router.Route on.
    #[arg(long)]
    grpc_listen: String,
    /// HTTP address to serve POST /v1/chat/completions on.
    #[arg(long)]
    http_listen: String,
    /// Redis URL.
    #[arg(long)]
    redis: String,
    /// OpenAI-compatible upstream base URL (…/v1).
    #[arg(long)]
    upstream: String,
    /// Sequential Redis round trips per request before the upstream call.
    #[arg(long, default_value_t = 3)]
    redis_trips: u32,
}

struct Floor {
    redis: ConnectionManager,
    http: reqwest::Client,
    url: String,
    trips: u32,
}

impl Floor {
    /// The round trips, then the upstream call; returns the upstream's JSON reply.
    async fn forward(&self, turn: &str, max_tokens: u32) -> Result<serde_json::Value> {
        let mut redis = self.redis.clone();
        for _ in 0..self.trips {
            let _: i64 = redis::cmd("INCR").arg("floor:trips").query_async(&mut redis).await?;
        }
        let body = serde_json::json!({
            "model": "llama-3.3-70b-versatile",
            "messages": [{"role": "user", "content": turn}],
            "max_tokens": max_tokens,
            "temperature": 0,
        });
        let resp = self.http.post(&self.url).bearer_auth("bench-key").json(&body).send().await?;
        let status = resp.status();
        let reply: serde_json::Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "upstream answered {status}: {reply}");
        Ok(reply)
    }
}

fn reply_text(v: &serde_json::Value) -> String {
    v.pointer("/choices/0/message/content").and_then(|c| c.as_str()).unwrap_or_default().to_string()
}

struct RouterFloor(Arc<Floor>);

#[tonic::async_trait]
impl pb::router_server::Router for RouterFloor {
    async fn route(
        &self,
        req: tonic::Request<pb::RouteRequest>,
    ) -> Result<tonic::Response<pb::RouteResponse>, tonic::Status> {
        let started = Instant::now();
        let req = req.into_inner();
        let reply =
            self.0.forward(&req.turn, req.max_tokens).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        Ok(tonic::Response::new(pb::RouteResponse {
            request_id: req.request_id,
            conversation_id: req.conversation_id,
            reply: reply_text(&reply),
            model: "groq-llama-70b".into(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            ..Default::default()
        }))
    }

    type RouteStreamStream = futures::stream::Empty<Result<pb::RouteChunk, tonic::Status>>;

    async fn route_stream(
        &self,
        _req: tonic::Request<pb::RouteRequest>,
    ) -> Result<tonic::Response<Self::RouteStreamStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("the floor measures unary Route only"))
    }

    async fn feedback(
        &self,
        _req: tonic::Request<pb::FeedbackRequest>,
    ) -> Result<tonic::Response<pb::FeedbackResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the floor measures unary Route only"))
    }

    async fn explain(
        &self,
        _req: tonic::Request<pb::ExplainRequest>,
    ) -> Result<tonic::Response<pb::DecisionRecord>, tonic::Status> {
        Err(tonic::Status::unimplemented("the floor measures unary Route only"))
    }
}

async fn chat(
    State(floor): State<Arc<Floor>>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let turn = body.pointer("/messages/0/content").and_then(|c| c.as_str()).unwrap_or_default();
    let max_tokens = body.get("max_tokens").and_then(|m| m.as_u64()).unwrap_or(8);
    let max_tokens = u32::try_from(max_tokens).unwrap_or(u32::MAX);
    floor.forward(turn, max_tokens).await.map(Json).map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis.as_str()).context("--redis")?;
    let redis = ConnectionManager::new(client).await.context("connecting to Redis")?;
    let http = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(64).build()?;
    let floor = Arc::new(Floor {
        redis,
        http,
        url: format!("{}/chat/completions", args.upstream.trim_end_matches('/')),
        trips: args.redis_trips,
    });
    let stop = CancellationToken::new();
    let shutdown = Shutdown { drain_delay: Duration::from_millis(50), grace_period: Duration::from_secs(2) };

    let grpc_listener = tokio::net::TcpListener::bind(&args.grpc_listen).await.context("--grpc-listen")?;
    let http_listener = tokio::net::TcpListener::bind(&args.http_listen).await.context("--http-listen")?;
    let routes = tonic::service::Routes::new(pb::router_server::RouterServer::new(RouterFloor(floor.clone())));
    let grpc = triage_core::grpc::serve(grpc_listener, routes, &["triage.v1.Router"], stop.clone(), shutdown, None);
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat)).with_state(floor);
    let http =
        triage_gateway::http::serve_http(http_listener, app, stop.clone(), shutdown, Duration::from_secs(10), None);
    println!(
        "floor: {} Redis round trip(s) per request; gRPC {} HTTP {}",
        args.redis_trips, args.grpc_listen, args.http_listen
    );
    let stopper = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
        Ok::<(), anyhow::Error>(())
    };
    let (g, h, s) = tokio::join!(grpc, http, stopper);
    g?;
    h?;
    s
}

//! The OpenAI-compatible HTTP endpoint: `POST /v1/chat/completions` (stream and not) and
//! `GET /v1/models`, over the same Route flow as gRPC, so existing OpenAI clients work
//! unchanged. Authentication is a middleware; abuse limits (body size, read timeouts,
//! message count, max_tokens) refuse before anything is called or charged.

mod chat;
pub mod error;
pub mod openai;
pub mod tls;

#[cfg(test)]
mod fuzz;

use crate::Gateway;
use crate::auth::Auth;
use crate::grpc::Tenant;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triage_core::grpc::Shutdown;

/// Header carrying the conversation to continue (request) and the one used (response).
pub const CONVERSATION_HEADER: &str = "x-triage-conversation-id";
/// Header carrying the request (idempotency) id.
pub const REQUEST_ID_HEADER: &str = "x-triage-request-id";
/// Header naming the model that answered.
pub const MODEL_HEADER: &str = "x-triage-model";
/// Header naming the policy rule that chose it.
pub const RULE_HEADER: &str = "x-triage-rule";

#[derive(Clone)]
pub(crate) struct AppState {
    gw: Arc<Gateway>,
    auth: Arc<Auth>,
}

/// The endpoint's routes over `gateway`, authenticated by `auth`.
pub fn router(gateway: Arc<Gateway>, auth: Arc<Auth>) -> Router {
    let state = AppState { gw: gateway, auth };
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/models", get(chat::models))
        .fallback(|| async { ApiError::no_route() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Sets the `Tenant` extension from the bearer key; anything the body or other headers say
/// about the tenant is never read.
async fn authenticate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match s.auth.authenticate(header) {
        Ok(tenant) => {
            req.extensions_mut().insert(Tenant(tenant));
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Serves `router` on `listener` until `stop`, then keeps accepting for the drain delay
/// (load balancers notice the NOT_SERVING health first) and waits up to the grace period
/// for in-flight requests. Accepted sockets get TCP_NODELAY (SSE deltas are small writes);
/// a client that does not send its headers within `header_read_timeout` is dropped. With
/// `tls`, connections are HTTPS.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    shutdown: Shutdown,
    header_read_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let drained = async {
        stop.cancelled().await;
        tokio::time::sleep(shutdown.drain_delay).await;
    };
    tokio::pin!(drained);
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = &mut drained => break,
            acc = listener.accept() => match acc {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let svc = hyper_util::service::TowerToHyperService::new(router.clone());
        let Some(tls) = tls.clone() else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(tcp), svc));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "http connection");
                }
            });
            continue;
        };
        // The handshake runs off the accept loop and counts against the header deadline, so
        // a client that stalls it only holds its own socket.
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(header_read_timeout, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(error = %e, "tls handshake"),
                Err(_) => return tracing::debug!("tls handshake timed out"),
            };
            if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(stream), svc)).await {
                tracing::debug!(error = %e, "https connection");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(shutdown.grace_period, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?shutdown.grace_period, "grace period over; abandoning in-flight HTTP requests");
    }
    Ok(())
}

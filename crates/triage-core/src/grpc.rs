//! Serving and calling gRPC the same way in every service: health (grpc.health.v1) and
//! reflection on every server, TCP_NODELAY everywhere, trace context in metadata, and a
//! graceful shutdown that flips health to NOT_SERVING before draining.

use crate::error::{Error, Result};
use opentelemetry::propagation::{Extractor, Injector};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic_health::ServingStatus;
use tracing_opentelemetry::OpenTelemetrySpanExt;

mod coalesce;

/// A channel whose every request carries the caller's trace context.
pub type TracedChannel = InterceptedService<Channel, TraceInterceptor>;

/// Binds a listener; port 0 picks a free port.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| Error::Address { addr: addr.to_string(), reason: e.to_string() })
}

/// A lazily-connecting channel to another service: services may start in any order.
/// With `tls`, the connection is TLS (an `http://` URL is taken as `https://`): the server
/// is verified against the configured CA and, for mTLS, the client identity is presented.
pub fn channel(url: &str, tls: Option<&ClientTlsConfig>) -> Result<TracedChannel> {
    let addr_err = |e: &dyn std::fmt::Display| Error::Address { addr: url.to_string(), reason: e.to_string() };
    let url = match (tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_string(),
    };
    let mut ep = Endpoint::from_shared(url.clone())
        .map_err(|e| addr_err(&e))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = tls {
        ep = ep.tls_config(tls.clone()).map_err(|e| addr_err(&e))?;
    }
    Ok(InterceptedService::new(ep.connect_lazy(), TraceInterceptor))
}

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ConfigRead { path: path.to_path_buf(), source })
}

/// Client TLS trusting the PEM CA at `ca`, presenting `identity` (cert, key PEM files) for mTLS.
pub fn client_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTlsConfig> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_pem(ca)?));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
    }
    Ok(tls)
}

/// Server TLS with the PEM certificate chain and key; with `client_ca`, clients must present
/// a certificate signed by it (mTLS).
pub fn server_tls(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTlsConfig> {
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem(ca)?));
    }
    Ok(tls)
}

/// Injects the current span's trace context (W3C traceparent) into outgoing metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        let cx = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut MetadataInjector(req.metadata_mut()));
        });
        Ok(req)
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// A span for a handled RPC, child of the caller's trace when the metadata carries one.
pub fn server_span(rpc: &'static str, metadata: &tonic::metadata::MetadataMap) -> tracing::Span {
    let span = tracing::info_span!("rpc", rpc, otel.kind = "server");
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MetadataExtractor(metadata)));
    let _ = span.set_parent(parent);
    span
}

/// How a server shuts down.
#[derive(Debug, Clone, Copy)]
pub struct Shutdown {
    /// Time between NOT_SERVING and refusing new connections, so load balancers notice.
    pub drain_delay: Duration,
    /// Longest wait for in-flight calls after that.
    pub grace_period: Duration,
}

/// Serves `routes` on `listener` with health and reflection until `stop` is cancelled, then
/// reports NOT_SERVING, stops accepting and drains in-flight calls within the grace period.
/// `names` are the fully-qualified services reported by health (`triage.v1.Router`, ...).
/// With `tls`, every connection (gRPC and /metrics alike) is TLS; without, plain TCP that
/// also takes HTTP/1.1 for /metrics.
pub async fn serve(
    listener: TcpListener,
    routes: tonic::service::Routes,
    names: &[&str],
    stop: CancellationToken,
    shutdown: Shutdown,
    tls: Option<ServerTlsConfig>,
) -> Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    report(&reporter, names, ServingStatus::Serving).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(triage_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Address { addr: "reflection".into(), reason: e.to_string() })?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(triage_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Address { addr: "reflection".into(), reason: e.to_string() })?;
    let routes = routes.add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha);
    // Prometheus scrapes /metrics over HTTP/1.1 on the same port as gRPC: one port per process.
    let routes = tonic::service::Routes::from(routes.into_axum_router().merge(crate::metrics::router()));

    // TCP_NODELAY on every accepted connection: the builder's `tcp_nodelay` is ignored with a
    // custom incoming stream, and Nagle + delayed ACK hold small HTTP/2 frames for ~40 ms.
    // Writes gathered until h2 flushes, so a small unary answer and its trailers share one
    // write (see `coalesce`).
    let incoming = tokio_stream::StreamExt::map(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        |conn| conn.map(coalesce::Coalescing::new),
    );
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let drained = CancellationToken::new();
    let signal = {
        let stop = stop.clone();
        let drained = drained.clone();
        async move {
            stop.cancelled().await;
            report(&reporter, &names, ServingStatus::NotServing).await;
            tracing::info!(delay = ?shutdown.drain_delay, "health NOT_SERVING; draining");
            tokio::time::sleep(shutdown.drain_delay).await;
            drained.cancel();
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server =
        builder.accept_http1(true).tcp_nodelay(true).add_routes(routes).serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => return res.map_err(Error::from),
        _ = drained.cancelled() => {}
    }
    match tokio::time::timeout(shutdown.grace_period, server).await {
        Ok(res) => res.map_err(Error::from),
        Err(_) => {
            tracing::warn!(grace = ?shutdown.grace_period, "grace period over; abandoning in-flight calls");
            Ok(())
        }
    }
}

/// Sets every one of `names`, and the server as a whole (""), to `status`.
async fn report<S: AsRef<str>>(reporter: &tonic_health::server::HealthReporter, names: &[S], status: ServingStatus) {
    for name in names.iter().map(AsRef::as_ref).chain(std::iter::once("")) {
        reporter.set_service_status(name, status).await;
    }
}

/// Serves grpc.health.v1 alone, in plain text, on `listener`: the kubelet's gRPC probe speaks
/// no TLS, so a process whose service ports serve TLS is probed here. It reports what those
/// ports report: `names` SERVING, then NOT_SERVING from `stop` on (through the drain and the
/// grace period, so no probe sends traffic back to a draining pod), until `done`.
pub async fn serve_health(
    listener: TcpListener,
    names: &[&str],
    stop: CancellationToken,
    done: CancellationToken,
) -> Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    report(&reporter, names, ServingStatus::Serving).await;
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let flip = {
        let done = done.clone();
        async move {
            tokio::select! {
                _ = stop.cancelled() => report(&reporter, &names, ServingStatus::NotServing).await,
                _ = done.cancelled() => {}
            }
            // The reporter lives as long as the server: dropping it would end the watches.
            done.cancelled().await;
        }
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, done.cancelled_owned());
    let (served, ()) = tokio::join!(server, flip);
    served.map_err(Error::from)
}

//! TLS on gRPC: server TLS on the public gateway port (`server.tls`) and mTLS between
//! services (`services.tls`), with a CA and certificates generated per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Process, TestConfig, models_present, redis, turn};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use triage_proto::pb::router_client::RouterClient;

fn yaml(s: &str) -> serde_yaml::Value {
    serde_yaml::from_str(s).unwrap()
}

/// PEM files of a generated CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, all signed by the CA.
struct Pki {
    ca_pem: String,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["triage-test-client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let out = Pki {
        ca_pem: ca.pem(),
        ca: dir.join("ca.crt"),
        server_cert: dir.join("tls.crt"),
        server_key: dir.join("tls.key"),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    };
    std::fs::write(&out.ca, &out.ca_pem).unwrap();
    std::fs::write(&out.server_cert, server.pem()).unwrap();
    std::fs::write(&out.server_key, server_key.serialize_pem()).unwrap();
    out
}

impl Pki {
    /// Trusts the CA; presents the client certificate when `with_cert`.
    fn client(&self, with_cert: bool) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if with_cert { tls.identity(Identity::from_pem(&self.client_cert_pem, &self.client_key_pem)) } else { tls }
    }
}

async fn connect(url: &str, tls: Option<ClientTlsConfig>) -> Option<Channel> {
    let mut ep = Endpoint::from_shared(url.to_string()).ok()?.connect_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        ep = ep.tls_config(tls).ok()?;
    }
    ep.connect().await.ok()
}

async fn health(url: &str, tls: Option<ClientTlsConfig>, service: &str) -> Result<ServingStatus, String> {
    let channel = connect(url, tls).await.ok_or("connect failed")?;
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.into() })
        .await
        .map_err(|s| s.to_string())?;
    ServingStatus::try_from(resp.into_inner().status).map_err(|e| e.to_string())
}

async fn wait_serving(url: &str, tls: Option<ClientTlsConfig>, service: &str, proc: &mut Process) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if health(url, tls.clone(), service).await == Ok(ServingStatus::Serving) {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("triage exited early ({status}):\n{}", proc.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{service} at {url} never became SERVING:\n{}", proc.log_text());
}

fn https(url: &str) -> String {
    url.replace("http://", "https://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_grpc_port_serves_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let redis = redis();
    let tls = format!("{{cert: '{}', key: '{}'}}", pki.server_cert.display(), pki.server_key.display());
    let cfg = TestConfig::new(&redis.url(), "grpc-tls", |v| {
        v["classifier"] = yaml("{kind: heuristic}");
        v["server"]["tls"] = yaml(&tls);
    });
    let mut proc = Process::serve(&cfg, "all", &[]);
    let url = https(&cfg.url("gateway"));
    wait_serving(&url, Some(pki.client(false)), "triage.v1.Router", &mut proc).await;

    // A plaintext client gets nothing from the TLS port.
    assert!(health(&cfg.url("gateway"), None, "triage.v1.Router").await.is_err());
    // Nor does a TLS client that does not trust the CA.
    let untrusted = ClientTlsConfig::new();
    assert!(health(&url, Some(untrusted), "triage.v1.Router").await.is_err());

    if !models_present() {
        eprintln!("skipped Route: model files missing (scripts/fetch-models.sh)");
        return;
    }
    let mut router = RouterClient::new(connect(&url, Some(pki.client(false))).await.unwrap());
    let resp = router.route(turn("What are your opening hours?")).await.unwrap().into_inner();
    assert!(!resp.model.is_empty(), "{resp:?}");
    assert!(!resp.request_id.is_empty());

    // The CLI reaches the TLS gateway with --ca (an http:// address is taken as https://).
    let cli = |ca: Option<&Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_triage"));
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        cmd.args(["explain", &resp.request_id, "--json", "--addr", &cfg.url("gateway")])
            .env_remove("TRIAGE_CA")
            .env_remove("TRIAGE_API_KEY")
            .output()
            .unwrap()
    };
    let out = cli(Some(&pki.ca));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&resp.request_id));
    assert!(!cli(None).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_talk_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let redis = redis();
    let tls = format!(
        "{{ca: '{}', cert: '{}', key: '{}'}}",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let cfg = TestConfig::new(&redis.url(), "grpc-mtls", |v| {
        v["classifier"] = yaml("{kind: heuristic}");
        v["services"]["tls"] = yaml(&tls);
    });
    let mut classifier = Process::serve(&cfg, "classifier", &[]);
    let mut policy = Process::serve(&cfg, "policy", &[]);
    let mut rest = Process::serve(&cfg, "gateway,backends,context,ledger", &[]);
    let with_cert = Some(pki.client(true));
    wait_serving(&https(&cfg.url("classifier")), with_cert.clone(), "triage.v1.Classifier", &mut classifier).await;
    wait_serving(&https(&cfg.url("policy")), with_cert.clone(), "triage.v1.Policy", &mut policy).await;
    wait_serving(&https(&cfg.url("ledger")), with_cert.clone(), "triage.v1.Ledger", &mut rest).await;
    // The public gateway port has no `server.tls` here: plain gRPC.
    wait_serving(&cfg.url("gateway"), None, "triage.v1.Router", &mut rest).await;

    // Internal ports refuse a client without a certificate, and plaintext.
    let classifier_url = https(&cfg.url("classifier"));
    assert!(health(&classifier_url, Some(pki.client(false)), "triage.v1.Classifier").await.is_err());
    assert!(health(&cfg.url("classifier"), None, "triage.v1.Classifier").await.is_err());

    if !models_present() {
        eprintln!("skipped Route: model files missing (scripts/fetch-models.sh)");
        return;
    }
    // gateway -> classifier, policy (other processes), backends, context, ledger: all over mTLS.
    let mut router = RouterClient::new(connect(&cfg.url("gateway"), None).await.unwrap());
    let resp = router.route(turn("What are your opening hours?")).await.unwrap().into_inner();
    assert!(!resp.model.is_empty(), "{resp:?}");
    assert!(!resp.rule_id.is_empty(), "{resp:?}");
    // The classifier in the other process answered (no fallback classification).
    let rec = router
        .explain(triage_proto::pb::ExplainRequest { request_id: resp.request_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(["ok", "cache_hit"].contains(&rec.classifier_outcome.as_str()), "{rec:?}");
}

/// The kubelet's gRPC probe speaks no TLS: a process whose ports serve TLS answers health in
/// plain text on `server.health_listen` (what the Helm chart probes), and that port flips to
/// NOT_SERVING with the TLS ports when the process is told to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_process_is_probed_on_its_plain_text_health_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let redis = redis();
    let probe_port = triage_testkit::free_port();
    let probe = format!("http://127.0.0.1:{probe_port}");
    let tls = format!("{{cert: '{}', key: '{}'}}", pki.server_cert.display(), pki.server_key.display());
    let cfg = TestConfig::new(&redis.url(), "probe-tls", |v| {
        v["classifier"] = yaml("{kind: heuristic}");
        v["server"]["tls"] = yaml(&tls);
        v["server"]["health_listen"] = format!("127.0.0.1:{probe_port}").into();
        v["server"]["drain_delay"] = "2s".into();
    });
    let mut proc = Process::serve(&cfg, "all", &[]);
    wait_serving(&https(&cfg.url("gateway")), Some(pki.client(false)), "triage.v1.Router", &mut proc).await;
    for service in ["triage.v1.Router", "triage.v1.Ledger", ""] {
        assert_eq!(health(&probe, None, service).await, Ok(ServingStatus::Serving), "{service:?}");
    }
    // Health alone: nothing else is reachable without TLS.
    let mut router = RouterClient::new(connect(&probe, None).await.unwrap());
    let refused = router.route(turn("What are your opening hours?")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    proc.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(health(&probe, None, "triage.v1.Router").await, Ok(ServingStatus::NotServing));
    assert_eq!(health(&probe, None, "").await, Ok(ServingStatus::NotServing));
    let status = proc.wait_exit(Duration::from_secs(30)).expect("triage did not exit");
    assert!(status.success(), "{status}:\n{}", proc.log_text());
}

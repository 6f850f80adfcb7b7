//! End-to-end over the real binary: the OpenAI-compatible HTTP endpoint driven by the
//! official `openai` Python package, tenant authentication on gRPC and HTTP (spoofing,
//! revoked keys, another tenant's conversation), rate limits and abuse limits.

// Helpers outside #[test] functions panic on setup failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sha2::Digest;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use triage_proto::pb;
use triage_testkit::RedisServer;

const ACME: &str = "sk-acme-0123456789";
const ACME_REVOKED: &str = "sk-acme-old";
const BETA: &str = "sk-beta-0123456789";
const LIMITED: &str = "sk-limited-0123";
const THRIFTY: &str = "sk-thrifty-0123";

fn sha(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

fn yaml(s: &str) -> serde_yaml::Value {
    serde_yaml::from_str(s).unwrap()
}

struct Running {
    _redis: RedisServer,
    cfg: TestConfig,
    _proc: Process,
}

impl Running {
    fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.cfg.ports["http"])
    }
}

/// The binary with keys for two tenants (one revoked acme key), a tenant limited to two
/// requests a minute, small abuse limits and the fast heuristic classifier.
async fn start(prefix: &str) -> Option<Running> {
    start_with(prefix, |_| {}).await
}

async fn start_with(prefix: &str, extra: impl FnOnce(&mut serde_yaml::Value)) -> Option<Running> {
    if !models_present() {
        eprintln!("skipped: model files missing (scripts/fetch-models.sh)");
        return None;
    }
    let redis = redis();
    let cfg = TestConfig::new(&redis.url(), prefix, |v| {
        v["classifier"] = yaml("{kind: heuristic}");
        v["auth"] = yaml(&format!(
            "{{keys: [{{sha256: {}, tenant: acme}}, {{sha256: {}, tenant: acme, revoked: true}}, {{sha256: {}, tenant: beta}}, {{sha256: {}, tenant: limited}}, {{sha256: {}, tenant: thrifty}}],
              rate_limits: {{tenants: {{limited: {{requests_per_minute: 2, tokens_per_minute: 100000}},
                                        thrifty: {{requests_per_minute: 1000, tokens_per_minute: 10}}}}}}}}",
            sha(ACME),
            sha(ACME_REVOKED),
            sha(BETA),
            sha(LIMITED),
            sha(THRIFTY)
        ));
        for (k, val) in [
            ("header_read_timeout", "1s"),
            ("body_read_timeout", "1s"),
            ("max_body_bytes", "8192"),
            ("max_messages", "4"),
        ] {
            v["server"][k] = yaml(val);
        }
        extra(v);
    });
    let mut proc = Process::serve(&cfg, "all", &[]);
    let written: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&cfg.path).unwrap()).unwrap();
    if written["server"]["tls"].is_mapping() {
        // The gRPC port speaks TLS too: wait for the HTTP listener, bound once serving starts.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", cfg.ports["http"])).is_err() {
            assert!(start.elapsed() < Duration::from_secs(120), "HTTP never listened:\n{}", proc.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        wait_serving(&cfg.url("gateway"), "triage.v1.Router", &mut proc).await;
    }
    Some(Running { _redis: redis, cfg, _proc: proc })
}

fn authed<T>(msg: T, key: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(k) = key {
        req.metadata_mut().insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    req
}

fn chat_body(text: &str) -> serde_json::Value {
    serde_json::json!({"model": "triage/auto", "messages": [{"role": "user", "content": text}], "max_tokens": 4, "temperature": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_client_stream_and_not() {
    let Some(r) = start("http-openai").await else { return };
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("tests/openai_client.py"))
        .env("TRIAGE_HTTP", r.http("/v1"))
        .env("TRIAGE_KEY", ACME)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "openai client failed (scripts/setup.sh installs the openai package):\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!("openai client: {summary}");
    assert!(summary["stream"]["chunks"].as_u64().unwrap() >= 3, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_comes_from_the_key_only() {
    let Some(r) = start("http-auth").await else { return };
    let mut grpc = router(&r.cfg.url("gateway")).await;

    // Missing, wrong and revoked keys look the same and say nothing more.
    for key in [None, Some("sk-wrong"), Some(ACME_REVOKED)] {
        let e = grpc.route(authed(turn("hi"), key)).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (tonic::Code::Unauthenticated, "invalid or missing API key"), "{key:?}");
    }
    let http = reqwest::Client::new();
    for key in [None, Some("sk-wrong"), Some(ACME_REVOKED)] {
        let mut req = http.post(r.http("/v1/chat/completions")).json(&chat_body("hi"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{key:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["message"], "Invalid or missing API key.");
    }

    // acme starts a conversation over gRPC; beta's key cannot continue it or explain it.
    let acme = grpc.route(authed(turn("What are your opening hours?"), Some(ACME))).await.unwrap().into_inner();
    let steal = pb::RouteRequest { conversation_id: acme.conversation_id.clone(), ..turn("and on Sunday?") };
    let e = grpc.route(authed(steal.clone(), Some(BETA))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    let explain = pb::ExplainRequest { request_id: acme.request_id.clone() };
    assert_eq!(grpc.explain(authed(explain.clone(), Some(BETA))).await.unwrap_err().code(), tonic::Code::NotFound);
    let record = grpc.explain(authed(explain, Some(ACME))).await.unwrap().into_inner();
    assert_eq!(record.tenant, "acme");
    grpc.route(authed(steal, Some(ACME))).await.unwrap();

    // Same over HTTP.
    let resp = http
        .post(r.http("/v1/chat/completions"))
        .bearer_auth(BETA)
        .header("x-triage-conversation-id", &acme.conversation_id)
        .json(&chat_body("and on Monday?"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Spoofing: a body field and headers naming another tenant change nothing; the
    // conversation lands under the key's tenant.
    let mut body = chat_body("Where is my parcel?");
    body["tenant"] = "beta".into();
    body["user"] = "beta".into();
    let resp = http
        .post(r.http("/v1/chat/completions"))
        .bearer_auth(ACME)
        .header("x-triage-tenant", "beta")
        .header("x-tenant", "beta")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let conversation = resp.headers()["x-triage-conversation-id"].to_str().unwrap().to_string();
    let request_id = resp.headers()["x-triage-request-id"].to_str().unwrap().to_string();
    let mut spoof = authed(pb::ExplainRequest { request_id: request_id.clone() }, Some(ACME));
    spoof.metadata_mut().insert("x-triage-tenant", "beta".parse().unwrap());
    assert_eq!(grpc.explain(spoof).await.unwrap().into_inner().tenant, "acme");
    let as_beta = pb::RouteRequest { conversation_id: conversation, ..turn("hello?") };
    assert_eq!(grpc.route(authed(as_beta, Some(BETA))).await.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_abuse_limits() {
    let Some(r) = start("http-limits").await else { return };
    let http = reqwest::Client::new();
    let post = |key: &str, body: serde_json::Value| {
        http.post(r.http("/v1/chat/completions")).bearer_auth(key).json(&body).send()
    };

    // Abuse limits answer 4xx in OpenAI's error shape without calling anything.
    let many: Vec<_> = (0..5).map(|_| serde_json::json!({"role": "user", "content": "x"})).collect();
    let cases = [
        (serde_json::json!({"model": "triage/auto", "messages": many}), 400, "messages"),
        (
            serde_json::json!({"model": "triage/auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}),
            400,
            "max_tokens",
        ),
        (
            serde_json::json!({"model": "triage/auto", "messages": [{"role": "user", "content": "x".repeat(9000)}]}),
            413,
            "",
        ),
        (serde_json::json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}), 404, "model"),
    ];
    for (body, status, param) in cases {
        let resp = post(ACME, body).await.unwrap();
        assert_eq!(resp.status(), status);
        let e: serde_json::Value = resp.json().await.unwrap();
        if !param.is_empty() {
            assert_eq!(e["error"]["param"], param, "{e}");
        }
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let resp = http.post(r.http("/v1/chat/completions")).bearer_auth(ACME).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);

    // Slow clients: headers not finished in time -> connection dropped; body not finished
    // in time -> 408.
    let addr = format!("127.0.0.1:{}", r.cfg.ports["http"]);
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(start.elapsed() < Duration::from_secs(5), "slow headers were not cut off");
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\""
    );
    slow.write_all(head.as_bytes()).unwrap();
    let mut resp = [0u8; 64];
    let n = slow.read(&mut resp).unwrap();
    assert!(String::from_utf8_lossy(&resp[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&resp[..n]));

    // Two requests a minute for `limited`, shared by HTTP and gRPC; then 429 / RESOURCE_EXHAUSTED
    // with Retry-After. Other tenants are unaffected.
    for _ in 0..2 {
        assert_eq!(post(LIMITED, chat_body("hi")).await.unwrap().status(), 200);
    }
    let resp = post(LIMITED, chat_body("hi")).await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let e: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    let mut grpc = router(&r.cfg.url("gateway")).await;
    let e = grpc.route(authed(turn("hi"), Some(LIMITED))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert!(e.metadata().get("retry-after").is_some());
    assert_eq!(post(ACME, chat_body("hi")).await.unwrap().status(), 200);

    // Tokens per minute on gRPC: the first answer's tokens exceed `thrifty`'s 10 a minute,
    // so the next call is refused until the bucket refills.
    grpc.route(authed(turn("hi"), Some(THRIFTY))).await.unwrap();
    let e = grpc.route(authed(turn("hi again"), Some(THRIFTY))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let tls = format!("{{cert: '{}', key: '{}'}}", cert.display(), key.display());
    let Some(r) = start_with("http-tls", |v| v["server"]["tls"] = yaml(&tls)).await else { return };

    let url = r.http("/v1/models").replace("http://", "https://");
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = trusted.get(&url).bearer_auth(ACME).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let models: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "triage/auto");
    // A client that does not trust the CA, or speaks plain HTTP, gets nothing.
    assert!(reqwest::Client::new().get(&url).bearer_auth(ACME).send().await.is_err());
    let plain = reqwest::Client::new().get(r.http("/v1/models")).bearer_auth(ACME).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

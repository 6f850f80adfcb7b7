//! Starts the real `triage` binary against a real redis-server, on loopback ports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use triage_proto::pb;
use triage_testkit::{RedisServer, free_port};

pub const SERVICES: [&str; 6] = ["gateway", "classifier", "policy", "backends", "context", "ledger"];

pub fn repo_root() -> PathBuf {
    triage_testkit::repo_root()
}

/// True when the model files are present (CI fetches them in scripts/setup.sh).
pub fn models_present() -> bool {
    repo_root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf").exists()
        && repo_root().join("models/all-minilm-l6-v2/model.safetensors").exists()
}

/// A config file: the embedded default with a real Redis and fresh loopback ports.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub ports: std::collections::BTreeMap<&'static str, u16>,
}

impl TestConfig {
    pub fn new(redis_url: &str, prefix: &str, patch: impl FnOnce(&mut serde_yaml::Value)) -> TestConfig {
        let mut v: serde_yaml::Value = serde_yaml::from_str(triage_core::config::DEFAULT_CONFIG_YAML).unwrap();
        v["redis"] = serde_yaml::from_str(&format!("{{url: '{redis_url}', key_prefix: '{prefix}'}}")).unwrap();
        // Each process gets its own HTTP port too: the default 8080 would collide across tests.
        let http = free_port();
        v["server"] = serde_yaml::from_str(&format!(
            "{{drain_delay: 300ms, grace_period: 30s, http_listen: '127.0.0.1:{http}'}}"
        ))
        .unwrap();
        let mut ports = std::collections::BTreeMap::new();
        ports.insert("http", http);
        let mut services = serde_yaml::Mapping::new();
        for s in SERVICES {
            let p = free_port();
            ports.insert(s, p);
            let ep: serde_yaml::Value =
                serde_yaml::from_str(&format!("{{listen: '127.0.0.1:{p}', connect: 'http://127.0.0.1:{p}'}}")).unwrap();
            services.insert(s.into(), ep);
        }
        v["services"] = services.into();
        patch(&mut v);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triage.yaml");
        std::fs::write(&path, serde_yaml::to_string(&v).unwrap()).unwrap();
        TestConfig { dir, path, ports }
    }

    pub fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }
}

/// A running `triage serve` process; killed on drop.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn serve(cfg: &TestConfig, target: &str, env: &[(&str, &str)]) -> Process {
        let log = cfg.dir.path().join(format!("{}.log", target.replace(',', "_")));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
        cmd.arg("--config")
            .arg(&cfg.path)
            .args(["serve", "--target", target])
            .env("TRIAGE_HOME", repo_root())
            .env("RUST_LOG", "info")
            .env_remove("TRIAGE_REDIS_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .env_remove("GROQ_API_KEY")
            .stdout(Stdio::null())
            .stderr(out.try_clone().unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Process { child: cmd.spawn().unwrap(), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn health(url: &str, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string()).ok()?.connect().await.ok()?;
    let mut client = HealthClient::new(channel);
    let resp = client.check(HealthCheckRequest { service: service.into() }).await.ok()?;
    ServingStatus::try_from(resp.into_inner().status).ok()
}

/// Waits until `service` at `url` reports SERVING (model loading can take a few seconds).
pub async fn wait_serving(url: &str, service: &str, proc: &mut Process) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if health(url, service).await == Some(ServingStatus::Serving) {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("triage exited early ({status}):\n{}", proc.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{service} at {url} never became SERVING:\n{}", proc.log_text());
}

pub async fn router(url: &str) -> pb::router_client::RouterClient<tonic::transport::Channel> {
    pb::router_client::RouterClient::connect(url.to_string()).await.unwrap()
}

pub fn turn(text: &str) -> pb::RouteRequest {
    pb::RouteRequest { turn: text.into(), max_tokens: 8, temperature: Some(0.0), ..Default::default() }
}

pub fn redis() -> RedisServer {
    RedisServer::start().expect("redis-server (run scripts/setup.sh)")
}

/// `GET path` over plain HTTP/1.1 (what a Prometheus scrape sends); the response body.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

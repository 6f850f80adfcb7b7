//! Real parts for tests: a `redis-server` per test on a free port, and HTTP servers that
//! speak the OpenAI and Anthropic wire formats with scripted faults. Nothing here is an
//! in-process stand-in.

pub mod fake;
pub mod fake_anthropic;
pub mod fake_openai;
pub mod redis_server;

pub use fake::{FakeServer, Fault, RecordedRequest, Reply};
pub use fake_anthropic::FakeAnthropic;
pub use fake_openai::FakeOpenAi;
pub use redis_server::RedisServer;

/// A free TCP port on 127.0.0.1 (bound then released; good enough for test processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

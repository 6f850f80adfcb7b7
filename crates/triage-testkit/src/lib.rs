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
pub use redis_server::{CommandStat, RedisServer, command_stats};

/// The repository root, two levels above the manifest directory of the crate under test.
/// The directory cargo passes when it runs a test comes first: the one compiled in is stale
/// when a shared target directory reuses a build made in another clone of the repository.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for test processes).
///
/// Ports come from below Linux's ephemeral range (32768-60999), so the outgoing connections
/// of concurrent tests (Redis clients, HTTP clients) cannot take a port between this check
/// and the child process binding it; each process walks its own stride of the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let offset = (std::process::id() % 97) * 123;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (offset + n * 7) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

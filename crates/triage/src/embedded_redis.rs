//! A private redis-server child for the all-in-one embedded default, so a laptop needs no
//! Redis set up. It listens on a unix socket only (no port to collide with, nothing
//! reachable from outside) and keeps nothing on disk.

use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The running child; killed when dropped.
pub struct EmbeddedRedis {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl EmbeddedRedis {
    /// Starts `binary` and waits until it accepts connections.
    pub async fn start(binary: &str) -> Result<EmbeddedRedis> {
        let dir = tempfile::Builder::new().prefix("triage-redis-").tempdir()?;
        let socket = dir.path().join("redis.sock");
        let child = Command::new(binary)
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot start `{binary}` for the embedded store: install it (scripts/setup.sh) or set redis.url / TRIAGE_REDIS_URL")
            })?;
        let mut me = EmbeddedRedis { child, socket, _dir: dir };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(status) = me.child.try_wait()? {
                bail!("embedded redis-server exited at start-up: {status}");
            }
            if tokio::net::UnixStream::connect(&me.socket).await.is_ok() {
                tracing::info!(socket = %me.socket.display(), "embedded redis-server started");
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("embedded redis-server did not start within 10 s")
    }

    /// Connection URL.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Stops the child.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

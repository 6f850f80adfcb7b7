//! Starts a private `redis-server` on a free loopback port, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server owned by a test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

fn binary() -> String {
    std::env::var("TRIAGE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Runs redis-server under a shell that kills it as soon as its stdin (a pipe from this
/// process) closes: on [`RedisServer::stop`], and also when the test process exits without
/// dropping the server, as a server shared by every case of a property test in a `static`
/// does. Without it each such test left a redis-server running after the run.
const SUPERVISOR: &str = r#"exec 3<&0 </dev/null
"$@" & server=$!
{ read -r _ <&3; kill -KILL "$server" 2>/dev/null; } &
wait "$server""#;

/// Whether `bin` (a path, or a name looked up in PATH) is a file: the shell would otherwise
/// turn a missing binary into a server that never answers.
fn exists(bin: &str) -> bool {
    if bin.contains('/') {
        return std::path::Path::new(bin).is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(bin).is_file()))
}

fn spawn(port: u16, dir: &std::path::Path) -> std::io::Result<Child> {
    let bin = binary();
    if !exists(&bin) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cannot start {bin}: not found (run scripts/setup.sh)"),
        ));
    }
    Command::new("sh")
        .args(["-c", SUPERVISOR, "sh", &bin])
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {bin}: {e} (run scripts/setup.sh)")))
}

impl RedisServer {
    /// Starts redis-server (from PATH, or `TRIAGE_REDIS_SERVER`) and waits until it answers.
    pub fn start() -> std::io::Result<RedisServer> {
        for _ in 0..5 {
            let port = crate::free_port();
            let dir = tempfile::tempdir()?;
            let child = spawn(port, dir.path())?;
            let mut server = RedisServer { child: Some(child), port, _dir: dir };
            if server.wait_ready(Duration::from_secs(5)) {
                return Ok(server);
            }
            // Port race with another test: try another.
        }
        Err(std::io::Error::other("redis-server did not become ready"))
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"+PONG")
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (to test Redis outages); `restart` brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Closing the pipe is the signal (see `SUPERVISOR`); the shell exits once the
            // server is gone, so the port is free when this returns.
            drop(c.stdin.take());
            let start = Instant::now();
            while matches!(c.try_wait(), Ok(None)) {
                if start.elapsed() > Duration::from_secs(5) {
                    // Not expected; never hang a test run on it.
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port after [`RedisServer::stop`].
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.child = Some(spawn(self.port, self._dir.path())?);
        if self.wait_ready(Duration::from_secs(5)) {
            Ok(())
        } else {
            Err(std::io::Error::other("redis-server did not restart"))
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One command's counters in `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    /// Calls since the last `CONFIG RESETSTAT`, those made inside scripts included.
    pub calls: u64,
    /// Microseconds spent in them.
    pub usec: u64,
}

/// `INFO commandstats` by command name (`get`, `evalsha`, `config|resetstat`...).
pub async fn command_stats<C: redis::aio::ConnectionLike>(
    conn: &mut C,
) -> redis::RedisResult<std::collections::BTreeMap<String, CommandStat>> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await?;
    Ok(parse_command_stats(&info))
}

fn parse_command_stats(info: &str) -> std::collections::BTreeMap<String, CommandStat> {
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_")?.split_once(':'))
        .map(|(name, fields)| {
            let field = |f: &str| {
                fields.split(',').find_map(|kv| kv.strip_prefix(f)?.strip_prefix('=')?.parse::<u64>().ok()).unwrap_or(0)
            };
            (name.to_string(), CommandStat { calls: field("calls"), usec: field("usec") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_parse_by_name() {
        let info = "# Commandstats\r\ncmdstat_get:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0\r\n\
                    cmdstat_config|resetstat:calls=1,usec=5,usec_per_call=5.00\r\n";
        let stats = parse_command_stats(info);
        assert_eq!(stats["get"], CommandStat { calls: 3, usec: 12 });
        assert_eq!(stats["config|resetstat"], CommandStat { calls: 1, usec: 5 });
        assert_eq!(stats.len(), 2);
    }
}

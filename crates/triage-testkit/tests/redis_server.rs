//! The private redis-server goes away with the test process, dropped or not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use triage_testkit::RedisServer;

const LEAKER: &str = "TRIAGE_TESTKIT_LEAK_A_SERVER";

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn gone_within(port: u16, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if !accepts(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Run by the test below in a child process: starts a server, keeps it in a `static` (never
/// dropped, as a property test's shared server is) and exits.
#[test]
#[ignore = "a child process of a_server_never_dropped_dies_with_its_test_process"]
fn leaker() {
    assert!(std::env::var_os(LEAKER).is_some(), "run by a_server_never_dropped_dies_with_its_test_process");
    static SERVER: std::sync::OnceLock<RedisServer> = std::sync::OnceLock::new();
    let port = SERVER.get_or_init(|| RedisServer::start().unwrap()).port();
    println!("port={port}");
    std::process::exit(0);
}

#[test]
fn a_server_never_dropped_dies_with_its_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leaker", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(LEAKER, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let port: u16 = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("port=").map(|(_, p)| p.trim().parse().unwrap()))
        .expect("the child printed its server's port");
    assert!(child.wait().unwrap().success());
    assert!(gone_within(port, Duration::from_secs(5)), "redis-server on {port} outlived its test process");
}

#[test]
fn stop_frees_the_port_and_restart_takes_it_again() {
    let mut server = RedisServer::start().unwrap();
    let port = server.port();
    assert!(accepts(port));
    server.stop();
    assert!(!accepts(port), "stopped, yet {port} accepts");
    server.restart().unwrap();
    assert!(accepts(port));
    drop(server);
    assert!(gone_within(port, Duration::from_secs(2)), "dropped, yet {port} accepts");
}

#[test]
fn a_missing_binary_is_named() {
    // In a child process, so no other test sees the variable.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_binary_child", "--ignored", "--nocapture"])
        .env("TRIAGE_REDIS_SERVER", dir.path().join("redis-server"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("not found (run scripts/setup.sh)"), "{said}");
}

/// Run by the test above in a child process with a redis-server path that does not exist.
#[test]
#[ignore = "a child process of a_missing_binary_is_named"]
fn missing_binary_child() {
    match RedisServer::start() {
        Ok(_) => println!("started"),
        Err(e) => println!("error: {e}"),
    }
}

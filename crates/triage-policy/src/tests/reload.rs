//! Hot reload: a good update is applied, a bad one keeps the last good policy and is counted.

use super::*;
use crate::ReloadOutcome;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const GOOD: &str = "version: 1\nrules:\n  - id: default\n    when: 'true'\n    tier: middle\n    reason: middle\n";
const GOOD_FRONTIER: &str =
    "version: 1\nrules:\n  - id: default\n    when: 'true'\n    tier: frontier\n    reason: all frontier\n";
const BAD: &str =
    "version: 1\nrules:\n  - id: default\n    when: 'classification.bogus'\n    tier: fast\n    reason: x\n";

#[test]
fn reload_applies_good_updates_and_keeps_the_last_good_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let p = LocalPolicy::new(&cfg(), Some(&path)).unwrap();
    let r = req(Moderate, 0.8);
    assert_eq!(p.reload_now().unwrap(), ReloadOutcome::Unchanged);
    assert_eq!(decide(&p, &r).model, "groq-llama-70b");

    std::fs::write(&path, GOOD_FRONTIER).unwrap();
    let ReloadOutcome::Applied { version, .. } = p.reload_now().unwrap() else { panic!("not applied") };
    assert_eq!(version, crate::policy_version(GOOD_FRONTIER));
    assert_eq!(decide(&p, &r).model, "claude-sonnet");
    assert_eq!(decide(&p, &r).policy_version, version);

    std::fs::write(&path, BAD).unwrap();
    let err = p.reload_now().unwrap_err();
    assert!(err.to_string().contains("classification.bogus"), "{err}");
    assert_eq!(p.reload_failures(), 1);
    assert!(p.last_reload_error().is_some());
    assert_eq!(decide(&p, &r).model, "claude-sonnet", "the last good policy stays");
    // The same bad version is reported once, not on every poll.
    assert_eq!(p.reload_now().unwrap(), ReloadOutcome::Unchanged);
    assert_eq!(p.reload_failures(), 1);

    std::fs::remove_file(&path).unwrap();
    assert!(p.reload_now().is_err());
    assert_eq!(p.reload_failures(), 2);
    assert_eq!(decide(&p, &r).model, "claude-sonnet");

    std::fs::write(&path, GOOD).unwrap();
    assert!(matches!(p.reload_now().unwrap(), ReloadOutcome::Applied { .. }));
    assert_eq!(decide(&p, &r).model, "groq-llama-70b");
    assert_eq!(p.last_reload_error(), None);
}

#[test]
fn policies_without_a_file_do_not_reload() {
    assert_eq!(default_policy().reload_now().unwrap(), ReloadOutcome::NoFile);
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_task_polls_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let mut c = cfg();
    c.policy.file = Some(path.clone());
    let p = Arc::new(LocalPolicy::from_config(&c).unwrap());
    let cancel = CancellationToken::new();
    let task = p.spawn_reload(Duration::from_millis(20), cancel.clone());

    std::fs::write(&path, GOOD_FRONTIER).unwrap();
    wait_for("the good update", || p.policy_version() == crate::policy_version(GOOD_FRONTIER)).await;
    std::fs::write(&path, BAD).unwrap();
    wait_for("the failure counter", || p.reload_failures() == 1).await;
    assert_eq!(p.policy_version(), crate::policy_version(GOOD_FRONTIER));

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_reload_task_ends_with_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let p = Arc::new(LocalPolicy::new(&cfg(), Some(&path)).unwrap());
    let task = p.spawn_reload(Duration::from_millis(10), CancellationToken::new());
    drop(p);
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

//! Decision records in the rotating JSONL files (`telemetry.decision_log_files`) are exactly
//! what Explain returns; feedback appends the record again, with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;
use triage_core::config::DecisionLogFilesConfig;
use triage_proto::pb;

fn jsonl_records(dir: &std::path::Path) -> Vec<pb::DecisionRecord> {
    let text = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap_or_default();
    // Complete lines only: the writer may be in the middle of one.
    let done = text.rfind('\n').map_or("", |end| &text[..end]);
    done.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_records_in_jsonl_files_equal_explain() {
    let (redis, _fake, mut config, _keys) = common::fake_stack().await;
    let logs = tempfile::tempdir().unwrap();
    config.telemetry.decision_log_files = Some(DecisionLogFilesConfig {
        dir: logs.path().join("decisions"),
        max_file_bytes: 1 << 20,
        max_files: 3,
        queue: 64,
    });
    let config = Arc::new(config);
    let gw = common::local_gateway(&config, &redis, "f").await;
    let mut ids = Vec::new();
    for turn in ["Where is my order 1234?", "Compare your plans for a team of ten"] {
        let r = gw.route("acme", pb::RouteRequest { turn: turn.into(), max_tokens: 8, ..Default::default() }).await;
        ids.push(r.unwrap().request_id);
    }
    let dir = logs.path().join("decisions");
    let wait_for = |n: usize| {
        let dir = dir.clone();
        async move {
            for _ in 0..200 {
                if jsonl_records(&dir).len() >= n {
                    return jsonl_records(&dir);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the writer never wrote {n} records");
        }
    };
    let lines = wait_for(2).await;
    assert_eq!(lines.len(), 2);
    for (line, id) in lines.iter().zip(&ids) {
        let explained = gw.decision_log().get("acme", id).await.unwrap();
        assert_eq!(line, &explained, "the file holds exactly Explain's record");
    }

    // Feedback: the record is appended again with it, and equals Explain's once more.
    let fb = pb::FeedbackRequest {
        request_id: ids[0].clone(),
        resolved: Some(true),
        satisfaction: Some(9),
        ..Default::default()
    };
    assert!(gw.decision_log().add_feedback("acme", fb).await.unwrap().is_some());
    let lines = wait_for(3).await;
    let explained = gw.decision_log().get("acme", &ids[0]).await.unwrap();
    assert_eq!(explained.feedback.as_ref().and_then(|f| f.satisfaction), Some(9));
    assert_eq!(lines[2], explained);
}

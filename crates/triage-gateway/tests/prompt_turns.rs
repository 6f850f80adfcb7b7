//! How much of a conversation a model's prompt carries: `context.prompt_turns`, unless the
//! model sets its own `prompt_turns` (a small model that repeats the last reply it is shown
//! gets only the new turn).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use triage_proto::pb;
use triage_testkit::Reply;

/// Messages the provider received for the second turn of a conversation, with every model's
/// `prompt_turns` set to `turns`.
async fn second_turn_messages(turns: Option<u32>) -> Vec<serde_json::Value> {
    let (redis, fake, mut config, _dir) = common::fake_stack().await;
    for m in config.models.values_mut() {
        m.prompt_turns = turns;
    }
    let gw = common::local_gateway(&Arc::new(config), &redis, "p").await;
    fake.set_reply(Reply { text: "Your order ships on Monday.".into(), ..Reply::default() });
    let first = gw.route("acme", turn("conv-p", "Where is my order?")).await.unwrap();
    let second = gw.route("acme", turn("conv-p", "Where is my refund?")).await.unwrap();
    assert_eq!(first.model, second.model, "one model for both turns: {first:?} {second:?}");
    let body = fake.last_request().unwrap().body;
    body["messages"].as_array().unwrap().clone()
}

fn turn(conversation: &str, text: &str) -> pb::RouteRequest {
    pb::RouteRequest {
        conversation_id: conversation.into(),
        create_if_missing: true,
        turn: text.into(),
        max_tokens: 16,
        ..Default::default()
    }
}

fn roles_and_text(messages: &[serde_json::Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_sees_the_recent_turns_unless_it_sets_its_own_prompt_turns() {
    let all = roles_and_text(&second_turn_messages(None).await);
    let expected: Vec<(String, String)> =
        [("user", "Where is my order?"), ("assistant", "Your order ships on Monday."), ("user", "Where is my refund?")]
            .iter()
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .collect();
    assert_eq!(all, expected, "context.prompt_turns (8) carries the whole short conversation");

    let none = roles_and_text(&second_turn_messages(Some(0)).await);
    assert_eq!(
        none,
        vec![("user".to_string(), "Where is my refund?".to_string())],
        "prompt_turns 0: the new turn only"
    );

    // Counted in messages: one is the last reply, which cannot open a prompt (a prompt starts
    // with a user turn), so the new turn goes alone; two are the last exchange.
    let one = roles_and_text(&second_turn_messages(Some(1)).await);
    assert_eq!(one, vec![("user".to_string(), "Where is my refund?".to_string())]);
    assert_eq!(roles_and_text(&second_turn_messages(Some(2)).await), expected);
}

/// A reservation refused at a hard limit sends the turn to a free model: its prompt is built
/// again for that model (its window, its share of history), not reused from the model the
/// ledger refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_moved_to_a_free_model_at_a_hard_limit_gets_that_models_prompt() {
    let (redis, fake, mut config, _dir) = common::fake_stack().await;
    config.models.get_mut("local-smollm2").unwrap().prompt_turns = Some(0);
    // Nothing paid fits; the budget signals still say the whole budget is there.
    config.ledger.limits = vec![triage_core::config::LimitConfig {
        scope: "tenant".into(),
        id: Some("acme".into()),
        window: triage_core::config::Window::Day,
        limit_micros: 1,
    }];
    let gw = common::local_gateway(&Arc::new(config), &redis, "hard").await;
    fake.set_reply(Reply { text: "Your order ships on Monday.".into(), ..Reply::default() });
    let first = gw.route("acme", turn("conv-hard", "Where is my order?")).await.unwrap();
    assert_eq!(first.model, "local-smollm2", "{first:?}");
    let hard = "Given the liability clause 14 and the indemnity in clause 9, analyse whether we can also claim \
                lost profits and draft the legal argument.";
    let second = gw.route("acme", turn("conv-hard", hard)).await.unwrap();
    assert_eq!(second.model, "local-smollm2", "{second:?}");
    assert!(second.warnings.iter().any(|w| w.contains("hard spend limit reached")), "{second:?}");
    let sent = fake.last_request().unwrap().body;
    assert_eq!(sent["model"], "local-smollm2-id");
    let messages = roles_and_text(sent["messages"].as_array().unwrap());
    assert_eq!(messages, vec![("user".to_string(), hard.to_string())], "local-smollm2's prompt_turns (0)");
}

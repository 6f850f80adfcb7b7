//! Property tests: whatever bytes or JSON arrive, the HTTP parser and the Route validation
//! answer with a value or a clean error, never a panic.

use super::error::ApiError;
use super::openai::{ParseLimits, parse_chat};
use proptest::prelude::*;
use triage_core::config::ServerConfig;
use triage_proto::pb;

const LIMITS: ParseLimits = ParseLimits { max_messages: 8, max_tokens_limit: 8192 };

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("model".to_string()),
                    Just("messages".to_string()),
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("stream".to_string()),
                    Just("max_tokens".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn chat_body() -> impl Strategy<Value = serde_json::Value> {
    let role = prop_oneof![Just("user".to_string()), Just("assistant".to_string()), ".{0,8}"];
    let message =
        (role, json_value()).prop_map(|(role, content)| serde_json::json!({"role": role, "content": content}));
    (
        ".{0,20}",
        prop::collection::vec(message, 0..12),
        any::<Option<u32>>(),
        any::<Option<bool>>(),
        any::<Option<f32>>(),
    )
        .prop_map(|(model, messages, max_tokens, stream, temperature)| {
            serde_json::json!({"model": model, "messages": messages, "max_tokens": max_tokens,
                "stream": stream, "temperature": temperature, "stream_options": {"include_usage": true}})
        })
}

fn check(res: Result<super::openai::ParsedChat, ApiError>) {
    match res {
        Ok(p) => {
            assert!(!p.turn.trim().is_empty());
            assert!(p.max_tokens <= LIMITS.max_tokens_limit);
        }
        Err(e) => assert!(e.status.is_client_error(), "{e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(parse_chat(&bytes, LIMITS));
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        check(parse_chat(v.to_string().as_bytes(), LIMITS));
    }

    #[test]
    fn chat_shaped_json_never_panics(v in chat_body()) {
        check(parse_chat(v.to_string().as_bytes(), LIMITS));
    }

    #[test]
    fn route_validation_never_panics(
        request_id in ".{0,140}",
        conversation_id in ".{0,140}",
        turn in ".{0,64}",
        user_id in ".{0,140}",
        revenue in any::<i64>(),
        max_tokens in any::<u32>(),
        temperature in any::<Option<f32>>(),
        create_if_missing in any::<bool>(),
        model in ".{0,20}",
    ) {
        let req = pb::RouteRequest {
            request_id, conversation_id, turn, max_tokens, temperature, create_if_missing, model,
            user: Some(pb::UserContext { user_id, revenue_per_conversation_micros: revenue, ..Default::default() }),
        };
        let server = ServerConfig { max_turn_bytes: 32, ..ServerConfig::default() };
        if let Err(e) = crate::validate::route_request(&req, &server) {
            prop_assert_eq!(e.code(), tonic::Code::InvalidArgument);
        }
    }
}

#[test]
fn parser_limits_and_turn_choice() {
    let ok = parse_chat(
        br#"{"model":"triage/auto","messages":[{"role":"system","content":"s"},{"role":"user","content":"first"},
            {"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"last"}]}],
            "stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":5,"user":"u1","unknown":1}"#,
        LIMITS,
    )
    .unwrap();
    assert_eq!(
        (ok.turn.as_str(), ok.max_tokens, ok.stream, ok.include_usage, ok.user.as_deref()),
        ("last", 5, true, true, Some("u1"))
    );
    let many: Vec<_> = (0..9).map(|_| serde_json::json!({"role": "user", "content": "x"})).collect();
    for (body, param) in [
        (serde_json::json!({"model": "m", "messages": many}), Some("messages")),
        (
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 9000}),
            Some("max_tokens"),
        ),
        (serde_json::json!({"model": "m", "messages": [{"role": "assistant", "content": "x"}]}), Some("messages")),
        (
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            Some("messages"),
        ),
        (serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}), Some("n")),
        (serde_json::json!({"messages": []}), None),
    ] {
        let e = parse_chat(body.to_string().as_bytes(), LIMITS).unwrap_err();
        assert_eq!((e.status.as_u16(), e.param), (400, param), "{body}");
    }
}

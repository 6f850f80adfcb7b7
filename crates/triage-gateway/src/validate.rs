//! Checks a Route request before anything is called or charged; every message says which
//! field is wrong and what would be accepted.

use crate::{Error, Result};
use triage_core::config::ServerConfig;
use triage_proto::pb;

const MAX_ID_LEN: usize = 128;

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// Validates a Route request; fills nothing in.
pub(crate) fn route_request(req: &pb::RouteRequest, server: &ServerConfig) -> Result<()> {
    if req.turn.trim().is_empty() {
        return Err(Error::InvalidArgument("turn: must not be empty".into()));
    }
    if req.turn.len() > server.max_turn_bytes {
        return Err(Error::InvalidArgument(format!(
            "turn: {} bytes is over the limit of {} bytes; split the message or raise server.max_turn_bytes",
            req.turn.len(),
            server.max_turn_bytes
        )));
    }
    if !req.request_id.is_empty() && !valid_id(&req.request_id) {
        return Err(Error::InvalidArgument(format!(
            "request_id: must be 1-{MAX_ID_LEN} characters of letters, digits and - _ . :"
        )));
    }
    if !req.conversation_id.is_empty() && !valid_id(&req.conversation_id) {
        return Err(Error::InvalidArgument(format!(
            "conversation_id: must be 1-{MAX_ID_LEN} characters of letters, digits and - _ . :"
        )));
    }
    if req.max_tokens > server.max_tokens_limit {
        return Err(Error::InvalidArgument(format!(
            "max_tokens: {} is over the limit of {}",
            req.max_tokens, server.max_tokens_limit
        )));
    }
    if let Some(t) = req.temperature
        && (!(0.0..=2.0).contains(&t) || t.is_nan())
    {
        return Err(Error::InvalidArgument(format!("temperature: {t} is outside 0..2")));
    }
    if req.create_if_missing && req.conversation_id.is_empty() {
        return Err(Error::InvalidArgument("create_if_missing: needs a conversation_id".into()));
    }
    if let Some(u) = &req.user {
        if u.user_id.len() > MAX_ID_LEN {
            return Err(Error::InvalidArgument(format!("user.user_id: longer than {MAX_ID_LEN} characters")));
        }
        if u.revenue_per_conversation_micros < 0 {
            return Err(Error::InvalidArgument("user.revenue_per_conversation_micros: must not be negative".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(turn: &str) -> pb::RouteRequest {
        pb::RouteRequest { turn: turn.into(), ..Default::default() }
    }

    #[test]
    fn rejects_each_bad_field() {
        let s = ServerConfig::default();
        assert!(route_request(&req("hi"), &s).is_ok());
        for (r, field) in [
            (req("  "), "turn"),
            (req(&"x".repeat(s.max_turn_bytes + 1)), "turn"),
            (pb::RouteRequest { request_id: "a b".into(), ..req("hi") }, "request_id"),
            (pb::RouteRequest { conversation_id: "x".repeat(129), ..req("hi") }, "conversation_id"),
            (pb::RouteRequest { max_tokens: 1_000_000, ..req("hi") }, "max_tokens"),
            (pb::RouteRequest { temperature: Some(f32::NAN), ..req("hi") }, "temperature"),
            (pb::RouteRequest { create_if_missing: true, ..req("hi") }, "create_if_missing"),
        ] {
            let e = route_request(&r, &s).unwrap_err().to_string();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }
}

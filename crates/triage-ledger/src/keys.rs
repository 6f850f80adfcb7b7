//! Key layout. Every ledger key starts with the hash tag `{<prefix>:ledger}`, so all of them
//! live in ONE Redis Cluster slot and every script may touch any of them atomically.
//!
//! Trade-off: one slot means one shard carries all ledger traffic (a Lua reserve over 15
//! counters costs tens of microseconds, so tens of thousands of reservations a second), in
//! exchange for atomic checks across global, tenant, user, model and conversation scopes.
//! Splitting by tenant would need the global scope (and any cross-tenant limit) to be
//! sharded and summed, which gives up exact hard limits. Scripts receive every key through
//! KEYS, never build one, so moving to finer tags later only changes this file.
//!
//! ```text
//! {P:ledger}:req:<request_id>                      hash  reservation record (state, amount, keys,
//!                                                        convs: conversation scopes, ...)
//! {P:ledger}:deadlines                             zset  request_id -> deadline ms (reservations only)
//! {P:ledger}:kinds                                 set   scope kinds ever charged
//! {P:ledger}:c:<kind>:<window>:<window_id>:<id>    hash  spent, reserved, requests (micros),
//!                                                        seeded (day/month: set from hours)
//! {P:ledger}:ids:<kind>:<window>:<window_id>       set   ids of the kind charged in that window
//! {P:ledger}:attr:model:hour:<window_id>           hash  spent:<model>, requests:<model>
//! {P:ledger}:margin:<conversation scope id>         hash  cost, requests (all windows), model
//!                                                        (last to answer), revenue (latest)
//! {P:ledger}:alert:<kind>:<window>:<window_id>:<ppm>:<id>  string  threshold alert sent (SET NX)
//! ```
//! Kinds contain no `:` and window ids have none, so the id (which may, `tenant:user`) is
//! always the unambiguous remainder. Every scope but a conversation has hour counters; day
//! and month counters exist only where a limit does (reports sum the others from hours, see
//! `ops.rs`). A conversation has counters only under a limit on it: its `margin:` hash keeps
//! its whole life.

use crate::window::Span;
use crate::{Error, Result};

/// Builds every key of one ledger.
#[derive(Debug, Clone)]
pub struct KeyLayout {
    base: String,
}

impl KeyLayout {
    /// Keys under `{<key_prefix>:ledger}`; the prefix may not contain braces (it would move
    /// the hash tag) and may be empty.
    pub fn new(key_prefix: &str) -> Result<Self> {
        if key_prefix.contains(['{', '}']) {
            return Err(Error::Config(format!("key prefix `{key_prefix}` must not contain braces")));
        }
        let base = if key_prefix.is_empty() { "{ledger}".to_string() } else { format!("{{{key_prefix}:ledger}}") };
        Ok(Self { base })
    }

    /// The hash-tagged base every key starts with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reservation record of a request.
    pub fn record(&self, request_id: &str) -> String {
        format!("{}:req:{request_id}", self.base)
    }

    /// Sorted set of reservation deadlines.
    pub fn deadlines(&self) -> String {
        format!("{}:deadlines", self.base)
    }

    /// Set of scope kinds ever charged.
    pub fn kinds(&self) -> String {
        format!("{}:kinds", self.base)
    }

    /// Counters of one scope in one window instance.
    pub fn counter(&self, kind: &str, id: &str, span: &Span) -> String {
        format!("{}:c:{kind}:{}:{}:{id}", self.base, span.window.as_str(), span.id)
    }

    /// Ids of a kind charged in one window instance (for reports listing every tenant).
    pub fn ids(&self, kind: &str, span: &Span) -> String {
        self.ids_in(kind, span.window.as_str(), &span.id)
    }

    /// [`KeyLayout::ids`] from a window name and window id (as parsed from a counter key).
    pub fn ids_in(&self, kind: &str, window: &str, window_id: &str) -> String {
        format!("{}:ids:{kind}:{window}:{window_id}", self.base)
    }

    /// Spend per answering model in one window instance.
    pub fn model_attribution(&self, span: &Span) -> String {
        format!("{}:attr:model:{}:{}", self.base, span.window.as_str(), span.id)
    }
}

impl KeyLayout {
    /// Whole committed cost, requests, last answering model and revenue of one conversation
    /// scope (`tenant:conversation`). Its cost over every window is what the margin needs.
    pub fn margin(&self, conversation_scope_id: &str) -> String {
        format!("{}:margin:{conversation_scope_id}", self.base)
    }

    /// Marks a threshold alert (threshold in parts per million of the limit) as sent.
    pub fn alert_sent(&self, kind: &str, id: &str, span_window: &str, span_id: &str, ppm: i64) -> String {
        format!("{}:alert:{kind}:{span_window}:{span_id}:{ppm}:{id}", self.base)
    }

    /// Splits a counter key into kind, window name, window id and scope id.
    pub fn parse_counter<'a>(&self, key: &'a str) -> Option<CounterKey<'a>> {
        let rest = key.strip_prefix(self.base.as_str())?.strip_prefix(":c:")?;
        let (kind, rest) = rest.split_once(':')?;
        let (window, rest) = rest.split_once(':')?;
        let (window_id, id) = rest.split_once(':')?;
        Some(CounterKey { kind, window, window_id, id })
    }
}

/// The parts of a counter key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterKey<'a> {
    /// Scope kind.
    pub kind: &'a str,
    /// `hour`, `day` or `month`.
    pub window: &'a str,
    /// Window instance id (`2025-03-14`).
    pub window_id: &'a str,
    /// Scope id (may contain `:`).
    pub id: &'a str,
}

/// Checks a scope kind can be part of a key.
pub fn check_kind(kind: &str) -> Result<()> {
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(Error::InvalidRequest(format!("scope kind `{kind}` must be lower-case letters, digits or _")));
    }
    Ok(())
}

/// Decodes the record's `keys` field, written by the reserve script as `<len>:<key>` repeated
/// (length-prefixed, since ids may contain any byte).
pub fn decode_key_list(encoded: &str) -> Result<Vec<String>> {
    let bad = || Error::Store(format!("corrupt key list in reservation record: {encoded:.80}"));
    let mut out = Vec::new();
    let mut rest = encoded;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(':').ok_or_else(bad)?;
        let len: usize = len.parse().map_err(|_| bad())?;
        let key = tail.get(..len).ok_or_else(bad)?;
        out.push(key.to_string());
        rest = &tail[len..];
    }
    Ok(out)
}

/// Encodes a key list for the record's `keys` field; the scripts receive it with the same
/// keys in KEYS and store or compare it as is.
pub fn encode_key_list<S: AsRef<str>>(keys: &[S]) -> String {
    keys.iter().map(|k| format!("{}:{}", k.as_ref().len(), k.as_ref())).collect()
}

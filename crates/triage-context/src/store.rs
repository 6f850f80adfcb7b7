//! The Redis conversation store.
//!
//! Key layout, per conversation (`{t:c}` is a Redis Cluster hash tag, so all keys of one
//! conversation live in one slot and the append script may touch them together):
//!
//! ```text
//! {prefix}:ctx:{<tenant>:<id>}:meta         hash: tenant, id, pinned_model, pinned_version,
//!                                           tier, turn_count, token_count, escalations,
//!                                           created_at, updated_at
//! {prefix}:ctx:{<tenant>:<id>}:turns        list: protobuf-encoded Message, oldest first
//! {prefix}:ctx:{<tenant>:<id>}:commitments  list: protobuf-encoded Commitment, oldest first
//! {prefix}:ctx:{<tenant>:<id>}:summary      string: protobuf-encoded latest HandoffSummary
//! ```
//!
//! Tenant and id are escaped (`%`, `:`, `{`, `}`) so no pair of (tenant, id) can collide
//! with another pair or break the hash tag: tenant "a:b" + id "c" and tenant "a" + id "b:c"
//! are different keys. All keys expire together `ttl` after the last append or handoff.

use crate::handoff::{SummarizerSettings, summarize};
use crate::{ContextStore, Error, Result};
use prost::Message as _;
use redis::Script;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;
use triage_backends::Backends;
use triage_core::config::ContextConfig;
use triage_proto::pb;

/// Longest tenant or conversation id accepted, bytes: keys stay small and bounded.
pub const MAX_ID_BYTES: usize = 256;
/// Most messages one append may carry (a turn is a user message and a reply).
pub const MAX_MESSAGES_PER_APPEND: usize = 64;
/// Most commitments one append may carry.
pub const MAX_COMMITMENTS_PER_APPEND: usize = 64;

/// The Redis keys of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationKeys {
    /// Hash with pin, counters and owner.
    pub meta: String,
    /// List of encoded messages.
    pub turns: String,
    /// List of encoded commitments.
    pub commitments: String,
    /// Encoded latest handoff summary.
    pub summary: String,
}

impl ConversationKeys {
    /// Keys of conversation `id` of `tenant` under `prefix`.
    pub fn new(prefix: &str, tenant: &str, id: &str) -> Self {
        let base = format!("{prefix}:ctx:{{{}:{}}}", escape(tenant), escape(id));
        Self {
            meta: format!("{base}:meta"),
            turns: format!("{base}:turns"),
            commitments: format!("{base}:commitments"),
            summary: format!("{base}:summary"),
        }
    }

    fn all(&self) -> [&str; 4] {
        [&self.meta, &self.turns, &self.commitments, &self.summary]
    }
}

/// Escapes the characters that separate key parts or delimit the hash tag.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

fn check_id(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::InvalidRequest(format!("{what} must not be empty")));
    }
    if v.len() > MAX_ID_BYTES {
        return Err(Error::InvalidRequest(format!("{what} longer than {MAX_ID_BYTES} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!("{what} contains control characters")));
    }
    Ok(())
}

/// A tenant mismatch reported by a script reads as "not found": the caller must not learn
/// that another tenant has a conversation with this id.
fn map_script_error(e: redis::RedisError, id: &str) -> Error {
    if e.code() == Some("TENANT_MISMATCH") { Error::NotFound(id.to_string()) } else { Error::from(e) }
}

/// Get with create_if_missing: creates the conversation unless it exists. Sent with EVAL
/// inside the read's MULTI (a script cannot be loaded on demand there); Redis keeps the
/// compiled script, so only its few hundred bytes travel again.
const CREATE: &str = include_str!("lua/create.lua");

/// One MULTI/EXEC read: meta hash, turns, summary, commitments.
type Snapshot = (HashMap<String, String>, Vec<Vec<u8>>, Option<Vec<u8>>, Vec<Vec<u8>>);

/// Conversations in Redis (standalone or Cluster: every script touches one slot).
#[derive(Clone)]
pub struct RedisContext {
    conn: ConnectionManager,
    prefix: String,
    ttl_ms: u64,
    summarizer: SummarizerSettings,
    backends: Option<Arc<dyn Backends>>,
    append: Arc<Script>,
    store_summary: Arc<Script>,
}

impl RedisContext {
    /// A store over an existing connection. `key_prefix` is `redis.key_prefix`;
    /// `backends` calls `config.summarizer_model` for handoff summaries (without it,
    /// summaries are extractive).
    pub fn new(
        conn: ConnectionManager,
        config: &ContextConfig,
        key_prefix: impl Into<String>,
        backends: Option<Arc<dyn Backends>>,
    ) -> Self {
        Self {
            conn,
            prefix: key_prefix.into(),
            // A zero TTL would make PEXPIRE delete the conversation on write.
            ttl_ms: u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            summarizer: SummarizerSettings {
                model: config.summarizer_model.clone().filter(|m| !m.is_empty()),
                timeout: config.summarizer_timeout,
            },
            backends,
            append: Arc::new(Script::new(include_str!("lua/append.lua"))),
            store_summary: Arc::new(Script::new(include_str!("lua/summary.lua"))),
        }
    }

    /// Connects to `url` (`redis://host:port/db`) and builds the store.
    pub async fn connect(
        url: &str,
        config: &ContextConfig,
        key_prefix: impl Into<String>,
        backends: Option<Arc<dyn Backends>>,
    ) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self::new(conn, config, key_prefix, backends))
    }

    /// The keys of a conversation, after validating tenant and id.
    pub fn keys(&self, tenant: &str, id: &str) -> Result<ConversationKeys> {
        check_id("tenant", tenant)?;
        check_id("conversation_id", id)?;
        Ok(ConversationKeys::new(&self.prefix, tenant, id))
    }

    /// Reads a conversation, `None` when it does not exist for this tenant; with `create`, it
    /// is created first, in the same round trip.
    async fn read(&self, tenant: &str, id: &str, last_turns: u32, create: bool) -> Result<Option<pb::Conversation>> {
        let k = self.keys(tenant, id)?;
        let start: isize = if last_turns == 0 { 0 } else { -(last_turns.min(i32::MAX as u32) as isize) };
        let mut conn = self.conn.clone();
        // MULTI/EXEC: one consistent snapshot, never turns from before an append and
        // counters from after it.
        let mut pipe = redis::pipe();
        pipe.atomic();
        if create {
            pipe.cmd("EVAL")
                .arg(CREATE)
                .arg(1)
                .arg(&k.meta)
                .arg(tenant)
                .arg(id)
                .arg(triage_core::now_unix_ms())
                .arg(self.ttl_ms)
                .ignore();
        }
        pipe.hgetall(&k.meta).lrange(&k.turns, start, -1).get(&k.summary).lrange(&k.commitments, 0, -1);
        let (meta, turns, summary, commitments): Snapshot =
            pipe.query_async(&mut conn).await.map_err(|e| map_script_error(e, id))?;
        if meta.get("tenant").map(String::as_str) != Some(tenant) {
            return Ok(None);
        }
        let num = |f: &str| -> Result<u64> {
            match meta.get(f) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| Error::Corrupt(format!("{f} = {v:?}"))),
            }
        };
        let turns = turns
            .iter()
            .map(|b| pb::Message::decode(b.as_slice()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Corrupt(format!("turn: {e}")))?;
        let commitments = commitments
            .iter()
            .map(|b| pb::Commitment::decode(b.as_slice()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Corrupt(format!("commitment: {e}")))?;
        let summary = summary
            .map(|b| pb::HandoffSummary::decode(b.as_slice()))
            .transpose()
            .map_err(|e| Error::Corrupt(format!("summary: {e}")))?;
        let created: i64 = match meta.get("created_at") {
            None => 0,
            Some(v) => v.parse().map_err(|_| Error::Corrupt(format!("created_at = {v:?}")))?,
        };
        Ok(Some(pb::Conversation {
            tenant: tenant.to_string(),
            id: id.to_string(),
            turns,
            pinned_model: meta.get("pinned_model").cloned().unwrap_or_default(),
            pinned_version: meta.get("pinned_version").cloned().unwrap_or_default(),
            tier: i32::try_from(num("tier")?).map_err(|_| Error::Corrupt("tier".into()))?,
            turn_count: u32::try_from(num("turn_count")?).unwrap_or(u32::MAX),
            token_count: num("token_count")?,
            summary,
            commitments,
            escalations: u32::try_from(num("escalations")?).unwrap_or(u32::MAX),
            created_at_unix_ms: created,
        }))
    }
}

fn validate_append(req: &pb::AppendRequest) -> Result<()> {
    if req.messages.len() > MAX_MESSAGES_PER_APPEND {
        return Err(Error::InvalidRequest(format!("more than {MAX_MESSAGES_PER_APPEND} messages in one append")));
    }
    if req.commitments.len() > MAX_COMMITMENTS_PER_APPEND {
        return Err(Error::InvalidRequest(format!("more than {MAX_COMMITMENTS_PER_APPEND} commitments in one append")));
    }
    for m in &req.messages {
        // System prompts come from config on every call; storing one as a turn would let
        // a caller smuggle instructions into every later prompt.
        match pb::Role::try_from(m.role) {
            Ok(pb::Role::User | pb::Role::Assistant) => {}
            _ => {
                return Err(Error::InvalidRequest(format!("message role {} cannot be stored", m.role)));
            }
        }
    }
    if !req.pin_model.is_empty() && pb::Tier::try_from(req.pin_tier).is_err() {
        return Err(Error::InvalidRequest(format!("unknown pin tier {}", req.pin_tier)));
    }
    Ok(())
}

#[async_trait::async_trait]
impl ContextStore for RedisContext {
    async fn get(&self, req: pb::GetConversationRequest) -> Result<pb::Conversation> {
        let (tenant, id) = (req.tenant.as_str(), req.conversation_id.as_str());
        self.read(tenant, id, req.last_turns, req.create_if_missing)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    async fn append(&self, req: pb::AppendRequest) -> Result<pb::AppendResponse> {
        let (tenant, id) = (req.tenant.as_str(), req.conversation_id.as_str());
        let k = self.keys(tenant, id)?;
        validate_append(&req)?;
        let now = triage_core::now_unix_ms();
        let mut inv = self.append.prepare_invoke();
        for key in k.all() {
            inv.key(key);
        }
        inv.arg(tenant)
            .arg(id)
            .arg(now)
            .arg(self.ttl_ms)
            .arg(&req.pin_model)
            .arg(&req.pin_version)
            .arg(req.pin_tier)
            // HINCRBY takes a signed 64-bit increment.
            .arg(req.tokens.min(i64::MAX as u64))
            .arg(if req.escalation { "1" } else { "0" })
            .arg(req.messages.len());
        for m in &req.messages {
            let mut m = m.clone();
            if m.at_unix_ms == 0 {
                m.at_unix_ms = now;
            }
            inv.arg(m.encode_to_vec());
        }
        for c in &req.commitments {
            inv.arg(c.encode_to_vec());
        }
        let mut conn = self.conn.clone();
        let count: u64 = inv.invoke_async(&mut conn).await.map_err(|e| map_script_error(e, id))?;
        Ok(pb::AppendResponse { turn_count: u32::try_from(count).unwrap_or(u32::MAX) })
    }

    async fn handoff(&self, req: pb::HandoffRequest) -> Result<pb::HandoffSummary> {
        let (tenant, id) = (req.tenant.as_str(), req.conversation_id.as_str());
        let k = self.keys(tenant, id)?;
        let conv = self.read(tenant, id, 0, false).await?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let from = if req.from_model.is_empty() { conv.pinned_model.clone() } else { req.from_model.clone() };
        // The request names the summarizer when the caller wants a specific one; config
        // otherwise.
        let mut settings = self.summarizer.clone();
        if !req.summarizer_model.is_empty() {
            settings.model = Some(req.summarizer_model.clone());
        }
        let summary = summarize(&conv, &from, &req.to_model, &settings, self.backends.as_deref()).await;
        let mut inv = self.store_summary.prepare_invoke();
        for key in k.all() {
            inv.key(key);
        }
        inv.arg(tenant).arg(summary.encode_to_vec()).arg(self.ttl_ms);
        let mut conn = self.conn.clone();
        let stored: i64 = inv.invoke_async(&mut conn).await?;
        if stored == 0 {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(summary)
    }
}

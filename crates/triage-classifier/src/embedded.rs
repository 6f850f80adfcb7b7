//! The default classifier: MiniLM embeddings of the query in its conversation, trained heads.

use crate::batcher::{BatchConfig, Batcher, Embedded};
use crate::encoder::Encoder;
use crate::features::{Featurizer, Inputs};
use crate::heads::Heads;
use crate::{Classifier, Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use triage_core::config::ClassifierConfig;
use triage_proto::pb;

/// History turns kept embedded in memory. In a conversation every earlier user turn was
/// itself classified as a query, so most history embeddings are already known.
const TURN_CACHE_ENTRIES: usize = 8192;

struct Core {
    encoder: Arc<Encoder>,
    heads: Heads,
    featurizer: Featurizer,
    history_turns: usize,
    version: String,
    turns: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

/// MiniLM + heads classifier.
pub struct EmbeddedClassifier {
    core: Arc<Core>,
    batcher: Option<Batcher>,
}

impl EmbeddedClassifier {
    /// Loads the encoder from `encoder_dir` and the heads from `heads` (the compiled-in
    /// default when `None`); looks at the last `history_turns` turns.
    pub fn new(encoder_dir: &Path, heads: Option<&Path>, history_turns: usize) -> Result<Self> {
        let heads = match heads {
            Some(p) => Heads::load(p)?,
            None => Heads::default_heads()?,
        };
        Self::with_heads(encoder_dir, heads, history_turns)
    }

    /// Like [`EmbeddedClassifier::new`] with heads already loaded (training, tests).
    pub fn with_heads(encoder_dir: &Path, heads: Heads, history_turns: usize) -> Result<Self> {
        let encoder = Arc::new(Encoder::load(encoder_dir, Some(heads.file.encoder_layers), heads.file.encoder_window)?);
        let version = heads.model_version();
        let core = Core {
            encoder,
            heads,
            featurizer: Featurizer::new()?,
            history_turns,
            version,
            turns: Mutex::new(HashMap::new()),
        };
        Ok(Self { core: Arc::new(core), batcher: None })
    }

    /// From the service config (no batching; see [`EmbeddedClassifier::with_batching`]).
    pub fn from_config(cfg: &ClassifierConfig) -> Result<Self> {
        Self::new(&cfg.encoder_dir, cfg.heads.as_deref(), cfg.history_turns as usize)
    }

    /// Routes inference through a micro-batcher (needs a tokio runtime).
    pub fn with_batching(mut self, cfg: BatchConfig) -> Result<Self> {
        self.batcher = Some(Batcher::spawn(self.core.encoder.clone(), cfg)?);
        Ok(self)
    }

    /// `minilm-l6-v2+heads-<hash>`.
    pub fn model_version(&self) -> &str {
        &self.core.version
    }

    /// Earlier turns this classifier reads.
    pub fn history_turns(&self) -> usize {
        self.core.history_turns
    }

    /// The encoder (training embeds with the very same code).
    pub fn encoder(&self) -> &Encoder {
        &self.core.encoder
    }

    /// The loaded heads.
    pub fn heads(&self) -> &Heads {
        &self.core.heads
    }

    /// Raw (unstandardised) feature vector of a query in its conversation, on this thread.
    pub fn features_blocking(&self, query: &str, history: &[pb::Message]) -> Result<Vec<f32>> {
        let turns = self.core.turns_used(history);
        let missing = self.core.missing(&turns);
        let mut texts: Vec<&str> = vec![query];
        texts.extend(missing.iter().map(String::as_str));
        let emb = self.core.encoder.embed(&texts)?;
        Ok(self.core.features_for(query, &turns, &missing, emb))
    }

    /// Classifies on this thread (batch tools; the service path is async).
    pub fn classify_blocking(&self, query: &str, history: &[pb::Message]) -> Result<pb::Classification> {
        let x = self.features_blocking(query, history)?;
        Ok(self.core.heads.classification(&x, &self.core.version))
    }
}

impl Core {
    /// Contents of the last `history_turns` user/assistant turns, oldest first.
    fn turns_used(&self, history: &[pb::Message]) -> Vec<String> {
        let mut t: Vec<String> = history
            .iter()
            .rev()
            .filter(|m| m.role != pb::Role::System as i32 && !m.content.trim().is_empty())
            .take(self.history_turns)
            .map(|m| m.content.clone())
            .collect();
        t.reverse();
        t
    }

    /// Turns whose embeddings are not cached yet.
    fn missing(&self, turns: &[String]) -> Vec<String> {
        let cache = self.turns.lock();
        let mut m: Vec<String> = turns.iter().filter(|t| !cache.contains_key(*t)).cloned().collect();
        m.dedup();
        m
    }

    /// Features from the query's embedding (first of `emb`) and those of `embedded` turns
    /// (the rest of `emb`, in order); other turns come from the turn cache.
    fn features_for(&self, query: &str, turns: &[String], embedded: &[String], emb: Embedded) -> Vec<f32> {
        let mut it = emb.into_iter();
        let (q, q_tokens) = it.next().unwrap_or_else(|| (vec![0.0; crate::encoder::EMBED_DIM], 0));
        let fresh: HashMap<&str, Arc<Vec<f32>>> =
            embedded.iter().map(String::as_str).zip(it.map(|(v, _)| Arc::new(v))).collect();
        let history_embs: Vec<Vec<f32>> = {
            let mut cache = self.turns.lock();
            if cache.len() + fresh.len() > TURN_CACHE_ENTRIES {
                // Crude bound: conversations move on, so a full reset costs little.
                cache.clear();
            }
            for (t, v) in &fresh {
                cache.insert((*t).to_string(), v.clone());
            }
            // A turn evicted by a concurrent reset is simply left out of the mean.
            turns
                .iter()
                .filter_map(|t| fresh.get(t.as_str()).or_else(|| cache.get(t)).map(|v| v.as_ref().clone()))
                .collect()
        };
        let inputs = Inputs {
            query,
            query_emb: &q,
            query_tokens: q_tokens,
            history_embs: &history_embs,
            history_chars: turns.iter().map(|t| t.chars().count()).sum(),
            history_turns: self.history_turns,
        };
        self.featurizer.build(&inputs)
    }
}

#[async_trait::async_trait]
impl Classifier for EmbeddedClassifier {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let start = Instant::now();
        if req.query.trim().is_empty() {
            return Err(Error::InvalidRequest("empty query".into()));
        }
        let turns = self.core.turns_used(&req.history);
        let missing = self.core.missing(&turns);
        let mut texts = Vec::with_capacity(1 + missing.len());
        texts.push(req.query.clone());
        texts.extend(missing);
        let emb = match &self.batcher {
            Some(b) => b.embed(texts.clone()).await?,
            None => {
                let core = self.core.clone();
                let owned = texts.clone();
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
                    core.encoder.embed(&refs)
                })
                .await
                .map_err(|e| Error::Inference(format!("inference task: {e}")))??
            }
        };
        let x = self.core.features_for(&req.query, &turns, &texts[1..], emb);
        let classification = self.core.heads.classification(&x, &self.core.version);
        Ok(crate::fresh_response(classification, start))
    }
}

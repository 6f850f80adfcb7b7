//! [`LocalLlm`]: a quantized llama-architecture GGUF model run on the CPU with candle.

use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use serde::{Deserialize, Serialize};

use crate::chat_template::ChatTemplate;
use crate::error::{Error, Result};
use crate::gguf_tokenizer::{GgufTokenizer, IncrementalDecoder, md_string, md_u32};
use crate::stop::StopMatcher;

const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_LAST_N: usize = 64;
/// Prefill runs in chunks so attention scores stay `chunk x context` rather than
/// `prompt x prompt` (a full 4k prompt would need gigabytes at once).
const PREFILL_CHUNK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(ChatRole::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(ChatRole::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(ChatRole::Assistant, content)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    pub max_tokens: u32,
    /// `None`, zero or negative: greedy decoding, fully deterministic.
    pub temperature: Option<f32>,
    pub seed: u64,
    /// Generation ends before the first occurrence of any of these; it is not included.
    pub stop: Vec<String>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self { max_tokens: 256, temperature: None, seed: 0, stop: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn (EOS / end-of-turn token).
    EndTurn,
    /// `max_tokens` was reached, or the context window filled up.
    MaxTokens,
    StopSequence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    /// Prompt tokens actually fed to the model, after the chat template and any truncation.
    pub input_tokens: u32,
    /// Sampled tokens, including a final end-of-turn token.
    pub output_tokens: u32,
    pub stop_reason: StopReason,
}

/// A GGUF llama-architecture model held in memory.
///
/// Generation is serialized: candle already spreads one forward pass over every core, so
/// running requests side by side would only make each of them slower.
pub struct LocalLlm {
    model_id: String,
    context_window: u32,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    default_system_ids: Option<Vec<u32>>,
    generation_prompt_ids: Vec<u32>,
    stop_token_ids: Vec<u32>,
    /// Never run directly: each call clones it (tensors are shared, so this is cheap) and
    /// thereby starts from an empty KV cache and an empty attention-mask cache.
    pristine: Mutex<ModelWeights>,
    device: Device,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("model_id", &self.model_id)
            .field("context_window", &self.context_window)
            .field("tokenizer", &self.tokenizer)
            .finish_non_exhaustive()
    }
}

/// The prompt actually fed to the model.
struct Prompt {
    tokens: Vec<u32>,
    max_new_tokens: u32,
}

impl LocalLlm {
    /// Reads a llama-architecture GGUF file: weights, tokenizer and chat template.
    pub fn load(path: &Path) -> Result<LocalLlm> {
        let started = Instant::now();
        let io_err = |source| Error::Io { path: path.to_owned(), source };
        let mut file = File::open(path).map_err(io_err)?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| e.with_path(path))?;
        let md = &content.metadata;

        let arch = md_string(md, "general.architecture")?;
        if arch != "llama" {
            return Err(Error::UnsupportedArchitecture(arch.to_owned()));
        }
        let tokenizer = GgufTokenizer::from_metadata(md)?;
        let template_src = md.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).map(String::as_str);
        let template = ChatTemplate::detect(template_src, &tokenizer)?;
        // The rotary tables quantized_llama precomputes stop at MAX_SEQ_LEN, whatever the
        // model was trained for; positions past it would fail mid-generation.
        let trained_context = md_u32(md, "llama.context_length")?;
        let context_window = trained_context.min(u32::try_from(MAX_SEQ_LEN).unwrap_or(u32::MAX));

        let default_system_ids =
            template.default_system().map(|s| template.encode_turn(&tokenizer, ChatRole::System, s)).transpose()?;
        let generation_prompt_ids = template.generation_prompt(&tokenizer)?;
        let mut stop_token_ids = template.end_of_turn_ids();
        stop_token_ids.push(tokenizer.eos_token_id());
        stop_token_ids.extend(tokenizer.token_to_id("<|endoftext|>"));
        stop_token_ids.sort_unstable();
        stop_token_ids.dedup();

        let model_id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| md_string(md, "general.name").ok().map(str::to_owned))
            .unwrap_or_else(|| "local-llm".to_owned());

        let device = Device::Cpu;
        let weights = ModelWeights::from_gguf(content, &mut file, &device)?;
        tracing::info!(
            model_id,
            path = %path.display(),
            context_window,
            trained_context,
            vocab = tokenizer.vocab_size(),
            load_ms = started.elapsed().as_millis(),
            "loaded local LLM"
        );
        Ok(Self {
            model_id,
            context_window,
            tokenizer,
            template,
            default_system_ids,
            generation_prompt_ids,
            stop_token_ids,
            pristine: Mutex::new(weights),
            device,
        })
    }

    /// The file stem, e.g. `SmolLM2-135M-Instruct.Q4_1`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Usable context: the model's `llama.context_length`, capped at what the inference
    /// code supports (4096 positions).
    pub fn context_window(&self) -> u32 {
        self.context_window
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// Prompt tokens for `messages` after the chat template (including the assistant
    /// generation prompt), before any truncation.
    pub fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32> {
        let turns = self.encode_turns(messages)?;
        let total = self.prefix_len(messages.first().map(|m| m.role))
            + turns.iter().map(Vec::len).sum::<usize>()
            + self.generation_prompt_ids.len();
        Ok(saturating_u32(total))
    }

    /// Runs a chat completion, blocking the calling thread.
    ///
    /// `on_token` receives each new piece of text (never a split UTF-8 character, never
    /// text past a stop sequence); returning `false` cancels with [`Error::Cancelled`].
    /// The callback must not call back into this model.
    pub fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerateParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let prompt = self.build_prompt(messages, params.max_tokens)?;
        let input_tokens = saturating_u32(prompt.tokens.len());
        if prompt.max_new_tokens == 0 {
            return Ok(Generation {
                text: String::new(),
                input_tokens,
                output_tokens: 0,
                stop_reason: StopReason::MaxTokens,
            });
        }

        let guard = self.pristine.lock().unwrap_or_else(PoisonError::into_inner);
        let mut model = guard.clone();
        let started = Instant::now();

        let mut logits = None;
        let mut pos = 0;
        for chunk in prompt.tokens.chunks(PREFILL_CHUNK) {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            logits = Some(model.forward(&input, pos)?);
            pos += chunk.len();
        }
        let Some(mut logits) = logits else {
            return Err(Error::InvalidRequest("empty prompt".into()));
        };
        let prefill_elapsed = started.elapsed();

        let sampling = match params.temperature {
            Some(t) if t > 0.0 && t.is_finite() => Sampling::All { temperature: f64::from(t) },
            _ => Sampling::ArgMax,
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut decoder = IncrementalDecoder::default();
        let mut stops = StopMatcher::new(&params.stop);
        let mut generated: Vec<u32> = Vec::new();
        let stop_reason = loop {
            let mut step = logits.squeeze(0)?;
            if !generated.is_empty() {
                let recent = &generated[generated.len().saturating_sub(REPEAT_LAST_N)..];
                step = candle_transformers::utils::apply_repeat_penalty(&step, REPEAT_PENALTY, recent)?;
            }
            let next = sampler.sample(&step)?;
            generated.push(next);
            if self.stop_token_ids.contains(&next) {
                break StopReason::EndTurn;
            }
            let released = stops.push(&decoder.push(&self.tokenizer, next));
            if !released.text.is_empty() && !on_token(&released.text) {
                return Err(Error::Cancelled { input_tokens, output_tokens: saturating_u32(generated.len()) });
            }
            if released.stopped {
                break StopReason::StopSequence;
            }
            if generated.len() >= prompt.max_new_tokens as usize {
                break StopReason::MaxTokens;
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = model.forward(&input, pos)?;
            pos += 1;
        };
        drop(guard);

        if stop_reason != StopReason::StopSequence {
            let tail = stops.push(&decoder.finish());
            let mut rest = tail.text;
            if !tail.stopped {
                rest.push_str(&stops.finish());
            }
            // Generation is over; a cancel request here has nothing left to stop.
            if !rest.is_empty() {
                let _ = on_token(&rest);
            }
        }
        let output_tokens = saturating_u32(generated.len());
        let decode_secs = (started.elapsed() - prefill_elapsed).as_secs_f64();
        tracing::debug!(
            model_id = %self.model_id,
            input_tokens,
            output_tokens,
            prefill_ms = prefill_elapsed.as_millis(),
            tokens_per_sec = f64::from(output_tokens) / decode_secs.max(1e-9),
            ?stop_reason,
            "generated"
        );
        Ok(Generation { text: stops.into_text(), input_tokens, output_tokens, stop_reason })
    }

    fn encode_turns(&self, messages: &[ChatMessage]) -> Result<Vec<Vec<u32>>> {
        if messages.is_empty() {
            return Err(Error::InvalidRequest("no messages".into()));
        }
        messages.iter().map(|m| self.template.encode_turn(&self.tokenizer, m.role, &m.content)).collect()
    }

    /// Tokens the template puts before the first message: BOS and the default system turn,
    /// which is injected only when the conversation does not open with a system message.
    fn prefix_ids(&self, first: Option<ChatRole>) -> impl Iterator<Item = u32> + '_ {
        let default_system = match first {
            Some(ChatRole::System) => None,
            _ => self.default_system_ids.as_deref(),
        };
        self.tokenizer.bos_prefix().into_iter().chain(default_system.into_iter().flatten().copied())
    }

    fn prefix_len(&self, first: Option<ChatRole>) -> usize {
        self.prefix_ids(first).count()
    }

    /// Drops the oldest messages (never system messages, never the last one) until prompt
    /// plus `max_tokens` fits, then shrinks the token budget if it still does not.
    fn build_prompt(&self, messages: &[ChatMessage], max_tokens: u32) -> Result<Prompt> {
        let turns = self.encode_turns(messages)?;
        let window = self.context_window as usize;
        let budget = window.saturating_sub(max_tokens as usize);
        let last = messages.len() - 1;
        let mut keep = vec![true; messages.len()];
        let first_kept = |keep: &[bool]| keep.iter().position(|&k| k).and_then(|i| messages.get(i)).map(|m| m.role);
        let mut body: usize = turns.iter().map(Vec::len).sum();
        let fixed = self.generation_prompt_ids.len();
        let mut total = self.prefix_len(first_kept(&keep)) + body + fixed;
        let mut dropped = 0;
        for (i, message) in messages.iter().enumerate() {
            if total <= budget {
                break;
            }
            if i == last || message.role == ChatRole::System {
                continue;
            }
            keep[i] = false;
            dropped += 1;
            body -= turns[i].len();
            total = self.prefix_len(first_kept(&keep)) + body + fixed;
        }
        if dropped > 0 {
            tracing::debug!(dropped, prompt_tokens = total, "truncated conversation");
        }
        if total >= window {
            return Err(Error::ContextOverflow {
                prompt_tokens: saturating_u32(total),
                context_window: self.context_window,
            });
        }

        let mut tokens = Vec::with_capacity(total);
        tokens.extend(self.prefix_ids(first_kept(&keep)));
        for (turn, _) in turns.iter().zip(&keep).filter(|(_, k)| **k) {
            tokens.extend_from_slice(turn);
        }
        tokens.extend_from_slice(&self.generation_prompt_ids);
        let room = saturating_u32(window - tokens.len());
        Ok(Prompt { tokens, max_new_tokens: max_tokens.min(room) })
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

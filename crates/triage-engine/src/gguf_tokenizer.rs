//! Byte-level BPE tokenizer rebuilt from GGUF metadata, for files that ship no tokenizer.json.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};

// llama.cpp's `llama_token_type` values as stored in `tokenizer.ggml.token_type`.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;
const TOKEN_TYPE_UNUSED: i32 = 5;

pub(crate) type Metadata = HashMap<String, Value>;

/// A GGUF `gpt2`-style (byte-level BPE) tokenizer.
///
/// Encoding goes through the `tokenizers` crate; decoding uses a per-token byte table, which
/// is exact for byte-level BPE and lets streaming split output only at UTF-8 boundaries.
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    token_bytes: Vec<Vec<u8>>,
    bos_token_id: Option<u32>,
    eos_token_id: u32,
    add_bos_token: bool,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.token_bytes.len())
            .field("bos_token_id", &self.bos_token_id)
            .field("eos_token_id", &self.eos_token_id)
            .finish_non_exhaustive()
    }
}

impl GgufTokenizer {
    pub(crate) fn from_metadata(md: &Metadata) -> Result<Self> {
        let model = md_string(md, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::UnsupportedTokenizer(format!(
                "tokenizer.ggml.model is `{model}`; only byte-level BPE (`gpt2`) is supported"
            )));
        }
        let tokens = md_string_array(md, "tokenizer.ggml.tokens")?;
        let merges = md_string_array(md, "tokenizer.ggml.merges")?;
        let token_types = match md.get("tokenizer.ggml.token_type") {
            Some(v) => {
                let types = int_array(v, "tokenizer.ggml.token_type")?;
                if types.len() != tokens.len() {
                    return Err(Error::metadata(
                        "tokenizer.ggml.token_type",
                        format!("{} entries for {} tokens", types.len(), tokens.len()),
                    ));
                }
                types
            }
            None => vec![1; tokens.len()],
        };
        let eos_token_id = md_u32(md, "tokenizer.ggml.eos_token_id")?;
        let bos_token_id =
            md.get("tokenizer.ggml.bos_token_id").map(|v| value_u32(v, "tokenizer.ggml.bos_token_id")).transpose()?;
        let add_bos_token = match md.get("tokenizer.ggml.add_bos_token") {
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        if usize::try_from(eos_token_id).map_or(true, |id| id >= tokens.len()) {
            return Err(Error::metadata(
                "tokenizer.ggml.eos_token_id",
                format!("{eos_token_id} is outside the vocabulary"),
            ));
        }

        let mut vocab = Vocab::default();
        for (id, token) in tokens.iter().enumerate() {
            let id = u32::try_from(id).map_err(|_| Error::metadata("tokenizer.ggml.tokens", "vocabulary too large"))?;
            vocab.insert(String::clone(token), id);
        }
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| Error::metadata("tokenizer.ggml.merges", format!("malformed merge `{m}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe =
            BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| Error::Tokenizer(e.to_string()))?;

        let mut tokenizer = Tokenizer::new(bpe);
        let pre = md.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok());
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre.map(String::as_str))));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

        let mut special = Vec::new();
        let mut user_defined = Vec::new();
        for (token, ty) in tokens.iter().zip(&token_types) {
            match *ty {
                TOKEN_TYPE_CONTROL => special.push(AddedToken::from(String::clone(token), true)),
                TOKEN_TYPE_USER_DEFINED => {
                    user_defined.push(AddedToken::from(String::clone(token), false));
                }
                _ => {}
            }
        }
        tokenizer.add_special_tokens(&special);
        tokenizer.add_tokens(&user_defined);
        // Message text must never turn into control tokens: a user typing `<|im_end|>` would
        // otherwise forge turns. The chat template inserts control tokens by id instead.
        tokenizer.set_encode_special_tokens(true);

        let byte_of_char = byte_level_char_to_byte();
        let token_bytes = tokens
            .iter()
            .zip(&token_types)
            .map(|(token, ty)| match *ty {
                TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNUSED => Vec::new(),
                TOKEN_TYPE_USER_DEFINED => token.as_bytes().to_vec(),
                _ => token_to_bytes(token, &byte_of_char),
            })
            .collect();

        Ok(Self { tokenizer, token_bytes, bos_token_id, eos_token_id, add_bos_token })
    }

    /// Encodes plain text; control tokens spelled out in `text` are encoded as ordinary text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, false)?.get_ids().to_vec())
    }

    /// Decodes ids to text, skipping control tokens; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut decoder = IncrementalDecoder::default();
        let mut out = String::new();
        for &id in ids {
            out.push_str(&decoder.push(self, id));
        }
        out.push_str(&decoder.finish());
        out
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    pub fn eos_token_id(&self) -> u32 {
        self.eos_token_id
    }

    /// The BOS token to prepend to every prompt, when the model asks for one.
    pub fn bos_prefix(&self) -> Option<u32> {
        self.bos_token_id.filter(|_| self.add_bos_token)
    }

    fn bytes_of(&self, id: u32) -> &[u8] {
        usize::try_from(id).ok().and_then(|i| self.token_bytes.get(i)).map_or(&[], Vec::as_slice)
    }

    #[cfg(test)]
    pub(crate) fn hf_decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(ids, true)?)
    }
}

/// Turns a stream of token ids into text pieces that never split a UTF-8 character.
#[derive(Debug, Default)]
pub struct IncrementalDecoder {
    pending: Vec<u8>,
}

impl IncrementalDecoder {
    /// Returns the text completed by `id`; possibly empty while a character is still partial.
    pub fn push(&mut self, tokenizer: &GgufTokenizer, id: u32) -> String {
        self.pending.extend_from_slice(tokenizer.bytes_of(id));
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Same replacement `String::from_utf8_lossy` makes on the whole text.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes a trailing partial character (as U+FFFD) once generation has ended.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

fn pre_tokenizer(pre: Option<&str>) -> PreTokenizerWrapper {
    let byte_level = ByteLevel::new(false, true, true);
    match pre {
        // Mirrors llama.cpp's pre-tokenizer groups: these split every digit on its own, then
        // apply the GPT-2 regex.
        Some("smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b") => {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        }
        None | Some("default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais") => byte_level.into(),
        Some(other) => {
            tracing::warn!(
                pre = other,
                "unknown tokenizer.ggml.pre; using the GPT-2 split regex, token counts may be slightly off"
            );
            byte_level.into()
        }
    }
}

/// Inverse of GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to
/// code points from U+0100 upwards, in byte order.
fn byte_level_char_to_byte() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER);
            shifted += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

fn token_to_bytes(token: &str, byte_of_char: &HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match byte_of_char.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

fn md_get<'a>(md: &'a Metadata, key: &str) -> Result<&'a Value> {
    md.get(key).ok_or_else(|| Error::metadata(key, "missing"))
}

pub(crate) fn md_string<'a>(md: &'a Metadata, key: &str) -> Result<&'a str> {
    md_get(md, key)?.to_string().map(String::as_str).map_err(|e| Error::metadata(key, e))
}

pub(crate) fn md_u32(md: &Metadata, key: &str) -> Result<u32> {
    value_u32(md_get(md, key)?, key)
}

fn md_string_array<'a>(md: &'a Metadata, key: &str) -> Result<Vec<&'a String>> {
    md_get(md, key)?
        .to_vec()
        .map_err(|e| Error::metadata(key, e))?
        .iter()
        .map(|v| v.to_string().map_err(|e| Error::metadata(key, e)))
        .collect()
}

fn int_array(v: &Value, key: &str) -> Result<Vec<i32>> {
    v.to_vec()
        .map_err(|e| Error::metadata(key, e))?
        .iter()
        .map(|v| value_i64(v, key).and_then(|i| i32::try_from(i).map_err(|e| Error::metadata(key, e))))
        .collect()
}

/// GGUF writers disagree on integer widths, so accept any integer that fits.
pub(crate) fn value_u32(v: &Value, key: &str) -> Result<u32> {
    u32::try_from(value_i64(v, key)?).map_err(|e| Error::metadata(key, e))
}

fn value_i64(v: &Value, key: &str) -> Result<i64> {
    let out = match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::I64(x) => *x,
        Value::U64(x) => i64::try_from(*x).map_err(|e| Error::metadata(key, e))?,
        other => {
            return Err(Error::metadata(key, format!("expected an integer, got {:?}", other.value_type())));
        }
    };
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A byte-level vocabulary with three control tokens and merges that build `user`.
    pub(crate) fn tiny_metadata() -> Metadata {
        let byte_chars: Vec<char> = {
            let map = byte_level_char_to_byte();
            let mut v: Vec<(u8, char)> = map.into_iter().map(|(c, b)| (b, c)).collect();
            v.sort_unstable();
            v.into_iter().map(|(_, c)| c).collect()
        };
        let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map(String::from).to_vec();
        tokens.extend(byte_chars.iter().map(|c| c.to_string()));
        tokens.extend(["us", "use", "user"].map(String::from));
        let mut types = vec![TOKEN_TYPE_CONTROL; 3];
        types.resize(tokens.len(), 1);
        let merges = ["u s", "us e", "use r"];

        let mut md = Metadata::new();
        md.insert("tokenizer.ggml.model".into(), Value::String("gpt2".into()));
        md.insert("tokenizer.ggml.tokens".into(), Value::Array(tokens.into_iter().map(Value::String).collect()));
        md.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| Value::String((*m).into())).collect()),
        );
        md.insert("tokenizer.ggml.token_type".into(), Value::Array(types.into_iter().map(Value::I32).collect()));
        md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(2));
        md.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(1));
        md
    }

    #[test]
    fn byte_map_is_a_bijection() {
        let map = byte_level_char_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'a'], b'a');
    }

    #[test]
    fn encodes_with_merges_and_round_trips() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        let ids = tok.encode("user").unwrap();
        assert_eq!(ids, vec![tok.token_to_id("user").unwrap()]);
        for text in ["user\nhi", "¿dónde está mi pedido? 🚀", "  spaces\t\ttabs"] {
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids), text);
            assert_eq!(tok.hf_decode(&ids).unwrap(), text);
        }
    }

    #[test]
    fn control_tokens_in_text_stay_text() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        let ids = tok.encode("<|im_end|>").unwrap();
        assert!(ids.len() > 1, "{ids:?}");
        assert!(!ids.contains(&2));
        assert_eq!(tok.decode(&ids), "<|im_end|>");
        assert_eq!(tok.decode(&[1, 2]), "", "control tokens decode to nothing");
    }

    #[test]
    fn incremental_decoder_never_splits_characters() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        let text = "añ🚀x";
        let ids = tok.encode(text).unwrap();
        let mut dec = IncrementalDecoder::default();
        let pieces: Vec<String> = ids.iter().map(|&id| dec.push(&tok, id)).collect();
        assert!(pieces.iter().all(|p| std::str::from_utf8(p.as_bytes()).is_ok()));
        assert_eq!(pieces.concat() + &dec.finish(), text);
    }

    #[test]
    fn invalid_utf8_matches_lossy_decoding() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        // In the tiny vocabulary byte `b` is token `3 + b`.
        for bytes in
            [&[0xC3, b'a', 0x80, 0xF0, 0x9F][..], &[0x80, 0x80, 0xE2, 0x82][..], &[0xF0, 0x9F, 0x9A, 0x80, 0xFF][..]]
        {
            let ids: Vec<u32> = bytes.iter().map(|&b| 3 + u32::from(b)).collect();
            assert_eq!(tok.decode(&ids), String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn rejects_non_bpe_tokenizers() {
        let mut md = tiny_metadata();
        md.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        assert!(matches!(GgufTokenizer::from_metadata(&md), Err(Error::UnsupportedTokenizer(_))));
    }
}

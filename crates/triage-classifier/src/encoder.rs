//! all-MiniLM-L6-v2 sentence embeddings on CPU: candle's f32 GEMM for the matrix products,
//! the rest of the BERT forward pass written out here.
//!
//! Matches sentence-transformers: mean pooling of the last hidden state over the tokens,
//! then L2 normalisation. The shipped tokenizer.json pads every input to 128 tokens; padding
//! is turned off here.
//!
//! Why not candle-transformers' `BertModel`: for an 18-token query, half of its time went to
//! ~25 small tensor ops per layer (allocations, layer norms, the exact GELU's scalar `erf`,
//! masks), not to the matrix products, and a batch had to be padded to its longest member.
//! Here a batch is *ragged*: the token rows of all its texts are stacked into one matrix, so
//! every linear layer (and layer norm, GELU) runs once over exactly the real tokens, and only
//! attention is done per text. Batching texts of any lengths costs no padding, and the
//! weights are streamed once per batch instead of once per text.
//! `tests::matches_candle_bert` checks the output against `BertModel`.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

/// Width of an embedding.
pub const EMBED_DIM: usize = 384;
/// Longest input in tokens the tokenizer keeps (the token count feature saturates here).
pub const MAX_TOKENS: usize = 128;
/// Token rows in one forward pass (a batch is split above this).
const MAX_BATCH_ROWS: usize = 1024;
/// BERT's [SEP] token id (uncased vocabulary), closing a text cut to the model's window.
const SEP: u32 = 102;

fn inf(e: candle_core::Error) -> Error {
    Error::Inference(e.to_string())
}

/// One transformer layer, weights laid out `(in, out)` row-major for `x · W`.
struct Layer {
    /// Query, key and value projections side by side: `(H, 3H)`.
    qkv_w: Tensor,
    qkv_b: Vec<f32>,
    o_w: Tensor,
    o_b: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    up_w: Tensor,
    up_b: Vec<f32>,
    down_w: Tensor,
    down_b: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// The BERT encoder, forward only.
struct Bert {
    hidden: usize,
    heads: usize,
    eps: f32,
    /// Word embeddings, `(vocab, H)`.
    word: Vec<f32>,
    /// Position embeddings plus the (always 0) token type embedding, `(positions, H)`.
    pos_type: Vec<f32>,
    ln_g: Vec<f32>,
    ln_b: Vec<f32>,
    layers: Vec<Layer>,
}

/// The sentence encoder.
pub struct Encoder {
    bert: Bert,
    tokenizer: Tokenizer,
    /// Most tokens fed to the model; longer texts keep their start (and their full count).
    window: usize,
}

impl Encoder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from a directory,
    /// keeping only the first `layers` transformer layers when given, reading at most
    /// `window` tokens of a text (default and cap [`MAX_TOKENS`]).
    ///
    /// Why truncate: on CPU a short query is memory-bound (every layer streams its 7 MB of
    /// weights through the matrix multiply), so time is linear in layers; the heads are
    /// trained on whatever depth and window they will run with, and the heads file records
    /// both.
    pub fn load(dir: &Path, layers: Option<usize>, window: Option<usize>) -> Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| Error::Model(format!("{}: {e}", dir.join(name).display())))
        };
        let config: serde_json::Value =
            serde_json::from_slice(&read("config.json")?).map_err(|e| Error::Model(format!("config.json: {e}")))?;
        let num = |k: &str| {
            config
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| Error::Model(format!("config.json: no {k}")))
        };
        let (hidden, heads, total_layers) =
            (num("hidden_size")?, num("num_attention_heads")?, num("num_hidden_layers")?);
        let intermediate = num("intermediate_size")?;
        let sizes = (num("vocab_size")?, num("max_position_embeddings")?, num("type_vocab_size")?);
        let eps = config.get("layer_norm_eps").and_then(serde_json::Value::as_f64).unwrap_or(1e-12) as f32;
        let act = config.get("hidden_act").and_then(serde_json::Value::as_str).unwrap_or("gelu");
        if act != "gelu" || hidden % heads != 0 {
            return Err(Error::Model(format!("config.json: unsupported hidden_act {act:?} or head split")));
        }
        let n_layers = layers.map_or(total_layers, |l| l.clamp(1, total_layers));
        let mut tokenizer =
            Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|e| Error::Model(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| Error::Model(format!("tokenizer truncation: {e}")))?;
        // Buffered, not mmapped: mmap needs `unsafe`, which the workspace forbids, and the
        // file is 90 MB, read once at start.
        let vb = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &Device::Cpu)
            .map_err(|e| Error::Model(format!("model.safetensors: {e}")))?;
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") { vb } else { vb.pp("bert") };
        let bert = Bert::load(&vb, (hidden, heads, intermediate), sizes, n_layers, eps)
            .map_err(|e| Error::Model(format!("model.safetensors: {e}")))?;
        let window = window.unwrap_or(MAX_TOKENS).clamp(2, MAX_TOKENS.min(bert.pos_type.len() / hidden));
        Ok(Self { bert, tokenizer, window })
    }

    /// True when a directory holds the three files [`Encoder::load`] needs.
    pub fn files_present(dir: &Path) -> bool {
        ["model.safetensors", "tokenizer.json", "config.json"].iter().all(|f| dir.join(f).is_file())
    }

    /// Most tokens of a text the model reads.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Number of tokens a text becomes (after truncation to [`MAX_TOKENS`]), for features.
    pub fn token_count(&self, text: &str) -> Result<usize> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| Error::Inference(format!("tokenize: {e}")))?;
        Ok(enc.len())
    }

    /// Token ids the model reads for a text (cut to the window, closed by [SEP]) and the
    /// text's token count up to [`MAX_TOKENS`].
    fn ids(&self, text: &str) -> Result<(Vec<u32>, usize)> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| Error::Inference(format!("tokenize: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        let count = ids.len();
        if ids.len() > self.window {
            ids.truncate(self.window);
            if let Some(last) = ids.last_mut() {
                *last = SEP;
            }
        }
        Ok((ids, count))
    }

    /// Embeds texts; each result is L2-normalised, [`EMBED_DIM`] wide, paired with the
    /// text's token count (up to [`MAX_TOKENS`]).
    ///
    /// All texts share forward passes whatever their lengths (no padding, see the module
    /// doc); a pass takes up to [`MAX_BATCH_ROWS`] token rows.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<(Vec<f32>, usize)>> {
        let toks = texts.iter().map(|t| self.ids(t)).collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(toks.len());
        let mut start = 0;
        while start < toks.len() {
            let mut end = start;
            let mut rows = 0;
            while end < toks.len() && (end == start || rows + toks[end].0.len() <= MAX_BATCH_ROWS) {
                rows += toks[end].0.len();
                end += 1;
            }
            let seqs: Vec<&[u32]> = toks[start..end].iter().map(|(ids, _)| ids.as_slice()).collect();
            let embs = self.bert.embed(&seqs)?;
            out.extend(embs.into_iter().zip(&toks[start..end]).map(|(v, (_, n))| (v, *n)));
            start = end;
        }
        Ok(out)
    }
}

impl Bert {
    fn load(
        vb: &VarBuilder,
        (hidden, heads, intermediate): (usize, usize, usize),
        (vocab, positions, types): (usize, usize, usize),
        n_layers: usize,
        eps: f32,
    ) -> candle_core::Result<Self> {
        let vec1 = |shape: usize, name: &str| vb.get(shape, name)?.to_vec1::<f32>();
        // A torch Linear stores (out, in); `x · W` wants (in, out).
        let lin = |out: usize, inp: usize, name: &str| vb.get((out, inp), name)?.t()?.contiguous();
        let word = vb.get((vocab, hidden), "embeddings.word_embeddings.weight")?.flatten_all()?.to_vec1::<f32>()?;
        let pos = vb.get((positions, hidden), "embeddings.position_embeddings.weight")?;
        let ty = vb.get((types, hidden), "embeddings.token_type_embeddings.weight")?.narrow(0, 0, 1)?;
        let pos_type = pos.broadcast_add(&ty)?.flatten_all()?.to_vec1::<f32>()?;
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let p = |s: &str| format!("encoder.layer.{i}.{s}");
            let q = lin(hidden, hidden, &p("attention.self.query.weight"))?;
            let k = lin(hidden, hidden, &p("attention.self.key.weight"))?;
            let v = lin(hidden, hidden, &p("attention.self.value.weight"))?;
            let mut qkv_b = vec1(hidden, &p("attention.self.query.bias"))?;
            qkv_b.extend(vec1(hidden, &p("attention.self.key.bias"))?);
            qkv_b.extend(vec1(hidden, &p("attention.self.value.bias"))?);
            layers.push(Layer {
                qkv_w: Tensor::cat(&[&q, &k, &v], 1)?.contiguous()?,
                qkv_b,
                o_w: lin(hidden, hidden, &p("attention.output.dense.weight"))?,
                o_b: vec1(hidden, &p("attention.output.dense.bias"))?,
                ln1_g: vec1(hidden, &p("attention.output.LayerNorm.weight"))?,
                ln1_b: vec1(hidden, &p("attention.output.LayerNorm.bias"))?,
                up_w: lin(intermediate, hidden, &p("intermediate.dense.weight"))?,
                up_b: vec1(intermediate, &p("intermediate.dense.bias"))?,
                down_w: lin(hidden, intermediate, &p("output.dense.weight"))?,
                down_b: vec1(hidden, &p("output.dense.bias"))?,
                ln2_g: vec1(hidden, &p("output.LayerNorm.weight"))?,
                ln2_b: vec1(hidden, &p("output.LayerNorm.bias"))?,
            });
        }
        Ok(Self {
            hidden,
            heads,
            eps,
            word,
            pos_type,
            ln_g: vec1(hidden, "embeddings.LayerNorm.weight")?,
            ln_b: vec1(hidden, "embeddings.LayerNorm.bias")?,
            layers,
        })
    }

    /// Mean-pooled, L2-normalised embeddings of token sequences, in one ragged pass.
    fn embed(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let rows: usize = seqs.iter().map(|s| s.len()).sum();
        let vocab = self.word.len() / h;
        let mut x = Vec::with_capacity(rows * h);
        for s in seqs {
            for (j, &id) in s.iter().enumerate() {
                let id = (id as usize).min(vocab.saturating_sub(1));
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.pos_type[j * h..(j + 1) * h];
                x.extend(w.iter().zip(p).map(|(a, b)| a + b));
            }
        }
        layer_norm(&mut x, h, &self.ln_g, &self.ln_b, self.eps);
        for layer in &self.layers {
            x = self.layer(layer, x, rows, seqs)?;
        }
        let mut out = Vec::with_capacity(seqs.len());
        let mut r = 0;
        for s in seqs {
            let mut v = vec![0f32; h];
            for row in x[r * h..(r + s.len()) * h].chunks_exact(h) {
                v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            r += s.len();
            let n = s.len().max(1) as f32;
            v.iter_mut().for_each(|a| *a /= n);
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt() + 1e-12;
            v.iter_mut().for_each(|a| *a /= norm);
            out.push(v);
        }
        Ok(out)
    }

    fn layer(&self, l: &Layer, x: Vec<f32>, rows: usize, seqs: &[&[u32]]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let x = Tensor::from_vec(x, (rows, h), &Device::Cpu).map_err(inf)?;
        let qkv = linear(&x, &l.qkv_w, &l.qkv_b)?;
        let mut ctx = Vec::with_capacity(rows * h);
        let mut r = 0;
        for s in seqs {
            self.attention(&qkv[r * 3 * h..(r + s.len()) * 3 * h], s.len(), &mut ctx)?;
            r += s.len();
        }
        let ctx = Tensor::from_vec(ctx, (rows, h), &Device::Cpu).map_err(inf)?;
        let mut a = linear(&ctx, &l.o_w, &l.o_b)?;
        let xv = x.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(inf)?;
        a.iter_mut().zip(&xv).for_each(|(a, b)| *a += b);
        layer_norm(&mut a, h, &l.ln1_g, &l.ln1_b, self.eps);
        let at = Tensor::from_vec(a, (rows, h), &Device::Cpu).map_err(inf)?;
        let mut up = linear(&at, &l.up_w, &l.up_b)?;
        up.iter_mut().for_each(|v| *v = gelu(*v));
        let up = Tensor::from_vec(up, (rows, l.up_b.len()), &Device::Cpu).map_err(inf)?;
        let mut y = linear(&up, &l.down_w, &l.down_b)?;
        let av = at.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(inf)?;
        y.iter_mut().zip(&av).for_each(|(a, b)| *a += b);
        layer_norm(&mut y, h, &l.ln2_g, &l.ln2_b, self.eps);
        Ok(y)
    }

    /// Self-attention of one text: `qkv` is its `(n, 3H)` rows; appends `(n, H)` to `out`.
    fn attention(&self, qkv: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        let (h, nh) = (self.hidden, self.heads);
        let d = h / nh;
        let scale = 1.0 / (d as f32).sqrt();
        // Head-major copies: q, k, v as (heads, n, d).
        let mut q = Vec::with_capacity(n * h);
        let mut k = Vec::with_capacity(n * h);
        let mut v = Vec::with_capacity(n * h);
        for head in 0..nh {
            for row in qkv.chunks_exact(3 * h) {
                q.extend(row[head * d..(head + 1) * d].iter().map(|a| a * scale));
                k.extend_from_slice(&row[h + head * d..h + (head + 1) * d]);
                v.extend_from_slice(&row[2 * h + head * d..2 * h + (head + 1) * d]);
            }
        }
        let dev = &Device::Cpu;
        let q = Tensor::from_vec(q, (nh, n, d), dev).map_err(inf)?;
        let k = Tensor::from_vec(k, (nh, n, d), dev).map_err(inf)?;
        let v = Tensor::from_vec(v, (nh, n, d), dev).map_err(inf)?;
        let scores = q.matmul(&k.t().map_err(inf)?).map_err(inf)?;
        let mut p = scores.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(inf)?;
        for row in p.chunks_exact_mut(n) {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for a in row.iter_mut() {
                *a = (*a - m).exp();
                sum += *a;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|a| *a *= inv);
        }
        let p = Tensor::from_vec(p, (nh, n, n), dev).map_err(inf)?;
        let c = p.matmul(&v).map_err(inf)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(inf)?;
        // Back to token-major (n, H).
        for i in 0..n {
            for head in 0..nh {
                out.extend_from_slice(&c[(head * n + i) * d..(head * n + i + 1) * d]);
            }
        }
        Ok(())
    }
}

/// `x · W + b` as a flat row-major vector.
fn linear(x: &Tensor, w: &Tensor, b: &[f32]) -> Result<Vec<f32>> {
    let mut y = x.matmul(w).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()).map_err(inf)?;
    for row in y.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    }
    Ok(y)
}

/// Layer norm of each `h`-wide row, in place.
fn layer_norm(x: &mut [f32], h: usize, g: &[f32], b: &[f32], eps: f32) {
    let n = h as f32;
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((a, g), b) in row.iter_mut().zip(g).zip(b) {
            *a = (*a - mean) * inv * g + b;
        }
    }
}

/// The exact (erf) GELU BERT was trained with.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf for f32 as a rational function (Eigen's `generic_fast_erf_float`, the one TensorFlow
/// and XLA use): a few ulp from the exact value, no branches or `exp`, so the GELU loop
/// vectorises.
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> Option<std::path::PathBuf> {
        let dir = triage_testkit::repo_root().join("models/all-minilm-l6-v2");
        Encoder::files_present(&dir).then_some(dir)
    }

    #[test]
    fn erf_is_accurate() {
        // Reference: erf by its Taylor series in f64 (converges fast on [-4, 4]).
        let exact = |x: f64| {
            let (mut term, mut sum, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 * sum.abs().max(1e-300) && n < 200.0 {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        let mut worst = 0f64;
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            worst = worst.max((f64::from(erf(x as f32)) - exact(x)).abs());
        }
        assert!(worst < 2e-6, "max |erf error| {worst}");
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
    }

    /// Same embeddings as candle-transformers' `BertModel` with padding-masked mean pooling,
    /// alone and in a ragged batch.
    #[test]
    fn matches_candle_bert() -> Result<()> {
        use candle_transformers::models::bert::{BertModel, Config};
        let Some(dir) = model_dir() else {
            eprintln!("SKIPPED: encoder files missing");
            return Ok(());
        };
        let e = Encoder::load(&dir, Some(3), None)?;
        let cfg: Config =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).map_err(|e| Error::Model(e.to_string()))?)
                .map_err(|e| Error::Model(e.to_string()))?;
        let cfg = Config { num_hidden_layers: 3, ..cfg };
        let vb = VarBuilder::from_buffered_safetensors(
            std::fs::read(dir.join("model.safetensors")).map_err(|e| Error::Model(e.to_string()))?,
            DType::F32,
            &Device::Cpu,
        )
        .map_err(inf)?;
        let model = BertModel::load(vb, &cfg).map_err(inf)?;
        let texts = ["where is my order?", "¿dónde está mi pedido? it still hasn't arrived, order 12345", "hi"];
        let batch = e.embed(&texts)?;
        for (t, (got, n)) in texts.iter().zip(&batch) {
            let (ids, count) = e.ids(t)?;
            assert_eq!(*n, count);
            let ids = Tensor::new(ids.as_slice(), &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(inf)?;
            let hidden = model.forward(&ids, &ids.zeros_like().map_err(inf)?, None).map_err(inf)?;
            let mean = hidden.mean(1).map_err(inf)?;
            let norm = mean.sqr().and_then(|m| m.sum_keepdim(1)).and_then(|m| m.sqrt()).map_err(inf)?;
            let want = mean
                .broadcast_div(&norm)
                .and_then(|m| m.flatten_all())
                .and_then(|m| m.to_vec1::<f32>())
                .map_err(inf)?;
            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-4, "{t:?}: max diff {diff}");
            let alone = e.embed(&[t])?;
            let diff = got.iter().zip(&alone[0].0).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "{t:?}: batch vs alone {diff}");
        }
        Ok(())
    }

    #[test]
    fn long_texts_keep_their_start_and_count() -> Result<()> {
        let Some(dir) = model_dir() else {
            return Ok(());
        };
        let e = Encoder::load(&dir, Some(1), Some(16))?;
        let long = "the supplier shall indemnify the buyer against all claims ".repeat(30);
        let (ids, count) = e.ids(&long)?;
        assert_eq!(ids.len(), 16);
        assert_eq!(ids.last(), Some(&SEP));
        assert_eq!(count, MAX_TOKENS);
        assert_eq!(e.embed(&[&long])?[0].1, MAX_TOKENS);
        Ok(())
    }

    /// CPU time of this thread in ns (/proc/thread-self/schedstat; 0 without /proc).
    fn thread_cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }

    /// Where the time of one embedding goes (`cargo test --release -p triage-classifier
    /// --lib profile -- --ignored --nocapture`; `PROFILE_LAYERS`, `PROFILE_WINDOW`). CPU is
    /// this thread's plus candle's GEMM helper threads (whole process), so it stays
    /// comparable when other jobs share the machine.
    #[test]
    #[ignore]
    fn profile() -> Result<()> {
        let Some(dir) = model_dir() else {
            return Ok(());
        };
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
        let e = Encoder::load(&dir, env("PROFILE_LAYERS"), env("PROFILE_WINDOW"))?;
        // utime + stime of the whole process (fields 14 and 15 of /proc/self/stat), in ns.
        let cpu = || {
            std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| {
                    let f: Vec<String> = s.rsplit_once(')')?.1.split_whitespace().map(str::to_string).collect();
                    Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) * 10_000_000)
                })
                .unwrap_or(0)
        };
        let short = "hola, where is my order 12345? it still hasn't arrived";
        let long = "the supplier shall indemnify the buyer against all claims arising ".repeat(12);
        let eight = [short; 8];
        let cases: [(&str, &[&str], usize); 4] = [
            ("2 tokens", &["hi"], 300),
            ("18 tokens", &[short], 300),
            ("128 tokens", &[&long], 100),
            ("8 x 18 tokens, one batch", &eight, 60),
        ];
        println!("layers {}, window {}", e.bert.layers.len(), e.window);
        for (name, texts, n) in cases {
            e.embed(texts)?;
            let (c0, t0, w) = (cpu(), thread_cpu_ns(), std::time::Instant::now());
            for _ in 0..n {
                e.embed(texts)?;
            }
            let per = |x: f64| x / n as f64;
            println!(
                "{name:<26} wall {:>7.3} ms  cpu (process) {:>7.3} ms  cpu (this thread) {:>7.3} ms",
                per(w.elapsed().as_secs_f64() * 1e3),
                per((cpu() - c0) as f64 / 1e6),
                per((thread_cpu_ns() - t0) as f64 / 1e6)
            );
        }
        Ok(())
    }
}

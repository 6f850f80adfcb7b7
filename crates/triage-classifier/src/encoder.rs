//! all-MiniLM-L6-v2 sentence embeddings with candle, on CPU.
//!
//! Matches sentence-transformers: attention-masked mean pooling of the last hidden state,
//! then L2 normalisation. The shipped tokenizer.json pads every input to 128 tokens; padding
//! is turned off here and done per batch to the longest member, because a 12-token query
//! padded to 128 costs ten times the compute for the same embedding.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

/// Width of an embedding.
pub const EMBED_DIM: usize = 384;
/// Longest input in tokens; longer texts keep their start.
pub const MAX_TOKENS: usize = 128;
/// Most texts in one forward pass.
const MAX_BATCH: usize = 32;

/// The sentence encoder.
pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Encoder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from a directory,
    /// keeping only the first `layers` transformer layers when given.
    ///
    /// Why truncate: on CPU a short query is memory-bound (every layer streams its 7 MB of
    /// weights through the matrix multiply), so time is linear in layers; the heads are
    /// trained on whatever depth they will run with, and the heads file records it.
    pub fn load(dir: &Path, layers: Option<usize>) -> Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| Error::Model(format!("{}: {e}", dir.join(name).display())))
        };
        let mut config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|e| Error::Model(format!("config.json: {e}")))?;
        if let Some(l) = layers {
            config.num_hidden_layers = l.clamp(1, config.num_hidden_layers);
        }
        let mut tokenizer =
            Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|e| Error::Model(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| Error::Model(format!("tokenizer truncation: {e}")))?;
        let device = Device::Cpu;
        // Buffered, not mmapped: mmap needs `unsafe`, which the workspace forbids, and the
        // file is 90 MB, read once at start.
        let vb = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
            .map_err(|e| Error::Model(format!("model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| Error::Model(format!("bert: {e}")))?;
        Ok(Self { model, tokenizer, device })
    }

    /// True when a directory holds the three files [`Encoder::load`] needs.
    pub fn files_present(dir: &Path) -> bool {
        ["model.safetensors", "tokenizer.json", "config.json"].iter().all(|f| dir.join(f).is_file())
    }

    /// Number of tokens a text becomes (after truncation), for features and batching.
    pub fn token_count(&self, text: &str) -> Result<usize> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| Error::Inference(format!("tokenize: {e}")))?;
        Ok(enc.len())
    }

    /// Embeds texts; each result is L2-normalised, [`EMBED_DIM`] wide, paired with the
    /// text's token count (after truncation).
    ///
    /// Texts of similar length share a forward pass; a 12-token query is never padded to a
    /// 128-token contract in the same batch (that would cost ten times its own compute).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<(Vec<f32>, usize)>> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(*t, true))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Inference(format!("tokenize: {e}")))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out: Vec<Option<(Vec<f32>, usize)>> = vec![None; encodings.len()];
        let mut start = 0;
        while start < order.len() {
            let shortest = encodings[order[start]].len();
            let mut end = start + 1;
            while end < order.len() && end - start < MAX_BATCH && encodings[order[end]].len() <= shortest * 3 / 2 + 4 {
                end += 1;
            }
            let chunk: Vec<&tokenizers::Encoding> = order[start..end].iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in order[start..end].iter().zip(self.forward_padded(&chunk)?) {
                out[i] = Some((v, encodings[i].len()));
            }
            start = end;
        }
        out.into_iter().map(|o| o.ok_or_else(|| Error::Inference("embedding lost".into()))).collect()
    }

    /// One forward pass over encodings padded to the longest, pooled and normalised.
    fn forward_padded(&self, encodings: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>> {
        let inf = |e: candle_core::Error| Error::Inference(e.to_string());
        let len = encodings.iter().map(|e| e.len()).max().unwrap_or(1).max(1);
        let n = encodings.len();
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (i, enc) in encodings.iter().enumerate() {
            for (j, id) in enc.get_ids().iter().enumerate() {
                ids[i * len + j] = *id;
                mask[i * len + j] = 1;
            }
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device).map_err(inf)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device).map_err(inf)?;
        let types = ids.zeros_like().map_err(inf)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(inf)?; // (n, len, 384)
        // Masked mean pooling: padding positions contribute nothing to sum or count.
        let maskf = mask.to_dtype(DType::F32).map_err(inf)?.unsqueeze(2).map_err(inf)?;
        let summed = hidden.broadcast_mul(&maskf).map_err(inf)?.sum(1).map_err(inf)?;
        let counts = maskf.sum(1).map_err(inf)?;
        let mean = summed.broadcast_div(&counts).map_err(inf)?;
        let norm = mean.sqr().map_err(inf)?.sum_keepdim(1).map_err(inf)?.sqrt().map_err(inf)?;
        let normed = mean.broadcast_div(&(norm + 1e-12).map_err(inf)?).map_err(inf)?;
        normed.to_vec2::<f32>().map_err(inf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Where the time of one embedding goes (run with `--ignored --nocapture`).
    #[test]
    #[ignore]
    fn profile() -> Result<()> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-minilm-l6-v2");
        let layers = std::env::var("PROFILE_LAYERS").ok().and_then(|v| v.parse().ok());
        let e = Encoder::load(&dir, layers)?;
        let q = "hola, where is my order 12345? it still hasn't arrived";
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            e.tokenizer.encode(q, true).map_err(|e| Error::Inference(e.to_string()))?;
        }
        println!("tokenize        {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let enc = e.tokenizer.encode(q, true).map_err(|e| Error::Inference(e.to_string()))?;
        println!("tokens          {}", enc.len());
        let inf = |e: candle_core::Error| Error::Inference(e.to_string());
        let ids = Tensor::new(enc.get_ids(), &e.device).map_err(inf)?.unsqueeze(0).map_err(inf)?;
        let types = ids.zeros_like().map_err(inf)?;
        let t = Instant::now();
        for _ in 0..n {
            e.model.forward(&ids, &types, None).map_err(inf)?;
        }
        println!("forward         {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let one = Tensor::new(&[101u32, 102], &e.device).map_err(inf)?.unsqueeze(0).map_err(inf)?;
        let t = Instant::now();
        for _ in 0..n {
            e.model.forward(&one, &one.zeros_like().map_err(inf)?, None).map_err(inf)?;
        }
        println!("forward 2 tok   {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let t = Instant::now();
        for _ in 0..n {
            e.embed(&[q])?;
        }
        println!("embed (all)     {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let t = Instant::now();
        let x = Tensor::ones((16, 384), DType::F32, &e.device).map_err(inf)?;
        let w = Tensor::ones((384, 1536), DType::F32, &e.device).map_err(inf)?;
        for _ in 0..n {
            x.matmul(&w).map_err(inf)?;
        }
        println!("matmul 16x384x1536 {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let x3 = Tensor::ones((1, 16, 384), DType::F32, &e.device).map_err(inf)?;
        let wt2 = Tensor::ones((1536, 384), DType::F32, &e.device).map_err(inf)?;
        let t = Instant::now();
        for _ in 0..n {
            x3.matmul(&wt2.broadcast_left(1).map_err(inf)?.t().map_err(inf)?).map_err(inf)?;
        }
        println!("linear-style 3d {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        let t = Instant::now();
        for _ in 0..n {
            x.matmul(&wt2.t().map_err(inf)?).map_err(inf)?;
        }
        println!("2d x w.t()      {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        use candle_core::Module;
        use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
        let wt = Tensor::ones((1536, 384), DType::F32, &e.device).map_err(inf)?;
        for dt in [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::F16] {
            let q = QMatMul::from_qtensor(QTensor::quantize(&wt, dt).map_err(inf)?).map_err(inf)?;
            let t = Instant::now();
            for _ in 0..n {
                q.forward(&x).map_err(inf)?;
            }
            println!("qmatmul {dt:?} {:>8.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
        Ok(())
    }
}

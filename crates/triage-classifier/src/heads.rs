//! Trained heads: small classifiers over the feature vector, one per label.
//!
//! Each head is a multinomial logistic regression (optionally behind one ReLU hidden layer)
//! on standardised features, with a temperature fitted on the dev split so that the softmax
//! is calibrated. The file is JSON, small enough to commit and to compile in as the default.

use crate::labels::{LANGUAGE, category_pb, complexity_pb};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use triage_proto::pb;

/// The heads committed with the crate; a `heads` path in config overrides them.
pub const DEFAULT_HEADS: &str = include_str!("../heads/heads-v1.json");

/// One dense layer: `out = W x + b`, `W` row-major (out × in).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    /// Weights, one row per output.
    pub w: Vec<Vec<f32>>,
    /// Biases, one per output.
    pub b: Vec<f32>,
}

impl Layer {
    /// `W x + b`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.w.iter().zip(&self.b).map(|(row, b)| row.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + b).collect()
    }
}

/// A classifier for one label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    /// Label names in output order.
    pub labels: Vec<String>,
    /// Optional ReLU hidden layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Layer>,
    /// Output layer (logits).
    pub out: Layer,
    /// Softmax temperature fitted on dev (1.0 = as trained).
    pub temperature: f32,
}

impl Head {
    /// Raw logits for a standardised feature vector.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        match &self.hidden {
            Some(h) => {
                let a: Vec<f32> = h.forward(x).into_iter().map(|v| v.max(0.0)).collect();
                self.out.forward(&a)
            }
            None => self.out.forward(x),
        }
    }

    /// Calibrated probabilities.
    pub fn probs(&self, x: &[f32]) -> Vec<f32> {
        softmax(&self.logits(x), self.temperature)
    }
}

/// Softmax of `logits / t`.
pub fn softmax(logits: &[f32], t: f32) -> Vec<f32> {
    let t = if t > 0.0 { t } else { 1.0 };
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| ((l - m) / t).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// The four heads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadSet {
    /// simple / moderate / complex.
    pub complexity: Head,
    /// transactional / analytical / creative.
    pub category: Head,
    /// false / true.
    pub requires_context: Head,
    /// en / es / pt / mixed.
    pub language: Head,
}

/// The whole heads file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadsFile {
    /// Format version of this file.
    pub format: u32,
    /// Encoder the features were computed with.
    pub encoder: String,
    /// Transformer layers of the encoder the features were computed with (the first N).
    #[serde(default = "all_layers")]
    pub encoder_layers: usize,
    /// Most tokens of a text the encoder read (its start); absent: all of
    /// [`crate::encoder::MAX_TOKENS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_window: Option<usize>,
    /// Width of the feature vector the heads expect.
    pub feature_dim: usize,
    /// Per-feature mean subtracted before the heads.
    pub mean: Vec<f32>,
    /// Per-feature scale divided by before the heads.
    pub scale: Vec<f32>,
    /// The heads.
    pub heads: HeadSet,
    /// How they were trained and what they scored (informational).
    #[serde(default)]
    pub training: serde_json::Value,
}

fn all_layers() -> usize {
    6
}

/// Probabilities of every head for one input.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Over [`crate::labels::COMPLEXITY`].
    pub complexity: Vec<f32>,
    /// Over [`crate::labels::CATEGORY`].
    pub category: Vec<f32>,
    /// Over [`crate::labels::CONTEXT`].
    pub requires_context: Vec<f32>,
    /// Over [`crate::labels::LANGUAGE`].
    pub language: Vec<f32>,
}

/// Loaded heads plus the short hash that names them.
#[derive(Debug, Clone)]
pub struct Heads {
    /// The parsed file.
    pub file: HeadsFile,
    /// First 8 hex digits of the file's sha256.
    pub short_hash: String,
}

impl Heads {
    /// Parses a heads file and checks its shapes.
    pub fn parse(text: &str) -> Result<Self> {
        let file: HeadsFile = serde_json::from_str(text).map_err(|e| Error::Model(format!("heads file: {e}")))?;
        let dim = file.feature_dim;
        if dim != crate::features::FEATURE_DIM || file.mean.len() != dim || file.scale.len() != dim {
            return Err(Error::Model(format!(
                "heads expect {} features (mean {}, scale {}), the featurizer makes {}",
                dim,
                file.mean.len(),
                file.scale.len(),
                crate::features::FEATURE_DIM
            )));
        }
        for (name, head, n) in [
            ("complexity", &file.heads.complexity, 3),
            ("category", &file.heads.category, 3),
            ("requires_context", &file.heads.requires_context, 2),
            ("language", &file.heads.language, 4),
        ] {
            let input = head.hidden.as_ref().map_or(dim, |h| h.b.len());
            let ok = head.labels.len() == n
                && head.out.b.len() == n
                && head.out.w.len() == n
                && head.out.w.iter().all(|r| r.len() == input)
                && head.hidden.as_ref().is_none_or(|h| h.w.len() == h.b.len() && h.w.iter().all(|r| r.len() == dim));
            if !ok {
                return Err(Error::Model(format!("heads file: head {name} has the wrong shape")));
            }
        }
        let short_hash = hex::encode(Sha256::digest(text.as_bytes()))[..8].to_string();
        Ok(Self { file, short_hash })
    }

    /// Zero-weight heads of the current feature width (uniform outputs): what training
    /// starts from, so a stale committed heads file never blocks retraining.
    pub fn untrained() -> Self {
        let d = crate::features::FEATURE_DIM;
        let head = |labels: &[&str]| Head {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            hidden: None,
            out: Layer { w: vec![vec![0.0; d]; labels.len()], b: vec![0.0; labels.len()] },
            temperature: 1.0,
        };
        let file = HeadsFile {
            format: 1,
            encoder: "all-minilm-l6-v2".into(),
            encoder_layers: all_layers(),
            encoder_window: None,
            feature_dim: d,
            mean: vec![0.0; d],
            scale: vec![1.0; d],
            heads: HeadSet {
                complexity: head(&crate::labels::COMPLEXITY),
                category: head(&crate::labels::CATEGORY),
                requires_context: head(&crate::labels::CONTEXT),
                language: head(&LANGUAGE),
            },
            training: serde_json::Value::Null,
        };
        Self { file, short_hash: "untrained".into() }
    }

    /// The compiled-in default heads.
    pub fn default_heads() -> Result<Self> {
        Self::parse(DEFAULT_HEADS)
    }

    /// Reads heads from a file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// `minilm-l6-v2+heads-<hash>`.
    pub fn model_version(&self) -> String {
        format!("minilm-l6-v2+heads-{}", self.short_hash)
    }

    /// Standardises a raw feature vector.
    pub fn standardize(&self, raw: &[f32]) -> Vec<f32> {
        raw.iter().zip(&self.file.mean).zip(&self.file.scale).map(|((x, m), s)| (x - m) / s).collect()
    }

    /// All heads' calibrated probabilities for a raw feature vector.
    pub fn predict(&self, raw: &[f32]) -> Prediction {
        let x = self.standardize(raw);
        let h = &self.file.heads;
        Prediction {
            complexity: h.complexity.probs(&x),
            category: h.category.probs(&x),
            requires_context: h.requires_context.probs(&x),
            language: h.language.probs(&x),
        }
    }
}

impl Heads {
    /// Wire labels for a raw feature vector: argmax of each head, confidence = the
    /// complexity head's calibrated probability of its label.
    pub fn classification(&self, raw: &[f32], model_version: &str) -> pb::Classification {
        let p = self.predict(raw);
        let (c, conf) = argmax(&p.complexity);
        let (cat, _) = argmax(&p.category);
        let (ctx, _) = argmax(&p.requires_context);
        let mut lang_p = p.language.clone();
        if !has_romance_cue(raw) {
            // "mixed" means Spanish or Portuguese words beside English ones; a text with no
            // es/pt cue word, accent mark or romance function word is not mixed whatever
            // the head says (it said so for "the Basic and Pro plans").
            if let Some(m) = LANGUAGE.iter().position(|l| *l == "mixed").and_then(|i| lang_p.get_mut(i)) {
                *m = 0.0;
            }
        }
        let (lang, _) = argmax(&lang_p);
        pb::Classification {
            complexity: complexity_pb(c) as i32,
            category: category_pb(cat) as i32,
            requires_context: ctx == 1,
            confidence: conf,
            language: LANGUAGE.get(lang).copied().unwrap_or("en").to_string(),
            model_version: model_version.to_string(),
        }
    }
}

/// Whether the raw features show any Spanish or Portuguese cue (the `cue_es`, `cue_pt` and
/// `cue_romance` scalars of [`crate::features::SCALARS`]).
fn has_romance_cue(raw: &[f32]) -> bool {
    use crate::features::SCALARS;
    let start = 3 * crate::encoder::EMBED_DIM;
    ["cue_es", "cue_pt", "cue_romance"]
        .iter()
        .filter_map(|name| SCALARS.iter().position(|s| s == name))
        .any(|i| raw.get(start + i).is_some_and(|v| *v > 0.0))
}

/// Index and value of the largest probability.
pub fn argmax(p: &[f32]) -> (usize, f32) {
    p.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, v)| if v > a.1 { (i, v) } else { a })
}

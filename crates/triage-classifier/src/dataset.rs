//! The labelled data file (`data/queries.jsonl`) and the metrics computed on it, shared by
//! the `train-heads` and `eval-classifier` binaries and the tests.

use crate::labels::{CATEGORY, COMPLEXITY, CONTEXT, LANGUAGE, complexity_index, index_of};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use triage_proto::pb;

/// One turn of an example's history.
#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    /// "user" or "assistant".
    pub role: String,
    /// Text of the turn.
    pub content: String,
}

/// One labelled example.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    /// Unique id.
    pub id: String,
    /// The query.
    pub query: String,
    /// Earlier turns, oldest first.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// simple | moderate | complex.
    pub complexity: String,
    /// transactional | analytical | creative.
    pub category: String,
    /// Whether earlier turns are needed.
    pub requires_context: bool,
    /// en | es | pt | mixed.
    pub language: String,
    /// train | dev | test.
    pub split: String,
    /// Template the example came from (held out whole for test).
    #[serde(default)]
    pub template: String,
}

/// Label indices of an example (see [`crate::labels`]).
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    /// Into [`COMPLEXITY`].
    pub complexity: usize,
    /// Into [`CATEGORY`].
    pub category: usize,
    /// Into [`CONTEXT`].
    pub requires_context: usize,
    /// Into [`LANGUAGE`].
    pub language: usize,
}

impl Example {
    /// History as wire messages.
    pub fn history_pb(&self) -> Vec<pb::Message> {
        self.history
            .iter()
            .map(|t| pb::Message {
                role: if t.role == "assistant" { pb::Role::Assistant } else { pb::Role::User } as i32,
                content: t.content.clone(),
                ..Default::default()
            })
            .collect()
    }

    /// Label indices; an unknown label name is an error.
    pub fn targets(&self) -> Result<Targets> {
        let find = |set: &[&str], v: &str| {
            index_of(set, v).ok_or_else(|| Error::InvalidRequest(format!("example {}: unknown label {v:?}", self.id)))
        };
        Ok(Targets {
            complexity: find(&COMPLEXITY, &self.complexity)?,
            category: find(&CATEGORY, &self.category)?,
            requires_context: find(&CONTEXT, if self.requires_context { "true" } else { "false" })?,
            language: find(&LANGUAGE, &self.language)?,
        })
    }
}

/// Reads a JSONL data file.
pub fn load(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidRequest(format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::InvalidRequest(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Expected calibration error over equal-width confidence bins.
pub fn ece(confidence: &[f32], correct: &[bool], bins: usize) -> f32 {
    let n = confidence.len().max(1) as f32;
    let mut sum_c = vec![0.0f32; bins];
    let mut sum_a = vec![0.0f32; bins];
    let mut cnt = vec![0usize; bins];
    for (c, ok) in confidence.iter().zip(correct) {
        let b = ((c * bins as f32) as usize).min(bins - 1);
        sum_c[b] += c;
        sum_a[b] += f32::from(u8::from(*ok));
        cnt[b] += 1;
    }
    (0..bins).filter(|&b| cnt[b] > 0).map(|b| (cnt[b] as f32 / n) * ((sum_a[b] - sum_c[b]) / cnt[b] as f32).abs()).sum()
}

/// Scores of one classifier on a set of examples.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Examples scored.
    pub n: usize,
    /// Complexity accuracy.
    pub complexity_acc: f32,
    /// Category accuracy.
    pub category_acc: f32,
    /// requires_context accuracy.
    pub context_acc: f32,
    /// Language accuracy.
    pub language_acc: f32,
    /// Complexity accuracy per true language: (n, accuracy).
    pub per_language: BTreeMap<String, (usize, f32)>,
    /// Complex examples labelled simple with confidence > 0.9, over all complex examples.
    pub complex_as_confident_simple: f32,
    /// Share of examples the default policy would send to the fast tier (simple, conf > 0.9).
    pub fast_share: f32,
    /// Of those, the share that truly are simple.
    pub fast_precision: f32,
    /// Expected calibration error of the complexity confidence, 10 bins.
    pub ece: f32,
}

/// Scores predictions against examples.
pub fn report(examples: &[Example], preds: &[pb::Classification]) -> Report {
    let n = examples.len().max(1) as f32;
    let mut r = Report { n: examples.len(), ..Default::default() };
    let (mut conf, mut ok) = (Vec::new(), Vec::new());
    let (mut complex, mut slipped, mut fast, mut fast_ok) = (0usize, 0usize, 0usize, 0usize);
    let mut lang: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (e, p) in examples.iter().zip(preds) {
        let Ok(t) = e.targets() else { continue };
        let c = complexity_index(p.complexity);
        let right = c == t.complexity;
        r.complexity_acc += f32::from(u8::from(right)) / n;
        r.category_acc += f32::from(u8::from(crate::labels::category_index(p.category) == t.category)) / n;
        r.context_acc += f32::from(u8::from(p.requires_context == e.requires_context)) / n;
        r.language_acc += f32::from(u8::from(p.language == e.language)) / n;
        let entry = lang.entry(e.language.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(right);
        conf.push(p.confidence);
        ok.push(right);
        if t.complexity == 2 {
            complex += 1;
            slipped += usize::from(c == 0 && p.confidence > 0.9);
        }
        if c == 0 && p.confidence > 0.9 {
            fast += 1;
            fast_ok += usize::from(t.complexity == 0);
        }
    }
    r.per_language = lang.into_iter().map(|(k, (m, a))| (k, (m, a as f32 / m.max(1) as f32))).collect();
    r.complex_as_confident_simple = slipped as f32 / complex.max(1) as f32;
    r.fast_share = fast as f32 / n;
    r.fast_precision = fast_ok as f32 / fast.max(1) as f32;
    r.ece = ece(&conf, &ok, 10);
    r
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  examples                         {}", self.n)?;
        writeln!(f, "  complexity accuracy              {:.1} %", 100.0 * self.complexity_acc)?;
        for (l, (n, a)) in &self.per_language {
            writeln!(f, "    {l:<6} (n={n:>4})                {:.1} %", 100.0 * a)?;
        }
        writeln!(f, "  complex -> simple @conf>0.9      {:.2} % of complex", 100.0 * self.complex_as_confident_simple)?;
        writeln!(
            f,
            "  fast-tier share (simple, >0.9)   {:.1} % (precision {:.1} %)",
            100.0 * self.fast_share,
            100.0 * self.fast_precision
        )?;
        writeln!(f, "  ECE (10 bins)                    {:.3}", self.ece)?;
        writeln!(f, "  category accuracy                {:.1} %", 100.0 * self.category_acc)?;
        writeln!(f, "  requires_context accuracy        {:.1} %", 100.0 * self.context_acc)?;
        write!(f, "  language accuracy                {:.1} %", 100.0 * self.language_acc)
    }
}

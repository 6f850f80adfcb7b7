//! The feature vector the heads read: a query in its conversation.
//!
//! Layout (all f32):
//! - `q`      the query embedding (384)
//! - `h`      recency-weighted mean of the last history turns' embeddings, renormalised (384;
//!   zeros without history)
//! - `q * h`  their element-wise product (384): lets a linear head see "this query is about
//!   what was just discussed" — a follow-up like "and the red one?" means little alone
//! - scalars (see [`SCALARS`]): history presence and depth, cos(q, h), length, money and
//!   refund cues, code density, language cue shares.
//!
//! The embedding says what a query is about; the scalars carry what a small English encoder
//! sees badly: amounts ("$600" vs "$60"), length (a pasted contract) and es/pt function words.

use crate::encoder::EMBED_DIM;
use crate::{Error, Result, lang};
use regex::{Regex, RegexBuilder};

/// Names of the scalar features, in order.
pub const SCALARS: [&str; 21] = [
    "has_history",
    "history_depth",
    "cos_q_h",
    "log_tokens",
    "long_text",
    "short_text",
    "amount_ge_500",
    "refund_word",
    "code_density",
    "cue_en",
    "cue_es",
    "cue_pt",
    "history_long",
    "question_marks",
    "cue_romance",
    "guess_en",
    "guess_es",
    "guess_pt",
    "guess_mixed",
    "short_with_history",
    "cos_q_h_if_short",
];

/// Buckets of the hashed bag of words.
pub const BOW_BUCKETS: usize = 1024;
/// First column of the bag of words (it is the tail of the vector).
pub const BOW_START: usize = 3 * EMBED_DIM + SCALARS.len();
/// Width of the feature vector.
pub const FEATURE_DIM: usize = BOW_START + BOW_BUCKETS;

/// Builds feature vectors; holds the compiled patterns.
pub struct Featurizer {
    money: Regex,
    refund: Regex,
}

/// Everything [`Featurizer::build`] reads about one query in its conversation.
pub struct Inputs<'a> {
    /// The query text.
    pub query: &'a str,
    /// Its embedding.
    pub query_emb: &'a [f32],
    /// Tokens of the query (before truncation would cut it, capped by the encoder).
    pub query_tokens: usize,
    /// Embeddings of the history turns used, oldest first.
    pub history_embs: &'a [Vec<f32>],
    /// Total characters of those turns.
    pub history_chars: usize,
    /// Turns the classifier is configured to look at (normalises the depth feature).
    pub history_turns: usize,
}

impl Featurizer {
    /// Compiles the patterns.
    pub fn new() -> Result<Self> {
        let re = |p: &str| {
            RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .map_err(|e| Error::Model(format!("feature pattern: {e}")))
        };
        Ok(Self {
            money: re(r"(?:[$€£]|r\$|usd\s?)\s?(\d[\d,.]*)|(\d[\d,.]*)\s?(?:dollars|usd|d[oó]lares|reais|euros|€)")?,
            refund: re(r"refund|reembols|devoluci[oó]n|devolu[cç][aã]o|estorno|chargeback|reimburs")?,
        })
    }

    /// The feature vector, [`FEATURE_DIM`] wide.
    pub fn build(&self, x: &Inputs<'_>) -> Vec<f32> {
        let mut v = Vec::with_capacity(FEATURE_DIM);
        v.extend_from_slice(x.query_emb);
        let h = recency_mean(x.history_embs);
        let cos: f32 = x.query_emb.iter().zip(&h).map(|(a, b)| a * b).sum();
        v.extend_from_slice(&h);
        v.extend(x.query_emb.iter().zip(&h).map(|(a, b)| a * b));
        let has = !x.history_embs.is_empty();
        let words = x.query.split_whitespace().count();
        let code_chars =
            x.query.chars().filter(|c| matches!(c, '{' | '}' | ';' | '(' | ')' | '=' | '<' | '>' | '`' | '_')).count();
        let cues = lang::cue_shares(x.query);
        let amount = crate::heuristic::max_amount(&self.money, x.query);
        v.extend_from_slice(&[
            f32::from(u8::from(has)),
            x.history_embs.len() as f32 / x.history_turns.max(1) as f32,
            cos,
            (1.0 + x.query_tokens as f32).ln() / (1.0 + crate::encoder::MAX_TOKENS as f32).ln(),
            f32::from(u8::from(words > 60)),
            f32::from(u8::from(words <= 5)),
            f32::from(u8::from(amount > 500.0)),
            f32::from(u8::from(self.refund.is_match(x.query))),
            (code_chars as f32 / x.query.chars().count().max(1) as f32 * 10.0).min(1.0),
            cues[0],
            cues[1],
            cues[2],
            (1.0 + x.history_chars as f32).ln() / 10.0,
            x.query.matches(['?', '¿']).count().min(3) as f32 / 3.0,
            lang::romance_share(x.query),
        ]);
        let guess = lang::guess(x.query);
        v.extend(["en", "es", "pt", "mixed"].iter().map(|l| f32::from(u8::from(*l == guess))));
        // A linear head cannot multiply features; these products carry the one interaction
        // that matters most: a short message in a conversation is usually a follow-up.
        let short_hist = f32::from(u8::from(words <= 6 && has));
        v.extend_from_slice(&[short_hist, short_hist * cos]);
        v.extend(bag_of_words(x.query));
        v
    }
}

/// Hashed bag of words of the query: words, 5-letter stems and word pairs, L2-normalised.
///
/// The English encoder reads Spanish and Portuguese poorly; words like "cobrado", "duas
/// vezes", "cláusula" or "reembolso" carry the label in any phrasing, and stems carry it
/// across inflections ("cobraron", "cobrado"). FNV-1a keeps the hashing dependency-free
/// and stable across platforms and releases (the heads are trained on these buckets).
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; BOW_BUCKETS];
    let ws = lang::words(text);
    let mut add = |kind: u8, s: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in std::iter::once(kind).chain(s.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        v[(h % BOW_BUCKETS as u64) as usize] += 1.0;
    };
    for (i, w) in ws.iter().enumerate() {
        add(b'w', w);
        if w.chars().count() > 5 {
            add(b's', &w.chars().take(5).collect::<String>());
        }
        if let Some(next) = ws.get(i + 1) {
            add(b'b', &format!("{w} {next}"));
        }
    }
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
    v
}

/// Mean of the turns weighted 1, 1/2, 1/4 … from the most recent, then L2-normalised; the
/// latest turns say most about what a follow-up refers to.
fn recency_mean(embs: &[Vec<f32>]) -> Vec<f32> {
    let mut h = vec![0.0f32; EMBED_DIM];
    let mut w = 1.0f32;
    for e in embs.iter().rev() {
        for (a, b) in h.iter_mut().zip(e) {
            *a += w * b;
        }
        w *= 0.5;
    }
    let norm = h.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm > 0.0 {
        h.iter_mut().for_each(|a| *a /= norm);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_and_history_flags() -> Result<()> {
        let f = Featurizer::new()?;
        let q = vec![0.05f32; EMBED_DIM];
        let x = Inputs {
            query: "refund my $600 order?",
            query_emb: &q,
            query_tokens: 8,
            history_embs: &[],
            history_chars: 0,
            history_turns: 4,
        };
        let v = f.build(&x);
        assert_eq!(v.len(), FEATURE_DIM);
        let s = &v[3 * EMBED_DIM..];
        assert_eq!(s[0], 0.0);
        assert_eq!(s[6], 1.0);
        assert_eq!(s[7], 1.0);
        Ok(())
    }
}

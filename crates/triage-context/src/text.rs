//! Small, deterministic text helpers shared by the extractors: sentence splitting and a
//! whitespace tokenizer that keeps symbols such as `$`, `#`, `%` and `@` inside tokens,
//! because amounts, order ids and emails are exactly what the extractors look for.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// A word list written as one space-separated string, so long lexicons stay compact and
/// readable. Declare it as a `static` (`static X: Words = Words::new("...")`), not a
/// `const`: the set is built on first use and kept, and a `const` would rebuild it per use.
/// (A scan of the string per lookup made the extractors cost tens of µs per reply.)
#[derive(Debug)]
pub(crate) struct Words {
    list: &'static str,
    set: OnceLock<HashSet<&'static str, BuildHasherDefault<Fnv1a>>>,
}

/// FNV-1a: lexicon lookups hash short words many times per token, and SipHash cost most of
/// that time. Its DoS resistance buys nothing here: the sets are fixed at compile time and
/// text is only looked up, never inserted, so no input can lengthen a probe.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Words {
    /// The words of `list`, separated by ASCII whitespace.
    pub(crate) const fn new(list: &'static str) -> Self {
        Self { list, set: OnceLock::new() }
    }

    /// True when `w` is one of the words.
    pub(crate) fn has(&self, w: &str) -> bool {
        self.set.get_or_init(|| self.iter().collect()).contains(w)
    }

    /// The words, in written order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.list.split_ascii_whitespace()
    }
}

/// One whitespace-separated token with surrounding punctuation removed.
#[derive(Debug, Clone)]
pub(crate) struct Tok<'a> {
    /// As written (punctuation trimmed).
    pub raw: &'a str,
    /// Lowercased, with typographic apostrophes folded to `'`.
    pub lower: String,
}

/// Characters trimmed from both ends of a token. `$ # % @ € £` are kept: they carry meaning.
fn is_edge_punct(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | ':'
            | '!'
            | '?'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '"'
            | '\''
            | '«'
            | '»'
            | '¡'
            | '¿'
            | '…'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '*'
            | '_'
            | '`'
    )
}

/// Tokens of `text`, in order. A trailing `.` is trimmed ("$40." ends a sentence), inner
/// dots are kept ("$40.00", "a.b@c.com").
pub(crate) fn tokens(text: &str) -> Vec<Tok<'_>> {
    text.split_whitespace()
        .filter_map(|w| {
            let raw = w.trim_matches(is_edge_punct).trim_end_matches('.').trim_end_matches(is_edge_punct);
            if raw.is_empty() {
                return None;
            }
            let mut lower = raw.to_lowercase();
            if lower.contains('’') {
                lower = lower.replace('’', "'");
            }
            Some(Tok { raw, lower })
        })
        .collect()
}

/// Sentences of `text`: split after `.`, `!`, `?` when followed by whitespace (so "$40.00"
/// stays whole) and at line breaks. Each keeps its terminal punctuation, trimmed.
pub(crate) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|&(_, n)| n.is_whitespace());
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' | '…' if next_is_space => Some(i + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            push_trimmed(&mut out, &text[start..end]);
            start = end;
        }
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s);
    }
}

/// True for a number as written in prices and ids: digits with `,`/`.` separators.
pub(crate) fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_digit()
        && b[b.len() - 1].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b',' || *c == b'.')
}

/// Shortens `s` to at most `max` characters on a char boundary, marking the cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Lowercase alphanumeric skeleton of `s`, for duplicate detection across phrasings.
pub(crate) fn skeleton(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

//! Fact finders over tokens: money amounts, percentages, dates, order/reference ids and
//! emails, in English, Spanish and Portuguese spellings. Deterministic on purpose: the
//! extractive handoff summary must work when no model is reachable, and the same text must
//! always give the same facts.

use crate::text::{Tok, Words, is_number};

/// A fact found in a token run: its kind, its text, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// "amount", "percent", "date", "order", "email", ...
    pub kind: &'static str,
    /// The value as written ("$40", "May 3", "#A-1234").
    pub value: String,
    /// Index of its first token.
    pub at: usize,
}

/// Longest first: "US$40" must not read as "US" + "$40".
const CURRENCY_PREFIXES: [&str; 7] = ["US$", "R$", "MX$", "CA$", "$", "€", "£"];
static CURRENCY_WORDS: Words =
    Words::new("usd eur brl mxn gbp dollars dollar dólares dolares dólar reais euros euro pesos € $");

/// Money amounts: "$40", "$40.00", "R$ 40,00", "40€", "40 USD", "40 dólares", "40 reais".
pub(crate) fn amounts(toks: &[Tok<'_>]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let raw = toks[i].raw;
        let next = toks.get(i + 1);
        let mut found = None;
        for p in CURRENCY_PREFIXES {
            if let Some(rest) = raw.strip_prefix(p) {
                if is_number(rest) {
                    found = Some((raw.to_string(), 1));
                } else if rest.is_empty() && next.is_some_and(|n| is_number(n.raw)) {
                    found = next.map(|n| (format!("{raw} {}", n.raw), 2));
                }
                break;
            }
        }
        if found.is_none() {
            if let Some(num) = raw.strip_suffix('€').or_else(|| raw.strip_suffix('$')) {
                if is_number(num) {
                    found = Some((raw.to_string(), 1));
                }
            } else if is_number(raw) && next.is_some_and(|n| CURRENCY_WORDS.has(n.lower.as_str())) {
                found = next.map(|n| (format!("{raw} {}", n.raw), 2));
            }
        }
        match found {
            Some((value, len)) => {
                out.push(Found { kind: "amount", value, at: i });
                i += len;
            }
            None => i += 1,
        }
    }
    out
}

/// Percentages: "15%", "15 %", "15 percent", "15 por ciento", "15 por cento".
pub(crate) fn percents(toks: &[Tok<'_>]) -> Vec<Found> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if let Some(n) = t.raw.strip_suffix('%') {
            if is_number(n) {
                out.push(Found { kind: "percent", value: t.raw.to_string(), at: i });
            }
            continue;
        }
        if !is_number(t.raw) {
            continue;
        }
        let n1 = toks.get(i + 1).map(|t| t.lower.as_str());
        let n2 = toks.get(i + 2).map(|t| t.lower.as_str());
        let pct = matches!(n1, Some("%" | "percent" | "porcent" | "porciento"))
            || (n1 == Some("por") && matches!(n2, Some("ciento" | "cento")));
        if pct {
            out.push(Found { kind: "percent", value: format!("{}%", t.raw), at: i });
        }
    }
    out
}

static MONTHS: Words = Words::new(
    "january february march april may june july august september october november december \
     jan feb apr jun jul aug sep sept oct nov dec enero febrero marzo abril mayo junio julio \
     agosto septiembre setiembre octubre noviembre diciembre janeiro fevereiro março maio \
     junho julho setembro outubro",
);
static MONTHS_PT_REST: Words = Words::new("novembro dezembro");
static WEEKDAYS: Words = Words::new(
    "monday tuesday wednesday thursday friday saturday sunday lunes martes miércoles \
     miercoles jueves viernes sábado sabado domingo segunda-feira terça-feira terca-feira \
     quarta-feira quinta-feira sexta-feira weekend",
);
static RELATIVE_DAYS: Words = Words::new("tomorrow mañana amanhã amanha tonight today");
/// "next week", "próxima semana", "semana que vem".
static NEXT_UNITS: Words = Words::new("week semana month mes mês");
static SPAN_UNITS: Words = Words::new("day days días dias hours horas weeks semanas week semana hour hora");
static SPAN_QUALIFIERS: Words = Words::new("business working hábiles habiles úteis uteis");

fn is_month(w: &str) -> bool {
    MONTHS.has(w) || MONTHS_PT_REST.has(w)
}

/// A day of the month as written: "3", "03", "3rd", "3º", "21st".
fn is_day(w: &str) -> bool {
    let n = w.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = w.split_at(n);
    (1..=2).contains(&n)
        && digits.parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
        && matches!(rest, "" | "st" | "nd" | "rd" | "th" | "º" | "°" | "o")
}

fn is_year(w: &str) -> bool {
    w.len() == 4 && w.starts_with('2') && w.bytes().all(|b| b.is_ascii_digit())
}

/// "2025-05-03", "3/5", "03/05/2025".
fn is_numeric_date(w: &str) -> bool {
    // Runs on every token: no allocation, and most words fail on their first byte.
    let mut lens = [0usize; 3];
    let mut n = 0;
    for p in w.split(['-', '/']) {
        if n == lens.len() || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        lens[n] = p.len();
        n += 1;
    }
    match (n, lens) {
        (3, [y, m, d]) if w.contains('-') => y == 4 && m <= 2 && d <= 2,
        (2 | 3, [a, b, _]) if w.contains('/') => a <= 2 && b <= 2,
        _ => false,
    }
}

/// Words of which every date [`dates`] finds without an ASCII digit has one: weekdays,
/// "tomorrow", "next week", "semana que vem". The commitment pre-check skips sentences with
/// neither a digit nor one of these, so a new digit-free date form must add its word here.
pub(crate) fn digitless_date_words() -> impl Iterator<Item = &'static str> {
    WEEKDAYS.iter().chain(RELATIVE_DAYS.iter()).chain(NEXT_UNITS.iter())
}

/// Dates and delivery windows: "2025-05-03", "03/05", "May 3", "3 de mayo", "Friday",
/// "sexta-feira", "tomorrow", "mañana", "within 5 business days", "en 3 días hábiles".
/// Every one without an ASCII digit contains a [`digitless_date_words`] word.
pub(crate) fn dates(toks: &[Tok<'_>]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    let w = |j: usize| toks.get(j).map(|t| t.lower.as_str()).unwrap_or("");
    while i < toks.len() {
        let cur = w(i);
        // (start, end exclusive, absolute): relative ones ("Friday", "tomorrow") mean
        // nothing without the message's date, so summaries list them only inside promises.
        let mut span: Option<(usize, usize, bool)> = None;
        if is_numeric_date(cur) {
            span = Some((i, i + 1, true));
        } else if is_month(cur) && is_day(w(i + 1)) {
            // "May 3", "May 3, 2025"
            let end = if is_year(w(i + 2)) { i + 3 } else { i + 2 };
            span = Some((i, end, true));
        } else if is_day(cur) && is_month(w(i + 1)) {
            // "3 May", "3 May 2025"
            let end = if is_year(w(i + 2)) { i + 3 } else { i + 2 };
            span = Some((i, end, true));
        } else if is_day(cur) && matches!(w(i + 1), "de" | "of") && is_month(w(i + 2)) {
            // "3 de mayo (de 2025)", "3rd of May"
            let end = if w(i + 3) == "de" && is_year(w(i + 4)) { i + 5 } else { i + 3 };
            span = Some((i, end, true));
        } else if WEEKDAYS.has(cur) {
            let start =
                if matches!(w(i.wrapping_sub(1)), "next" | "this" | "próximo" | "próxima" | "proximo" | "proxima") {
                    i - 1
                } else {
                    i
                };
            span = Some((start, i + 1, false));
        } else if RELATIVE_DAYS.has(cur) {
            // "por la mañana" is "in the morning", not "tomorrow".
            if !(cur == "mañana" && w(i.wrapping_sub(1)) == "la") {
                span = Some((i, i + 1, false));
            }
        } else if matches!(cur, "next" | "próxima" | "proxima") && NEXT_UNITS.has(w(i + 1)) {
            span = Some((i, i + 2, false));
        } else if cur == "semana" && w(i + 1) == "que" && matches!(w(i + 2), "vem" | "viene") {
            span = Some((i, i + 3, false));
        } else if is_number(cur) && !cur.contains([',', '.']) {
            // "5 business days", "3 días hábiles", "48 hours"
            let mut j = i + 1;
            if SPAN_QUALIFIERS.has(w(j)) {
                j += 1;
            }
            if SPAN_UNITS.has(w(j)) {
                j += 1;
                if SPAN_QUALIFIERS.has(w(j)) {
                    j += 1;
                }
                let start =
                    if matches!(w(i.wrapping_sub(1)), "within" | "in" | "en" | "em" | "dentro") { i - 1 } else { i };
                span = Some((start, j, false));
            }
        }
        match span {
            Some((start, end, absolute)) => {
                let value = toks[start..end].iter().map(|t| t.raw).collect::<Vec<_>>().join(" ");
                let kind = if absolute { "date" } else { "when" };
                out.push(Found { kind, value, at: start });
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

static ID_KEYWORDS: Words = Words::new(
    "order orden pedido ticket case caso invoice factura fatura tracking rastreo rastreamento \
     reservation reserva booking account",
);
static ID_FILLERS: Words = Words::new("number no nº n° núm número numero id # de do is es é");

/// Letters and digits with `-`/`#`, at least one digit: the shape of an id.
fn id_shaped(raw: &str) -> bool {
    let body = raw.trim_start_matches('#');
    body.len() >= 3
        && body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !is_numeric_date(body)
}

/// "ORD-12345", "AB-9981": uppercase prefix, dash, digits.
fn prefixed_id(raw: &str) -> bool {
    match raw.split_once('-') {
        Some((p, rest)) => {
            p.len() >= 2
                && p.bytes().all(|b| b.is_ascii_uppercase())
                && !rest.is_empty()
                && rest.bytes().any(|b| b.is_ascii_digit())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

/// Order and reference ids: "#12345", "order 12345", "pedido nº 778", "ORD-12345".
pub(crate) fn ids(toks: &[Tok<'_>]) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut taken = vec![false; toks.len()];
    for (i, t) in toks.iter().enumerate() {
        if !ID_KEYWORDS.has(t.lower.as_str()) {
            continue;
        }
        let mut j = i + 1;
        while j < toks.len() && j <= i + 3 && ID_FILLERS.has(toks[j].lower.as_str()) {
            j += 1;
        }
        if let Some(c) = toks.get(j)
            && id_shaped(c.raw)
            && !taken[j]
        {
            taken[j] = true;
            out.push(Found { kind: "id", value: format!("{} {}", t.lower, c.raw), at: j });
        }
    }
    for (i, t) in toks.iter().enumerate() {
        if taken[i] {
            continue;
        }
        if (t.raw.starts_with('#') && id_shaped(t.raw)) || prefixed_id(t.raw) {
            out.push(Found { kind: "id", value: t.raw.to_string(), at: i });
        }
    }
    out.sort_by_key(|f| f.at);
    out
}

/// Emails: "ana@example.com".
pub(crate) fn emails(toks: &[Tok<'_>]) -> Vec<Found> {
    toks.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let (local, domain) = t.raw.split_once('@')?;
            let local_ok = !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
            let domain_ok = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            (local_ok && domain_ok).then(|| Found { kind: "email", value: t.raw.to_string(), at: i })
        })
        .collect()
}

/// Every fact of a text worth carrying across a handoff: ids, amounts, percentages,
/// absolute dates and emails (relative dates are left to the promises that contain them).
pub(crate) fn all(toks: &[Tok<'_>]) -> Vec<Found> {
    let mut out = ids(toks);
    out.extend(amounts(toks));
    out.extend(percents(toks));
    out.extend(dates(toks).into_iter().filter(|f| f.kind == "date"));
    out.extend(emails(toks));
    out
}

/// Every lexicon word here, for tests that build text from them.
#[cfg(test)]
pub(crate) fn lexicon_words() -> Vec<&'static str> {
    [
        &CURRENCY_WORDS,
        &MONTHS,
        &MONTHS_PT_REST,
        &WEEKDAYS,
        &RELATIVE_DAYS,
        &NEXT_UNITS,
        &SPAN_UNITS,
        &SPAN_QUALIFIERS,
        &ID_KEYWORDS,
        &ID_FILLERS,
    ]
    .into_iter()
    .flat_map(Words::iter)
    .collect()
}

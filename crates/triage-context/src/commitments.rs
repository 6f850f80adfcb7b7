//! Finds the decisions and promises an assistant reply makes ("Your refund of $40 has been
//! approved", "Su pedido será cancelado", "O reembolso foi negado"), so they can be kept
//! with the model version that made them and handed to any model that takes over.
//!
//! Rules, not a model: this runs on every reply in the request path and must be instant
//! and reproducible (the ledger is what `Explain` shows). A rule set misses unusual
//! phrasings; it must not invent decisions, so questions and conditionals are skipped and
//! a negation in front of an outcome word flips it ("not approved" is a denial).

use crate::facts::{amounts, dates, digitless_date_words, ids, percents};
use crate::text::{Tok, Words, clip, sentences, tokens};
use regex::Regex;
use std::sync::LazyLock;
use triage_proto::pb;

static REFUND: Words = Words::new(
    "refund refunds refunded refunding reimbursement reimbursed reembolso reembolsos \
     reembolsado reembolsada reembolsar reembolsaremos reembolsamos devolución devolução \
     devolucao estorno estornado estornada estornar estornaremos estornamos",
);
static DISCOUNT: Words =
    Words::new("discount discounts descuento descuentos desconto descontos coupon cupón cupon cupom");
static CREDIT: Words = Words::new("credit crédito credito voucher vale");
static REPLACEMENT: Words =
    Words::new("replacement reemplazo reposición reposicion substituição substituicao troca exchange");
static WAIVED: Words = Words::new(
    "waived waive exonerado exonerada condonado condonada eximido eximida isento isenta \
     isentamos isentado isentada",
);
static CANCELLED: Words = Words::new(
    "cancelled canceled cancelado cancelada cancelados canceladas anulado anulada cancelamos \
     cancelei cancelé cancelaremos",
);
static CANCEL_BASE: Words = Words::new("cancel cancelar anular");
static CANCEL_NOUN: Words = Words::new("cancellation cancelación cancelacion cancelamento");
static CONFIRMED: Words = Words::new("confirmed confirmado confirmada completed completado concluído");
static APPROVED: Words = Words::new(
    "approved processed issued granted authorized authorised accepted credited refunded \
     applied added activated aprobado aprobada aprobados aprobamos aprobé procesado procesada \
     procesamos autorizado autorizada emitido emitida concedido concedida otorgado otorgada \
     aceptado aceptada reembolsado reembolsada reembolsamos aplicado aplicada aplicamos \
     agregado agregada añadido añadida activado activada realizado realizada efectuado \
     efectuada aprovado aprovada aprovamos aprovei processado processada processamos aceito \
     aceita estornado estornada estornamos efetuado efetuada adicionado adicionada ativado \
     ativada",
);
static DENIED: Words = Words::new(
    "denied declined rejected refused denegado denegada rechazado rechazada rechazamos negado \
     negada negamos recusado recusada recusamos indeferido indeferida",
);
/// Verbs that decide nothing on their own ("we can approve"), but do when negated
/// ("we can't approve") or promised ("I'll refund").
static BASE_VERBS: Words = Words::new(
    "approve aprobar aprovar refund reembolsar estornar process procesar processar grant \
     conceder issue emitir apply aplicar authorize authorise autorizar offer ofrecer oferecer",
);
/// "You will receive your refund": a promise when a future marker leads and what is
/// received is one of the kinds above.
static RECEIVE: Words =
    Words::new("receive get see recibir recibirá recibirás recibirán receber receberá recebera receberão");
/// Shipping verbs approve a replacement ("your replacement will ship", "ya fue enviado"),
/// and nothing else: "we sent you an email about your refund" decides no refund.
static SHIPPED: Words = Words::new("shipped sent dispatched enviado enviada enviamos despachado despachada");
static SHIP: Words = Words::new("ship send dispatch enviar mandar enviaremos mandaremos");
static ELIGIBLE: Words = Words::new("eligible elegible elegível elegivel");
static NEGATIONS: Words = Words::new(
    "not no never cannot can't won't isn't wasn't aren't weren't hasn't haven't hadn't don't \
     doesn't didn't couldn't wouldn't shouldn't unable não nao nunca jamás jamais tampoco nem \
     ni",
);
static FUTURE: Words = Words::new("will shall going vamos vai va voy vou irá iremos promise guarantee");
/// Sentence openers that make what follows hypothetical.
static CONDITIONALS: Words = Words::new("if si caso unless whether once when cuando quando");
/// Words right before a date that make it a deadline ("by Friday", "até sexta-feira").
static DEADLINE: Words = Words::new("by until before antes até ate hasta para");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Yes,
    No,
}

fn negated(words: &[&str], j: usize) -> bool {
    words[j.saturating_sub(3)..j].iter().any(|w| NEGATIONS.has(w) || w.ends_with("n't"))
}

fn is_future(w: &str) -> bool {
    let long = w.chars().count() >= 4;
    FUTURE.has(w)
        || w.ends_with("'ll")
        || (long && ["rá", "rán", "rão", "remos", "rei", "ré"].iter().any(|s| w.ends_with(s)))
}

fn future_before(words: &[&str], j: usize) -> bool {
    words[j.saturating_sub(3)..=j].iter().any(|w| is_future(w))
}

/// The first outcome word of the sentence, with negation applied.
fn outcome(words: &[&str]) -> Option<Outcome> {
    for (j, w) in words.iter().enumerate() {
        // "applied for a refund" is the user asking, not the assistant deciding.
        if matches!(*w, "applied" | "apply") && matches!(words.get(j + 1), Some(&"for")) {
            continue;
        }
        if APPROVED.has(w) {
            return Some(if negated(words, j) { Outcome::No } else { Outcome::Yes });
        }
        if DENIED.has(w) {
            return Some(if negated(words, j) { Outcome::Yes } else { Outcome::No });
        }
        // "reembolsaremos", "estornaremos": the verb is itself the promise.
        if BASE_VERBS.has(w) || (REFUND.has(w) && is_future(w)) {
            if negated(words, j) {
                return Some(Outcome::No);
            }
            if future_before(words, j) {
                return Some(Outcome::Yes);
            }
        }
        if ELIGIBLE.has(w) && negated(words, j) {
            return Some(Outcome::No);
        }
        if RECEIVE.has(w) && future_before(words, j) && !negated(words, j) {
            let next = &words[(j + 1).min(words.len())..(j + 4).min(words.len())];
            let kinds = [&REFUND, &CREDIT, &DISCOUNT, &REPLACEMENT];
            if next.iter().any(|n| kinds.iter().any(|k| k.has(n))) {
                return Some(Outcome::Yes);
            }
        }
    }
    None
}

fn object_of(toks: &[Tok<'_>], words: &[&str]) -> String {
    if let Some(id) = ids(toks).into_iter().next() {
        return id.value;
    }
    let noun = words.iter().find_map(|w| match *w {
        "subscription" | "suscripción" | "suscripcion" | "assinatura" => Some("subscription"),
        "reservation" | "reserva" | "booking" => Some("reservation"),
        "plan" | "plano" => Some("plan"),
        _ => None,
    });
    noun.unwrap_or("order").to_string()
}

/// The normalized decisions of one sentence ("refund of $40 approved").
fn decisions_in(sentence: &str) -> Vec<String> {
    let s = sentence.trim();
    if s.ends_with('?') || s.starts_with('¿') {
        return Vec::new();
    }
    let toks = tokens(s);
    let words: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
    if words.first().is_none_or(|w| CONDITIONALS.has(w)) {
        return Vec::new();
    }
    let has = |set: &Words| words.iter().any(|w| set.has(w));
    let amount = amounts(&toks).into_iter().next().map(|f| f.value);
    let of_amount = amount.as_ref().map(|a| format!(" of {a}")).unwrap_or_default();
    let when = dates(&toks).into_iter().next();
    let out = outcome(&words);
    let any_negation = words.iter().any(|w| NEGATIONS.has(w) || w.ends_with("n't"));
    let future = words.iter().any(|w| is_future(w));

    let mut found = Vec::new();
    if has(&REFUND) {
        match out {
            Some(Outcome::No) => found.push(format!("refund{of_amount} denied")),
            Some(Outcome::Yes) => found.push(format!("refund{of_amount} approved")),
            _ => {}
        }
    }
    let cancel_at = words.iter().position(|w| CANCELLED.has(w) || CANCEL_BASE.has(w));
    if let Some(j) = cancel_at {
        let object = object_of(&toks, &words);
        if negated(&words, j) {
            found.push(format!("{object} cancellation refused"));
        } else if CANCELLED.has(words[j]) || future_before(&words, j) {
            found.push(format!("{object} cancelled"));
        }
    } else if has(&CANCEL_NOUN) && (has(&CONFIRMED) || out == Some(Outcome::Yes)) {
        found.push(format!("{} cancelled", object_of(&toks, &words)));
    }
    if has(&DISCOUNT) {
        let size = percents(&toks).into_iter().next().map(|p| format!(" of {}", p.value)).unwrap_or(of_amount.clone());
        match out {
            Some(Outcome::No) => found.push("discount denied".to_string()),
            Some(Outcome::Yes) => found.push(format!("discount{size} granted")),
            _ => {}
        }
    }
    if has(&CREDIT) && !has(&REFUND) {
        match out {
            Some(Outcome::No) => found.push("credit denied".to_string()),
            Some(Outcome::Yes) => found.push(format!("credit{of_amount} issued")),
            _ => {}
        }
    }
    if let Some(j) = words.iter().position(|w| WAIVED.has(w)) {
        if negated(&words, j) {
            found.push("fee waiver refused".to_string());
        } else {
            found.push(format!("fee{of_amount} waived"));
        }
    }
    if has(&REPLACEMENT) {
        let shipping = words
            .iter()
            .enumerate()
            .any(|(j, w)| !negated(&words, j) && (SHIPPED.has(w) || (SHIP.has(w) && future_before(&words, j))));
        match out {
            Some(Outcome::No) => found.push("replacement denied".to_string()),
            Some(Outcome::Yes) => found.push("replacement approved".to_string()),
            None if shipping => found.push("replacement approved".to_string()),
            _ => {}
        }
    }
    if found.is_empty()
        && let (Some(a), Some(o)) = (&amount, out)
    {
        found.push(format!("{a} {}", if o == Outcome::Yes { "approved" } else { "denied" }));
    }
    match when {
        Some(w) if !found.is_empty() => found.iter_mut().for_each(|f| f.push_str(&format!(" (when: {})", w.value))),
        Some(w) => {
            let deadline = w.at > 0 && DEADLINE.has(words[w.at - 1]);
            if (future || deadline) && !any_negation {
                found.push(format!("promised {}", w.value));
            }
        }
        None => {}
    }
    found
}

/// What every sentence that [`decisions_in`] finds anything in contains: an ASCII digit
/// (amounts, numeric dates and "5 business days" have one, and a decision with no kind
/// word needs an amount), or, as a whole token in any case, a word of a decision kind
/// (refund, cancellation, discount, credit, fee waiver, replacement) or of a date with no
/// digit ("Friday", "tomorrow", "next week"). Most replies have none and skip tokenizing
/// and the lexicon lookups. A token is bounded by whitespace, punctuation or the text's
/// ends, never by a letter or digit, which is the boundary used here; `(?i)` folds case
/// at least as widely as `to_lowercase` does for these words, so the check can only say
/// yes more often than the extractor would, never less (see the tests).
static CUES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let kinds = [&REFUND, &CANCELLED, &CANCEL_BASE, &CANCEL_NOUN, &DISCOUNT, &CREDIT, &WAIVED, &REPLACEMENT];
    let words: Vec<String> =
        kinds.into_iter().flat_map(Words::iter).chain(digitless_date_words()).map(regex::escape).collect();
    let edge = r"[^\p{L}\p{N}]";
    let pattern = format!("[0-9]|(?i:(?:^|{edge})(?:{})(?:$|{edge}))", words.join("|"));
    match Regex::new(&pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            // Cannot happen with these word lists; extraction then simply runs on everything.
            tracing::error!(error = %e, "commitment cue pattern did not compile");
            None
        }
    }
});

/// False when `text` cannot hold a decision (see [`CUES`]).
fn has_cue(text: &str) -> bool {
    CUES.as_ref().is_none_or(|re| re.is_match(text))
}

/// The decisions and promises an assistant reply makes, each kept with the model and
/// version that made it and the reply's turn (its 1-based position in the conversation).
///
/// The text is the normalized decision followed by the sentence it came from, e.g.
/// `refund of $40 approved: "Your refund of $40 has been approved."`, so a later model
/// sees both what was decided and how it was worded.
pub fn extract_commitments(text: &str, model: &str, version: &str, turn: u32) -> Vec<pb::Commitment> {
    extract(text, model, version, turn, true)
}

/// [`extract_commitments`]; `precheck: false` runs the full extraction on every sentence,
/// which the tests compare against.
fn extract(text: &str, model: &str, version: &str, turn: u32, precheck: bool) -> Vec<pb::Commitment> {
    let mut out: Vec<pb::Commitment> = Vec::new();
    if precheck && !has_cue(text) {
        return out;
    }
    for sentence in sentences(text) {
        if precheck && !has_cue(sentence) {
            continue;
        }
        for decision in decisions_in(sentence) {
            let text = format!("{decision}: \"{}\"", clip(sentence, 240));
            if out.iter().all(|c| c.text != text) {
                out.push(pb::Commitment { text, model: model.to_string(), model_version: version.to_string(), turn });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The cue pre-check must never change what is extracted: outputs with and without it
    //! are compared on a table of tricky replies and on generated ones.

    use super::*;
    use proptest::prelude::*;

    fn same_with_and_without_precheck(text: &str) -> std::result::Result<(), TestCaseError> {
        let fast = extract(text, "m", "v", 3, true);
        let full = extract(text, "m", "v", 3, false);
        prop_assert_eq!(&fast, &full, "text: {:?}", text);
        // Sentence by sentence too, so a failure names the sentence the cue missed.
        for s in sentences(text) {
            prop_assert!(has_cue(s) || decisions_in(s).is_empty(), "decision without a cue: {:?}", s);
        }
        Ok(())
    }

    /// Replies of the integration tests, plus the cases a cue check could get wrong:
    /// case (including non-ASCII capitals and the Kelvin sign, which lowercases to `k`),
    /// punctuation glued to words, digit-free dates, `_`/`*` emphasis, typographic
    /// apostrophes, line breaks, decisions carried only by an amount.
    const CORPUS: &[&str] = &[
        "",
        " \n\t ",
        "Sure — here is a quick answer.",
        "Hello! How can I help you today?",
        "Thanks for waiting! Your refund of $40 has been approved.",
        "Your refund of $40 has been approved. Your refund of $40 has been approved.",
        "Your refund of $40 has been approved.",
        "I'm sorry, but I can't approve a refund for this order.",
        "Unfortunately your refund request was denied.",
        "Your refund has not been approved yet.",
        "I will refund you $25.50 today.",
        "You will receive your refund within 5 business days.",
        "I've applied a 15% discount to your next order.",
        "I have cancelled order #A-1234 and issued a refund of $20.",
        "We cannot cancel your subscription at this point.",
        "Your replacement will ship by Friday.",
        "Your new order will arrive on May 3.",
        "I've waived the $15 late fee.",
        "A store credit of $10 has been added to your account.",
        "Su reembolso de $40 ha sido aprobado.",
        "Lo siento, su reembolso fue rechazado.",
        "No podemos aprobar el reembolso de este pedido.",
        "Le reembolsaremos 30 dólares mañana.",
        "Hemos aplicado un descuento del 10% a su pedido.",
        "Su pedido 55821 ha sido cancelado.",
        "Su pedido llegará el 3 de mayo.",
        "Seu reembolso de R$ 50,00 foi aprovado.",
        "O estorno foi negado pela nossa equipe.",
        "Não podemos cancelar o seu pedido.",
        "Apliquei um desconto de 20% na sua compra e ele foi aprovado.",
        "Seu pedido chegará até sexta-feira.",
        "Would you like me to approve the refund?",
        "¿Quiere que cancele su pedido?",
        "If your item is eligible, the refund will be approved.",
        "Si el producto está dañado, el reembolso será aprobado.",
        "Our refund policy covers returns within 30 days.",
        "We will look into your refund and get back to you.",
        "You can cancel anytime from your account page.",
        "You applied for a refund last week.",
        "I see order ORD-5521 and the duplicate charge of $129.99.",
        "Your refund has been approved.",
        "Let me look into that.",
        "Unfortunately the refund was denied after review.",
        // Case and non-ASCII capitals.
        "YOUR REFUND HAS BEEN APPROVED.",
        "ReFuNd ApPrOvEd.",
        "SU PEDIDO SERÁ CANCELADO.",
        "Su pedido fue CANCELADO y la DEVOLUCIÓN aprobada.",
        "O REEMBOLSO FOI APROVADO, CHEGA AMANHÃ.",
        "Vamos enviar o pedido na SEXTA-FEIRA.",
        "It will arrive by FRIDAY.",
        "We will deliver it this wee\u{212A}end.",
        "It will be there by Saturday\u{2019}s noon.",
        // Punctuation glued to cue words.
        "Your (refund) is approved.",
        "«Reembolso» aprobado.",
        "Your _refund_ is *approved*.",
        "Refund: approved!",
        "\"Cancelled\" — your order.",
        "The refund… approved… done.",
        "refund.approved",
        // Cue-like substrings that are not cue tokens.
        "That is incredible, I approved it.",
        "Valencia is lovely and it was approved.",
        "We refunded-ish it.",
        "Prerefund approved.",
        // Digit-free dates with promises and deadlines.
        "I will call you tomorrow.",
        "We'll follow up next week.",
        "Vamos responder na próxima semana.",
        "Le llamaremos el lunes.",
        "Your package will arrive before Monday.",
        "Your package won\u{2019}t arrive before Monday.",
        "Entregaremos a semana que vem.",
        "Lo enviaremos por la mañana.",
        "Tonight we will process it.",
        // Decisions carried only by an amount.
        "$40 approved.",
        "$9 approved.",
        "$0 approved.",
        "$8 approved.",
        "Approved: 78 of them.",
        "40 dollars have been processed.",
        "We can't approve the 40 USD.",
        "Your €25 was credited.",
        "We sent you 5 emails.",
        // Numbers and ids.
        "Step 1: open settings.",
        "Order #A-1234 has been cancelled.",
        "Your booking BK-9981 was cancelled on 2025-05-03.",
        "Delivery 3/5, approved.",
        "Approved 03/05/2025.",
        "Your 3rd of May delivery is confirmed.",
        // Line breaks split sentences.
        "Good news\nyour refund is approved\nsee you",
        "Thanks\n\nWe will send a replacement",
        "I checked order #A-1234 for you. The replacement will ship by Friday, and you will \
         receive a credit of $10 within 5 business days. Anything else I can help with?",
        "Su pedido 778 será cancelado y el reembolso de 40 dólares llegará en 3 días hábiles.",
        "Great question! The main difference is that a list keeps its order while a set does \
         not. If you need to look things up quickly, a set or a dictionary is usually the \
         better choice. Let me know if you would like an example.",
    ];

    #[test]
    fn the_cue_pattern_compiles_and_skips_replies_without_cues() {
        assert!(CUES.is_some());
        assert!(!has_cue("Sure — here is a quick answer."));
        assert!(!has_cue("That is incredible, and Valencia is lovely."));
        assert!(has_cue("Your REFUND is on its way"));
        assert!(has_cue("Step 1"));
        assert!(has_cue("see you (tomorrow)"));
    }

    #[test]
    fn the_precheck_changes_no_output_on_the_corpus() -> std::result::Result<(), TestCaseError> {
        let mut decided = 0;
        for text in CORPUS {
            same_with_and_without_precheck(text)?;
            decided += usize::from(!extract(text, "m", "v", 3, false).is_empty());
        }
        // The corpus exercises extraction, not only skipping.
        assert!(decided > 40, "{decided}");
        Ok(())
    }

    /// Every lexicon word (commitments and facts), ordinary words, and tokens with digits.
    fn vocabulary() -> Vec<&'static str> {
        let own = [
            &REFUND,
            &DISCOUNT,
            &CREDIT,
            &REPLACEMENT,
            &WAIVED,
            &CANCELLED,
            &CANCEL_BASE,
            &CANCEL_NOUN,
            &CONFIRMED,
            &APPROVED,
            &DENIED,
            &BASE_VERBS,
            &RECEIVE,
            &SHIPPED,
            &SHIP,
            &ELIGIBLE,
            &NEGATIONS,
            &FUTURE,
            &CONDITIONALS,
            &DEADLINE,
        ];
        let mut v: Vec<&'static str> = own.into_iter().flat_map(Words::iter).collect();
        v.extend(crate::facts::lexicon_words());
        v.extend([
            "your",
            "the",
            "order",
            "we",
            "I'll",
            "won't",
            "has",
            "been",
            "a",
            "for",
            "applied",
            "apply",
            "next",
            "this",
            "próxima",
            "que",
            "vem",
            "viene",
            "la",
            "subscription",
            "plano",
            "fee",
            "$40",
            "40",
            "R$",
            "50,00",
            "15%",
            "3",
            "3rd",
            "2025",
            "2025-05-03",
            "3/5",
            "#A-1234",
            "ORD-55",
            "within",
            "em",
            "$9",
            "78",
            "6/12",
        ]);
        v
    }

    /// Text with no ASCII digit and no cue word: the full extraction must find nothing.
    fn vocabulary_without_cues() -> Vec<&'static str> {
        vocabulary().into_iter().filter(|w| !w.bytes().any(|b| b.is_ascii_digit()) && !has_cue(w)).collect()
    }

    fn styled(word: &str, style: u8) -> String {
        match style {
            0 => word.to_string(),
            1 => word.to_uppercase(),
            2 => {
                let mut c = word.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
            }
            3 => word.replace('k', "\u{212A}"),
            4 => format!("({word})"),
            5 => format!("_{word}_"),
            6 => format!("«{word}»"),
            _ => word.replace('\'', "\u{2019}"),
        }
    }

    const SEPARATORS: &[&str] = &[" ", " ", " ", "\n", ". ", "? ", "! ", "… ", ", ", " — ", "; "];

    fn reply(vocab: Vec<&'static str>) -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(vocab), 0u8..8, prop::sample::select(SEPARATORS)), 0..16)
            .prop_map(|parts| parts.into_iter().map(|(w, style, sep)| format!("{}{sep}", styled(w, style))).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn the_precheck_changes_no_output(text in reply(vocabulary())) {
            same_with_and_without_precheck(&text)?;
        }

        #[test]
        fn text_without_cues_has_no_decisions(text in reply(vocabulary_without_cues())) {
            prop_assert!(!has_cue(&text));
            prop_assert!(extract(&text, "m", "v", 3, false).is_empty(), "{:?}", text);
        }
    }
}

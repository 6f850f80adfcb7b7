//! Finds the decisions and promises an assistant reply makes ("Your refund of $40 has been
//! approved", "Su pedido será cancelado", "O reembolso foi negado"), so they can be kept
//! with the model version that made them and handed to any model that takes over.
//!
//! Rules, not a model: this runs on every reply in the request path and must be instant
//! and reproducible (the ledger is what `Explain` shows). A rule set misses unusual
//! phrasings; it must not invent decisions, so questions and conditionals are skipped and
//! a negation in front of an outcome word flips it ("not approved" is a denial).

use crate::facts::{amounts, dates, ids, percents};
use crate::text::{Tok, Words, clip, sentences, tokens};
use triage_proto::pb;

const REFUND: Words = Words(
    "refund refunds refunded refunding reimbursement reimbursed reembolso reembolsos \
     reembolsado reembolsada reembolsar reembolsaremos reembolsamos devolución devolução \
     devolucao estorno estornado estornada estornar estornaremos estornamos",
);
const DISCOUNT: Words = Words("discount discounts descuento descuentos desconto descontos coupon cupón cupon cupom");
const CREDIT: Words = Words("credit crédito credito voucher vale");
const REPLACEMENT: Words =
    Words("replacement reemplazo reposición reposicion substituição substituicao troca exchange");
const WAIVED: Words = Words(
    "waived waive exonerado exonerada condonado condonada eximido eximida isento isenta \
     isentamos isentado isentada",
);
const CANCELLED: Words = Words(
    "cancelled canceled cancelado cancelada cancelados canceladas anulado anulada cancelamos \
     cancelei cancelé cancelaremos",
);
const CANCEL_BASE: Words = Words("cancel cancelar anular");
const CANCEL_NOUN: Words = Words("cancellation cancelación cancelacion cancelamento");
const CONFIRMED: Words = Words("confirmed confirmado confirmada completed completado concluído");
const APPROVED: Words = Words(
    "approved processed issued granted authorized authorised accepted credited refunded \
     applied added activated aprobado aprobada aprobados aprobamos aprobé procesado procesada \
     procesamos autorizado autorizada emitido emitida concedido concedida otorgado otorgada \
     aceptado aceptada reembolsado reembolsada reembolsamos aplicado aplicada aplicamos \
     agregado agregada añadido añadida activado activada realizado realizada efectuado \
     efectuada aprovado aprovada aprovamos aprovei processado processada processamos aceito \
     aceita estornado estornada estornamos efetuado efetuada adicionado adicionada ativado \
     ativada",
);
const DENIED: Words = Words(
    "denied declined rejected refused denegado denegada rechazado rechazada rechazamos negado \
     negada negamos recusado recusada recusamos indeferido indeferida",
);
/// Verbs that decide nothing on their own ("we can approve"), but do when negated
/// ("we can't approve") or promised ("I'll refund").
const BASE_VERBS: Words = Words(
    "approve aprobar aprovar refund reembolsar estornar process procesar processar grant \
     conceder issue emitir apply aplicar authorize authorise autorizar offer ofrecer oferecer",
);
/// "You will receive your refund": a promise when a future marker leads and what is
/// received is one of the kinds above.
const RECEIVE: Words =
    Words("receive get see recibir recibirá recibirás recibirán receber receberá recebera receberão");
/// Shipping verbs approve a replacement ("your replacement will ship", "ya fue enviado"),
/// and nothing else: "we sent you an email about your refund" decides no refund.
const SHIPPED: Words = Words("shipped sent dispatched enviado enviada enviamos despachado despachada");
const SHIP: Words = Words("ship send dispatch enviar mandar enviaremos mandaremos");
const ELIGIBLE: Words = Words("eligible elegible elegível elegivel");
const NEGATIONS: Words = Words(
    "not no never cannot can't won't isn't wasn't aren't weren't hasn't haven't hadn't don't \
     doesn't didn't couldn't wouldn't shouldn't unable não nao nunca jamás jamais tampoco nem \
     ni",
);
const FUTURE: Words = Words("will shall going vamos vai va voy vou irá iremos promise guarantee");
/// Sentence openers that make what follows hypothetical.
const CONDITIONALS: Words = Words("if si caso unless whether once when cuando quando");
/// Words right before a date that make it a deadline ("by Friday", "até sexta-feira").
const DEADLINE: Words = Words("by until before antes até ate hasta para");

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
            let kinds = [REFUND, CREDIT, DISCOUNT, REPLACEMENT];
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
    let has = |set: Words| words.iter().any(|w| set.has(w));
    let amount = amounts(&toks).into_iter().next().map(|f| f.value);
    let of_amount = amount.as_ref().map(|a| format!(" of {a}")).unwrap_or_default();
    let when = dates(&toks).into_iter().next();
    let out = outcome(&words);
    let any_negation = words.iter().any(|w| NEGATIONS.has(w) || w.ends_with("n't"));
    let future = words.iter().any(|w| is_future(w));

    let mut found = Vec::new();
    if has(REFUND) {
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
    } else if has(CANCEL_NOUN) && (has(CONFIRMED) || out == Some(Outcome::Yes)) {
        found.push(format!("{} cancelled", object_of(&toks, &words)));
    }
    if has(DISCOUNT) {
        let size = percents(&toks).into_iter().next().map(|p| format!(" of {}", p.value)).unwrap_or(of_amount.clone());
        match out {
            Some(Outcome::No) => found.push("discount denied".to_string()),
            Some(Outcome::Yes) => found.push(format!("discount{size} granted")),
            _ => {}
        }
    }
    if has(CREDIT) && !has(REFUND) {
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
    if has(REPLACEMENT) {
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

/// The decisions and promises an assistant reply makes, each kept with the model and
/// version that made it and the reply's turn (its 1-based position in the conversation).
///
/// The text is the normalized decision followed by the sentence it came from, e.g.
/// `refund of $40 approved: "Your refund of $40 has been approved."`, so a later model
/// sees both what was decided and how it was worded.
pub fn extract_commitments(text: &str, model: &str, version: &str, turn: u32) -> Vec<pb::Commitment> {
    let mut out: Vec<pb::Commitment> = Vec::new();
    for sentence in sentences(text) {
        for decision in decisions_in(sentence) {
            let text = format!("{decision}: \"{}\"", clip(sentence, 240));
            if out.iter().all(|c| c.text != text) {
                out.push(pb::Commitment { text, model: model.to_string(), model_version: version.to_string(), turn });
            }
        }
    }
    out
}

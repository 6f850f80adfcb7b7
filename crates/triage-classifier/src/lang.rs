//! Language cues shared by the heuristic baseline and the embedded features.
//!
//! The English MiniLM encoder sees Spanish and Portuguese mostly as sub-word noise, so it
//! separates them poorly; function words separate them well and cost nothing. The counts
//! below are inputs to the trained language head (and the whole of the heuristic's guess).

/// Normalises a query for matching and cache keys: lower case, whitespace collapsed.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words in a text (letters only, lower case), the unit the stop-word lists are matched on.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase().split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

// Words frequent in one language and rare in the other two. Shared words ("a", "no",
// "que", "de", "me") are left out on purpose: they would blur exactly the es/pt line.
const EN: &[&str] = &[
    "the", "is", "my", "what", "where", "how", "and", "you", "can", "i", "it", "this", "to", "of", "for", "with",
    "your", "are", "do", "does", "please", "why", "which", "when", "order", "was", "have", "will", "would", "should",
    "about", "from", "need", "want", "there", "hi", "thanks", "hello", "our", "we", "they", "be", "an", "on", "in",
    "at", "just", "still",
];
const ES: &[&str] = &[
    "el", "los", "las", "mi", "mis", "está", "esta", "dónde", "donde", "qué", "cómo", "como", "pedido", "por", "para",
    "con", "una", "y", "es", "hola", "gracias", "puedo", "puede", "quiero", "necesito", "cuándo", "cuando", "cuál",
    "cual", "usted", "tengo", "hay", "del", "sábado", "también", "pero", "muy", "hasta", "ya", "todavía", "pregunta",
    "ayuda", "precio", "envío", "nuestro", "nuestra", "sobre", "según", "eso", "esto", "lo", "le", "les", "sí",
    "veces", "ayer", "hoy", "mañana", "tienda", "factura", "cobraron", "llegó", "cuenta", "vale",
];
const PT: &[&str] = &[
    "o", "os", "meu", "minha", "meus", "está", "onde", "quando", "como", "pedido", "para", "com", "uma", "um", "é",
    "olá", "oi", "obrigado", "obrigada", "posso", "pode", "quero", "preciso", "qual", "você", "vocês", "tenho", "tem",
    "do", "da", "dos", "das", "no", "na", "não", "sábado", "também", "mas", "muito", "até", "já", "ainda", "ajuda",
    "preço", "entrega", "nosso", "nossa", "sobre", "isso", "isto", "ele", "ela", "sim", "vou", "foi", "são",
];

/// Share of a text's words that are cue words of English, Spanish and Portuguese.
pub fn cue_shares(text: &str) -> [f32; 3] {
    let ws = words(text);
    if ws.is_empty() {
        return [0.0; 3];
    }
    let count = |list: &[&str]| ws.iter().filter(|w| list.contains(&w.as_str())).count() as f32;
    // Accented letters are near-certain evidence of es/pt; ç, ã, õ of Portuguese, ñ, ¿, ¡ of
    // Spanish.
    let pt_marks = text.chars().filter(|c| matches!(c, 'ç' | 'ã' | 'õ' | 'ê' | 'ô')).count() as f32;
    let es_marks = text.chars().filter(|c| matches!(c, 'ñ' | '¿' | '¡')).count() as f32;
    let n = ws.len() as f32;
    [count(EN) / n, (count(ES) + 2.0 * es_marks) / n, (count(PT) + 2.0 * pt_marks) / n]
}

// Spanish/Portuguese words shared by both (so useless for es vs pt, useful for en vs the
// other two when spotting a mixed message).
const ROMANCE: &[&str] = &["que", "de", "me", "se", "te", "por", "contrato", "cliente", "pero", "mas", "em", "en"];

/// Share of a text's words that are shared Spanish/Portuguese cue words.
pub fn romance_share(text: &str) -> f32 {
    let ws = words(text);
    let n = ws.len().max(1) as f32;
    ws.iter().filter(|w| ROMANCE.contains(&w.as_str())).count() as f32 / n
}

/// Best-guess language code: "en", "es", "pt" or "mixed" (English and Spanish/Portuguese
/// both clearly present).
pub fn guess(text: &str) -> &'static str {
    let ws = words(text);
    let count = |list: &[&str]| ws.iter().filter(|w| list.contains(&w.as_str())).count() as f32;
    let n = ws.len().max(1) as f32;
    let s = cue_shares(text);
    let (en, es, pt) = (s[0] * n, s[1] * n, s[2] * n);
    let romance = es.max(pt) + count(ROMANCE);
    if en >= 2.0 && romance >= 2.0 && en.min(romance) >= 0.25 * en.max(romance) {
        return "mixed";
    }
    if en >= romance {
        "en"
    } else if es > pt {
        "es"
    } else {
        "pt"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_languages() {
        assert_eq!(guess("where is my order?"), "en");
        assert_eq!(guess("¿dónde está mi pedido?"), "es");
        assert_eq!(guess("onde está meu pedido?"), "pt");
        assert_eq!(guess("hola, I need the contrato que me enviaste, can you check the cláusula"), "mixed");
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("  Where IS\tmy   order? "), "where is my order?");
    }
}

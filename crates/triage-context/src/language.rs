//! Language detection for English, Spanish and Portuguese with a stop-word scorer.
//!
//! Small on purpose: the handoff summary only needs to tell the next model which of the
//! three languages the user writes in (the seed's users code-switch between them), and a
//! word list is deterministic, instant and needs no model. Spanish and Portuguese share
//! many function words, so shared words count half for each and only words exclusive to
//! one language (plus spelling cues such as `ñ`, `ção`) decide between them.

use crate::text::{Words, tokens};

/// Undetermined: no evidence for any of the three languages.
pub const UNDETERMINED: &str = "und";
/// More than one language in the same text.
pub const MIXED: &str = "mixed";

static EN: Words = Words::new(
    "the and is are was were be been my your i i'm you he she it it's we they to of in on at \
     for with this that what where when why how can could would will not does did have has \
     had please thanks thank hi hello yes order from but or if there just about need want get \
     still any all help an so yet can't don't didn't should which who money back refund \
     shipping arrived received",
);
static ES: Words = Words::new(
    "el la los las y es estoy están pero en con mi mis qué cómo dónde donde cuándo cuál muy \
     gracias hola quiero tengo necesito puedo puede usted ustedes su sus del al una uno un \
     eso también ya cuando hay sí lo le les yo tú hasta ahora todavía aún bien buenos días \
     señor señora entonces dinero cuenta ese esa estos algo nada mucho hace hacer tiene \
     tienen quería sería pueden llegó llega envío ni pues mañana reembolso devolución recibí \
     todo porque cual",
);
static PT: Words = Words::new(
    "o os e é estou mas com meu minha meus minhas não você vocês obrigado obrigada olá oi \
     quero tenho preciso posso pode da dos das na nas um uma isso isto também já há sim ele \
     ela seu sua onde muito ainda agora até bom dia tudo ter fazer foi são ao à pelo pela \
     então dinheiro conta esse essa vez tem têm chegou chega envio entrega amanhã reembolso \
     devolução recebi nem em eu quando",
);
/// Shared by Spanish and Portuguese: evidence for "es or pt", not for one of them.
static ES_PT: Words = Words::new(
    "que de por para como se me nos te pedido favor este esta está otro outra otra outro no \
     mas",
);

/// Per-language evidence: total (exclusive + shared) and exclusive only, for en, es, pt.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scores {
    total: [f32; 3],
    exclusive: [f32; 3],
}

const CODES: [&str; 3] = ["en", "es", "pt"];

pub(crate) fn scores(text: &str) -> Scores {
    let mut s = Scores::default();
    let mut add = |lang: usize, w: f32, exclusive: bool| {
        s.total[lang] += w;
        if exclusive {
            s.exclusive[lang] += w;
        }
    };
    for t in tokens(text) {
        let w = t.lower.as_str();
        // A word can be in one exclusive list and the shared list ("mas" is pt "but"
        // and es "more"); the exclusive list wins.
        let (en, es, pt) = (EN.has(w), ES.has(w), PT.has(w));
        if en {
            add(0, 1.0, true);
        }
        if es && !pt {
            add(1, 1.0, true);
        }
        if pt && !es {
            add(2, 1.0, true);
        }
        if (es && pt) || (!es && !pt && ES_PT.has(w)) {
            add(1, 0.5, false);
            add(2, 0.5, false);
        }
        // Spelling cues that one of the two languages never uses.
        if w.contains('ñ') || w.ends_with("ción") || w.ends_with("ciones") {
            add(1, 1.0, true);
        }
        if w.contains('ã') || w.contains('õ') || w.contains('ç') || w.ends_with("ções") {
            add(2, 1.0, true);
        }
    }
    let inverted = text.chars().filter(|c| matches!(c, '¿' | '¡')).count();
    for _ in 0..inverted.min(2) {
        add(1, 1.0, true);
    }
    s
}

impl Scores {
    /// Languages ranked by exclusive evidence, then total: (index, exclusive, total).
    fn ranked(&self) -> [(usize, f32, f32); 3] {
        let mut r = [0, 1, 2].map(|i| (i, self.exclusive[i], self.total[i]));
        r.sort_by(|a, b| b.2.total_cmp(&a.2).then(b.1.total_cmp(&a.1)));
        r
    }

    /// The languages present: one, two when the text code-switches, none when unknown.
    pub(crate) fn present(&self) -> Vec<&'static str> {
        let r = self.ranked();
        let top = r[0];
        if top.2 < 1.0 {
            return Vec::new();
        }
        // Code-switching needs real words of the second language, not one loan word.
        let mut by_exclusive = r;
        by_exclusive.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (e1, e2) = (by_exclusive[0], by_exclusive[1]);
        if e2.1 >= 2.0 && e2.1 >= 0.3 * e1.1 {
            return vec![CODES[e1.0], CODES[e2.0]];
        }
        vec![CODES[top.0]]
    }
}

/// The language of `text`: `"en"`, `"es"`, `"pt"`, `"mixed"` when it code-switches between
/// them, or `"und"` when there is no evidence (numbers only, another language).
pub fn detect_language(text: &str) -> &'static str {
    match scores(text).present().as_slice() {
        [] => UNDETERMINED,
        [one] => one,
        _ => MIXED,
    }
}

/// The languages used in `text`, most evident first: empty, one, or two when it mixes.
pub fn languages_in(text: &str) -> Vec<&'static str> {
    scores(text).present()
}

//! Keyword and regex rules in English, Spanish and Portuguese: the seed's "approach 1".
//!
//! It is the measured baseline the embedded model must beat, and the last resort when model
//! files are missing. Its confidences are fixed per rule, not calibrated: they are set low
//! enough that the default policy's `simple && confidence > 0.9` gate only opens for short
//! queries matching an unambiguous lookup rule.

use crate::labels::{category_pb, complexity_pb};
use crate::{Classifier, Error, Result, lang};
use regex::{Regex, RegexBuilder};
use std::time::Instant;
use triage_proto::pb;

/// Version string reported in every classification.
pub const HEURISTIC_VERSION: &str = "heuristic-v1";

const COMPLEX: &str = r"(?x)
    contract|cl[aá]usula|clause|liabilit|indemni|\bnda\b|terms\ of\ service|lawsuit|\bsue\b
  | legal\ (advice|risk|question)|lawyer|attorney|complian|\bgdpr\b|\bhipaa\b|\blgpd\b|regulat
  | contrato|responsabilidad|demanda|abogad|cumplimiento|advogad|processo\ judicial|conformidade
  | medic|dosage|\bdose\b|symptom|diagnos|prescri|side\ effects?|pregnan|allerg|s[ií]ntoma
  | receta\ m[eé]dica|rem[eé]dio|gravidez|embaraz|alergia
  | python|javascript|typescript|\bsql\b|\bregex\b|function|\bscript\b|stack\ ?trace|c[oó]digo
  | \bcode\b|```|\bdef\ |\bclass\ |select\ .*\ from
  | (\b\d{2,}|twenty|fifteen|ten|veinte|diez|vinte|dez)\ (ad\ )?(variations|versions|variants|ads
     |posts|headlines|variaciones|versiones|anuncios|varia[cç][oõ]es|vers[oõ]es|an[uú]ncios)
  | brand\ voice|tono\ de\ (la\ )?marca|voz\ da\ marca
  | given\ everything|considering\ (all|everything)|based\ on\ (all|everything)\ (above|we)
  | teniendo\ en\ cuenta\ todo|con\ todo\ lo\ anterior|considerando\ tudo|com\ base\ em\ tudo
  | bulk\ discount|negotiat|competitor|descuento\ por\ volumen|negociar|competencia
  | desconto\ por\ volume|concorrente";

const MODERATE: &str = r"(?x)
    compar|difference|\bvs\.?\b|versus|explain|\bwhy\b|how\ does|troubleshoot|not\ working
  | doesn'?t\ work|won'?t|charged\ twice|double\ charge|policy|should\ i|recommend|pros\ and
  | diferencia|expl[ií]ca|por\ qu[eé]|no\ funciona|cobrado\ dos\ veces|pol[ií]tica|recomienda
  | deber[ií]a|diferen[cç]a|explique|n[aã]o\ funciona|cobrad[oa]\ duas\ vezes|recomenda
  | devo\b|write\ a\ (short|quick)|reply\ to|name\ ideas|ideas\ for|nombres?\ para|nomes?\ para
  | ideias|responder\ a|respuesta\ (corta|breve)|resposta\ (curta|breve)";

const SIMPLE: &str = r"(?x)
    where\ is|status|track|hours|\bopen\b|close|price|cost|how\ much|in\ stock|available
  | payment|pay\ with|password|reset|cancel|change\ (my\ )?(order|address)|^(hi|hello|hey)\b
  | thank|d[oó]nde|estado|seguimiento|horario|abren|precio|cu[aá]nto|stock|disponible|pago
  | contrase[nñ]a|cancelar|^hola|gracias|onde|rastre|hor[aá]rio|pre[cç]o|quanto|estoque
  | dispon[ií]vel|pagamento|senha|obrigad|^ol[aá]|^oi\b|\bred\ one|the\ other\ one";

const CREATIVE: &str = r"(?x)
    \bwrite|draft|compose|create|generate|slogan|tagline|\bposts?\b|\bcopy\b|ideas|names|poem
  | script|code|function|escrib|redact|\bcrea\b|gener[ae]|escrev|crie|gere\b|redija|ideias
  | nombres|nomes|anuncio|an[uú]ncio|\bads?\b";

const ANALYTICAL: &str = r"(?x)
    explain|compar|\bwhy\b|analy[sz]|evaluat|review|should\ i|which|\bbest\b|diagnos|difference
  | recommend|what\ does\ .*\ mean|explica|analiza|eval[uú]a|cu[aá]l\ es\ mejor|deber[ií]a
  | explique|por\ que|analise|avalie|qual\ [eé]\ melhor|melhor|mejor|risk|riesgo|risco
  | clause|cl[aá]usula|negotiat|negoci|offer|oferta";

const FOLLOW_UP: &str = r"(?x)
    ^(and|what\ about|how\ about|also|same|ok\ and|y|e|¿y|y\ si|e\ se|and\ if)\b
  | given\ everything|everything\ above|as\ (i|we)\ (said|discussed)|the\ (red|blue|other|last)\ one
  | for\ (2|two|3|three)\ of\ them|\bthat\ one\b|lo\ anterior|todo\ lo\ de\ arriba|tudo\ acima
  | o\ que\ falamos|lo\ que\ hablamos|mentioned\ (above|before)";

/// The keyword classifier.
pub struct HeuristicClassifier {
    complex: Regex,
    moderate: Regex,
    simple: Regex,
    creative: Regex,
    analytical: Regex,
    follow_up: Regex,
    money: Regex,
    refund: Regex,
}

impl HeuristicClassifier {
    /// Compiles the rules.
    pub fn new() -> Result<Self> {
        let re = |p: &str| {
            RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .map_err(|e| Error::Model(format!("heuristic rule: {e}")))
        };
        Ok(Self {
            complex: re(COMPLEX)?,
            moderate: re(MODERATE)?,
            simple: re(SIMPLE)?,
            creative: re(CREATIVE)?,
            analytical: re(ANALYTICAL)?,
            follow_up: re(FOLLOW_UP)?,
            money: re(r"(?:[$€£]|r\$|usd\s?)\s?(\d[\d,.]*)|(\d[\d,.]*)\s?(?:dollars|usd|d[oó]lares|reais|euros|€)")?,
            refund: re(r"refund|reembols|devoluci[oó]n|devolu[cç][aã]o|estorno|chargeback")?,
        })
    }

    /// Labels a query synchronously (the rules are microseconds).
    pub fn label(&self, query: &str, history: &[pb::Message]) -> pb::Classification {
        let q = query.trim();
        let words = q.split_whitespace().count();
        let high_refund = self.refund.is_match(q) && max_amount(&self.money, q) > 500.0;
        let (complexity, confidence) = if high_refund || self.complex.is_match(q) || words > 120 {
            (2, 0.8)
        } else if self.moderate.is_match(q) {
            (1, 0.7)
        } else if self.simple.is_match(q) {
            // Short lookups are the rule's home ground; longer texts that merely mention
            // "price" or "status" are often something else.
            (0, if words <= 12 { 0.92 } else { 0.75 })
        } else if self.follow_up.is_match(q) && words <= 8 {
            (0, 0.8)
        } else {
            (1, 0.5)
        };
        let category = if self.creative.is_match(q) {
            2
        } else if self.analytical.is_match(q) || complexity == 2 && !high_refund {
            1
        } else {
            0
        };
        // A follow-up pattern needs earlier turns whether or not the caller sent them.
        let requires_context = self.follow_up.is_match(q) || (!history.is_empty() && words <= 3);
        pb::Classification {
            complexity: complexity_pb(complexity) as i32,
            category: category_pb(category) as i32,
            requires_context,
            confidence,
            language: lang::guess(q).to_string(),
            model_version: HEURISTIC_VERSION.to_string(),
        }
    }
}

/// Largest money amount written in a text (0 when none), reading "1,200.50" and "1.200,50".
pub(crate) fn max_amount(money: &Regex, text: &str) -> f64 {
    money
        .captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .filter_map(|m| parse_amount(m.as_str()))
        .fold(0.0, f64::max)
}

fn parse_amount(s: &str) -> Option<f64> {
    let s = s.trim_end_matches(['.', ',']);
    // The last separator followed by exactly two digits is a decimal point; others group.
    let cleaned: String = match s.rfind(['.', ',']) {
        Some(i) if s.len() - i == 3 => {
            let (int, dec) = s.split_at(i);
            format!("{}.{}", int.replace(['.', ','], ""), &dec[1..])
        }
        _ => s.replace(['.', ','], ""),
    };
    cleaned.parse().ok()
}

#[async_trait::async_trait]
impl Classifier for HeuristicClassifier {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let start = Instant::now();
        if req.query.trim().is_empty() {
            return Err(Error::InvalidRequest("empty query".into()));
        }
        let classification = self.label(&req.query, &req.history);
        Ok(crate::fresh_response(classification, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1,200.50"), Some(1200.5));
        assert_eq!(parse_amount("1.200,50"), Some(1200.5));
        assert_eq!(parse_amount("600"), Some(600.0));
        assert_eq!(parse_amount("2.500"), Some(2500.0));
    }
}

//! Money as integer micro-dollars: never floating point.

use serde::{Deserialize, Serialize};

/// An amount in micro-dollars (1e-6 USD). Signed so refunds and deltas are expressible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Micros(pub i64);

impl Micros {
    /// Zero dollars.
    pub const ZERO: Micros = Micros(0);

    /// Cost of `tokens` at `per_mtok` micro-dollars per million tokens, rounded up so the
    /// ledger never under-charges by a fraction of a micro-dollar.
    pub fn for_tokens(tokens: u64, per_mtok: Micros) -> Micros {
        let num = i128::from(tokens) * i128::from(per_mtok.0);
        let cost = (num + 999_999).div_euclid(1_000_000);
        Micros(i64::try_from(cost).unwrap_or(i64::MAX))
    }

    /// Saturating sum.
    pub fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// Dollars, for display only.
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }
}

/// Prices of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Micro-dollars per million input tokens.
    #[serde(default)]
    pub input_per_mtok: Micros,
    /// Micro-dollars per million output tokens.
    #[serde(default)]
    pub output_per_mtok: Micros,
    /// Micro-dollars charged per request regardless of tokens.
    #[serde(default)]
    pub per_request: Micros,
}

impl Price {
    /// Cost of one call with the given usage.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Micros {
        Micros::for_tokens(input_tokens, self.input_per_mtok)
            .saturating_add(Micros::for_tokens(output_tokens, self.output_per_mtok))
            .saturating_add(self.per_request)
    }

    /// True when calls are free (local models).
    pub fn is_free(&self) -> bool {
        self.input_per_mtok.0 == 0 && self.output_per_mtok.0 == 0 && self.per_request.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_prices() {
        // Claude 3.5 Sonnet output: $15 / Mtok; 180 tokens -> $0.0027.
        let p =
            Price { input_per_mtok: Micros(3_000_000), output_per_mtok: Micros(15_000_000), per_request: Micros(0) };
        assert_eq!(p.cost(0, 180), Micros(2_700));
        // Mixtral on Groq: $0.24 / Mtok output; 180 tokens -> 43.2 micro-dollars, rounded up.
        let m = Price { input_per_mtok: Micros(240_000), output_per_mtok: Micros(240_000), per_request: Micros(0) };
        assert_eq!(m.cost(0, 180), Micros(44));
        assert_eq!(Micros(2_700).to_string(), "$0.002700");
    }

    proptest! {
        #[test]
        fn cost_is_monotone_and_never_undercharges(a in 0u64..10_000_000, b in 0u64..10_000_000, price in 0i64..100_000_000) {
            let p = Micros(price);
            let ca = Micros::for_tokens(a, p).0 as i128;
            let exact_num = i128::from(a) * i128::from(price);
            prop_assert!(ca * 1_000_000 >= exact_num);
            prop_assert!(ca * 1_000_000 - exact_num < 1_000_000);
            if a <= b { prop_assert!(Micros::for_tokens(a, p) <= Micros::for_tokens(b, p)); }
        }
    }
}

//! What a call cost, in US dollars, from per-million-token list prices.
//!
//! Prices change more often than releases do, so the built-in table covers only the
//! default models and can be extended or corrected from settings with
//! [`PriceTable::with_overrides`].
//!
//! A remote model that is not in the table costs 0: the table cannot guess a price,
//! and the token counts the caller records alongside are enough to price the
//! calls later once the model is added. A warning is logged each time so the gap
//! is noticed.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{
    DEFAULT_ANTHROPIC_MODEL, DEFAULT_GEMINI_MODEL, DEFAULT_OPENAI_MODEL, ProviderName, Usage,
};

/// Decimal places a cost is rounded to (nano-dollars): the ledger stores whole
/// nano-dollars, and no price per million tokens has more than three decimal places,
/// so no real cost is rounded at all.
pub const COST_SCALE: u32 = 9;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: Decimal,
    pub output: Decimal,
}

/// Prices by provider and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    prices: HashMap<(ProviderName, String), Price>,
}

impl Default for PriceTable {
    /// List prices of the default models (as published when this table was written).
    fn default() -> Self {
        let mut prices = HashMap::new();
        let mut add = |provider, model: &str, input: (i64, u32), output: (i64, u32)| {
            prices.insert(
                (provider, model.to_owned()),
                Price {
                    input: Decimal::new(input.0, input.1),
                    output: Decimal::new(output.0, output.1),
                },
            );
        };
        add(ProviderName::OpenAi, DEFAULT_OPENAI_MODEL, (15, 2), (60, 2));
        add(
            ProviderName::Anthropic,
            DEFAULT_ANTHROPIC_MODEL,
            (80, 2),
            (400, 2),
        );
        add(ProviderName::Gemini, DEFAULT_GEMINI_MODEL, (10, 2), (40, 2));
        PriceTable { prices }
    }
}

impl PriceTable {
    /// Adds or replaces prices from a spec such as
    /// `openai:gpt-4o-mini=0.15/0.60;anthropic:claude-3-5-haiku-latest=0.80/4.00`
    /// (provider `:` model `=` input `/` output, in USD per million tokens, entries
    /// separated by `;`).
    ///
    /// # Errors
    /// A message naming the entry that could not be read and why.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, String> {
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let fail = |why: String| format!("price override `{entry}`: {why}");
            let (key, price) = entry
                .split_once('=')
                .ok_or_else(|| fail("expected provider:model=input/output".into()))?;
            let (provider, model) = key
                .split_once(':')
                .ok_or_else(|| fail("expected provider:model before `=`".into()))?;
            let provider: ProviderName = provider.parse().map_err(fail)?;
            let model = model.trim();
            if model.is_empty() {
                return Err(fail("the model name is empty".into()));
            }
            let (input, output) = price
                .split_once('/')
                .ok_or_else(|| fail("expected input/output prices, such as 0.15/0.60".into()))?;
            let amount = |what: &str, text: &str| -> Result<Decimal, String> {
                let text = text.trim();
                let value: Decimal = text
                    .parse()
                    .map_err(|_| fail(format!("the {what} price `{text}` is not a number")))?;
                if value.is_sign_negative() {
                    return Err(fail(format!("the {what} price `{text}` is negative")));
                }
                Ok(value)
            };
            let price = Price {
                input: amount("input", input)?,
                output: amount("output", output)?,
            };
            self.prices.insert((provider, model.to_owned()), price);
        }
        Ok(self)
    }

    /// The price of `model`, if known. Local providers are always free.
    pub fn price(&self, provider: ProviderName, model: &str) -> Option<Price> {
        match provider {
            ProviderName::Offline | ProviderName::Ollama => Some(Price {
                input: Decimal::ZERO,
                output: Decimal::ZERO,
            }),
            _ => self.prices.get(&(provider, model.to_owned())).copied(),
        }
    }

    /// The cost of `usage` in USD, exact and then rounded half-even to 9 places.
    pub fn cost(&self, provider: ProviderName, model: &str, usage: &Usage) -> Decimal {
        let Some(price) = self.price(provider, model) else {
            tracing::warn!(%provider, model, "no price for this model; its cost is counted as 0");
            return Decimal::ZERO;
        };
        let million = Decimal::from(1_000_000u32);
        let total = (Decimal::from(usage.input_tokens) * price.input
            + Decimal::from(usage.output_tokens) * price.output)
            / million;
        total
            .round_dp_with_strategy(COST_SCALE, RoundingStrategy::MidpointNearestEven)
            .normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
        }
    }

    #[test]
    fn cost_is_exact_decimal_arithmetic() {
        let t = PriceTable::default();
        // 1234 × 0.15 + 567 × 0.60 = 525.3 micro-dollars, exactly.
        let c = t.cost(ProviderName::OpenAi, "gpt-4o-mini", &usage(1234, 567));
        assert_eq!(c, d("0.0005253"));
        assert_eq!(c.to_string(), "0.0005253");
        // 1 000 000 in + 1 000 000 out on Anthropic's default = 0.80 + 4.00.
        assert_eq!(
            t.cost(
                ProviderName::Anthropic,
                DEFAULT_ANTHROPIC_MODEL,
                &usage(1_000_000, 1_000_000)
            ),
            d("4.8")
        );
        // Three tokens at $0.10 a million: three tenths of a micro-dollar, kept.
        assert_eq!(
            t.cost(ProviderName::Gemini, DEFAULT_GEMINI_MODEL, &usage(3, 0)),
            d("0.0000003")
        );
    }

    #[test]
    fn local_and_unknown_models() {
        let t = PriceTable::default();
        let u = usage(10_000_000, 10_000_000);
        assert_eq!(
            t.cost(ProviderName::Offline, "ruleiq-offline-1", &u),
            Decimal::ZERO
        );
        assert_eq!(t.cost(ProviderName::Ollama, "llama3.1", &u), Decimal::ZERO);
        assert_eq!(
            t.cost(ProviderName::OpenAi, "gpt-9-imaginary", &u),
            Decimal::ZERO
        );
    }

    #[test]
    fn overrides_add_and_replace_prices() {
        let t = PriceTable::default()
            .with_overrides(" openai:gpt-4o-mini = 0.30/1.20 ; openai:gpt-4o=2.50/10;")
            .unwrap();
        assert_eq!(
            t.cost(ProviderName::OpenAi, "gpt-4o-mini", &usage(1_000_000, 0)),
            d("0.3")
        );
        assert_eq!(
            t.cost(ProviderName::OpenAi, "gpt-4o", &usage(0, 1000)),
            d("0.01")
        );
        assert_eq!(
            PriceTable::default().with_overrides(""),
            Ok(PriceTable::default())
        );
    }

    #[test]
    fn override_errors_say_what_is_wrong() {
        let err = |spec: &str| PriceTable::default().with_overrides(spec).unwrap_err();
        assert!(err("openai:gpt-4o").contains("expected provider:model=input/output"));
        assert!(err("gpt-4o=1/2").contains("expected provider:model before `=`"));
        assert!(err("mistral:large=1/2").contains("unknown AI provider `mistral`"));
        assert!(err("openai:=1/2").contains("the model name is empty"));
        assert!(err("openai:x=1").contains("expected input/output prices"));
        assert!(err("openai:x=cheap/2").contains("the input price `cheap` is not a number"));
        assert!(err("openai:x=1/-2").contains("the output price `-2` is negative"));
        let e = err("openai:ok=1/2;anthropic:bad=1");
        assert!(e.starts_with("price override `anthropic:bad=1`"), "{e}");
    }
}

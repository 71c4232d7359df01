//! Model routing and prices: the types of the `models` and `prices` sections of
//! `config/defaults.json` (the tenant loader reads them into `Defaults` and validates them with
//! [`Prices::validate`]). Model ids and prices live only in configuration, never in code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which model each kind of work uses (`models` in `config/defaults.json`).
///
/// ```json
/// "models": { "transform": "<model id>", "validation": "<model id>", "summarize": "<model id>" }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelRoutes {
    /// Writes persona versions of documents and digests (a capable model).
    pub transform: String,
    /// Checks generated text against its source (a cheap model).
    pub validation: String,
    /// Shortens large documents before a transform and answers searches.
    pub summarize: String,
}

/// One model's price in dollars per million tokens, plus the prompt-cache multipliers applied to
/// the input price (`prices.<model>` in `config/defaults.json`).
///
/// ```json
/// { "input": 3.0, "output": 15.0, "cacheWrite5mMultiplier": 1.25,
///   "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1 }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    /// Dollars per million uncached input tokens.
    pub input: f64,
    /// Dollars per million output tokens.
    pub output: f64,
    /// Cache writes with the 5-minute TTL cost this times the input price.
    #[serde(rename = "cacheWrite5mMultiplier")]
    pub cache_write_5m_multiplier: f64,
    /// Cache writes with the 1-hour TTL cost this times the input price.
    #[serde(rename = "cacheWrite1hMultiplier")]
    pub cache_write_1h_multiplier: f64,
    /// Cache reads cost this times the input price.
    pub cache_read_multiplier: f64,
}

/// Prices by model id (`prices` in `config/defaults.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(pub BTreeMap<String, ModelPrice>);

impl Prices {
    /// The price of `model`: an exact match, else the longest configured id that `model` starts
    /// with (so a configured `claude-x` prices a response's dated `claude-x-20250101`).
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.0.get(model).or_else(|| {
            self.0
                .iter()
                .filter(|(id, _)| model.starts_with(id.as_str()))
                .max_by_key(|(id, _)| id.len())
                .map(|(_, price)| price)
        })
    }

    /// Adds or replaces one model's price.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.0.insert(model.into(), price);
    }

    /// Whether `model` has a price of its own (an exact id, as `models` must name one).
    pub fn contains(&self, model: &str) -> bool {
        self.0.contains_key(model)
    }

    /// Every number of every price must be finite and non-negative. The first bad one is
    /// returned as its field path under `prices` (`claude-x.cacheReadMultiplier`) and the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (model, p) in &self.0 {
            let fields = [
                ("input", p.input),
                ("output", p.output),
                ("cacheWrite5mMultiplier", p.cache_write_5m_multiplier),
                ("cacheWrite1hMultiplier", p.cache_write_1h_multiplier),
                ("cacheReadMultiplier", p.cache_read_multiplier),
            ];
            for (name, v) in fields {
                if !v.is_finite() || v < 0.0 {
                    return Err((
                        format!("{model}.{name}"),
                        format!("must be a finite number >= 0, found {v}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
        "models": { "transform": "model-big", "validation": "model-small", "summarize": "model-small" },
        "prices": {
            "model-big": { "input": 3.0, "output": 15.0, "cacheWrite5mMultiplier": 1.25,
                           "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1 },
            "model-small": { "input": 0.8, "output": 4.0, "cacheWrite5mMultiplier": 1.25,
                             "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1 }
        }
    }"#;

    #[derive(Deserialize)]
    struct Sections {
        models: ModelRoutes,
        prices: Prices,
    }

    #[test]
    fn parses_the_defaults_sections() {
        let s: Sections = serde_json::from_str(JSON).unwrap();
        assert_eq!(s.models.transform, "model-big");
        assert_eq!(s.models.validation, "model-small");
        let big = s.prices.get("model-big").unwrap();
        assert_eq!(big.input, 3.0);
        assert_eq!(big.cache_write_1h_multiplier, 2.0);
        assert!(s.prices.validate().is_ok());
    }

    #[test]
    fn dated_model_ids_find_their_family_price() {
        let s: Sections = serde_json::from_str(JSON).unwrap();
        assert_eq!(s.prices.get("model-small-20250101").unwrap().input, 0.8);
        assert!(s.prices.get("other").is_none());
    }

    #[test]
    fn negative_and_non_finite_prices_are_refused_naming_the_field() {
        let s: Sections = serde_json::from_str(JSON).unwrap();
        let refused = |edit: fn(&mut ModelPrice)| {
            let mut prices = s.prices.clone();
            edit(prices.0.get_mut("model-big").unwrap());
            prices.validate().unwrap_err()
        };
        assert_eq!(refused(|p| p.output = -1.0).0, "model-big.output");
        assert_eq!(refused(|p| p.input = f64::NAN).0, "model-big.input");
        let (field, message) = refused(|p| p.cache_read_multiplier = f64::INFINITY);
        assert_eq!(field, "model-big.cacheReadMultiplier");
        assert!(message.contains("finite"), "{message}");
        assert_eq!(
            refused(|p| p.cache_write_1h_multiplier = -2.0).0,
            "model-big.cacheWrite1hMultiplier"
        );
    }

    #[test]
    fn missing_multipliers_are_an_error() {
        let r: Result<ModelPrice, _> = serde_json::from_str(r#"{"input":3,"output":15}"#);
        assert!(r.is_err());
    }
}

//! The one cost formula: a call's token counts times its model's configured price, in integer
//! micro-dollars with one rounding at the end, so summing many records never drifts (no `f64`
//! accumulation). Dollars as `f64` ([`micros_to_dollars`]) are derived from it for gauges only.

use serde::{Deserialize, Serialize};

use super::pricing::ModelPrice;

/// Token counts of one call or a sum of calls, by billing kind. Total input is
/// `input + cache_creation + cache_read` (the API reports the three separately).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Uncached input tokens (after the last cache breakpoint).
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens written to the prompt cache (all TTLs).
    pub cache_creation: u64,
    /// Of `cache_creation`, the tokens written with the 1-hour TTL (billed at the 1h multiplier);
    /// not stored in the usage table, only used to price a call.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_1h: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl TokenCounts {
    /// Every input token, cached or not.
    pub fn total_input(&self) -> u64 {
        self.input + self.cache_creation + self.cache_read
    }

    /// Adds another call's counts.
    pub fn add(&mut self, other: &TokenCounts) {
        self.input += other.input;
        self.output += other.output;
        self.cache_creation += other.cache_creation;
        self.cache_creation_1h += other.cache_creation_1h;
        self.cache_read += other.cache_read;
    }
}

/// Micro-dollars (1e-6 dollar) per million tokens.
fn per_million_micros(dollars_per_million: f64) -> i128 {
    (dollars_per_million * 1_000_000.0).round() as i128
}

/// A multiplier in ten-thousandths (1.25 -> 12_500).
fn multiplier_e4(multiplier: f64) -> i128 {
    (multiplier * 10_000.0).round() as i128
}

/// The cost of `tokens` at `price`, in micro-dollars, rounded half up once at the end.
///
/// `input*in + output*out + cache_write_5m*in*w5m + cache_write_1h*in*w1h + cache_read*in*r`.
/// Prices are taken to 6 decimal places of a dollar per million tokens, multipliers to 4.
pub fn cost_micros(tokens: &TokenCounts, price: &ModelPrice) -> i64 {
    let input = per_million_micros(price.input);
    let output = per_million_micros(price.output);
    let unit = 10_000_i128; // multiplier 1.0
    let one_hour = tokens.cache_creation_1h.min(tokens.cache_creation);
    let five_min = tokens.cache_creation - one_hour;
    // Units: micro-dollars * 1e6 (per million tokens) * 1e4 (multiplier scale).
    let scaled = i128::from(tokens.input) * input * unit
        + i128::from(tokens.output) * output * unit
        + i128::from(five_min) * input * multiplier_e4(price.cache_write_5m_multiplier)
        + i128::from(one_hour) * input * multiplier_e4(price.cache_write_1h_multiplier)
        + i128::from(tokens.cache_read) * input * multiplier_e4(price.cache_read_multiplier);
    let divisor = 1_000_000_i128 * unit;
    let rounded = (scaled + divisor / 2) / divisor;
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Micro-dollars as dollars with two decimals, rounded half up: `66_000` -> `"0.07"`.
pub fn format_dollars(micros: i64) -> String {
    let cents = (i128::from(micros.unsigned_abs()) + 5_000) / 10_000;
    let sign = if micros < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Micro-dollars rounded half up to whole cents (still in micro-dollars): `66_000` -> `70_000`.
pub fn round_to_cents(micros: i64) -> i64 {
    let cents = (micros.unsigned_abs() + 5_000) / 10_000;
    let magnitude = i64::try_from(cents * 10_000).unwrap_or(i64::MAX);
    if micros < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Micro-dollars as dollars (for gauges and reports; never summed).
pub fn micros_to_dollars(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's Sonnet pricing: $3/M input, $15/M output, standard cache multipliers.
    fn sonnet() -> ModelPrice {
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cache_write_5m_multiplier: 1.25,
            cache_write_1h_multiplier: 2.0,
            cache_read_multiplier: 0.1,
        }
    }

    fn tokens(input: u64, output: u64, write: u64, read: u64) -> TokenCounts {
        TokenCounts {
            input,
            output,
            cache_creation: write,
            cache_read: read,
            ..TokenCounts::default()
        }
    }

    #[test]
    fn one_persona_matches_the_seed() {
        // 12,000 * $3/M = $0.036; 2,000 * $15/M = $0.030; total $0.066 -> the seed's $0.07.
        let c = cost_micros(&tokens(12_000, 2_000, 0, 0), &sonnet());
        assert_eq!(c, 66_000);
        assert_eq!(format_dollars(c), "0.07");
    }

    #[test]
    fn four_personas_uncached_match_the_seed() {
        // 48,000 * 3 = 0.144; 8,000 * 15 = 0.120; exact total $0.264.
        let c = cost_micros(&tokens(48_000, 8_000, 0, 0), &sonnet());
        assert_eq!(c, 264_000);
        assert_eq!(format_dollars(c), "0.26");
        // The seed's $0.28 is four per-persona costs each rounded to cents first.
        let per_persona = cost_micros(&tokens(12_000, 2_000, 0, 0), &sonnet());
        assert_eq!(round_to_cents(per_persona), 70_000);
        assert_eq!(format_dollars(4 * round_to_cents(per_persona)), "0.28");
    }

    #[test]
    fn other_seed_rows() {
        // Weekly digest 20,000/4,000: 0.060 + 0.060 = $0.12.
        assert_eq!(
            cost_micros(&tokens(20_000, 4_000, 0, 0), &sonnet()),
            120_000
        );
        // Decision search 2,000/500: 0.006 + 0.0075 = $0.0135 -> "0.01".
        let c = cost_micros(&tokens(2_000, 500, 0, 0), &sonnet());
        assert_eq!(c, 13_500);
        assert_eq!(format_dollars(c), "0.01");
    }

    #[test]
    fn cache_write_and_reads_use_the_multipliers() {
        // Shared 10,000-token document cached: 1 write + 3 reads, 2,000 uncached + 2,000 out each.
        let write = cost_micros(&tokens(2_000, 2_000, 10_000, 0), &sonnet());
        // 2,000*3 = 6,000; 2,000*15 = 30,000; 10,000*3*1.25 = 37,500 micro-dollars.
        assert_eq!(write, 73_500);
        let read = cost_micros(&tokens(2_000, 2_000, 0, 10_000), &sonnet());
        // 6,000 + 30,000 + 10,000*3*0.1 = 3,000.
        assert_eq!(read, 39_000);
        let one_hour = TokenCounts {
            cache_creation_1h: 10_000,
            ..tokens(0, 0, 10_000, 0)
        };
        assert_eq!(cost_micros(&one_hour, &sonnet()), 60_000);
    }

    #[test]
    fn rounding_happens_once_at_the_end() {
        // 1 token at $0.25/M = 0.25 micro-dollars; 3 tokens = 0.75 -> 1; 1 token alone -> 0.
        let cheap = ModelPrice {
            input: 0.25,
            ..sonnet()
        };
        assert_eq!(cost_micros(&tokens(1, 0, 0, 0), &cheap), 0);
        assert_eq!(cost_micros(&tokens(3, 0, 0, 0), &cheap), 1);
        // A fractional price: 1,000,000 tokens at $0.8/M = exactly $0.80.
        let haiku = ModelPrice {
            input: 0.8,
            ..sonnet()
        };
        assert_eq!(cost_micros(&tokens(1_000_000, 0, 0, 0), &haiku), 800_000);
        // 0.1 cache-read multiplier on 0.8 is 0.08 $/M exactly, not 0.08000000000000002.
        assert_eq!(
            cost_micros(&tokens(0, 0, 0, 1_000_000_000), &haiku),
            80_000_000
        );
    }

    #[test]
    fn formats_dollars() {
        assert_eq!(format_dollars(0), "0.00");
        assert_eq!(format_dollars(4_999), "0.00");
        assert_eq!(format_dollars(5_000), "0.01");
        assert_eq!(format_dollars(1_234_567_890), "1234.57");
        assert_eq!(format_dollars(-66_000), "-0.07");
        assert_eq!(micros_to_dollars(264_000), 0.264);
    }

    #[test]
    fn totals_and_sums() {
        let mut t = tokens(1, 2, 3, 4);
        assert_eq!(t.total_input(), 8);
        t.add(&tokens(10, 20, 30, 40));
        assert_eq!(t, tokens(11, 22, 33, 44));
    }
}

//! How the generated input's keys are drawn: `--key-dist uniform|zipf:S`.
//!
//! [`KeyDist`] is the parsed flag (its `Display` is the normalized form the JSON reports as
//! `key_dist`); [`KeySampler`] turns one random 64-bit word into a key below `keys`:
//! - `uniform`: `x % keys`, exactly what the generator did before the flag existed, so the
//!   default input (and every checksum) is unchanged;
//! - `zipf:S` (`S > 0`): key `k - 1` for a rank `k` in `1..=keys` drawn with probability
//!   proportional to `k^-S` (key 0 is the hottest), by rejection-inversion (Hörmann and
//!   Derflinger, "Rejection-inversion to generate variates from monotone discrete
//!   distributions", 1996): `O(1)` per sample and no table, for any number of keys. The
//!   uniforms it consumes are derived from `x` with a bijective mix, so a key is a pure
//!   function of `x`, hence of `(seed, index)`.
//!
//! Both the updates' and the probes' keys follow the distribution, so under `zipf:S` a join's
//! output is about `updates · probes · Σ p_k²` records (`Σ p_k²` is about 0.045 for `S = 1.2`
//! and many keys): keep `--probes` small.

use std::fmt;

use crate::data::mix;

/// The largest accepted Zipf exponent (beyond it every key but the first has a vanishing
/// probability, and the powers lose precision).
pub const MAX_EXPONENT: f64 = 100.0;

/// A key distribution, as given to `--key-dist`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Zipf with this exponent (`> 0`, at most [`MAX_EXPONENT`]).
    Zipf(f64),
}

impl KeyDist {
    /// Parses `uniform` or `zipf:S` with `0 < S ≤ 100`; the error is one line naming the
    /// accepted forms.
    pub fn parse(s: &str) -> Result<KeyDist, String> {
        let forms = "expected `uniform` or `zipf:S` with S a number > 0 and <= 100, e.g. zipf:1.2";
        let t = s.trim();
        if t.eq_ignore_ascii_case("uniform") {
            return Ok(KeyDist::Uniform);
        }
        let Some((name, exponent)) = t.split_once(':') else {
            return Err(format!("--key-dist {s:?}: unknown distribution ({forms})"));
        };
        if !name.eq_ignore_ascii_case("zipf") {
            return Err(format!("--key-dist {s:?}: unknown distribution ({forms})"));
        }
        let exponent = exponent.trim();
        if exponent.is_empty() {
            return Err(format!("--key-dist {s:?}: missing exponent ({forms})"));
        }
        let value: f64 = exponent
            .parse()
            .map_err(|_| format!("--key-dist {s:?}: cannot parse exponent ({forms})"))?;
        if !(value > 0.0 && value <= MAX_EXPONENT) {
            return Err(format!("--key-dist {s:?}: exponent out of range ({forms})"));
        }
        Ok(KeyDist::Zipf(value))
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => write!(f, "uniform"),
            KeyDist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// Draws keys below `keys` from a [`KeyDist`] (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct KeySampler {
    dist: KeyDist,
    keys: u64,
    /// Rejection-inversion constants (unused for `uniform`).
    zipf: Zipf,
}

impl KeySampler {
    /// A sampler of keys in `0..keys` (`keys ≥ 1`).
    pub fn new(dist: KeyDist, keys: u64) -> KeySampler {
        let keys = keys.max(1);
        let exponent = match dist {
            KeyDist::Uniform => 1.0,
            KeyDist::Zipf(s) => s,
        };
        KeySampler {
            dist,
            keys,
            zipf: Zipf::new(keys, exponent),
        }
    }

    /// The uniform sampler, as the generator was before `--key-dist`.
    pub fn uniform(keys: u64) -> KeySampler {
        KeySampler::new(KeyDist::Uniform, keys)
    }

    /// The distribution sampled.
    pub fn dist(&self) -> KeyDist {
        self.dist
    }

    /// The key for the random word `x`: a pure function of `x`.
    #[inline]
    pub fn key(&self, x: u64) -> u64 {
        match self.dist {
            KeyDist::Uniform => x % self.keys,
            KeyDist::Zipf(_) => self.zipf.rank(x) - 1,
        }
    }
}

/// Rejection-inversion sampling of ranks `1..=n` with `P(k) ∝ k^-s`.
#[derive(Clone, Copy, Debug)]
struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    /// Ranks this close to the inverted value are accepted without the exact test.
    squeeze: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.squeeze = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`, from the uniforms of the mixes of `x`.
    fn rank(&self, x: u64) -> u64 {
        let mut state = x ^ 0x6A09_E667_F3BC_C908;
        loop {
            state = mix(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            let uniform = (state >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let u = self.h_integral_n + uniform * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `h(x) = x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `H(x) = ∫₁ˣ h = (x^(1-s) - 1) / (1 - s)` (`ln x` when `s = 1`).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    /// `H⁻¹`.
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(KeyDist::parse("uniform"), Ok(KeyDist::Uniform));
        assert_eq!(KeyDist::parse("zipf:1.2"), Ok(KeyDist::Zipf(1.2)));
        assert_eq!(KeyDist::parse("ZIPF:1.0").unwrap().to_string(), "zipf:1");
        assert_eq!(KeyDist::parse("zipf:0.5").unwrap().to_string(), "zipf:0.5");
        assert_eq!(KeyDist::Uniform.to_string(), "uniform");
        for bad in [
            "zipf:", "zipf:0", "zipf:-1", "zipf:abc", "pareto", "zipf:inf", "zipf:NaN", "zipf:101",
            "",
        ] {
            let e = KeyDist::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && e.contains("--key-dist"), "{bad}: {e}");
        }
    }

    #[test]
    fn uniform_is_the_old_modulo() {
        let s = KeySampler::uniform(1000);
        for x in [0, 1, 999, 1000, u64::MAX, 0xDEAD_BEEF] {
            assert_eq!(s.key(x), x % 1000);
        }
    }

    /// Frequencies of the first ranks match `k^-s / H(n, s)` within a few standard errors, every
    /// key stays in range, and a key is a function of its word.
    #[test]
    fn zipf_matches_its_probabilities() {
        for (n, s) in [
            (1_000u64, 1.2),
            (50, 0.7),
            (10, 1.0),
            (1, 2.0),
            (1 << 40, 1.5),
        ] {
            let sampler = KeySampler::new(KeyDist::Zipf(s), n);
            let draws = 200_000u64;
            let mut counts = [0u64; 5];
            for i in 0..draws {
                let x = mix(i ^ 0x1234);
                let k = sampler.key(x);
                assert!(k < n, "{k} >= {n}");
                assert_eq!(k, sampler.key(x));
                if (k as usize) < counts.len() {
                    counts[k as usize] += 1;
                }
            }
            // The normalizer, summed exactly where feasible and with the tail's integral beyond.
            let head = n.min(1_000_000);
            let mut norm: f64 = (1..=head).map(|k| (k as f64).powf(-s)).sum();
            if n > head {
                let (a, b) = (head as f64 + 0.5, n as f64 + 0.5);
                norm += (b.powf(1.0 - s) - a.powf(1.0 - s)) / (1.0 - s);
            }
            for (k, &count) in counts.iter().enumerate().take(n as usize) {
                let p = ((k + 1) as f64).powf(-s) / norm;
                let expected = p * draws as f64;
                let sd = (draws as f64 * p * (1.0 - p)).sqrt().max(1.0);
                assert!(
                    (count as f64 - expected).abs() < 5.0 * sd,
                    "n {n} s {s} key {k}: {count} draws, expected {expected:.0}"
                );
            }
        }
    }
}

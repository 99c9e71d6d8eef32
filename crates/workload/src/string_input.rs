//! The string records of `--records strings`, and the hashes their checksums are made of.
//!
//! Update `i` is the `u64` workload's update `i` (same key draw, so `--keys` and `--key-dist`
//! apply; same round; same retraction) with its key formatted as `customer/000123456` and a
//! value of exactly `val_bytes` lowercase hex digits, expanded from a splitmix64 stream seeded
//! by `(seed, i)`: deterministic, distinct per update, and as incompressible as hex gets
//! (4 bits of entropy per byte). Probe `j` is `(customer/<key of u64 probe j>, j)`.
//!
//! A string record's checksum hash is the `u64` workload's [`record_hash`] over the
//! [`bytes_hash`] of each string field (and numeric fields as they are), so checksums stay
//! order-independent sums and agree across backends, workers and processes.

use crate::data::{mix, SplitMix64};
use crate::input::{record_hash, InputSpec};

/// Salt that keeps the value stream apart from the key and retraction draws.
const VALUE_SALT: u64 = 0x5A1E_0FBA_5E00_0000;

/// One generated string update: `((key, val), round)`, and its retraction round, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringUpdate {
    /// `customer/` and the key's nine-digit decimal form.
    pub key: String,
    /// Exactly `val_bytes` hex digits.
    pub val: String,
    /// The round (timely time) it is entered at.
    pub round: u64,
    /// The round it is retracted at, if it is.
    pub retract_at: Option<u64>,
}

/// The string form of key `key`: `customer/` and at least nine decimal digits.
pub fn key_string(key: u64) -> String {
    format!("customer/{key:09}")
}

/// The value of update `index` of the stream `seed`: `len` hex digits.
pub fn value_string(seed: u64, index: u64, len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rng = SplitMix64::new(mix(seed ^ VALUE_SALT ^ mix(index)));
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let mut bits = rng.next_u64();
        for _ in 0..16.min(len - out.len()) {
            out.push(HEX[(bits & 15) as usize]);
            bits >>= 4;
        }
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Update `i` (entered in `round`) as strings with values of `val_bytes` bytes.
pub fn string_update(spec: &InputSpec, i: u64, round: u64, val_bytes: usize) -> StringUpdate {
    let u = spec.update(i, round);
    StringUpdate {
        key: key_string(u.key),
        val: value_string(spec.seed, i, val_bytes),
        round: u.round,
        retract_at: u.retract_at,
    }
}

/// Probe `j`: `(key, j)`, the key formatted from the `u64` probe's.
pub fn string_probe(spec: &InputSpec, j: u64) -> (String, u64) {
    let (key, j) = spec.probe(j);
    (key_string(key), j)
}

/// A 64-bit hash of a byte string, its length included: word-at-a-time multiply-rotate, then
/// the splitmix64 finalizer. Not cryptographic; a checksum's record hash.
#[inline]
pub fn bytes_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = mix(bytes.len() as u64 ^ 0x0B7E_5000);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(last))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    mix(h)
}

/// A field of a string record as its checksum sees it: strings by [`bytes_hash`], words as
/// they are. Implemented for the items cursors and join closures hand out (by value or by
/// reference; `&String` or `&str`).
pub trait Field: Copy {
    /// The field's contribution to [`string_record_hash`].
    fn field(self) -> u64;
}
impl Field for u64 {
    fn field(self) -> u64 {
        self
    }
}
impl Field for &u64 {
    fn field(self) -> u64 {
        *self
    }
}
impl Field for &String {
    fn field(self) -> u64 {
        bytes_hash(self.as_bytes())
    }
}
impl Field for &str {
    fn field(self) -> u64 {
        bytes_hash(self.as_bytes())
    }
}

/// The hash of a string record of up to three fields, with a tag to separate outputs.
#[inline]
pub fn string_record_hash(tag: u64, a: impl Field, b: impl Field, c: impl Field) -> u64 {
    record_hash(tag, a.field(), b.field(), c.field())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Records;
    use crate::key_dist::KeySampler;

    #[test]
    fn updates_follow_the_u64_draw_with_values_of_the_asked_length() {
        let spec = InputSpec {
            seed: 3,
            updates: 1_000,
            keys: 77,
            probes: 10,
            rounds: 4,
            retract: 0.2,
            key_dist: KeySampler::uniform(77),
            records: Records::Strings { val_bytes: 37 },
        };
        for round in 0..spec.rounds {
            for i in spec.round_range(round) {
                let u = spec.update(i, round);
                let s = string_update(&spec, i, round, 37);
                assert_eq!(s.key, format!("customer/{:09}", u.key));
                assert_eq!((s.round, s.retract_at), (u.round, u.retract_at));
                assert_eq!(s.val.len(), 37);
                assert!(s.val.bytes().all(|b| b.is_ascii_hexdigit()));
                assert_eq!(s, string_update(&spec, i, round, 37));
            }
        }
        assert_ne!(value_string(3, 1, 64), value_string(3, 2, 64));
        assert_ne!(value_string(3, 1, 64), value_string(4, 1, 64));
        assert_eq!(value_string(3, 1, 1), value_string(3, 1, 64)[..1]);
        assert_eq!(string_probe(&spec, 5).1, 5);
    }

    #[test]
    fn hashes_see_every_byte_and_the_length() {
        assert_ne!(bytes_hash(b""), bytes_hash(b"\0"));
        assert_ne!(bytes_hash(b"abcdefgh1"), bytes_hash(b"abcdefgh2"));
        assert_ne!(bytes_hash(b"abcdefgh"), bytes_hash(b"abcdefgh\0"));
        let s = "customer/000000001".to_string();
        assert_eq!(s.as_str().field(), (&s).field());
    }
}

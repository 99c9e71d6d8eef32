//! The generated input of `spillway join` and `spillway reduce`, and the checksums of their
//! outputs.
//!
//! Update `i` of `N` is a pure function of `(seed, i)`: key uniform below `keys`, value below
//! 2^20, entered in round `i * rounds / N`. A fraction `retract` of the updates is retracted
//! one round later (in the last round, in the same round: they cancel in the batcher). Probe
//! `j` of `P` is `(key, j)` with its key drawn the same way. A worker enters the updates and
//! probes whose index is its global worker index modulo the number of workers, so the input,
//! and every output, is the same for any number of workers and processes.
//!
//! Checksums are sums over records of `hash(record) * diff` (wrapping): independent of order,
//! of how updates are split among workers, and of consolidation, so every backend, worker
//! count and process count yields the same value for the same collection.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::data::mix;
use crate::key_dist::KeySampler;

/// A hash of a record of up to three words, with a tag to separate outputs.
#[inline]
pub fn record_hash(tag: u64, a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(mix(tag) ^ a) ^ b) ^ c)
}

/// An order-independent checksum of a collection: `Σ hash(record) · diff`, and `Σ diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// `Σ hash · diff`, wrapping.
    pub sum: u64,
    /// `Σ diff`: the number of records, with multiplicity, once consolidated.
    pub records: i64,
}

impl Checksum {
    /// Adds `diff` copies of a record with hash `hash`.
    #[inline]
    pub fn add(&mut self, hash: u64, diff: i64) {
        self.sum = self.sum.wrapping_add(hash.wrapping_mul(diff as u64));
        self.records += diff;
    }

    /// Combines two partial checksums (of disjoint parts of one collection).
    pub fn merge(self, other: Checksum) -> Checksum {
        Checksum {
            sum: self.sum.wrapping_add(other.sum),
            records: self.records + other.records,
        }
    }

    /// The checksum as printed: 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.sum)
    }
}

/// The largest `--val-bytes` of the string records: 16 MiB.
pub const MAX_VAL_BYTES: usize = 16 << 20;

/// The value length of the string records when none is given.
pub const DEFAULT_VAL_BYTES: usize = 100;

/// What the generated records are (`--records`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Records {
    /// `(u64 key, u64 value)` updates and `(u64 key, u64 probe)` probes: the original workload.
    #[default]
    U64,
    /// `(String key, String value)` updates and `(String key, u64 probe)` probes, keys
    /// formatted from the same key draw as `U64`'s, values of exactly `val_bytes` bytes (see
    /// [`crate::string_input`]).
    Strings {
        /// The length of every value, in `1..=MAX_VAL_BYTES`.
        val_bytes: usize,
    },
}

impl Records {
    /// The name on the command line and in the JSON output (`u64`, `strings`).
    pub fn name(self) -> &'static str {
        match self {
            Records::U64 => "u64",
            Records::Strings { .. } => "strings",
        }
    }

    /// The length of every value of string records, `None` for `u64`.
    pub fn val_bytes(self) -> Option<usize> {
        match self {
            Records::U64 => None,
            Records::Strings { val_bytes } => Some(val_bytes),
        }
    }
}

/// The input of one run.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    /// Seed of every generated update and probe.
    pub seed: u64,
    /// Updates in the input.
    pub updates: u64,
    /// Distinct keys the updates and probes draw from.
    pub keys: u64,
    /// Records in the probe collection of `join`.
    pub probes: u64,
    /// Timely rounds the updates are spread over.
    pub rounds: u64,
    /// Fraction of updates retracted, in `[0, 1]`.
    pub retract: f64,
    /// How keys (of updates and probes) are drawn below `keys` (see [`crate::key_dist`]).
    pub key_dist: KeySampler,
    /// What the records are: words or strings.
    pub records: Records,
}

/// One generated update: `((key, val), round)`, and the round it is retracted at, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The key, below the spec's `keys`.
    pub key: u64,
    /// The value, below 2^20.
    pub val: u64,
    /// The round (timely time) it is entered at.
    pub round: u64,
    /// The round it is retracted at, if it is.
    pub retract_at: Option<u64>,
}

impl InputSpec {
    /// The indices of the updates entered in `round`.
    pub fn round_range(&self, round: u64) -> Range<u64> {
        let at = |r: u64| (r as u128 * self.updates as u128 / self.rounds as u128) as u64;
        at(round)..at(round + 1)
    }

    /// Update `i` (entered in `round`, which must be the round whose range holds `i`).
    #[inline]
    pub fn update(&self, i: u64, round: u64) -> Update {
        let x = mix(self.seed ^ mix(i));
        let retracted =
            self.retract > 0.0 && (mix(x) >> 11) as f64 / (1u64 << 53) as f64 <= self.retract;
        Update {
            key: self.key_dist.key(x),
            val: x >> 44,
            round,
            retract_at: retracted.then(|| (round + 1).min(self.rounds - 1)),
        }
    }

    /// Probe `j`: `(key, j)`.
    #[inline]
    pub fn probe(&self, j: u64) -> (u64, u64) {
        let x = mix(self.seed ^ 0x05EE_D0F9_0BE5 ^ mix(j.wrapping_add(1) << 20));
        (self.key_dist.key(x), j)
    }
}

/// The indices in `range` that global worker `index` of `peers` enters.
pub fn share(range: Range<u64>, index: usize, peers: usize) -> impl Iterator<Item = u64> {
    let (index, peers) = (index as u64, peers as u64);
    let first = range.start + (index + peers - range.start % peers) % peers;
    (first..range.end).step_by(peers as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InputSpec {
        InputSpec {
            seed: 7,
            updates: 1_003,
            keys: 100,
            probes: 30,
            rounds: 7,
            retract: 0.25,
            key_dist: KeySampler::uniform(100),
            records: Records::U64,
        }
    }

    #[test]
    fn rounds_partition_the_updates() {
        let s = spec();
        let mut next = 0;
        for r in 0..s.rounds {
            let range = s.round_range(r);
            assert_eq!(range.start, next);
            next = range.end;
        }
        assert_eq!(next, s.updates);
    }

    #[test]
    fn worker_shares_partition_every_range() {
        for peers in 1..5 {
            let mut seen: Vec<u64> = (0..peers)
                .flat_map(|w| share(13..101, w, peers).collect::<Vec<_>>())
                .collect();
            seen.sort();
            assert_eq!(seen, (13..101).collect::<Vec<_>>(), "peers {peers}");
        }
    }

    #[test]
    fn retractions_follow_the_fraction_and_stay_in_range() {
        let s = spec();
        let mut retracted = 0;
        for r in 0..s.rounds {
            for i in s.round_range(r) {
                let u = s.update(i, r);
                assert!(u.key < s.keys && u.val < 1 << 20);
                if let Some(at) = u.retract_at {
                    retracted += 1;
                    assert!(at >= r && at < s.rounds);
                }
            }
        }
        let fraction = retracted as f64 / s.updates as f64;
        assert!((0.18..0.32).contains(&fraction), "{fraction}");
    }

    #[test]
    fn checksums_ignore_order_and_consolidation() {
        let mut a = Checksum::default();
        a.add(record_hash(1, 2, 3, 4), 1);
        a.add(record_hash(1, 5, 6, 7), 2);
        a.add(record_hash(1, 2, 3, 4), -1);
        let mut b = Checksum::default();
        b.add(record_hash(1, 5, 6, 7), 1);
        let mut c = Checksum::default();
        c.add(record_hash(1, 5, 6, 7), 1);
        assert_eq!(a, b.merge(c));
        assert_ne!(record_hash(1, 2, 3, 4), record_hash(2, 2, 3, 4));
    }
}

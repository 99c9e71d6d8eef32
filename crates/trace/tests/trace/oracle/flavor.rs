//! The record and time types of an oracle run ([`Flavor`]), and the four the oracle runs.
//!
//! Invariant: a case is generated as `u64` seeds and a flavor maps each seed to its key or
//! value type, deterministically, so every flavor runs the same stream shapes (key counts,
//! retractions, rounds, future-dated updates) and everything after generation (both sides
//! of the computation, the model) sees only the flavor's types. Two seeds may map to one
//! record (the model works on records, so that only merges what the stream says).
//!
//! - [`Ints`]: `u64` keys, values and times, read by value.
//! - [`Strings`]: `String` keys (the empty one included) and values of 0 to over 256 bytes,
//!   so some chunks' fence values are too wide to keep and are read from their bodies.
//! - [`Derived`]: a `#[derive(PagedData)]` struct key (a `String` and an integer) and a
//!   derived enum value (fixed-width, variable-length and unit variants).
//! - [`Products`]: `u64` keys and values at partially ordered `Product<u64, u32>` times.
//! - [`StringProducts`]: the `String` records of [`Strings`] at the times of [`Products`].

use std::fmt::Debug;
use std::hash::Hash;

use differential_dataflow::ExchangeData;
use serde::{Deserialize, Serialize};
use spillway_trace::PagedData;
use timely::order::Product;

use super::time::OracleTime;

/// What a key or value type must be: arrangeable by upstream and paged by spillway.
pub(super) trait Record: ExchangeData + PagedData + Hash + Debug + Sync {}
impl<X: ExchangeData + PagedData + Hash + Debug + Sync> Record for X {}

/// The key, value and time types of an oracle run, and how seeds become records.
pub(super) trait Flavor: Copy + Debug + Default + Send + Sync + 'static {
    /// Key type.
    type K: Record;
    /// Value type (of the data and of the probe).
    type V: Record;
    /// Time type.
    type T: OracleTime;
    /// The key of a seed.
    fn key(seed: u64) -> Self::K;
    /// The value of a seed.
    fn val(seed: u64) -> Self::V;
    /// A number for a value, summed (times multiplicity) by the weighted-sum reduce.
    fn weight(val: &Self::V) -> u64;
}

/// `u64` keys, values and times.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ints;

impl Flavor for Ints {
    type K = u64;
    type V = u64;
    type T = u64;
    fn key(seed: u64) -> u64 {
        seed
    }
    fn val(seed: u64) -> u64 {
        seed
    }
    fn weight(val: &u64) -> u64 {
        *val
    }
}

/// `String` keys and values at `u64` times.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Strings;

/// Values of this many bytes and more have no resident fence copy (`FENCE_VAL_BYTES`).
const WIDE_VAL: usize = 257;

impl Flavor for Strings {
    type K = String;
    type V = String;
    type T = u64;
    /// `""` for seed 0, else `3 * (seed % 7)` `'k'`s and the seed's digits: lengths 1 to 38.
    fn key(seed: u64) -> String {
        if seed == 0 {
            return String::new();
        }
        format!("{}{seed}", "k".repeat(3 * (seed % 7) as usize))
    }
    /// Empty for one seed in ten, over [`WIDE_VAL`] bytes for another, else 1 to 60 bytes.
    fn val(seed: u64) -> String {
        match seed % 10 {
            0 => String::new(),
            1 => format!("{seed:0>w$}", w = WIDE_VAL + (seed % 300) as usize),
            _ => format!("v{seed:x}{}", ".".repeat((seed % 40) as usize)),
        }
    }
    fn weight(val: &String) -> u64 {
        fnv(val.as_bytes())
    }
}

/// FNV-1a of `bytes`.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A user's key: a derived struct with a `String` (read as the generated `AccountRef<'a>`).
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) struct Account {
    name: String,
    id: u32,
}

/// A user's value: a derived enum with fixed-width, variable-length and unit variants.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) enum Event {
    Click { x: i32, y: u8 },
    Note(String),
    Closed,
}

/// Derived struct keys and derived enum values at `u64` times.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Derived;

impl Flavor for Derived {
    type K = Account;
    type V = Event;
    type T = u64;
    /// Few names (one of them empty), each with many ids, so names straddle chunks.
    fn key(seed: u64) -> Account {
        Account {
            name: match seed % 4 {
                0 => String::new(),
                n => format!("acct-{}", "x".repeat(n as usize * 5)),
            },
            id: (seed / 4) as u32,
        }
    }
    fn val(seed: u64) -> Event {
        match seed % 5 {
            0 | 1 => Event::Click {
                x: (seed / 5) as i32 - 1_000,
                y: (seed % 2) as u8,
            },
            2 | 3 => Event::Note(format!("{}{seed}", "n".repeat((seed % 17) as usize))),
            _ => Event::Closed,
        }
    }
    fn weight(val: &Event) -> u64 {
        match val {
            Event::Click { x, y } => (*x as u64).wrapping_mul(3) ^ u64::from(*y),
            Event::Note(text) => fnv(text.as_bytes()),
            Event::Closed => 7,
        }
    }
}

/// `u64` keys and values at `Product<u64, u32>` times.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Products;

impl Flavor for Products {
    type K = u64;
    type V = u64;
    type T = Product<u64, u32>;
    fn key(seed: u64) -> u64 {
        seed
    }
    fn val(seed: u64) -> u64 {
        seed
    }
    fn weight(val: &u64) -> u64 {
        *val
    }
}

/// `String` keys and values (as [`Strings`]) at `Product<u64, u32>` times (as [`Products`]):
/// variable-length records, wide fence values included, advanced by two-element frontiers.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StringProducts;

impl Flavor for StringProducts {
    type K = String;
    type V = String;
    type T = Product<u64, u32>;
    fn key(seed: u64) -> String {
        Strings::key(seed)
    }
    fn val(seed: u64) -> String {
        Strings::val(seed)
    }
    fn weight(val: &String) -> u64 {
        Strings::weight(val)
    }
}

//! The types spillway provides, through paged arrangements at a tiny budget: diffs other
//! than `isize` (`i32`, a tuple, differential's `Present`), keys and values whose
//! little-endian encodings do not sort like their values (`Option<i64>` with negative
//! numbers, `Reverse`, `char`, `bool`, arrays, an 8-tuple, `Duration`, `Product`), composites
//! with variable-length parts (`(String, u64)` keys, `Vec<u32>` values, `Option<String>`,
//! `(u32, Vec<String>)`), and `#[derive(PagedData)]` types (a struct key with a `String`, an
//! enum value). Each paged trace is walked with a cursor and must equal upstream's
//! `OrdValSpine` walk: the same `(key, val)`s, in the same order (the items' `Ord`), with the
//! same accumulations. Fixed-width types are walked by value (`FixedWidth`), the others
//! through their borrowed items.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use differential_dataflow::difference::{Present, Semigroup};
use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::{
    BatchCursor, BatchKey, BatchVal, Cursor, Navigable, TraceReader,
};
use differential_dataflow::{ExchangeData, Hashable};
use serde::{Deserialize, Serialize};
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{ArrangePaged, FixedWidth, PagedData, Paging, PagingPolicy};
use timely::dataflow::operators::Probe;
use timely::order::Product;
use timely::progress::Antichain;

const ROUNDS: u64 = 4;

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The trace's contents at the end, in cursor order, with nonzero accumulations.
type Walk<K, V, R> = Vec<(K, V, R)>;

fn walk<Tr, K, V, R>(
    trace: &mut Tr,
    own: impl Fn(BatchKey<'_, Tr>, BatchVal<'_, Tr>) -> (K, V),
) -> Walk<K, V, R>
where
    Tr: TraceReader<Time = u64, Batch: Navigable>,
    BatchCursor<Tr>: Cursor<Time = u64, Diff = R>,
    R: Semigroup + Clone,
{
    let batches = trace
        .batches_through(Antichain::from_elem(ROUNDS).borrow())
        .expect("batches_through");
    let (mut cursor, storage) = cursor_list(batches);
    let mut out = Vec::new();
    while let Some(k) = cursor.get_key(&storage) {
        while let Some(v) = cursor.get_val(&storage) {
            let mut acc: Option<R> = None;
            cursor.map_times(&storage, |_t, d| {
                let d = <BatchCursor<Tr> as Cursor>::owned_diff(d);
                match &mut acc {
                    Some(a) => a.plus_equals(&d),
                    None => acc = Some(d),
                }
            });
            if let Some(acc) = acc.filter(|a| !a.is_zero()) {
                let (k, v) = own(k, v);
                out.push((k, v, acc));
            }
            cursor.step_val(&storage);
        }
        cursor.step_key(&storage);
    }
    out
}

/// Arranges `updates` (`(record, round, diff)`) paged at a tiny budget and with upstream's
/// `arrange_by_key`; returns both walks and the pool's counters. The paged walk owns its
/// items with `PagedData::into_owned`.
fn arrange_both<K, V, R>(
    updates: Vec<((K, V), u64, R)>,
) -> (Walk<K, V, R>, Walk<K, V, R>, PoolStats)
where
    K: ExchangeData + Hashable + PagedData + Debug + Sync,
    V: ExchangeData + PagedData + Debug + Sync,
    R: ExchangeData + Semigroup + PagedData + Debug + Sync,
{
    let pool = Pool::new(PoolConfig {
        budget: 64 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        poison_released_slots: true,
        ..PoolConfig::default()
    })
    .unwrap();
    type Walks<K, V, R> = Arc<Mutex<(Walk<K, V, R>, Walk<K, V, R>)>>;
    let walks: Walks<K, V, R> = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let (out, pool2) = (walks.clone(), pool.clone());
    timely::execute_directly(move |worker| {
        let paging = Paging::with_policy(
            &pool2,
            PagingPolicy {
                min_bytes: 0,
                ..PagingPolicy::default()
            },
        );
        let (mut input, probe, mut paged, mut upstream) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(K, V), R>();
            let paged = data.clone().arrange_by_key_paged(&paging);
            let upstream = data.arrange_by_key();
            let (probe, _) = paged.stream.clone().probe();
            upstream.stream.clone().probe_with(&probe);
            (input, probe, paged.trace, upstream.trace)
        });
        for round in 0..ROUNDS {
            for (record, _, diff) in updates.iter().filter(|u| u.1 == round) {
                input.update(record.clone(), diff.clone());
            }
            input.advance_to(round + 1);
            input.flush();
            worker.step_while(|| probe.less_than(&(round + 1)));
        }
        let got = walk(&mut paged, |k, v| (K::into_owned(k), V::into_owned(v)));
        let want = walk(&mut upstream, |k: &K, v: &V| (k.clone(), v.clone()));
        *out.lock().unwrap() = (got, want);
    });
    let (got, want) = std::mem::take(&mut *walks.lock().unwrap());
    (got, want, pool.stats())
}

/// [`check_paged`] for fixed-width types, which must also come back by value: a paged
/// cursor's key and val are `K` and `V` themselves.
fn check<K, V, R>(updates: Vec<((K, V), u64, R)>)
where
    K: ExchangeData + Hashable + FixedWidth + Debug + Sync,
    V: ExchangeData + FixedWidth + Debug + Sync,
    R: ExchangeData + Semigroup + FixedWidth + Debug + Sync,
{
    fn by_value<K: FixedWidth>(k: <K as PagedData>::Item<'_>) -> K {
        k
    }
    let _ = by_value::<K>;
    let _ = by_value::<V>;
    check_paged(updates)
}

/// Checks a paged walk against upstream's and a model, and that the arrangement paged.
fn check_paged<K, V, R>(updates: Vec<((K, V), u64, R)>)
where
    K: ExchangeData + Hashable + PagedData + Debug + Sync,
    V: ExchangeData + PagedData + Debug + Sync,
    R: ExchangeData + Semigroup + PagedData + Debug + Sync,
{
    let mut model: BTreeMap<(K, V), R> = BTreeMap::new();
    for (record, _, diff) in &updates {
        match model.get_mut(record) {
            Some(acc) => acc.plus_equals(diff),
            None => {
                model.insert(record.clone(), diff.clone());
            }
        }
    }
    let model: Walk<K, V, R> = model
        .into_iter()
        .filter(|(_, r)| !r.is_zero())
        .map(|((k, v), r)| (k, v, r))
        .collect();
    let (got, want, stats) = arrange_both(updates);
    assert_eq!(want, model, "upstream against the model");
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "paged walk differs from OrdValSpine's ({} against {} entries), first at {at:?}: {:?} against {:?}",
            got.len(),
            want.len(),
            at.map(|i| &got[i]),
            at.map(|i| &want[i]),
        );
    }
    assert!(!got.is_empty());
    assert!(
        stats.inserts > 0 && stats.fault_ins > 0,
        "the arrangement did not page: {stats:?}"
    );
}

/// `n` updates over `keys` keys, spread over the rounds; `diff` picks each one's diff (and
/// may refer back to an earlier update's record, to retract it).
fn updates<K, V, R>(
    n: usize,
    record: impl FnMut(&mut u64) -> (K, V),
    diff: impl FnMut(&mut u64) -> R,
) -> Vec<((K, V), u64, R)> {
    updates_from(0x853C_49E6_748F_EA9B_u64 ^ n as u64, n, record, diff)
}

/// [`updates`] from a given seed.
fn updates_from<K, V, R>(
    mut seed: u64,
    n: usize,
    mut record: impl FnMut(&mut u64) -> (K, V),
    mut diff: impl FnMut(&mut u64) -> R,
) -> Vec<((K, V), u64, R)> {
    seed |= 1;
    (0..n)
        .map(|i| {
            let round = (i as u64 * ROUNDS) / n as u64;
            (record(&mut seed), round, diff(&mut seed))
        })
        .collect()
}

fn pair(seed: &mut u64) -> (u64, u64) {
    (rng(seed) % 3_000, rng(seed) % 4)
}

#[test]
fn i32_diffs() {
    check(updates(40_000, pair, |s| match rng(s) % 4 {
        0 => -1i32,
        1 => 3,
        _ => 1,
    }));
}

#[test]
fn tuple_diffs() {
    // differential's `Semigroup` covers tuples: each field accumulates on its own, and an
    // update vanishes only when every field is zero.
    check(updates(40_000, pair, |s| match rng(s) % 4 {
        0 => (-1i64, 0i32),
        1 => (0, -1),
        2 => (1, 1),
        _ => (2, 0),
    }));
}

#[test]
fn present_diffs() {
    check(updates(40_000, pair, |_| Present));
}

#[test]
fn keys_and_values_in_decoded_order() {
    // Negative numbers and `None` sort first by value but not by little-endian bytes.
    let record = |s: &mut u64| {
        let key = match rng(s) % 10 {
            0 => None,
            _ => Some((rng(s) % 4_000) as i64 - 2_000),
        };
        let x = rng(s);
        let val = (
            Reverse((x % 7) as i16 - 3),
            char::from_u32(0x41 + (x >> 8) as u32 % 3).unwrap(),
            (x >> 16).is_multiple_of(2),
            [(x >> 20) as u8 % 2, 0, 1],
        );
        (key, val)
    };
    check(updates(30_000, record, |s| {
        if rng(s).is_multiple_of(5) {
            -1isize
        } else {
            1
        }
    }));
}

#[test]
fn wide_tuples_durations_and_products() {
    let record = |s: &mut u64| {
        let x = rng(s);
        let key = (
            (x % 500) as u8,
            -((x >> 9) as i16 % 3),
            (x >> 12) as u32 % 2,
            true,
            'k',
            (),
            Some(-((x >> 14) as i64 % 2)),
            (x >> 16) as u128 % 2,
        );
        let val = (
            Duration::new((x >> 20) % 3, ((x >> 24) % 2) as u32 * 500_000_000),
            Product::new(Product::new((x >> 30) % 2, ((x >> 32) % 3) as u32), -1i8),
        );
        (key, val)
    };
    check(updates(30_000, record, |s| {
        if rng(s).is_multiple_of(4) {
            -1isize
        } else {
            1
        }
    }));
}

#[test]
fn string_u64_keys_and_vec_u32_values() {
    // `(String, u64)` keys (`(&str, u64)` items: a length before the string) and `Vec<u32>`
    // values (a `Seq` of `u32`s read from the encoded bytes).
    let record = |s: &mut u64| {
        let x = rng(s);
        let key = (format!("customer/{:03}", x % 300), (x >> 10) % 3);
        let val: Vec<u32> = (0..(x >> 16) % 5)
            .map(|i| (i as u32) * 7 + (x >> 20) as u32 % 3)
            .collect();
        (key, val)
    };
    check_paged(updates(20_000, record, |s| {
        if rng(s).is_multiple_of(5) {
            -1isize
        } else {
            1
        }
    }));
}

#[test]
fn optional_strings_and_nested_vectors() {
    // `Option<String>` keys (`None` first, as `Option`'s `Ord`) and `(u32, Vec<String>)`
    // values (a tuple whose last part is a vector of variable-length elements).
    let record = |s: &mut u64| {
        let x = rng(s);
        let key = match x % 8 {
            0 => None,
            _ => Some("k".repeat((x >> 4) as usize % 40)),
        };
        let words: Vec<String> = (0..(x >> 12) % 4)
            .map(|i| format!("w{}", (x >> (16 + i)) % 3))
            .collect();
        (key, ((x >> 24) as u32 % 3, words))
    };
    check_paged(updates(20_000, record, |s| {
        if rng(s).is_multiple_of(5) {
            -1isize
        } else {
            1
        }
    }));
}

/// A user's key: derived, with a `String` (so its item is the generated `AccountRef<'a>`).
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Account {
    region: u16,
    name: String,
    tags: Vec<String>,
}

/// A user's value: a derived enum with fixed-width, variable-length and unit variants.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Event {
    Click { x: i32, y: i32 },
    Note(String, Option<u8>),
    Closed,
}

/// A derived fixed-width type: read by value (`Item<'a> = Self`).
#[derive(
    PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
struct Cell(i16, Option<char>);

#[test]
fn derived_struct_keys_and_enum_values() {
    let record = |s: &mut u64| {
        let x = rng(s);
        let key = Account {
            region: (x % 3) as u16,
            name: format!("acct-{}", (x >> 4) % 400),
            tags: (0..(x >> 14) % 3).map(|i| format!("t{i}")).collect(),
        };
        let val = match (x >> 20) % 3 {
            0 => Event::Click {
                x: ((x >> 24) % 5) as i32 - 2,
                y: 1,
            },
            1 => Event::Note(
                "note".repeat((x >> 28) as usize % 3),
                (x >> 32).is_multiple_of(2).then_some(7),
            ),
            _ => Event::Closed,
        };
        (key, val)
    };
    check_paged(updates(20_000, record, |s| {
        if rng(s).is_multiple_of(5) {
            -1isize
        } else {
            1
        }
    }));
}

#[test]
fn derived_fixed_width_types_read_by_value() {
    let record = |s: &mut u64| {
        let x = rng(s);
        let key = Cell(
            ((x % 600) as i16) - 300,
            char::from_u32(0x61 + (x >> 10) as u32 % 3),
        );
        (key, ((x >> 16) % 4) as u8)
    };
    check(updates(30_000, record, |s| {
        if rng(s).is_multiple_of(5) {
            -1isize
        } else {
            1
        }
    }));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Random streams of derived struct keys (a `String` and a `Vec<String>` inside) and
    /// derived enum values over a random key space and value lengths, with retractions,
    /// paged at a tiny budget against upstream.
    #[test]
    fn derived_types_against_upstream(
        seed in proptest::num::u64::ANY,
        n in 4_000usize..12_000,
        keys in 1u64..2_000,
        name_len in 0usize..48,
    ) {
        let record = move |s: &mut u64| {
            let x = rng(s);
            let key = Account {
                region: (x % 2) as u16,
                name: format!("{:0>width$}", (x >> 2) % keys, width = name_len),
                tags: (0..(x >> 20) % 3).map(|i| "t".repeat(i as usize)).collect(),
            };
            let val = match (x >> 24) % 3 {
                0 => Event::Click { x: ((x >> 28) % 3) as i32 - 1, y: 0 },
                1 => Event::Note("n".repeat((x >> 30) as usize % 20), None),
                _ => Event::Closed,
            };
            (key, val)
        };
        check_paged(updates_from(seed, n, record, |s| match rng(s) % 6 {
            0 => -1isize,
            1 => 2,
            _ => 1,
        }));
    }
}

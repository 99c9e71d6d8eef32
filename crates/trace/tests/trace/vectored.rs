//! Vectored lookups and the vectored join against their cursor counterparts.
//!
//! - `get_vectored` over a whole trace and over each single batch equals seeking every key
//!   with a cursor and accumulating at the query time, record for record (proptest over
//!   random update streams with retractions, key sets and times; the arrangement pages at a
//!   tiny budget so most chunks are evicted), and reads each chunk at most once per call.
//! - `join_core_vectored` gives `join_core`'s output collection (proptest), for fixed-width
//!   and `String` keys, and its lookups leave no decoded bodies behind.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::TraceReader;
use proptest::prelude::*;
use spillway_pool::{Pool, PoolConfig};
use spillway_trace::{
    get_vectored, ArrangePaged, JoinVectored, LookupStats, Paging, PagingPolicy, VectoredJoin,
};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

/// A pool at a tiny budget, over file extents (which coalesce reads) in `dir`.
fn tiny_pool(dir: &std::path::Path) -> Pool {
    Pool::new(
        PoolConfig::default()
            .budget("512KiB")
            .unwrap()
            .extent_dir(dir),
    )
    .unwrap()
}

fn paging(pool: &Pool) -> Paging {
    Paging::with_policy(
        pool,
        PagingPolicy {
            min_bytes: 1024,
            raw_depth0: false,
            ..PagingPolicy::default()
        },
    )
}

/// A deterministic stream: `n` updates over `keys` keys and `rounds` rounds, a fraction
/// retracted in a later round.
fn updates(seed: u64, n: u64, keys: u64, rounds: u64) -> Vec<((u64, u64), u64, isize)> {
    let mut out = Vec::new();
    for i in 0..n {
        let x = mix(seed.wrapping_add(i));
        let (key, val, round) = (x % keys, (x >> 20) % 16, (x >> 40) % rounds);
        out.push(((key, val), round, 1 + (x >> 50) as isize % 2));
        if (x >> 33).is_multiple_of(5) && round + 1 < rounds {
            out.push(((key, val), round + 1, -1));
        }
    }
    out
}

/// splitmix64's finalizer: every output bit depends on every input bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

type Found = Vec<(u64, u64, isize)>;

/// Arranges `input` with paging at a tiny budget, then for each time in `times` looks `query`
/// up with `get_vectored` and with cursors, over the trace and over each batch.
fn lookups(
    input: Vec<((u64, u64), u64, isize)>,
    rounds: u64,
    query: Vec<u64>,
    times: Vec<u64>,
) -> Vec<(Found, Found, LookupStats)> {
    let dir = tempfile::tempdir().unwrap();
    let pool = tiny_pool(dir.path());
    let results = Arc::new(Mutex::new(Vec::new()));
    let r = results.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = paging(&pool);
        let (mut data, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (handle, data) = scope.new_collection::<(u64, u64), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            (handle, arranged.stream.probe().0, arranged.trace)
        });
        for round in 0..rounds {
            for ((k, v), t, d) in &input {
                if *t == round {
                    data.update((*k, *v), *d);
                }
            }
            data.advance_to(round + 1);
            data.flush();
            while probe.less_than(data.time()) {
                worker.step();
            }
        }
        drop(data);
        while worker.step() {}
        let batches = trace.batches_through(AntichainRef::new(&[])).unwrap();
        for time in &times {
            let mut whole = Vec::new();
            let stats = get_vectored(&batches, &query, time, &mut whole);
            let (mut cursor, storage) = cursor_list(batches.clone());
            let seeks = seek_each(&mut cursor, &storage, &query, time);
            r.lock().unwrap().push((whole, seeks, stats));
            for batch in &batches {
                let mut one = Vec::new();
                let stats = get_vectored(std::slice::from_ref(batch), &query, time, &mut one);
                let (mut cursor, storage) = cursor_list(vec![batch.clone()]);
                let seeks = seek_each(&mut cursor, &storage, &query, time);
                r.lock().unwrap().push((one, seeks, stats));
            }
        }
        assert_eq!(
            paging.stable_bytes().total_peak,
            0,
            "lookups store nothing in the chunks"
        );
    })
    .unwrap();
    let results = std::mem::take(&mut *results.lock().unwrap());
    results
}

/// Seeks each key with `cursor` and accumulates its values at `time` (the oracle).
fn seek_each<C>(cursor: &mut C, storage: &C::Storage, keys: &[u64], time: &u64) -> Found
where
    C: for<'a> Cursor<Key<'a> = u64, Val<'a> = u64, Time = u64, Diff = isize>,
    for<'a> C::TimeGat<'a>: Into<u64>,
    for<'a> C::DiffGat<'a>: Into<isize>,
{
    let mut out = Vec::new();
    for &key in keys {
        cursor.rewind_keys(storage);
        cursor.seek_key(storage, key);
        if cursor.get_key(storage) != Some(key) {
            continue;
        }
        while let Some(val) = cursor.get_val(storage) {
            let mut sum = 0isize;
            cursor.map_times(storage, |t, r| {
                if t.into() <= *time {
                    sum += r.into();
                }
            });
            if sum != 0 {
                out.push((key, val, sum));
            }
            cursor.step_val(storage);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn lookups_equal_cursor_seeks(
        seed in any::<u64>(),
        n in 2_000u64..30_000,
        keys in 50u64..20_000,
        rounds in 1u64..5,
        query_every in 1u64..40,
        time in 0u64..6,
    ) {
        let input = updates(seed, n, keys, rounds);
        // Sorted, distinct, some beyond every key in the data.
        let query: Vec<u64> = (0..keys + 10).filter(|k| (k ^ seed) % query_every == 0).collect();
        for (vectored, seeks, stats) in lookups(input, rounds, query, vec![time, u64::MAX - 1]) {
            prop_assert_eq!(&vectored, &seeks);
            prop_assert!(stats.pool.reads <= stats.pool.faulted, "{:?}", stats);
            prop_assert!(stats.pool.faulted <= stats.chunks_visited - stats.chunks_resident, "{:?}", stats);
        }
    }
}

/// Joins two generated collections with `join_core` and `join_core_vectored` (group `group`)
/// on paged arrangements; returns both consolidated outputs and the vectored lookups' stats.
#[allow(clippy::type_complexity)]
fn joins(
    left: Vec<((u64, u64), u64, isize)>,
    right: Vec<((u64, u64), u64, isize)>,
    rounds: u64,
    group: usize,
) -> (
    Vec<((u64, u64, u64), u64, isize)>,
    Vec<((u64, u64, u64), u64, isize)>,
    LookupStats,
) {
    type Out = Arc<Mutex<Vec<((u64, u64, u64), u64, isize)>>>;
    let (cursor_out, vectored_out): (Out, Out) = Default::default();
    let stats_out = Arc::new(Mutex::new(LookupStats::default()));
    let dir = tempfile::tempdir().unwrap();
    let pool = tiny_pool(dir.path());
    let (c, v, s) = (cursor_out.clone(), vectored_out.clone(), stats_out.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = paging(&pool);
        let stats: Rc<RefCell<Option<Rc<RefCell<LookupStats>>>>> = Rc::default();
        let st = stats.clone();
        let (c, v) = (c.clone(), v.clone());
        let (mut a, mut b, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (a_in, a) = scope.new_collection::<(u64, u64), isize>();
            let (b_in, b) = scope.new_collection::<(u64, u64), isize>();
            let a = a.arrange_by_key_paged(&paging);
            let b = b.arrange_by_key_paged(&paging);
            let by_cursor = a
                .clone()
                .join_core(b.clone(), |k, x, y| Some((k, x, y)))
                .inspect(move |x| c.lock().unwrap().push(*x));
            let tactic = VectoredJoin::new(|k, x, y| Some((k, x, y))).group(group);
            *st.borrow_mut() = Some(tactic.stats());
            let by_vectors = a
                .join_with(b, tactic)
                .inspect(move |x| v.lock().unwrap().push(*x));
            let (probe, _) = by_cursor.inner.probe();
            by_vectors.inner.probe_with(&probe);
            (a_in, b_in, probe)
        });
        for round in 0..rounds {
            for ((k, x), t, d) in &left {
                if *t == round {
                    a.update((*k, *x), *d);
                }
            }
            for ((k, y), t, d) in &right {
                if *t == round {
                    b.update((*k, *y), *d);
                }
            }
            a.advance_to(round + 1);
            b.advance_to(round + 1);
            a.flush();
            b.flush();
            while probe.less_than(a.time()) {
                worker.step();
            }
        }
        drop((a, b));
        while worker.step() {}
        *s.lock().unwrap() = *stats.borrow().as_ref().unwrap().borrow();
    })
    .unwrap();
    let mut by_cursor = std::mem::take(&mut *cursor_out.lock().unwrap());
    let mut by_vectors = std::mem::take(&mut *vectored_out.lock().unwrap());
    consolidate_updates(&mut by_cursor);
    consolidate_updates(&mut by_vectors);
    let stats = *stats_out.lock().unwrap();
    (by_cursor, by_vectors, stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn vectored_join_equals_join_core(
        seed in any::<u64>(),
        n in 500u64..20_000,
        keys in 10u64..5_000,
        rounds in 1u64..5,
        group in prop_oneof![Just(1usize), 2usize..50, Just(16 * 1024)],
    ) {
        let left = updates(seed, n, keys, rounds);
        let right = updates(!seed, n / 4 + 1, keys, rounds);
        let (by_cursor, by_vectors, stats) = joins(left, right, rounds, group);
        prop_assert!(!by_cursor.is_empty(), "the inputs share keys");
        prop_assert_eq!(by_cursor, by_vectors);
        prop_assert!(stats.keys > 0);
    }
}

#[test]
fn vectored_join_with_string_keys_equals_upstream() {
    type Out = Arc<Mutex<Vec<((String, String, String), u64, isize)>>>;
    let (upstream, vectored): (Out, Out) = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let pool = tiny_pool(dir.path());
    let (u, v) = (upstream.clone(), vectored.clone());
    let cache = Arc::new(Mutex::new(0usize));
    let cache2 = cache.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = paging(&pool);
        let (u, v) = (u.clone(), v.clone());
        let (mut a, mut b, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (a_in, a) = scope.new_collection::<(String, String), isize>();
            let (b_in, b) = scope.new_collection::<(String, String), isize>();
            a.clone()
                .arrange_by_key()
                .join_core(b.clone().arrange_by_key(), |k, x, y| {
                    Some((k.clone(), x.clone(), y.clone()))
                })
                .inspect(move |x| u.lock().unwrap().push(x.clone()));
            let out = a
                .arrange_by_key_paged(&paging)
                .join_core_vectored(b.arrange_by_key_paged(&paging), |k, x, y| {
                    Some((k.to_owned(), x.to_owned(), y.to_owned()))
                })
                .inspect(move |x| v.lock().unwrap().push(x.clone()));
            (a_in, b_in, out.inner.probe().0)
        });
        for round in 0..4u64 {
            for i in 0..6_000u64 {
                let x = (round * 6_000 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let key = format!("key-{}", x % 3_000);
                data_update(&mut a, &key, x, round);
                if i % 5 == 0 {
                    b.update((key, format!("probe{}", x % 7)), 1);
                }
            }
            a.advance_to(round + 1);
            b.advance_to(round + 1);
            a.flush();
            b.flush();
            while probe.less_than(a.time()) {
                worker.step();
            }
        }
        drop((a, b));
        while worker.step() {}
        *cache2.lock().unwrap() = paging.stable_bytes().total_peak;
    })
    .unwrap();
    let mut upstream = std::mem::take(&mut *upstream.lock().unwrap());
    let mut vectored = std::mem::take(&mut *vectored.lock().unwrap());
    consolidate_updates(&mut upstream);
    consolidate_updates(&mut vectored);
    assert!(upstream.len() > 1_000, "{}", upstream.len());
    assert_eq!(upstream, vectored);
    assert_eq!(
        *cache.lock().unwrap(),
        0,
        "the vectored join stores no bodies in the chunks"
    );
}

/// Inserts a value of varying length for `key`, retracting an earlier one now and then.
fn data_update(
    input: &mut differential_dataflow::input::InputSession<u64, (String, String), isize>,
    key: &str,
    x: u64,
    round: u64,
) {
    input.update((key.to_string(), "v".repeat((x >> 30) as usize % 50)), 1);
    if round > 0 && (x >> 20).is_multiple_of(7) {
        input.update((key.to_string(), "v".repeat((x >> 40) as usize % 50)), -1);
    }
}

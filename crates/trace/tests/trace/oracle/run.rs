//! One oracle run: the computation that arranges a case's collections with the spine under
//! test and with upstream's, at 1 or 2 workers, and gathers what each side produces.
//!
//! Invariant: the two sides see the same input, are built and read the same way (same
//! operators, same reads at the same rounds and times, same compaction), and differ only in
//! the arrangement type; violations seen inside the computation go to the side's `errors`
//! (never a panic, which could leave the other worker waiting forever).
//!
//! The side under test is `PagedSpine` through `PagedBatcher` / `PagedBuilder`, paging into a
//! pool of `paging_budget` bytes (the PAGING HOOK). The reduce outputs under test are paged
//! spines too: `Arranged::reduce_abelian` requires the output trace's cursor to read keys as
//! the input's does (`&K` for `OrdValSpine`, `K::Item` for a paged chunk), so a paged input
//! cannot reduce into `OrdValSpine`; they are filled through the chunk's
//! `PushInto<((K, V), T, R)>`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use timely::container::PushInto;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::order::PartialOrder;
use timely::progress::Antichain;

use differential_dataflow::input::Input;
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::chunk::{is_graded, Chunk, NavigableChunk};
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use differential_dataflow::trace::{
    BatchCursor, BatchKey, BatchVal, Cursor, Navigable, TraceReader,
};
use differential_dataflow::{Hashable, VecCollection};
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{PagedChunk, PagedCursor, PagedData, Paging, PagingPolicy, TARGET_BYTES};

use super::case::Case;
use super::flavor::{Flavor, Record};
use super::time::{Diff, OracleTime};

type TestBatcher<K, V, T> = spillway_trace::PagedBatcher<K, V, T, Diff>;
type TestSpine<K, V, T> = spillway_trace::PagedSpine<K, V, T, Diff>;
type TestBuilder<K, V, T> = spillway_trace::PagedBuilder<K, V, T, Diff>;
/// A batch of the spine under test, as `batches_through` hands it out.
type TestBatch<K, V, T> = Rc<spillway_trace::PagedBatch<K, V, T, Diff>>;

// =============================== PAGING HOOK ==============================
/// Builds the pool for one run (called once per `timely::execute`, before the workers start):
/// memory extents, poisoned released slots (so a read that skips the decode reads garbage),
/// and the case's budget (64 KiB to 448 KiB in the random cases, so large cases evict).
fn make_pool<S: Flavor>(case: &Case<S>) -> Pool {
    Pool::new(PoolConfig {
        budget: case.paging_budget as u64,
        extents: ExtentBackend::Memory { capacity: None },
        poison_released_slots: true,
        ..Default::default()
    })
    .unwrap()
}

/// The paging configuration of one worker: `min_bytes: 0`, so the small cases page too, and
/// a level policy varied with the (already varied) budget, which must not change any answer.
fn make_paging<S: Flavor>(pool: &Pool, case: &Case<S>) -> Paging {
    if !case.paging {
        return Paging::disabled();
    }
    let levels = match case.paging_budget / (64 << 10) % 3 {
        0 => PagingPolicy::default(),
        1 => PagingPolicy::lazy_everywhere(),
        _ => PagingPolicy::eager_everywhere(),
    };
    Paging::with_policy(
        pool,
        PagingPolicy {
            min_bytes: 0,
            raw_depth0: true,
            ..levels
        },
    )
}

/// Checks the pool after a run (all workers joined): large paged cases really faulted in.
fn check_pool<S: Flavor>(stats: &PoolStats, case: &Case<S>) -> Result<(), String> {
    if case.paging && case.data.len() > 10_000 && stats.fault_ins == 0 {
        return Err(format!("large case never faulted in: {stats:?}"));
    }
    Ok(())
}

/// Arranges `collection` by key with the spine under test: the same exchange and operator
/// shape as upstream's `arrange_by_key`, through `arrange_core`, the batcher paging with
/// `paging`.
fn arrange_under_test<'s, K: Record, V: Record, T: OracleTime>(
    collection: VecCollection<'s, T, (K, V), Diff>,
    name: &str,
    paging: &Paging,
) -> Arranged<'s, TraceAgent<TestSpine<K, V, T>>> {
    let paging = paging.clone();
    let exchange = Exchange::new(|u: &((K, V), T, Diff)| (u.0).0.hashed());
    arrange_core::<_, _, TestBatcher<K, V, T>, TestSpine<K, V, T>>(
        collection.inner,
        exchange,
        name,
        move |logger, id| TestBatcher::<K, V, T>::new(logger, id, paging),
    )
}
// ==========================================================================

/// The owned value of a paged item.
fn own<X: PagedData>(item: X::Item<'_>) -> X {
    X::into_owned(item)
}

/// Fill a builder input (`PagedChunk`, or upstream's `Vec`) with one key's output updates,
/// as the `push` argument of `reduce_abelian` wants.
fn fill<K: Clone, V, T, C: Default + PushInto<((K, V), T, Diff)>>(
    buf: &mut C,
    key: K,
    upds: &mut Vec<(V, T, Diff)>,
) {
    *buf = C::default();
    for (v, t, r) in upds.drain(..) {
        buf.push_into(((key.clone(), v), t, r));
    }
}

// ------------------------------ reduce logic ------------------------------

/// Min and max value of a key: two outputs (one when they coincide).
pub(super) fn min_max<V: Ord + Clone>(vals: impl Iterator<Item = V> + Clone) -> Vec<V> {
    let lo = vals.clone().min().unwrap();
    let hi = vals.max().unwrap();
    if lo == hi {
        vec![lo]
    } else {
        vec![lo, hi]
    }
}

/// Sum of `weight(val) * multiplicity`, wrapping.
pub(super) fn weighted_sum<S: Flavor>(items: impl Iterator<Item = (S::V, Diff)>) -> u64 {
    items.fold(0u64, |acc, (v, r)| {
        acc.wrapping_add(S::weight(&v).wrapping_mul(r as u64))
    })
}

// ----------------------------- what a side makes -----------------------------

/// A join output: the key and both values.
pub(super) type Joined<S> = (<S as Flavor>::K, <S as Flavor>::V, <S as Flavor>::V);
pub(super) type Sink<D, T> = Arc<Mutex<Vec<(D, T, Diff)>>>;
/// Per `(round, query time)`: a trace's contents accumulated at that time, read that round.
pub(super) type Reads<D, T> = Arc<Mutex<BTreeMap<(u64, T), BTreeMap<D, Diff>>>>;

/// Everything one side (under test, or upstream) produces, gathered from all workers
/// (cloned, it is shared: every field is an `Arc`).
pub(super) struct Side<S: Flavor> {
    /// (a) trace contents read by cursor after each round, at each of its query times.
    pub reads: Reads<(S::K, S::V), S::T>,
    pub key_reads: Reads<S::K, S::T>,
    /// (a) the arranged batch streams, via `as_collection`.
    pub stream: Sink<(S::K, S::V), S::T>,
    pub key_stream: Sink<S::K, S::T>,
    /// (b)
    pub join: Sink<Joined<S>, S::T>,
    /// (c)
    pub count: Sink<(S::K, u64), S::T>,
    pub distinct_keys: Sink<S::K, S::T>,
    pub distinct_pairs: Sink<(S::K, S::V), S::T>,
    /// (d)
    pub min_max: Sink<(S::K, S::V), S::T>,
    pub sum: Sink<(S::K, u64), S::T>,
    /// Invariant violations seen inside the computation.
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Batch shapes of the `(key, val)` trace under test (unused on the upstream side).
    pub stats: Arc<Mutex<ChunkStats>>,
}

/// The same fields for every side; derives would ask the flavor's types for `Default`.
macro_rules! side_fields {
    ($($field:ident),*) => {
        impl<S: Flavor> Default for Side<S> {
            fn default() -> Self {
                Side { $($field: Default::default()),* }
            }
        }
        impl<S: Flavor> Clone for Side<S> {
            fn clone(&self) -> Self {
                Side { $($field: Arc::clone(&self.$field)),* }
            }
        }
    };
}
side_fields!(
    reads,
    key_reads,
    stream,
    key_stream,
    join,
    count,
    distinct_keys,
    distinct_pairs,
    min_max,
    sum,
    errors,
    stats
);

fn sink<'s, D: Clone + 'static, T: OracleTime>(
    c: VecCollection<'s, T, D, Diff>,
    to: &Sink<D, T>,
    probe: &ProbeHandle<T>,
) {
    let to = Arc::clone(to);
    c.inspect(move |x| to.lock().unwrap().push(x.clone()))
        .probe_with(probe);
}

type UpstreamSpine<S> = ValSpine<<S as Flavor>::K, <S as Flavor>::V, <S as Flavor>::T, Diff>;

/// The traces a worker reads after each round.
struct Traces<S: Flavor> {
    test_kv: TraceAgent<TestSpine<S::K, S::V, S::T>>,
    test_k: TraceAgent<TestSpine<S::K, (), S::T>>,
    upstream_kv: TraceAgent<UpstreamSpine<S>>,
    upstream_k: TraceAgent<KeySpine<S::K, S::T, Diff>>,
}

/// Builds both sides over `pairs` and `probes`: (a) the arrangements and their batch
/// streams, (b) `join_core`, (c) `count` and `distinct`, (d) two reduces.
fn build<'s, S: Flavor>(
    pairs: VecCollection<'s, S::T, (S::K, S::V), Diff>,
    probes: VecCollection<'s, S::T, (S::K, S::V), Diff>,
    paging: &Paging,
    probe: &ProbeHandle<S::T>,
    test: &Side<S>,
    upstream: &Side<S>,
) -> Traces<S> {
    type K<S> = <S as Flavor>::K;
    type V<S> = <S as Flavor>::V;
    type T<S> = <S as Flavor>::T;
    let keys = pairs.clone().map(|(k, _)| k);

    // ---- under test ----
    let arranged = arrange_under_test(pairs.clone(), "UnderTest", paging);
    let probe_arranged = arrange_under_test(probes.clone(), "UnderTestProbe", paging);
    let keys_arranged = arrange_under_test(keys.clone().map(|k| (k, ())), "UnderTestKeys", paging);

    // (a) the batch streams.
    sink(
        arranged
            .clone()
            .as_collection(|k, v| (own::<K<S>>(k), own::<V<S>>(v))),
        &test.stream,
        probe,
    );
    sink(
        keys_arranged.clone().as_collection(|k, _v| own::<K<S>>(k)),
        &test.key_stream,
        probe,
    );
    // (b) join_core: both sides of the same trace type.
    sink(
        arranged.clone().join_core(probe_arranged, |k, v1, v2| {
            Some((own::<K<S>>(k), own::<V<S>>(v1), own::<V<S>>(v2)))
        }),
        &test.join,
        probe,
    );
    // (c) count and distinct, upstream's shapes over a key-only arrangement.
    let count = keys_arranged
        .clone()
        .reduce_abelian::<_, TestBuilder<K<S>, u64, T<S>>, TestSpine<K<S>, u64, T<S>>, _, _>(
            "Count",
            |_k, s, t| t.push((s[0].1 as u64, 1)),
            |buf, k, upds| fill(buf, own::<K<S>>(k), upds),
        );
    sink(
        count.as_collection(|k, c| (own::<K<S>>(k), c)),
        &test.count,
        probe,
    );
    let distinct_keys = keys_arranged
        .clone()
        .reduce_abelian::<_, TestBuilder<K<S>, (), T<S>>, TestSpine<K<S>, (), T<S>>, _, _>(
            "DistinctKeys",
            |_k, _s, t| t.push(((), 1)),
            |buf, k, upds| fill(buf, own::<K<S>>(k), upds),
        );
    sink(
        distinct_keys.as_collection(|k, _| own::<K<S>>(k)),
        &test.distinct_keys,
        probe,
    );
    let distinct_pairs = arranged
        .clone()
        .reduce_abelian::<_, TestBuilder<K<S>, V<S>, T<S>>, TestSpine<K<S>, V<S>, T<S>>, _, _>(
            "DistinctPairs",
            |_k, s, t| t.extend(s.iter().map(|&(v, _)| (own::<V<S>>(v), 1))),
            |buf, k, upds| fill(buf, own::<K<S>>(k), upds),
        );
    sink(
        distinct_pairs.as_collection(|k, v| (own::<K<S>>(k), own::<V<S>>(v))),
        &test.distinct_pairs,
        probe,
    );
    // (d) reduces.
    let mm = arranged
        .clone()
        .reduce_abelian::<_, TestBuilder<K<S>, V<S>, T<S>>, TestSpine<K<S>, V<S>, T<S>>, _, _>(
            "MinMax",
            |_k, s, t| {
                t.extend(
                    min_max(s.iter().map(|&(v, _)| own::<V<S>>(v)))
                        .into_iter()
                        .map(|v| (v, 1)),
                )
            },
            |buf, k, upds| fill(buf, own::<K<S>>(k), upds),
        );
    sink(
        mm.as_collection(|k, v| (own::<K<S>>(k), own::<V<S>>(v))),
        &test.min_max,
        probe,
    );
    let sum = arranged
        .clone()
        .reduce_abelian::<_, TestBuilder<K<S>, u64, T<S>>, TestSpine<K<S>, u64, T<S>>, _, _>(
            "Sum",
            |_k, s, t| {
                t.push((
                    weighted_sum::<S>(s.iter().map(|&(v, r)| (own::<V<S>>(v), r))),
                    1,
                ))
            },
            |buf, k, upds| fill(buf, own::<K<S>>(k), upds),
        );
    sink(
        sum.as_collection(|k, v| (own::<K<S>>(k), v)),
        &test.sum,
        probe,
    );

    // ---- upstream (OrdValSpine / OrdKeySpine) ----
    let o_arranged = pairs.clone().arrange_by_key();
    let o_probe = probes.arrange_by_key();
    let o_keys = keys.clone().arrange_by_self();
    sink(
        o_arranged
            .clone()
            .as_collection(|k: &K<S>, v: &V<S>| (k.clone(), v.clone())),
        &upstream.stream,
        probe,
    );
    sink(
        o_keys.clone().as_collection(|k: &K<S>, _v| k.clone()),
        &upstream.key_stream,
        probe,
    );
    sink(
        o_arranged
            .clone()
            .join_core(o_probe, |k: &K<S>, v1: &V<S>, v2: &V<S>| {
                Some((k.clone(), v1.clone(), v2.clone()))
            }),
        &upstream.join,
        probe,
    );
    sink(
        keys.clone().count().map(|(k, c)| (k, c as u64)),
        &upstream.count,
        probe,
    );
    sink(keys.distinct(), &upstream.distinct_keys, probe);
    sink(pairs.clone().distinct(), &upstream.distinct_pairs, probe);
    sink(
        pairs.clone().reduce(|_k, s, t| {
            t.extend(
                min_max(s.iter().map(|(v, _)| (*v).clone()))
                    .into_iter()
                    .map(|v| (v, 1)),
            )
        }),
        &upstream.min_max,
        probe,
    );
    sink(
        pairs.reduce(|_k, s, t| {
            t.push((
                weighted_sum::<S>(s.iter().map(|(v, r)| ((*v).clone(), *r))),
                1,
            ))
        }),
        &upstream.sum,
        probe,
    );

    Traces {
        test_kv: arranged.trace,
        test_k: keys_arranged.trace,
        upstream_kv: o_arranged.trace,
        upstream_k: o_keys.trace,
    }
}

// ------------------------------ reading traces ------------------------------

/// Contents of a trace accumulated at each of `queries`, read through a merged cursor over
/// its batches through `upper` (which must cover every query), into `out` (added to, so the
/// workers' shares sum). Also checks that the cursor yields strictly increasing `(key, val)`s,
/// the invariant every operator relies on; a violation goes to `errors`.
#[allow(clippy::too_many_arguments)]
fn read_trace<Tr, D: Ord + Clone + std::fmt::Debug, T: OracleTime>(
    trace: &mut Tr,
    round: u64,
    upper: &T,
    queries: &[T],
    errors: &Mutex<Vec<String>>,
    out: &Reads<D, T>,
    mut own: impl FnMut(BatchKey<'_, Tr>, BatchVal<'_, Tr>) -> D,
) where
    Tr: TraceReader<Time = T, Batch: Navigable>,
    BatchCursor<Tr>: Cursor<Time = T, Diff = Diff>,
{
    let batches = trace
        .batches_through(Antichain::from_elem(*upper).borrow())
        .expect("batches_through");
    let (mut cursor, storage) = cursor_list(batches);
    let mut got: Vec<BTreeMap<D, Diff>> = vec![BTreeMap::new(); queries.len()];
    let mut times: Vec<(T, Diff)> = Vec::new();
    let mut last: Option<D> = None;
    while let Some(k) = cursor.get_key(&storage) {
        while let Some(v) = cursor.get_val(&storage) {
            times.clear();
            cursor.map_times(&storage, |t, d| {
                times.push((
                    <BatchCursor<Tr> as Cursor>::owned_time(t),
                    <BatchCursor<Tr> as Cursor>::owned_diff(d),
                ))
            });
            let d = own(k, v);
            if let Some(prev) = &last {
                if *prev >= d {
                    errors.lock().unwrap().push(format!(
                        "cursor order violated at round {round}: {prev:?} then {d:?}"
                    ));
                }
            }
            for (q, at_q) in queries.iter().zip(&mut got) {
                let acc: Diff = times
                    .iter()
                    .filter(|(t, _)| t.less_equal(q))
                    .map(|(_, r)| r)
                    .sum();
                if acc != 0 {
                    at_q.insert(d.clone(), acc);
                }
            }
            last = Some(d);
            cursor.step_val(&storage);
        }
        cursor.step_key(&storage);
    }
    let mut out = out.lock().unwrap();
    for (q, at_q) in queries.iter().zip(got) {
        let all = out.entry((round, *q)).or_default();
        for (d, r) in at_q {
            *all.entry(d).or_insert(0) += r;
        }
    }
}

/// Shape of the batches under test, to show the cases reach multi-chunk batches and keys
/// that straddle chunk boundaries, and to check the grading invariant after `settle`.
#[derive(Clone, Debug, Default)]
pub(super) struct ChunkStats {
    pub batches: usize,
    pub multi_chunk_batches: usize,
    pub max_chunks: usize,
    pub max_batch_len: usize,
    /// Adjacent chunks where the last key of one is the first key of the next.
    pub key_straddles: usize,
    /// Adjacent chunks where the last `(key, val)` of one is the first of the next.
    pub val_straddles: usize,
    /// Key straddles where a fence value is too wide to be kept resident (over
    /// [`FENCE_VAL_BYTES`]), so the batch cursor compares values read from chunk bodies.
    pub wide_fence_straddles: usize,
}

/// spillway keeps a chunk's first and last value resident only up to this many encoded
/// bytes (`FENCE_VAL_BYTES` in `chunk/body.rs`).
pub(super) const FENCE_VAL_BYTES: usize = 256;

/// The bytes `field` takes in a chunk's row measure: its width, or an 8-byte end offset and
/// its encoding (spillway's `update_bytes`).
fn field_bytes<X: PagedData>(field: X) -> usize {
    X::WIDTH.unwrap_or_else(|| 8 + field.encoded_len())
}

/// The encoded bytes of `chunk`'s records, which chunks are cut and graded by, measured by
/// walking the chunk with its own cursor.
fn chunk_bytes<K: Record, V: Record, T: OracleTime>(chunk: &PagedChunk<K, V, T, Diff>) -> usize {
    let mut cursor = chunk.cursor();
    let mut bytes = 0;
    while let Some(k) = cursor.get_key(chunk) {
        let key = field_bytes(own::<K>(k));
        while let Some(v) = cursor.get_val(chunk) {
            let val = field_bytes(own::<V>(v));
            cursor.map_times(chunk, |t, r| {
                bytes += key
                    + val
                    + field_bytes(<PagedCursor<K, V, T, Diff> as Cursor>::owned_time(t))
                    + field_bytes(<PagedCursor<K, V, T, Diff> as Cursor>::owned_diff(r));
            });
            cursor.step_val(chunk);
        }
        cursor.step_key(chunk);
    }
    bytes
}

/// Whether `chunks` are graded by bytes (spillway's invariant after `settle`): each holds at
/// most `TARGET_BYTES` or is one record, and each two neighbours hold more together. For
/// fixed-width records this is differential's `is_graded` by records, checked as well.
fn graded<K: Record, V: Record, T: OracleTime>(
    chunks: &[PagedChunk<K, V, T, Diff>],
) -> Result<(), String> {
    let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    let bytes: Vec<usize> = match (K::WIDTH, V::WIDTH, T::WIDTH, Diff::WIDTH) {
        (Some(k), Some(v), Some(t), Some(r)) => lens.iter().map(|n| n * (k + v + t + r)).collect(),
        _ => chunks.iter().map(chunk_bytes).collect(),
    };
    let one_over = bytes
        .iter()
        .zip(&lens)
        .any(|(&b, &n)| b > TARGET_BYTES && n > 1);
    let mergeable = bytes.windows(2).any(|w| w[0] + w[1] <= TARGET_BYTES);
    if one_over || mergeable {
        return Err(format!(
            "batch not graded by bytes ({TARGET_BYTES}): chunk bytes {bytes:?}, records {lens:?}"
        ));
    }
    let fixed = K::WIDTH.is_some() && V::WIDTH.is_some() && T::WIDTH.is_some();
    if fixed && !is_graded(chunks) {
        return Err(format!(
            "batch not graded (TARGET {}): chunk lengths {lens:?}",
            <PagedChunk<K, V, T, Diff> as Chunk>::TARGET
        ));
    }
    Ok(())
}

/// Per-batch checks of the batches under test, beyond what the merged cursor shows (the
/// batches are `Rc<PagedBatch>`). Violations go to `errors`:
///
/// * grading after `settle` ([`graded`]);
/// * the batch cursor (`PagedBatchCursor`) over the batch yields strictly increasing
///   `(key, val)`s and visits every record exactly once;
/// * `seek_key` (forward, to every other key) and `rewind_vals` find each key's records.
fn check_batches<K: Record, V: Record, T: OracleTime>(
    batches: &[TestBatch<K, V, T>],
    stats: &mut ChunkStats,
    errors: &Mutex<Vec<String>>,
) {
    let fail = |msg: String| errors.lock().unwrap().push(msg);
    for batch in batches {
        let storage: &spillway_trace::PagedBatch<K, V, T, Diff> = batch;
        let chunks = storage.chunks();
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        stats.batches += 1;
        stats.max_chunks = stats.max_chunks.max(chunks.len());
        stats.max_batch_len = stats.max_batch_len.max(total);
        if chunks.len() > 1 {
            stats.multi_chunk_batches += 1;
        }
        if let Err(e) = graded(chunks) {
            fail(e);
        }
        for pair in chunks.windows(2) {
            let (last, first) = (pair[0].bounds().1, pair[1].bounds().0);
            if last.0 == first.0 {
                stats.key_straddles += 1;
                let wide = |v| own::<V>(v).encoded_len() > FENCE_VAL_BYTES;
                if wide(last.1) || wide(first.1) {
                    stats.wide_fence_straddles += 1;
                }
            }
            if last.0 == first.0 && last.1 == first.1 {
                stats.val_straddles += 1;
            }
        }

        // A full walk: order, and every record exactly once.
        let mut cursor = storage.cursor();
        let mut prev = None;
        let mut keys = Vec::new();
        let mut seen = 0usize;
        while let Some(k) = cursor.get_key(storage) {
            let mut in_key = 0usize;
            while let Some(v) = cursor.get_val(storage) {
                if prev.is_some_and(|p| p >= (k, v)) {
                    fail(format!("batch cursor: (key, val) not strictly increasing after {seen} records of {total}"));
                }
                prev = Some((k, v));
                cursor.map_times(storage, |_, _| in_key += 1);
                cursor.step_val(storage);
            }
            keys.push((k, in_key));
            seen += in_key;
            cursor.step_key(storage);
        }
        if seen != total {
            fail(format!(
                "batch cursor visited {seen} records, batch holds {total} in {} chunks",
                chunks.len()
            ));
        }

        // Seeks on a fresh cursor, and a rewind within each sought key.
        let mut seeker = storage.cursor();
        for &(k, in_key) in keys.iter().step_by(2) {
            seeker.seek_key(storage, k);
            if seeker.get_key(storage) != Some(k) {
                fail("batch cursor: seek_key missed a key the walk found".to_string());
                continue;
            }
            for pass in ["seek_key", "rewind_vals"] {
                let mut found = 0usize;
                while seeker.get_val(storage).is_some() {
                    seeker.map_times(storage, |_, _| found += 1);
                    seeker.step_val(storage);
                }
                if found != in_key {
                    fail(format!("batch cursor: after {pass}, {found} records under a key, the walk saw {in_key}"));
                }
                seeker.rewind_vals(storage);
            }
        }
    }
}

/// Whether `trace`'s upper is beyond `time`.
fn upper_beyond<Tr: TraceReader<Time: OracleTime>>(trace: &mut Tr, time: &Tr::Time) -> bool {
    let mut upper = Antichain::new();
    trace.read_upper(&mut upper);
    upper.elements().iter().all(|u| time.less_equal(u))
}

/// After round `completed`: physical compaction to the round's end (so the spine may merge
/// everything sealed), logical compaction to the case's frontier (none when `lag` is `None`,
/// so merged batches keep every time).
fn advance_compaction<S: Flavor, Tr: TraceReader<Time = S::T>>(
    trace: &mut Tr,
    case: &Case<S>,
    completed: u64,
) {
    if let Some(logical) = case.frontier_after(completed) {
        trace.set_logical_compaction(logical.borrow());
    }
    trace.set_physical_compaction(Antichain::from_elem(S::T::start(completed + 1)).borrow());
}

// ------------------------------- the computation -------------------------------

/// What one run produced: both sides, and the pool's counters.
pub(super) struct Run<S: Flavor> {
    pub test: Side<S>,
    pub upstream: Side<S>,
    pub pool: PoolStats,
}

/// Runs `case` on `workers` workers.
pub(super) fn run<S: Flavor>(case: &Case<S>, workers: usize) -> Result<Run<S>, String> {
    let pool = make_pool(case);
    let pool_out = pool.clone();
    let case = Arc::new(case.clone());
    let case_out = Arc::clone(&case);
    let (test, upstream) = (Side::<S>::default(), Side::<S>::default());
    let (test_out, upstream_out) = (test.clone(), upstream.clone());

    let mut config = if workers == 1 {
        timely::Config::thread()
    } else {
        timely::Config::process(workers)
    };
    if let Some(effort) = case.merge_effort {
        differential_dataflow::configure(
            &mut config.worker,
            &differential_dataflow::Config {
                idle_merge_effort: Some(effort),
            },
        );
    }

    let guards = timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let paging = make_paging(&pool, &case);
        let probe = ProbeHandle::<S::T>::new();
        let (test, upstream) = (test.clone(), upstream.clone());

        let (mut data_in, mut probe_in, mut traces) = worker.dataflow::<u64, _, _>(|scope| {
            let (data_in, pairs) = scope.new_collection::<((S::K, S::V), S::T), Diff>();
            let (probe_in, probes) = scope.new_collection::<((S::K, S::V), S::T), Diff>();
            let traces = S::T::scoped(scope, pairs, probes, |pairs, probes| {
                build::<S>(pairs, probes, &paging, &probe, &test, &upstream)
            });
            (data_in, probe_in, traces)
        });

        // Each worker enters its share of each round's updates; everything else is global.
        for r in 0..case.total_rounds() {
            for (input, updates) in [(&mut data_in, &case.data), (&mut probe_in, &case.probe)] {
                for (_, u) in updates
                    .iter()
                    .enumerate()
                    .filter(|(i, u)| i % peers == index && u.round == r)
                {
                    input.update((u.data.clone(), u.time), u.diff);
                }
                input.advance_to(r + 1);
                input.flush();
            }
            let next = S::T::start(r + 1);
            worker.step_while(|| {
                probe.less_than(&next)
                    || !upper_beyond(&mut traces.test_kv, &next)
                    || !upper_beyond(&mut traces.test_k, &next)
                    || !upper_beyond(&mut traces.upstream_kv, &next)
                    || !upper_beyond(&mut traces.upstream_k, &next)
            });
            for _ in 0..case.settle_steps {
                worker.step();
            }

            // (a) contents at round `r`'s query times, read by cursor (after compaction up to
            // the last round).
            let queries = case.queries(r);
            read_trace(
                &mut traces.test_kv,
                r,
                &next,
                &queries,
                &test.errors,
                &test.reads,
                |k, v| (own::<S::K>(k), own::<S::V>(v)),
            );
            let batches = traces
                .test_kv
                .batches_through(Antichain::from_elem(next).borrow())
                .expect("batches_through");
            check_batches(&batches, &mut test.stats.lock().unwrap(), &test.errors);
            read_trace(
                &mut traces.test_k,
                r,
                &next,
                &queries,
                &test.errors,
                &test.key_reads,
                |k, _v| own::<S::K>(k),
            );
            read_trace(
                &mut traces.upstream_kv,
                r,
                &next,
                &queries,
                &upstream.errors,
                &upstream.reads,
                |k: &S::K, v: &S::V| (k.clone(), v.clone()),
            );
            read_trace(
                &mut traces.upstream_k,
                r,
                &next,
                &queries,
                &upstream.errors,
                &upstream.key_reads,
                |k: &S::K, _v| k.clone(),
            );

            advance_compaction(&mut traces.test_kv, &case, r);
            advance_compaction(&mut traces.upstream_kv, &case, r);
            advance_compaction(&mut traces.test_k, &case, r);
            advance_compaction(&mut traces.upstream_k, &case, r);
        }

        drop((data_in, probe_in));
        drop(traces);
        worker.step_while(|| !probe.done());
    })?;

    let mut errors = Vec::new();
    for (i, res) in guards.join().into_iter().enumerate() {
        if let Err(e) = res {
            errors.push(format!("worker {i}: {e}"));
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let stats = pool_out.stats();
    check_pool(&stats, &case_out).map_err(|e| format!("pool: {e}"))?;
    Ok(Run {
        test: test_out,
        upstream: upstream_out,
        pool: stats,
    })
}

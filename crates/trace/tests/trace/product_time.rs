//! Partially ordered times: a paged arrangement at `Product<u64, u32>` time against upstream's
//! `OrdValSpine` and a from-scratch model (proptest).
//!
//! Random updates, with retractions of earlier ones, land at random `Product` times in the
//! future of the input's frontier, so the traces hold many mutually incomparable times
//! (`(3, 0)` and `(2, 2)`, say). After each round both traces are read through a cursor and
//! accumulated at every query time beyond their logical compaction frontier, which moves on
//! as an antichain of *two incomparable elements* (`{(m, c), (m + 1, 0)}`), so merges advance
//! times by a frontier whose join with an update's time is not the larger of the two.
//! Accumulations at times beyond the frontier must survive advancing unchanged; they are
//! compared between the paged trace, upstream's, and the model (every update whose time is
//! less or equal to the query time), at 1 and 2 workers, paging at a tiny budget. The paged
//! arrangement's batch stream (`as_collection`) is checked against the model too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::{
    BatchCursor, BatchKey, BatchVal, Cursor, Navigable, TraceReader,
};
use differential_dataflow::{AsCollection, VecCollection};
use spillway_pool::{ExtentBackend, Pool, PoolConfig};
use spillway_trace::{ArrangePaged, Paging, PagingPolicy};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::order::{PartialOrder, Product};
use timely::progress::Antichain;

type Time = Product<u64, u32>;
type Diff = isize;
type Data = (u64, u64);

/// Largest inner coordinate of an update's time; queries go one past it.
const INNER: u32 = 3;

#[derive(Clone, Debug)]
struct Upd {
    round: u64,
    data: Data,
    time: Time,
    diff: Diff,
}

#[derive(Clone, Debug)]
struct Case {
    updates: Vec<Upd>,
    rounds: u64,
    /// Logical compaction trails the input by this many rounds (`None`: never).
    lag: Option<u64>,
    /// The inner coordinate of the frontier's first element, `{(m, cut), (m + 1, 0)}`.
    cut: u32,
    budget: u64,
    merge_effort: Option<isize>,
    settle_steps: usize,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[allow(clippy::too_many_arguments)]
fn gen_case(
    seed: u64,
    n: usize,
    keys: u64,
    vals: u64,
    rounds: u64,
    retract_pct: u64,
    lag: Option<u64>,
    cut: u32,
    budget: u64,
    merge_effort: Option<isize>,
    settle_steps: usize,
) -> Case {
    let mut rng = Rng(seed | 1);
    let mut updates: Vec<Upd> = Vec::with_capacity(n);
    for i in 0..n {
        // Rounds in order; each update lands at or after its round, up to two rounds later,
        // at any inner coordinate: times of one round are mutually incomparable.
        let round = (i as u64 * rounds) / n as u64;
        let time = Product::new(
            round + rng.below(3).min(rounds - 1 - round),
            rng.below(INNER as u64 + 1) as u32,
        );
        let (data, diff) = if !updates.is_empty() && rng.below(100) < retract_pct {
            let earlier = &updates[rng.below(updates.len() as u64) as usize];
            (earlier.data, -earlier.diff)
        } else {
            let diff = match rng.below(5) {
                0 => -1,
                1 => 2,
                _ => 1,
            };
            ((rng.below(keys), rng.below(vals)), diff)
        };
        updates.push(Upd {
            round,
            data,
            time,
            diff,
        });
    }
    Case {
        updates,
        rounds,
        lag,
        cut,
        budget,
        merge_effort,
        settle_steps,
    }
}

/// The logical compaction frontier after round `r`, or `None` while it stays at the minimum.
fn logical_frontier(case: &Case, r: u64) -> Option<Antichain<Time>> {
    let m = (r + 1).checked_sub(case.lag?)?;
    let mut frontier = Antichain::new();
    frontier.insert(Product::new(m, case.cut));
    frontier.insert(Product::new(m + 1, 0));
    Some(frontier)
}

/// The times at which round `r`'s reads are compared: every time whose outer coordinate is
/// complete (at most `r`) and which is beyond the compaction frontier in force.
fn query_times(r: u64, frontier: &Antichain<Time>) -> Vec<Time> {
    (0..=r)
        .flat_map(|a| (0..=INNER + 1).map(move |b| Product::new(a, b)))
        .filter(|t| frontier.less_equal(t))
        .collect()
}

/// `(query time, data) -> accumulated diff`, nonzero only.
type Reads = BTreeMap<(Time, Data), Diff>;

/// Accumulates `trace` (complete through `upper`) at each of `queries`. Also checks each
/// batch on its own: `(key, val)`s strictly increasing, and each one's times strictly
/// increasing in `Ord` (sorted and consolidated after advancing by a partially ordered
/// frontier) with no zero diff; violations go to `errors`. Returns the records held.
fn read_at<Tr>(
    trace: &mut Tr,
    upper: Time,
    queries: &[Time],
    own: impl Fn(BatchKey<'_, Tr>, BatchVal<'_, Tr>) -> Data,
    out: &mut Reads,
    errors: &mut Vec<String>,
) -> usize
where
    Tr: TraceReader<Time = Time, Batch: Navigable>,
    BatchCursor<Tr>: Cursor<Time = Time, Diff = Diff>,
{
    let batches = trace
        .batches_through(Antichain::from_elem(upper).borrow())
        .expect("batches_through");
    let mut records = 0;
    for batch in &batches {
        let mut cursor = batch.cursor();
        let mut last: Option<Data> = None;
        while let Some(k) = cursor.get_key(batch) {
            while let Some(v) = cursor.get_val(batch) {
                let data = own(k, v);
                if last.is_some_and(|l| l >= data) {
                    errors.push(format!("batch: {last:?} then {data:?}"));
                }
                last = Some(data);
                let mut prev: Option<Time> = None;
                cursor.map_times(batch, |t, d| {
                    let (t, d) = (
                        <BatchCursor<Tr> as Cursor>::owned_time(t),
                        <BatchCursor<Tr> as Cursor>::owned_diff(d),
                    );
                    records += 1;
                    if prev.is_some_and(|p| p >= t) || d == 0 {
                        errors.push(format!(
                            "batch: {data:?} not sorted and consolidated: {prev:?} then ({t:?}, {d})"
                        ));
                    }
                    prev = Some(t);
                });
                cursor.step_val(batch);
            }
            cursor.step_key(batch);
        }
    }
    let (mut cursor, storage) = cursor_list(batches);
    let mut times: Vec<(Time, Diff)> = Vec::new();
    while let Some(k) = cursor.get_key(&storage) {
        while let Some(v) = cursor.get_val(&storage) {
            let data = own(k, v);
            times.clear();
            cursor.map_times(&storage, |t, d| {
                times.push((
                    <BatchCursor<Tr> as Cursor>::owned_time(t),
                    <BatchCursor<Tr> as Cursor>::owned_diff(d),
                ))
            });
            for q in queries {
                let acc: Diff = times
                    .iter()
                    .filter(|(t, _)| t.less_equal(q))
                    .map(|(_, d)| d)
                    .sum();
                if acc != 0 {
                    *out.entry((*q, data)).or_insert(0) += acc;
                }
            }
            cursor.step_val(&storage);
        }
        cursor.step_key(&storage);
    }
    records
}

/// Moves each update `((data, time), (round, 0), diff)` to `(data, time, diff)`: its own
/// `Product` time, at or after the one it entered at.
fn at_own_times<'s>(
    entered: VecCollection<'s, Time, (Data, Time), Diff>,
) -> VecCollection<'s, Time, Data, Diff> {
    entered
        .inner
        .unary::<CapacityContainerBuilder<Vec<(Data, Time, Diff)>>, _, _, _>(
            Pipeline,
            "AtOwnTimes",
            |_, _| {
                move |input, output| {
                    input.for_each(|cap, updates| {
                        for ((data, time), _, diff) in updates.drain(..) {
                            let at = cap.delayed(&time, output.output_index());
                            output.session(&at).give((data, time, diff));
                        }
                    })
                }
            },
        )
        .as_collection()
}

/// Whether `trace`'s upper is beyond `time`.
fn upper_beyond<Tr: TraceReader<Time = Time>>(trace: &mut Tr, time: &Time) -> bool {
    let mut upper = Antichain::new();
    trace.read_upper(&mut upper);
    upper.elements().iter().all(|u| time.less_equal(u))
}

/// The model: every update whose time is less or equal to each query time.
fn model(updates: &[Upd], queries: &[Time]) -> Reads {
    let mut out = Reads::new();
    for q in queries {
        for u in updates.iter().filter(|u| u.time.less_equal(q)) {
            *out.entry((*q, u.data)).or_insert(0) += u.diff;
        }
    }
    out.retain(|_, d| *d != 0);
    out
}

#[derive(Default)]
struct Observed {
    /// Per round: the paged trace's and upstream's reads.
    paged: BTreeMap<u64, Reads>,
    upstream: BTreeMap<u64, Reads>,
    /// The paged arrangement's batch stream.
    stream: Vec<(Data, Time, Diff)>,
    /// Records the paged trace held at the last read (all workers).
    final_records: usize,
    /// Batches that were not sorted and consolidated.
    errors: Vec<String>,
}

fn run(case: &Case, workers: usize) -> (Observed, spillway_pool::PoolStats) {
    let pool = Pool::new(PoolConfig {
        budget: case.budget,
        extents: ExtentBackend::Memory { capacity: None },
        poison_released_slots: true,
        ..PoolConfig::default()
    })
    .unwrap();
    let observed: Arc<Mutex<Observed>> = Arc::default();
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
    let (shared, pool2, case2) = (observed.clone(), pool.clone(), Arc::new(case.clone()));
    timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let case = case2.clone();
        let paging = Paging::with_policy(
            &pool2,
            PagingPolicy {
                min_bytes: 0,
                ..PagingPolicy::default()
            },
        );
        let probe = ProbeHandle::<Time>::new();
        let sink = shared.clone();
        // timely roots a dataflow at a totally ordered time; `Product` times live in a
        // nested scope. Each update enters at `(round, 0)` carrying its time, and
        // `at_own_times` delays it there.
        let (mut input, mut paged, mut upstream) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(Data, Time), Diff>();
            scope.iterative::<u32, _, _>(|inner| {
                let data = at_own_times(data.enter(inner));
                let paged = data.clone().arrange_by_key_paged(&paging);
                let upstream = data.arrange_by_key();
                paged
                    .clone()
                    .as_collection(|k, v| (k, v))
                    .inspect(move |u| sink.lock().unwrap().stream.push(*u))
                    .probe_with(&probe);
                upstream.stream.clone().probe_with(&probe);
                (input, paged.trace, upstream.trace)
            })
        });
        let mut frontier = Antichain::from_elem(Product::new(0, 0));
        for r in 0..case.rounds {
            for (i, u) in case.updates.iter().enumerate() {
                if u.round == r && i % peers == index {
                    input.update((u.data, u.time), u.diff);
                }
            }
            let next = Product::new(r + 1, 0);
            input.advance_to(r + 1);
            input.flush();
            worker.step_while(|| {
                probe.less_than(&next)
                    || !upper_beyond(&mut paged, &next)
                    || !upper_beyond(&mut upstream, &next)
            });
            for _ in 0..case.settle_steps {
                worker.step();
            }
            let queries = query_times(r, &frontier);
            let (mut got_paged, mut got_upstream) = (Reads::new(), Reads::new());
            let mut errors = Vec::new();
            let own = |k: u64, v: u64| (k, v);
            let records = read_at(&mut paged, next, &queries, own, &mut got_paged, &mut errors);
            let own = |k: &u64, v: &u64| (*k, *v);
            read_at(
                &mut upstream,
                next,
                &queries,
                own,
                &mut got_upstream,
                &mut errors,
            );
            let mut guard = shared.lock().unwrap();
            let seen = &mut *guard;
            seen.errors.extend(errors);
            if r + 1 == case.rounds {
                seen.final_records += records;
            }
            for (mine, all) in [
                (got_paged, &mut seen.paged),
                (got_upstream, &mut seen.upstream),
            ] {
                let all = all.entry(r).or_default();
                for (key, diff) in mine {
                    *all.entry(key).or_insert(0) += diff;
                }
            }
            drop(guard);
            if let Some(logical) = logical_frontier(&case, r) {
                paged.set_logical_compaction(logical.borrow());
                upstream.set_logical_compaction(logical.borrow());
                frontier = logical;
            }
            paged.set_physical_compaction(Antichain::from_elem(next).borrow());
            upstream.set_physical_compaction(Antichain::from_elem(next).borrow());
        }
    })
    .unwrap();
    let stats = pool.stats();
    let observed = std::mem::take(&mut *observed.lock().unwrap());
    (observed, stats)
}

/// Runs `case` at 1 and 2 workers and compares everything; returns the pool's fault-ins and
/// the records the paged trace held at the end.
fn check(case: &Case) -> Result<(u64, usize), String> {
    let (mut fault_ins, mut records) = (0, 0);
    for workers in [1, 2] {
        let (mut seen, stats) = run(case, workers);
        fault_ins += stats.fault_ins;
        if let Some(e) = seen.errors.first() {
            return Err(format!(
                "{workers} worker(s): {} batch violations, first {e}",
                seen.errors.len()
            ));
        }
        records = seen.final_records;
        let mut frontier = Antichain::from_elem(Product::new(0, 0));
        for r in 0..case.rounds {
            let queries = query_times(r, &frontier);
            let want = model(&case.updates, &queries);
            for (side, reads) in [("paged", &mut seen.paged), ("upstream", &mut seen.upstream)] {
                let mut got = reads.remove(&r).unwrap_or_default();
                got.retain(|_, d| *d != 0);
                if got != want {
                    let wrong: Vec<_> = got
                        .iter()
                        .filter(|(k, v)| want.get(k) != Some(v))
                        .take(4)
                        .collect();
                    let missing: Vec<_> = want
                        .iter()
                        .filter(|(k, v)| got.get(k) != Some(v))
                        .take(4)
                        .collect();
                    return Err(format!(
                        "{side}, {workers} worker(s), round {r}, frontier {:?}: wrong {wrong:?}, missing {missing:?}",
                        frontier.elements()
                    ));
                }
            }
            if let Some(logical) = logical_frontier(case, r) {
                frontier = logical;
            }
        }
        // The batch stream is never compacted: compare at every complete time.
        let all: Vec<Time> =
            query_times(case.rounds - 1, &Antichain::from_elem(Product::new(0, 0)));
        consolidate_updates(&mut seen.stream);
        let mut got = Reads::new();
        for q in &all {
            for (data, t, d) in &seen.stream {
                if t.less_equal(q) {
                    *got.entry((*q, *data)).or_insert(0) += d;
                }
            }
        }
        got.retain(|_, d| *d != 0);
        if got != model(&case.updates, &all) {
            return Err(format!(
                "paged batch stream, {workers} worker(s): differs from the model"
            ));
        }
    }
    Ok((fault_ins, records))
}

fn params() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        (50usize..3_000),
        (1u64..400),
        (1u64..6),
        (1u64..6),
        (0u64..40),
        prop_oneof![1 => Just(None), 3 => (0u64..3).prop_map(Some)],
        (0u32..=INNER),
        prop_oneof![Just(64u64 << 10), Just(128 << 10), Just(320 << 10)],
        prop_oneof![Just(None), Just(Some(1_000isize))],
        (0usize..12),
    )
        .prop_map(
            |(seed, n, keys, vals, rounds, retract, lag, cut, budget, effort, settle)| {
                gen_case(
                    seed, n, keys, vals, rounds, retract, lag, cut, budget, effort, settle,
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn product_times_match_ord_val_spine(case in params()) {
        check(&case).map_err(TestCaseError::fail)?;
    }
}

/// A fixed case big enough to page: batches of several chunks evict at a 64 KiB budget and
/// fault back in for merges (advancing by a two-element frontier) and cursor reads.
#[test]
fn product_times_page_and_advance() {
    let case = gen_case(
        0x51F1_5EED,
        60_000,
        2_000,
        4,
        8,
        25,
        Some(1),
        2,
        64 << 10,
        Some(1_000),
        8,
    );
    let (fault_ins, records) = check(&case).unwrap();
    assert!(fault_ins > 0, "nothing faulted in");
    // Compaction really advanced times: the trace holds fewer records than distinct
    // `(data, time)`s were updated.
    let mut distinct: Vec<_> = case
        .updates
        .iter()
        .map(|u| (u.data, u.time, u.diff))
        .collect();
    consolidate_updates(&mut distinct);
    eprintln!(
        "product times: {records} records held, {} distinct updates",
        distinct.len()
    );
    assert!(
        records < distinct.len() * 3 / 4,
        "{records} of {}",
        distinct.len()
    );
}

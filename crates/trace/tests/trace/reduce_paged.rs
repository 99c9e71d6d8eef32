//! The paged reduce tactic and the paged collection operators against upstream.
//!
//! Every test builds one dataflow that computes the same operator twice over the same input,
//! once with upstream's collection operator (on `OrdValSpine`/`OrdKeySpine`) and once with
//! its `_paged` counterpart from `PagedCollectionExt` (a paged arrangement reduced by
//! `PagedReduce`), and compares the consolidated `(data, time, diff)` outputs exactly: same
//! records at the same times. Input arrives over several rounds with retractions, the workers
//! step to each round's end before the next, and paging runs at a tiny budget or is off.
//! Times are `u64`, plus one partially ordered time (a local newtype over `Product<u64, u32>`,
//! [`PTime`]) so that the interesting-times logic meets joins of incomparable times.

use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input as _;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::AsCollection;
use differential_dataflow::{Data, ExchangeData, Hashable, VecCollection};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{
    ArrangePaged, PagedCollectionExt, PagedData, Paging, PagingPolicy, ReducePaged,
};
use timely::dataflow::operators::core::Input as _;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::order::{PartialOrder, Product};
use timely::progress::timestamp::{PathSummary, Refines, Timestamp};

type Out<D, T> = Arc<Mutex<Vec<(D, T, isize)>>>;

/// Consolidated upstream and paged outputs, and the pool's counters.
type Outcome<D, T> = (Vec<(D, T, isize)>, Vec<(D, T, isize)>, PoolStats);

/// Sends `c`'s updates to `out` and probes them with `probe`.
fn sink<T: Timestamp, D: Data>(
    c: VecCollection<'_, T, D, isize>,
    out: &Out<D, T>,
    probe: &ProbeHandle<T>,
) {
    let out = out.clone();
    c.inspect(move |(d, t, r)| out.lock().unwrap().push((d.clone(), t.clone(), *r)))
        .probe_with(probe);
}

/// A pool of four 64 KiB slots (memory extents): with `min_bytes: 0` below, every chunk the
/// paged side seals enters it, and most are evicted and read back.
fn tiny_pool() -> Pool {
    Pool::new(PoolConfig {
        budget: 256 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap()
}

fn paging_for(pool: &Pool, page: bool) -> Paging {
    if page {
        Paging::with_policy(
            pool,
            PagingPolicy {
                min_bytes: 0,
                raw_depth0: false,
                ..PagingPolicy::default()
            },
        )
    } else {
        Paging::disabled()
    }
}

/// What a test dataflow builds: from the input, the upstream and the paged outputs.
type Build<T, K, V, D> = Arc<
    dyn Fn(VecCollection<'_, T, (K, V), isize>, &Paging, &Out<D, T>, &Out<D, T>, &ProbeHandle<T>)
        + Send
        + Sync,
>;

/// Runs `build` over `rounds` on `workers` workers: round `i` runs while the input is at
/// `time(i)`, and dates each update `d` at `date(i, &d)` (at or after `time(i)`, before
/// `time(i + 1)` in the order's sense of completeness); returns the consolidated upstream and
/// paged outputs and the pool's counters.
fn run<T, K, V, D>(
    workers: usize,
    page: bool,
    rounds: Vec<Vec<((K, V), isize)>>,
    time: fn(usize) -> T,
    date: fn(usize, &(K, V)) -> T,
    build: Build<T, K, V, D>,
) -> Outcome<D, T>
where
    T: Timestamp + Lattice + Send + Sync + Refines<()> + timely::order::TotalOrder,
    K: ExchangeData + Sync,
    V: ExchangeData + Sync,
    D: Data + Send,
{
    let pool = tiny_pool();
    let upstream: Out<D, T> = Arc::default();
    let paged: Out<D, T> = Arc::default();
    let (pool2, up2, pa2) = (pool.clone(), upstream.clone(), paged.clone());
    let rounds = Arc::new(rounds);
    timely::execute(timely::Config::process(workers), move |worker| {
        let paging = paging_for(&pool2, page);
        let probe = ProbeHandle::new();
        let mut input = worker.dataflow::<T, _, _>(|scope| {
            let (input, data) = scope.new_input::<Vec<((K, V), T, isize)>>();
            build(data.as_collection(), &paging, &up2, &pa2, &probe);
            input
        });
        for (i, round) in rounds.iter().enumerate() {
            input.advance_to(time(i));
            if worker.index() == 0 {
                for (d, r) in round {
                    input.send((d.clone(), date(i, d), *r));
                }
            }
            input.advance_to(time(i + 1));
            input.flush();
            let until = input.time().clone();
            worker.step_while(|| probe.less_than(&until));
        }
    })
    .unwrap();
    let mut up = upstream.lock().unwrap().clone();
    let mut pa = paged.lock().unwrap().clone();
    consolidate_updates(&mut up);
    consolidate_updates(&mut pa);
    (up, pa, pool.stats())
}

/// The operators under test on `(key, val)` data, upstream and paged: a reduce (count, sum
/// and max of the values per key), `count`, `distinct`, `threshold` of the keys, and the
/// total-order `count_total`, `distinct_total`, `threshold_total` (`total` only with
/// totally ordered times). Outputs are tagged and rendered as strings, one collection each.
fn all_ops<T, K, V>(total: bool) -> Build<T, K, V, (u8, String)>
where
    T: Timestamp + Lattice + PagedData + timely::order::TotalOrder,
    K: ExchangeData + Hashable + PagedData + std::fmt::Debug,
    V: ExchangeData + PagedData + std::fmt::Debug,
{
    Arc::new(move |data, paging, up, pa, probe| {
        let keys = data.clone().map(|(k, _)| k);
        let show = |tag: u8| move |x: String| (tag, x);
        // reduce: the same closure on both sides.
        let logic = |_k: &K, s: &[(&V, isize)], t: &mut Vec<(String, isize)>| {
            let n: isize = s.iter().map(|x| x.1).sum();
            t.push((
                format!("n={n} max={:?} min={:?}", s[s.len() - 1].0, s[0].0),
                1,
            ));
        };
        sink(
            data.clone()
                .reduce(logic)
                .map(|x| format!("{x:?}"))
                .map(show(0)),
            up,
            probe,
        );
        sink(
            data.clone()
                .reduce_paged(paging, logic)
                .map(|x| format!("{x:?}"))
                .map(show(0)),
            pa,
            probe,
        );
        sink(
            keys.clone().count().map(|x| format!("{x:?}")).map(show(1)),
            up,
            probe,
        );
        sink(
            keys.clone()
                .count_paged(paging)
                .map(|x| format!("{x:?}"))
                .map(show(1)),
            pa,
            probe,
        );
        sink(
            keys.clone()
                .distinct()
                .map(|x| format!("{x:?}"))
                .map(show(2)),
            up,
            probe,
        );
        sink(
            keys.clone()
                .distinct_paged(paging)
                .map(|x| format!("{x:?}"))
                .map(show(2)),
            pa,
            probe,
        );
        let thresh = |_k: &K, c: &isize| c.abs() % 3;
        sink(
            keys.clone()
                .threshold(thresh)
                .map(|x| format!("{x:?}"))
                .map(show(3)),
            up,
            probe,
        );
        sink(
            keys.clone()
                .threshold_paged(paging, thresh)
                .map(|x| format!("{x:?}"))
                .map(show(3)),
            pa,
            probe,
        );
        if total {
            sink(
                keys.clone()
                    .count_total()
                    .map(|x| format!("{x:?}"))
                    .map(show(4)),
                up,
                probe,
            );
            sink(
                keys.clone()
                    .count_total_paged(paging)
                    .map(|x| format!("{x:?}"))
                    .map(show(4)),
                pa,
                probe,
            );
            sink(
                keys.clone()
                    .distinct_total()
                    .map(|x| format!("{x:?}"))
                    .map(show(5)),
                up,
                probe,
            );
            sink(
                keys.clone()
                    .distinct_total_paged(paging)
                    .map(|x| format!("{x:?}"))
                    .map(show(5)),
                pa,
                probe,
            );
            sink(
                keys.clone()
                    .threshold_total(|_k, c| c.abs() % 3)
                    .map(|x| format!("{x:?}"))
                    .map(show(6)),
                up,
                probe,
            );
            sink(
                keys.threshold_total_paged(paging, |_k, c| c.abs() % 3)
                    .map(|x| format!("{x:?}"))
                    .map(show(6)),
                pa,
                probe,
            );
        }
    })
}

/// Rounds of `(key, val)` updates: inserts (diff 1 or 2) and retractions of earlier inserts.
fn rounds_strategy(keys: u64, vals: u64) -> impl Strategy<Value = Vec<Vec<((u64, u64), isize)>>> {
    prop::collection::vec(
        prop::collection::vec(
            (
                (0..keys, 0..vals),
                prop::sample::select(vec![-1isize, 1, 1, 2]),
            ),
            0..200,
        ),
        1..5,
    )
}

fn as_strings(rounds: &[Vec<((u64, u64), isize)>]) -> Vec<Vec<((String, String), isize)>> {
    rounds
        .iter()
        .map(|r| {
            r.iter()
                .map(|((k, v), d)| ((format!("k{k:03}"), format!("v{v}")), *d))
                .collect()
        })
        .collect()
}

/// The two sides agree, and the paged side paged (when asked to and given data).
fn check<D: std::fmt::Debug + PartialEq>(
    up: &[D],
    pa: &[D],
    page: bool,
    stats: &PoolStats,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(up, pa);
    prop_assert!(
        !page || up.is_empty() || stats.inserts > 0,
        "nothing paged: {:?}",
        stats
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn reduce_family_u64_matches_upstream(rounds in rounds_strategy(40, 6), workers in 1usize..3, page: bool) {
        let (up, pa, stats) = run(workers, page, rounds, |i| i as u64, |i, _| i as u64, all_ops::<u64, u64, u64>(true));
        check(&up, &pa, page, &stats)?;
    }

    #[test]
    fn reduce_family_strings_match_upstream(rounds in rounds_strategy(40, 6), workers in 1usize..3, page: bool) {
        let (up, pa, stats) = run(workers, page, as_strings(&rounds), |i| i as u64, |i, _| i as u64, all_ops::<u64, String, String>(true));
        check(&up, &pa, page, &stats)?;
    }

    #[test]
    fn reduce_family_partial_order_matches_upstream(rounds in rounds_strategy(20, 5).prop_filter("several rounds", |r| r.len() > 2), workers in 1usize..3, page: bool) {
        let (up, pa, stats) = run(workers, page, rounds, ptime_of_round, ptime_of_update, all_ops_partial());
        check(&up, &pa, page, &stats)?;
    }
}

/// Larger rounds: batches of several chunks (keys straddle chunk boundaries) that page.
#[test]
fn reduce_family_large_rounds_page_and_match() {
    let mut rounds = Vec::new();
    let mut x = 1u64;
    for round in 0..3 {
        let mut r = Vec::new();
        for i in 0..30_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let diff = if round > 0 && i % 4 == 0 { -1 } else { 1 };
            r.push((((x >> 33) % 5_000, (x >> 20) % 7), diff));
        }
        rounds.push(r);
    }
    for workers in [1, 2] {
        let (up, pa, stats) = run(
            workers,
            true,
            rounds.clone(),
            |i| i as u64,
            |i, _| i as u64,
            all_ops::<u64, u64, u64>(true),
        );
        assert!(!up.is_empty());
        assert_eq!(up, pa, "workers {workers}");
        assert!(stats.extent_bytes_written > 0, "nothing paged: {stats:?}");
    }
}

/// A reduce output arrangement pages with nothing but `Paging`: the input stays resident,
/// so every pool insert is the output's.
#[test]
fn reduce_paged_output_pages_by_itself() {
    let pool = tiny_pool();
    let out: Out<(u64, u64), u64> = Arc::default();
    let (pool2, out2) = (pool.clone(), out.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = paging_for(&pool2, true);
        let probe = ProbeHandle::new();
        let mut input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let max = data
                .arrange_by_key_paged(&Paging::disabled())
                .reduce_paged(&paging, |_k, s, t: &mut Vec<(u64, isize)>| {
                    t.push((s[s.len() - 1].0, 1))
                })
                .as_collection(|k, v| (k, v));
            sink(max, &out2, &probe);
            input
        });
        for round in 0..4u64 {
            for i in 0..50_000u64 {
                let x = (round * 50_000 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                input.update((x % 40_000, x >> 44), 1);
            }
            input.advance_to(round + 1);
        }
    })
    .unwrap();
    let mut v = out.lock().unwrap().clone();
    for x in v.iter_mut() {
        x.1 = 0;
    }
    consolidate_updates(&mut v);
    assert_eq!(v.len(), 40_000, "one max per key");
    let stats = pool.stats();
    assert!(
        stats.inserts > 0 && stats.extent_bytes_written > 0,
        "the reduce output never paged: {stats:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A partially ordered time: `Product<u64, u32>` in a local newtype (a user's own time type,
// paged through `#[derive(PagedData)]`: fixed-width, so read by value), so joins of
// incomparable times reach the reduce.

/// `Product<u64, u32>` as a paged time.
#[derive(
    PagedData,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
)]
struct PTime(Product<u64, u32>);

impl PartialOrder for PTime {
    fn less_equal(&self, other: &Self) -> bool {
        self.0.less_equal(&other.0)
    }
}

// Timely's input handles want `TotalOrder` (a marker). The input only advances along the
// chain `(i, 0)`; the partial order comes from the data times `ptime_of_update` gives the
// updates. Nothing order-sensitive under test (the reduces) is bounded by the marker.
impl timely::order::TotalOrder for PTime {}

impl Refines<()> for PTime {
    fn to_inner(_other: ()) -> Self {
        PTime::minimum()
    }
    fn to_outer(self) {}
    fn summarize(_path: PSummary) {}
}

impl Timestamp for PTime {
    type Summary = PSummary;
    fn minimum() -> Self {
        PTime(Product::minimum())
    }
}

/// The identity path summary of [`PTime`].
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct PSummary;

impl PartialOrder for PSummary {
    fn less_equal(&self, _other: &Self) -> bool {
        true
    }
}

impl PathSummary<PTime> for PSummary {
    fn results_in(&self, src: &PTime) -> Option<PTime> {
        Some(*src)
    }
    fn followed_by(&self, _other: &Self) -> Option<Self> {
        Some(PSummary)
    }
}

impl Lattice for PTime {
    fn join(&self, other: &Self) -> Self {
        PTime(self.0.join(&other.0))
    }
    fn meet(&self, other: &Self) -> Self {
        PTime(self.0.meet(&other.0))
    }
}

/// Round `i` runs while the input is at a chain of times that alternately advance the outer
/// and the inner coordinate: `(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), ...`. The input's
/// frontier stays a single time, yet the times of one interval are incomparable with those
/// of the next: their joins lie beyond the next interval's upper bound, so the reduce holds
/// them as pending interesting times across activations.
fn ptime_of_round(i: usize) -> PTime {
    PTime(Product::new(i.div_ceil(2) as u64, (i / 2) as u32))
}

/// Round `i` dates its updates inside its interval `[time(i), time(i + 1))`, spread by
/// `(key + val) % 3`: at `(k, k + h)` in the even rounds (`k = i / 2`), at `(k + 1 + h, k)`
/// in the odd ones.
fn ptime_of_update(i: usize, (k, v): &(u64, u64)) -> PTime {
    let h = (k + v) % 3;
    let k = (i / 2) as u64;
    if i.is_multiple_of(2) {
        PTime(Product::new(k, (k + h) as u32))
    } else {
        PTime(Product::new(k + 1 + h, k as u32))
    }
}

/// The reduce, `count`, `distinct` and `threshold` at partially ordered times.
fn all_ops_partial() -> Build<PTime, u64, u64, (u8, String)> {
    Arc::new(move |data, paging, up, pa, probe| {
        let keys = data.clone().map(|(k, _)| k);
        let show = |tag: u8| move |x: String| (tag, x);
        let logic = |_k: &u64, s: &[(&u64, isize)], t: &mut Vec<(String, isize)>| {
            let n: isize = s.iter().map(|x| x.1).sum();
            t.push((format!("n={n} max={:?}", s[s.len() - 1].0), 1));
        };
        sink(
            data.clone()
                .reduce(logic)
                .map(|x| format!("{x:?}"))
                .map(show(0)),
            up,
            probe,
        );
        sink(
            data.reduce_paged(paging, logic)
                .map(|x| format!("{x:?}"))
                .map(show(0)),
            pa,
            probe,
        );
        sink(
            keys.clone().count().map(|x| format!("{x:?}")).map(show(1)),
            up,
            probe,
        );
        sink(
            keys.clone()
                .count_paged(paging)
                .map(|x| format!("{x:?}"))
                .map(show(1)),
            pa,
            probe,
        );
        sink(
            keys.clone()
                .distinct()
                .map(|x| format!("{x:?}"))
                .map(show(2)),
            up,
            probe,
        );
        sink(
            keys.clone()
                .distinct_paged(paging)
                .map(|x| format!("{x:?}"))
                .map(show(2)),
            pa,
            probe,
        );
        let thresh = |_k: &u64, c: &isize| c.abs() % 3;
        sink(
            keys.clone()
                .threshold(thresh)
                .map(|x| format!("{x:?}"))
                .map(show(3)),
            up,
            probe,
        );
        sink(
            keys.threshold_paged(paging, thresh)
                .map(|x| format!("{x:?}"))
                .map(show(3)),
            pa,
            probe,
        );
    })
}

/// The tactic reads each chunk of its input at most once per interval: a reduce over an
/// imported, fully evicted paged trace faults in at most as many chunks as the trace pooled
/// (differential's cursor tactic re-pinned a chunk on every seek).
#[test]
fn reduce_reads_each_input_chunk_at_most_once() {
    use differential_dataflow::trace::TraceReader;
    use timely::dataflow::operators::Probe;
    use timely::progress::frontier::AntichainRef;

    let pool = tiny_pool();
    let pool2 = pool.clone();
    timely::execute_directly(move |worker| {
        let paging = paging_for(&pool2, true);
        let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            let (probe, _) = arranged.stream.clone().probe();
            (input, probe, arranged.trace)
        });
        for i in 0..200_000u64 {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            input.update((x % 50_000, x >> 40), 1);
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(&1));
        let batches = trace.batches_through(AntichainRef::new(&[1])).unwrap();
        let pooled: usize = batches
            .iter()
            .map(|b| b.chunks().iter().filter(|c| c.is_pooled()).count())
            .sum();
        drop(batches);
        assert!(
            pooled > 10,
            "the input trace should be mostly pooled: {pooled}"
        );
        let before = pool2.stats();
        let out = ProbeHandle::new();
        let keys = worker.dataflow::<u64, _, _>(|scope| {
            let counted = trace
                .import(scope)
                .reduce_paged(&Paging::disabled(), |_k, s, t: &mut Vec<(u64, isize)>| {
                    t.push((s.len() as u64, 1))
                });
            counted.stream.probe_with(&out);
            counted.trace
        });
        drop(input);
        worker.step_while(|| probe.less_than(&u64::MAX) || out.less_than(&u64::MAX));
        let reads = pool2.stats().fault_ins - before.fault_ins;
        assert!(
            reads > 0 && reads <= pooled as u64,
            "{reads} fault-ins for {pooled} pooled input chunks"
        );
        drop(keys);
    });
}

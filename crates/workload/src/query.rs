//! The dataflows of `spillway join` and `spillway reduce`: arrange a generated input on one
//! backend, query it, scan it. Every backend runs the same phases on the same input and must
//! give the same checksums.
//!
//! Phases, each timed on worker 0 and synchronized across workers and processes by probes:
//! 1. **build**: the input's rounds are entered one at a time into an arrangement of
//!    `(key, val)` (one timely time per round); after each round the inputs advance and the
//!    arrangement's trace is compacted to the new round;
//! 2. **query** (`join_s` / `query_s`): a second dataflow imports the finished trace and
//!    either joins it with the probe collection (`join`) or computes a count of records and
//!    the largest value per key (`reduce`); the outputs are summed into order-independent
//!    checksums (see [`crate::input`]);
//! 3. **scan**: every batch of the trace is read with its cursor.
//!
//! Backends: `pool` and `memory` are `PagedSpine` with paging on and off; `dd-ord` is
//! upstream's `OrdValSpine`; `dd-col` is upstream's columnar `ColChunk` trace with its own
//! spill installed (see [`crate::colspill`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::trace::Span;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_trace::spine_levels;
use spillway_trace::{ArrangePaged, JoinVectored, PagedSpine, Paging, ReducePaged};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::dataflow::Stream;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

use crate::colspill;
use crate::input::{record_hash, share, Checksum, InputSpec};
use crate::levels::{Event, LevelsSink, Recorder};
use crate::plan::{Backend, JoinTactic, QueryPlan, Workload};
use crate::progress::Progress;
use crate::report::WorkerResult;

/// Tags that keep the hashes of different outputs apart.
const TAG_JOIN: u64 = 1;
const TAG_COUNT: u64 = 2;
const TAG_MAX: u64 = 3;
const TAG_SCAN: u64 = 4;

/// A word from a cursor item, by value (`PagedChunk`) or by reference (upstream).
pub(crate) trait Word: Copy {
    /// The item as a `u64` (diffs wrap).
    fn word(self) -> u64;
}
impl Word for u64 {
    fn word(self) -> u64 {
        self
    }
}
impl Word for &u64 {
    fn word(self) -> u64 {
        *self
    }
}
impl Word for isize {
    fn word(self) -> u64 {
        self as u64
    }
}
impl Word for &isize {
    fn word(self) -> u64 {
        *self as u64
    }
}

type Data = (u64, u64);
/// An input of `(key, val)` updates.
pub(crate) type Session = InputSession<u64, Data, isize>;

/// Runs the chosen backend on this worker.
pub(crate) fn run_worker(
    worker: &mut Worker,
    plan: &QueryPlan,
    pool: Option<&spillway_pool::Pool>,
    progress: &dyn Progress,
    levels: &LevelsSink,
) -> WorkerResult {
    match plan.backend {
        Backend::Pool | Backend::Memory => {
            let paging = pool.map_or_else(Paging::disabled, |pool| {
                Paging::with_policy(pool, plan.policy)
            });
            // Worker 0 reports the levels of its trace and of its process's pool.
            let recorder = (plan.levels && worker.index() == 0)
                .then(|| RefCell::new(Recorder::new(pool.cloned())));
            let on = |event: Event| {
                if let Some(r) = &recorder {
                    r.borrow_mut().on(event);
                }
            };
            let (result, mut trace) = run_paged(worker, plan, &paging, progress, on);
            if let Some(recorder) = recorder {
                let batches = trace
                    .batches_through(AntichainRef::new(&[]))
                    .expect("the trace is complete");
                let spine = spine_levels(&batches);
                drop((batches, trace));
                let report = recorder.into_inner().finish(spine);
                *levels.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
            }
            result
        }
        Backend::DdOrd => run_ord(worker, plan, progress).0,
        Backend::DdCol => {
            let spill = colspill::install(&plan.scratch_dir(), plan.budget)
                .unwrap_or_else(|e| panic!("spillway: cannot install the dd-col spill: {e}"));
            let result = run_col(worker, plan, progress).0;
            let written = spill
                .stats
                .bytes_written
                .load(std::sync::atomic::Ordering::Relaxed);
            WorkerResult {
                spill_bytes: written as u64,
                ..result
            }
        }
    }
}

/// Updates entered between worker steps: the input queued ahead of the dataflow stays near
/// this many records (2 MiB), whatever the round size, instead of a whole round.
const SLICE: u64 = 1 << 16;

/// The build phase: enters this worker's share of every round, compacting between rounds.
pub(crate) fn build<Tr: TraceReader<Time = u64>>(
    worker: &mut Worker,
    spec: &InputSpec,
    data: &mut Session,
    probe: &ProbeHandle<u64>,
    trace: &mut Tr,
    progress: &dyn Progress,
    mut after_round: impl FnMut(u64),
) {
    let (index, peers) = (worker.index(), worker.peers());
    progress.start("build", spec.rounds);
    for round in 0..spec.rounds {
        let mut entered = 0;
        for i in share(spec.round_range(round), index, peers) {
            entered += 1;
            let u = spec.update(i, round);
            data.update((u.key, u.val), 1);
            if let Some(at) = u.retract_at {
                data.update_at((u.key, u.val), at, -1);
            }
            if entered % SLICE == 0 {
                data.flush();
                worker.step();
            }
        }
        data.advance_to(round + 1);
        data.flush();
        while probe.less_than(&(round + 1)) {
            worker.step();
        }
        let frontier = [round + 1];
        trace.set_logical_compaction(AntichainRef::new(&frontier));
        trace.set_physical_compaction(AntichainRef::new(&frontier));
        progress.step_done(round + 1, entered);
        after_round(round);
    }
}

/// Enters this worker's share of the probes and closes the input.
fn enter_probes(worker: &mut Worker, spec: &InputSpec, mut probes: Session) {
    for (n, j) in share(0..spec.probes, worker.index(), worker.peers()).enumerate() {
        probes.insert(spec.probe(j));
        if (n as u64 + 1).is_multiple_of(SLICE) {
            probes.flush();
            worker.step();
        }
    }
    probes.close();
}

/// Steps until `probe` has seen everything.
fn finish(worker: &mut Worker, probe: &ProbeHandle<u64>) {
    while !probe.done() {
        worker.step();
    }
}

/// Reads every batch of `trace` with its cursor: the checksum of `(key, val)` and the number
/// of updates visited.
fn scan<Tr>(trace: &mut Tr) -> (Checksum, u64)
where
    Tr: TraceReader<Time = u64>,
    Tr::Batch: Navigable,
    for<'a> <<Tr::Batch as Navigable>::Cursor as Cursor>::Key<'a>: Word,
    for<'a> <<Tr::Batch as Navigable>::Cursor as Cursor>::Val<'a>: Word,
    for<'a> <<Tr::Batch as Navigable>::Cursor as Cursor>::DiffGat<'a>: Word,
{
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("the trace is complete");
    let (mut sum, mut updates) = (Checksum::default(), 0u64);
    for batch in &batches {
        updates += sum_batch(batch, TAG_SCAN, &mut sum);
    }
    (sum, updates)
}

/// Adds every update `(key, val, time, diff)` of `batch` to `sum` as `record_hash(tag, key,
/// val, 0)` times `diff`, reading it with its cursor; returns the updates visited.
fn sum_batch<B>(batch: &B, tag: u64, sum: &mut Checksum) -> u64
where
    B: Navigable,
    for<'a> <B::Cursor as Cursor>::Key<'a>: Word,
    for<'a> <B::Cursor as Cursor>::Val<'a>: Word,
    for<'a> <B::Cursor as Cursor>::DiffGat<'a>: Word,
{
    let mut updates = 0;
    let mut cursor = batch.cursor();
    while cursor.key_valid(batch) {
        let key = cursor.key(batch).word();
        while cursor.val_valid(batch) {
            let hash = record_hash(tag, key, cursor.val(batch).word(), 0);
            cursor.map_times(batch, |_t, r| {
                sum.add(hash, r.word() as i64);
                updates += 1;
            });
            cursor.step_val(batch);
        }
        cursor.step_key(batch);
    }
    updates
}

/// Sums the batches of an arranged `stream` into `acc` with [`sum_batch`], and returns a
/// stream to probe for when they are summed. The same sum as `as_collection` and `inspect`
/// over it, without turning each batch into records in the dataflow's queues first (a
/// reduce's output batch holds a record for every key: that would hold memory proportional
/// to the keys).
fn sum_batches<'scope, B>(
    stream: Stream<'scope, u64, Vec<Span<u64, B>>>,
    tag: u64,
    acc: Rc<Cell<Checksum>>,
) -> Stream<'scope, u64, Vec<()>>
where
    B: Navigable + Clone + 'static,
    for<'a> <B::Cursor as Cursor>::Key<'a>: Word,
    for<'a> <B::Cursor as Cursor>::Val<'a>: Word,
    for<'a> <B::Cursor as Cursor>::DiffGat<'a>: Word,
{
    stream.unary::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "SumBatches",
        move |_, _| {
            move |input, _output| {
                input.for_each(|_time, spans| {
                    let mut sum = acc.get();
                    for batch in spans.iter().filter_map(|span| span.inner.as_ref()) {
                        sum_batch(batch, tag, &mut sum);
                    }
                    acc.set(sum);
                });
            }
        },
    )
}

/// Shared by the query's inspect closures and batch sums: the checksum of everything they saw.
fn accumulator() -> Rc<Cell<Checksum>> {
    Rc::new(Cell::new(Checksum::default()))
}

fn add(acc: &Cell<Checksum>, hash: u64, diff: isize) {
    let mut c = acc.get();
    c.add(hash, diff as i64);
    acc.set(c);
}

/// The three phases on one backend. `arrange` turns a collection `$c` into the backend's
/// arrangement; `join` joins the imported arrangement `$data` with the probes' `$probes`
/// into `(key, val, probe)` records; `reduce = |$d| ($count, $max)` computes the two reduce
/// outputs of the imported arrangement `$d` as arrangements, their logic written with
/// `count_logic!` and `max_logic!`. Cursor items are read through [`Word`], so one body
/// serves by-value and by-reference backends alike.
macro_rules! phases {
    ($worker:expr, $plan:expr, $phases:expr,
     arrange = |$c:ident| $arrange:expr,
     join = |$data:ident, $probes:ident| $join:expr,
     reduce = |$rdata:ident| ($count:expr, $max:expr),
     on = $on:expr) => {{
        let (worker, plan, progress): (&mut Worker, &QueryPlan, &dyn Progress) =
            ($worker, $plan, $phases);
        let on = $on;
        let spec = plan.input;
        let t0 = Instant::now();
        let (mut data, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, $c) = scope.new_collection::<Data, isize>();
            let arranged = $arrange;
            let (probe, _) = arranged.stream.clone().probe();
            (input, probe, arranged.trace)
        });
        build(
            worker,
            &spec,
            &mut data,
            &probe,
            &mut trace,
            progress,
            |round| on(Event::Round(round)),
        );
        drop(data);
        finish(worker, &probe);
        let build_s = t0.elapsed().as_secs_f64();

        on(Event::QueryStart);
        let t1 = Instant::now();
        let acc = accumulator();
        progress.start(plan.workload.query_phase(), 1);
        match plan.workload {
            Workload::Join => {
                let a = acc.clone();
                let (probes, out) = worker.dataflow::<u64, _, _>(|scope| {
                    let $data = trace.import(scope);
                    let (input, $c) = scope.new_collection::<Data, isize>();
                    let $probes = $arrange;
                    let out = $join.inspect(move |((k, v, q), _t, r)| {
                        add(&a, record_hash(TAG_JOIN, *k, *v, *q), *r)
                    });
                    (input, out.inner.probe().0)
                });
                enter_probes(worker, &spec, probes);
                finish(worker, &out);
            }
            Workload::Reduce => {
                let (a, b) = (acc.clone(), acc.clone());
                let out = worker.dataflow::<u64, _, _>(|scope| {
                    let $rdata = trace.import(scope);
                    let (count, max) = ($count, $max);
                    let (probe, _) = sum_batches(count.stream, TAG_COUNT, a).probe();
                    sum_batches(max.stream, TAG_MAX, b).probe_with(&probe);
                    probe
                });
                finish(worker, &out);
            }
        }
        let query_s = t1.elapsed().as_secs_f64();
        on(Event::QueryEnd);
        progress.start("scan", 1);
        let t2 = Instant::now();
        let (scan_sum, scan_updates) = scan(&mut trace);
        let scan_s = t2.elapsed().as_secs_f64();
        let result = WorkerResult {
            build_s,
            query_s,
            scan_s,
            output: acc.get(),
            scan: scan_sum,
            scan_updates,
            spill_bytes: 0,
        };
        (result, trace)
    }};
}

/// The logic of the `Count` reduce: the key's number of records.
macro_rules! count_logic {
    () => {
        |_k, s, t| t.push((count_of(s.iter().map(|&(_, r)| r)), 1))
    };
}

/// The logic of the `Max` reduce: the key's largest value.
macro_rules! max_logic {
    () => {
        |_k, s, t| t.push((s[s.len() - 1].0.word(), 1))
    };
}

/// The trace of the paged backends.
type PagedTrace = TraceAgent<PagedSpine<u64, u64, u64, isize>>;

/// `PagedSpine`, paging on or off; `on` hears the phase events. Reduces run spillway's paged
/// reduce tactic ([`ReducePaged`]), whose output arrangements page with `paging`.
fn run_paged(
    worker: &mut Worker,
    plan: &QueryPlan,
    paging: &Paging,
    progress: &dyn Progress,
    on: impl Fn(Event),
) -> (WorkerResult, PagedTrace) {
    phases!(
        worker,
        plan,
        progress,
        arrange = |c| c.arrange_by_key_paged(paging),
        join = |data, probes| match plan.join_tactic {
            JoinTactic::Cursor => data.join_core(probes, |k, v, q| Some((k, v, q))),
            JoinTactic::Vectored => data.join_core_vectored(probes, |k, v, q| Some((k, v, q))),
        },
        reduce = |d| (
            d.clone()
                .reduce_paged::<u64, isize, _>(paging, count_logic!()),
            d.reduce_paged::<u64, isize, _>(paging, max_logic!())
        ),
        on = on
    )
}

/// The `push` of a reduce into upstream's `ValSpine`.
fn fill_vec(vec: &mut Vec<(Data, u64, isize)>, k: &u64, upds: &mut Vec<(u64, u64, isize)>) {
    vec.clear();
    vec.extend(upds.drain(..).map(|(v, t, r)| ((*k, v), t, r)));
}

/// Where upstream backends' reduce outputs go: upstream's `ValSpine`.
type UpstreamBuilder = ValBuilder<u64, u64, u64, isize>;
type UpstreamSpine = ValSpine<u64, u64, u64, isize>;

/// Upstream `OrdValSpine`.
fn run_ord(
    worker: &mut Worker,
    plan: &QueryPlan,
    progress: &dyn Progress,
) -> (WorkerResult, impl TraceReader<Time = u64>) {
    phases!(
        worker,
        plan,
        progress,
        arrange = |c| c.arrange_by_key(),
        join = |data, probes| data.join_core(probes, |k, v, q| Some((*k, *v, *q))),
        reduce = |d| (
            d.clone()
                .reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
                    "Count",
                    count_logic!(),
                    fill_vec
                ),
            d.reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
                "Max",
                max_logic!(),
                fill_vec
            )
        ),
        on = |_: Event| {}
    )
}

/// Upstream columnar `ColChunk` trace (its spill installed by the caller).
fn run_col(
    worker: &mut Worker,
    plan: &QueryPlan,
    progress: &dyn Progress,
) -> (WorkerResult, impl TraceReader<Time = u64>) {
    phases!(
        worker,
        plan,
        progress,
        arrange = |c| colspill::arrange(c),
        join = |data, probes| data.join_core(probes, |k, v, q| Some((*k, *v, *q))),
        reduce = |d| (
            d.clone()
                .reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
                    "Count",
                    count_logic!(),
                    fill_vec
                ),
            d.reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
                "Max",
                max_logic!(),
                fill_vec
            )
        ),
        on = |_: Event| {}
    )
}

/// Records per key: the sum of the key's multiplicities.
fn count_of(diffs: impl Iterator<Item = isize>) -> u64 {
    diffs.sum::<isize>() as u64
}

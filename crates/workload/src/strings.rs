//! The dataflows of `--records strings`: the phases of the `u64` workload (see the private
//! `query` module: build, query, scan) over `(String key, String value)` updates and
//! `(String key, u64 probe)` probes (see [`crate::string_input`]).
//!
//! - **join**: the arrangement joined with the arranged probes; each output record `(key,
//!   value, probe)` is hashed inside the join's closure, so the output is a collection of
//!   hashes and no string is copied into it;
//! - **reduce**: per key, the count of records and the largest value (spillway's paged reduce
//!   tactic, `reduce_paged`, on `pool` / `memory`, whose outputs page with the arrangement's
//!   paging; upstream's `reduce_abelian` into its `ValSpine` on `dd-ord`), summed batch by
//!   batch with their cursors;
//! - **scan**: every batch of the trace read with its cursor.
//!
//! Backends: `pool` / `memory` arrange with `arrange_by_key_paged` and join with the plan's
//! tactic (`vectored` by default: the bounded join for strings; `cursor` is `join_core`);
//! `dd-ord` is upstream's `arrange_by_key` and `join_core`. `dd-col` has no string trace and
//! is refused when the plan is made.
//!
//! Closures read keys and values through [`Field`] and `ToOwned`, so they compile whether a
//! paged cursor hands out `&String` or `&str`.

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

use crate::input::{record_hash, share, Checksum, InputSpec};
use crate::levels::{Event, LevelsSink, Recorder};
use crate::plan::{Backend, JoinTactic, QueryPlan, Workload};
use crate::progress::Progress;
use crate::query::Word;
use crate::report::WorkerResult;
use crate::string_input::{string_probe, string_record_hash, string_update, Field};

/// Tags that keep the hashes of different outputs apart (the `u64` workload's values).
const TAG_JOIN: u64 = 1;
const TAG_COUNT: u64 = 2;
const TAG_MAX: u64 = 3;
const TAG_SCAN: u64 = 4;

/// An update.
type Data = (String, String);
/// A probe.
type ProbeData = (String, u64);

/// Bytes of input queued ahead of the dataflow between worker steps (what the `u64`
/// workload's 2^16 records of 32 bytes come to).
const QUEUED_BYTES: usize = 2 << 20;

/// Records entered between worker steps for records of about `record_bytes` bytes each.
fn slice(record_bytes: usize) -> u64 {
    (QUEUED_BYTES / record_bytes.max(1)).clamp(1, 1 << 16) as u64
}

/// Runs the chosen backend on this worker over string records.
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
        Backend::DdCol => unreachable!("a plan of string records on dd-col is refused"),
    }
}

/// The build phase over string records: enters this worker's share of every round,
/// compacting between rounds.
fn build<Tr: TraceReader<Time = u64>>(
    worker: &mut Worker,
    spec: &InputSpec,
    data: &mut InputSession<u64, Data, isize>,
    probe: &ProbeHandle<u64>,
    trace: &mut Tr,
    progress: &dyn Progress,
    mut after_round: impl FnMut(u64),
) {
    let val_bytes = spec.records.val_bytes().expect("string records");
    // Key, value, their two `String` headers, time and diff.
    let slice = slice(val_bytes + 18 + 2 * 24 + 16);
    let (index, peers) = (worker.index(), worker.peers());
    progress.start("build", spec.rounds);
    for round in 0..spec.rounds {
        let mut entered = 0;
        for i in share(spec.round_range(round), index, peers) {
            entered += 1;
            let u = string_update(spec, i, round, val_bytes);
            match u.retract_at {
                Some(at) => {
                    data.update((u.key.clone(), u.val.clone()), 1);
                    data.update_at((u.key, u.val), at, -1);
                }
                None => data.update((u.key, u.val), 1),
            }
            if entered % slice == 0 {
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
fn enter_probes(
    worker: &mut Worker,
    spec: &InputSpec,
    mut probes: InputSession<u64, ProbeData, isize>,
) {
    let slice = slice(18 + 24 + 8 + 16);
    for (n, j) in share(0..spec.probes, worker.index(), worker.peers()).enumerate() {
        probes.insert(string_probe(spec, j));
        if (n as u64 + 1).is_multiple_of(slice) {
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
    for<'a> <<Tr::Batch as Navigable>::Cursor as Cursor>::Key<'a>: Field,
    for<'a> <<Tr::Batch as Navigable>::Cursor as Cursor>::Val<'a>: Field,
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

/// Adds every update `(key, val, time, diff)` of `batch` to `sum` as
/// `string_record_hash(tag, key, val, 0)` times `diff`, reading it with its cursor (each key
/// hashed once); returns the updates visited.
fn sum_batch<B>(batch: &B, tag: u64, sum: &mut Checksum) -> u64
where
    B: Navigable,
    for<'a> <B::Cursor as Cursor>::Key<'a>: Field,
    for<'a> <B::Cursor as Cursor>::Val<'a>: Field,
    for<'a> <B::Cursor as Cursor>::DiffGat<'a>: Word,
{
    let mut updates = 0;
    let mut cursor = batch.cursor();
    while cursor.key_valid(batch) {
        let key = cursor.key(batch).field();
        while cursor.val_valid(batch) {
            let hash = record_hash(tag, key, cursor.val(batch).field(), 0);
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

/// Sums the batches of an arranged `stream` into `acc` with [`sum_batch`] as they arrive, and
/// returns a stream to probe for when they are summed (no batch is turned into records).
fn sum_batches<'scope, B>(
    stream: Stream<'scope, u64, Vec<Span<u64, B>>>,
    tag: u64,
    acc: Rc<Cell<Checksum>>,
) -> Stream<'scope, u64, Vec<()>>
where
    B: Navigable + Clone + 'static,
    for<'a> <B::Cursor as Cursor>::Key<'a>: Field,
    for<'a> <B::Cursor as Cursor>::Val<'a>: Field,
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

/// The three phases on one backend, over string records. `arrange` turns a collection `$c`
/// (of updates, then of probes) into the backend's arrangement; `join` joins the imported
/// arrangement `$data` with the probes' `$probes` into a collection of record hashes;
/// `reduce = |$rdata| ($count, $max)` computes the two reduce outputs of the imported
/// arrangement `$rdata` as arrangements, their logic written with `count_logic!` and
/// `max_logic!`.
macro_rules! string_phases {
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
                    let (input, $c) = scope.new_collection::<ProbeData, isize>();
                    let $probes = $arrange;
                    let out = $join.inspect(move |(hash, _t, r)| add(&a, *hash, *r));
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
        |_k, s, t| t.push((s.iter().map(|&(_, r)| r).sum::<isize>() as u64, 1))
    };
}

/// The logic of the `Max` reduce: the key's largest value.
macro_rules! max_logic {
    () => {
        |_k, s, t| t.push((s[s.len() - 1].0.to_owned(), 1))
    };
}

/// The trace of the paged backends.
type PagedTrace = TraceAgent<PagedSpine<String, String, u64, isize>>;

/// `PagedSpine`, paging on or off; `on` hears the phase events. Reduces run spillway's paged
/// reduce tactic ([`ReducePaged`]), whose output arrangements page with `paging`.
fn run_paged(
    worker: &mut Worker,
    plan: &QueryPlan,
    paging: &Paging,
    progress: &dyn Progress,
    on: impl Fn(Event),
) -> (WorkerResult, PagedTrace) {
    string_phases!(
        worker,
        plan,
        progress,
        arrange = |c| c.arrange_by_key_paged(paging),
        join = |data, probes| match plan.join_tactic {
            JoinTactic::Cursor => {
                data.join_core(probes, |k, v, q| {
                    Some(string_record_hash(TAG_JOIN, k, v, q))
                })
            }
            JoinTactic::Vectored => data.join_core_vectored(probes, |k, v, q| {
                Some(string_record_hash(TAG_JOIN, k, v, q))
            }),
        },
        reduce = |d| (
            d.clone()
                .reduce_paged::<u64, isize, _>(paging, count_logic!()),
            d.reduce_paged::<String, isize, _>(paging, max_logic!())
        ),
        on = on
    )
}

/// The `push` of a reduce into upstream's `ValSpine` (whose keys are read as `&String`).
fn fill_vec<K: ToOwned<Owned = String> + ?Sized, V>(
    vec: &mut Vec<((String, V), u64, isize)>,
    k: &K,
    upds: &mut Vec<(V, u64, isize)>,
) {
    vec.clear();
    vec.extend(upds.drain(..).map(|(v, t, r)| ((k.to_owned(), v), t, r)));
}

/// Where upstream's reduce outputs go: upstream's `ValSpine`.
type UpstreamBuilder<V> = ValBuilder<String, V, u64, isize>;
type UpstreamSpine<V> = ValSpine<String, V, u64, isize>;

/// Upstream `OrdValSpine`.
fn run_ord(
    worker: &mut Worker,
    plan: &QueryPlan,
    progress: &dyn Progress,
) -> (WorkerResult, impl TraceReader<Time = u64>) {
    string_phases!(
        worker,
        plan,
        progress,
        arrange = |c| c.arrange_by_key(),
        join = |data, probes| data.join_core(probes, |k, v, q| Some(string_record_hash(
            TAG_JOIN, k, v, q
        ))),
        reduce = |d| (
            d.clone()
                .reduce_abelian::<_, UpstreamBuilder<u64>, UpstreamSpine<u64>, _, _>(
                    "Count",
                    count_logic!(),
                    fill_vec::<String, u64>
                ),
            d.reduce_abelian::<_, UpstreamBuilder<String>, UpstreamSpine<String>, _, _>(
                "Max",
                max_logic!(),
                fill_vec::<String, String>
            )
        ),
        on = |_: Event| {}
    )
}

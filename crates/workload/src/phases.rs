//! The phases of `spillway join` and `spillway reduce`, one body for every kind of record and
//! every backend: each run is built, queried, scanned, timed, synchronized and checksummed the
//! same way, so every backend must give the same checksums on the same input.
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
//! What varies is said by two small traits: [`RecordKind`] (what an update, a probe and a
//! join output are, and how they are generated: the private `query` module's `u64` records,
//! the `strings` module's string records) and [`BackendOps`] (how a backend arranges, joins
//! and reduces them).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, Span, TraceReader};
use differential_dataflow::VecCollection;
use differential_dataflow::{ExchangeData, Hashable};
use spillway_trace::{
    spine_levels, ArrangePaged, JoinVectored, PagedData, PagedSpine, Paging, ReducePaged,
};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::dataflow::Stream;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

use crate::input::{record_hash, share, Checksum, InputSpec};
use crate::levels::{Event, LevelsSink, Recorder};
use crate::plan::{JoinTactic, QueryPlan, Workload};
use crate::progress::Progress;
use crate::report::WorkerResult;
use crate::string_input::Field;

/// Tags that keep the hashes of different outputs apart.
pub(crate) const TAG_JOIN: u64 = 1;
const TAG_COUNT: u64 = 2;
const TAG_MAX: u64 = 3;
const TAG_SCAN: u64 = 4;

/// A diff from a cursor, by value (`PagedChunk`) or by reference (upstream), as the word a
/// checksum multiplies by (wrapping).
pub(crate) trait Word: Copy {
    /// The diff as a `u64`.
    fn word(self) -> u64;
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

/// The records of a workload: what an update, a probe and a join output are, and how the
/// updates and probes of an [`InputSpec`] are generated.
pub(crate) trait RecordKind {
    /// An update, `(key, val)`.
    type Data: differential_dataflow::Data;
    /// A probe, `(key, probe)`.
    type Probe: differential_dataflow::Data;
    /// A record of the join's output.
    type Joined: differential_dataflow::Data;
    /// Bytes one update takes queued (key, value, time and diff).
    fn update_bytes(&self) -> usize;
    /// Bytes one probe takes queued (key, probe, time and diff).
    fn probe_bytes(&self) -> usize;
    /// Update `i`, entered in `round`, and the round it is retracted at, if it is.
    fn update(&self, spec: &InputSpec, i: u64, round: u64) -> (Self::Data, Option<u64>);
    /// Probe `j`.
    fn probe(&self, spec: &InputSpec, j: u64) -> Self::Probe;
    /// The checksum hash of a join output record.
    fn joined_hash(joined: &Self::Joined) -> u64;
}

/// How one backend arranges, joins and reduces records of kind `R`.
pub(crate) trait BackendOps<R: RecordKind> {
    /// The spine of the arrangement built and scanned.
    type Spine: TraceReader<Time = u64, Batch: SumBatch> + 'static;
    /// Arranges the updates by key.
    fn arrange<'s>(
        &self,
        updates: VecCollection<'s, u64, R::Data, isize>,
    ) -> Arranged<'s, TraceAgent<Self::Spine>>;
    /// Joins the imported arrangement `data` with the probes (arranging them first).
    fn join<'s>(
        &self,
        data: Arranged<'s, TraceAgent<Self::Spine>>,
        probes: VecCollection<'s, u64, R::Probe, isize>,
    ) -> VecCollection<'s, u64, R::Joined, isize>;
    /// The two reduce outputs of the imported arrangement `data`, summed into `acc` with
    /// [`sum_reduced`]: the probe of their sums.
    fn reduce<'s>(
        &self,
        data: Arranged<'s, TraceAgent<Self::Spine>>,
        acc: &Rc<Cell<Checksum>>,
    ) -> ProbeHandle<u64>;
}

/// The paged backends (`pool`, `memory`): `PagedSpine` with `paging`, joined with `tactic`.
/// Reduces run spillway's paged reduce tactic, whose output arrangements page with `paging`.
pub(crate) struct Paged<'a> {
    /// Paging of the arrangement and of the reduce outputs.
    pub paging: &'a Paging,
    /// The join tactic.
    pub tactic: JoinTactic,
}

/// Records the paged backends run on: `(key, val)` updates and `(key, probe)` probes of
/// [`PagedData`], and what differs between kinds of records in the closures over their paged
/// cursor items.
pub(crate) trait PagedRecords:
    RecordKind<Data = (Self::Key, Self::Val), Probe = (Self::Key, Self::ProbeVal)>
{
    /// The key of updates and probes.
    type Key: PagedData + ExchangeData + Hashable;
    /// The value of updates.
    type Val: PagedData + ExchangeData;
    /// The value of probes.
    type ProbeVal: PagedData + ExchangeData;
    /// The join's output record for a matching update `(key, val)` and probe `(key, probe)`.
    fn joined(
        key: <Self::Key as PagedData>::Item<'_>,
        val: <Self::Val as PagedData>::Item<'_>,
        probe: <Self::ProbeVal as PagedData>::Item<'_>,
    ) -> Self::Joined;
    /// A value item, owned (the `Max` reduce's output).
    fn owned(val: <Self::Val as PagedData>::Item<'_>) -> Self::Val;
}

impl<R: PagedRecords> BackendOps<R> for Paged<'_>
where
    for<'a> <R::Key as PagedData>::Item<'a>: Field,
    for<'a> <R::Val as PagedData>::Item<'a>: Field,
{
    type Spine = PagedSpine<R::Key, R::Val, u64, isize>;
    fn arrange<'s>(
        &self,
        updates: VecCollection<'s, u64, R::Data, isize>,
    ) -> Arranged<'s, TraceAgent<Self::Spine>> {
        updates.arrange_by_key_paged(self.paging)
    }
    fn join<'s>(
        &self,
        data: Arranged<'s, TraceAgent<Self::Spine>>,
        probes: VecCollection<'s, u64, R::Probe, isize>,
    ) -> VecCollection<'s, u64, R::Joined, isize> {
        let probes = probes.arrange_by_key_paged(self.paging);
        match self.tactic {
            JoinTactic::Cursor => data.join_core(probes, |k, v, q| Some(R::joined(k, v, q))),
            JoinTactic::Vectored => {
                data.join_core_vectored(probes, |k, v, q| Some(R::joined(k, v, q)))
            }
        }
    }
    fn reduce<'s>(
        &self,
        data: Arranged<'s, TraceAgent<Self::Spine>>,
        acc: &Rc<Cell<Checksum>>,
    ) -> ProbeHandle<u64> {
        let count = data
            .clone()
            .reduce_paged::<u64, isize, _>(self.paging, |_k, s, t| t.push((count_of(s), 1)));
        let max = data.reduce_paged::<R::Val, isize, _>(self.paging, |_k, s, t| {
            t.push((R::owned(s[s.len() - 1].0), 1))
        });
        sum_reduced(count, max, acc)
    }
}

/// Upstream's `OrdValSpine` (`dd-ord`), its reduces into upstream's `ValSpine`.
pub(crate) struct DdOrd;

/// A batch whose updates can be summed into a [`Checksum`] with its cursor: keys and values
/// read as [`Field`]s, diffs as [`Word`]s.
pub(crate) trait SumBatch {
    /// Adds every update `(key, val, time, diff)` to `sum` as `record_hash(tag, key, val, 0)`
    /// times `diff` (each key read once); returns the updates visited.
    fn sum_into(&self, tag: u64, sum: &mut Checksum) -> u64;
}

impl<B> SumBatch for B
where
    B: Navigable,
    for<'a> <B::Cursor as Cursor>::Key<'a>: Field,
    for<'a> <B::Cursor as Cursor>::Val<'a>: Field,
    for<'a> <B::Cursor as Cursor>::DiffGat<'a>: Word,
{
    fn sum_into(&self, tag: u64, sum: &mut Checksum) -> u64 {
        let mut updates = 0;
        let mut cursor = self.cursor();
        while cursor.key_valid(self) {
            let key = cursor.key(self).field();
            while cursor.val_valid(self) {
                let hash = record_hash(tag, key, cursor.val(self).field(), 0);
                cursor.map_times(self, |_t, r| {
                    sum.add(hash, r.word() as i64);
                    updates += 1;
                });
                cursor.step_val(self);
            }
            cursor.step_key(self);
        }
        updates
    }
}

/// Runs the paged backend (`paging` off without a pool), worker 0 recording the levels of
/// its trace and of its process's pool if the plan asks for them.
pub(crate) fn run_paged<R: RecordKind, K: PagedData, V: PagedData>(
    worker: &mut Worker,
    plan: &QueryPlan,
    records: &R,
    pool: Option<&spillway_pool::Pool>,
    progress: &dyn Progress,
    levels: &LevelsSink,
) -> WorkerResult
where
    for<'a> Paged<'a>: BackendOps<R, Spine = PagedSpine<K, V, u64, isize>>,
{
    let paging = pool.map_or_else(Paging::disabled, |pool| {
        Paging::with_policy(pool, plan.policy)
    });
    let recorder =
        (plan.levels && worker.index() == 0).then(|| RefCell::new(Recorder::new(pool.cloned())));
    let on = |event: Event| {
        if let Some(r) = &recorder {
            r.borrow_mut().on(event);
        }
    };
    let backend = Paged {
        paging: &paging,
        tactic: plan.join_tactic,
    };
    let (result, mut trace) = run(worker, plan, progress, records, &backend, on);
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

/// The three phases of `plan` over `records` on `backend`; `on` hears the phase events.
/// Returns this worker's result and the built trace.
pub(crate) fn run<R: RecordKind, B: BackendOps<R>>(
    worker: &mut Worker,
    plan: &QueryPlan,
    progress: &dyn Progress,
    records: &R,
    backend: &B,
    on: impl Fn(Event),
) -> (WorkerResult, TraceAgent<B::Spine>) {
    let spec = plan.input;
    let t0 = Instant::now();
    let (mut data, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, updates) = scope.new_collection::<R::Data, isize>();
        let arranged = backend.arrange(updates);
        let (probe, _) = arranged.stream.clone().probe();
        (input, probe, arranged.trace)
    });
    build(
        worker,
        &spec,
        records,
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
                let data = trace.import(scope);
                let (input, probes) = scope.new_collection::<R::Probe, isize>();
                let out = backend
                    .join(data, probes)
                    .inspect(move |(joined, _t, r)| add(&a, R::joined_hash(joined), *r));
                (input, out.inner.probe().0)
            });
            enter_probes(worker, &spec, records, probes);
            finish(worker, &out);
        }
        Workload::Reduce => {
            let out = worker.dataflow::<u64, _, _>(|scope| {
                let data = trace.import(scope);
                backend.reduce(data, &acc)
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
}

/// Bytes of input queued ahead of the dataflow between worker steps: 2 MiB, whatever the
/// round size, instead of a whole round (2^16 `u64` records of 32 bytes).
const QUEUED_BYTES: usize = 2 << 20;

/// Records entered between worker steps for records of about `record_bytes` bytes each.
fn slice(record_bytes: usize) -> u64 {
    (QUEUED_BYTES / record_bytes.max(1)).clamp(1, 1 << 16) as u64
}

/// The build phase: enters this worker's share of every round, compacting between rounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<R: RecordKind, Tr: TraceReader<Time = u64>>(
    worker: &mut Worker,
    spec: &InputSpec,
    records: &R,
    data: &mut InputSession<u64, R::Data, isize>,
    probe: &ProbeHandle<u64>,
    trace: &mut Tr,
    progress: &dyn Progress,
    mut after_round: impl FnMut(u64),
) {
    let slice = slice(records.update_bytes());
    let (index, peers) = (worker.index(), worker.peers());
    progress.start("build", spec.rounds);
    for round in 0..spec.rounds {
        let mut entered = 0;
        for i in share(spec.round_range(round), index, peers) {
            entered += 1;
            match records.update(spec, i, round) {
                (update, Some(at)) => {
                    data.update(update.clone(), 1);
                    data.update_at(update, at, -1);
                }
                (update, None) => data.update(update, 1),
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
fn enter_probes<R: RecordKind>(
    worker: &mut Worker,
    spec: &InputSpec,
    records: &R,
    mut probes: InputSession<u64, R::Probe, isize>,
) {
    let slice = slice(records.probe_bytes());
    for (n, j) in share(0..spec.probes, worker.index(), worker.peers()).enumerate() {
        probes.insert(records.probe(spec, j));
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
    Tr: TraceReader<Time = u64, Batch: SumBatch>,
{
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("the trace is complete");
    let (mut sum, mut updates) = (Checksum::default(), 0u64);
    for batch in &batches {
        updates += batch.sum_into(TAG_SCAN, &mut sum);
    }
    (sum, updates)
}

/// Sums the batches of a reduce's two output arrangements, `count` and `max`, into `acc`
/// (see [`sum_batches`]), and returns the probe of when both are summed.
pub(crate) fn sum_reduced<'s, C, M>(
    count: Arranged<'s, C>,
    max: Arranged<'s, M>,
    acc: &Rc<Cell<Checksum>>,
) -> ProbeHandle<u64>
where
    C: TraceReader<Time = u64, Batch: SumBatch>,
    M: TraceReader<Time = u64, Batch: SumBatch>,
{
    let (probe, _) = sum_batches(count.stream, TAG_COUNT, acc.clone()).probe();
    sum_batches(max.stream, TAG_MAX, acc.clone()).probe_with(&probe);
    probe
}

/// Sums the batches of an arranged `stream` into `acc` with [`SumBatch`], and returns a
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
    B: SumBatch + Clone + 'static,
{
    stream.unary::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "SumBatches",
        move |_, _| {
            move |input, _output| {
                input.for_each(|_time, spans| {
                    let mut sum = acc.get();
                    for batch in spans.iter().filter_map(|span| span.inner.as_ref()) {
                        batch.sum_into(tag, &mut sum);
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

/// The `Count` reduce's output for a key's `input`: its number of records (the sum of its
/// multiplicities).
pub(crate) fn count_of<V>(input: &[(V, isize)]) -> u64 {
    input.iter().map(|(_, r)| r).sum::<isize>() as u64
}

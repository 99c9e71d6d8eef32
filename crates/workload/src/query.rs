//! The `u64` workload's records and backends for the shared phases (see the private `phases`
//! module): `(u64 key, u64 val)` updates, `(u64 key, u64 probe)` probes and `(key, val,
//! probe)` join outputs, arranged, joined and reduced by every backend.
//!
//! Backends: `pool` and `memory` are `PagedSpine` with paging on and off (the paged
//! backends' operators are shared with string records: [`PagedRecords`]); `dd-ord` is
//! upstream's `OrdValSpine`; `dd-col` is upstream's columnar `ColChunk` trace with its own
//! spill installed (see [`crate::colspill`]). Cursor items are read through [`Field`], so one
//! closure serves by-value and by-reference backends alike.

use std::cell::Cell;
use std::rc::Rc;

use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::cursor::{BatchCursor, Cursor};
use differential_dataflow::trace::implementations::containers::BatchContainer;
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::trace::{Navigable, TraceReader};
use differential_dataflow::VecCollection;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::worker::Worker;

use crate::colspill::{self, ColSpine};
use crate::input::{record_hash, Checksum, InputSpec};
use crate::levels::{Event, LevelsSink};
use crate::phases::{
    self, count_of, sum_reduced, BackendOps, DdOrd, PagedRecords, RecordKind, TAG_JOIN,
};
use crate::plan::{Backend, QueryPlan};
use crate::progress::Progress;
use crate::report::WorkerResult;
use crate::string_input::Field;

type Data = (u64, u64);

/// The `u64` records: updates of [`InputSpec::update`], probes of [`InputSpec::probe`].
pub(crate) struct U64Records;

impl RecordKind for U64Records {
    type Data = Data;
    type Probe = (u64, u64);
    type Joined = (u64, u64, u64);
    fn update_bytes(&self) -> usize {
        32
    }
    fn probe_bytes(&self) -> usize {
        32
    }
    fn update(&self, spec: &InputSpec, i: u64, round: u64) -> (Data, Option<u64>) {
        let u = spec.update(i, round);
        ((u.key, u.val), u.retract_at)
    }
    fn probe(&self, spec: &InputSpec, j: u64) -> (u64, u64) {
        spec.probe(j)
    }
    fn joined_hash(&(k, v, q): &(u64, u64, u64)) -> u64 {
        record_hash(TAG_JOIN, k, v, q)
    }
}

/// Runs the chosen backend on this worker.
pub(crate) fn run_worker(
    worker: &mut Worker,
    plan: &QueryPlan,
    pool: Option<&spillway_pool::Pool>,
    progress: &dyn Progress,
    levels: &LevelsSink,
) -> WorkerResult {
    let no_events = |_: Event| {};
    match plan.backend {
        Backend::Pool | Backend::Memory => {
            phases::run_paged(worker, plan, &U64Records, pool, progress, levels)
        }
        Backend::DdOrd => phases::run(worker, plan, progress, &U64Records, &DdOrd, no_events).0,
        Backend::DdCol => {
            let spill = colspill::install(&plan.scratch_dir(), plan.budget)
                .unwrap_or_else(|e| panic!("spillway: cannot install the dd-col spill: {e}"));
            let result = phases::run(worker, plan, progress, &U64Records, &DdCol, no_events).0;
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

impl PagedRecords for U64Records {
    type Key = u64;
    type Val = u64;
    type ProbeVal = u64;
    fn joined(key: u64, val: u64, probe: u64) -> (u64, u64, u64) {
        (key, val, probe)
    }
    fn owned(val: u64) -> u64 {
        val
    }
}

/// The `push` of a reduce into upstream's `ValSpine`.
fn fill_vec(vec: &mut Vec<(Data, u64, isize)>, k: &u64, upds: &mut Vec<(u64, u64, isize)>) {
    vec.clear();
    vec.extend(upds.drain(..).map(|(v, t, r)| ((*k, v), t, r)));
}

/// Where upstream backends' reduce outputs go: upstream's `ValSpine`.
type UpstreamBuilder = ValBuilder<u64, u64, u64, isize>;
type UpstreamSpine = ValSpine<u64, u64, u64, isize>;

/// The reduce of the upstream backends: `reduce_abelian` into upstream's `ValSpine`.
fn reduce_upstream<Tr, KC>(
    data: Arranged<'_, TraceAgent<Tr>>,
    acc: &Rc<Cell<Checksum>>,
) -> ProbeHandle<u64>
where
    Tr: TraceReader<Time = u64, Batch: Navigable> + 'static,
    KC: BatchContainer,
    BatchCursor<Tr>: Cursor<Time = u64, Diff = isize, KeyContainer = KC>,
    for<'a> BatchCursor<Tr>: Cursor<Key<'a> = &'a u64, Val<'a> = &'a u64>,
    for<'a> KC: BatchContainer<ReadItem<'a> = &'a u64>,
{
    let count = data
        .clone()
        .reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
            "Count",
            |_k, s, t| t.push((count_of(s), 1)),
            fill_vec,
        );
    let max = data.reduce_abelian::<_, UpstreamBuilder, UpstreamSpine, _, _>(
        "Max",
        |_k, s, t| t.push((s[s.len() - 1].0.field(), 1)),
        fill_vec,
    );
    sum_reduced(count, max, acc)
}

impl BackendOps<U64Records> for DdOrd {
    type Spine = UpstreamSpine;
    fn arrange<'s>(
        &self,
        updates: VecCollection<'s, u64, Data, isize>,
    ) -> Arranged<'s, TraceAgent<UpstreamSpine>> {
        updates.arrange_by_key()
    }
    fn join<'s>(
        &self,
        data: Arranged<'s, TraceAgent<UpstreamSpine>>,
        probes: VecCollection<'s, u64, (u64, u64), isize>,
    ) -> VecCollection<'s, u64, (u64, u64, u64), isize> {
        data.join_core(probes.arrange_by_key(), |k, v, q| Some((*k, *v, *q)))
    }
    fn reduce<'s>(
        &self,
        data: Arranged<'s, TraceAgent<UpstreamSpine>>,
        acc: &Rc<Cell<Checksum>>,
    ) -> ProbeHandle<u64> {
        reduce_upstream(data, acc)
    }
}

/// Upstream columnar `ColChunk` trace (`dd-col`; its spill installed by the caller).
struct DdCol;

impl BackendOps<U64Records> for DdCol {
    type Spine = ColSpine;
    fn arrange<'s>(
        &self,
        updates: VecCollection<'s, u64, Data, isize>,
    ) -> Arranged<'s, TraceAgent<ColSpine>> {
        colspill::arrange(updates)
    }
    fn join<'s>(
        &self,
        data: Arranged<'s, TraceAgent<ColSpine>>,
        probes: VecCollection<'s, u64, (u64, u64), isize>,
    ) -> VecCollection<'s, u64, (u64, u64, u64), isize> {
        data.join_core(colspill::arrange(probes), |k, v, q| Some((*k, *v, *q)))
    }
    fn reduce<'s>(
        &self,
        data: Arranged<'s, TraceAgent<ColSpine>>,
        acc: &Rc<Cell<Checksum>>,
    ) -> ProbeHandle<u64> {
        reduce_upstream(data, acc)
    }
}

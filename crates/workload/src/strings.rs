//! The string records of `--records strings` and their backends for the shared phases (see
//! the private `phases` module: build, query, scan) over `(String key, String value)` updates
//! and `(String key, u64 probe)` probes (see [`crate::string_input`]).
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
//! tactic (`vectored` by default: the bounded join for strings; `cursor` is `join_core`), the
//! same operators as the `u64` records' ([`PagedRecords`]: only the join's output and the
//! owned value differ); `dd-ord` is upstream's `arrange_by_key` and `join_core`, its closures
//! reading `&String`s through [`Field`](crate::string_input::Field) and `ToOwned`. `dd-col`
//! has no string trace and is refused when the plan is made.

use std::cell::Cell;
use std::rc::Rc;

use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::VecCollection;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::worker::Worker;

use crate::input::{Checksum, InputSpec};
use crate::levels::{Event, LevelsSink};
use crate::phases::{
    self, count_of, sum_reduced, BackendOps, DdOrd, PagedRecords, RecordKind, TAG_JOIN,
};
use crate::plan::{Backend, QueryPlan};
use crate::progress::Progress;
use crate::report::WorkerResult;
use crate::string_input::{string_probe, string_record_hash, string_update};

/// An update.
type Data = (String, String);
/// A probe.
type ProbeData = (String, u64);

/// String records with values of `val_bytes` bytes.
pub(crate) struct StringRecords {
    val_bytes: usize,
}

impl RecordKind for StringRecords {
    type Data = Data;
    type Probe = ProbeData;
    /// The record's hash, taken inside the join's closure.
    type Joined = u64;
    fn update_bytes(&self) -> usize {
        // Key, value, their two `String` headers, time and diff.
        self.val_bytes + 18 + 2 * 24 + 16
    }
    fn probe_bytes(&self) -> usize {
        18 + 24 + 8 + 16
    }
    fn update(&self, spec: &InputSpec, i: u64, round: u64) -> (Data, Option<u64>) {
        let u = string_update(spec, i, round, self.val_bytes);
        ((u.key, u.val), u.retract_at)
    }
    fn probe(&self, spec: &InputSpec, j: u64) -> ProbeData {
        string_probe(spec, j)
    }
    fn joined_hash(hash: &u64) -> u64 {
        *hash
    }
}

/// Runs the chosen backend on this worker over string records.
pub(crate) fn run_worker(
    worker: &mut Worker,
    plan: &QueryPlan,
    pool: Option<&spillway_pool::Pool>,
    progress: &dyn Progress,
    levels: &LevelsSink,
) -> WorkerResult {
    let records = StringRecords {
        val_bytes: plan.input.records.val_bytes().expect("string records"),
    };
    match plan.backend {
        Backend::Pool | Backend::Memory => {
            phases::run_paged(worker, plan, &records, pool, progress, levels)
        }
        Backend::DdOrd => phases::run(worker, plan, progress, &records, &DdOrd, |_: Event| {}).0,
        Backend::DdCol => unreachable!("a plan of string records on dd-col is refused"),
    }
}

impl PagedRecords for StringRecords {
    type Key = String;
    type Val = String;
    type ProbeVal = u64;
    fn joined(key: &str, val: &str, probe: u64) -> u64 {
        string_record_hash(TAG_JOIN, key, val, probe)
    }
    fn owned(val: &str) -> String {
        val.to_owned()
    }
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

impl BackendOps<StringRecords> for DdOrd {
    type Spine = UpstreamSpine<String>;
    fn arrange<'s>(
        &self,
        updates: VecCollection<'s, u64, Data, isize>,
    ) -> Arranged<'s, TraceAgent<UpstreamSpine<String>>> {
        updates.arrange_by_key()
    }
    fn join<'s>(
        &self,
        data: Arranged<'s, TraceAgent<UpstreamSpine<String>>>,
        probes: VecCollection<'s, u64, ProbeData, isize>,
    ) -> VecCollection<'s, u64, u64, isize> {
        data.join_core(probes.arrange_by_key(), |k, v, q| {
            Some(string_record_hash(TAG_JOIN, k, v, q))
        })
    }
    fn reduce<'s>(
        &self,
        data: Arranged<'s, TraceAgent<UpstreamSpine<String>>>,
        acc: &Rc<Cell<Checksum>>,
    ) -> ProbeHandle<u64> {
        let count = data
            .clone()
            .reduce_abelian::<_, UpstreamBuilder<u64>, UpstreamSpine<u64>, _, _>(
                "Count",
                |_k, s, t| t.push((count_of(s), 1)),
                fill_vec::<String, u64>,
            );
        let max = data.reduce_abelian::<_, UpstreamBuilder<String>, UpstreamSpine<String>, _, _>(
            "Max",
            |_k, s, t| t.push((s[s.len() - 1].0.to_owned(), 1)),
            fill_vec::<String, String>,
        );
        sum_reduced(count, max, acc)
    }
}

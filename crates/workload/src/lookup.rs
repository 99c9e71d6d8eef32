//! Point lookups in a paged arrangement: per-key cursor seeks versus vectored lookups.
//! Shared by `examples/vectored_lookup.rs` and `benches/vectored.rs`.
//!
//! The arrangement is the `join` workload's (see [`crate::input`]), built round by round with
//! compaction, through a pool whose budget is far below its size. The lookup keys are drawn
//! from a *hot range*, a contiguous tenth (by default) of the key space, in random order:
//! - **per key**: each key, in the drawn order, is sought with a cursor over the trace's
//!   batches, and its values accumulated at the final time;
//! - **vectored**: the keys are sorted and looked up `batch` at a time with
//!   [`get_vectored`].
//!
//! Both sum their results into a [`Checksum`], which must agree.

use std::time::Instant;

use differential_dataflow::input::Input;
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::TraceReader;
use spillway_pool::Pool;
use spillway_trace::chunks_touched;
use spillway_trace::{get_vectored, ArrangePaged, LookupStats, PagedSpine, Paging};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

use crate::data::mix;
use crate::input::{record_hash, Checksum, InputSpec};
use crate::phases;
use crate::progress::Silent;
use crate::query::U64Records;

/// The trace the lookups read.
pub type LookupTrace = TraceAgent<PagedSpine<u64, u64, u64, isize>>;

/// Arranges `spec`'s updates through `paging`, round by round with compaction.
pub fn arrange(worker: &mut Worker, spec: &InputSpec, paging: &Paging) -> LookupTrace {
    let (mut data, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, data) = scope.new_collection::<(u64, u64), isize>();
        let arranged = data.arrange_by_key_paged(paging);
        (input, arranged.stream.probe().0, arranged.trace)
    });
    phases::build(
        worker,
        spec,
        &U64Records,
        &mut data,
        &probe,
        &mut trace,
        &Silent,
        |_| {},
    );
    drop(data);
    while !probe.done() {
        worker.step();
    }
    trace
}

/// `count` distinct keys from the hot range (the `hot` fraction of `spec`'s key space,
/// starting at a third of it), in a random order drawn from `seed`.
pub fn draw_keys(spec: &InputSpec, count: u64, hot: f64, seed: u64) -> Vec<u64> {
    let width = ((spec.keys as f64 * hot) as u64).clamp(1, spec.keys);
    let start = (spec.keys / 3).min(spec.keys - width);
    let count = count.min(width);
    // Every `width / count`-th key of the range, then shuffled (Fisher–Yates on `mix`).
    let step = width / count;
    let mut keys: Vec<u64> = (0..count).map(|i| start + i * step).collect();
    for i in (1..keys.len()).rev() {
        let j = (mix(seed ^ i as u64) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

/// What one way of looking keys up measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lookups {
    /// Seconds the lookups took.
    pub seconds: f64,
    /// Records found (non-zero accumulations), summed into `checksum`.
    pub checksum: Checksum,
    /// Extent reads issued while looking up (`fault_ins` for cursors, planned reads for
    /// vectored lookups).
    pub chunk_reads: u64,
    /// Vectored only: the lookups' own counters.
    pub stats: LookupStats,
}

/// The final time of `spec`'s arrangement: every update is at or before it.
fn final_time(spec: &InputSpec) -> u64 {
    spec.rounds
}

/// Seeks each key (in the given order) with a cursor over `trace`'s batches.
pub fn per_key(trace: &mut LookupTrace, spec: &InputSpec, keys: &[u64], pool: &Pool) -> Lookups {
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("the trace is complete");
    let time = final_time(spec);
    let faults = pool.stats().fault_ins;
    let start = Instant::now();
    let (mut cursor, storage) = cursor_list(batches);
    let mut checksum = Checksum::default();
    for &key in keys {
        cursor.rewind_keys(&storage);
        cursor.seek_key(&storage, key);
        if cursor.get_key(&storage) != Some(key) {
            continue;
        }
        while let Some(val) = cursor.get_val(&storage) {
            let mut sum = 0;
            cursor.map_times(&storage, |t, r| {
                if t <= time {
                    sum += r;
                }
            });
            if sum != 0 {
                checksum.add(record_hash(0, key, val, 0), sum as i64);
            }
            cursor.step_val(&storage);
        }
    }
    Lookups {
        seconds: start.elapsed().as_secs_f64(),
        checksum,
        chunk_reads: pool.stats().fault_ins - faults,
        stats: LookupStats::default(),
    }
}

/// Sorts `keys` and looks them up `batch` at a time with [`get_vectored`].
pub fn vectored(trace: &mut LookupTrace, spec: &InputSpec, keys: &[u64], batch: usize) -> Lookups {
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("the trace is complete");
    let time = final_time(spec);
    let start = Instant::now();
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (mut checksum, mut stats, mut found) =
        (Checksum::default(), LookupStats::default(), Vec::new());
    for group in sorted.chunks(batch.max(1)) {
        stats += get_vectored(&batches, group, &time, &mut found);
        for &(key, val, diff) in &found {
            checksum.add(record_hash(0, key, val, 0), diff as i64);
        }
    }
    Lookups {
        seconds: start.elapsed().as_secs_f64(),
        checksum,
        chunk_reads: stats.pool.reads,
        stats,
    }
}

/// Chunks of `trace` whose fence range holds at least one of `keys`: the chunks any lookup
/// of them must read.
pub fn distinct_chunks(trace: &mut LookupTrace, keys: &[u64]) -> u64 {
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("the trace is complete");
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    chunks_touched(&batches, &sorted)
}

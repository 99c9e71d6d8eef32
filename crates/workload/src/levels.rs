//! The per-spine-level recorder behind `spillway levels`: where a `join` run's bytes live and
//! what each level cost.
//!
//! A level is a chunk's depth (0 for batcher output, merge outputs one deeper than their
//! deepest input; see `spillway_trace::level_of`). Worker 0 samples its process's pool at every
//! [`Event`] and, at the end, its trace's spine; the [`LevelsReport`] holds, per level, the
//! trace's batches, chunks and records, the pool's resident and extent bytes at the end, the
//! chunks written (evicted or eagerly backed) and the bytes they took, the chunks freed before
//! they were written (elided), the fault-ins during the join phase, and the time worker 0
//! spent merging into the level; and a `series` of per-round samples, which
//! `examples/plot_levels.rs` draws. Its `end` counters are read after the pool is quiescent,
//! so per level they add up to the pool's totals.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spillway_pool::{format_size, LevelStats, Pool};
use spillway_trace::{take_merge_times, MergeTime, SpineLevel, LEVELS};

/// Where the phases are, for the level recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Build round `r` is done (entered, arranged and compacted).
    Round(u64),
    /// The query phase starts.
    QueryStart,
    /// The query phase is done.
    QueryEnd,
}

/// One sample of the pool's levels, after a build round.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The build round just done.
    pub round: u64,
    /// Seconds since the recorder started.
    pub elapsed_s: f64,
    /// The pool's levels.
    pub levels: Vec<LevelStats>,
}

/// What `spillway levels` reports.
#[derive(Clone, Debug)]
pub struct LevelsReport {
    /// A sample after each build round.
    pub series: Vec<Sample>,
    /// The pool's levels when the query phase started.
    pub before_join: Vec<LevelStats>,
    /// The pool's levels when the query phase ended.
    pub after_join: Vec<LevelStats>,
    /// The pool's levels after the scan.
    pub end: Vec<LevelStats>,
    /// Worker 0's trace, per level, after the scan.
    pub spine: [SpineLevel; LEVELS],
    /// Worker 0's merges into each level.
    pub merges: [MergeTime; LEVELS],
}

/// Where worker 0 leaves its [`LevelsReport`].
pub type LevelsSink = Arc<Mutex<Option<LevelsReport>>>;

/// Samples the pool at each [`Event`] (worker 0 of a `levels` run).
pub struct Recorder {
    pool: Option<Pool>,
    started: Instant,
    series: Vec<Sample>,
    before_join: Vec<LevelStats>,
    after_join: Vec<LevelStats>,
}

impl Recorder {
    /// A recorder for a run whose pool (if any) is `pool`; resets this thread's merge times.
    pub fn new(pool: Option<Pool>) -> Recorder {
        take_merge_times();
        Recorder {
            pool,
            started: Instant::now(),
            series: Vec::new(),
            before_join: Vec::new(),
            after_join: Vec::new(),
        }
    }

    fn levels(&self) -> Vec<LevelStats> {
        self.pool
            .as_ref()
            .map_or_else(|| vec![LevelStats::default(); LEVELS], Pool::level_stats)
    }

    /// Samples the pool for `event`.
    pub fn on(&mut self, event: Event) {
        let levels = self.levels();
        match event {
            Event::Round(round) => self.series.push(Sample {
                round,
                elapsed_s: self.started.elapsed().as_secs_f64(),
                levels,
            }),
            Event::QueryStart => self.before_join = levels,
            Event::QueryEnd => self.after_join = levels,
        }
    }

    /// The report, given the trace's spine levels after the scan. Call it once the trace is
    /// dropped, so that its `end` counters are the pool's final ones (freeing the trace's
    /// chunks counts elided writes); it waits for the spill threads' writes in flight to land
    /// first, so that the per-level counters add up to the pool's totals read after it.
    pub fn finish(self, spine: [SpineLevel; LEVELS]) -> LevelsReport {
        if let Some(pool) = &self.pool {
            pool.quiesce();
        }
        LevelsReport {
            end: self.levels(),
            spine,
            merges: take_merge_times(),
            series: self.series,
            before_join: self.before_join,
            after_join: self.after_join,
        }
    }
}

/// One level's row.
#[derive(Clone, Copy, Debug, Default)]
pub struct LevelRow {
    /// The level (depth).
    pub level: usize,
    /// Worker 0's trace at this level.
    pub spine: SpineLevel,
    /// The pool's chunks of this level, at the end.
    pub pool: LevelStats,
    /// Fault-ins during the join phase.
    pub join_fault_ins: u64,
    /// Worker 0's merges into this level.
    pub merge: MergeTime,
}

impl LevelsReport {
    /// The rows of levels that hold or did anything, shallowest first.
    pub fn rows(&self) -> Vec<LevelRow> {
        (0..LEVELS)
            .map(|level| LevelRow {
                level,
                spine: self.spine[level],
                pool: self.end[level],
                join_fault_ins: self.after_join[level]
                    .fault_ins
                    .saturating_sub(self.before_join[level].fault_ins),
                merge: self.merges[level],
            })
            .filter(|r| {
                r.spine.chunks + r.pool.chunks + r.pool.chunks_written + r.pool.writes_elided > 0
                    || r.merge.records > 0
            })
            .collect()
    }

    /// The table `spillway levels` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>5} {:>7} {:>7} {:>11} {:>10} {:>10} {:>8} {:>10} {:>7} {:>10} {:>8}\n",
            "level",
            "batches",
            "chunks",
            "records",
            "resident",
            "extents",
            "written",
            "wrote",
            "elided",
            "join f-in",
            "merge s"
        );
        for r in self.rows() {
            out += &format!(
                "{:>5} {:>7} {:>7} {:>11} {:>10} {:>10} {:>8} {:>10} {:>7} {:>10} {:>8.2}\n",
                r.level,
                r.spine.batches,
                r.spine.chunks,
                r.spine.records,
                format_size(r.pool.resident_bytes),
                format_size(r.pool.extent_bytes),
                r.pool.chunks_written,
                format_size(r.pool.extent_bytes_written),
                r.pool.writes_elided,
                r.join_fault_ins,
                r.merge.time.as_secs_f64(),
            );
        }
        out
    }

    /// The `levels` array of the JSON report: one entry per row.
    pub fn level_reports(&self) -> Vec<LevelReport> {
        self.rows()
            .iter()
            .map(|r| LevelReport {
                level: r.level,
                batches: r.spine.batches,
                chunks: r.spine.chunks,
                pooled_chunks: r.spine.pooled_chunks,
                records: r.spine.records,
                resident_bytes: r.pool.resident_bytes,
                extent_bytes: r.pool.extent_bytes,
                chunks_written: r.pool.chunks_written,
                extent_bytes_written: r.pool.extent_bytes_written,
                writes_elided: r.pool.writes_elided,
                fault_ins: r.pool.fault_ins,
                join_fault_ins: r.join_fault_ins,
                merge_s: r.merge.time.as_secs_f64(),
                merged_records: r.merge.records,
            })
            .collect()
    }

    /// The `series` array of the JSON report: one entry per build round.
    pub fn sample_reports(&self) -> Vec<SampleReport> {
        self.series
            .iter()
            .map(|s| SampleReport {
                round: s.round,
                elapsed_s: s.elapsed_s,
                resident_bytes: s.levels.iter().map(|l| l.resident_bytes).collect(),
                extent_bytes: s.levels.iter().map(|l| l.extent_bytes).collect(),
            })
            .collect()
    }
}

/// One level in the JSON report (`levels[i]`); the names are the CLI's contract.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    /// The level (depth).
    pub level: usize,
    /// Batches of worker 0's trace holding chunks of this level.
    pub batches: u64,
    /// Chunks of worker 0's trace at this level.
    pub chunks: u64,
    /// Of `chunks`, those whose body is in the pool.
    pub pooled_chunks: u64,
    /// Records of worker 0's trace at this level.
    pub records: u64,
    /// The pool's resident bytes of this level at the end.
    pub resident_bytes: u64,
    /// The pool's live extent bytes of this level at the end.
    pub extent_bytes: u64,
    /// Chunks of this level written to an extent.
    pub chunks_written: u64,
    /// Bytes those writes stored.
    pub extent_bytes_written: u64,
    /// Chunks of this level freed before they were written.
    pub writes_elided: u64,
    /// Fault-ins of this level over the run.
    pub fault_ins: u64,
    /// Fault-ins of this level during the join phase.
    pub join_fault_ins: u64,
    /// Seconds worker 0 spent merging into this level.
    pub merge_s: f64,
    /// Records worker 0 merged into this level.
    pub merged_records: u64,
}

/// One build round in the JSON report (`series[i]`): the pool's bytes per level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// The build round just done.
    pub round: u64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Resident bytes per level (index = level).
    pub resident_bytes: Vec<u64>,
    /// Live extent bytes per level (index = level).
    pub extent_bytes: Vec<u64>,
}

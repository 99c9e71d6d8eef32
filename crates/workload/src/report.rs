//! What a run measured, typed: each worker's [`WorkerResult`], each process's
//! [`ProcessStats`], and the [`RunReport`] process 0 assembles from them.
//!
//! The report's field names are the CLI's JSON contract (see the README): `--json` prints a
//! [`RunReport`] as serde writes it, `compare` reads its children's reports back with serde,
//! and a field may be added, never renamed or dropped. Workers send their measurements to
//! worker 0 as [`Gathered`] messages, named fields and not positions.

use serde::{Deserialize, Serialize};
use spillway_pool::PoolStats;
use spillway_trace::PagingPolicy;

use crate::input::Checksum;
use crate::levels::{LevelReport, LevelsReport, SampleReport};
use crate::plan::{Backend, JoinTactic, QueryPlan, Workload};

/// What one worker measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Seconds of the build phase.
    pub build_s: f64,
    /// Seconds of the query phase (`join` or `reduce`).
    pub query_s: f64,
    /// Seconds of the scan.
    pub scan_s: f64,
    /// Checksum of this worker's query output.
    pub output: Checksum,
    /// Checksum of this worker's scan.
    pub scan: Checksum,
    /// Updates (physical `(key, val, time, diff)` records) the scan visited.
    pub scan_updates: u64,
    /// Bytes upstream's spill wrote (`dd-col` only).
    pub spill_bytes: u64,
}

/// What one process measured, once every worker's scan is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Resident set size after the scan (`VmRSS`), bytes.
    pub rss_after_scan: u64,
    /// The process's pool counters (zeros without a pool).
    pub pool: PoolCounters,
}

/// A measurement on its way to worker 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Gathered {
    /// One worker's result (every worker sends one).
    Worker(WorkerResult),
    /// One process's stats (the first worker of each process sends them).
    Process(ProcessStats),
}

/// The pool counters a report carries, under their `PoolStats` names (`pool{...}` in the
/// JSON). A local copy until `PoolStats` itself derives `Serialize`: then this type can be
/// replaced by `PoolStats` (and [`PoolCounters::add`] by a field-wise sum of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolCounters {
    /// Slot bytes held by resident chunks at the end.
    pub resident_bytes: u64,
    /// Highest `resident_bytes` seen.
    pub peak_resident_bytes: u64,
    /// Bytes written to the extent store.
    pub extent_bytes_written: u64,
    /// Bytes read from the extent store.
    pub extent_bytes_read: u64,
    /// Uncompressed bytes handed to the codec for writing.
    pub bytes_compressed_in: u64,
    /// Evictions that compressed and wrote the chunk first.
    pub evictions_compress: u64,
    /// Evictions of already-backed chunks (no I/O).
    pub evictions_cheap: u64,
    /// Chunks freed before they were ever written.
    pub writes_elided: u64,
    /// Evicted chunks read back into a slot.
    pub fault_ins: u64,
    /// Chunks backed early by idle spill threads.
    pub eager_writes: u64,
    /// Evictions written inline because the spill queue was full.
    pub inline_writes: u64,
}

impl From<&PoolStats> for PoolCounters {
    fn from(s: &PoolStats) -> PoolCounters {
        PoolCounters {
            resident_bytes: s.resident_bytes,
            peak_resident_bytes: s.peak_resident_bytes,
            extent_bytes_written: s.extent_bytes_written,
            extent_bytes_read: s.extent_bytes_read,
            bytes_compressed_in: s.bytes_compressed_in,
            evictions_compress: s.evictions_compress,
            evictions_cheap: s.evictions_cheap,
            writes_elided: s.writes_elided,
            fault_ins: s.fault_ins,
            eager_writes: s.eager_writes,
            inline_writes: s.inline_writes,
        }
    }
}

impl PoolCounters {
    /// Adds another process's counters (every field is summed, gauges included: a cluster's
    /// resident bytes are the sum of its processes').
    pub fn add(&mut self, other: &PoolCounters) {
        self.resident_bytes += other.resident_bytes;
        self.peak_resident_bytes += other.peak_resident_bytes;
        self.extent_bytes_written += other.extent_bytes_written;
        self.extent_bytes_read += other.extent_bytes_read;
        self.bytes_compressed_in += other.bytes_compressed_in;
        self.evictions_compress += other.evictions_compress;
        self.evictions_cheap += other.evictions_cheap;
        self.writes_elided += other.writes_elided;
        self.fault_ins += other.fault_ins;
        self.eager_writes += other.eager_writes;
        self.inline_writes += other.inline_writes;
    }
}

/// The paging policy of a `pool` run (`policy{...}` in the JSON), under `PagingPolicy`'s
/// field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReport {
    /// Levels at or below this are lazy.
    pub lazy_below: Option<u8>,
    /// Levels at or above this are eager.
    pub eager_from: Option<u8>,
    /// Level-0 chunks are stored uncompressed.
    pub raw_depth0: bool,
    /// Bodies smaller than this stay resident.
    pub min_bytes: usize,
}

impl From<&PagingPolicy> for PolicyReport {
    fn from(p: &PagingPolicy) -> PolicyReport {
        PolicyReport {
            lazy_below: p.lazy_below,
            eager_from: p.eager_from,
            raw_depth0: p.raw_depth0,
            min_bytes: p.min_bytes,
        }
    }
}

impl PolicyReport {
    /// The policy in words, e.g. `lazy ≤ 0, deeper levels eager under pressure, raw level 0`.
    pub fn describe(&self) -> String {
        let zones = match (self.lazy_below, self.eager_from) {
            (Some(lazy), Some(eager)) => {
                format!("lazy ≤ {lazy}, eager ≥ {eager}, between: eager under pressure")
            }
            (Some(lazy), None) => format!("lazy ≤ {lazy}, deeper levels eager under pressure"),
            (None, Some(eager)) => {
                format!("eager ≥ {eager}, shallower levels eager under pressure")
            }
            (None, None) => "every level eager under pressure".to_string(),
        };
        let raw = if self.raw_depth0 { ", raw level 0" } else { "" };
        format!("{zones}{raw}")
    }
}

/// Everything one run measured: what `spillway join|reduce|levels --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The query.
    pub workload: Workload,
    /// The arrangement it ran on.
    pub backend: Backend,
    /// Updates in the input.
    pub updates: u64,
    /// Distinct keys.
    pub keys: u64,
    /// Probes (`join`).
    pub probes: u64,
    /// Build rounds.
    pub rounds: u64,
    /// Fraction of updates retracted.
    pub retract: f64,
    /// Seed of the input.
    pub seed: u64,
    /// Workers in the cluster (`workers_per_process * processes`).
    pub workers: usize,
    /// Worker threads per process.
    pub workers_per_process: usize,
    /// Processes.
    pub processes: usize,
    /// The byte budget.
    pub budget_bytes: u64,
    /// The pool's extent store (`file`, `swap`, `memory`), `null` without a pool.
    pub extents: Option<String>,
    /// The paging policy (`pool` backend), `null` otherwise.
    pub policy: Option<PolicyReport>,
    /// Seconds of the build phase (the slowest worker's).
    pub build_s: f64,
    /// Seconds of the query phase (the slowest worker's).
    pub query_s: f64,
    /// `join` only: the same as `query_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_s: Option<f64>,
    /// `join` only: the tactic that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_tactic: Option<JoinTactic>,
    /// Seconds of the scan (the slowest worker's).
    pub scan_s: f64,
    /// Seconds from the start of the workers to the end of the scan.
    pub total_s: f64,
    /// Records of the query output, with multiplicity.
    pub output_records: i64,
    /// Checksum of the query output: 16 hex digits.
    pub checksum: String,
    /// Records the scan summed, with multiplicity.
    pub scan_records: i64,
    /// Checksum of the scan: 16 hex digits.
    pub scan_checksum: String,
    /// Physical updates the scan visited.
    pub scan_updates: u64,
    /// The largest peak RSS of any process, bytes.
    pub peak_rss_bytes: u64,
    /// The largest RSS after the scan of any process, bytes.
    pub rss_after_scan_bytes: u64,
    /// The pools' counters, summed over processes.
    pub pool: PoolCounters,
    /// Bytes upstream's `dd-col` spill wrote.
    pub dd_col_spill_bytes: u64,
    /// `spillway levels` only: one entry per spine level that holds or did anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<LevelReport>>,
    /// `spillway levels` only: the pool's bytes per level after each build round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SampleReport>>,
}

impl RunReport {
    /// The report of `plan`, from every worker's result and every process's stats.
    pub fn assemble(
        plan: &QueryPlan,
        workers: &[WorkerResult],
        processes: &[ProcessStats],
        total_s: f64,
    ) -> RunReport {
        let max = |f: fn(&WorkerResult) -> f64| workers.iter().map(f).fold(0.0, f64::max);
        let mut pool = PoolCounters::default();
        for p in processes {
            pool.add(&p.pool);
        }
        let output = workers
            .iter()
            .fold(Checksum::default(), |a, w| a.merge(w.output));
        let scan = workers
            .iter()
            .fold(Checksum::default(), |a, w| a.merge(w.scan));
        let query_s = max(|w| w.query_s);
        let join = plan.workload == Workload::Join;
        RunReport {
            workload: plan.workload,
            backend: plan.backend,
            updates: plan.input.updates,
            keys: plan.input.keys,
            probes: plan.input.probes,
            rounds: plan.input.rounds,
            retract: plan.input.retract,
            seed: plan.input.seed,
            workers: plan.workers * plan.processes,
            workers_per_process: plan.workers,
            processes: plan.processes,
            budget_bytes: plan.budget,
            extents: plan.pool.as_ref().map(|c| c.extents.name().to_string()),
            policy: (plan.backend == Backend::Pool).then(|| PolicyReport::from(&plan.policy)),
            build_s: max(|w| w.build_s),
            query_s,
            join_s: join.then_some(query_s),
            join_tactic: join.then_some(plan.join_tactic),
            scan_s: max(|w| w.scan_s),
            total_s,
            output_records: output.records,
            checksum: output.hex(),
            scan_records: scan.records,
            scan_checksum: scan.hex(),
            scan_updates: workers.iter().map(|w| w.scan_updates).sum(),
            peak_rss_bytes: processes.iter().map(|p| p.peak_rss).max().unwrap_or(0),
            rss_after_scan_bytes: processes
                .iter()
                .map(|p| p.rss_after_scan)
                .max()
                .unwrap_or(0),
            pool,
            dd_col_spill_bytes: workers.iter().map(|w| w.spill_bytes).sum(),
            levels: None,
            series: None,
        }
    }

    /// This report with the per-level `levels` and `series` of `spillway levels`.
    pub fn with_levels(self, levels: &LevelsReport) -> RunReport {
        RunReport {
            levels: Some(levels.level_reports()),
            series: Some(levels.sample_reports()),
            ..self
        }
    }

    /// The seconds of the query phase under its JSON name: `join_s` for `join`, `query_s`
    /// otherwise (both fields hold the same value for `join`).
    pub fn query_phase_s(&self) -> f64 {
        self.join_s.unwrap_or(self.query_s)
    }
}

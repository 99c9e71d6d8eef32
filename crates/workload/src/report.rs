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
    pub pool: PoolStats,
}

/// A measurement on its way to worker 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Gathered {
    /// One worker's result (every worker sends one).
    Worker(WorkerResult),
    /// One process's stats (the first worker of each process sends them).
    Process(Box<ProcessStats>),
}

/// The pool's health: the counters that say a run degraded (faults survived, writes refused,
/// the budget exceeded). The `health` object of a [`RunReport`]; each non-zero field has a
/// warning in [`Health::warnings`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Extent I/O errors (writes and reads, retried ones included).
    pub io_errors: u64,
    /// Extent writes retried after an I/O error.
    pub write_retries: u64,
    /// 1 if extent writes were disabled at the end of the run (a persistent write failure).
    pub writes_disabled: u64,
    /// Times a probe write re-enabled writes after they were disabled.
    pub writes_reenabled: u64,
    /// Writes refused because the extent store was full (chunks stayed resident).
    pub write_nospace: u64,
    /// Extent reads retried after an I/O error or a checksum mismatch.
    pub read_retries: u64,
    /// Extent reads whose checksum did not match (re-read; never used).
    pub checksum_failures: u64,
    /// Slots granted over the budget because nothing was evictable.
    pub budget_overshoots: u64,
    /// Bytes of oversize chunks (over 8 MiB) held on the heap, outside the budget, at the end.
    pub oversize_bytes: u64,
    /// Panics caught on spill threads (a store or codec call panicked).
    pub spill_panics: u64,
}

impl Health {
    /// The health part of `pool`'s counters.
    pub fn of(pool: &PoolStats) -> Health {
        Health {
            io_errors: pool.io_errors,
            write_retries: pool.write_retries,
            writes_disabled: pool.writes_disabled,
            writes_reenabled: pool.writes_reenabled,
            write_nospace: pool.write_nospace,
            read_retries: pool.read_retries,
            checksum_failures: pool.checksum_failures,
            budget_overshoots: pool.budget_overshoots,
            oversize_bytes: pool.oversize_bytes,
            spill_panics: pool.spill_panics,
        }
    }

    /// Whether every counter is zero.
    pub fn is_healthy(&self) -> bool {
        *self == Health::default()
    }

    /// One line per non-zero counter: what happened, what it cost, and what to do.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.io_errors > 0 {
            out.push(format!(
                "{} extent I/O errors ({} writes and {} reads retried): the device under the \
                 extent dir is failing; check the kernel log (dmesg) and the disk, or move \
                 --extent-dir",
                self.io_errors, self.write_retries, self.read_retries
            ));
        } else if self.write_retries + self.read_retries > 0 {
            out.push(format!(
                "{} writes and {} reads of extents were retried: check the extent device",
                self.write_retries, self.read_retries
            ));
        }
        if self.writes_disabled > 0 {
            out.push(
                "extent writes are disabled after a persistent write failure: chunks stay \
                 resident and memory grows past the budget; fix the extent device or move \
                 --extent-dir"
                    .into(),
            );
        }
        if self.writes_reenabled > 0 {
            out.push(format!(
                "extent writes were disabled and re-enabled {} time(s) by a probe write: the \
                 device failed for a while; check it",
                self.writes_reenabled
            ));
        }
        if self.write_nospace > 0 {
            out.push(format!(
                "{} extent writes found the store full (disk, quota or swap): chunks stayed \
                 resident over the budget; free space or give --extent-dir more room",
                self.write_nospace
            ));
        }
        if self.checksum_failures > 0 {
            out.push(format!(
                "{} extent reads failed their checksum and were re-read (no corrupt data was \
                 used): the device or RAM corrupts data; check them",
                self.checksum_failures
            ));
        }
        if self.budget_overshoots > 0 {
            out.push(format!(
                "{} slots were granted over the budget because nothing was evictable (pinned \
                 chunks, disabled writes or a full store): resident memory exceeded --budget; \
                 raise --budget or fix the extent store",
                self.budget_overshoots
            ));
        }
        if self.oversize_bytes > 0 {
            out.push(format!(
                "{} bytes of chunks over 8 MiB are held on the heap outside the budget: \
                 memory exceeds --budget by that much",
                self.oversize_bytes
            ));
        }
        if self.spill_panics > 0 {
            out.push(format!(
                "{} panics were caught on spill threads (the chunks stayed intact): a bug in \
                 an extent store or the codec; see the log above",
                self.spill_panics
            ));
        }
        out
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
    /// How keys are drawn, normalized (`uniform`, `zipf:1.2`).
    #[serde(default = "uniform")]
    pub key_dist: String,
    /// What the records are: `u64` or `strings`.
    #[serde(default = "u64_records")]
    pub records: String,
    /// `strings` only: the length of every value, bytes (`null` for `u64`).
    #[serde(default)]
    pub val_bytes: Option<u64>,
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
    pub policy: Option<PagingPolicy>,
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
    pub pool: PoolStats,
    /// Whether the pool ran degraded, and why: its fault and budget counters, summed over
    /// processes (all zero on a healthy run, and without a pool).
    #[serde(default)]
    pub health: Health,
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
        let mut pool = PoolStats::default();
        for p in processes {
            pool += &p.pool;
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
            key_dist: plan.input.key_dist.dist().to_string(),
            records: plan.input.records.name().to_string(),
            val_bytes: plan.input.records.val_bytes().map(|n| n as u64),
            seed: plan.input.seed,
            workers: plan.workers * plan.processes,
            workers_per_process: plan.workers,
            processes: plan.processes,
            budget_bytes: plan.budget,
            extents: plan.pool.as_ref().map(|c| c.extents.name().to_string()),
            policy: (plan.backend == Backend::Pool).then_some(plan.policy),
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
            health: Health::of(&pool),
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

/// The `records` of a report written before the field existed.
fn u64_records() -> String {
    "u64".to_string()
}

/// The `key_dist` of a report written before the field existed.
fn uniform() -> String {
    "uniform".to_string()
}

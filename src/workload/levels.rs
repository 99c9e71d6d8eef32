//! `spillway levels`: the `join` workload, then a table of where its bytes live, spine level by
//! spine level.
//!
//! A level is a chunk's depth (0 for batcher output, merge outputs one deeper than their
//! deepest input; see `spillway_trace::level_of`). For each level the table shows the trace's
//! batches, chunks and records (worker 0's trace), the pool's resident and extent bytes at the
//! end, the chunks written (evicted or eagerly backed) and the bytes they took, the chunks
//! freed before they were written (elided), the fault-ins during the join phase, and the time
//! worker 0 spent merging into the level. `--json` prints the run's report with a `levels`
//! array and a `series` of per-round samples (resident and extent bytes per level), which
//! `examples/plot_levels.rs` draws.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use spillway_pool::{format_size, LevelStats, Pool};
use spillway_trace::PagingPolicy;
use spillway_trace::{take_merge_times, MergeTime, SpineLevel, LEVELS};

use super::args::{Backend, Plan, QueryArgs, Workload};

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
    pub round: u64,
    pub elapsed_s: f64,
    pub levels: Vec<LevelStats>,
}

/// What `spillway levels` reports.
#[derive(Clone, Debug)]
pub struct LevelsReport {
    pub series: Vec<Sample>,
    pub before_join: Vec<LevelStats>,
    pub after_join: Vec<LevelStats>,
    /// The pool's levels after the scan.
    pub end: Vec<LevelStats>,
    pub spine: [SpineLevel; LEVELS],
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

/// The policy in words, e.g. `lazy ≤ 0, deeper levels eager under pressure, raw level 0`.
pub fn describe(policy: &PagingPolicy) -> String {
    let zones = match (policy.lazy_below, policy.eager_from) {
        (Some(lazy), Some(eager)) => {
            format!("lazy ≤ {lazy}, eager ≥ {eager}, between: eager under pressure")
        }
        (Some(lazy), None) => format!("lazy ≤ {lazy}, deeper levels eager under pressure"),
        (None, Some(eager)) => format!("eager ≥ {eager}, shallower levels eager under pressure"),
        (None, None) => "every level eager under pressure".to_string(),
    };
    format!(
        "{zones}{}",
        if policy.raw_depth0 {
            ", raw level 0"
        } else {
            ""
        }
    )
}

/// One level's row.
#[derive(Clone, Copy, Debug, Default)]
pub struct LevelRow {
    pub level: usize,
    pub spine: SpineLevel,
    pub pool: LevelStats,
    /// Fault-ins during the join phase.
    pub join_fault_ins: u64,
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

    /// `levels` and `series`, for the JSON report.
    pub fn json(&self) -> (Value, Value) {
        let levels = self
            .rows()
            .iter()
            .map(|r| {
                json!({
                    "level": r.level,
                    "batches": r.spine.batches,
                    "chunks": r.spine.chunks,
                    "pooled_chunks": r.spine.pooled_chunks,
                    "records": r.spine.records,
                    "resident_bytes": r.pool.resident_bytes,
                    "extent_bytes": r.pool.extent_bytes,
                    "chunks_written": r.pool.chunks_written,
                    "extent_bytes_written": r.pool.extent_bytes_written,
                    "writes_elided": r.pool.writes_elided,
                    "fault_ins": r.pool.fault_ins,
                    "join_fault_ins": r.join_fault_ins,
                    "merge_s": r.merge.time.as_secs_f64(),
                    "merged_records": r.merge.records,
                })
            })
            .collect();
        let series = self
            .series
            .iter()
            .map(|s| {
                json!({
                    "round": s.round,
                    "elapsed_s": s.elapsed_s,
                    "resident_bytes": s.levels.iter().map(|l| l.resident_bytes).collect::<Vec<_>>(),
                    "extent_bytes": s.levels.iter().map(|l| l.extent_bytes).collect::<Vec<_>>(),
                })
            })
            .collect();
        (levels, series)
    }
}

/// Runs `join` with the per-level report: the report and the levels, as `spillway levels`
/// prints them (also used by `examples/plot_levels.rs` and `benches/spine_levels.rs`).
pub fn collect(
    args: &QueryArgs,
) -> Result<Option<(super::run::Report, LevelsReport)>, Box<dyn std::error::Error>> {
    if !matches!(args.backend, Backend::Pool | Backend::Memory) {
        return Err(format!(
            "spillway levels reports paged arrangements (pool or memory), not {}",
            args.backend.name()
        )
        .into());
    }
    let plan = Plan {
        levels: true,
        ..Plan::new(Workload::Join, args)?
    };
    Ok(super::run::execute(plan, args)?.map(|(report, levels)| {
        (
            report,
            levels.expect("worker 0 of process 0 records the levels"),
        )
    }))
}

/// The backing policies `benches/spine_levels.rs` and `examples/plot_levels.rs` compare, as
/// `spillway levels` flags.
pub const POLICIES: [(&str, &[&str]); 4] = [
    ("memory", &["--backend", "memory"]),
    ("lazy", &["--eager-from", "none", "--lazy-below", "255"]),
    ("eager", &["--eager-from", "0", "--lazy-below", "none"]),
    ("default", &[]),
];

/// [`collect`] with `spillway levels` flags, in this process (which must be the only one).
pub fn collect_flags(
    flags: &[&str],
) -> Result<(super::run::Report, LevelsReport), Box<dyn std::error::Error>> {
    #[derive(clap::Parser)]
    struct Levels {
        #[command(flatten)]
        query: QueryArgs,
    }
    let argv = std::iter::once("levels").chain(flags.iter().copied());
    let args = <Levels as clap::Parser>::try_parse_from(argv)?.query;
    collect(&args)?.ok_or_else(|| "only a single-process run reports here".into())
}

/// The JSON `spillway levels --json` prints: the run's report with `levels` and `series`.
pub fn report_json(report: &super::run::Report, levels: &LevelsReport) -> Value {
    let mut out = report.json();
    let (rows, series) = levels.json();
    out["levels"] = rows;
    out["series"] = series;
    out
}

/// `spillway levels`.
pub fn run(args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let Some((report, levels)) = collect(args)? else {
        return Ok(());
    };
    if args.json {
        println!("{}", report_json(&report, &levels));
    } else {
        print!("{}", report.summary());
        print!("{}", levels.table());
    }
    Ok(())
}

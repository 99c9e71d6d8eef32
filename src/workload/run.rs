//! Running `spillway join` / `spillway reduce`: validate, start the pool, the metrics endpoint
//! and the workers, gather every worker's (and process's) measurements on worker 0, and
//! report them as a summary or one JSON object.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use spillway_pool::{format_size, Pool, PoolStats};
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Input as _;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use timely::worker::Worker;

use super::args::{Backend, Plan, QueryArgs, Workload};
use super::input::Checksum;
use super::levels::{LevelsReport, LevelsSink};
use super::metrics;
use super::progress::Phases;
use super::query::{self, WorkerResult};

/// The pool counters a report carries (zeros without a pool), in JSON order.
const POOL_FIELDS: [&str; POOL_VALUES] = [
    "resident_bytes",
    "peak_resident_bytes",
    "extent_bytes_written",
    "extent_bytes_read",
    "bytes_compressed_in",
    "evictions_compress",
    "evictions_cheap",
    "writes_elided",
    "fault_ins",
    "eager_writes",
    "inline_writes",
];

/// How many pool counters a report carries.
const POOL_VALUES: usize = 11;

fn pool_values(s: &PoolStats) -> [u64; POOL_VALUES] {
    [
        s.resident_bytes,
        s.peak_resident_bytes,
        s.extent_bytes_written,
        s.extent_bytes_read,
        s.bytes_compressed_in,
        s.evictions_compress,
        s.evictions_cheap,
        s.writes_elided,
        s.fault_ins,
        s.eager_writes,
        s.inline_writes,
    ]
}

/// Measurements of one process (summed or maxed over processes in the report).
#[derive(Clone, Copy, Debug, Default)]
struct ProcessStats {
    peak_rss: u64,
    rss_after_scan: u64,
    pool: [u64; POOL_VALUES],
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub plan: Plan,
    pub build_s: f64,
    pub query_s: f64,
    pub scan_s: f64,
    pub total_s: f64,
    pub output: Checksum,
    pub scan: Checksum,
    pub scan_updates: u64,
    peak_rss: u64,
    rss_after_scan: u64,
    pool: [u64; POOL_VALUES],
    col_spill_bytes: u64,
}

/// A `/proc/self/status` field in bytes (`VmHWM:`, `VmRSS:`).
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Runs `workload` as `args` say and prints its report.
pub fn run(workload: Workload, args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let plan = Plan::new(workload, args)?;
    if let Some((report, _)) = execute(plan, args)? {
        if args.json {
            println!("{}", report.json());
        } else {
            print!("{}", report.summary());
        }
    }
    Ok(())
}

/// What process 0 of a run returns: the report, and the per-level report if asked for.
pub type Outcome = Option<(Report, Option<LevelsReport>)>;

/// Runs `plan` (with `args`' output flags: progress bar, metrics). Process 0 returns the
/// report, and the per-level report if the plan asks for one; other processes `None`.
pub fn execute(plan: Plan, args: &QueryArgs) -> Result<Outcome, Box<dyn std::error::Error>> {
    let pool = plan.pool.clone().map(Pool::new).transpose()?;
    let phases = Arc::new(Phases::new(!args.quiet && !args.json));
    if let Some(addr) = args.metrics_addr {
        let registry = prometheus::Registry::new();
        phases.register(&registry)?;
        if let Some(pool) = &pool {
            pool.register_metrics(&registry, &[("process", &plan.process.to_string())])?;
        }
        let bound = metrics::serve(addr, registry)?;
        if !args.json {
            eprintln!("spillway: metrics at http://{bound}/metrics");
        }
    }
    let started = Instant::now();
    let levels: LevelsSink = Arc::default();
    let (plan2, phases2, levels2) = (plan.clone(), phases.clone(), levels.clone());
    // Connecting a cluster prints on stdout; keep it for the report (see `super::stdio`).
    let quiet_stdout = (plan.processes > 1).then(super::stdio::StdoutToStderr::redirect);
    let guards = timely::execute(plan.timely_config(), move |worker| {
        let result = query::run_worker(worker, &plan2, pool.as_ref(), &phases2, &levels2);
        gather(worker, &plan2, &result, || ProcessStats {
            peak_rss: status_bytes("VmHWM:"),
            rss_after_scan: status_bytes("VmRSS:"),
            pool: pool
                .as_ref()
                .map_or([0; POOL_VALUES], |p| pool_values(&p.stats())),
        })
    })?;
    drop(quiet_stdout);
    let mut report = None;
    for result in guards.join() {
        if let Some(r) = result? {
            report = Some(r);
        }
    }
    phases.finish();
    let Some((workers, processes)) = report else {
        // Only process 0 reports.
        return Ok(None);
    };
    let report = Report::assemble(plan, workers, processes, started.elapsed().as_secs_f64());
    let levels = levels.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Some((report, levels)))
}

/// Sends this worker's result, and its process's stats if it leads its process, to worker 0,
/// which returns them all.
#[allow(clippy::type_complexity)]
fn gather(
    worker: &mut Worker,
    plan: &Plan,
    result: &WorkerResult,
    process_stats: impl FnOnce() -> ProcessStats,
) -> Option<(Vec<WorkerResult>, Vec<ProcessStats>)> {
    let got: Rc<RefCell<Vec<Vec<u64>>>> = Rc::default();
    let sink = got.clone();
    let (mut input, probe): (_, ProbeHandle<u64>) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<Vec<u64>>();
        let (probe, _) = stream
            .exchange(|_| 0)
            .inspect(move |x: &Vec<u64>| sink.borrow_mut().push(x.clone()))
            .probe();
        (input, probe)
    });
    input.send(encode_worker(result));
    input.advance_to(1);
    // Every worker's scan is done once time 0 is: process stats are final.
    while probe.less_than(&1) {
        worker.step();
    }
    if worker.index() % plan.workers == 0 {
        input.send(encode_process(&process_stats()));
    }
    drop(input);
    while !probe.done() {
        worker.step();
    }
    if worker.index() != 0 {
        return None;
    }
    let (mut workers, mut processes) = (Vec::new(), Vec::new());
    for message in got.borrow().iter() {
        match message[0] {
            0 => workers.push(decode_worker(&message[1..])),
            _ => processes.push(decode_process(&message[1..])),
        }
    }
    Some((workers, processes))
}

fn encode_worker(r: &WorkerResult) -> Vec<u64> {
    vec![
        0,
        r.build_s.to_bits(),
        r.query_s.to_bits(),
        r.scan_s.to_bits(),
        r.output.sum,
        r.output.records as u64,
        r.scan.sum,
        r.scan.records as u64,
        r.scan_updates,
        r.spill_bytes,
    ]
}

fn decode_worker(m: &[u64]) -> WorkerResult {
    WorkerResult {
        build_s: f64::from_bits(m[0]),
        query_s: f64::from_bits(m[1]),
        scan_s: f64::from_bits(m[2]),
        output: Checksum {
            sum: m[3],
            records: m[4] as i64,
        },
        scan: Checksum {
            sum: m[5],
            records: m[6] as i64,
        },
        scan_updates: m[7],
        spill_bytes: m[8],
    }
}

fn encode_process(p: &ProcessStats) -> Vec<u64> {
    let mut m = vec![1, p.peak_rss, p.rss_after_scan];
    m.extend_from_slice(&p.pool);
    m
}

fn decode_process(m: &[u64]) -> ProcessStats {
    ProcessStats {
        peak_rss: m[0],
        rss_after_scan: m[1],
        pool: m[2..2 + POOL_VALUES]
            .try_into()
            .expect("a pool value per field"),
    }
}

impl Report {
    fn assemble(
        plan: Plan,
        workers: Vec<WorkerResult>,
        processes: Vec<ProcessStats>,
        total_s: f64,
    ) -> Report {
        let max = |f: fn(&WorkerResult) -> f64| workers.iter().map(f).fold(0.0, f64::max);
        let mut pool = [0u64; POOL_VALUES];
        for p in &processes {
            for (sum, v) in pool.iter_mut().zip(p.pool) {
                *sum += v;
            }
        }
        Report {
            build_s: max(|w| w.build_s),
            query_s: max(|w| w.query_s),
            scan_s: max(|w| w.scan_s),
            total_s,
            output: workers
                .iter()
                .fold(Checksum::default(), |a, w| a.merge(w.output)),
            scan: workers
                .iter()
                .fold(Checksum::default(), |a, w| a.merge(w.scan)),
            scan_updates: workers.iter().map(|w| w.scan_updates).sum(),
            peak_rss: processes.iter().map(|p| p.peak_rss).max().unwrap_or(0),
            rss_after_scan: processes
                .iter()
                .map(|p| p.rss_after_scan)
                .max()
                .unwrap_or(0),
            pool,
            col_spill_bytes: workers.iter().map(|w| w.spill_bytes).sum(),
            plan,
        }
    }

    /// The report as one JSON object (the field names are a contract: see the README).
    pub fn json(&self) -> serde_json::Value {
        let p = &self.plan;
        let pool: serde_json::Map<String, serde_json::Value> = POOL_FIELDS
            .iter()
            .zip(self.pool)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut out = json!({
            "workload": p.workload.name(),
            "backend": p.backend.name(),
            "updates": p.input.updates,
            "keys": p.input.keys,
            "probes": p.input.probes,
            "rounds": p.input.rounds,
            "retract": p.input.retract,
            "key_dist": p.input.key_dist.dist().to_string(),
            "seed": p.input.seed,
            "workers": p.workers * p.processes,
            "workers_per_process": p.workers,
            "processes": p.processes,
            "budget_bytes": p.budget,
            "extents": p.pool.as_ref().map(|c| c.extents.name()),
            "policy": (p.backend == Backend::Pool).then(|| json!({
                "lazy_below": p.policy.lazy_below,
                "eager_from": p.policy.eager_from,
                "raw_depth0": p.policy.raw_depth0,
                "min_bytes": p.policy.min_bytes,
            })),
            "build_s": self.build_s,
            "query_s": self.query_s,
            "scan_s": self.scan_s,
            "total_s": self.total_s,
            "output_records": self.output.records,
            "checksum": self.output.hex(),
            "scan_records": self.scan.records,
            "scan_checksum": self.scan.hex(),
            "scan_updates": self.scan_updates,
            "peak_rss_bytes": self.peak_rss,
            "rss_after_scan_bytes": self.rss_after_scan,
            "pool": pool,
            "dd_col_spill_bytes": self.col_spill_bytes,
        });
        if p.workload == Workload::Join {
            out["join_s"] = json!(self.query_s);
            out["join_tactic"] = json!(p.join_tactic.name());
        }
        out
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let p = &self.plan;
        let i = &p.input;
        let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s / 1e6 } else { 0.0 };
        let mut out = format!(
            "spillway {}: {} updates over {} keys in {} rounds{}, backend {}, {} worker(s) x {} process(es)\n",
            p.workload.name(),
            i.updates,
            i.keys,
            i.rounds,
            match p.workload {
                Workload::Join => format!(", {} probes ({} tactic)", i.probes, p.join_tactic.name()),
                Workload::Reduce => String::new(),
            },
            p.backend.name(),
            p.workers,
            p.processes,
        );
        out += &format!(
            "  build  {:7.2} s  {:6.2} M updates/s\n",
            self.build_s,
            rate(i.updates, self.build_s)
        );
        out += &format!("  {:<6} {:7.2} s\n", p.workload.query_phase(), self.query_s);
        out += &format!(
            "  scan   {:7.2} s  {:6.2} M updates/s\n",
            self.scan_s,
            rate(self.scan_updates, self.scan_s)
        );
        out += &format!("  total  {:7.2} s\n", self.total_s);
        out += &format!(
            "  output {} records, checksum {}\n  scan   {} records, checksum {}\n",
            self.output.records,
            self.output.hex(),
            self.scan.records,
            self.scan.hex()
        );
        out += &format!(
            "  memory peak RSS {}, after scan {}\n",
            format_size(self.peak_rss),
            format_size(self.rss_after_scan)
        );
        match p.backend {
            Backend::Pool => {
                let [resident, peak, written, read, compressed_in, ev_compress, ev_cheap, elided, faults, eager, inline] =
                    self.pool;
                out += &format!("  policy {}\n", super::levels::describe(&p.policy));
                out += &format!(
                    "  pool   budget {}, peak resident {}, now {}\n         wrote {} ({} compressed in, {} evictions, {} cheap, {} eager, {} inline), read {} in {} fault-ins, {} writes elided\n",
                    format_size(p.budget),
                    format_size(peak),
                    format_size(resident),
                    format_size(written),
                    format_size(compressed_in),
                    ev_compress,
                    ev_cheap,
                    eager,
                    inline,
                    format_size(read),
                    faults,
                    elided
                );
            }
            Backend::DdCol => {
                out += &format!(
                    "  spill  {} written by upstream's ColChunk spill (record budget {})\n",
                    format_size(self.col_spill_bytes),
                    p.budget / super::colspill::RECORD_BYTES
                );
            }
            _ => {}
        }
        out
    }
}

//! `spillway join` / `spillway reduce`: validate the flags into a plan, start the pool, the
//! metrics endpoint and the progress bar, run the plan, and print its report.
//!
//! Stdout carries the report and nothing else: the summary, or with `--json` exactly one
//! JSON object (cluster setup chatter is sent to stderr, see [`super::stdio`]).

use std::sync::Arc;

use spillway_pool::Pool;
use spillway_workload::plan::{QueryPlan, Workload};
use spillway_workload::run::RunOutcome;

use super::args::QueryArgs;
use super::metrics;
use super::progress::Phases;
use super::report;
use super::stdio::StdoutToStderr;

/// Runs `workload` as `args` say and prints its report.
pub fn run(workload: Workload, args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let plan = args.plan(workload)?;
    if let Some(outcome) = execute(plan, args)? {
        report::print(&outcome.report, args.json)?;
        report::warn_health(&outcome.report);
    }
    Ok(())
}

/// The plan's pool, if it has one: with `--inject-faults`, over a file store whose I/O goes
/// through a seeded `FaultyIo` (feature `fault-injection`).
fn open_pool(
    plan: &QueryPlan,
    args: &QueryArgs,
) -> Result<Option<Pool>, Box<dyn std::error::Error>> {
    let Some(config) = plan.pool.clone() else {
        return Ok(None);
    };
    #[cfg(feature = "fault-injection")]
    if let Some(spec) = &args.inject_faults {
        use spillway_pool::{ExtentBackend, FaultyIo, FileStore, FileStoreOptions};
        let rates = super::args::parse_fault_spec(spec)?;
        let ExtentBackend::File {
            dir,
            direct_io,
            capacity,
        } = &config.extents
        else {
            return Err("--inject-faults needs --extents file".into());
        };
        let dir = dir.clone().unwrap_or_else(std::env::temp_dir);
        // Deterministic per seed and process.
        let seed = args.seed ^ (plan.process as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let io = Arc::new(FaultyIo::random(rates, seed));
        let options = FileStoreOptions {
            direct_io: *direct_io,
            capacity: *capacity,
        };
        let store = FileStore::open_with_io(&dir, options, io)?;
        eprintln!("spillway: injecting faults into the file extent store: {rates} (seed {seed})");
        return Ok(Some(Pool::with_store(config, Arc::new(store))?));
    }
    let _ = args;
    Ok(Some(Pool::new(config)?))
}

/// Runs `plan` with `args`' output flags (progress bar, metrics endpoint). Process 0 returns
/// the outcome; other processes `None`.
pub fn execute(
    plan: QueryPlan,
    args: &QueryArgs,
) -> Result<Option<RunOutcome>, Box<dyn std::error::Error>> {
    let pool = open_pool(&plan, args)?;
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
    // Connecting a cluster prints on stdout; keep it for the report.
    let quiet_stdout = (plan.processes > 1).then(StdoutToStderr::redirect);
    let outcome = spillway_workload::run::execute(plan, pool, phases.clone());
    drop(quiet_stdout);
    phases.finish();
    outcome
}

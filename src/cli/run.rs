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
    }
    Ok(())
}

/// Runs `plan` with `args`' output flags (progress bar, metrics endpoint). Process 0 returns
/// the outcome; other processes `None`.
pub fn execute(
    plan: QueryPlan,
    args: &QueryArgs,
) -> Result<Option<RunOutcome>, Box<dyn std::error::Error>> {
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
    // Connecting a cluster prints on stdout; keep it for the report.
    let quiet_stdout = (plan.processes > 1).then(StdoutToStderr::redirect);
    let outcome = spillway_workload::run::execute(plan, pool, phases.clone());
    drop(quiet_stdout);
    phases.finish();
    outcome
}

//! `spillway levels`: the `join` workload with the per-level recorder on, then the run's
//! summary and a table of where its bytes live, spine level by spine level (`--json`: the
//! run's report with its `levels` and `series`). See `spillway_workload::levels`.

use spillway_workload::plan::Workload;

use super::args::QueryArgs;
use super::report;

/// Runs `spillway levels` and prints its report.
pub fn run(args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let plan = args.plan(Workload::Join)?.for_levels()?;
    let Some(outcome) = super::run::execute(plan, args)? else {
        return Ok(());
    };
    let levels = outcome
        .levels
        .expect("worker 0 of process 0 records the levels");
    report::warn_health(&outcome.report);
    if args.json {
        report::print(&outcome.report.with_levels(&levels), true)?;
    } else {
        report::print(&outcome.report, false)?;
        print!("{}", levels.table());
    }
    Ok(())
}

//! Running a [`QueryPlan`] on timely workers and gathering one [`RunReport`].
//!
//! Every worker runs the plan's dataflows (the private `phases` module), then sends its
//! [`WorkerResult`] to worker 0, and the first worker of each process its process's
//! [`ProcessStats`] once every scan is done (so peak memory and pool counters are final).
//! Process 0 assembles the report; other processes return `None`. Nothing here prints: the
//! caller shows progress through its [`Progress`] and prints the report.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use spillway_pool::{Pool, PoolStats};
use spillway_trace::PagingPolicy;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Input as _;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use timely::worker::Worker;

use crate::input::Records;
use crate::levels::{LevelsReport, LevelsSink};
use crate::plan::{Backend, QueryPlan};
use crate::progress::{Progress, Silent};
use crate::query;
use crate::report::{Gathered, ProcessStats, RunReport, WorkerResult};
use crate::rss;
use crate::strings;

/// What process 0 of a run returns.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The run's report.
    pub report: RunReport,
    /// The per-level report, if the plan asked for one.
    pub levels: Option<LevelsReport>,
}

/// Runs `plan` with `pool` (the plan's pool, created by the caller so that it can register
/// its metrics first; `None` for backends without one). Process 0 returns the outcome, other
/// processes `None`.
pub fn execute(
    plan: QueryPlan,
    pool: Option<Pool>,
    progress: Arc<dyn Progress>,
) -> Result<Option<RunOutcome>, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let levels: LevelsSink = Arc::default();
    let (plan2, levels2) = (plan.clone(), levels.clone());
    let guards = timely::execute(plan.timely_config(), move |worker| {
        let run_worker = match plan2.input.records {
            Records::U64 => query::run_worker,
            Records::Strings { .. } => strings::run_worker,
        };
        let result = run_worker(worker, &plan2, pool.as_ref(), &*progress, &levels2);
        gather(worker, &plan2, &result, || ProcessStats {
            peak_rss: rss::peak_rss(),
            rss_after_scan: rss::current_rss(),
            pool: pool.as_ref().map_or_else(PoolStats::default, |p| p.stats()),
        })
    })?;
    let mut gathered = None;
    for result in guards.join() {
        if let Some(r) = result? {
            gathered = Some(r);
        }
    }
    let Some((workers, processes)) = gathered else {
        // Only process 0 reports.
        return Ok(None);
    };
    let report = RunReport::assemble(&plan, &workers, &processes, started.elapsed().as_secs_f64());
    let levels = levels.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Some(RunOutcome { report, levels }))
}

/// Every worker's result and every process's stats, as worker 0 gathered them.
type Measurements = (Vec<WorkerResult>, Vec<ProcessStats>);

/// Sends this worker's result, and its process's stats if it leads its process, to worker 0,
/// which returns them all.
fn gather(
    worker: &mut Worker,
    plan: &QueryPlan,
    result: &WorkerResult,
    process_stats: impl FnOnce() -> ProcessStats,
) -> Option<Measurements> {
    let got: Rc<RefCell<Vec<Gathered>>> = Rc::default();
    let sink = got.clone();
    let (mut input, probe): (_, ProbeHandle<u64>) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<Gathered>();
        let (probe, _) = stream
            .exchange(|_| 0)
            .inspect(move |x: &Gathered| sink.borrow_mut().push(x.clone()))
            .probe();
        (input, probe)
    });
    input.send(Gathered::Worker(*result));
    input.advance_to(1);
    // Every worker's scan is done once time 0 is: process stats are final.
    while probe.less_than(&1) {
        worker.step();
    }
    if worker.index().is_multiple_of(plan.workers) {
        input.send(Gathered::Process(Box::new(process_stats())));
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
        match *message {
            Gathered::Worker(w) => workers.push(w),
            Gathered::Process(ref p) => processes.push(**p),
        }
    }
    Some((workers, processes))
}

/// Runs `plan` with the per-level report (see [`QueryPlan::for_levels`]) in this process,
/// which must be the only one, without progress: what `spillway levels` measures (used by
/// `examples/plot_levels.rs` and `benches/spine_levels.rs`).
pub fn collect_levels(
    plan: QueryPlan,
) -> Result<(RunReport, LevelsReport), Box<dyn std::error::Error>> {
    let plan = plan.for_levels()?;
    let pool = plan.pool.clone().map(Pool::new).transpose()?;
    let outcome =
        execute(plan, pool, Arc::new(Silent))?.ok_or("only a single-process run reports here")?;
    let levels = outcome
        .levels
        .expect("worker 0 of process 0 records the levels");
    Ok((outcome.report, levels))
}

/// The backing policies `benches/spine_levels.rs` and `examples/plot_levels.rs` compare:
/// `memory` (paging off), `lazy` (every level written only when evicted), `eager` (every level
/// backed when sealed) and `default`, each as the backend and policy it runs with.
pub fn compared_policies() -> [(&'static str, Backend, PagingPolicy); 4] {
    [
        ("memory", Backend::Memory, PagingPolicy::default()),
        ("lazy", Backend::Pool, PagingPolicy::lazy_everywhere()),
        ("eager", Backend::Pool, PagingPolicy::eager_everywhere()),
        ("default", Backend::Pool, PagingPolicy::default()),
    ]
}

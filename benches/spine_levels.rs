//! Spine levels: the join workload under each backing policy, timed by criterion, with the
//! per-level table (batches, records, resident and extent bytes, chunks written and elided,
//! fault-ins during the join, merge time) printed once per policy and saved as JSON next to
//! criterion's report (`target/criterion/spine_levels/<policy>/levels.json`).
//!
//! ```text
//! cargo bench --bench spine_levels                       # 20M at 32 MiB: 4 policies x 11 runs of 8-18 s
//! SPILLWAY_BENCH_UPDATES=2M SPILLWAY_BENCH_BUDGET=4MiB cargo bench --bench spine_levels
//! ```
//! Policies: `memory` (paging off), `lazy` (every level written only when evicted), `eager`
//! (every level backed when sealed), `default` (level-keyed: see `PagingPolicy`).

use std::path::PathBuf;

use criterion::{Criterion, Throughput};
use spillway_workload::plan::{default_input, QueryPlan, Workload};
use spillway_workload::run::{collect_levels, compared_policies};
use spillway_workload::units::parse_count;

fn main() {
    let updates = std::env::var("SPILLWAY_BENCH_UPDATES").unwrap_or_else(|_| "20M".into());
    let budget = std::env::var("SPILLWAY_BENCH_BUDGET").unwrap_or_else(|_| "32MiB".into());
    let updates = parse_count(&updates).expect("SPILLWAY_BENCH_UPDATES is a count");
    let budget = spillway::parse_size(&budget).expect("SPILLWAY_BENCH_BUDGET is a size");
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("spine_levels");
    group.sample_size(10);
    let out_dir =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("criterion/spine_levels");
    for (name, backend, policy) in compared_policies() {
        let plan = QueryPlan {
            policy,
            ..QueryPlan::local(Workload::Join, backend, default_input(updates), budget)
                .expect("a valid budget")
        };
        let run = || collect_levels(plan.clone()).expect("the run succeeds");
        // One run outside the timing, for the table.
        let (report, levels) = run();
        eprintln!(
            "\n{name}: {:.2} s total, {} written\n{}",
            report.total_s,
            spillway::format_size(levels.end.iter().map(|l| l.extent_bytes_written).sum()),
            levels.table()
        );
        let dir = out_dir.join(name);
        if std::fs::create_dir_all(&dir).is_ok() {
            let json = serde_json::to_string(&report.clone().with_levels(&levels))
                .expect("a report serializes");
            let _ = std::fs::write(dir.join("levels.json"), json);
        }
        group.throughput(Throughput::Elements(report.updates));
        group.bench_function(name, |b| b.iter(run));
    }
    group.finish();
    criterion.final_summary();
}

//! `spillway compare`: runs one workload once per backend, each in a child process of this
//! binary (so each reports its own peak RSS), and prints a table side by side with every
//! backend's ratio to `dd-ord`. Differing checksums are a loud error and a non-zero exit.

use std::process::Command;

use serde_json::Value;

use super::args::{Backend, JoinTactic, Plan, QueryArgs, Workload};
use spillway_pool::format_size;

/// The workload `compare` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadArg {
    Join,
    Reduce,
}

impl From<WorkloadArg> for Workload {
    fn from(w: WorkloadArg) -> Workload {
        match w {
            WorkloadArg::Join => Workload::Join,
            WorkloadArg::Reduce => Workload::Reduce,
        }
    }
}

/// Flags of `spillway compare`: those of `join`/`reduce` (their `--backend` is ignored), plus
/// which workload and backends.
#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// The workload to run.
    #[arg(long, value_enum, default_value = "join")]
    pub workload: WorkloadArg,
    /// Backends to run, in order (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "pool,memory,dd-ord,dd-col"
    )]
    pub backends: Vec<Backend>,
    /// Runs per backend (interleaved); the table and JSON report each field's median, and
    /// every run's output must agree.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub repeat: u32,
    #[command(flatten)]
    pub query: QueryArgs,
}

/// Flags of `compare` that are not forwarded to the children (they set their own).
const OWN_FLAGS: [&str; 7] = [
    "--workload",
    "--repeat",
    "--join-tactic",
    "--backends",
    "--backend",
    "--metrics-addr",
    "--json",
];

/// The command line of `compare` minus its own flags: what every child gets.
fn forwarded(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = argv.iter().skip_while(|a| *a != "compare").skip(1);
    while let Some(arg) = args.next() {
        let name = arg.split('=').next().unwrap_or("");
        if OWN_FLAGS.contains(&name) {
            if name != "--json" && !arg.contains('=') {
                args.next(); // its value
            }
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// The `--join-tactic` a child runs with: for `join`, the requested one (or the default) on
/// paged backends and `cursor` on upstream ones (the vectored tactic reads paged chunks); for
/// `reduce`, whatever was asked (so that a misplaced flag is refused as in `reduce` itself).
fn tactic_for(
    workload: Workload,
    backend: Backend,
    requested: Option<JoinTactic>,
) -> Option<JoinTactic> {
    match (workload, backend) {
        (Workload::Reduce, _) => requested,
        (Workload::Join, Backend::Pool | Backend::Memory) => {
            Some(JoinTactic::resolve(backend, requested))
        }
        (Workload::Join, Backend::DdOrd | Backend::DdCol) => Some(JoinTactic::Cursor),
    }
}

/// Runs the comparison; `Err` on a failed child or a checksum mismatch.
pub fn run(args: &CompareArgs) -> Result<(), Box<dyn std::error::Error>> {
    let workload = Workload::from(args.workload);
    // Validate every backend's run before starting any.
    for &backend in &args.backends {
        let query = QueryArgs {
            backend,
            join_tactic: tactic_for(workload, backend, args.query.join_tactic),
            ..args.query.clone()
        };
        Plan::new(workload, &query)?;
    }
    let argv: Vec<String> = std::env::args().collect();
    let rest = forwarded(&argv);
    let exe = std::env::current_exe()?;
    // Runs interleave backends (pool, dd-ord, pool, dd-ord, ...) so that a noisy stretch of
    // the machine's time does not land on one backend only.
    let mut runs: Vec<Result<Vec<Value>, String>> = vec![Ok(Vec::new()); args.backends.len()];
    for rep in 1..=args.repeat {
        for (&backend, runs) in args.backends.iter().zip(&mut runs) {
            let Ok(done) = runs else { continue };
            if !args.query.json {
                eprintln!(
                    "spillway compare: running {} on {} ({rep} of {})...",
                    workload.name(),
                    backend.name(),
                    args.repeat
                );
            }
            let tactic = tactic_for(workload, backend, args.query.join_tactic);
            let output = Command::new(&exe)
                .arg(workload.name())
                .args(&rest)
                .args(["--backend", backend.name(), "--json", "--quiet"])
                .args(tactic.iter().flat_map(|t| ["--join-tactic", t.name()]))
                .output()?;
            if output.status.success() {
                match serde_json::from_slice::<Value>(&output.stdout) {
                    Ok(v) => done.push(v),
                    Err(e) => *runs = Err(format!("unreadable output: {e}")),
                }
            } else {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = stderr.lines().last().unwrap_or("").to_string();
                *runs = Err(format!("failed ({}): {last}", output.status));
            }
        }
    }
    let rows: Vec<(Backend, Result<Value, String>)> = args
        .backends
        .iter()
        .zip(runs)
        .map(|(&b, runs)| (b, runs.map(|r| median_run(&r))))
        .collect();
    if args.query.json {
        for (backend, row) in &rows {
            match row {
                Ok(v) => println!("{v}"),
                Err(e) => println!(
                    "{}",
                    serde_json::json!({"backend": backend.name(), "error": e})
                ),
            }
        }
    }
    if !args.query.json {
        print!("{}", table(workload, &rows));
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(b, _)| b.name())
        .collect();
    let mismatch = mismatches(&rows);
    if !mismatch.is_empty() {
        eprintln!(
            "spillway compare: CHECKSUM MISMATCH: {}",
            mismatch.join("; ")
        );
    }
    match (failed.is_empty(), mismatch.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => Err(format!("backends failed: {}", failed.join(", ")).into()),
        (true, false) => Err("backends disagree on their output".into()),
    }
}

/// Fields that `median_run` takes the median of.
const MEASURED: [&str; 7] = [
    "build_s",
    "join_s",
    "query_s",
    "scan_s",
    "total_s",
    "peak_rss_bytes",
    "rss_after_scan_bytes",
];

/// Fields every run of one backend must agree on.
const ANSWERS: [&str; 4] = [
    "checksum",
    "output_records",
    "scan_checksum",
    "scan_records",
];

/// One row from the runs of a backend: the first run, with each [`MEASURED`] field replaced
/// by its median over the runs (each field on its own) and `runs` and `total_s_runs` added.
/// A run whose answers differ from the first's is reported in `answers_differ`.
fn median_run(runs: &[Value]) -> Value {
    let mut row = runs[0].clone();
    for field in MEASURED {
        if row.get(field).is_none() {
            continue;
        }
        let mut values: Vec<f64> = runs.iter().map(|v| f(v, field)).collect();
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        row[field] = if row[field].is_u64() {
            serde_json::json!(median as u64)
        } else {
            serde_json::json!(median)
        };
    }
    row["runs"] = serde_json::json!(runs.len());
    row["total_s_runs"] = runs.iter().map(|v| v["total_s"].clone()).collect();
    let differ: Vec<&str> = ANSWERS
        .into_iter()
        .filter(|&field| runs.iter().any(|v| v[field] != runs[0][field]))
        .collect();
    if !differ.is_empty() {
        row["answers_differ"] = serde_json::json!(differ);
    }
    row
}

/// Which fields differ between the successful rows (or between one backend's runs).
fn mismatches(rows: &[(Backend, Result<Value, String>)]) -> Vec<String> {
    let ok: Vec<(&Backend, &Value)> = rows
        .iter()
        .filter_map(|(b, r)| Some((b, r.as_ref().ok()?)))
        .collect();
    let mut out: Vec<String> = ok
        .iter()
        .filter(|(_, v)| !v["answers_differ"].is_null())
        .map(|(b, v)| format!("{} runs differ in {}", b.name(), v["answers_differ"]))
        .collect();
    for field in ANSWERS {
        let values: Vec<String> = ok
            .iter()
            .map(|(b, v)| format!("{}={}", b.name(), v[field]))
            .collect();
        let first = ok.first().map(|(_, v)| &v[field]);
        if ok.iter().any(|(_, v)| Some(&v[field]) != first) {
            out.push(format!("{field}: {}", values.join(" ")));
        }
    }
    out
}

fn f(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or(0.0)
}

/// The comparison table, with each backend's ratio to `dd-ord` where it ran.
fn table(workload: Workload, rows: &[(Backend, Result<Value, String>)]) -> String {
    let query = format!("{}_s", workload.query_phase());
    let query = if workload == Workload::Join {
        "join_s".to_string()
    } else {
        query
    };
    let base = rows
        .iter()
        .find(|(b, _)| *b == Backend::DdOrd)
        .and_then(|(_, r)| r.as_ref().ok());
    let runs = rows
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok()?["runs"].as_u64())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    if runs > 1 {
        out += &format!("medians of {runs} interleaved runs per backend\n");
    }
    out += &format!(
        "{:<8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>17} {:>7} {:>7}\n",
        "backend",
        "build s",
        workload.query_phase().to_string() + " s",
        "scan s",
        "total s",
        "M upd/s",
        "peak RSS",
        "after scan",
        "written",
        "checksum",
        "time×",
        "RSS×"
    );
    for (backend, row) in rows {
        let v = match row {
            Ok(v) => v,
            Err(e) => {
                out += &format!("{:<8} {e}\n", backend.name());
                continue;
            }
        };
        let ratio = |field: &str| match base {
            Some(b) if f(b, field) > 0.0 => format!("{:.2}", f(v, field) / f(b, field)),
            _ => "-".into(),
        };
        let written = v["pool"]["extent_bytes_written"].as_u64().unwrap_or(0)
            + v["dd_col_spill_bytes"].as_u64().unwrap_or(0);
        out += &format!(
            "{:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>10} {:>10} {:>10} {:>17} {:>7} {:>7}\n",
            backend.name(),
            f(v, "build_s"),
            f(v, &query),
            f(v, "scan_s"),
            f(v, "total_s"),
            f(v, "updates") / f(v, "total_s").max(1e-9) / 1e6,
            format_size(v["peak_rss_bytes"].as_u64().unwrap_or(0)),
            format_size(v["rss_after_scan_bytes"].as_u64().unwrap_or(0)),
            format_size(written),
            v["checksum"].as_str().unwrap_or("?"),
            ratio("total_s"),
            ratio("peak_rss_bytes"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_forwards_everything_but_its_own_flags() {
        let argv: Vec<String> = [
            "spillway",
            "compare",
            "--updates",
            "1M",
            "--backends=pool,dd-ord",
            "--json",
            "--budget",
            "8MiB",
            "--workload",
            "reduce",
            "--backend",
            "memory",
            "-w",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            forwarded(&argv),
            ["--updates", "1M", "--budget", "8MiB", "-w", "2"]
        );
    }

    #[test]
    fn medians_are_per_field_and_differing_answers_are_flagged() {
        let run = |total: f64, rss: u64, checksum: &str| serde_json::json!({"total_s": total, "peak_rss_bytes": rss, "checksum": checksum});
        let row = median_run(&[run(3.0, 10, "a"), run(1.0, 30, "a"), run(2.0, 20, "a")]);
        assert_eq!(
            (f(&row, "total_s"), row["peak_rss_bytes"].as_u64()),
            (2.0, Some(20))
        );
        assert_eq!(row["runs"], 3);
        assert!(row["answers_differ"].is_null());
        let row = median_run(&[run(1.0, 1, "a"), run(1.0, 1, "b")]);
        assert_eq!(row["answers_differ"], serde_json::json!(["checksum"]));
        let rows = vec![(Backend::Pool, Ok(row))];
        assert_eq!(mismatches(&rows).len(), 1);
    }
}

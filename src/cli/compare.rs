//! `spillway compare`: runs one workload once per backend, each in a child process of this
//! binary (so each reports its own peak RSS), and prints a table side by side with every
//! backend's ratio to `dd-ord`. Differing checksums are a loud error and a non-zero exit.
//!
//! A child's command line is built from the parsed flags ([`QueryArgs::to_argv`]), never by
//! filtering this process's argv, so every flag reaches each child exactly once; its report is
//! read back as a typed [`RunReport`]; a failed child's whole stderr is shown.

use std::process::Command;

use serde::Serialize;
use spillway_pool::format_size;
use spillway_workload::input::Records;
use spillway_workload::plan::{Backend, JoinTactic, Workload};
use spillway_workload::report::RunReport;

use super::args::{backend_parser, parse_records, QueryArgs};

/// The workload `compare` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadArg {
    /// `spillway join`.
    Join,
    /// `spillway reduce`.
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
    /// Backends to run, in order (comma-separated). Default: pool,memory,dd-ord,dd-col, and
    /// pool,memory,dd-ord with `--records strings` (dd-col has no string trace).
    #[arg(long, value_parser = backend_parser(), value_delimiter = ',')]
    pub backends: Option<Vec<Backend>>,
    /// Runs per backend (interleaved); the table and JSON report each field's median, and
    /// every run's output must agree.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub repeat: u32,
    #[command(flatten)]
    pub query: QueryArgs,
}

impl CompareArgs {
    /// The backends to run: those asked for, or every backend that runs these records.
    fn backends(&self) -> Vec<Backend> {
        if let Some(backends) = &self.backends {
            return backends.clone();
        }
        let strings = matches!(
            parse_records(&self.query.records, self.query.val_bytes.as_deref()),
            Ok(Records::Strings { .. })
        );
        Backend::ALL
            .into_iter()
            .filter(|&b| !(strings && b == Backend::DdCol))
            .collect()
    }
}

/// The `--join-tactic` a child runs with: for `join`, the requested one (or the default) on
/// paged backends and `cursor` on upstream ones (the vectored tactic reads paged chunks); for
/// `reduce`, whatever was asked (so that a misplaced flag is refused as in `reduce` itself).
fn tactic_for(
    workload: Workload,
    backend: Backend,
    requested: Option<JoinTactic>,
) -> Option<JoinTactic> {
    match (workload, backend.is_paged()) {
        (Workload::Reduce, _) => requested,
        (Workload::Join, true) => Some(JoinTactic::resolve(backend, requested)),
        (Workload::Join, false) => Some(JoinTactic::Cursor),
    }
}

/// The flags of the child that runs `backend`: the parsed flags, with the backend and tactic
/// set, `--json` and `--quiet` on, and no metrics endpoint (the children would race for it).
fn child_args(args: &CompareArgs, backend: Backend) -> QueryArgs {
    let workload = Workload::from(args.workload);
    QueryArgs {
        backend,
        join_tactic: tactic_for(workload, backend, args.query.join_tactic),
        json: true,
        quiet: true,
        metrics_addr: None,
        ..args.query.clone()
    }
}

/// One backend's row: its report (the median run), or why it has none.
type Row = (Backend, Result<CompareRow, String>);

/// A backend's line of `compare --json`: the median report and how it was taken.
#[derive(Clone, Debug, Serialize)]
struct CompareRow {
    /// The first run, with each measured field replaced by its median over the runs.
    #[serde(flatten)]
    report: RunReport,
    /// Runs of this backend.
    runs: usize,
    /// Every run's `total_s`, in run order.
    total_s_runs: Vec<f64>,
    /// Answer fields on which a run differed from the first run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    answers_differ: Vec<&'static str>,
}

/// A backend's line of `compare --json` when it failed.
#[derive(Clone, Debug, Serialize)]
struct CompareFailure<'a> {
    backend: Backend,
    error: &'a str,
}

/// Runs the comparison; `Err` on a failed child or a checksum mismatch.
pub fn run(args: &CompareArgs) -> Result<(), Box<dyn std::error::Error>> {
    let workload = Workload::from(args.workload);
    let backends = args.backends();
    // Validate every backend's run before starting any.
    for &backend in &backends {
        child_args(args, backend).plan(workload)?;
    }
    let exe = std::env::current_exe()?;
    // Runs interleave backends (pool, dd-ord, pool, dd-ord, ...) so that a noisy stretch of
    // the machine's time does not land on one backend only.
    let mut runs: Vec<Result<Vec<RunReport>, String>> = vec![Ok(Vec::new()); backends.len()];
    for rep in 1..=args.repeat {
        for (&backend, runs) in backends.iter().zip(&mut runs) {
            let Ok(done) = runs else { continue };
            if !args.query.json && !args.query.quiet {
                eprintln!(
                    "spillway compare: running {} on {} ({rep} of {})...",
                    workload.name(),
                    backend.name(),
                    args.repeat
                );
            }
            let output = Command::new(&exe)
                .arg(workload.name())
                .args(child_args(args, backend).to_argv())
                .output()?;
            if output.status.success() {
                match serde_json::from_slice::<RunReport>(&output.stdout) {
                    Ok(report) => done.push(report),
                    Err(e) => *runs = Err(format!("unreadable output: {e}")),
                }
            } else {
                *runs = Err(child_failure(&output));
            }
        }
    }
    let rows: Vec<Row> = backends
        .iter()
        .zip(runs)
        .map(|(&b, runs)| (b, runs.map(median_run)))
        .collect();
    if args.query.json {
        for (backend, row) in &rows {
            let line = match row {
                Ok(row) => serde_json::to_string(row)?,
                Err(error) => serde_json::to_string(&CompareFailure {
                    backend: *backend,
                    error,
                })?,
            };
            println!("{line}");
        }
    } else {
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

/// Why a child failed: its exit status and its whole stderr.
fn child_failure(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("failed ({}):\n{}", output.status, stderr.trim_end())
}

/// The fields every run of one backend, and every backend, must agree on, by name.
fn answers(r: &RunReport) -> [(&'static str, String); 4] {
    [
        ("checksum", r.checksum.clone()),
        ("output_records", r.output_records.to_string()),
        ("scan_checksum", r.scan_checksum.clone()),
        ("scan_records", r.scan_records.to_string()),
    ]
}

/// The median of `values` (the upper one for an even count).
fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in a report"));
    values[values.len() / 2]
}

/// One row from the runs of a backend (at least one): the first run, with each measured field
/// (`build_s`, `join_s`, `query_s`, `scan_s`, `total_s`, `peak_rss_bytes`,
/// `rss_after_scan_bytes`) replaced by its median over the runs, each field on its own. A run
/// whose answers differ from the first's is reported in `answers_differ`.
fn median_run(runs: Vec<RunReport>) -> CompareRow {
    let of = |f: fn(&RunReport) -> f64| median(runs.iter().map(f).collect());
    let of_u64 = |f: fn(&RunReport) -> u64| median(runs.iter().map(f).collect());
    let first = &runs[0];
    let report = RunReport {
        build_s: of(|r| r.build_s),
        query_s: of(|r| r.query_s),
        join_s: first.join_s.map(|_| of(|r| r.join_s.unwrap_or(0.0))),
        scan_s: of(|r| r.scan_s),
        total_s: of(|r| r.total_s),
        peak_rss_bytes: of_u64(|r| r.peak_rss_bytes),
        rss_after_scan_bytes: of_u64(|r| r.rss_after_scan_bytes),
        ..first.clone()
    };
    let expected = answers(first);
    let answers_differ = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| runs.iter().any(|r| answers(r)[*i] != expected[*i]))
        .map(|(_, (field, _))| *field)
        .collect();
    CompareRow {
        report,
        runs: runs.len(),
        total_s_runs: runs.iter().map(|r| r.total_s).collect(),
        answers_differ,
    }
}

/// Which fields differ between the successful rows (or between one backend's runs).
fn mismatches(rows: &[Row]) -> Vec<String> {
    let ok: Vec<(Backend, &CompareRow)> = rows
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?)))
        .collect();
    let mut out: Vec<String> = ok
        .iter()
        .filter(|(_, row)| !row.answers_differ.is_empty())
        .map(|(b, row)| format!("{} runs differ in {:?}", b.name(), row.answers_differ))
        .collect();
    let Some((_, first)) = ok.first() else {
        return out;
    };
    let expected = answers(&first.report);
    for (i, (field, value)) in expected.iter().enumerate() {
        if ok
            .iter()
            .any(|(_, row)| answers(&row.report)[i].1 != *value)
        {
            let values: Vec<String> = ok
                .iter()
                .map(|(b, row)| format!("{}={}", b.name(), answers(&row.report)[i].1))
                .collect();
            out.push(format!("{field}: {}", values.join(" ")));
        }
    }
    out
}

/// The comparison table, with each backend's ratio to `dd-ord` where it ran.
fn table(workload: Workload, rows: &[Row]) -> String {
    let base = rows
        .iter()
        .find(|(b, _)| *b == Backend::DdOrd)
        .and_then(|(_, r)| r.as_ref().ok());
    let runs = rows
        .iter()
        .filter_map(|(_, r)| Some(r.as_ref().ok()?.runs))
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    if runs > 1 {
        out += &format!("medians of {runs} interleaved runs per backend\n");
    }
    let strings = rows
        .iter()
        .find_map(|(_, r)| r.as_ref().ok()?.report.val_bytes);
    if let Some(n) = strings {
        out += &format!("string records, values of {n} bytes\n");
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
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                out += &format!("{:<8} {e}\n", backend.name());
                continue;
            }
        };
        let r = &row.report;
        let ratio = |f: fn(&RunReport) -> f64| match base {
            Some(b) if f(&b.report) > 0.0 => format!("{:.2}", f(r) / f(&b.report)),
            _ => "-".into(),
        };
        out += &format!(
            "{:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>10} {:>10} {:>10} {:>17} {:>7} {:>7}\n",
            backend.name(),
            r.build_s,
            r.query_phase_s(),
            r.scan_s,
            r.total_s,
            r.updates as f64 / r.total_s.max(1e-9) / 1e6,
            format_size(r.peak_rss_bytes),
            format_size(r.rss_after_scan_bytes),
            format_size(r.pool.extent_bytes_written + r.dd_col_spill_bytes),
            r.checksum,
            ratio(|r| r.total_s),
            ratio(|r| r.peak_rss_bytes as f64),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Compare {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn compare(argv: &[&str]) -> CompareArgs {
        Compare::try_parse_from(std::iter::once("compare").chain(argv.iter().copied()))
            .expect("parses")
            .args
    }

    #[test]
    fn children_get_every_flag_once_and_their_own_backend() {
        let args = compare(&[
            "--updates",
            "1M",
            "--backends=pool,dd-ord",
            "--json",
            "-q",
            "--budget",
            "8MiB",
            "--workload",
            "reduce",
            "--backend",
            "memory",
            "--metrics-addr",
            "127.0.0.1:9100",
            "-w",
            "2",
        ]);
        for backend in [Backend::Pool, Backend::DdOrd] {
            let argv = child_args(&args, backend).to_argv();
            let count = |flag: &str| argv.iter().filter(|a| *a == flag).count();
            for flag in [
                "--updates",
                "--budget",
                "--workers",
                "--backend",
                "--json",
                "--quiet",
            ] {
                assert_eq!(count(flag), 1, "{flag} in {argv:?}");
            }
            for flag in [
                "--workload",
                "--backends",
                "--repeat",
                "--metrics-addr",
                "-q",
            ] {
                assert_eq!(count(flag), 0, "{flag} in {argv:?}");
            }
            let value = |flag: &str| {
                let at = argv.iter().position(|a| a == flag).expect(flag);
                argv[at + 1].clone()
            };
            assert_eq!(value("--backend"), backend.name());
            assert_eq!(value("--updates"), "1000000");
            assert_eq!(value("--budget"), (8u64 << 20).to_string());
            assert_eq!(value("--workers"), "2");
        }
    }

    #[test]
    fn string_records_leave_dd_col_out_of_the_default_backends() {
        let all = compare(&[]).backends();
        assert_eq!(all, Backend::ALL);
        let strings = compare(&["--records", "strings"]).backends();
        assert_eq!(strings, [Backend::Pool, Backend::Memory, Backend::DdOrd]);
        let asked = compare(&["--records", "strings", "--backends", "dd-col"]).backends();
        assert_eq!(asked, [Backend::DdCol]);
    }

    #[test]
    fn a_failed_child_shows_its_whole_stderr() {
        let output = Command::new("sh")
            .args(["-c", "echo first >&2; echo second >&2; exit 3"])
            .output()
            .expect("sh runs");
        let why = child_failure(&output);
        assert!(
            why.contains("first") && why.contains("second") && why.contains('3'),
            "{why}"
        );
    }

    fn report(total: f64, rss: u64, checksum: &str) -> RunReport {
        let plan = spillway_workload::plan::QueryPlan::local(
            Workload::Join,
            Backend::Memory,
            spillway_workload::plan::default_input(100),
            1 << 20,
        )
        .expect("plan");
        RunReport {
            total_s: total,
            peak_rss_bytes: rss,
            checksum: checksum.into(),
            ..RunReport::assemble(&plan, &[], &[], 0.0)
        }
    }

    #[test]
    fn medians_are_per_field_and_differing_answers_are_flagged() {
        let row = median_run(vec![
            report(3.0, 10, "a"),
            report(1.0, 30, "a"),
            report(2.0, 20, "a"),
        ]);
        assert_eq!((row.report.total_s, row.report.peak_rss_bytes), (2.0, 20));
        assert_eq!(row.runs, 3);
        assert_eq!(row.total_s_runs, [3.0, 1.0, 2.0]);
        assert!(row.answers_differ.is_empty());
        let row = median_run(vec![report(1.0, 1, "a"), report(1.0, 1, "b")]);
        assert_eq!(row.answers_differ, ["checksum"]);
        let rows = vec![(Backend::Pool, Ok(row))];
        assert_eq!(mismatches(&rows).len(), 1);
    }
}

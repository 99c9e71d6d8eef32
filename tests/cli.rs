//! The `spillway` binary as users and scripts call it: every backend, worker count and process
//! count gives the same checksums; `--json` has every contracted field; bad flags fail fast
//! with a message; `/metrics` answers while a run is in progress. Reports are read into the
//! typed `RunReport` (the JSON contract), except where a test pins the JSON names themselves.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spillway_workload::levels::LevelReport;
use spillway_workload::report::RunReport;

const BIN: &str = env!("CARGO_BIN_EXE_spillway");

/// Small runs: a tight budget so the pool really pages.
const SMALL: [&str; 6] = ["--updates", "40k", "--budget", "256KiB", "--retract", "0.1"];

fn spillway(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("spawn spillway")
}

/// Runs `spillway args` (with `--json`) and reads its one line of JSON as named fields.
fn json_value(args: &[&str]) -> Value {
    let out = spillway(args);
    assert!(
        out.status.success(),
        "spillway {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    serde_json::from_str(&stdout).expect("valid JSON")
}

/// Runs `spillway args` (with `--json`) and reads its report.
fn json_run(args: &[&str]) -> RunReport {
    let v = json_value(args);
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not a report ({e}): {v}"))
}

fn answers(r: &RunReport) -> (String, i64, String, i64) {
    (
        r.checksum.clone(),
        r.output_records,
        r.scan_checksum.clone(),
        r.scan_records,
    )
}

#[test]
fn every_backend_and_worker_count_agrees() {
    for workload in ["join", "reduce"] {
        let mut expected = None;
        let runs = [
            ("pool", "cursor"),
            ("pool", "vectored"),
            ("memory", "cursor"),
            ("memory", "vectored"),
            ("dd-ord", "cursor"),
            ("dd-col", "cursor"),
        ];
        for (backend, tactic) in runs {
            if workload == "reduce" && tactic == "vectored" {
                continue;
            }
            for workers in ["1", "2"] {
                let mut args = vec![
                    workload,
                    "--backend",
                    backend,
                    "--join-tactic",
                    tactic,
                    "--workers",
                    workers,
                    "--json",
                ];
                args.extend(SMALL);
                let v = json_run(&args);
                assert!(v.output_records > 1000, "{v:?}");
                let got = answers(&v);
                match &expected {
                    None => expected = Some(got),
                    Some(e) => {
                        assert_eq!(
                            &got, e,
                            "{workload} on {backend} ({tactic}) with {workers} workers"
                        )
                    }
                }
                if backend == "pool" {
                    assert!(v.pool.extent_bytes_written > 0, "pool never paged: {v:?}");
                }
            }
        }
    }
}

#[test]
fn json_has_every_contracted_field() {
    let mut args = vec!["join", "--json", "--backend", "pool"];
    args.extend(SMALL);
    let v = json_value(&args);
    for field in [
        "workload",
        "backend",
        "updates",
        "workers",
        "budget_bytes",
        "build_s",
        "join_s",
        "scan_s",
        "total_s",
        "output_records",
        "checksum",
        "scan_records",
        "scan_checksum",
        "peak_rss_bytes",
        "rss_after_scan_bytes",
        "join_tactic",
        "key_dist",
    ] {
        assert!(!v[field].is_null(), "missing {field}: {v}");
    }
    assert!(v["checksum"].is_string() && v["scan_checksum"].is_string());
    for field in [
        "resident_bytes",
        "peak_resident_bytes",
        "extent_bytes_written",
        "extent_bytes_read",
        "bytes_compressed_in",
        "evictions_compress",
        "evictions_cheap",
        "writes_elided",
        "fault_ins",
    ] {
        assert!(v["pool"][field].is_u64(), "missing pool.{field}: {v}");
    }
    for field in [
        "io_errors",
        "write_retries",
        "writes_disabled",
        "write_nospace",
        "read_retries",
        "checksum_failures",
        "budget_overshoots",
        "oversize_bytes",
    ] {
        assert!(v["health"][field].is_u64(), "missing health.{field}: {v}");
        assert!(
            v["pool"][field].is_u64(),
            "health.{field} is not a metric: {v}"
        );
    }
    assert_eq!(v["workload"], "join");
    assert_eq!(v["updates"], 40_000);
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
    let mut args = vec!["reduce", "--json"];
    args.extend(SMALL);
    let v = json_value(&args);
    assert!(v["query_s"].is_f64() && v["workload"] == "reduce", "{v}");
    assert!(v["join_s"].is_null() && v["join_tactic"].is_null(), "{v}");
}

#[test]
fn bad_flags_fail_fast_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let unwritable = dir.path().join("missing/nested");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["join", "--backend", "mongo"], "mongo"),
        (vec!["join", "--budget", "0"], "budget"),
        (vec!["join", "--budget", "64PiB"], "budget"),
        (vec!["join", "--budget", "lots"], "lots"),
        (vec!["join", "--updates", "ten"], "ten"),
        (vec!["join", "--retract", "1.5"], "retract"),
        (
            vec!["join", "--extent-dir", unwritable.to_str().unwrap()],
            "extent-dir",
        ),
        (vec!["join", "--processes", "2"], "hostfile"),
        (
            vec!["join", "--backend", "dd-ord", "--join-tactic", "vectored"],
            "paged backend",
        ),
        (vec!["reduce", "--join-tactic", "vectored"], "`join` only"),
        (vec!["join", "--join-tactic", "sideways"], "sideways"),
        (
            vec!["join", "--lazy-below", "2", "--eager-from", "1"],
            "cannot be both",
        ),
        (vec!["join", "--eager-from", "deep"], "deep"),
        (vec!["levels", "--backend", "dd-ord"], "paged arrangements"),
        (vec!["compare", "--backends", "pool,nope"], "nope"),
        (
            vec!["join", "--inject-faults", "eio=lots"],
            if cfg!(feature = "fault-injection") {
                "eio=lots"
            } else {
                "fault-injection"
            },
        ),
    ];
    for (args, needle) in cases {
        let started = Instant::now();
        let out = spillway(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(needle),
            "{args:?}: message {stderr:?} lacks {needle:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} did work before failing"
        );
    }
}

#[test]
fn skewed_keys_agree_across_backends_and_bad_distributions_fail_fast() {
    // Hot keys on both sides: the join's output is many times its input.
    let skew = ["--key-dist", "zipf:1.2", "--probes", "300", "--json"];
    for workload in ["join", "reduce"] {
        let mut expected = None;
        for backend in ["pool", "memory", "dd-ord"] {
            let mut args = vec![workload, "--backend", backend, "--quiet"];
            args.extend(SMALL);
            args.extend(skew);
            let v = json_run(&args);
            assert_eq!(v.key_dist, "zipf:1.2", "{v:?}");
            let got = answers(&v);
            match &expected {
                None => expected = Some(got),
                Some(e) => assert_eq!(&got, e, "{workload} on {backend}"),
            }
        }
        let (_, records, _, _) = expected.unwrap();
        if workload == "join" {
            assert!(records > 10 * 40_000, "join output {records}");
        }
    }
    // compare hands the distribution to its children.
    let mut args = vec!["compare", "--backends", "pool,dd-ord"];
    args.extend(SMALL);
    args.extend(skew);
    let out = spillway(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["key_dist"], "zipf:1.2", "{v}");
    }
    let mut args = vec!["join", "--json", "--quiet", "--key-dist", "uniform"];
    args.extend(SMALL);
    assert_eq!(json_run(&args).key_dist, "uniform");
    for bad in ["zipf:", "zipf:0", "zipf:-1", "zipf:abc", "pareto"] {
        for command in ["join", "reduce", "compare"] {
            let started = Instant::now();
            let out = spillway(&[command, "--key-dist", bad]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{command} --key-dist {bad} succeeded"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{bad}: {stderr}");
            assert!(stderr.contains("--key-dist"), "{bad}: {stderr}");
            assert!(out.stdout.is_empty());
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{bad}: did work"
            );
        }
    }
}

#[test]
fn health_is_reported_and_degradation_is_loud() {
    // A healthy run: all zeros, no warning (a budget that pins never exceed).
    let args = vec![
        "join",
        "--json",
        "--backend",
        "pool",
        "--updates",
        "100k",
        "--budget",
        "2MiB",
    ];
    let out = spillway(&args);
    assert!(out.status.success());
    let report: RunReport = serde_json::from_slice(&out.stdout).expect("a report");
    assert!(report.health.is_healthy(), "{:?}", report.health);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    // The human summary carries the health line.
    let out = spillway(
        &args[..args.len()]
            .iter()
            .copied()
            .filter(|a| *a != "--json")
            .collect::<Vec<_>>(),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("health ok"));
    // An extent dir in RAM is warned about at start.
    if std::path::Path::new("/dev/shm").is_dir() {
        let mut shm = args.clone();
        shm.extend(["--extent-dir", "/dev/shm"]);
        let out = spillway(&shm);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.contains("tmpfs"), "{stderr}");
    }
    if !cfg!(feature = "fault-injection") {
        return;
    }
    // Injected faults: the same answers, the faults counted, warnings on stderr.
    let mut faulty = args.clone();
    faulty.extend(["--inject-faults", "eio=0.05,flip=0.02,short=0.05"]);
    let out = spillway(&faulty);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let degraded: RunReport = serde_json::from_slice(&out.stdout).expect("a report");
    assert_eq!(answers(&degraded), answers(&report));
    assert!(degraded.health.io_errors > 0, "{:?}", degraded.health);
    assert!(degraded.health.read_retries + degraded.health.write_retries > 0);
    assert!(stderr.contains("spillway: warning:"), "{stderr}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_processes_on_loopback_agree_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let hostfile = dir.path().join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let hostfile = hostfile.to_str().unwrap();
    for workload in ["join", "reduce"] {
        let mut single = vec![workload, "--json"];
        single.extend(SMALL);
        let expected = answers(&json_run(&single));
        let spawn = |process: &str| {
            let mut args = vec![
                workload,
                "--json",
                "--processes",
                "2",
                "--process",
                process,
                "--hostfile",
                hostfile,
                "--workers",
                "2",
            ];
            args.extend(SMALL);
            Command::new(BIN)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (p0, p1) = (spawn("0"), spawn("1"));
        let (o1, o0) = (
            p1.wait_with_output().unwrap(),
            p0.wait_with_output().unwrap(),
        );
        assert!(
            o0.status.success() && o1.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o0.stderr),
            String::from_utf8_lossy(&o1.stderr)
        );
        assert!(o1.stdout.is_empty(), "only process 0 reports");
        let v: RunReport = serde_json::from_slice(&o0.stdout).unwrap();
        assert_eq!(v.workers, 4);
        assert_eq!(answers(&v), expected, "{workload} over 2 processes");
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn metrics_answer_while_a_run_is_in_progress() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "join",
            "--updates",
            "3M",
            "--budget",
            "4MiB",
            "--json",
            "--metrics-addr",
            &addr,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scraped = None;
    while Instant::now() < deadline {
        if let Some(r) = http_get(port, "/metrics") {
            if r.contains("spillway_phase{phase=\"build\"} 1") && r.contains("spillway_pool_") {
                scraped = Some(r);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let missing = http_get(port, "/nothing-here");
    child.kill().ok();
    child.wait().unwrap();
    let scraped = scraped.expect("no /metrics answer during the build phase");
    assert!(still_running, "the run ended before the scrape was checked");
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(scraped.contains("spillway_pool_budget_bytes"), "{scraped}");
    assert!(missing.unwrap_or_default().starts_with("HTTP/1.1 404"));
}

#[test]
fn compare_prints_a_table_and_agrees() {
    let mut args = vec![
        "compare",
        "--backends",
        "pool,dd-ord",
        "--join-tactic",
        "vectored",
    ];
    args.extend(SMALL);
    let out = spillway(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l.starts_with("pool ")), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("dd-ord ") && l.contains("1.00")),
        "{stdout}"
    );
    let mut args = vec![
        "compare",
        "--json",
        "--workload",
        "reduce",
        "--backends",
        "memory,dd-col",
        "--repeat",
        "2",
    ];
    args.extend(SMALL);
    let out = spillway(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["checksum"], lines[1]["checksum"]);
    assert_eq!(lines[1]["backend"], "dd-col");
    assert_eq!(lines[0]["runs"], 2, "{}", lines[0]);
    assert_eq!(lines[0]["total_s_runs"].as_array().map(Vec::len), Some(2));
    assert!(lines[0]["answers_differ"].is_null());
    for line in &lines {
        let report: RunReport = serde_json::from_value(line.clone()).expect("a report per line");
        assert_eq!(report.workload.name(), "reduce");
    }
}

/// `-q` / `--quiet` (and every other flag) reach each child once: they used to reach it
/// twice, which failed every backend.
#[test]
fn compare_passes_quiet_and_json_to_its_children() {
    for quiet in ["-q", "--quiet"] {
        let mut args = vec!["compare", quiet, "--backends", "pool,dd-ord"];
        args.extend(SMALL);
        let out = spillway(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "compare {quiet}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.lines().any(|l| l.starts_with("pool ")), "{stdout}");
        let mut args = vec!["compare", quiet, "--json", "--workload", "reduce"];
        args.extend(["--backends", "memory,dd-ord"]);
        args.extend(SMALL);
        let out = spillway(&args);
        assert!(
            out.status.success(),
            "compare {quiet} --json: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Vec<RunReport> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a report per line"))
            .collect();
        assert_eq!(reports.len(), 2);
        assert_eq!(answers(&reports[0]), answers(&reports[1]));
    }
}

#[test]
fn levels_reports_every_level_and_policies_agree() {
    let mut join = vec!["join", "--json"];
    join.extend(SMALL);
    let expected = answers(&json_run(&join));
    for policy in [
        vec![],
        vec!["--eager-from", "0", "--lazy-below", "none"],
        vec!["--eager-from", "none", "--lazy-below", "255"],
    ] {
        let mut args = vec!["levels", "--json"];
        args.extend(SMALL);
        args.extend(policy.iter().copied());
        let v = json_run(&args);
        assert_eq!(answers(&v), expected, "{policy:?}");
        let levels = v.levels.as_deref().expect("levels");
        assert!(
            levels.len() >= 2,
            "a merged trace has several levels: {v:?}"
        );
        let total = |field: fn(&LevelReport) -> u64| levels.iter().map(field).sum::<u64>();
        assert_eq!(total(|l| l.records), v.scan_updates);
        assert_eq!(
            total(|l| l.extent_bytes_written),
            v.pool.extent_bytes_written
        );
        assert_eq!(total(|l| l.writes_elided), v.pool.writes_elided);
        assert_eq!(
            v.series.as_ref().map(Vec::len),
            Some(10),
            "one sample per round"
        );
        let policy_json = v.policy.expect("a pool run reports its policy");
        if policy.contains(&"0") {
            assert_eq!(policy_json.eager_from, Some(0));
        }
    }
    let mut args = vec!["levels"];
    args.extend(SMALL);
    let out = spillway(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("level batches"), "{stdout}");
    assert!(
        stdout.contains("policy lazy ≤ 0, deeper levels eager under pressure"),
        "{stdout}"
    );
}

/// `--records strings`: every string-capable backend, tactic and worker count gives the same
/// checksums, which differ from the `u64` workload's; `levels` runs them too.
#[test]
fn string_records_agree_across_backends_and_workers() {
    let strings = ["--records", "strings", "--json", "--quiet"];
    for workload in ["join", "reduce"] {
        let mut expected = None;
        for (backend, tactic) in [
            ("pool", "vectored"),
            ("pool", "cursor"),
            ("memory", "vectored"),
            ("dd-ord", "cursor"),
        ] {
            if workload == "reduce" && (backend, tactic) == ("pool", "cursor") {
                continue; // reduce has no join tactic
            }
            for workers in ["1", "2"] {
                let mut args = vec![workload, "--backend", backend, "--workers", workers];
                if workload == "join" {
                    args.extend(["--join-tactic", tactic]);
                }
                args.extend(SMALL);
                args.extend(strings);
                let v = json_run(&args);
                assert_eq!((v.records.as_str(), v.val_bytes), ("strings", Some(100)));
                assert!(v.output_records > 1000, "{v:?}");
                let got = answers(&v);
                match &expected {
                    None => expected = Some(got),
                    Some(e) => assert_eq!(
                        &got, e,
                        "{workload} on {backend} ({tactic}) with {workers} workers"
                    ),
                }
                if backend == "pool" {
                    assert!(v.pool.extent_bytes_written > 0, "pool never paged: {v:?}");
                }
            }
        }
        let mut args = vec![workload, "--json", "--quiet"];
        args.extend(SMALL);
        let words = json_run(&args);
        assert_eq!((words.records.as_str(), words.val_bytes), ("u64", None));
        assert_ne!(answers(&words).0, expected.unwrap().0, "{workload}");
    }
    let mut args = vec!["levels"];
    args.extend(SMALL);
    args.extend(strings);
    let v = json_run(&args);
    assert_eq!(v.records, "strings");
    assert!(v.levels.is_some_and(|l| !l.is_empty()), "no levels");
}

/// Large values at a tiny budget: the pool writes extents and faults them back in, and the
/// answer is upstream's.
#[test]
fn string_records_of_4k_values_page_at_a_tiny_budget() {
    let mut expected = None;
    for backend in ["pool", "dd-ord"] {
        let args = [
            "join",
            "--records",
            "strings",
            "--val-bytes",
            "4096",
            "--updates",
            "4k",
            "--budget",
            "256KiB",
            "--backend",
            backend,
            "--json",
        ];
        let v = json_run(&args);
        assert_eq!(v.val_bytes, Some(4096));
        assert!(v.output_records > 100, "{v:?}");
        match &expected {
            None => expected = Some(answers(&v)),
            Some(e) => assert_eq!(&answers(&v), e, "{backend}"),
        }
        if backend == "pool" {
            assert!(v.pool.extent_bytes_written > 0, "never wrote: {v:?}");
            assert!(v.pool.fault_ins > 0, "never faulted in: {v:?}");
        }
    }
}

/// Bad `--records` / `--val-bytes` values, and strings on `dd-col`, are one line on stderr
/// before any work, from `join`, `reduce` and `compare` alike.
#[test]
fn bad_record_flags_fail_fast_in_one_line() {
    let cases: [(&[&str], &str); 7] = [
        (&["--records", "strings", "--val-bytes", "0"], "--val-bytes"),
        (
            &["--records", "strings", "--val-bytes", "17MiB"],
            "--val-bytes",
        ),
        (
            &["--records", "strings", "--val-bytes", "big"],
            "--val-bytes",
        ),
        (&["--val-bytes", "100"], "--val-bytes"),
        (&["--records", "text"], "--records"),
        (&["--records", "strings", "--backend", "dd-col"], "dd-col"),
        (
            &["--records", "strings", "--backends", "pool,dd-col"],
            "dd-col",
        ),
    ];
    for (flags, needle) in cases {
        for command in ["join", "reduce", "compare"] {
            // `--backends` is compare's; compare ignores `--backend`.
            let is_compare = command == "compare";
            if (flags.contains(&"--backends") && !is_compare)
                || (flags.contains(&"--backend") && is_compare)
            {
                continue;
            }
            let mut args = vec![command];
            args.extend(flags);
            let started = Instant::now();
            let out = spillway(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} succeeded");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{args:?} did work before failing"
            );
        }
    }
}

/// `compare` hands `--records` and `--val-bytes` to each child, and by default runs every
/// backend that has a string trace (not `dd-col`).
#[test]
fn compare_passes_record_flags_to_its_children() {
    for workload in ["join", "reduce"] {
        let mut args = vec!["compare", "--json", "--workload", workload];
        args.extend(["--records", "strings", "--val-bytes", "64"]);
        args.extend(SMALL);
        let out = spillway(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Vec<RunReport> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a report per line"))
            .collect();
        let backends: Vec<&str> = reports.iter().map(|r| r.backend.name()).collect();
        assert_eq!(backends, ["pool", "memory", "dd-ord"]);
        for r in &reports {
            assert_eq!((r.records.as_str(), r.val_bytes), ("strings", Some(64)));
            assert_eq!(answers(r), answers(&reports[0]), "{}", r.backend.name());
        }
    }
}

/// `-q` is accepted by every subcommand and leaves stderr empty on a healthy run (the result
/// still goes to stdout).
#[test]
fn every_subcommand_takes_quiet() {
    // A budget the pins never exceed, so the run has nothing to warn about.
    const HEALTHY: [&str; 4] = ["--updates", "40k", "--budget", "4MiB"];
    let mut cases: Vec<Vec<&str>> = Vec::new();
    for command in ["join", "reduce", "levels"] {
        let mut args = vec![command, "-q"];
        args.extend(HEALTHY);
        cases.push(args);
    }
    let mut compare = vec!["compare", "-q", "--backends", "pool,dd-ord"];
    compare.extend(HEALTHY);
    cases.push(compare);
    cases.push(vec![
        "pool-throughput",
        "-q",
        "--total",
        "16MiB",
        "--budget",
        "4MiB",
    ]);
    for args in cases {
        let out = spillway(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{args:?} wrote to stderr: {stderr}"
        );
        assert!(!out.stdout.is_empty(), "{args:?} printed no result");
    }
}

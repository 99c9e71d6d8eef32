//! Printing a [`RunReport`]: one JSON object (serde writes the contracted field names), or the
//! human summary. Both are read from the report alone, so `compare` and `levels` print what a
//! plain run would.

use spillway_pool::{format_size, PoolStats};
use spillway_workload::colspill::RECORD_BYTES;
use spillway_workload::plan::{Backend, Workload};
use spillway_workload::report::RunReport;

/// Prints `report` on stdout: one JSON line if `json`, the summary otherwise.
pub fn print(report: &RunReport, json: bool) -> Result<(), serde_json::Error> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", summary(report));
    }
    Ok(())
}

/// Prints one warning line on stderr per non-zero health counter of `report` (see
/// `Health::warnings`): the cause and what to do.
pub fn warn_health(report: &RunReport) {
    for warning in report.health.warnings() {
        eprintln!("spillway: warning: {warning}");
    }
}

/// The human summary of a run.
pub fn summary(r: &RunReport) -> String {
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s / 1e6 } else { 0.0 };
    let tactic = r.join_tactic.map_or("cursor", |t| t.name());
    let mut out = format!(
        "spillway {}: {} updates over {} keys in {} rounds{}, backend {}, {} worker(s) x {} process(es)\n",
        r.workload.name(),
        r.updates,
        r.keys,
        r.rounds,
        match r.workload {
            Workload::Join => format!(", {} probes ({tactic} tactic)", r.probes),
            Workload::Reduce => String::new(),
        },
        r.backend.name(),
        r.workers_per_process,
        r.processes,
    );
    if let Some(n) = r.val_bytes {
        out += &format!(
            "  records {}: string keys, values of {n} bytes\n",
            r.records
        );
    }
    out += &format!(
        "  build  {:7.2} s  {:6.2} M updates/s\n",
        r.build_s,
        rate(r.updates, r.build_s)
    );
    out += &format!("  {:<6} {:7.2} s\n", r.workload.query_phase(), r.query_s);
    out += &format!(
        "  scan   {:7.2} s  {:6.2} M updates/s\n",
        r.scan_s,
        rate(r.scan_updates, r.scan_s)
    );
    out += &format!("  total  {:7.2} s\n", r.total_s);
    out += &format!(
        "  output {} records, checksum {}\n  scan   {} records, checksum {}\n",
        r.output_records, r.checksum, r.scan_records, r.scan_checksum
    );
    out += &format!(
        "  memory peak RSS {}, after scan {}\n",
        format_size(r.peak_rss_bytes),
        format_size(r.rss_after_scan_bytes)
    );
    match r.backend {
        Backend::Pool => {
            let p = &r.pool;
            if let Some(policy) = &r.policy {
                out += &format!("  policy {}\n", policy);
            }
            // Pool counters are summed over processes, each with its own pool of the budget.
            let budget = if r.processes > 1 {
                format!(
                    "{} a process, {} in all (the pool figures are summed over processes)",
                    format_size(r.budget_bytes),
                    format_size(p.budget_bytes)
                )
            } else {
                format_size(r.budget_bytes)
            };
            out += &format!(
                "  pool   budget {}, peak resident {}, now {}\n         wrote {} ({} compressed in, {} evictions, {} cheap, {} eager, {} inline), read {} in {} fault-ins, {} writes elided\n",
                budget,
                peak_resident(p),
                format_size(p.resident_bytes),
                format_size(p.extent_bytes_written),
                format_size(p.bytes_compressed_in),
                p.evictions_compress,
                p.evictions_cheap,
                p.eager_writes,
                p.inline_writes,
                format_size(p.extent_bytes_read),
                p.fault_ins,
                p.writes_elided
            );
            let h = &r.health;
            out += &format!(
                "  health {}: {} io errors, {} write retries, writes disabled {}, {} write nospace, {} read retries, {} checksum failures, {} budget overshoots, {} oversize\n",
                if h.is_healthy() { "ok" } else { "DEGRADED (see the warnings on stderr)" },
                h.io_errors,
                h.write_retries,
                h.writes_disabled,
                h.write_nospace,
                h.read_retries,
                h.checksum_failures,
                h.budget_overshoots,
                format_size(h.oversize_bytes),
            );
        }
        Backend::DdCol => {
            out += &format!(
                "  spill  {} written by upstream's ColChunk spill (record budget {})\n",
                format_size(r.dd_col_spill_bytes),
                r.budget_bytes / RECORD_BYTES
            );
        }
        Backend::Memory | Backend::DdOrd => {}
    }
    out
}

/// The pool's peak residency, and what any part of it over the budget was: room granted over
/// the budget is evictions whose writes were in flight (the write-behind), unless the pool
/// counted overshoots (see the pool's budget identity).
fn peak_resident(p: &PoolStats) -> String {
    let peak = format_size(p.peak_resident_bytes);
    let over = p.peak_resident_bytes.saturating_sub(p.budget_bytes);
    if over == 0 {
        peak
    } else if p.budget_overshoots == 0 {
        format!(
            "{peak} (budget + {} of evictions being written)",
            format_size(over)
        )
    } else {
        format!(
            "{peak} (budget + {}: evictions being written, and overshoots)",
            format_size(over)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_residency_over_the_budget_says_what_it_was() {
        const MIB: u64 = 1 << 20;
        let mut p = PoolStats {
            budget_bytes: 64 * MIB,
            peak_resident_bytes: 60 * MIB,
            ..PoolStats::default()
        };
        assert_eq!(peak_resident(&p), "60.0 MiB");
        p.peak_resident_bytes = 70 * MIB;
        assert_eq!(
            peak_resident(&p),
            "70.0 MiB (budget + 6.0 MiB of evictions being written)"
        );
        p.budget_overshoots = 2;
        assert!(peak_resident(&p).ends_with("and overshoots)"));
    }
}

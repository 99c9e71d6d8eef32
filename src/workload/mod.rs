//! Workloads the `spillway` binary and the examples run. Each takes its arguments as a
//! `clap::Args` struct, so the binary's subcommand and the example share one definition.

pub mod args;
pub mod colspill;
pub mod compare;
pub mod data;
pub mod input;
pub mod key_dist;
pub mod levels;
pub mod lookup;
pub mod metrics;
pub mod pool_throughput;
pub mod progress;
pub mod query;
pub mod run;
pub mod stdio;

/// Parses a byte size for clap (`256MiB`, `2GiB`, `65536`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    spillway_pool::parse_size(s).map_err(|e| e.to_string())
}

/// Gigabytes (10^9 bytes) per second.
pub fn gbps(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / secs / 1e9
    } else {
        0.0
    }
}

//! Evict and fault-in throughput of the pool against raw lz4, on 1 GiB of columnar chunks
//! with a 64 MiB budget and one spill thread.
//!
//! ```text
//! cargo run --release --example pool_throughput -- --json
//! ```
//! Same flags as `spillway pool-throughput` (`--total`, `--budget`, `--chunk`,
//! `--spill-threads`, `--extents`, `--extent-dir`, `--seed`).

use clap::Parser;
use spillway::workload::pool_throughput::{run, PoolThroughputArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PoolThroughputArgs,
}

fn main() {
    if let Err(e) = run(&Cli::parse().args) {
        eprintln!("pool_throughput: error: {e}");
        std::process::exit(1);
    }
}

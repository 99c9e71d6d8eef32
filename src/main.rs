//! The `spillway` command line. Thin: it parses flags and calls the workloads.

use clap::{Parser, Subcommand};
use spillway::workload::pool_throughput::{self, PoolThroughputArgs};

#[derive(Parser)]
#[command(
    name = "spillway",
    version,
    about = "A larger-than-memory state backend for differential dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure how fast the pool evicts to and faults back from its extent store, next to raw
    /// lz4 on the same chunks.
    PoolThroughput(PoolThroughputArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::PoolThroughput(args) => pool_throughput::run(args),
    };
    if let Err(e) = result {
        eprintln!("spillway: error: {e}");
        std::process::exit(1);
    }
}

//! The `spillway` command line. Thin: it parses flags and calls the workloads.

use clap::{Parser, Subcommand};
use spillway::workload::args::{QueryArgs, Workload};
use spillway::workload::compare::CompareArgs;
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
    /// Arrange a generated input, join it against a probe collection, scan it, and report.
    Join(QueryArgs),
    /// Arrange a generated input, count records and take the largest value per key, scan it,
    /// and report.
    Reduce(QueryArgs),
    /// Run `join` and print, spine level by spine level, where the arrangement's updates and
    /// bytes live and what each level cost (writes, elisions, fault-ins, merge time).
    Levels(QueryArgs),
    /// Run a workload once per backend, each in its own process, and print them side by side.
    Compare(CompareArgs),
    /// Measure how fast the pool evicts to and faults back from its extent store, next to raw
    /// lz4 on the same chunks.
    PoolThroughput(PoolThroughputArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Join(args) => spillway::workload::run::run(Workload::Join, args),
        Command::Reduce(args) => spillway::workload::run::run(Workload::Reduce, args),
        Command::Levels(args) => spillway::workload::levels::run(args),
        Command::Compare(args) => spillway::workload::compare::run(args),
        Command::PoolThroughput(args) => pool_throughput::run(args),
    };
    if let Err(e) = result {
        eprintln!("spillway: error: {e}");
        std::process::exit(1);
    }
}

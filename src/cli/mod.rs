//! The `spillway` command line: flags ([`args`]) are validated into plans, plans are run by
//! `spillway-workload`, reports are printed ([`report`]). Terminal and process plumbing lives
//! here only: the progress bar ([`progress`]), the Prometheus endpoint ([`metrics`]), stdout
//! kept for the report ([`stdio`]).

mod args;
mod compare;
mod levels;
mod metrics;
mod pool_throughput;
mod progress;
mod report;
mod run;
mod stdio;

use clap::{Parser, Subcommand};
use spillway_workload::plan::Workload;

use args::QueryArgs;
use compare::CompareArgs;
use pool_throughput::PoolThroughputArgs;

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

/// Parses the command line and runs the command it names.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    match &Cli::parse().command {
        Command::Join(args) => run::run(Workload::Join, args),
        Command::Reduce(args) => run::run(Workload::Reduce, args),
        Command::Levels(args) => levels::run(args),
        Command::Compare(args) => compare::run(args),
        Command::PoolThroughput(args) => pool_throughput::run(args),
    }
}

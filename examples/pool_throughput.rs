//! Evict and fault-in throughput of the pool against raw lz4, on 1 GiB of columnar chunks
//! with a 64 MiB budget and one spill thread.
//!
//! ```text
//! cargo run --release --example pool_throughput -- --json
//! ```
//! The measurement of `spillway pool-throughput`, from `spillway_workload::pool_throughput`,
//! with the same flags (`--total`, `--budget`, `--chunk`, `--spill-threads`, `--extents`,
//! `--extent-dir`, `--readahead`, `--seed`).

use clap::Parser;
use spillway::ExtentBackend;
use spillway_workload::pool_throughput::{measure, ThroughputSpec};

/// Parses a byte size (`64MiB`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    spillway::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Parser)]
struct Args {
    /// Bytes of chunks to move through the pool.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    total: u64,
    /// Pool budget during the evict and fault phases.
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    budget: u64,
    /// Bytes per chunk (a multiple of 32, at most 8 MiB).
    #[arg(long, default_value = "2MiB", value_parser = parse_bytes)]
    chunk: u64,
    /// Spill threads.
    #[arg(long, default_value_t = 1)]
    spill_threads: usize,
    /// Extent backend: file, swap or memory.
    #[arg(long, default_value = "file")]
    extents: String,
    /// Directory for file extents (default: the system temp dir).
    #[arg(long)]
    extent_dir: Option<std::path::PathBuf>,
    /// Chunks prefetched ahead of the one being read in the fault phase.
    #[arg(long, default_value_t = 2)]
    readahead: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut extents = ExtentBackend::from_name(&args.extents)?;
    if let (ExtentBackend::File { dir, .. }, Some(d)) = (&mut extents, &args.extent_dir) {
        *dir = Some(d.clone());
    }
    let spec = ThroughputSpec {
        total: args.total,
        budget: args.budget,
        chunk: args.chunk,
        spill_threads: args.spill_threads,
        extents,
        readahead: args.readahead,
        seed: args.seed,
    };
    let json = args.json;
    let report = measure(&spec, &|msg| {
        if !json {
            eprintln!("{msg}");
        }
    })?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "evict {:.2} GB/s (lz4 compress {:.2}), fault {:.2} GB/s (lz4 decompress {:.2}), ratio {:.2}x, contents verified: {}",
            report.evict_gbps,
            report.lz4_compress_gbps,
            report.fault_gbps,
            report.lz4_decompress_gbps,
            report.ratio,
            report.checksum_ok
        );
    }
    if !report.checksum_ok {
        return Err("chunks read back differently".into());
    }
    Ok(())
}

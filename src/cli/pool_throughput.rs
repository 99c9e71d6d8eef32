//! `spillway pool-throughput`: its flags, turned into a [`ThroughputSpec`], and the printed
//! result of `spillway_workload::pool_throughput::measure` (the phases are described there).
//! Chunks that read back differently are an error, after the result is printed.

use std::path::PathBuf;

use spillway_pool::{format_size, ExtentBackend};
use spillway_workload::pool_throughput::{measure, ThroughputReport, ThroughputSpec};

use super::args::parse_bytes;

/// Arguments of the pool throughput measurement.
#[derive(clap::Args, Clone, Debug)]
pub struct PoolThroughputArgs {
    /// Bytes of chunks to move through the pool.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub total: u64,
    /// Pool budget during the evict and fault phases.
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    pub budget: u64,
    /// Bytes per chunk (a multiple of 32, at most 8 MiB).
    #[arg(long, default_value = "2MiB", value_parser = parse_bytes)]
    pub chunk: u64,
    /// Spill threads (compression and I/O off the caller's thread).
    #[arg(long, default_value_t = 1)]
    pub spill_threads: usize,
    /// Extent backend: file, swap or memory.
    #[arg(long, default_value = "file")]
    pub extents: String,
    /// Directory for file extents (default: the system temp dir).
    #[arg(long)]
    pub extent_dir: Option<PathBuf>,
    /// Chunks prefetched ahead of the one being read in the fault phase (as a scan would).
    #[arg(long, default_value_t = 2)]
    pub readahead: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// No progress messages on stderr (the result is still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

impl PoolThroughputArgs {
    /// The validated measurement these flags ask for.
    fn spec(&self) -> Result<ThroughputSpec, Box<dyn std::error::Error>> {
        let mut extents = ExtentBackend::from_name(&self.extents)?;
        if let (ExtentBackend::File { dir, .. }, Some(d)) = (&mut extents, &self.extent_dir) {
            *dir = Some(d.clone());
        }
        let spec = ThroughputSpec {
            total: self.total,
            budget: self.budget,
            chunk: self.chunk,
            spill_threads: self.spill_threads,
            extents,
            readahead: self.readahead,
            seed: self.seed,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Runs the measurement and prints its result.
pub fn run(args: &PoolThroughputArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = args.spec()?;
    let (json, quiet) = (args.json, args.quiet);
    let report = measure(&spec, &|msg| {
        if !json && !quiet {
            eprintln!("{msg}");
        }
    })?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    if !report.checksum_ok {
        return Err(format!("{} chunks read back differently", report.chunks_differing).into());
    }
    Ok(())
}

/// The human summary of a measurement.
fn summary(r: &ThroughputReport) -> String {
    let verified = if r.checksum_ok {
        "yes".to_string()
    } else {
        format!("NO, {} chunks differ", r.chunks_differing)
    };
    format!(
        "evict  {:6.2} GB/s   (raw lz4 compress   {:6.2} GB/s, ratio {:.2} of it)\n\
         fault  {:6.2} GB/s   (raw lz4 decompress {:6.2} GB/s, ratio {:.2} of it)\n\
         lz4 ratio {:.2}x; wrote {} of extents, read {}\n\
         contents verified: {verified}\n",
        r.evict_gbps,
        r.lz4_compress_gbps,
        r.evict_gbps / r.lz4_compress_gbps,
        r.fault_gbps,
        r.lz4_decompress_gbps,
        r.fault_gbps / r.lz4_decompress_gbps,
        r.ratio,
        format_size(r.extent_bytes_written),
        format_size(r.extent_bytes_read),
    )
}

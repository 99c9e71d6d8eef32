//! Evict and fault-in throughput of the pool against raw lz4, on 1 GiB of columnar chunks
//! (2 MiB each) with a 64 MiB budget, one spill thread and file extents in the system temp dir.
//!
//! ```text
//! cargo run --release --example pool_throughput [-- --json]
//! ```
//! This is the measurement behind `spillway pool-throughput` (which takes flags for every
//! field of `ThroughputSpec`), called as a library: build a spec, `measure` it, read the report.

use spillway::ExtentBackend;
use spillway_workload::pool_throughput::{measure, ThroughputSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args().any(|a| a == "--json");
    let spec = ThroughputSpec {
        total: 1 << 30,
        budget: 64 << 20,
        chunk: 2 << 20,
        spill_threads: 1,
        extents: ExtentBackend::from_name("file")?,
        readahead: 2,
        seed: 1,
    };
    spec.validate()?;
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

//! Point lookups in a paged arrangement much larger than its budget: per-key cursor seeks
//! versus vectored lookups ([`spillway::get_vectored`]).
//!
//! ```text
//! cargo run --release --example vectored_lookup                 # 20M updates, 32 MiB budget
//! cargo run --release --example vectored_lookup -- --json       # one JSON line
//! cargo run --release --example vectored_lookup -- --updates 2M --budget 4MiB --keys 10k
//! ```
//! The arrangement is `spillway join`'s input (keys uniform over updates / 4), built in 10
//! rounds with compaction. `--keys` distinct keys are drawn from a hot range, `--hot` of the key
//! space, in random order; per-key lookups seek them one by one in that order, vectored
//! lookups sort them and look up `--batch` keys per call. Both accumulate each key's values
//! at the final time; their checksums must agree (the example fails otherwise).
//!
//! The JSON line has `keys`, `single_s`, `vectored_s`, `single_chunk_reads` (extent reads of
//! the per-key pass: its fault-ins), `vectored_chunk_reads` (reads the vectored pass issued),
//! `distinct_chunks_touched` (chunks whose fences hold a drawn key), `coalesced_reads`
//! (extents that shared a read with another), and more.

use clap::Parser;
use spillway::{Paging, Pool, PoolConfig};
use spillway_workload::input::InputSpec;
use spillway_workload::lookup::{arrange, distinct_chunks, draw_keys, per_key, vectored};
use spillway_workload::units::parse_count;

/// Parses a byte size (`32MiB`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    spillway::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Parser, Debug)]
struct Args {
    /// Updates in the arrangement.
    #[arg(long, default_value = "20M", value_parser = parse_count)]
    updates: u64,
    /// Pool budget.
    #[arg(long, default_value = "32MiB", value_parser = parse_bytes)]
    budget: u64,
    /// Distinct keys to look up.
    #[arg(long, default_value = "100k", value_parser = parse_count)]
    keys: u64,
    /// Fraction of the key space the keys are drawn from.
    #[arg(long, default_value_t = 0.1)]
    hot: f64,
    /// Keys per vectored lookup.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Seed of the input and of the key draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON line instead of the summary.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !(args.hot > 0.0 && args.hot <= 1.0) || args.keys == 0 || args.updates < 4 {
        return Err("--hot must be in (0, 1], --keys at least 1, --updates at least 4".into());
    }
    let spec = InputSpec {
        seed: args.seed,
        updates: args.updates,
        keys: args.updates / 4,
        probes: 0,
        rounds: 10,
        retract: 0.0,
        key_dist: spillway_workload::key_dist::KeySampler::uniform(args.updates / 4),
        records: spillway_workload::input::Records::U64,
    };
    let pool = Pool::new(PoolConfig::default().budget(args.budget)?)?;
    let worker_pool = pool.clone();
    let result = timely::execute_directly(move |worker| {
        let paging = Paging::enabled(&worker_pool);
        let mut trace = arrange(worker, &spec, &paging);
        let keys = draw_keys(&spec, args.keys, args.hot, args.seed);
        let touched = distinct_chunks(&mut trace, &keys);
        // Start both passes from the same state: nothing of the hot range resident.
        worker_pool.evict_to(0);
        let single = per_key(&mut trace, &spec, &keys, &worker_pool);
        worker_pool.evict_to(0);
        let vectors = vectored(&mut trace, &spec, &keys, args.batch);
        (keys.len(), touched, single, vectors)
    });
    let (keys, touched, single, vectors) = result;
    let line = serde_json::json!({
        "updates": args.updates,
        "budget_bytes": args.budget,
        "keys": keys,
        "hot": args.hot,
        "batch": args.batch,
        "single_s": single.seconds,
        "vectored_s": vectors.seconds,
        "speedup": single.seconds / vectors.seconds.max(1e-9),
        "single_chunk_reads": single.chunk_reads,
        "vectored_chunk_reads": vectors.chunk_reads,
        "distinct_chunks_touched": touched,
        "coalesced_reads": vectors.stats.pool.coalesced,
        "vectored_chunks_visited": vectors.stats.chunks_visited,
        "vectored_bytes_read": vectors.stats.pool.bytes,
        "records": single.checksum.records,
        "checksum": single.checksum.hex(),
        "vectored_checksum": vectors.checksum.hex(),
    });
    if args.json {
        println!("{line}");
    } else {
        println!(
            "{} updates at a {} budget; {} keys from {:.0}% of the key space\n  per key : {:8.3} s  {:9.0} keys/s  {} chunk reads\n  vectored: {:8.3} s  {:9.0} keys/s  {} chunk reads ({} extents coalesced, {} chunks touched)  {:.1}x\n  {} records, checksum {}",
            args.updates,
            spillway::format_size(args.budget),
            keys,
            args.hot * 100.0,
            single.seconds,
            keys as f64 / single.seconds,
            single.chunk_reads,
            vectors.seconds,
            keys as f64 / vectors.seconds,
            vectors.chunk_reads,
            vectors.stats.pool.coalesced,
            touched,
            single.seconds / vectors.seconds.max(1e-9),
            single.checksum.records,
            single.checksum.hex(),
        );
    }
    if single.checksum != vectors.checksum {
        return Err(format!(
            "per-key and vectored lookups disagree: {} vs {}",
            single.checksum.hex(),
            vectors.checksum.hex()
        )
        .into());
    }
    Ok(())
}

//! `pool-throughput`: how fast the pool evicts to and faults back from its extent store,
//! next to raw lz4 on the same chunks in the same run.
//!
//! 1. **Fill.** `--total` bytes of columnar `(u64, u64, u64, i64)` chunks are inserted with a
//!    budget large enough to hold them all (generation is not timed).
//! 2. **Evict.** The budget drops to `--budget`; the time until every write has landed gives
//!    `evict_gbps` (uncompressed bytes evicted per second). The spill queue is deep enough for
//!    all chunks, so the `--spill-threads` threads do every write (no inline writes).
//! 3. **Fault.** Every chunk is evicted (untimed), then pinned once, in order, with
//!    `--readahead` chunks prefetched ahead as a scanning cursor does; `fault_gbps` is
//!    uncompressed bytes faulted back per second. The timed loop only pins each chunk and
//!    touches one byte per page. Reads are cold: `O_DIRECT` bypasses the page cache where the
//!    filesystem allows it. Afterwards (untimed) every chunk is read again and its fingerprint
//!    checked against the one taken at fill time.
//! 4. **Raw lz4.** The same chunks are compressed and decompressed with `lz4_flex` on one
//!    thread, in memory: `lz4_compress_gbps`, `lz4_decompress_gbps` and `ratio`.

use std::path::PathBuf;
use std::time::Instant;

use spillway_pool::{format_size, ChunkHandle, ChunkHints, ExtentBackend, Pool, PoolConfig};

use super::data::{fill_columnar_chunk, fingerprint, UPDATE_BYTES};
use super::{gbps, parse_bytes};

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
}

/// Runs the measurement and prints its result.
pub fn run(args: &PoolThroughputArgs) -> Result<(), Box<dyn std::error::Error>> {
    let chunk = args.chunk as usize;
    if chunk == 0 || chunk % UPDATE_BYTES != 0 || chunk > spillway_pool::MAX_SLOT {
        return Err(format!(
            "--chunk must be a non-zero multiple of 32 bytes up to 8 MiB, got {chunk}"
        )
        .into());
    }
    let chunks = (args.total / args.chunk).max(1) as usize;
    let total = (chunks * chunk) as u64;
    let mut extents = ExtentBackend::from_name(&args.extents)?;
    if let (ExtentBackend::File { dir, .. }, Some(d)) = (&mut extents, &args.extent_dir) {
        *dir = Some(d.clone());
    }
    spillway_pool::validate_budget(args.budget)?;
    let config = PoolConfig {
        budget: total + (64 << 20),
        extents,
        spill_threads: args.spill_threads,
        spill_queue_depth: chunks + 1,
        ..PoolConfig::default()
    };
    let pool = Pool::new(config)?;
    let say = |msg: String| {
        if !args.json {
            eprintln!("{msg}");
        }
    };

    say(format!(
        "filling {} in {chunks} chunks of {} ({} extents)",
        format_size(total),
        format_size(chunk as u64),
        pool.extent_backend()
    ));
    let mut prints = Vec::with_capacity(chunks);
    let fill_t = Instant::now();
    let handles: Vec<ChunkHandle> = (0..chunks)
        .map(|i| {
            let h = pool.insert_with(chunk, ChunkHints::depth(1), |body| {
                fill_columnar_chunk(args.seed, i as u64, body)
            });
            prints.push(fingerprint(&h.pin().expect("resident chunk")));
            h
        })
        .collect();

    let fill_s = fill_t.elapsed().as_secs_f64();
    say(format!(
        "evicting to a budget of {}",
        format_size(args.budget)
    ));
    let before = pool.stats();
    let t = Instant::now();
    pool.set_budget(args.budget)?;
    pool.evict_to(args.budget);
    let evict_s = t.elapsed().as_secs_f64();
    let evicted = pool.stats().bytes_compressed_in - before.bytes_compressed_in;

    // Evict the rest too, so every read below is a cold fault-in from the store (the budget
    // stays at --budget for the fault phase).
    pool.evict_to(0);
    say("faulting every chunk back in, in order".into());
    let before = pool.stats();
    let t = Instant::now();
    let mut touched = 0u64;
    for h in handles.iter().take(args.readahead) {
        h.prefetch();
    }
    for (i, h) in handles.iter().enumerate() {
        if let Some(ahead) = handles.get(i + args.readahead) {
            ahead.prefetch();
        }
        // A reader touches the body; read one byte per page so every page is really there.
        let view = h.pin()?;
        touched += view.iter().step_by(4096).map(|&b| b as u64).sum::<u64>();
    }
    let fault_s = t.elapsed().as_secs_f64();
    let after = pool.stats();
    let faulted = (after.fault_ins - before.fault_ins) * chunk as u64;
    std::hint::black_box(touched);

    // Verify every chunk against its fill-time fingerprint (untimed; copy-out reads).
    let mut body = Vec::new();
    let mut mismatches = 0usize;
    for (h, print) in handles.iter().zip(&prints) {
        h.read_into(&mut body)?;
        mismatches += usize::from(fingerprint(&body) != *print);
    }
    drop(handles);

    say("raw lz4 on the same chunks".into());
    let raw: Vec<Vec<u8>> = (0..chunks)
        .map(|i| {
            let mut v = vec![0u8; chunk];
            fill_columnar_chunk(args.seed, i as u64, &mut v);
            v
        })
        .collect();
    // Compress into one reused output buffer (as the pool's writers do), keeping exact-size
    // copies for the decompression pass; the copies are not timed.
    let mut scratch = vec![0u8; lz4_flex::block::get_maximum_output_size(chunk)];
    let mut compressed = Vec::with_capacity(chunks);
    let mut lz4_c_s = 0.0;
    for body in &raw {
        let t = Instant::now();
        let n = lz4_flex::block::compress_into(body, &mut scratch)?;
        lz4_c_s += t.elapsed().as_secs_f64();
        compressed.push(scratch[..n].to_vec());
    }
    let compressed_bytes: usize = compressed.iter().map(Vec::len).sum();
    let mut out = vec![0u8; chunk];
    let t = Instant::now();
    for c in &compressed {
        lz4_flex::block::decompress_into(c, &mut out)?;
    }
    let lz4_d_s = t.elapsed().as_secs_f64();

    let evict_gbps = gbps(evicted, evict_s);
    let fault_gbps = gbps(faulted, fault_s);
    let lz4_compress_gbps = gbps(total, lz4_c_s);
    let lz4_decompress_gbps = gbps(total, lz4_d_s);
    let ratio = total as f64 / compressed_bytes.max(1) as f64;
    let result = serde_json::json!({
        "workload": "pool_throughput",
        "total_bytes": total,
        "chunk_bytes": chunk,
        "budget_bytes": args.budget,
        "spill_threads": args.spill_threads,
        "extents": pool.extent_backend(),
        "evict_gbps": round3(evict_gbps),
        "fault_gbps": round3(fault_gbps),
        "lz4_compress_gbps": round3(lz4_compress_gbps),
        "lz4_decompress_gbps": round3(lz4_decompress_gbps),
        "ratio": round3(ratio),
        "evict_vs_lz4": round3(evict_gbps / lz4_compress_gbps),
        "fault_vs_lz4": round3(fault_gbps / lz4_decompress_gbps),
        "readahead": args.readahead,
        "fill_s": round3(fill_s),
        "evict_s": round3(evict_s),
        "fault_s": round3(fault_s),
        "evicted_bytes": evicted,
        "faulted_bytes": faulted,
        "extent_bytes_written": after.extent_bytes_written,
        "extent_bytes_read": after.extent_bytes_read,
        "fault_ins": after.fault_ins,
        "prefetches_dropped": after.prefetches_dropped,
        "peak_resident_bytes": after.peak_resident_bytes,
        "checksum_ok": mismatches == 0,
    });
    if args.json {
        println!("{result}");
    } else {
        println!("evict  {evict_gbps:6.2} GB/s   (raw lz4 compress   {lz4_compress_gbps:6.2} GB/s, ratio {:.2} of it)", evict_gbps / lz4_compress_gbps);
        println!("fault  {fault_gbps:6.2} GB/s   (raw lz4 decompress {lz4_decompress_gbps:6.2} GB/s, ratio {:.2} of it)", fault_gbps / lz4_decompress_gbps);
        println!(
            "lz4 ratio {ratio:.2}x; wrote {} of extents, read {}",
            format_size(after.extent_bytes_written),
            format_size(after.extent_bytes_read)
        );
        println!(
            "contents verified: {}",
            if mismatches == 0 {
                "yes".to_string()
            } else {
                format!("NO, {mismatches} chunks differ")
            }
        );
    }
    if mismatches > 0 {
        return Err(format!("{mismatches} chunks read back differently").into());
    }
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

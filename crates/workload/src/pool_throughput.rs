//! The pool-throughput measurement (`spillway pool-throughput`, `examples/pool_throughput.rs`):
//! how fast the pool evicts to and faults back from its extent store, next to raw lz4 on the
//! same chunks in the same run. Every chunk is checked against its fill-time fingerprint, so a
//! fast result is never a wrong one (`checksum_ok`).
//!
//! 1. **Fill.** `total` bytes of columnar `(u64, u64, u64, i64)` chunks are inserted with a
//!    budget large enough to hold them all (generation is not timed).
//! 2. **Evict.** The budget drops to `budget`; the time until every write has landed gives
//!    `evict_gbps` (uncompressed bytes evicted per second). The spill queue is deep enough for
//!    all chunks, so the `spill_threads` threads do every write (no inline writes).
//! 3. **Fault.** Every chunk is evicted (untimed), then pinned once, in order, with
//!    `readahead` chunks prefetched ahead as a scanning cursor does; `fault_gbps` is
//!    uncompressed bytes faulted back per second. The timed loop only pins each chunk and
//!    touches one byte per page. Reads are cold: `O_DIRECT` bypasses the page cache where the
//!    filesystem allows it. Afterwards (untimed) every chunk is read again and its fingerprint
//!    checked against the one taken at fill time.
//! 4. **Raw lz4.** The same chunks are compressed and decompressed with `lz4_flex` on one
//!    thread, in memory: `lz4_compress_gbps`, `lz4_decompress_gbps` and `ratio`.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use spillway_pool::{format_size, ChunkHandle, ChunkHints, ExtentBackend, Pool, PoolConfig};

use crate::data::{fill_columnar_chunk, fingerprint, UPDATE_BYTES};
use crate::units::gbps;

/// What the measurement moves, and through which pool.
#[derive(Clone, Debug)]
pub struct ThroughputSpec {
    /// Bytes of chunks to move through the pool.
    pub total: u64,
    /// Pool budget during the evict and fault phases.
    pub budget: u64,
    /// Bytes per chunk (a multiple of 32, at most 8 MiB).
    pub chunk: u64,
    /// Spill threads (compression and I/O off the caller's thread).
    pub spill_threads: usize,
    /// The extent store.
    pub extents: ExtentBackend,
    /// Chunks prefetched ahead of the one being read in the fault phase.
    pub readahead: usize,
    /// Seed of the generated data.
    pub seed: u64,
}

impl ThroughputSpec {
    /// Refuses a chunk size the pool cannot hold or a budget it would refuse.
    pub fn validate(&self) -> Result<(), String> {
        let chunk = self.chunk as usize;
        if chunk == 0 || !chunk.is_multiple_of(UPDATE_BYTES) || chunk > spillway_pool::MAX_SLOT {
            return Err(format!(
                "--chunk must be a non-zero multiple of 32 bytes up to 8 MiB, got {chunk}"
            ));
        }
        spillway_pool::validate_budget(self.budget).map_err(|e| e.to_string())
    }
}

/// What the measurement found: `spillway pool-throughput --json` (field names are a
/// contract).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// Always `pool_throughput`.
    pub workload: String,
    /// Bytes moved (whole chunks).
    pub total_bytes: u64,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// The budget of the evict and fault phases.
    pub budget_bytes: u64,
    /// Spill threads.
    pub spill_threads: usize,
    /// The extent store's name.
    pub extents: String,
    /// Uncompressed bytes evicted per second, GB/s.
    pub evict_gbps: f64,
    /// Uncompressed bytes faulted back per second, GB/s.
    pub fault_gbps: f64,
    /// Raw lz4 compression on one thread, GB/s.
    pub lz4_compress_gbps: f64,
    /// Raw lz4 decompression on one thread, GB/s.
    pub lz4_decompress_gbps: f64,
    /// lz4's compression ratio on these chunks.
    pub ratio: f64,
    /// `evict_gbps / lz4_compress_gbps`.
    pub evict_vs_lz4: f64,
    /// `fault_gbps / lz4_decompress_gbps`.
    pub fault_vs_lz4: f64,
    /// Chunks prefetched ahead in the fault phase.
    pub readahead: usize,
    /// Seconds of the (untimed) fill.
    pub fill_s: f64,
    /// Seconds of the evict phase.
    pub evict_s: f64,
    /// Seconds of the fault phase.
    pub fault_s: f64,
    /// Uncompressed bytes evicted in the evict phase.
    pub evicted_bytes: u64,
    /// Uncompressed bytes faulted back in the fault phase.
    pub faulted_bytes: u64,
    /// The pool's `extent_bytes_written` at the end.
    pub extent_bytes_written: u64,
    /// The pool's `extent_bytes_read` at the end.
    pub extent_bytes_read: u64,
    /// The pool's `fault_ins` at the end.
    pub fault_ins: u64,
    /// The pool's `prefetches_dropped` at the end.
    pub prefetches_dropped: u64,
    /// The pool's `peak_resident_bytes` at the end.
    pub peak_resident_bytes: u64,
    /// Whether every chunk read back as it was written.
    pub checksum_ok: bool,
    /// Chunks that read back differently (0 when `checksum_ok`).
    #[serde(skip)]
    pub chunks_differing: usize,
}

/// Runs the measurement; `say` hears what it is doing (one line per phase).
pub fn measure(
    spec: &ThroughputSpec,
    say: &dyn Fn(String),
) -> Result<ThroughputReport, Box<dyn std::error::Error>> {
    spec.validate()?;
    let chunk = spec.chunk as usize;
    let chunks = (spec.total / spec.chunk).max(1) as usize;
    let total = (chunks * chunk) as u64;
    let config = PoolConfig {
        budget: total + (64 << 20),
        extents: spec.extents.clone(),
        spill_threads: spec.spill_threads,
        spill_queue_depth: chunks + 1,
        ..PoolConfig::default()
    };
    let pool = Pool::new(config)?;
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
                fill_columnar_chunk(spec.seed, i as u64, body)
            });
            prints.push(fingerprint(&h.pin().expect("resident chunk")));
            h
        })
        .collect();

    let fill_s = fill_t.elapsed().as_secs_f64();
    say(format!(
        "evicting to a budget of {}",
        format_size(spec.budget)
    ));
    let before = pool.stats();
    let t = Instant::now();
    pool.set_budget(spec.budget)?;
    pool.evict_to(spec.budget);
    let evict_s = t.elapsed().as_secs_f64();
    let evicted = pool.stats().bytes_compressed_in - before.bytes_compressed_in;

    // Evict the rest too, so every read below is a cold fault-in from the store (the budget
    // stays at `budget` for the fault phase).
    pool.evict_to(0);
    say("faulting every chunk back in, in order".into());
    let before = pool.stats();
    let t = Instant::now();
    let mut touched = 0u64;
    for h in handles.iter().take(spec.readahead) {
        h.prefetch();
    }
    for (i, h) in handles.iter().enumerate() {
        if let Some(ahead) = handles.get(i + spec.readahead) {
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
            fill_columnar_chunk(spec.seed, i as u64, &mut v);
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
    Ok(ThroughputReport {
        workload: "pool_throughput".into(),
        total_bytes: total,
        chunk_bytes: chunk,
        budget_bytes: spec.budget,
        spill_threads: spec.spill_threads,
        extents: pool.extent_backend().into(),
        evict_gbps: round3(evict_gbps),
        fault_gbps: round3(fault_gbps),
        lz4_compress_gbps: round3(lz4_compress_gbps),
        lz4_decompress_gbps: round3(lz4_decompress_gbps),
        ratio: round3(ratio),
        evict_vs_lz4: round3(evict_gbps / lz4_compress_gbps),
        fault_vs_lz4: round3(fault_gbps / lz4_decompress_gbps),
        readahead: spec.readahead,
        fill_s: round3(fill_s),
        evict_s: round3(evict_s),
        fault_s: round3(fault_s),
        evicted_bytes: evicted,
        faulted_bytes: faulted,
        extent_bytes_written: after.extent_bytes_written,
        extent_bytes_read: after.extent_bytes_read,
        fault_ins: after.fault_ins,
        prefetches_dropped: after.prefetches_dropped,
        peak_resident_bytes: after.peak_resident_bytes,
        checksum_ok: mismatches == 0,
        chunks_differing: mismatches,
    })
}

/// Rounds to three decimals.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

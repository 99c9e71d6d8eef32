//! Helpers shared by the pool's integration tests.
#![allow(dead_code)] // each test binary uses a subset

use spillway_pool::slot::MIN_SLOT;
use spillway_pool::{ChunkHandle, ChunkHints, Pool, PoolStats};

/// One smallest slot, in bytes.
pub const SLOT: u64 = MIN_SLOT as u64;

/// A compressible, recognizable body: little-endian words `seed << 32 | i`.
pub fn body(seed: u64, len: usize) -> Vec<u8> {
    (0..len.div_ceil(8) as u64)
        .flat_map(|i| ((seed << 32) | i).to_le_bytes())
        .take(len)
        .collect()
}

/// Inserts a one-slot chunk of `body(seed)` at `depth`.
pub fn insert(pool: &Pool, seed: u64, depth: u8) -> ChunkHandle {
    pool.insert(&body(seed, MIN_SLOT), ChunkHints::depth(depth))
}

/// Pins `chunk` and checks it still holds `body(seed)`.
pub fn check(chunk: &ChunkHandle, seed: u64) {
    assert_eq!(
        &*chunk.pin().unwrap(),
        &body(seed, chunk.len())[..],
        "chunk {seed} corrupted"
    );
}

/// Counters that must balance once the pool is quiescent and every chunk is gone.
pub fn assert_drained(s: &PoolStats) {
    assert_eq!(s.live_chunks, 0, "{s:?}");
    assert_eq!(s.inserts, s.frees, "{s:?}");
    assert_eq!(s.resident_bytes, 0, "{s:?}");
    assert_eq!(s.pinned_bytes, 0, "{s:?}");
    assert_eq!(s.oversize_bytes, 0, "{s:?}");
    assert_eq!(s.spill_in_flight, 0, "{s:?}");
    assert_eq!(s.extent_bytes_live, 0, "{s:?}");
}

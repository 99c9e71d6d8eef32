//! Helpers shared by the pool's integration tests.

use std::sync::Arc;

use spillway_pool::MIN_SLOT;
use spillway_pool::{ChunkHandle, ChunkHints, Pool, PoolConfig, PoolStats};
use spillway_pool::{FaultyIo, FileStore, FileStoreOptions};

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

/// A pool over file extents in a fresh temp dir whose I/O goes through a fault injector,
/// with evictions written inline (no spill threads, no write-behind): chunks evicted together
/// get consecutive extent slots, and every test sees states deterministically.
pub fn faulty_pool(budget_slots: u64) -> (Pool, Arc<FaultyIo>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let store =
        FileStore::open_with_io(dir.path(), FileStoreOptions::default(), io.clone()).unwrap();
    let config = PoolConfig {
        budget: budget_slots * SLOT,
        spill_threads: 0,
        write_behind: Some(0),
        ..PoolConfig::default()
    };
    (Pool::with_store(config, Arc::new(store)).unwrap(), io, dir)
}

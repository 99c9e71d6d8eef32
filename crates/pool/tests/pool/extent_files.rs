//! The file store's class files under a working pool: each slot's range is filled once, so
//! the files stay dense (no holes between extents), and the fill is counted apart from the
//! frames written.

use std::sync::Arc;

use crate::common::{assert_drained, body};
use spillway_pool::EXTENT_ALIGN;
use spillway_pool::{ChunkHints, FileStore, FileStoreOptions, Pool, PoolConfig};

#[test]
fn class_files_stay_dense_through_evictions_and_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
    let config = PoolConfig {
        budget: 1 << 20,
        ..PoolConfig::default()
    };
    let pool = Pool::with_store(config, store.clone()).unwrap();
    // Bodies of 64 KiB to 1 MiB that compress to frames of many classes, none of them a
    // class that punches on free.
    let len = |i: u64| (64 << 10) + (i as usize * 37_000) % (960 << 10);
    let insert = |i: u64| pool.insert(&body(i, len(i)), ChunkHints::default());
    let mut chunks: Vec<_> = (0..32).map(|i| (i, insert(i))).collect();
    pool.evict_to(0);
    // Free every other chunk, write more into the freed slots, evict again.
    chunks.retain(|(i, _)| i % 2 == 0);
    chunks.extend((32..48).map(|i| (i, insert(i))));
    pool.evict_to(0);

    let s = pool.stats();
    assert!(s.extent_bytes_filled > 0, "{s:?}");
    let usage = store.disk_usage().unwrap();
    assert!(usage.file_bytes > 0);
    assert!(
        usage.allocated_bytes >= usage.file_bytes,
        "holes in the class files: {usage:?}"
    );
    // Each slot is filled at most once: by less than a quarter of the slots' bytes.
    assert!(
        s.extent_bytes_filled * 4 < usage.file_bytes,
        "{s:?} {usage:?}"
    );
    assert_eq!(s.holes_punched, 0, "no class punches on free here: {s:?}");
    assert_eq!(s.extent_bytes_written % EXTENT_ALIGN as u64, 0);
    for (i, chunk) in &chunks {
        assert_eq!(chunk.read_to_vec().unwrap(), body(*i, len(*i)), "chunk {i}");
    }
    drop(chunks);
    assert_drained(&pool.stats());
}

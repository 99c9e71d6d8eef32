//! The pool's state machine and its unsafe slot views, small enough for Miri.
//!
//! Run under Miri with the heap-backed regions (mmap is not available to Miri):
//! ```text
//! cargo +nightly miri test -p spillway-pool --features heap-regions --test miri
//! ```
//! The same tests run natively in the ordinary suite.

use std::sync::Arc;

use spillway_pool::MemoryStore;
use spillway_pool::{ChunkHints, ChunkState, Pool, PoolConfig};

const SLOT: usize = 64 << 10;
/// Bodies are much smaller than their slot: each still takes a whole slot of the budget, and
/// Miri interprets every byte it touches.
const BODY: usize = 4096;

fn pool(slots: u64, spill_threads: usize) -> Pool {
    let config = PoolConfig {
        budget: slots * SLOT as u64,
        spill_threads,
        io_threads: 1,
        write_behind: Some(0),
        warm_cap: Some(SLOT as u64),
        // A handful of slots per class: the heap stand-in allocates slots lazily.
        region_bytes_per_class: Some(16 << 20),
        ..PoolConfig::default()
    };
    Pool::with_store(config, Arc::new(MemoryStore::new(None))).unwrap()
}

fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i / 4096) as u8))
        .collect()
}

#[test]
fn states_pins_and_reclaim() {
    let pool = pool(2, 0);
    let a = pool.insert(&body(1, BODY), ChunkHints::depth(0));
    let b = pool.insert(&body(2, 3000), ChunkHints::depth(1).raw());
    let view = a.pin().unwrap();
    let words = view.as_u64s();
    assert_eq!(words.len(), BODY / 8);
    // Pinned `a` survives; `b` goes.
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::UnbackedResident);
    assert_eq!(b.state(), ChunkState::Evicted);
    assert_eq!(&*view, &body(1, BODY)[..]);
    // The view outlives its handle; the free waits for it.
    drop(a);
    assert_eq!(view[BODY - 1], body(1, BODY)[BODY - 1]);
    drop(view);
    // Fault-in through the heap region, and copy-out without admission.
    assert_eq!(b.read_to_vec().unwrap(), body(2, 3000));
    assert_eq!(&*b.pin().unwrap(), &body(2, 3000)[..]);
    assert_eq!(b.state(), ChunkState::BackedResident);
    pool.evict_to(0);
    assert_eq!(pool.stats().evictions_cheap, 1);
    drop(b);
    let s = pool.stats();
    assert_eq!((s.live_chunks, s.resident_bytes, s.pinned_bytes), (0, 0, 0));
}

#[test]
fn spill_threads_and_readers_race_cleanly() {
    let pool = pool(2, 1);
    let chunks: Vec<_> = (0..6)
        .map(|i| pool.insert(&body(i, BODY), ChunkHints::depth(i % 2)))
        .collect();
    std::thread::scope(|s| {
        for t in 0..2usize {
            let chunks = &chunks;
            s.spawn(move || {
                for (i, c) in chunks.iter().enumerate().skip(t) {
                    c.prefetch();
                    assert_eq!(&*c.pin().unwrap(), &body(i as u8, BODY)[..]);
                }
            });
        }
    });
    drop(chunks);
    pool.quiesce();
    let s = pool.stats();
    assert_eq!(
        (s.live_chunks, s.resident_bytes, s.spill_in_flight),
        (0, 0, 0)
    );
    assert_eq!(s.inserts, s.frees);
}

#[test]
fn vectored_pins_fault_in_under_a_small_budget() {
    let pool = pool(2, 0);
    let chunks: Vec<_> = (0..5)
        .map(|i| pool.insert(&body(i, BODY), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<_> = chunks.iter().rev().collect();
    let mut seen = [0; 5];
    // The memory store reads one extent per read: five reads, through the reader thread.
    let stats = pool.pin_each(&handles, |i, pin| {
        seen[i] += 1;
        assert_eq!(&*pin.unwrap(), &body(4 - i as u8, BODY)[..]);
    });
    assert_eq!(seen, [1; 5]);
    assert_eq!((stats.faulted, stats.reads), (5, 5));
    assert!(pool.stats().resident_bytes <= 2 * SLOT as u64);
}

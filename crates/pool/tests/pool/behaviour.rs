//! Behaviour of the buffer pool: states, budget, eviction order, elision, warm reuse, pins,
//! fault injection through the I/O seam, configuration errors, and concurrent churn.

use crate::common::{assert_drained, body, check, faulty_pool, insert, SLOT};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use spillway_pool::AlignedBuf;
use spillway_pool::MemoryStore;
use spillway_pool::MIN_SLOT;
use spillway_pool::{
    ChunkHandle, ChunkHints, ChunkState, ConfigError, ExtentBackend, Pool, PoolConfig, PoolError,
    PoolStats,
};
use spillway_pool::{ExtentAddr, ExtentStore, StoreError};
use spillway_pool::{ReadFault, WriteFault, READ_RETRY_DELAYS, WRITE_RETRY_DELAYS};

/// A pool over file extents in a fresh temp dir, with evictions written inline (no spill
/// threads) and no write-behind, so every test sees states deterministically.
fn sync_pool(budget_slots: u64) -> (Pool, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = PoolConfig {
        budget: budget_slots * SLOT,
        spill_threads: 0,
        write_behind: Some(0),
        ..PoolConfig::default()
    }
    .extent_dir(dir.path());
    (Pool::new(config).unwrap(), dir)
}

#[test]
fn round_trip_in_every_state() {
    let (pool, _dir) = sync_pool(8);
    let a = insert(&pool, 1, 0);
    assert_eq!(a.state(), ChunkState::UnbackedResident);
    check(&a, 1);
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::Evicted);
    assert_eq!(
        a.read_to_vec().unwrap(),
        body(1, MIN_SLOT),
        "copy-out of an evicted chunk"
    );
    assert_eq!(a.state(), ChunkState::Evicted, "copy-out must not admit");
    check(&a, 1);
    assert_eq!(a.state(), ChunkState::BackedResident);
    // Odd lengths, every class, empty and oversize bodies.
    let lens = [
        1,
        4095,
        65536,
        100_000,
        1 << 20,
        (8 << 20) - 3,
        8 << 20,
        (8 << 20) + 1,
        0,
    ];
    let chunks: Vec<_> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            (
                pool.insert(&body(i as u64 + 10, len), ChunkHints::depth(1)),
                i as u64 + 10,
            )
        })
        .collect();
    assert_eq!(chunks[7].0.state(), ChunkState::Oversize);
    pool.evict_to(0);
    for (c, seed) in &chunks {
        check(c, *seed);
    }
    let taken = chunks
        .into_iter()
        .map(|(c, s)| (c.take().unwrap(), s))
        .collect::<Vec<_>>();
    for (bytes, seed) in taken {
        assert_eq!(bytes, body(seed, bytes.len()));
    }
    drop(a);
    assert_drained(&pool.stats());
}

#[test]
fn memory_backend_round_trips() {
    let pool = Pool::new(PoolConfig {
        budget: 4 * SLOT,
        extents: ExtentBackend::Memory { capacity: None },
        spill_threads: 1,
        ..PoolConfig::default()
    })
    .unwrap();
    assert_eq!(pool.extent_backend(), "memory");
    let chunks: Vec<_> = (0..32).map(|i| insert(&pool, i, 0)).collect();
    pool.quiesce();
    for (i, c) in chunks.iter().enumerate() {
        check(c, i as u64);
    }
    let s = pool.stats();
    assert!(s.evictions_compress > 0 && s.fault_ins > 0, "{s:?}");
    drop(chunks);
    pool.quiesce();
    assert_drained(&pool.stats());
}

#[test]
fn fault_in_reads_the_extent_not_a_poisoned_slot() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: 2 * SLOT,
            spill_threads: 0,
            write_behind: Some(0),
            poison_released_slots: true,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let a = insert(&pool, 7, 0);
    let ptr = a.pin().unwrap().as_ptr();
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::Evicted);
    // The evicted chunk's slot is now on the warm list, filled with 0xDE: the fault-in takes
    // that very slot back, so only a real decode of the extent restores the contents.
    let view = a.pin().unwrap();
    assert_eq!(
        view.as_ptr(),
        ptr,
        "expected warm reuse of the poisoned slot"
    );
    assert_eq!(&*view, &body(7, MIN_SLOT)[..]);
    assert_eq!(pool.stats().fault_ins, 1);
    assert!(pool.stats().extent_bytes_read > 0);
}

#[test]
fn budget_holds_on_insert_and_on_fault_in() {
    let (pool, _dir) = sync_pool(4);
    let chunks: Vec<_> = (0..24)
        .map(|i| {
            let c = insert(&pool, i, 0);
            assert!(pool.stats().resident_bytes <= 4 * SLOT);
            c
        })
        .collect();
    let s = pool.stats();
    assert!(s.evictions_compress >= 20, "{s:?}");
    for _round in 0..2 {
        for (i, c) in chunks.iter().enumerate() {
            check(c, i as u64);
            assert!(pool.stats().resident_bytes <= 4 * SLOT);
        }
    }
    let s = pool.stats();
    assert!(s.peak_resident_bytes <= 4 * SLOT, "{s:?}");
    assert!(s.fault_ins >= 40, "{s:?}");
    assert_eq!(s.budget_overshoots, 0);
}

#[test]
fn second_chance_prefers_untouched_chunks() {
    let (pool, _dir) = sync_pool(4);
    let c: Vec<_> = (0..4).map(|i| insert(&pool, i, 0)).collect();
    drop(c[0].pin().unwrap()); // touch the oldest
    let _e = insert(&pool, 4, 0);
    assert_eq!(
        c[0].state(),
        ChunkState::UnbackedResident,
        "touched chunk got a second chance"
    );
    assert_eq!(
        c[1].state(),
        ChunkState::Evicted,
        "oldest untouched chunk goes first"
    );
    let _f = insert(&pool, 5, 0);
    assert_eq!(c[2].state(), ChunkState::Evicted);
    // The first pass cleared c[0]'s mark and moved it behind c[3].
    let _g = insert(&pool, 6, 0);
    assert_eq!(c[3].state(), ChunkState::Evicted);
    assert_eq!(c[0].state(), ChunkState::UnbackedResident);
    let _h = insert(&pool, 7, 0);
    assert_eq!(c[0].state(), ChunkState::Evicted, "no second second chance");
}

#[test]
fn deeper_chunks_are_evicted_first() {
    let (pool, _dir) = sync_pool(4);
    let a = insert(&pool, 0, 0);
    let b = insert(&pool, 1, 3);
    let c = insert(&pool, 2, 0);
    let d = insert(&pool, 3, 1);
    let _e = insert(&pool, 4, 0);
    assert_eq!(b.state(), ChunkState::Evicted, "depth 3 goes first");
    let _f = insert(&pool, 5, 0);
    assert_eq!(d.state(), ChunkState::Evicted, "then depth 1");
    let _g = insert(&pool, 6, 0);
    assert_eq!(a.state(), ChunkState::Evicted, "then the oldest of depth 0");
    assert_eq!(c.state(), ChunkState::UnbackedResident);
}

#[test]
fn chunks_freed_before_writing_cost_no_io() {
    let (pool, _dir) = sync_pool(64);
    for i in 0..50 {
        drop(insert(&pool, i, 0));
    }
    let s = pool.stats();
    assert_eq!(s.writes_elided, 50);
    assert_eq!(s.extent_bytes_written, 0);
    assert_eq!(s.bytes_compressed_in, 0);
    assert_drained(&s);
}

/// An extent store whose writes wait at a gate: freezes spill threads mid-job.
struct GatedStore {
    inner: MemoryStore,
    open: Mutex<bool>,
    cv: Condvar,
    writes: AtomicUsize,
}

impl GatedStore {
    fn new() -> Arc<Self> {
        Arc::new(GatedStore {
            inner: MemoryStore::new(None),
            open: Mutex::new(false),
            cv: Condvar::new(),
            writes: AtomicUsize::new(0),
        })
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl ExtentStore for GatedStore {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(frame)
    }
    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        self.inner.read(addr, len, buf)
    }
    fn free(&self, addr: ExtentAddr, len: usize) {
        self.inner.free(addr, len)
    }
    fn live_bytes(&self) -> u64 {
        self.inner.live_bytes()
    }
}

#[test]
fn freeing_a_queued_write_cancels_it() {
    let store = GatedStore::new();
    let pool = Pool::with_store(
        PoolConfig {
            budget: 4 * SLOT,
            spill_threads: 1,
            write_behind: Some(8 * SLOT),
            ..PoolConfig::default()
        },
        store.clone(),
    )
    .unwrap();
    // 4 fit; the next 4 push 4 writes to the queue (one of them blocks in the store).
    let mut chunks: Vec<_> = (0..8).map(|i| insert(&pool, i, 0)).collect();
    let s = pool.stats();
    assert_eq!(s.spill_scheduled, 4, "{s:?}");
    assert_eq!(
        s.resident_bytes,
        8 * SLOT,
        "write-behind lets inserts run ahead"
    );
    // Free everything: queued writes are cancelled, the running one completes but its
    // extent is freed right away.
    chunks.clear();
    store.open();
    pool.quiesce();
    let s = pool.stats();
    // At most two writes are under way (the single compressor's two encoders); the rest
    // were still queued and are cancelled.
    assert!(s.spill_cancelled >= 2, "{s:?}");
    assert_eq!(
        store.writes.load(Ordering::SeqCst) as u64,
        4 - s.spill_cancelled
    );
    assert_eq!(s.writes_elided, 8 - (4 - s.spill_cancelled), "{s:?}");
    assert_drained(&s);
}

#[test]
fn evicting_a_backed_chunk_does_no_io() {
    let (pool, _dir) = sync_pool(8);
    let a = insert(&pool, 1, 0);
    pool.evict_to(0);
    let written = pool.stats().extent_bytes_written;
    assert!(written > 0);
    check(&a, 1);
    assert_eq!(a.state(), ChunkState::BackedResident);
    pool.evict_to(0);
    let s = pool.stats();
    assert_eq!(a.state(), ChunkState::Evicted);
    assert_eq!(s.evictions_cheap, 1);
    assert_eq!(s.evictions_compress, 1);
    assert_eq!(s.extent_bytes_written, written, "cheap eviction wrote");
    assert_eq!(s.bytes_compressed_in, MIN_SLOT as u64);
}

#[test]
fn eager_backing_makes_eviction_cheap() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: 16 * SLOT,
            spill_threads: 1,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let chunks: Vec<_> = (0..4)
        .map(|i| pool.insert(&body(i, MIN_SLOT), ChunkHints::depth(5).eager()))
        .collect();
    pool.quiesce();
    for c in &chunks {
        assert_eq!(c.state(), ChunkState::BackedResident);
    }
    assert_eq!(pool.stats().eager_writes, 4);
    pool.evict_to(0);
    let s = pool.stats();
    assert_eq!((s.evictions_cheap, s.evictions_compress), (4, 0), "{s:?}");
    for (i, c) in chunks.iter().enumerate() {
        check(c, i as u64);
    }
}

#[test]
fn warm_slots_are_reused_up_to_the_cap() {
    // budget 16 slots: warm cap = budget / 8 = 2 slots.
    let (pool, _dir) = sync_pool(16);
    let chunks: Vec<_> = (0..4).map(|i| insert(&pool, i, 0)).collect();
    let ptrs: Vec<_> = chunks.iter().map(|c| c.pin().unwrap().as_ptr()).collect();
    drop(chunks);
    let s = pool.stats();
    assert_eq!(s.warm_bytes, 2 * SLOT, "warm list capped at budget/8");
    let again = insert(&pool, 9, 0);
    assert!(
        ptrs.contains(&again.pin().unwrap().as_ptr()),
        "a warm slot was reused"
    );
    assert_eq!(pool.stats().warm_bytes, SLOT);
    pool.set_budget(8 * SLOT).unwrap(); // cap drops to 1 slot
    assert_eq!(pool.stats().warm_bytes, SLOT);
    pool.set_budget(4 * SLOT).unwrap(); // cap 0.5 slot: trimmed
    assert_eq!(pool.stats().warm_bytes, 0);
}

#[test]
fn addresses_are_stable_while_resident_and_pins_block_eviction() {
    let (pool, _dir) = sync_pool(4);
    let a = insert(&pool, 1, 9); // deepest: first in line for eviction
    let view = a.pin().unwrap();
    let ptr = view.as_ptr();
    let others: Vec<_> = (0..40).map(|i| insert(&pool, 100 + i, 0)).collect();
    assert_eq!(
        a.state(),
        ChunkState::UnbackedResident,
        "a pinned chunk was evicted"
    );
    assert_eq!(view.as_ptr(), ptr);
    assert_eq!(&*view, &body(1, MIN_SLOT)[..]);
    pool.evict_to(0);
    assert_eq!(
        a.pin().unwrap().as_ptr(),
        ptr,
        "pinned chunk survives zero-target eviction"
    );
    drop(view);
    assert_eq!(pool.stats().pinned_bytes, 0);
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::Evicted);
    drop(others);
}

#[test]
fn write_behind_covers_only_writes_in_flight_and_pins_over_budget_are_overshoots() {
    // A write-behind allowance, but every eviction written inline: no write is ever in flight
    // when room is granted, so nothing may be admitted over the budget silently.
    let dir = tempfile::tempdir().unwrap();
    let config = PoolConfig {
        budget: 2 * SLOT,
        spill_threads: 0,
        write_behind: Some(4 * SLOT),
        ..PoolConfig::default()
    }
    .extent_dir(dir.path());
    let pool = Pool::new(config).unwrap();
    let a = insert(&pool, 1, 0);
    let b = insert(&pool, 2, 0);
    let c = insert(&pool, 3, 0); // evicts `a`, written inline: within the budget
    let s = pool.stats();
    assert_eq!(
        (s.resident_bytes, s.budget_overshoots),
        (2 * SLOT, 0),
        "{s:?}"
    );
    let pins = [b.pin().unwrap(), c.pin().unwrap()];
    // Both resident chunks pinned: the next one goes over the budget, and says so, although
    // it fits within budget + write_behind.
    let d = insert(&pool, 4, 0);
    let s = pool.stats();
    assert_eq!(
        (s.resident_bytes, s.budget_overshoots),
        (3 * SLOT, 1),
        "{s:?}"
    );
    drop(pins);
    let e = insert(&pool, 5, 0);
    let s = pool.stats();
    assert_eq!(s.budget_overshoots, 1, "{s:?}");
    assert!(
        s.resident_bytes <= 2 * SLOT,
        "back within the budget: {s:?}"
    );
    for (chunk, seed) in [(&a, 1), (&b, 2), (&c, 3), (&d, 4), (&e, 5)] {
        check(chunk, seed);
    }
}

#[test]
fn a_pin_outlives_its_handle() {
    let (pool, _dir) = sync_pool(4);
    let a = insert(&pool, 3, 0);
    let view = a.pin().unwrap();
    let view2 = view.clone();
    drop(a);
    assert_eq!(pool.stats().live_chunks, 1, "free deferred while pinned");
    drop(view);
    assert_eq!(&*view2, &body(3, MIN_SLOT)[..]);
    drop(view2);
    assert_drained(&pool.stats());
}

#[test]
fn prefetch_faults_in_ahead_of_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: 8 * SLOT,
            spill_threads: 1,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let a = insert(&pool, 5, 0);
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::Evicted);
    a.prefetch();
    pool.quiesce();
    assert_eq!(a.state(), ChunkState::BackedResident);
    let s = pool.stats();
    assert_eq!((s.prefetches, s.fault_ins, s.prefetches_dropped), (1, 1, 0));
    check(&a, 5);
    assert_eq!(pool.stats().fault_ins, 1, "the read found it resident");
}

#[test]
fn short_writes_are_completed() {
    let (pool, io, _dir) = faulty_pool(2);
    let chunks: Vec<_> = (0..4)
        .map(|i| pool.insert(&body(i, 200_000), ChunkHints::default()))
        .collect();
    io.fail_next_writes(3, WriteFault::ShortWrite);
    pool.evict_to(0);
    assert!(io.faults_injected() >= 1);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.read_to_vec().unwrap(), body(i as u64, 200_000));
    }
    assert_eq!(pool.stats().io_errors, 0);
}

#[test]
fn enospc_keeps_data_resident_and_degrades() {
    let (pool, io, _dir) = faulty_pool(2);
    let a = insert(&pool, 1, 0);
    let b = insert(&pool, 2, 0);
    // The store retries once after punching holes; fail both attempts.
    io.fail_next_writes(2, WriteFault::NoSpace);
    let c = insert(&pool, 3, 0);
    let s = pool.stats();
    assert_eq!(s.write_nospace, 1, "{s:?}");
    assert_eq!(
        s.budget_overshoots, 1,
        "nothing evictable: over budget, counted"
    );
    assert_eq!(a.state(), ChunkState::UnbackedResident);
    for (chunk, seed) in [(&a, 1), (&b, 2), (&c, 3)] {
        check(chunk, seed);
    }
    // Space comes back when an extent is freed; meanwhile writes resume on the next free.
    drop(b);
    assert_eq!(pool.stats().io_errors, 0);
}

#[test]
fn persistent_eio_on_write_disables_writes_without_losing_data() {
    let (pool, io, _dir) = faulty_pool(2);
    let chunks: Vec<_> = (0..2).map(|i| insert(&pool, i, 0)).collect();
    // Every attempt of one write fails: a persistent failure.
    let attempts = WRITE_RETRY_DELAYS.len() + 1;
    io.fail_next_writes(attempts, WriteFault::Eio);
    let more: Vec<_> = (2..6).map(|i| insert(&pool, i, 0)).collect();
    let s = pool.stats();
    assert_eq!(s.io_errors, attempts as u64, "{s:?}");
    assert_eq!(s.write_retries, attempts as u64 - 1, "{s:?}");
    assert_eq!(s.writes_disabled, 1);
    assert_eq!(s.extent_bytes_written, 0);
    for (i, c) in chunks.iter().chain(&more).enumerate() {
        check(c, i as u64);
    }
}

#[test]
fn read_errors_and_flipped_bytes_are_loud() {
    let (pool, io, _dir) = faulty_pool(4);
    let a = insert(&pool, 1, 0);
    pool.evict_to(0);
    // Every attempt fails: the error surfaces.
    let attempts = READ_RETRY_DELAYS.len() + 1;
    io.fail_next_reads(attempts, ReadFault::Eio);
    let err = a.pin().unwrap_err();
    assert!(matches!(err, PoolError::ReadIo { .. }), "{err}");
    assert!(
        err.to_string().contains("slot"),
        "error names the extent: {err}"
    );
    assert_eq!(
        a.state(),
        ChunkState::Evicted,
        "a failed fault-in leaves the chunk evicted"
    );
    io.flip_bytes_on_next_reads(attempts, 100);
    let err = a.pin().unwrap_err();
    assert!(matches!(err, PoolError::Checksum { .. }), "{err}");
    io.flip_bytes_on_next_reads(attempts, 5);
    assert!(matches!(a.read_to_vec(), Err(PoolError::Checksum { .. })));
    let s = pool.stats();
    let n = attempts as u64;
    assert_eq!((s.io_errors, s.checksum_failures), (n, 2 * n));
    assert_eq!(s.read_retries, 3 * (n - 1));
    assert_eq!(s.resident_bytes, 0, "failed loads released their slots");
    check(&a, 1); // the extent itself is intact
}

#[test]
fn bad_configuration_is_refused_up_front() {
    let cfg = |f: fn(&mut PoolConfig)| {
        let mut c = PoolConfig::default();
        f(&mut c);
        Pool::new(c).map(|_| ()).unwrap_err()
    };
    assert!(matches!(cfg(|c| c.budget = 0), ConfigError::ZeroBudget));
    assert!(matches!(
        cfg(|c| c.budget = 1 << 62),
        ConfigError::BudgetTooLarge { .. }
    ));
    assert!(matches!(
        cfg(|c| c.extents = ExtentBackend::File {
            dir: Some("/no/such/dir".into()),
            direct_io: true,
            capacity: None
        }),
        ConfigError::ExtentDir { .. }
    ));
    assert!(matches!(
        cfg(|c| c.extents = ExtentBackend::File {
            dir: Some("/proc".into()),
            direct_io: true,
            capacity: None
        }),
        ConfigError::ExtentDir { .. }
    ));
    assert!(matches!(
        cfg(|c| c.spill_queue_depth = 0),
        ConfigError::Invalid(_)
    ));
    let swap = cfg(|c| c.extents = ExtentBackend::Swap { rss_target: 0 });
    if cfg!(feature = "heap-regions") {
        // The swap arena needs mmap, which this build replaces.
        assert!(matches!(swap, ConfigError::Invalid(_)), "{swap}");
    } else if !spillway_pool::swap_available() {
        assert!(matches!(swap, ConfigError::NoSwap), "{swap}");
    }
    let msg = cfg(|c| c.budget = 0).to_string();
    assert!(msg.contains("budget"), "{msg}");
    let pool = Pool::new(PoolConfig::default().budget("1MiB").unwrap()).unwrap();
    assert!(pool.set_budget(0).is_err());
    assert_eq!(pool.budget(), 1 << 20);
}

#[test]
fn swap_backend_round_trips_when_swap_is_on() {
    if cfg!(feature = "heap-regions") {
        eprintln!("skipping: the swap backend needs mmap (built with heap-regions)");
        return;
    }
    if !spillway_pool::swap_available() {
        eprintln!("skipping: no swap device is active (see README: swap backend)");
        return;
    }
    let pool = Pool::new(PoolConfig {
        budget: 4 * SLOT,
        extents: ExtentBackend::Swap { rss_target: 0 },
        ..PoolConfig::default()
    })
    .unwrap();
    let chunks: Vec<_> = (0..16).map(|i| insert(&pool, i, 0)).collect();
    pool.quiesce();
    for (i, c) in chunks.iter().enumerate() {
        check(c, i as u64);
    }
    assert!(pool.stats().evictions_compress > 0);
}

#[test]
fn concurrent_churn_keeps_every_read_correct_and_counters_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: 16 * SLOT,
            spill_threads: 2,
            spill_queue_depth: 4,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut rng = 0x2545F4914F6CDD1Du64 ^ (t + 1);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut live: Vec<(ChunkHandle, u64)> = Vec::new();
                for i in 0..600u64 {
                    let seed = (t << 20) | i;
                    match next() % 10 {
                        0..=3 => {
                            let len = [1000, MIN_SLOT, 100_000, 300_000][(next() % 4) as usize];
                            let hints = ChunkHints::depth((next() % 4) as u8);
                            let hints = if next() % 5 == 0 {
                                hints.eager()
                            } else {
                                hints
                            };
                            live.push((pool.insert(&body(seed, len), hints), seed));
                        }
                        4..=6 if !live.is_empty() => {
                            let (c, s) = &live[(next() as usize) % live.len()];
                            let view = c.pin().unwrap();
                            assert_eq!(&*view, &body(*s, c.len())[..]);
                        }
                        7 if !live.is_empty() => {
                            let (c, s) = &live[(next() as usize) % live.len()];
                            if next() % 2 == 0 {
                                c.prefetch();
                            } else {
                                assert_eq!(c.read_to_vec().unwrap(), body(*s, c.len()));
                            }
                        }
                        8 if !live.is_empty() => {
                            let k = (next() as usize) % live.len();
                            drop(live.swap_remove(k));
                        }
                        9 if i % 50 == 0 => pool.evict_to(4 * SLOT),
                        _ => {}
                    }
                }
                for (c, s) in &live {
                    assert_eq!(&*c.pin().unwrap(), &body(*s, c.len())[..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    pool.quiesce();
    let s = pool.stats();
    assert!(
        s.evictions_compress > 0 && s.fault_ins > 0,
        "churn never paged: {s:?}"
    );
    assert_drained(&s);
    assert!(
        s.peak_resident_bytes
            <= 16 * SLOT + PoolConfig::default().write_behind_for(16 * SLOT) + 4 * (512 << 10)
    );
}

#[test]
fn metrics_are_exported_to_prometheus() {
    let (pool, _dir) = sync_pool(4);
    let registry = prometheus::Registry::new();
    pool.register_metrics(&registry, &[("process", "0")])
        .unwrap();
    let _chunks: Vec<_> = (0..6).map(|i| insert(&pool, i, 0)).collect();
    let families = registry.gather();
    let find = |name: &str| {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .get_metric()[0]
            .clone()
    };
    assert_eq!(
        find("spillway_pool_inserts_total")
            .get_counter()
            .get_value(),
        6.0
    );
    assert_eq!(
        find("spillway_pool_resident_bytes").get_gauge().get_value(),
        (4 * SLOT) as f64
    );
    assert_eq!(
        find("spillway_pool_inserts_total").get_label()[0].value(),
        "0"
    );
    assert_eq!(families.len(), PoolStats::default().fields().len());
    // Units last; counters are counters (with `_total`), gauges are gauges.
    use prometheus::proto::MetricType;
    let kind = |name: &str| {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .get_field_type()
    };
    for name in [
        "spillway_pool_extent_written_bytes_total",
        "spillway_pool_extent_read_bytes_total",
        "spillway_pool_compressed_input_bytes_total",
        "spillway_pool_evictions_cheap_total",
        "spillway_pool_fault_ins_total",
    ] {
        assert_eq!(kind(name), MetricType::COUNTER, "{name}");
    }
    for name in [
        "spillway_pool_resident_bytes",
        "spillway_pool_extent_live_bytes",
        "spillway_pool_budget_bytes",
        "spillway_pool_live_chunks",
    ] {
        assert_eq!(kind(name), MetricType::GAUGE, "{name}");
    }
    for f in &families {
        let counter = f.get_field_type() == MetricType::COUNTER;
        assert_eq!(counter, f.name().ends_with("_total"), "{}", f.name());
        let stem = f.name().trim_end_matches("_total");
        assert!(
            !stem.contains("_bytes_"),
            "{}: the unit goes last",
            f.name()
        );
    }
}

#[test]
fn level_stats_split_the_pool_by_depth_and_add_up() {
    let (pool, _dir) = sync_pool(16);
    let young: Vec<_> = (0..4).map(|i| insert(&pool, i, 0)).collect();
    let old: Vec<_> = (10..14).map(|i| insert(&pool, i, 3)).collect();
    let deepest = insert(&pool, 20, 200); // shares the last level
                                          // The deepest levels go first: everything but the four young chunks.
    pool.evict_to(4 * SLOT);
    check(&old[0], 10); // one fault-in at level 3
    drop(young); // freed unwritten: elided at level 0
    let levels = pool.level_stats();
    let s = pool.stats();
    assert_eq!(levels.len(), spillway_pool::LEVELS);
    assert_eq!((levels[0].chunks, levels[0].writes_elided), (0, 4));
    assert_eq!(levels[3].chunks, 4);
    assert_eq!(levels[3].fault_ins, 1);
    assert_eq!(levels[15].chunks, 1, "depth 200 counts in the last level");
    assert!(levels[15].chunks_written == 1 && levels[15].extent_bytes > 0);
    let sum = |f: fn(&spillway_pool::LevelStats) -> u64| levels.iter().map(f).sum::<u64>();
    assert_eq!(sum(|l| l.chunks), s.live_chunks);
    assert_eq!(sum(|l| l.resident_bytes), s.resident_bytes);
    assert_eq!(sum(|l| l.extent_bytes), s.extent_bytes_live);
    assert_eq!(sum(|l| l.writes_elided), s.writes_elided);
    assert_eq!(sum(|l| l.fault_ins), s.fault_ins);
    assert_eq!(sum(|l| l.extent_bytes_written), s.extent_bytes_written);
    assert_eq!(
        sum(|l| l.chunks_written),
        s.evictions_compress + s.eager_writes
    );
    drop((old, deepest));
}

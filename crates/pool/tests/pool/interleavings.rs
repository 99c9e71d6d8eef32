//! Interleavings of the buffer pool (`src/pool/`, `src/spill.rs`) that `behaviour` does not
//! cover: pins and frees racing queued writes, prefetches racing frees and pins, the
//! pool dropped with I/O in flight, the detached-copy fallback, budget changes under churn.
//!
//! Tests named `bugN_...` are regression tests for the findings of the first concurrency
//! review (each failed before its fix): freed-while-pinned chunks whose writes were parked
//! forever (1), eviction queues growing while under budget (2), `set_budget` not waking waiters
//! (3), prefetches that evicted other chunks (4), and miscounted cancellations (5).
//!
//! Spill threads are frozen deterministically with a gated store: the single I/O thread
//! blocks inside `write` (or `read`), so a single compressor runs out of encoders and the
//! next queued write stays unclaimed (`Writing { running: false }`) until the gate opens.
//! A test that would hang on a bug runs the blocking call on a helper thread and gives up
//! after a timeout, then unblocks it.

use crate::common::{assert_drained, body, check, insert, SLOT};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spillway_pool::AlignedBuf;
use spillway_pool::MemoryStore;
use spillway_pool::MIN_SLOT;
use spillway_pool::{ChunkHandle, ChunkHints, ChunkState, Pool, PoolConfig};
use spillway_pool::{ExtentAddr, ExtentStore, StoreError};

// ---------------------------------------------------------------------------------------------
// Per-thread net allocation counter (for the eviction-queue growth test). It is the global
// allocator of the whole test binary; it forwards every call to the system allocator and only
// counts on the calling thread, so the other tests run as they would without it.

struct Counting;

thread_local! {
    static NET_ALLOC: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = NET_ALLOC.try_with(|n| n.set(n.get() + delta));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn net_alloc() -> i64 {
    NET_ALLOC.with(|n| n.get())
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` on a new thread that signals the returned receiver when `f` returns.
fn spawn_signal<F: FnOnce() + Send + 'static>(
    f: F,
) -> (mpsc::Receiver<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    (rx, h)
}

struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn new(open: bool) -> Self {
        Gate {
            open: Mutex::new(open),
            cv: Condvar::new(),
        }
    }
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cv.notify_all();
    }
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

/// A memory store whose writes and reads wait at gates, counting calls that reached the
/// gate (`*_entered`) and calls that went through.
struct GatedStore {
    inner: MemoryStore,
    write_gate: Gate,
    read_gate: Gate,
    writes_entered: AtomicUsize,
    writes: AtomicUsize,
    reads_entered: AtomicUsize,
    reads: AtomicUsize,
}

impl GatedStore {
    fn new(writes_open: bool, reads_open: bool) -> Arc<Self> {
        Arc::new(GatedStore {
            inner: MemoryStore::new(None),
            write_gate: Gate::new(writes_open),
            read_gate: Gate::new(reads_open),
            writes_entered: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            reads_entered: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
        })
    }
}

impl ExtentStore for GatedStore {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        self.writes_entered.fetch_add(1, Ordering::SeqCst);
        self.write_gate.pass();
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(frame)
    }
    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        self.reads_entered.fetch_add(1, Ordering::SeqCst);
        self.read_gate.pass();
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(addr, len, buf)
    }
    fn free(&self, addr: ExtentAddr, len: usize) {
        self.inner.free(addr, len)
    }
    fn live_bytes(&self) -> u64 {
        self.inner.live_bytes()
    }
}

/// One compressor, one I/O thread, a gated store, budget `budget_slots` slots.
fn gated_pool(store: &Arc<GatedStore>, budget_slots: u64, write_behind_slots: u64) -> Pool {
    Pool::with_store(
        PoolConfig {
            budget: budget_slots * SLOT,
            spill_threads: 1,
            io_threads: 1,
            write_behind: Some(write_behind_slots * SLOT),
            ..PoolConfig::default()
        },
        store.clone(),
    )
    .unwrap()
}

/// Budget 2 slots, write-behind 16, write gate closed. Inserts x0..x4 so that:
/// x0's write is blocked in the store on the I/O thread, x1's frame is encoded and queued for
/// the I/O thread (both encoders of the compressor are out), and x2's write is queued but
/// cannot be claimed until the gate opens (`Writing { evict: true, running: false }`).
/// x3 and x4 are resident. Returns the pool, store and the five handles.
fn frozen_queued_write() -> (Pool, Arc<GatedStore>, Vec<ChunkHandle>) {
    let store = GatedStore::new(false, true);
    let pool = gated_pool(&store, 2, 16);
    let mut xs = vec![insert(&pool, 0, 0), insert(&pool, 1, 0)];
    xs.push(insert(&pool, 2, 0)); // evicts x0
    assert!(
        wait_until(Duration::from_secs(10), || store
            .writes_entered
            .load(Ordering::SeqCst)
            == 1),
        "x0's write never reached the store"
    );
    xs.push(insert(&pool, 3, 0)); // evicts x1
    assert!(
        wait_until(Duration::from_secs(10), || pool.stats().bytes_compressed_in
            == 2 * SLOT),
        "x1 never encoded: {:?}",
        pool.stats()
    );
    xs.push(insert(&pool, 4, 0)); // evicts x2: queued, unclaimable while the gate is shut
    let s = pool.stats();
    assert_eq!(s.spill_in_flight, 3, "{s:?}");
    assert_eq!(s.spill_scheduled, 3, "{s:?}");
    assert_eq!(xs[2].state(), ChunkState::WriteInFlight);
    (pool, store, xs)
}

// ---------------------------------------------------------------------------------------------
// Finding 1: a chunk freed while pinned, whose eviction write is queued, is still claimed and
// compressed (`claim_write` ignores `freed`), and `store_and_land` then parks it in
// `Writing { running: false }` with no job anywhere: `writes_in_flight` and
// `pending_evict_bytes` stay raised until the last unpin.

/// BUG (finding 1a): die-young elision is broken for a chunk freed while pinned: its queued
/// write is claimed and the chunk compressed although its handle is gone.
#[test]
fn bug1_freed_while_pinned_chunk_is_still_compressed() {
    let (pool, store, mut xs) = frozen_queued_write();
    let x2 = xs.remove(2);
    let view = x2.pin().unwrap();
    drop(x2); // free deferred by the pin; the write is still queued, not running
    store.write_gate.set(true);
    wait_until(Duration::from_secs(5), || {
        let s = pool.stats();
        s.spill_in_flight == 0 || s.bytes_compressed_in > 2 * SLOT
    });
    let s = pool.stats();
    drop(view);
    assert_eq!(
        s.bytes_compressed_in,
        2 * SLOT,
        "a chunk whose handle was dropped before its write started was compressed: {s:?}"
    );
}

/// BUG (finding 1b): while a freed chunk stays pinned, `quiesce` and `evict_to` never return,
/// although no write is queued or running (a cursor keeping a PinGuard past its handle is
/// documented as allowed).
#[test]
fn bug1_quiesce_and_evict_to_hang_while_freed_chunk_is_pinned() {
    let (pool, store, mut xs) = frozen_queued_write();
    let x2 = xs.remove(2);
    let view = x2.pin().unwrap();
    drop(x2);
    store.write_gate.set(true);
    // Let x0, x1 land and the x2 job (if any) finish.
    assert!(wait_until(Duration::from_secs(10), || store
        .writes
        .load(Ordering::SeqCst)
        >= 2));
    let p = pool.clone();
    let (rq, hq) = spawn_signal(move || p.quiesce());
    let p = pool.clone();
    let (re, he) = spawn_signal(move || p.evict_to(0));
    let quiesced = rq.recv_timeout(Duration::from_secs(3)).is_ok();
    let evicted = re.recv_timeout(Duration::from_secs(1)).is_ok();
    let s = pool.stats();
    drop(view); // unblocks both
    hq.join().unwrap();
    he.join().unwrap();
    assert!(
        quiesced,
        "quiesce hung: spill_in_flight stays {} while a freed chunk is pinned: {s:?}",
        s.spill_in_flight
    );
    assert!(
        evicted,
        "evict_to(0) hung: pending eviction bytes never settle while a freed chunk is pinned"
    );
    drop(xs);
    pool.quiesce();
    assert_drained(&pool.stats());
}

/// BUG (finding 1c): deadlock. A thread that holds the pin of its own freed chunk (as above)
/// and then inserts past `budget + write_behind` with nothing evictable waits in
/// `reserve_room` for `pending_evict_bytes` that only its own unpin can release. Without the
/// stuck pending bytes the insert is an overshoot (counted) and returns.
#[test]
fn bug1_insert_deadlocks_on_own_pin_of_freed_chunk() {
    let (pool, store, mut xs) = frozen_queued_write();
    let x2 = xs.remove(2);
    let (ready_tx, ready_rx) = mpsc::channel();
    let p = pool.clone();
    let (done, h) = spawn_signal(move || {
        let view = x2.pin().unwrap();
        drop(x2);
        ready_tx.send(()).unwrap();
        // Fill past budget (2) + write-behind (16) with pinned chunks: nothing evictable.
        let mut keep = Vec::new();
        for i in 0..24 {
            let c = insert(&p, 100 + i, 0);
            let v = c.pin().unwrap();
            keep.push((c, v));
        }
        drop(keep);
        drop(view);
    });
    let _ = ready_rx.recv();
    // The helper's inserts wait for the in-flight writes (backpressure); once the store
    // moves, x2's queued write must be cancelled (it was freed), not left pending forever.
    std::thread::sleep(Duration::from_millis(200));
    store.write_gate.set(true);
    let finished = done.recv_timeout(Duration::from_secs(8)).is_ok();
    if !finished {
        // Unblock the helper: more budget, then any notify of the state condvar.
        pool.set_budget(256 * SLOT).unwrap();
        drop(insert(&pool, 999, 0));
    }
    h.join().unwrap();
    assert!(
        finished,
        "insert deadlocked waiting for a write that only its own thread's unpin can settle"
    );
    drop(xs);
}

// ---------------------------------------------------------------------------------------------

/// BUG (finding 2): every chunk freed while the pool is under budget leaves a stale
/// `(id, gen)` in its eviction queue; only an eviction pass removes them. Under budget no pass
/// runs, so eviction queues grow by 8 bytes per insert without bound (and the first pass later
/// pops them all under the state lock).
#[test]
fn bug2_eviction_queues_grow_with_every_chunk_freed_under_budget() {
    let pool = Pool::with_store(
        PoolConfig {
            budget: 64 * SLOT,
            spill_threads: 0,
            ..PoolConfig::default()
        },
        Arc::new(MemoryStore::new(None)),
    )
    .unwrap();
    let cycle = || drop(pool.insert_with(8, ChunkHints::depth(0), |b| b.fill(1)));
    for _ in 0..1000 {
        cycle();
    }
    let before = net_alloc();
    for _ in 0..200_000 {
        cycle();
    }
    let grown = net_alloc() - before;
    assert_eq!(pool.stats().live_chunks, 0);
    assert!(
        grown < 64 << 10,
        "200k insert/free cycles with one live chunk at a time grew the pool's heap by \
         {grown} bytes"
    );
}

/// BUG (finding 3): raising the budget does not wake inserts blocked in `reserve_room`; they
/// sleep until some queued write lands (forever, combined with finding 1).
#[test]
fn bug3_raising_the_budget_does_not_wake_blocked_inserts() {
    let store = GatedStore::new(false, true);
    let pool = gated_pool(&store, 2, 0);
    let a = insert(&pool, 1, 0);
    let b = insert(&pool, 2, 0);
    let p = pool.clone();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let c = insert(&p, 3, 0); // evicts a, then waits for its (gated) write
        tx.send(()).unwrap();
        drop(c);
    });
    assert!(wait_until(Duration::from_secs(10), || store
        .writes_entered
        .load(Ordering::SeqCst)
        == 1));
    std::thread::sleep(Duration::from_millis(100)); // the insert is now waiting
    pool.set_budget(16 * SLOT).unwrap();
    let woke = rx.recv_timeout(Duration::from_secs(2)).is_ok();
    store.write_gate.set(true);
    h.join().unwrap();
    assert!(
        woke,
        "insert stayed blocked after set_budget made room (waits for the gated write)"
    );
    check(&a, 1);
    check(&b, 2);
}

/// BUG (finding 4): a prefetch that is dropped for lack of room still evicts a resident chunk
/// first (`run_prefetch` calls `reserve_room`, which runs an eviction pass and may even write
/// inline on the I/O thread): the prefetch does nothing useful and costs a compression, a
/// write and a later fault-in.
#[test]
fn bug4_dropped_prefetch_still_evicts_a_resident_chunk() {
    let pool = Pool::with_store(
        PoolConfig {
            budget: 2 * SLOT,
            spill_threads: 1,
            io_threads: 1,
            write_behind: Some(0),
            ..PoolConfig::default()
        },
        Arc::new(MemoryStore::new(None)),
    )
    .unwrap();
    let a = insert(&pool, 1, 0);
    pool.evict_to(0);
    assert_eq!(a.state(), ChunkState::Evicted);
    let b = insert(&pool, 2, 0);
    let c = insert(&pool, 3, 0);
    a.prefetch();
    pool.quiesce();
    let s = pool.stats();
    assert_eq!(s.prefetches_dropped, 1, "{s:?}");
    assert_eq!(a.state(), ChunkState::Evicted);
    assert_eq!(
        (b.state(), s.evictions_compress),
        (ChunkState::UnbackedResident, 1),
        "a dropped prefetch evicted a resident chunk: {s:?}"
    );
    check(&c, 3);
}

/// BUG (finding 5): `spill_cancelled` ("queued write jobs cancelled because the chunk was
/// freed first") and `writes_elided` ("no compression, no I/O") also count writes that were
/// never queued (inline writes) and chunks that were already compressed when freed
/// (`store_and_land`'s freed branch goes through `try_reclaim`'s cancel arm).
#[test]
fn bug5_cancel_and_elision_counters_count_compressed_unqueued_writes() {
    let store = GatedStore::new(false, true);
    let pool = Pool::with_store(
        PoolConfig {
            budget: 4 * SLOT,
            spill_threads: 0, // every eviction is written inline
            write_behind: Some(0),
            ..PoolConfig::default()
        },
        store.clone(),
    )
    .unwrap();
    let a = insert(&pool, 1, 0);
    let b = insert(&pool, 2, 0);
    let p = pool.clone();
    // One pass marks both for inline writing; the writer blocks in a's store write.
    let h = std::thread::spawn(move || p.evict_to(0));
    assert!(wait_until(Duration::from_secs(10), || store
        .writes_entered
        .load(Ordering::SeqCst)
        == 1));
    drop(b); // b's inline write is under way (running): the free is deferred
    store.write_gate.set(true);
    h.join().unwrap();
    let s = pool.stats();
    // b was freed before its inline write started: neither compressed nor written; its
    // abandoned write is counted once, and it counts as elided (never written).
    assert_eq!(
        s.bytes_compressed_in, SLOT,
        "b must not be compressed: {s:?}"
    );
    assert_eq!(store.writes.load(Ordering::SeqCst), 1, "b was not written");
    assert_eq!(
        (s.spill_cancelled, s.writes_elided, s.inline_writes),
        (1, 1, 1),
        "{s:?}"
    );
    drop(a);
}

// ---------------------------------------------------------------------------------------------
// Passing: interleavings verified correct.

/// A chunk pinned while its eviction write is queued stays resident (and backed) when the
/// write lands; the pending bytes settle; a later eviction is cheap.
#[test]
fn pin_during_queued_eviction_keeps_chunk_and_settles() {
    let (pool, store, xs) = frozen_queued_write();
    let view = xs[2].pin().unwrap();
    store.write_gate.set(true);
    pool.quiesce();
    assert_eq!(xs[2].state(), ChunkState::BackedResident);
    assert_eq!(&*view, &body(2, MIN_SLOT)[..]);
    let s = pool.stats();
    assert_eq!((s.spill_in_flight, s.pinned_bytes), (0, SLOT), "{s:?}");
    assert_eq!(s.evictions_compress, 2, "x0 and x1 only: {s:?}");
    pool.evict_to(0); // x2 is pinned: stays
    assert_eq!(xs[2].state(), ChunkState::BackedResident);
    drop(view);
    let written = store.writes.load(Ordering::SeqCst);
    pool.evict_to(0);
    assert_eq!(xs[2].state(), ChunkState::Evicted);
    assert_eq!(pool.stats().evictions_cheap, 1);
    // x3 and x4 were written by the first evict_to; x2's eviction needs no write.
    assert_eq!(store.writes.load(Ordering::SeqCst), written);
    assert_eq!(written, 5);
    for (i, x) in xs.iter().enumerate() {
        check(x, i as u64);
    }
    drop(xs);
    pool.quiesce();
    assert_drained(&pool.stats());
}

/// Freed while pinned with its write still queued, then unpinned before the compressor can
/// claim it: the write is cancelled, nothing is compressed or written for it.
#[test]
fn freed_pinned_queued_write_unpinned_before_claim_is_cancelled() {
    let (pool, store, mut xs) = frozen_queued_write();
    let x2 = xs.remove(2);
    let view = x2.pin().unwrap();
    drop(x2);
    assert_eq!(pool.stats().live_chunks, 5, "free deferred by the pin");
    drop(view);
    let s = pool.stats();
    assert_eq!((s.spill_cancelled, s.writes_elided), (1, 1), "{s:?}");
    assert_eq!((s.spill_in_flight, s.live_chunks), (2, 4), "{s:?}");
    store.write_gate.set(true);
    pool.quiesce();
    let s = pool.stats();
    assert_eq!(s.bytes_compressed_in, 2 * SLOT, "{s:?}");
    assert_eq!(store.writes.load(Ordering::SeqCst), 2);
    drop(xs);
    pool.quiesce();
    assert_drained(&pool.stats());
}

/// A chunk freed while its write is blocked inside the store (running) is reclaimed when the
/// write lands, and its new extent is freed at once.
#[test]
fn free_during_running_write_reclaims_after_landing() {
    let (pool, store, mut xs) = frozen_queued_write();
    let x0 = xs.remove(0); // its write is blocked in the store
    drop(x0);
    assert_eq!(
        pool.stats().live_chunks,
        5,
        "reclaim deferred by the running write"
    );
    store.write_gate.set(true);
    pool.quiesce();
    let s = pool.stats();
    assert_eq!(s.live_chunks, 4, "{s:?}");
    assert_eq!(store.writes.load(Ordering::SeqCst), 3);
    for (x, seed) in xs.iter().zip([1, 2, 3, 4]) {
        check(x, seed);
    }
    drop(xs);
    pool.quiesce();
    assert_drained(&pool.stats());
}

/// A prefetch queued behind a blocked write, whose chunk is freed before the job runs, is
/// dropped: no read, no fault-in, no leaked slot or extent.
#[test]
fn prefetch_of_a_chunk_freed_while_queued_is_dropped() {
    let store = GatedStore::new(true, true);
    let pool = gated_pool(&store, 2, 16);
    let p = insert(&pool, 7, 0);
    pool.evict_to(0);
    assert_eq!(p.state(), ChunkState::Evicted);
    store.write_gate.set(false);
    let xs = vec![
        insert(&pool, 0, 0),
        insert(&pool, 1, 0),
        insert(&pool, 2, 0),
    ]; // x0's write blocks
    assert!(wait_until(Duration::from_secs(10), || store
        .writes_entered
        .load(Ordering::SeqCst)
        == 2));
    p.prefetch(); // queued behind the blocked I/O thread
    drop(p);
    store.write_gate.set(true);
    pool.quiesce();
    let s = pool.stats();
    assert_eq!(
        (s.prefetches, s.prefetches_dropped, s.fault_ins),
        (1, 1, 0),
        "{s:?}"
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    drop(xs);
    pool.quiesce();
    assert_drained(&pool.stats());
}

/// A pin of a chunk that a prefetch is loading waits for that load instead of starting its
/// own: one read, one fault-in, correct bytes.
#[test]
fn pin_waits_for_a_prefetch_in_flight_and_loads_once() {
    let store = GatedStore::new(true, false);
    let pool = gated_pool(&store, 4, 16);
    let a = insert(&pool, 5, 0);
    pool.evict_to(0);
    a.prefetch();
    assert!(wait_until(Duration::from_secs(10), || store
        .reads_entered
        .load(Ordering::SeqCst)
        == 1));
    assert_eq!(a.state(), ChunkState::Loading);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let v = a.pin().unwrap();
            assert_eq!(&*v, &body(5, MIN_SLOT)[..]);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            a.state(),
            ChunkState::Loading,
            "the pin must wait, not load"
        );
        store.read_gate.set(true);
        reader.join().unwrap();
    });
    pool.quiesce();
    let s = pool.stats();
    assert_eq!((s.fault_ins, s.prefetches_dropped), (1, 0), "{s:?}");
    assert_eq!(store.reads_entered.load(Ordering::SeqCst), 1);
    drop(a);
    assert_drained(&pool.stats());
}

/// The pool and every handle dropped while a write is blocked in the store and more are
/// queued: once the store unblocks, the spill threads let go and the pool (with its store)
/// is dropped; nothing keeps it alive.
#[test]
fn pool_dropped_with_io_in_flight_is_released() {
    let (pool, store, xs) = frozen_queued_write();
    drop(xs);
    drop(pool);
    store.write_gate.set(true);
    assert!(
        wait_until(Duration::from_secs(10), || Arc::strong_count(&store) == 1),
        "spill threads kept the pool alive after it was dropped"
    );
}

/// When the slot region of a class is exhausted, `pin` of an evicted chunk serves a detached
/// heap copy (no slot, no pin accounting) and an insert falls back to an oversize chunk.
#[test]
fn exhausted_region_serves_detached_copies() {
    let pool = Pool::with_store(
        PoolConfig {
            budget: 16 * SLOT,
            spill_threads: 0,
            region_bytes_per_class: Some(4 * SLOT), // 4 slots of 64 KiB
            ..PoolConfig::default()
        },
        Arc::new(MemoryStore::new(None)),
    )
    .unwrap();
    let mut xs: Vec<_> = (0..4).map(|i| insert(&pool, i, 0)).collect();
    pool.evict_to(3 * SLOT); // x0 out
    assert_eq!(xs[0].state(), ChunkState::Evicted);
    xs.push(insert(&pool, 4, 0)); // takes x0's slot
    let before = pool.stats();
    let v = xs[0].pin().unwrap();
    assert_eq!(&*v, &body(0, MIN_SLOT)[..]);
    assert_eq!(v.as_u64s().len(), MIN_SLOT / 8);
    let v2 = v.clone();
    drop(v);
    assert_eq!(&*v2, &body(0, MIN_SLOT)[..]);
    assert_eq!(
        xs[0].state(),
        ChunkState::Evicted,
        "detached copy, not admitted"
    );
    assert_eq!(pool.stats().pinned_bytes, 0);
    assert_eq!(pool.stats().resident_bytes, before.resident_bytes);
    drop(v2);
    xs.push(insert(&pool, 5, 0));
    assert_eq!(
        xs[5].state(),
        ChunkState::Oversize,
        "no slot left: heap fallback"
    );
    for (i, x) in xs.iter().enumerate() {
        check(x, i as u64);
    }
    drop(xs);
    assert_drained(&pool.stats());
}

/// Budget shrinks and grows, evict_to, pins, prefetches and frees race on three threads;
/// every read is correct and the counters balance afterwards (no underflow panic).
#[test]
fn budget_changes_under_churn_keep_counters_balanced() {
    let pool = Pool::with_store(
        PoolConfig {
            budget: 8 * SLOT,
            spill_threads: 1,
            io_threads: 2,
            spill_queue_depth: 2,
            ..PoolConfig::default()
        },
        Arc::new(MemoryStore::new(None)),
    )
    .unwrap();
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut live: Vec<(ChunkHandle, u64)> = Vec::new();
                let mut held = Vec::new();
                for i in 0..400u64 {
                    let seed = (t << 20) | i;
                    match next() % 8 {
                        0..=2 => {
                            let len = [3000, MIN_SLOT, 150_000][(next() % 3) as usize];
                            let h = ChunkHints::depth((next() % 3) as u8);
                            let h = if next() % 4 == 0 { h.eager() } else { h };
                            live.push((pool.insert(&body(seed, len), h), seed));
                        }
                        3 | 4 if !live.is_empty() => {
                            let (c, s) = &live[(next() as usize) % live.len()];
                            let v = c.pin().unwrap();
                            assert_eq!(&*v, &body(*s, c.len())[..]);
                            if next() % 3 == 0 && held.len() < 2 {
                                held.push(v); // keep a pin, maybe past the handle
                            }
                        }
                        5 if !live.is_empty() => {
                            live[(next() as usize) % live.len()].0.prefetch();
                        }
                        6 if !live.is_empty() => {
                            // No pin past its handle here: that case deadlocks (finding 1).
                            held.clear();
                            let k = (next() as usize) % live.len();
                            drop(live.swap_remove(k));
                        }
                        7 => {
                            held.clear();
                        }
                        _ => {}
                    }
                }
                drop(held);
                for (c, s) in &live {
                    assert_eq!(c.read_to_vec().unwrap(), body(*s, c.len()));
                }
            })
        })
        .collect();
    for i in 0..40u64 {
        pool.set_budget([2, 16, 4, 8][(i % 4) as usize] * SLOT)
            .unwrap();
        if i % 10 == 5 {
            pool.evict_to(2 * SLOT);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for w in workers {
        w.join().unwrap();
    }
    pool.quiesce();
    let s = pool.stats();
    assert_drained(&s);
}

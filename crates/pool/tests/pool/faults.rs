//! Surviving faults: transient write and read errors are retried, persistent write failures
//! disable writes until a probe write succeeds, and a store that panics leaves no chunk
//! `Loading` or `Writing` and no thread waiting forever.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{check, faulty_pool, insert, SLOT};
use spillway_pool::{AlignedBuf, ExtentAddr, ExtentStore, MemoryStore, StoreError};
use spillway_pool::{ChunkState, Pool, PoolConfig};
use spillway_pool::{ReadFault, WriteFault, WRITE_PROBE_INTERVAL, WRITE_RETRY_DELAYS};

#[test]
fn a_transient_write_error_is_retried_and_the_data_written_once() {
    let (pool, io, _dir) = faulty_pool(1);
    let a = insert(&pool, 1, 0);
    io.fail_next_writes(2, WriteFault::Eio);
    let b = insert(&pool, 2, 0); // evicts `a`: two failed attempts, then success
    let s = pool.stats();
    assert_eq!(
        (s.io_errors, s.write_retries, s.writes_disabled),
        (2, 2, 0),
        "{s:?}"
    );
    assert_eq!(a.state(), ChunkState::Evicted);
    // One frame stored, one extent live: the retries wrote nothing twice.
    assert_eq!(s.extent_bytes_written, s.extent_bytes_live, "{s:?}");
    assert_eq!(io.write_calls(), 3);
    check(&a, 1);
    check(&b, 2);
}

#[test]
fn writes_re_enable_after_a_probe_write_succeeds() {
    let (pool, io, _dir) = faulty_pool(1);
    let a = insert(&pool, 1, 0);
    io.fail_next_writes(WRITE_RETRY_DELAYS.len() + 1, WriteFault::Eio);
    let b = insert(&pool, 2, 0); // every attempt fails: writes disabled, `b` over budget
    let s = pool.stats();
    assert_eq!((s.writes_disabled, s.budget_overshoots), (1, 1), "{s:?}");
    assert_eq!(a.state(), ChunkState::UnbackedResident);
    // The store has recovered; once the probe is due, the next insert probes it.
    std::thread::sleep(WRITE_PROBE_INTERVAL + Duration::from_millis(50));
    let c = insert(&pool, 3, 0);
    let s = pool.stats();
    assert_eq!((s.writes_disabled, s.writes_reenabled), (0, 1), "{s:?}");
    assert_eq!(s.resident_bytes, SLOT, "evictions resumed: {s:?}");
    assert_eq!(s.extent_bytes_written, s.extent_bytes_live, "{s:?}");
    for (chunk, seed) in [(&a, 1), (&b, 2), (&c, 3)] {
        check(chunk, seed);
    }
}

#[test]
fn a_read_that_fails_twice_then_succeeds() {
    let (pool, io, _dir) = faulty_pool(4);
    let a = insert(&pool, 7, 0);
    pool.evict_to(0);
    io.fail_next_reads(2, ReadFault::Eio);
    check(&a, 7);
    let s = pool.stats();
    assert_eq!(
        (s.io_errors, s.read_retries, s.fault_ins),
        (2, 2, 1),
        "{s:?}"
    );
    // A flipped byte is re-read too: never returned, never fatal when the re-read is clean.
    pool.evict_to(0);
    io.flip_byte_on_next_read(3);
    check(&a, 7);
    let s = pool.stats();
    assert_eq!((s.checksum_failures, s.read_retries), (1, 3), "{s:?}");
}

/// A memory store whose next `panic_reads` reads and `panic_writes` writes panic.
struct PanickyStore {
    inner: MemoryStore,
    panic_reads: AtomicUsize,
    panic_writes: AtomicUsize,
}

fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl ExtentStore for PanickyStore {
    fn name(&self) -> &'static str {
        "panicky"
    }
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        if take(&self.panic_writes) {
            panic!("injected panic in a store write");
        }
        self.inner.write(frame)
    }
    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        if take(&self.panic_reads) {
            panic!("injected panic in a store read");
        }
        self.inner.read(addr, len, buf)
    }
    fn free(&self, addr: ExtentAddr, len: usize) {
        self.inner.free(addr, len)
    }
    fn live_bytes(&self) -> u64 {
        self.inner.live_bytes()
    }
}

fn panicky_pool(spill_threads: usize) -> (Pool, Arc<PanickyStore>) {
    let store = Arc::new(PanickyStore {
        inner: MemoryStore::new(None),
        panic_reads: AtomicUsize::new(0),
        panic_writes: AtomicUsize::new(0),
    });
    let config = PoolConfig {
        budget: 4 * SLOT,
        spill_threads,
        write_behind: Some(0),
        ..PoolConfig::default()
    };
    (Pool::with_store(config, store.clone()).unwrap(), store)
}

/// Runs `f` on a helper thread; fails the test if it does not return within 10 s.
fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[test]
fn a_store_that_panics_in_read_leaves_no_chunk_loading() {
    let (pool, store) = panicky_pool(0);
    let a = insert(&pool, 1, 0);
    pool.evict_to(0);
    store.panic_reads.store(1, Ordering::SeqCst);
    let first = catch_unwind(AssertUnwindSafe(|| a.pin().map(drop)));
    assert!(first.is_err(), "the panic reaches the caller");
    assert_eq!(a.state(), ChunkState::Evicted, "not left Loading");
    assert_eq!(pool.stats().resident_bytes, 0, "its slot was given back");
    // The next pin (on another thread, in case it hangs) reads the intact extent.
    let a = within_10s("the next pin", move || {
        check(&a, 1);
        a
    });
    drop(a);
}

#[test]
fn a_store_that_panics_on_a_spill_thread_leaves_nothing_in_flight() {
    let (pool, store) = panicky_pool(1);
    // A prefetch whose read panics on an I/O thread.
    let a = insert(&pool, 1, 0);
    pool.evict_to(0);
    store.panic_reads.store(1, Ordering::SeqCst);
    a.prefetch();
    let p = pool.clone();
    within_10s("quiesce after a panicking prefetch", move || p.quiesce());
    assert_eq!(a.state(), ChunkState::Evicted);
    // A write that panics on an I/O thread: the chunk stays resident, nothing in flight.
    store.panic_writes.store(1, Ordering::SeqCst);
    let chunks: Vec<_> = (10..16).map(|i| insert(&pool, i, 0)).collect();
    let p = pool.clone();
    within_10s("quiesce after a panicking write", move || p.quiesce());
    let s = pool.stats();
    assert_eq!(s.spill_panics, 2, "{s:?}");
    assert_eq!(s.spill_in_flight, 0, "{s:?}");
    assert_eq!(s.writes_disabled, 0, "a panic is not an I/O failure: {s:?}");
    let a = within_10s("pins after the panics", move || {
        check(&a, 1);
        for (i, c) in chunks.iter().enumerate() {
            check(c, 10 + i as u64);
        }
        a
    });
    drop(a);
}

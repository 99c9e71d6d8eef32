//! Dropping a pool ends its spill threads and frees their frames, even when a compressor has
//! both of its encoders lent to the I/O lane (a frame queued, none coming back).
//!
//! Its own test binary, with one test: it counts the process's threads (`/proc/self/task`)
//! and every byte allocated (a counting global allocator), which other tests running in
//! the same process would disturb.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spillway_pool::{AlignedBuf, ChunkHints, ExtentAddr, ExtentStore, MemoryStore, StoreError};
use spillway_pool::{Pool, PoolConfig};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Threads of this process whose name starts with `spillway-`.
fn spill_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("spillway-"))
        .count()
}

/// A memory store whose reads wait for the gate to open.
struct ReadGated {
    inner: MemoryStore,
    open: Mutex<bool>,
    cv: Condvar,
    reads_entered: AtomicUsize,
}

impl ExtentStore for ReadGated {
    fn name(&self) -> &'static str {
        "read-gated"
    }
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        self.inner.write(frame)
    }
    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        self.reads_entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        self.inner.read(addr, len, buf)
    }
    fn free(&self, addr: ExtentAddr, len: usize) {
        self.inner.free(addr, len)
    }
    fn live_bytes(&self) -> u64 {
        self.inner.live_bytes()
    }
}

/// Bytes that do not compress.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            eprintln!("gave up waiting for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn dropping_a_pool_with_a_full_queue_ends_its_threads_and_frees_its_frames() {
    const BODY: usize = 1 << 20;
    assert_eq!(spill_threads(), 0);
    let baseline = LIVE.load(Ordering::SeqCst);
    let store = Arc::new(ReadGated {
        inner: MemoryStore::new(None),
        open: Mutex::new(true),
        cv: Condvar::new(),
        reads_entered: AtomicUsize::new(0),
    });
    {
        let pool = Pool::with_store(
            PoolConfig {
                budget: 64 << 20,
                spill_threads: 1,
                io_threads: 1,
                write_behind: Some(64 << 20),
                ..PoolConfig::default()
            },
            store.clone(),
        )
        .unwrap();
        // A thread names itself as it starts.
        assert!(wait_until(
            "the spill threads",
            Duration::from_secs(10),
            || { spill_threads() == 2 }
        ));
        // Park the only I/O thread in a prefetch read (it holds the pool while it reads).
        let parked = pool.insert(&noise(0, BODY), ChunkHints::depth(0));
        pool.evict_to(0);
        *store.open.lock().unwrap() = false;
        parked.prefetch();
        assert!(wait_until(
            "the prefetch read",
            Duration::from_secs(10),
            || { store.reads_entered.load(Ordering::SeqCst) == 1 }
        ));
        // Queue evictions: the compressor encodes two frames for the busy I/O lane, lends
        // both encoders, and waits for one to come back; more writes stay queued.
        let chunks: Vec<_> = (1..8)
            .map(|i| pool.insert(&noise(i, BODY), ChunkHints::depth(0)))
            .collect();
        pool.set_budget(64 << 10).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(chunks);
        drop(parked);
        drop(pool);
        // The I/O thread finishes its read and lets go of the pool: the pool drops now.
        *store.open.lock().unwrap() = true;
        store.cv.notify_all();
    }
    assert!(
        wait_until("the spill threads to exit", Duration::from_secs(10), || {
            spill_threads() == 0
        }),
        "{} spill threads still running after the pool dropped",
        spill_threads()
    );
    drop(store);
    let leaked = LIVE.load(Ordering::SeqCst) - baseline;
    assert!(
        leaked < (BODY / 2) as i64,
        "{leaked} bytes still allocated after the pool and its threads are gone"
    );
}

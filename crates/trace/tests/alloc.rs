//! Chunk operations on variable-length records allocate per chunk, not per record (issue 13,
//! item 2): merging, advancing and extracting `String` records copies their encoded bytes
//! between columnar bodies instead of decoding them into owned rows.
//!
//! A binary of its own, because it installs a global allocator that counts the allocations
//! of the thread that asks ([`counted`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;

use differential_dataflow::trace::chunk::Chunk;
use spillway_trace::PagedChunk;
use timely::progress::Antichain;

/// Counts allocations on threads that set [`COUNT`], and forwards everything to [`System`].
struct Counting;

thread_local! {
    /// This thread's allocations since counting began, or `None` when not counting.
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds as it does for `System`; the counter is a const-initialized
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get().map(|n| n + 1)));
        // SAFETY: the caller upholds `alloc`'s contract (a non-zero-sized layout).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation is).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f`'s result and the allocations this thread made while it ran.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(Some(0)));
    let out = f();
    let n = COUNT.with(|c| c.replace(None)).expect("counting");
    (out, n)
}

type S = PagedChunk<String, String, u64, i64>;

/// `n` records with keys `customer/{start + step * i}` (two records a key) and 100-byte
/// values, in chunks of 500 rows.
fn chunks(n: usize, start: usize, step: usize) -> VecDeque<S> {
    let records: Vec<_> = (0..n)
        .map(|i| {
            let key = format!("customer/{:09}", start + step * (i / 2));
            let val = format!("{:0100}", i % 2);
            ((key, val), (i % 3) as u64, 1i64)
        })
        .collect();
    records
        .chunks(500)
        .map(|c| PagedChunk::from_records(c.to_vec()))
        .collect()
}

#[test]
fn merge_advance_and_extract_of_strings_allocate_per_chunk() {
    const N: usize = 8000;
    let (mut in1, mut in2) = (chunks(N, 0, 2), chunks(N, 1, 2));
    let chunks_in = in1.len() + in2.len();
    let (merged, merge_allocs) = counted(|| {
        let mut out = VecDeque::new();
        while !in1.is_empty() && !in2.is_empty() {
            S::merge(&mut in1, &mut in2, &mut out);
        }
        out.extend(in1.drain(..).chain(in2.drain(..)));
        out
    });
    assert_eq!(merged.iter().map(|c| c.len()).sum::<usize>(), 2 * N);
    let chunks_out = merged.len();
    // A handful per chunk read or written (a body, its columns, two fences), never one per
    // record: a row merge would allocate two `String`s for each of the 16,000 records.
    let per_chunk = 24;
    assert!(
        merge_allocs <= per_chunk * (chunks_in + chunks_out),
        "{merge_allocs} allocations merging {chunks_in} chunks into {chunks_out}"
    );

    let frontier = Antichain::from_elem(1u64);
    let (advanced, advance_allocs) = counted(|| {
        let mut input = merged.clone();
        let mut out = VecDeque::new();
        S::advance(&mut input, frontier.borrow(), true, &mut out);
        out
    });
    assert_eq!(advanced.iter().map(|c| c.len()).sum::<usize>(), 2 * N);
    assert!(
        advance_allocs <= per_chunk * (chunks_out + advanced.len()),
        "{advance_allocs} allocations advancing {chunks_out} chunks"
    );

    let (_, extract_allocs) = counted(|| {
        let mut input = merged.clone();
        let (mut keep, mut ship, mut residual) =
            (VecDeque::new(), VecDeque::new(), Antichain::new());
        while !input.is_empty() {
            S::extract(
                &mut input,
                frontier.borrow(),
                &mut residual,
                &mut keep,
                &mut ship,
            );
        }
        assert_eq!(
            keep.iter().chain(&ship).map(|c| c.len()).sum::<usize>(),
            2 * N
        );
        assert!(!keep.is_empty() && !ship.is_empty());
    });
    println!(
        "allocations: merge {merge_allocs} ({chunks_in} chunks in, {chunks_out} out), \
         advance {advance_allocs}, extract {extract_allocs}, for {} records",
        2 * N
    );
    assert!(
        extract_allocs <= 2 * per_chunk * chunks_out,
        "{extract_allocs} allocations extracting {chunks_out} chunks"
    );
}

//! The pool's integration tests, one binary: the public API of `spillway-pool` end to end.
//!
//! - `behaviour`: states, budget, eviction order, elision, warm reuse, pins, fault injection
//!   through the file store's I/O seam, configuration errors, metrics, concurrent churn.
//! - `interleavings`: pins, frees and prefetches racing queued writes, with frozen spill
//!   threads (its counting allocator is this binary's global allocator; see there).
//! - `faults`: transient faults retried, writes disabled and re-enabled by a probe, stores that
//!   panic (no chunk left `Loading` or `Writing`, no hang).
//! - `vectored`: `Pool::pin_each`.
//! - `extent_files`: the file store's class files stay dense (each slot filled once).
//!
//! Separate binary: `tests/miri.rs`, the small state-machine subset that runs under Miri
//! (`cargo +nightly miri test -p spillway-pool --features heap-regions --test miri`); the rest
//! uses files, mmap and many threads, which Miri cannot run or would take hours on. The
//! extent stores and the codec are tested by unit tests inside the crate (they use private
//! items).

mod behaviour;
mod common;
mod extent_files;
mod faults;
mod interleavings;
mod vectored;

//! Layer 2: the buffer pool.
//!
//! A [`Pool`] holds chunks (immutable byte bodies, typically one sealed columnar run) in
//! size-class slots under a byte budget, and moves cold ones to an extent store.
//!
//! # Chunk states
//! ```text
//!   insert_with ──► UnbackedResident ──evict (queue/inline)──► WriteInFlight ──► Evicted
//!                       │    ▲                                   │  (eager: ──► BackedResident)
//!                       │    └──── write failed (ENOSPC/EIO) ◄───┘
//!                       │
//!   Evicted ──pin/prefetch──► Loading ──► BackedResident ──evict: page release, no I/O──► Evicted
//!   len > 8 MiB ──► Oversize (heap, outside the budget, never evicted)
//! ```
//! A chunk keeps its extent once written: a backed chunk that is evicted again costs no I/O
//! (*cheap eviction*), and a chunk freed before it was ever written costs no compression and
//! no I/O (*die-young elision*: freeing a chunk whose write is still queued cancels it).
//!
//! # Pins
//! [`ChunkHandle::pin`] returns a [`PinGuard`], a zero-copy view of the body in its slot. A
//! pinned chunk is never evicted and its slot never reused, so the view stays valid for the
//! guard's life; the guard owns its pin (it holds the pool, not a borrow of the handle), so
//! cursors can keep it. Dropping the handle while pins exist defers the free to the last
//! unpin. Slot memory is written only by `insert_with`'s fill (before the chunk is published)
//! and by a fault-in (in state `Loading`, before it is published), never while a view exists.
//!
//! # Budget identity
//! `resident_bytes` is the sum of slot sizes of chunks that hold a slot (resident, being
//! written, being loaded). Inserts and fault-ins wait until
//! `resident_bytes + slot ≤ budget + write_behind`, and eviction works towards
//! `resident_bytes ≤ budget`; the difference is the write-behind allowance for evictions whose
//! writes are in flight. Only pins can push residency above that (counted in
//! `budget_overshoots`). Freed slots keep their pages on a warm list capped at
//! `min(budget/8, 1 GiB)` (`warm_bytes`), beyond which they are released. So the pool's memory
//! is at most `budget + write_behind + warm cap + pinned overshoot`, plus oversize chunks.
//!
//! # Eviction
//! Resident chunks sit in second-chance FIFO queues, one per level (the depth hint, clamped
//! to `LEVELS - 1`); enforcement scans the deepest (oldest) level first. A pin marks a chunk
//! referenced; the scan clears the mark and skips the chunk once. Enforcement runs under the
//! state lock, so it is single-flight; the expensive part (compression and I/O) happens on
//! spill threads, or inline (one writer at a time) when the spill queue is full.
//!
//! # Where each transition lives
//! - `admit`: a chunk gets a slot (insert, and the room a fault-in reserves); free slots.
//! - `evict`: `UnbackedResident → WriteInFlight`, `BackedResident → Evicted` (cheap).
//! - `land`: a write runs and lands (`WriteInFlight → Evicted / BackedResident`, or back to
//!   `UnbackedResident` on a store error or a free); the spill lanes' [`crate::spill`] entry.
//! - `fault`: `Evicted → Loading → BackedResident` (pin, prefetch, copy-out).
//! - `reclaim`: a freed chunk gives back its slot and extent.
//! - `vectored`: many pins with planned, coalesced reads.
//! - `pin`, `handle`, `report`: the guards, handles and reports users hold; `state`: the slab
//!   and its lock; `slot_view`: the only code that turns slot memory into slices (`unsafe`).
//!
//! # Lock order
//! `inline writer` → `state` → `spill queue`. Extent-store calls and codec work happen with
//! no pool lock held (extents of reclaimed chunks are collected under `state` and released
//! after it is dropped), except `madvise` of a released slot (under `state`).

mod admit;
mod evict;
mod fault;
mod handle;
mod hints;
mod land;
mod pin;
mod reclaim;
mod report;
mod slot_view;
mod state;
mod vectored;

pub use handle::{ChunkHandle, Pool};
pub use hints::{Backing, ChunkHints, ChunkState, LEVELS};
pub use pin::PinGuard;
pub use vectored::{VectoredReads, COALESCE_CAP};

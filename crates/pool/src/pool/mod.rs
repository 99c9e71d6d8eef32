//! Layer 2: the buffer pool.
//!
//! A [`Pool`] holds chunks (immutable byte bodies, typically one sealed columnar run) in
//! size-class slots under a byte budget, and moves cold ones to an extent store.
//!
//! The contract users see (chunk states, pins, the budget identity, eviction order) is
//! documented on [`Pool`]; this module keeps it, one transition per file.
//!
//! # Where each transition lives
//! - `admit`: a chunk gets a slot (insert, and the room a fault-in reserves); free slots.
//! - `evict`: `UnbackedResident → WriteInFlight`, `BackedResident → Evicted` (cheap).
//! - `land`: a write runs and lands (`WriteInFlight → Evicted / BackedResident`, or back to
//!   `UnbackedResident` on a store error or a free); the spill lanes' [`crate::spill`] entry.
//! - `fault`: `Evicted → Loading → BackedResident` (pin, prefetch, copy-out).
//! - `reclaim`: a freed chunk gives back its slot and extent.
//! - `health`: write and read retries, disabling and probing writes, and the unwind guards
//!   that land a load or write as failed when a store or codec call panics.
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
mod health;
mod hints;
mod land;
mod pin;
mod reclaim;
mod report;
mod slot_view;
mod state;
mod vectored;

pub use handle::{ChunkHandle, Pool};
pub use health::{READ_RETRY_DELAYS, WRITE_PROBE_INTERVAL, WRITE_RETRY_DELAYS};
pub use hints::{Backing, ChunkHints, ChunkState, LEVELS};
pub use pin::PinGuard;
pub use vectored::{VectoredReads, COALESCE_CAP};

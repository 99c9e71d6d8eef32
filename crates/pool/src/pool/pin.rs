//! Pins: [`PinGuard`], a zero-copy view of a chunk body that keeps the chunk in place.
//!
//! Invariant: while a chunk has pins (`Entry::pins > 0`) it is never evicted and its slot
//! (or oversize buffer) is never reused, released or written, so every view handed out here
//! stays valid for its guard's life. A guard owns its pin (it holds the pool's shared state,
//! not a borrow of the handle), so a cursor can keep it; dropping the handle while pins exist
//! defers the free to the last unpin (see `reclaim`).

use std::ops::Deref;
use std::sync::Arc;

use super::slot_view::BodyView;
use super::state::{lock, Body, Shared, State};
use crate::spill::ChunkRef;

/// A pinned, zero-copy view of a chunk body. The chunk stays resident, in the same slot,
/// until the guard drops. Owns its pin: it may outlive the borrow of the handle, and even the
/// handle (the free is then deferred).
pub struct PinGuard {
    shared: Arc<Shared>,
    /// Slab index of the pinned chunk; unused for a detached copy.
    id: u32,
    view: BodyView,
}

impl PinGuard {
    /// A guard over a heap copy of a body (no pin; see [`crate::ChunkHandle::pin`]).
    pub(super) fn detached(shared: &Arc<Shared>, bytes: Vec<u8>) -> PinGuard {
        PinGuard {
            shared: Arc::clone(shared),
            id: u32::MAX,
            view: BodyView::detached(bytes),
        }
    }

    /// The body as `u64` words. Panics if the length is not a multiple of 8. Slots are
    /// page-aligned, so the cast never fails on alignment.
    pub fn as_u64s(&self) -> &[u64] {
        self.view.words()
    }
}

impl Deref for PinGuard {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.view.bytes()
    }
}

impl AsRef<[u8]> for PinGuard {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for PinGuard {
    fn clone(&self) -> Self {
        if !self.view.is_detached() {
            let mut st = lock(&self.shared.state);
            st.entries[self.id as usize].pins += 1;
        }
        PinGuard {
            shared: Arc::clone(&self.shared),
            id: self.id,
            view: self.view.duplicate(),
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if !self.view.is_detached() {
            self.shared.unpin(self.id);
        }
    }
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinGuard")
            .field("len", &self.len())
            .finish()
    }
}

impl Shared {
    /// Pins a chunk that holds its body in memory; `None` if it is evicted or loading.
    pub(super) fn pin_resident(self: &Arc<Self>, st: &mut State, c: ChunkRef) -> Option<PinGuard> {
        let e = &mut st.entries[c.0 as usize];
        let view = match &e.body {
            Body::Resident { slot, .. } | Body::Writing { slot, .. } => {
                BodyView::slot(&self.regions[e.class as usize], *slot, e.len)
            }
            Body::Oversize { buf } => BodyView::oversize(buf),
            _ => return None,
        };
        e.pins += 1;
        e.referenced = true;
        if e.pins == 1 {
            st.pinned_bytes += e.pinned_bytes();
        }
        Some(PinGuard {
            shared: Arc::clone(self),
            id: c.0,
            view,
        })
    }
}

//! Slot memory as slices: the only place the pool turns slot addresses into `&[u8]` or
//! `&mut [u8]`, and so the only `unsafe` in the pool's state machine.
//!
//! The invariant these functions rely on is the state machine's (see the [pool module
//! docs](super)): **a slot has one owner at a time, and its bytes change only while no view
//! of them exists.** Concretely:
//! - a slot is written only by [`fill_slot`], by the one thread that owns it before the chunk
//!   is published: `insert_with`'s fill (the slot was just taken off the free lists) or a
//!   fault-in (the chunk is `Loading`, and pins are only handed out once it is resident);
//! - a slot is read only through [`read_slot`] while the chunk's write is running (the slot is
//!   neither released nor rewritten until the write lands), or through a [`BodyView`] while
//!   the chunk is pinned (a pinned chunk is never evicted, its slot never reused or released).
//!
//! Regions outlive every view: a view is held by a `PinGuard`, which holds the pool's shared
//! state, which owns the regions.

use std::ptr::NonNull;

use crate::aligned::{AlignedBuf, PAGE};
use crate::region::SlotRegion;

/// Runs `fill` on the first `len` bytes of `slot` in `region`. The caller must own the slot
/// exclusively (see the module docs): just taken off the free lists, or its chunk `Loading`.
pub(super) fn fill_slot<R>(
    region: &SlotRegion,
    slot: u32,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> R,
) -> R {
    assert!(len <= region.slot_size(), "body longer than its slot");
    let ptr = region.slot_ptr(slot);
    // SAFETY: the slot is `slot_size >= len` bytes inside the region, which outlives this
    // call (the caller borrows it); the caller owns the slot exclusively (module docs), so no
    // other reference to these bytes exists while `fill` runs.
    let body = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
    fill(body)
}

/// Runs `read` on the first `len` bytes of `slot` in `region`. The caller must hold the
/// chunk in a state where nobody writes the slot and it is not released (its write running),
/// and the bytes must have been filled.
pub(super) fn read_slot<R>(
    region: &SlotRegion,
    slot: u32,
    len: usize,
    read: impl FnOnce(&[u8]) -> R,
) -> R {
    assert!(len <= region.slot_size(), "body longer than its slot");
    let ptr = region.slot_ptr(slot);
    // SAFETY: in bounds as in `fill_slot`; the chunk's write is running, so the slot is
    // neither rewritten nor released until the write lands (module docs), and its first `len`
    // bytes were initialized by the fill or a fault-in.
    let body = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) };
    read(body)
}

/// Where a view's bytes are.
enum Memory {
    /// In a slot or an oversize buffer, kept in place by a pin.
    Pinned(NonNull<u8>),
    /// A heap copy owned by the view.
    Detached(Box<[u8]>),
}

/// A read-only view of a chunk body: in place while a pin protects it, or a detached copy.
pub(super) struct BodyView {
    memory: Memory,
    len: usize,
}

// SAFETY: a BodyView is a shared view of immutable bytes (like `Arc<[u8]>`): pinned memory is
// not written while the pin that keeps the view alive is held, and a detached copy is owned.
unsafe impl Send for BodyView {}
// SAFETY: as above; `&BodyView` only gives `&[u8]`.
unsafe impl Sync for BodyView {}

impl BodyView {
    /// A view of the first `len` bytes of `slot`. The caller holds a pin of the chunk in that
    /// slot for the view's whole life, and the bytes were filled.
    pub(super) fn slot(region: &SlotRegion, slot: u32, len: usize) -> BodyView {
        assert!(len <= region.slot_size(), "body longer than its slot");
        BodyView {
            memory: Memory::Pinned(region.slot_ptr(slot)),
            len,
        }
    }

    /// A view of an oversize chunk's buffer. The caller holds a pin of the chunk (which keeps
    /// the buffer alive, unmoved) for the view's whole life.
    pub(super) fn oversize(buf: &AlignedBuf) -> BodyView {
        let bytes = buf.as_slice();
        BodyView {
            memory: Memory::Pinned(
                NonNull::new(bytes.as_ptr().cast_mut()).unwrap_or(NonNull::dangling()),
            ),
            len: bytes.len(),
        }
    }

    /// A view that owns a copy of the body.
    pub(super) fn detached(bytes: Vec<u8>) -> BodyView {
        let len = bytes.len();
        BodyView {
            memory: Memory::Detached(bytes.into_boxed_slice()),
            len,
        }
    }

    /// Whether the view owns its bytes (no pin behind it).
    pub(super) fn is_detached(&self) -> bool {
        matches!(self.memory, Memory::Detached(_))
    }

    /// A second view of the same bytes. For a pinned view, the caller has taken a second pin.
    pub(super) fn duplicate(&self) -> BodyView {
        match &self.memory {
            Memory::Pinned(ptr) => BodyView {
                memory: Memory::Pinned(*ptr),
                len: self.len,
            },
            Memory::Detached(bytes) => BodyView::detached(bytes.to_vec()),
        }
    }

    /// The body.
    pub(super) fn bytes(&self) -> &[u8] {
        match &self.memory {
            // SAFETY: the pin behind the view keeps these `len` bytes in place and unwritten,
            // and the region (or oversize buffer) alive (module docs); they were initialized
            // by the fill or the fault-in's decode.
            Memory::Pinned(ptr) => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.len) },
            Memory::Detached(bytes) => bytes,
        }
    }

    /// The body as `u64` words. Panics if the length is not a multiple of 8 or the bytes are
    /// not 8-byte aligned (slots and oversize buffers are page-aligned).
    pub(super) fn words(&self) -> &[u64] {
        let bytes = self.bytes();
        assert_eq!(
            bytes.len() % 8,
            0,
            "chunk length {} is not a multiple of 8",
            bytes.len()
        );
        assert_eq!(
            bytes.as_ptr() as usize % 8,
            0,
            "chunk body is not 8-byte aligned"
        );
        // SAFETY: `bytes` is a valid slice for the view's life (see `bytes`); alignment and
        // length were checked, and every bit pattern is a valid u64.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u64>(), bytes.len() / 8) }
    }
}

// Views are handed out as `&[u64]`: slots must be at least 8-byte aligned.
const _: () = assert!(PAGE.is_multiple_of(8));

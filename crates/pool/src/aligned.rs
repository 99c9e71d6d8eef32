//! Page-aligned byte buffers for `O_DIRECT` I/O and codec scratch.
//!
//! `O_DIRECT` needs the buffer address, file offset and length aligned to the device's
//! logical block; page alignment (4 KiB) covers every device we meet. A misaligned
//! destination also costs memcpy 15× on this machine's glibc (see the brief), so codec
//! scratch uses these buffers too.
//!
//! # Invariant
//! `ptr` is either dangling (capacity 0) or the start of an allocation of `cap` bytes with
//! alignment [`PAGE`], made by `std::alloc` with exactly that layout; `len <= cap`, and the
//! first `len` bytes are initialized (the whole allocation is zeroed when made).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of every buffer: one page.
pub const PAGE: usize = 4096;

/// A growable, page-aligned, zero-initialized byte buffer.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out `&[u8]`, like Vec<u8>.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer with no allocation.
    pub const fn new() -> Self {
        AlignedBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    /// An empty buffer able to hold `cap` bytes (rounded up to a page) without reallocating.
    pub fn with_capacity(cap: usize) -> Self {
        let mut buf = Self::new();
        buf.reserve_total(cap);
        buf
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that fit without reallocating.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Forgets the contents; keeps the allocation.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Ensures capacity for `total` bytes, rounded up to a page. Contents are kept.
    pub fn reserve_total(&mut self, total: usize) {
        if total <= self.cap {
            return;
        }
        let new_cap = total.next_multiple_of(PAGE);
        let layout = Layout::from_size_align(new_cap, PAGE).expect("aligned buffer too large");
        // SAFETY: layout has non-zero size (total > cap >= 0, rounded up to PAGE).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(new_ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        if self.cap > 0 {
            // SAFETY: both regions are valid for `len` bytes, distinct allocations, and the old
            // allocation was made with `old_layout` (struct invariant).
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new_ptr.as_ptr(), self.len);
                let old_layout = Layout::from_size_align_unchecked(self.cap, PAGE);
                alloc::dealloc(self.ptr.as_ptr(), old_layout);
            }
        }
        self.ptr = new_ptr;
        self.cap = new_cap;
    }

    /// Sets the length to `len` (growing capacity if needed). Bytes past the old length hold
    /// whatever the buffer held there before (zeros if never written): callers overwrite them.
    pub fn resize(&mut self, len: usize) {
        self.reserve_total(len);
        self.len = len;
    }

    /// Releases the allocation if it is larger than `bound` bytes, so a rare huge use does not
    /// pin memory for the buffer's lifetime.
    pub fn shrink_to_bound(&mut self, bound: usize) {
        if self.cap > bound {
            *self = Self::new();
        }
    }

    /// The held bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialized bytes (invariant); for cap == 0 it is a
        // dangling, aligned pointer and len == 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The held bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The whole allocation (`capacity` bytes), mutably, for writers that fill it and then
    /// call [`AlignedBuf::resize`].
    pub fn spare_mut(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `cap` bytes, all initialized (zeroed at allocation).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: the allocation was made with this layout (invariant).
            unsafe {
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.cap, PAGE),
                )
            }
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_grow_keeps_contents() {
        let mut b = AlignedBuf::with_capacity(10);
        assert_eq!(b.capacity(), PAGE);
        assert_eq!(b.as_slice().as_ptr() as usize % PAGE, 0);
        b.resize(3);
        b.as_mut_slice().copy_from_slice(&[1, 2, 3]);
        b.resize(PAGE * 3 + 1);
        assert_eq!(&b.as_slice()[..3], &[1, 2, 3]);
        assert_eq!(b.as_slice().as_ptr() as usize % PAGE, 0);
        assert_eq!(b.capacity(), PAGE * 4);
        b.shrink_to_bound(PAGE);
        assert_eq!(b.capacity(), 0);
        assert!(b.is_empty());
    }
}

//! Slot regions: one reserved range of address space per slot class.
//!
//! Each class reserves `capacity` slots up front as one anonymous `MAP_NORESERVE` mapping, so
//! reservation costs address space, not memory, and a slot's address is fixed for the
//! region's lifetime: a resident chunk's bytes never move. Classes of 2 MiB and up are
//! 2 MiB-aligned and advised `MADV_HUGEPAGE` (a 2 MiB release then costs 9 µs instead of
//! 144 µs on this machine kind); smaller classes are advised `MADV_NOHUGEPAGE` so a 64 KiB slot
//! never drags in a huge page.
//!
//! With the `heap-regions` feature the mapping is replaced by one page-aligned heap block per
//! slot, allocated on first use and kept until the region drops. Addresses are just as stable,
//! and Miri can check every access the pool makes.
//!
//! # Invariants
//! - `slot_ptr(s)` for `s < capacity` points to `slot_size` bytes that belong to this region
//!   and stay valid (mapped, same address) until the region drops.
//! - The region hands out raw pointers only; who may read or write a slot, and when, is the
//!   pool's state machine's business (see `pool/slot_view.rs`): a slot has one owner at a time.

use std::io;
use std::ptr::NonNull;

use crate::error::ConfigError;
use crate::slot::HUGE_PAGE;

/// A reserved range of slots of one size class.
pub(crate) struct SlotRegion {
    slot_size: usize,
    capacity: u32,
    backing: Backing,
}

enum Backing {
    #[cfg(not(feature = "heap-regions"))]
    Mapped {
        /// Start of the whole mapping (for munmap).
        map: NonNull<u8>,
        map_len: usize,
        /// First slot (aligned within the mapping).
        base: NonNull<u8>,
    },
    #[cfg(feature = "heap-regions")]
    Heap {
        slots: Box<[std::sync::OnceLock<HeapBlock>]>,
    },
}

/// One slot's heap block (feature `heap-regions`): a raw, page-aligned, zeroed allocation.
/// Held as a raw pointer, never as a Rust reference, so writes through `slot_ptr` keep the
/// allocation's own provenance (Miri checks exactly this).
#[cfg(feature = "heap-regions")]
struct HeapBlock {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(feature = "heap-regions")]
impl HeapBlock {
    fn new(size: usize) -> Self {
        let layout =
            std::alloc::Layout::from_size_align(size, crate::aligned::PAGE).expect("slot layout");
        // SAFETY: slot sizes are non-zero.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HeapBlock { ptr, layout }
    }
}

#[cfg(feature = "heap-regions")]
impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: a HeapBlock is an owned allocation reached only through raw pointers whose use the
// pool's state machine coordinates, like the mmap region.
#[cfg(feature = "heap-regions")]
unsafe impl Send for HeapBlock {}
// SAFETY: as above.
#[cfg(feature = "heap-regions")]
unsafe impl Sync for HeapBlock {}

// SAFETY: the region only hands out raw pointers; the mapping (or heap blocks) is owned by
// the region and shared access to it is coordinated by the pool's state machine.
unsafe impl Send for SlotRegion {}
// SAFETY: as above; methods taking `&self` touch no Rust-visible state except through
// `OnceLock` (heap mode), which is Sync.
unsafe impl Sync for SlotRegion {}

impl SlotRegion {
    /// Reserves `capacity` slots of `slot_size` bytes.
    pub(crate) fn reserve(
        slot_size: usize,
        capacity: u32,
        huge_pages: bool,
    ) -> Result<Self, ConfigError> {
        let backing = Self::reserve_backing(slot_size, capacity, huge_pages)?;
        Ok(SlotRegion {
            slot_size,
            capacity,
            backing,
        })
    }

    #[cfg(not(feature = "heap-regions"))]
    fn reserve_backing(
        slot_size: usize,
        capacity: u32,
        huge_pages: bool,
    ) -> Result<Backing, ConfigError> {
        let bytes = slot_size * capacity as usize;
        let huge = huge_pages && slot_size >= HUGE_PAGE;
        let align = if huge {
            HUGE_PAGE
        } else {
            crate::aligned::PAGE
        };
        let map_len = bytes + align;
        let err = |source| ConfigError::RegionReserve {
            class_size: slot_size,
            bytes,
            source,
        };
        // SAFETY: an anonymous private mapping with a null hint has no preconditions; the
        // result is checked for MAP_FAILED.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(err(io::Error::last_os_error()));
        }
        let map =
            NonNull::new(map.cast::<u8>()).ok_or_else(|| err(io::Error::other("null map")))?;
        let offset = (map.as_ptr() as usize).next_multiple_of(align) - map.as_ptr() as usize;
        // SAFETY: offset < align <= map_len - bytes, so base..base+bytes lies in the mapping.
        let base = unsafe { NonNull::new_unchecked(map.as_ptr().add(offset)) };
        let advice = if huge {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: the range lies inside our mapping. Advice is a hint; failure (e.g. THP
        // compiled out) is harmless and ignored.
        unsafe {
            libc::madvise(base.as_ptr().cast(), bytes, advice);
        }
        Ok(Backing::Mapped { map, map_len, base })
    }

    #[cfg(feature = "heap-regions")]
    fn reserve_backing(
        _slot_size: usize,
        capacity: u32,
        _huge_pages: bool,
    ) -> Result<Backing, ConfigError> {
        let _ = (HUGE_PAGE, io::ErrorKind::Other);
        let slots = (0..capacity).map(|_| std::sync::OnceLock::new()).collect();
        Ok(Backing::Heap { slots })
    }

    /// Bytes per slot.
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Slots this region can hold.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The first byte of slot `slot`. Valid for `slot_size` bytes until the region drops.
    pub(crate) fn slot_ptr(&self, slot: u32) -> NonNull<u8> {
        assert!(slot < self.capacity, "slot {slot} out of range");
        match &self.backing {
            #[cfg(not(feature = "heap-regions"))]
            Backing::Mapped { base, .. } => {
                // SAFETY: slot < capacity, so the offset lies within the reserved range.
                unsafe { NonNull::new_unchecked(base.as_ptr().add(slot as usize * self.slot_size)) }
            }
            #[cfg(feature = "heap-regions")]
            Backing::Heap { slots } => {
                slots[slot as usize]
                    .get_or_init(|| HeapBlock::new(self.slot_size))
                    .ptr
            }
        }
    }

    /// Returns the pages of `slot` to the kernel (`MADV_DONTNEED`): the next touch faults in
    /// zeroed pages. The caller must own the slot (no chunk lives in it).
    pub(crate) fn release(&self, slot: u32) {
        #[cfg(not(feature = "heap-regions"))]
        {
            let ptr = self.slot_ptr(slot);
            // SAFETY: the range is one slot inside our mapping, owned by the caller, so no
            // live reference observes the pages being zeroed.
            let rc =
                unsafe { libc::madvise(ptr.as_ptr().cast(), self.slot_size, libc::MADV_DONTNEED) };
            debug_assert_eq!(
                rc,
                0,
                "madvise(DONTNEED) failed: {}",
                io::Error::last_os_error()
            );
        }
        #[cfg(feature = "heap-regions")]
        {
            let _ = slot;
        }
    }

    /// Fills `slot` with `byte` (testing aid: poisoning released slots).
    pub(crate) fn fill(&self, slot: u32, byte: u8) {
        let ptr = self.slot_ptr(slot);
        // SAFETY: the caller owns the slot; the range is slot_size bytes inside the region.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), byte, self.slot_size) }
    }
}

impl Drop for SlotRegion {
    fn drop(&mut self) {
        #[cfg(not(feature = "heap-regions"))]
        {
            let Backing::Mapped { map, map_len, .. } = &self.backing;
            // SAFETY: this is the mapping made in `reserve`, unmapped once; no slot pointer
            // survives the pool (views hold the pool alive through their pin).
            unsafe {
                libc::munmap(map.as_ptr().cast(), *map_len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::slot_size;

    #[test]
    fn slots_are_aligned_and_stable() {
        for class in [0, 5, 7] {
            let size = slot_size(class);
            let r = SlotRegion::reserve(size, 4, true).unwrap();
            let p0 = r.slot_ptr(0).as_ptr() as usize;
            let p3 = r.slot_ptr(3).as_ptr() as usize;
            let align = if size >= HUGE_PAGE { HUGE_PAGE } else { 4096 };
            if cfg!(not(feature = "heap-regions")) {
                assert_eq!(p3 - p0, 3 * size);
                assert_eq!(p0 % align, 0);
            }
            r.fill(1, 0xAB);
            // SAFETY: slot 1 is ours; the region lives for the whole test.
            let b = unsafe { std::slice::from_raw_parts(r.slot_ptr(1).as_ptr(), size) };
            assert!(b.iter().all(|&x| x == 0xAB));
            r.release(1);
            assert_eq!(r.slot_ptr(0).as_ptr() as usize, p0);
        }
    }
}

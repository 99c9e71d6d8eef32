//! Slot size classes: 64 KiB to 8 MiB, doubling.
//!
//! Chunk sizes in arrangements come out bimodal (about 2 and 4 MiB in Materialize's
//! staging); without 4 and 8 MiB classes the large mode would fall back to unpageable heap.
//! A body longer than [`MAX_SLOT`] is *oversize*: it lives on the heap, outside the budget.

/// Smallest slot: 64 KiB.
pub const MIN_SLOT: usize = 64 << 10;
/// Number of slot classes.
pub const SLOT_CLASSES: usize = 8;
/// Largest slot: 8 MiB.
pub const MAX_SLOT: usize = MIN_SLOT << (SLOT_CLASSES - 1);
/// Classes at or above this size are 2 MiB-aligned and use transparent huge pages.
pub const HUGE_PAGE: usize = 2 << 20;

/// Size in bytes of slot class `class`.
pub const fn slot_size(class: usize) -> usize {
    MIN_SLOT << class
}

/// The smallest class that holds `len` bytes, or `None` for oversize (and empty) bodies.
pub fn slot_class_of(len: usize) -> Option<usize> {
    if len == 0 || len > MAX_SLOT {
        return None;
    }
    let class = len.div_ceil(MIN_SLOT).next_power_of_two().trailing_zeros() as usize;
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(slot_class_of(0), None);
        assert_eq!(slot_class_of(1), Some(0));
        assert_eq!(slot_class_of(MIN_SLOT), Some(0));
        assert_eq!(slot_class_of(MIN_SLOT + 1), Some(1));
        assert_eq!(slot_class_of(2 << 20), Some(5));
        assert_eq!(slot_class_of((2 << 20) + 1), Some(6));
        assert_eq!(slot_class_of(MAX_SLOT), Some(7));
        assert_eq!(slot_class_of(MAX_SLOT + 1), None);
        for c in 0..SLOT_CLASSES {
            assert_eq!(slot_class_of(slot_size(c)), Some(c));
        }
    }
}

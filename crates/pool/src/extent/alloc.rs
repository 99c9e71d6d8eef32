//! Extent size classes and the per-class slot allocator shared by the file and swap stores.
//!
//! An extent is stored in a slot of the smallest *extent class* that holds its padded length.
//! Classes are whole pages: 1, 2, 3 and 4 pages, then four steps per doubling
//! (1, 1.25, 1.5 and 1.75 × 2^k pages: 5, 6, 7, 8, 10, 12, 14, 16, 20, ... pages), up to the
//! first class that holds `8 MiB + 4 KiB`. So:
//!
//! - every class size is a multiple of [`EXTENT_ALIGN`], and a padded length of one page more
//!   than a class lands in the next one, so the space a slot wastes beyond the padded length
//!   is under 25 % of the slot (zero for the four one-page-step classes);
//! - stores write exactly the frame's padded length, never the class size: the class only
//!   decides *where* an extent goes (`slot * class size` in the class's file or arena range).
//!
//! [`SlotAllocator`] hands out slot numbers per class: a free list (last freed, first reused,
//! so recently written blocks are overwritten before fresh ones are touched) and a high-water
//! mark. It also records, per slot, a [`SlotBlocks`] saying how much of the slot's byte range
//! the filesystem holds: nothing (a fresh slot, or one whose range was hole-punched), part (a
//! frame was written, the rest of the range never was), or all of it. The file store uses it
//! to fill a slot's range once (so that a class file is one dense run of blocks, which the
//! filesystem keeps, and frees, as a few large extents) and to punch only ranges that hold
//! blocks.
//!
//! # Invariants
//! - A slot number is handed out by [`SlotAllocator::alloc`] at most once until it is given
//!   back with [`SlotAllocator::free`]: live slots of a class are pairwise distinct, so their
//!   byte ranges are disjoint.
//! - A slot's recorded [`SlotBlocks`] changes only through [`SlotAllocator::set_blocks`]: a
//!   fresh slot is `Empty`, and a reused one comes back as it was last recorded.
//! - Slot numbers of a class stay below that class's slot limit (unbounded unless a store
//!   sets one with [`SlotAllocator::set_slot_limit`]).
//!
//! The allocator is not thread-safe by itself; each store wraps it in a `Mutex` and does its
//! I/O outside that lock.

use super::EXTENT_ALIGN;

/// Number of extent classes: 1 to 4 pages, then four per doubling up to 2560 pages (10 MiB),
/// the first class that holds `8 MiB + 4 KiB`.
pub const EXTENT_CLASSES: usize = 41;

/// Largest length (in bytes) any class holds: the size of the last class.
pub const MAX_EXTENT_LEN: usize = extent_class_size(EXTENT_CLASSES as u16 - 1);

/// Size in pages of class `class`, by the rule in the module docs.
const fn class_pages(class: usize) -> usize {
    if class < 4 {
        class + 1
    } else {
        let group = (class - 4) / 4;
        let step = (class - 4) % 4 + 1;
        let base = 4 << group;
        base + step * (base / 4)
    }
}

const CLASS_PAGES: [usize; EXTENT_CLASSES] = {
    let mut pages = [0; EXTENT_CLASSES];
    let mut class = 0;
    while class < EXTENT_CLASSES {
        pages[class] = class_pages(class);
        class += 1;
    }
    pages
};

// The last class must hold a raw 8 MiB body plus one page, and be the first that does.
const _: () = assert!(CLASS_PAGES[EXTENT_CLASSES - 1] * EXTENT_ALIGN >= (8 << 20) + EXTENT_ALIGN);
const _: () = assert!(CLASS_PAGES[EXTENT_CLASSES - 2] * EXTENT_ALIGN < (8 << 20) + EXTENT_ALIGN);

/// Size in bytes of the slots of extent class `class`.
///
/// # Panics
/// If `class >= EXTENT_CLASSES`.
pub const fn extent_class_size(class: u16) -> usize {
    CLASS_PAGES[class as usize] * EXTENT_ALIGN
}

/// The smallest extent class whose slots hold `len` bytes.
///
/// # Panics
/// If `len` is 0 or larger than [`MAX_EXTENT_LEN`]: the codec never produces such frames
/// (it refuses bodies over 8 MiB, and the pool does not store empty chunks).
pub fn extent_class_of(len: usize) -> u16 {
    assert!(
        len > 0 && len <= MAX_EXTENT_LEN,
        "extent length {len} outside 1..={MAX_EXTENT_LEN}"
    );
    let pages = len.div_ceil(EXTENT_ALIGN);
    CLASS_PAGES.partition_point(|&class_pages| class_pages < pages) as u16
}

/// How much of a slot's byte range holds blocks on the device, as the file store records it
/// (the swap store leaves every slot [`SlotBlocks::Empty`]: its arena has no blocks to track).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotBlocks {
    /// No blocks: a slot never handed out before, or one whose range was hole-punched.
    Empty,
    /// Some blocks: a frame was written, the rest of the range may be a hole.
    Partial,
    /// Blocks over the whole range.
    Full,
}

/// A slot handed out by [`SlotAllocator::alloc`], with what its range holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The slot number.
    pub slot: u32,
    /// What the slot's byte range holds now (fresh slots are [`SlotBlocks::Empty`]).
    pub blocks: SlotBlocks,
}

#[derive(Clone, Debug)]
struct ClassSlots {
    /// Free slots below `high_water`; the last one is reused first.
    free: Vec<u32>,
    /// Slots `0..high_water` have been handed out at least once.
    high_water: u32,
    /// What the range of each slot below `high_water` holds.
    blocks: Vec<SlotBlocks>,
    /// Slot numbers never reach this bound.
    slot_limit: u32,
}

/// Per-class slot numbers: a free list plus a high-water mark for each extent class.
#[derive(Clone, Debug)]
pub struct SlotAllocator {
    classes: Vec<ClassSlots>,
}

impl SlotAllocator {
    /// An allocator with no slot limit (slot numbers up to `u32::MAX - 1`).
    pub fn new() -> Self {
        Self::with_slot_limit(u32::MAX)
    }

    /// An allocator whose classes all start with `slot_limit` usable slot numbers.
    pub fn with_slot_limit(slot_limit: u32) -> Self {
        let class = ClassSlots {
            free: Vec::new(),
            high_water: 0,
            blocks: Vec::new(),
            slot_limit,
        };
        SlotAllocator {
            classes: vec![class; EXTENT_CLASSES],
        }
    }

    /// Hands out a free slot of `class`, reusing the most recently freed one, else the next
    /// never-used slot number (whose range holds no blocks). `None` when the class has
    /// reached its slot limit.
    pub fn alloc(&mut self, class: u16) -> Option<Grant> {
        let slots = &mut self.classes[class as usize];
        let slot = match slots.free.pop() {
            Some(slot) => slot,
            None if slots.high_water >= slots.slot_limit => return None,
            None => {
                slots.high_water += 1;
                slots.blocks.push(SlotBlocks::Empty);
                slots.high_water - 1
            }
        };
        Some(Grant {
            slot,
            blocks: slots.blocks[slot as usize],
        })
    }

    /// Gives `slot` back (what its range holds stays recorded).
    pub fn free(&mut self, class: u16, slot: u32) {
        let slots = &mut self.classes[class as usize];
        debug_assert!(
            slot < slots.high_water,
            "freeing slot {slot} of class {class} that was never allocated"
        );
        debug_assert!(
            slots.free.len() < slots.high_water as usize,
            "more free slots than allocated ones in class {class}: double free of slot {slot}"
        );
        slots.free.push(slot);
    }

    #[cfg(test)]
    /// What the range of `slot` (handed out at least once) holds.
    pub fn blocks(&self, class: u16, slot: u32) -> SlotBlocks {
        self.classes[class as usize].blocks[slot as usize]
    }

    /// Records what the range of `slot` holds; the caller owns the slot (handed out to it, or
    /// taken with [`SlotAllocator::take_unpunched_free`]).
    pub fn set_blocks(&mut self, class: u16, slot: u32, blocks: SlotBlocks) {
        self.classes[class as usize].blocks[slot as usize] = blocks;
    }

    #[cfg(test)]
    /// Number of free slots, in all classes, whose ranges hold blocks.
    pub fn unpunched_free_count(&self) -> usize {
        self.classes
            .iter()
            .map(|c| {
                c.free
                    .iter()
                    .filter(|&&slot| c.blocks[slot as usize] != SlotBlocks::Empty)
                    .count()
            })
            .sum()
    }

    /// Removes every free slot whose range holds blocks from the free lists and returns them
    /// as `(class, slot)`. While taken they cannot be allocated, so the caller may punch their
    /// ranges without holding the allocator's lock; it then records each punched one as
    /// [`SlotBlocks::Empty`] and gives every one back with [`SlotAllocator::free`].
    pub fn take_unpunched_free(&mut self) -> Vec<(u16, u32)> {
        let mut taken = Vec::new();
        for (class, slots) in self.classes.iter_mut().enumerate() {
            let blocks = &slots.blocks;
            slots.free.retain(|&slot| {
                if blocks[slot as usize] == SlotBlocks::Empty {
                    true
                } else {
                    taken.push((class as u16, slot));
                    false
                }
            });
        }
        taken
    }

    #[cfg(test)]
    /// Slots of `class` handed out at least once (the class's extent file spans
    /// `high_water * class size` bytes at most).
    pub fn high_water(&self, class: u16) -> u32 {
        self.classes[class as usize].high_water
    }

    #[cfg(test)]
    /// Free slots of `class` (below the high-water mark).
    pub fn free_count(&self, class: u16) -> usize {
        self.classes[class as usize].free.len()
    }

    #[cfg(test)]
    /// Slots of `class` currently handed out.
    pub fn live_count(&self, class: u16) -> usize {
        let slots = &self.classes[class as usize];
        slots.high_water as usize - slots.free.len()
    }

    /// The bound slot numbers of `class` stay under.
    pub fn slot_limit(&self, class: u16) -> u32 {
        self.classes[class as usize].slot_limit
    }

    /// Raises (or sets) the bound slot numbers of `class` stay under. Lowering it below the
    /// high-water mark does not take back slots already handed out.
    pub fn set_slot_limit(&mut self, class: u16, slot_limit: u32) {
        self.classes[class as usize].slot_limit = slot_limit;
    }
}

impl Default for SlotAllocator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    const KIB: usize = 1024;

    #[test]
    fn class_sizes_follow_the_quarter_steps() {
        let expected_kib = [
            4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
        ];
        for (class, kib) in expected_kib.iter().enumerate() {
            assert_eq!(extent_class_size(class as u16), kib * KIB, "class {class}");
        }
        assert_eq!(extent_class_size(39), 8 << 20);
        assert_eq!(MAX_EXTENT_LEN, 10 << 20);
        for class in 0..EXTENT_CLASSES as u16 {
            assert_eq!(extent_class_size(class) % EXTENT_ALIGN, 0);
            if class > 0 {
                assert!(extent_class_size(class) > extent_class_size(class - 1));
            }
        }
    }

    #[test]
    fn class_of_is_the_smallest_class_that_fits() {
        for pages in 1..=MAX_EXTENT_LEN / EXTENT_ALIGN {
            for len in [
                pages * EXTENT_ALIGN - EXTENT_ALIGN + 1,
                pages * EXTENT_ALIGN,
            ] {
                let class = extent_class_of(len);
                assert!(extent_class_size(class) >= len);
                if class > 0 {
                    assert!(extent_class_size(class - 1) < len, "len {len}");
                }
            }
        }
        assert_eq!(extent_class_of(1), 0);
        assert_eq!(extent_class_of(8 << 20), 39);
        assert_eq!(extent_class_of((8 << 20) + EXTENT_ALIGN), 40);
    }

    #[test]
    fn padded_lengths_waste_under_a_quarter_of_the_slot() {
        for pages in 1..=MAX_EXTENT_LEN / EXTENT_ALIGN {
            let len = pages * EXTENT_ALIGN;
            let size = extent_class_size(extent_class_of(len));
            assert!(
                (size - len) * 4 < size,
                "padded len {len} in a {size}-byte slot"
            );
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn zero_length_has_no_class() {
        extent_class_of(0);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn oversize_length_has_no_class() {
        extent_class_of(MAX_EXTENT_LEN + 1);
    }

    fn slot(grant: Option<Grant>) -> Option<u32> {
        grant.map(|g| g.slot)
    }

    #[test]
    fn alloc_reuses_freed_slots_last_in_first_out() {
        let mut slots = SlotAllocator::new();
        assert_eq!(slot(slots.alloc(3)), Some(0));
        assert_eq!(slot(slots.alloc(3)), Some(1));
        assert_eq!(slot(slots.alloc(3)), Some(2));
        assert_eq!(slot(slots.alloc(4)), Some(0), "classes are independent");
        slots.free(3, 0);
        slots.free(3, 2);
        assert_eq!(slots.free_count(3), 2);
        assert_eq!(slots.live_count(3), 1);
        assert_eq!(slot(slots.alloc(3)), Some(2));
        assert_eq!(slot(slots.alloc(3)), Some(0));
        assert_eq!(slot(slots.alloc(3)), Some(3));
        assert_eq!(slots.high_water(3), 4);
    }

    #[test]
    fn a_slot_comes_back_with_the_blocks_recorded_for_it() {
        let mut slots = SlotAllocator::new();
        let fresh = slots.alloc(5).expect("unbounded");
        assert_eq!(
            fresh.blocks,
            SlotBlocks::Empty,
            "a fresh slot holds no blocks"
        );
        for blocks in [SlotBlocks::Partial, SlotBlocks::Full, SlotBlocks::Empty] {
            slots.set_blocks(5, fresh.slot, blocks);
            slots.free(5, fresh.slot);
            assert_eq!(
                slots.alloc(5),
                Some(Grant {
                    slot: fresh.slot,
                    blocks
                })
            );
        }
    }

    #[test]
    fn slot_limit_bounds_fresh_slots_only() {
        let mut slots = SlotAllocator::with_slot_limit(0);
        assert_eq!(slots.alloc(0), None);
        slots.set_slot_limit(0, 2);
        assert_eq!(slot(slots.alloc(0)), Some(0));
        assert_eq!(slot(slots.alloc(0)), Some(1));
        assert_eq!(slots.alloc(0), None);
        slots.free(0, 1);
        assert_eq!(slot(slots.alloc(0)), Some(1));
        assert_eq!(slots.slot_limit(0), 2);
    }

    #[test]
    fn unpunched_slots_are_taken_once_and_come_back_punched() {
        let mut slots = SlotAllocator::new();
        for _ in 0..5 {
            slots.alloc(0);
        }
        slots.alloc(7);
        for (class, slot, blocks) in [
            (0, 1, SlotBlocks::Full),
            (0, 3, SlotBlocks::Partial),
            (0, 4, SlotBlocks::Empty),
            (7, 0, SlotBlocks::Full),
        ] {
            slots.set_blocks(class, slot, blocks);
            slots.free(class, slot);
        }
        assert_eq!(slots.unpunched_free_count(), 3);
        let mut taken = slots.take_unpunched_free();
        taken.sort_unstable();
        assert_eq!(taken, vec![(0, 1), (0, 3), (7, 0)]);
        assert_eq!(slots.free_count(0), 1, "taken slots cannot be allocated");
        for (class, slot) in taken {
            slots.set_blocks(class, slot, SlotBlocks::Empty);
            slots.free(class, slot);
        }
        assert_eq!(slots.unpunched_free_count(), 0);
        assert!(slots.take_unpunched_free().is_empty());
        assert_eq!(slots.free_count(0), 3);
        // A punched slot is reused like any other, and freed again with blocks.
        let reused = slots.alloc(0).expect("free slot");
        assert_eq!(reused.blocks, SlotBlocks::Empty);
        slots.set_blocks(0, reused.slot, SlotBlocks::Full);
        slots.free(0, reused.slot);
        assert_eq!(slots.unpunched_free_count(), 1);
    }

    proptest! {
        /// Against a model: live slots are distinct, below the high-water mark, every freed
        /// slot is reused before the high-water mark grows, and a slot comes back with the
        /// blocks last recorded for it (a fresh one with none).
        #[test]
        fn live_slots_never_collide(ops in prop::collection::vec((0u16..3, any::<bool>(), any::<u8>()), 1..300)) {
            let mut slots = SlotAllocator::new();
            let mut live: Vec<HashSet<u32>> = vec![HashSet::new(); 3];
            let mut recorded: HashMap<(u16, u32), SlotBlocks> = HashMap::new();
            let kinds = [SlotBlocks::Empty, SlotBlocks::Partial, SlotBlocks::Full];
            for (class, is_alloc, pick) in ops {
                let live_class = &mut live[class as usize];
                if is_alloc || live_class.is_empty() {
                    let had_free = slots.free_count(class) > 0;
                    let high_water = slots.high_water(class);
                    let grant = slots.alloc(class).expect("unbounded");
                    let slot = grant.slot;
                    prop_assert!(live_class.insert(slot), "slot {} handed out twice", slot);
                    if had_free {
                        prop_assert_eq!(slots.high_water(class), high_water);
                    } else {
                        prop_assert_eq!(slot, high_water);
                    }
                    let expected = recorded.get(&(class, slot)).copied().unwrap_or(SlotBlocks::Empty);
                    prop_assert_eq!(grant.blocks, expected);
                    let blocks = kinds[pick as usize % 3];
                    slots.set_blocks(class, slot, blocks);
                    recorded.insert((class, slot), blocks);
                } else {
                    let mut sorted: Vec<u32> = live_class.iter().copied().collect();
                    sorted.sort_unstable();
                    let slot = sorted[pick as usize % sorted.len()];
                    live_class.remove(&slot);
                    slots.free(class, slot);
                }
                prop_assert_eq!(slots.live_count(class), live_class.len());
                prop_assert!(live_class.iter().all(|&s| s < slots.high_water(class)));
            }
        }
    }
}

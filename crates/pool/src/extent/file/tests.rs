//! Unit tests of the file store that need its internals (the allocator, hole punching).

use std::io;
use std::sync::Arc;

use super::faulty::{FaultyIo, WriteFault};
use super::*;
use crate::aligned::AlignedBuf;
use crate::extent::alloc::{extent_class_of, extent_class_size, SlotBlocks, EXTENT_CLASSES};
use crate::extent::{ExtentAddr, ExtentStore, StoreError, EXTENT_ALIGN};

fn frame(len: usize, seed: u8) -> AlignedBuf {
    let mut buf = AlignedBuf::with_capacity(len);
    buf.resize(len);
    for (i, byte) in buf.as_mut_slice().iter_mut().enumerate() {
        *byte = seed.wrapping_add((i / 7) as u8);
    }
    buf
}

fn store(options: FileStoreOptions) -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStore::open(dir.path(), options).expect("open store");
    (dir, store)
}

#[test]
fn resume_point_realigns_direct_transfers() {
    assert_eq!(resume_point(false, 0, 100, 8192), 100);
    assert_eq!(resume_point(true, 0, 100, 8192), 0);
    assert_eq!(resume_point(true, 0, 5000, 8192), 4096);
    assert_eq!(resume_point(true, 4096, 4096, 8192), 8192);
    assert_eq!(resume_point(true, 0, 9000, 8192), 8192);
}

#[test]
#[cfg_attr(miri, ignore)]
fn write_read_free_reuse() {
    let (_dir, store) = store(FileStoreOptions::default());
    let a = frame(3 * EXTENT_ALIGN, 1);
    let b = frame(3 * EXTENT_ALIGN, 2);
    let addr_a = store.write(a.as_slice()).unwrap();
    let addr_b = store.write(b.as_slice()).unwrap();
    assert_eq!(addr_a.class, extent_class_of(a.len()));
    assert_ne!(addr_a, addr_b);
    assert_eq!(store.live_bytes(), 6 * EXTENT_ALIGN as u64);
    assert_eq!(
        store.reserved_bytes(),
        2 * extent_class_size(addr_a.class) as u64
    );
    let mut out = AlignedBuf::new();
    store.read(addr_a, a.len(), &mut out).unwrap();
    assert_eq!(out.as_slice(), a.as_slice());
    store.free(addr_a, a.len());
    assert_eq!(store.live_bytes(), 3 * EXTENT_ALIGN as u64);
    let addr_c = store.write(b.as_slice()).unwrap();
    assert_eq!(addr_c, addr_a, "freed slot is reused");
    store.read(addr_b, b.len(), &mut out).unwrap();
    assert_eq!(out.as_slice(), b.as_slice());
    assert_eq!(store.open_class_files(), 1);
}

#[test]
#[cfg_attr(miri, ignore)]
fn misaligned_frames_go_through_a_bounce_buffer() {
    for direct_io in [true, false] {
        let (_dir, store) = store(FileStoreOptions {
            direct_io,
            capacity: None,
        });
        let backing = frame(2 * EXTENT_ALIGN + 1, 9);
        let unaligned = &backing.as_slice()[1..1000];
        let addr = store.write(unaligned).unwrap();
        let mut out = AlignedBuf::new();
        store.read(addr, unaligned.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), unaligned);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn large_classes_are_punched_on_free() {
    let (_dir, store) = store(FileStoreOptions::default());
    let big = frame(PUNCH_ON_FREE_MIN_BYTES, 3);
    let small = frame(EXTENT_ALIGN, 4);
    let big_addr = store.write(big.as_slice()).unwrap();
    let small_addr = store.write(small.as_slice()).unwrap();
    store.free(small_addr, small.len());
    assert_eq!(store.counters().holes_punched, 0);
    store.free(big_addr, big.len());
    assert_eq!(store.counters().holes_punched, 1);
    assert_eq!(store.lock_state().slots.unpunched_free_count(), 1);
    assert_eq!(store.punch_free_holes(), 1);
    assert_eq!(store.counters().holes_punched, 2);
    assert_eq!(
        store.punch_free_holes(),
        0,
        "punched slots are not punched again"
    );
    assert_eq!(store.live_bytes(), 0);
    assert_eq!(store.reserved_bytes(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn failed_punch_keeps_the_slot_unpunched() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultyIo::new());
    let store =
        FileStore::open_with_io(dir.path(), FileStoreOptions::default(), faults.clone()).unwrap();
    let small = frame(EXTENT_ALIGN, 5);
    let addr = store.write(small.as_slice()).unwrap();
    store.free(addr, small.len());
    faults.fail_next_punches(1);
    assert_eq!(store.punch_free_holes(), 0);
    assert_eq!(store.lock_state().slots.unpunched_free_count(), 1);
    assert_eq!(store.punch_free_holes(), 1);
    assert_eq!(faults.punch_calls(), 2);
}

#[test]
#[cfg_attr(miri, ignore)]
fn bad_addresses_are_errors_not_panics() {
    let (_dir, store) = store(FileStoreOptions::default());
    let mut out = AlignedBuf::new();
    for (addr, len) in [
        (
            ExtentAddr {
                class: EXTENT_CLASSES as u16,
                slot: 0,
            },
            EXTENT_ALIGN,
        ),
        (ExtentAddr { class: 0, slot: 0 }, 2 * EXTENT_ALIGN),
        (ExtentAddr { class: 3, slot: 0 }, EXTENT_ALIGN),
    ] {
        let error = store.read(addr, len, &mut out).unwrap_err();
        assert!(matches!(error, StoreError::Io { op: "read", addr: a, .. } if a == addr));
    }
    let addr = store.write(frame(EXTENT_ALIGN, 6).as_slice()).unwrap();
    let beyond = ExtentAddr {
        slot: addr.slot + 10,
        ..addr
    };
    let error = store.read(beyond, EXTENT_ALIGN, &mut out).unwrap_err();
    let StoreError::Io { source, .. } = error else {
        panic!("expected an I/O error")
    };
    assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
#[cfg_attr(miri, ignore)]
fn an_extent_dir_in_memory_is_recognized() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    let Ok(store) = FileStore::open(shm, FileStoreOptions::default()) else {
        eprintln!("skipped: /dev/shm is not writable");
        return;
    };
    // /dev/shm is tmpfs on every Linux this runs on.
    assert_eq!(store.memory_filesystem(), Some("tmpfs"));
}

/// A frame of `pages` pages, and the class it lands in with the slot bytes it leaves over.
fn gap_frame(pages: usize, seed: u8) -> (AlignedBuf, u16, usize) {
    let frame = frame(pages * EXTENT_ALIGN, seed);
    let class = extent_class_of(frame.len());
    let gap = extent_class_size(class) - frame.len();
    (frame, class, gap)
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_slot_is_filled_once_and_its_class_file_stays_dense() {
    let (_dir, store) = store(FileStoreOptions::default());
    // 9 pages land in the 10-page class: one page of each slot is past the frame.
    let (a, class, gap) = gap_frame(9, 1);
    assert!(gap > 0);
    let addrs: Vec<_> = (0..4).map(|_| store.write(a.as_slice()).unwrap()).collect();
    assert_eq!(store.counters().fill_bytes, 4 * gap as u64);
    for addr in &addrs {
        let blocks = store.lock_state().slots.blocks(class, addr.slot);
        assert_eq!(blocks, SlotBlocks::Full);
    }
    let usage = store.disk_usage().unwrap();
    assert_eq!(usage.file_bytes, 4 * extent_class_size(class) as u64);
    assert!(
        usage.allocated_bytes >= usage.file_bytes,
        "no holes between slots: {usage:?}"
    );
    // A reused slot is full already: the frame alone is written.
    store.free(addrs[1], a.len());
    let (b, _, _) = gap_frame(9, 2);
    let reused = store.write(b.as_slice()).unwrap();
    assert_eq!(reused, addrs[1]);
    assert_eq!(store.counters().fill_bytes, 4 * gap as u64);
    let mut out = AlignedBuf::new();
    store.read(reused, b.len(), &mut out).unwrap();
    assert_eq!(out.as_slice(), b.as_slice());
    store.read(addrs[2], a.len(), &mut out).unwrap();
    assert_eq!(
        out.as_slice(),
        a.as_slice(),
        "the fill stays inside its slot"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn exact_frames_and_punched_classes_are_not_filled() {
    let (_dir, store) = store(FileStoreOptions::default());
    let exact = frame(4 * EXTENT_ALIGN, 1);
    let addr = store.write(exact.as_slice()).unwrap();
    assert_eq!(extent_class_size(addr.class), exact.len());
    let blocks = store.lock_state().slots.blocks(addr.class, addr.slot);
    assert_eq!(
        blocks,
        SlotBlocks::Full,
        "a frame the size of its slot fills it"
    );
    // 1 MiB + 1 page: a class that punches on free is left with its gap.
    let (big, class, gap) = gap_frame(PUNCH_ON_FREE_MIN_BYTES / EXTENT_ALIGN + 1, 2);
    assert!(gap > 0 && extent_class_size(class) >= PUNCH_ON_FREE_MIN_BYTES);
    let big_addr = store.write(big.as_slice()).unwrap();
    assert_eq!(store.counters().fill_bytes, 0);
    let blocks = store.lock_state().slots.blocks(class, big_addr.slot);
    assert_eq!(blocks, SlotBlocks::Partial);
    store.free(big_addr, big.len());
    let blocks = store.lock_state().slots.blocks(class, big_addr.slot);
    assert_eq!(blocks, SlotBlocks::Empty, "punched on free");
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_failed_fill_is_retried_at_reuse_and_a_full_device_stops_fills() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultyIo::new());
    let store =
        FileStore::open_with_io(dir.path(), FileStoreOptions::default(), faults.clone()).unwrap();
    let (a, class, gap) = gap_frame(9, 1);

    // A fill that fails with ENOSPC leaves the frame readable
    // and the slot partly filled; filling then stops for good.
    faults.fail_next_fills(1);
    let first = store.write(a.as_slice()).unwrap();
    assert_eq!(faults.fill_calls(), 1);
    assert_eq!(store.counters().fill_bytes, 0);
    assert_eq!(
        store.lock_state().slots.blocks(class, first.slot),
        SlotBlocks::Partial
    );
    let mut out = AlignedBuf::new();
    store.read(first, a.len(), &mut out).unwrap();
    assert_eq!(out.as_slice(), a.as_slice());
    let second = store.write(a.as_slice()).unwrap();
    assert_eq!(faults.fill_calls(), 1, "no fill after a full device");
    assert_eq!(
        store.lock_state().slots.blocks(class, second.slot),
        SlotBlocks::Partial
    );

    // On a store that has not met a full device, a partly filled slot is filled at reuse.
    let fresh = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultyIo::new());
    let store =
        FileStore::open_with_io(fresh.path(), FileStoreOptions::default(), faults.clone()).unwrap();
    faults.fail_next_writes(1, WriteFault::Eio);
    assert!(store.write(a.as_slice()).is_err());
    let reused = store.write(a.as_slice()).unwrap();
    assert_eq!(reused.slot, 0, "the failed write's slot is reused");
    assert_eq!(store.counters().fill_bytes, gap as u64);
    assert_eq!(
        store.lock_state().slots.blocks(class, reused.slot),
        SlotBlocks::Full
    );
}

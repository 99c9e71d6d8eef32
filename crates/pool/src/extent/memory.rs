//! The memory extent store: frames kept in RAM as compressed bytes.
//!
//! The pool's `memory` backend, and the compressed-in-RAM tier: evicting a chunk still frees
//! its slot and costs a compression, but no device I/O, and a read is a copy plus a
//! decompression. Useful where there is no scratch filesystem and no swap, for tests, and to
//! measure the codec alone.
//!
//! # Invariants
//! - Each live extent owns one entry of the slot table; `ExtentAddr::slot` is its index and
//!   `ExtentAddr::class` is [`extent_class_of`] of its length (informational only). Freed
//!   indices are reused, last freed first.
//! - The bytes held by live extents (their frame lengths) never exceed the capacity given to
//!   [`MemoryStore::new`]; a write that would exceed it returns [`StoreError::NoSpace`] and
//!   stores nothing.
//! - The lock guards only the slot table: frames are copied in before the lock is taken and
//!   copied out after it is released (entries are reference-counted for that).

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::alloc::extent_class_of;
use super::{ExtentAddr, ExtentStore, StoreError};
use crate::aligned::AlignedBuf;

#[derive(Debug, Default)]
struct MemorySlots {
    /// Stored frames by slot index; `None` for free indices.
    frames: Vec<Option<Arc<[u8]>>>,
    /// Free indices of `frames`; the last is reused first.
    free: Vec<u32>,
    /// Sum of the lengths of the stored frames.
    stored_bytes: u64,
}

/// The memory extent store: frames kept in RAM as compressed bytes, at most the capacity
/// given to [`MemoryStore::new`] (past it `write` returns [`StoreError::NoSpace`]).
pub struct MemoryStore {
    capacity: Option<u64>,
    slots: Mutex<MemorySlots>,
}

impl MemoryStore {
    /// A store holding at most `capacity` bytes of frames (`None`: unbounded).
    pub fn new(capacity: Option<u64>) -> Self {
        MemoryStore {
            capacity,
            slots: Mutex::new(MemorySlots::default()),
        }
    }

    /// The capacity the store was created with.
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// Number of live extents.
    pub fn live_extents(&self) -> usize {
        let slots = self.lock();
        slots.frames.len() - slots.free.len()
    }

    fn lock(&self) -> MutexGuard<'_, MemorySlots> {
        // Slot table updates cannot panic half-way, so a poisoned lock is still consistent.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ExtentStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    /// # Panics
    /// If `frame` is longer than the largest extent class (10 MiB) (the codec never produces
    /// such frames).
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        let class = extent_class_of(frame.len().max(1));
        let len = frame.len() as u64;
        if self.capacity.is_some_and(|capacity| len > capacity) {
            return Err(StoreError::NoSpace);
        }
        let stored: Arc<[u8]> = Arc::from(frame);
        let mut slots = self.lock();
        if let Some(capacity) = self.capacity {
            if slots.stored_bytes + len > capacity {
                return Err(StoreError::NoSpace);
            }
        }
        slots.stored_bytes += len;
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.frames[slot as usize] = Some(stored);
                slot
            }
            None => {
                let Ok(slot) = u32::try_from(slots.frames.len()) else {
                    slots.stored_bytes -= len;
                    return Err(StoreError::NoSpace);
                };
                slots.frames.push(Some(stored));
                slot
            }
        };
        Ok(ExtentAddr { class, slot })
    }

    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        buf.clear();
        let stored = self
            .lock()
            .frames
            .get(addr.slot as usize)
            .cloned()
            .flatten();
        let Some(stored) = stored else {
            return Err(StoreError::Io {
                op: "read",
                addr,
                source: io::Error::new(io::ErrorKind::NotFound, "no live extent at this address"),
            });
        };
        if len > stored.len() {
            return Err(StoreError::Io {
                op: "read",
                addr,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("extent holds {} bytes, {len} requested", stored.len()),
                ),
            });
        }
        buf.resize(len);
        buf.as_mut_slice().copy_from_slice(&stored[..len]);
        Ok(())
    }

    fn free(&self, addr: ExtentAddr, _len: usize) {
        let mut slots = self.lock();
        let freed = slots
            .frames
            .get_mut(addr.slot as usize)
            .and_then(Option::take);
        let Some(freed) = freed else {
            drop(slots);
            debug_assert!(false, "free of extent {addr}, which is not live");
            return;
        };
        slots.stored_bytes -= freed.len() as u64;
        slots.free.push(addr.slot);
        // Drop the bytes after the lock is released.
        drop(slots);
        drop(freed);
    }

    fn live_bytes(&self) -> u64 {
        self.lock().stored_bytes
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("live_extents", &self.live_extents())
            .field("live_bytes", &self.live_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::EXTENT_ALIGN;
    use super::*;

    fn frame(pages: usize, seed: u8) -> Vec<u8> {
        (0..pages * EXTENT_ALIGN)
            .map(|i| seed.wrapping_add(i as u8))
            .collect()
    }

    #[test]
    fn write_read_free_reuse() {
        let store = MemoryStore::new(None);
        let a = frame(1, 1);
        let b = frame(3, 2);
        let addr_a = store.write(&a).unwrap();
        let addr_b = store.write(&b).unwrap();
        assert_eq!(addr_b.class, extent_class_of(b.len()));
        assert_eq!(store.live_bytes(), 4 * EXTENT_ALIGN as u64);
        let mut out = AlignedBuf::new();
        store.read(addr_b, b.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), &b[..]);
        store.free(addr_a, a.len());
        assert_eq!(store.live_bytes(), 3 * EXTENT_ALIGN as u64);
        assert!(store.read(addr_a, a.len(), &mut out).is_err());
        let addr_c = store.write(&b).unwrap();
        assert_eq!(addr_c.slot, addr_a.slot, "freed index is reused");
        assert_eq!(store.live_extents(), 2);
    }

    #[test]
    fn capacity_refuses_without_losing_anything() {
        let store = MemoryStore::new(Some(3 * EXTENT_ALIGN as u64));
        let a = frame(2, 3);
        let addr_a = store.write(&a).unwrap();
        assert!(matches!(
            store.write(&frame(2, 4)),
            Err(StoreError::NoSpace)
        ));
        assert!(matches!(
            store.write(&frame(4, 4)),
            Err(StoreError::NoSpace)
        ));
        let addr_b = store.write(&frame(1, 5)).unwrap();
        assert_eq!(store.live_bytes(), 3 * EXTENT_ALIGN as u64);
        let mut out = AlignedBuf::new();
        store.read(addr_a, a.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), &a[..]);
        store.free(addr_b, EXTENT_ALIGN);
        store.write(&frame(1, 6)).unwrap();
    }

    #[test]
    fn oversized_read_is_an_error() {
        let store = MemoryStore::new(None);
        let addr = store.write(&frame(1, 7)).unwrap();
        let mut out = AlignedBuf::new();
        let error = store.read(addr, 2 * EXTENT_ALIGN, &mut out).unwrap_err();
        assert!(matches!(error, StoreError::Io { op: "read", addr: a, .. } if a == addr));
    }
}

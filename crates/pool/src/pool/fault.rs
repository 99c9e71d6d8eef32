//! Fault-in: an `Evicted` chunk is read back, verified and decoded into a slot
//! (`Evicted → Loading → BackedResident`), on a pin, a prefetch, or a copy-out read that
//! takes no slot at all.
//!
//! Invariants: a fault-in reserves room in the budget before it takes a slot (a prefetch only
//! takes free room, or room made by cheap evictions: it never causes a write); while a chunk
//! is `Loading` its slot is written only by the loading thread and no pin is handed out; a
//! read that fails (I/O, checksum, corrupt frame) releases the slot and leaves the chunk
//! `Evicted` with its extent intact, so a retry can succeed (and reads are retried before they
//! fail: see `health`); every read is verified against the frame's crc32c before decoding,
//! and an error names the extent; a load that panics lands as failed (never stays `Loading`).

use super::handle::ChunkHandle;
use super::health::LoadGuard;
use super::pin::PinGuard;
use super::slot_view::fill_slot;
use super::state::{enqueue, lock, Body, Shared, State, Stored};
use crate::aligned::AlignedBuf;
use crate::codec::{self, DecodeError};
use crate::error::PoolError;
use crate::extent::{ExtentAddr, StoreError};
use crate::slot::slot_size;
use crate::spill::ChunkRef;
use crate::stats::bump;

impl ChunkHandle {
    /// Pins the body in memory and returns a zero-copy view of it, faulting an evicted chunk
    /// back into a slot first (waiting for room in the budget). Fails, naming the extent, when
    /// the extent cannot be read back intact.
    pub fn pin(&self) -> Result<PinGuard, PoolError> {
        let sh = &self.shared;
        self.pin_with(|extent, dst| {
            let mut buf = sh.take_read_buf();
            let result = sh.read_extent(extent, &mut buf, dst);
            sh.return_read_buf(buf);
            result
        })
    }

    /// [`ChunkHandle::pin`], with `load` filling the body of an evicted chunk from its extent.
    pub(super) fn pin_with(
        &self,
        mut load: impl FnMut(Stored, &mut [u8]) -> Result<(), PoolError>,
    ) -> Result<PinGuard, PoolError> {
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(pin) = sh.pin_resident(&mut st, self.chunk()) {
                return Ok(pin);
            }
            let e = &st.entries[self.id as usize];
            let Body::Evicted { .. } = e.body else {
                // Loading (a prefetch): wait for it to land.
                st = sh.wait(st);
                continue;
            };
            let (size, class) = (e.slot_bytes(), e.class as usize);
            let (s, _) = sh.reserve_room(st, size, true);
            st = s;
            // The state may have changed while we waited for room.
            let Body::Evicted { extent } = st.entries[self.id as usize].body else {
                continue;
            };
            let Some(slot) = sh.take_slot(&mut st, class) else {
                // Address space for this class is exhausted (a budget far beyond the region
                // reservation): serve a copy on the heap instead.
                drop(st);
                let mut bytes = vec![0; self.len];
                load(extent, &mut bytes)?;
                bump(&sh.counters.copy_out_reads, 1);
                return Ok(PinGuard::detached(sh, bytes));
            };
            sh.add_resident(&mut st, size);
            st.entries[self.id as usize].body = Body::Loading { slot, extent };
            drop(st);
            // A panicking load lands as failed: the chunk goes back to `Evicted`.
            let mut guard = LoadGuard {
                shared: sh,
                id: self.id,
                armed: true,
            };
            // The chunk is `Loading` in this slot: this thread is the slot's only owner.
            let result = fill_slot(&sh.regions[class], slot, self.len, |dst| load(extent, dst));
            guard.armed = false;
            st = lock(&sh.state);
            sh.land_load(&mut st, self.id, result.is_ok());
            sh.wake(&st);
            result?;
        }
    }

    /// Copies the body into `out` (replacing its contents) without admitting an evicted chunk
    /// to the pool: the extent is decoded straight into `out`.
    pub fn read_into(&self, out: &mut Vec<u8>) -> Result<(), PoolError> {
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(pin) = sh.pin_resident(&mut st, self.chunk()) {
                drop(st);
                out.clear();
                out.extend_from_slice(&pin);
                return Ok(());
            }
            if let Body::Evicted { extent } = st.entries[self.id as usize].body {
                drop(st);
                out.clear();
                out.resize(self.len, 0);
                let mut buf = sh.take_read_buf();
                let result = sh.read_extent(extent, &mut buf, out);
                sh.return_read_buf(buf);
                bump(&sh.counters.copy_out_reads, 1);
                return result;
            }
            st = sh.wait(st);
        }
    }

    /// The body as a new vector (copy-out; does not admit).
    pub fn read_to_vec(&self) -> Result<Vec<u8>, PoolError> {
        let mut v = Vec::new();
        self.read_into(&mut v)?;
        Ok(v)
    }

    /// Consumes the chunk, returning its body.
    pub fn take(self) -> Result<Vec<u8>, PoolError> {
        self.read_to_vec()
    }

    /// Asks a spill thread to fault an evicted chunk back in ahead of a read. Does nothing for
    /// resident chunks; dropped (and counted) when the queue is full or the budget has no
    /// room without waiting.
    pub fn prefetch(&self) {
        let sh = &self.shared;
        let evicted = matches!(
            lock(&sh.state).entries[self.id as usize].body,
            Body::Evicted { .. }
        );
        if evicted {
            bump(&sh.counters.prefetches, 1);
            if !sh.queue.try_prefetch(self.chunk()) {
                bump(&sh.counters.prefetches_dropped, 1);
            }
        }
    }
}

impl Shared {
    /// Spill-thread entry point for a prefetch: fault the chunk in if there is room without
    /// waiting.
    pub(super) fn run_prefetch(&self, c: ChunkRef, read_buf: &mut AlignedBuf) {
        let st = lock(&self.state);
        let e = &st.entries[c.0 as usize];
        if e.gen != c.1 || e.freed || !matches!(e.body, Body::Evicted { .. }) {
            bump(&self.counters.prefetches_dropped, 1);
            return;
        }
        // Admit only into free room, or room made by releasing backed chunks: a prefetch is
        // a hint, and never worth a compression or a write of another chunk.
        let size = e.slot_bytes();
        let mut st = st;
        let budget = self.budget();
        if st.resident_bytes + size > budget {
            self.evict_pass(&mut st, budget.saturating_sub(size), false);
        }
        let room = st.resident_bytes + size <= budget;
        let e = &st.entries[c.0 as usize];
        let extent = match e.body {
            Body::Evicted { extent } if room && e.gen == c.1 => extent,
            _ => {
                bump(&self.counters.prefetches_dropped, 1);
                return;
            }
        };
        let (len, class) = (e.len, e.class as usize);
        let Some(slot) = self.take_slot(&mut st, class) else {
            bump(&self.counters.prefetches_dropped, 1);
            return;
        };
        self.add_resident(&mut st, size);
        st.entries[c.0 as usize].body = Body::Loading { slot, extent };
        drop(st);
        let mut guard = LoadGuard {
            shared: self,
            id: c.0,
            armed: true,
        };
        // The chunk is `Loading` in this slot: this thread is the slot's only owner.
        let result = fill_slot(&self.regions[class], slot, len, |dst| {
            self.read_extent(extent, read_buf, dst)
        });
        guard.armed = false;
        let mut st = lock(&self.state);
        self.land_load(&mut st, c.0, result.is_ok());
        self.wake(&st);
        self.unlock(st);
    }

    /// Reads `count` extents at consecutive slots from `first` with one store call (see
    /// [`crate::ExtentStore::read_span`]), counting bytes and failures.
    pub(super) fn read_span(
        &self,
        first: ExtentAddr,
        count: u32,
        last_len: usize,
        buf: &mut AlignedBuf,
    ) -> Result<(), PoolError> {
        self.store
            .read_span(first, count, last_len, buf)
            .map_err(|e| {
                bump(&self.counters.io_errors, 1);
                let source = match e {
                    StoreError::Io { source, .. } => source,
                    StoreError::NoSpace => std::io::Error::other("store reported no space on read"),
                };
                PoolError::ReadIo {
                    extent: first,
                    source,
                }
            })?;
        bump(&self.counters.extent_bytes_read, buf.len() as u64);
        Ok(())
    }

    /// Verifies and decodes the stored `frame` of `extent` into `dst`.
    pub(super) fn decode_frame(
        &self,
        extent: Stored,
        frame: &[u8],
        dst: &mut [u8],
    ) -> Result<(), PoolError> {
        codec::decode_into(&extent.meta, frame, dst).map_err(|e| match e {
            DecodeError::Checksum { expected, actual } => {
                bump(&self.counters.checksum_failures, 1);
                PoolError::Checksum {
                    extent: extent.addr,
                    expected,
                    actual,
                }
            }
            DecodeError::Corrupt(reason) => {
                bump(&self.counters.checksum_failures, 1);
                PoolError::Corrupt {
                    extent: extent.addr,
                    reason,
                }
            }
        })
    }

    /// Lands a fault-in: `Loading` becomes `BackedResident` (or back to `Evicted` on failure).
    pub(super) fn land_load(&self, st: &mut State, id: u32, ok: bool) {
        let e = &mut st.entries[id as usize];
        let Body::Loading { slot, extent } = e.body else {
            unreachable!()
        };
        let class = e.class as usize;
        if ok {
            e.body = Body::Resident {
                slot,
                extent: Some(extent),
            };
            e.referenced = true;
            bump(&self.counters.fault_ins, 1);
            bump(&self.levels[e.level()].fault_ins, 1);
            if !e.queued && !e.freed {
                enqueue(st, id);
            }
        } else {
            e.body = Body::Evicted { extent };
            st.resident_bytes -= slot_size(class) as u64;
            self.release_slot(st, class, slot);
        }
        self.try_reclaim(st, id);
    }

    /// A read buffer for a caller thread (outside the budget; see `return_read_buf`).
    pub(super) fn take_read_buf(&self) -> AlignedBuf {
        lock(&self.read_bufs).pop().unwrap_or_default()
    }

    /// Keeps up to 8 read buffers, each shrunk to the codec's scratch bound and cleared.
    pub(super) fn return_read_buf(&self, mut buf: AlignedBuf) {
        buf.shrink_to_bound(codec::SCRATCH_BOUND);
        buf.clear();
        let mut bufs = lock(&self.read_bufs);
        if bufs.len() < 8 {
            bufs.push(buf);
        }
    }
}

//! Writes: a `WriteInFlight` chunk is claimed, encoded, stored, and its write *lands*.
//!
//! ```text
//!   WriteInFlight ──lands, evict requested, unpinned, untouched──► Evicted
//!                 ──lands, eager / pinned / touched meanwhile────► BackedResident
//!                 ──store error (ENOSPC, EIO)────────────────────► UnbackedResident
//!                 ──chunk freed first (cancel)───────────────────► UnbackedResident, reclaimed
//! ```
//!
//! Invariants: while a write runs (`Writing { running: true }`) the chunk's slot is neither
//! released nor rewritten, so the encoder reads it without the lock; a chunk freed before its
//! frame reaches the store is never written (its write is cancelled and counted in
//! `spill_cancelled`); a failed write keeps the data resident (`ENOSPC` pauses writes until
//! an extent is freed; an I/O error is retried with backoff, and disables writes only when
//! every attempt failed, until a probe write succeeds: see `health`); a panic in the codec or
//! the store lands the write as failed, never leaving it in flight. The spill lanes reach these
//! transitions only through [`SpillTarget`].

use super::health::WriteGuard;
use super::slot_view::read_slot;
use super::state::{enqueue, lock, Body, Shared, State, Stored};
use crate::aligned::AlignedBuf;
use crate::codec::{ExtentEncoder, FrameMeta};
use crate::extent::StoreError;
use crate::spill::{ChunkRef, SpillTarget};
use crate::stats::bump;

impl Shared {
    /// Claims a queued eviction write for a compressor (`Writing { running: true }`). False if
    /// the chunk was freed while queued: a newer generation means nothing to do (the free
    /// counted the cancellation).
    pub(super) fn claim_write(&self, c: ChunkRef) -> bool {
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        if e.gen != c.1 {
            return false;
        }
        match &mut e.body {
            Body::Writing { running, .. } if !*running => {
                if e.freed {
                    // Freed while pinned: nothing to write; the last unpin reclaims it.
                    self.cancel_write(&mut st, c.0);
                    self.unlock(st);
                    return false;
                }
                *running = true;
                true
            }
            _ => false,
        }
    }

    /// Claims a resident, unbacked chunk for eager backing. False if it is gone, already
    /// backed or being written, or writes are off.
    pub(super) fn claim_eager(&self, c: ChunkRef) -> bool {
        if !self.writes_open() {
            return false;
        }
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        if e.gen != c.1 || e.freed {
            return false;
        }
        let Body::Resident { slot, extent: None } = e.body else {
            return false;
        };
        e.body = Body::Writing {
            slot,
            evict: false,
            running: true,
        };
        st.writes_in_flight += 1;
        true
    }

    /// Abandons the write of a freed chunk (queued, claimed or already encoded): the chunk
    /// goes back to unbacked-resident and is reclaimed as soon as no pin holds it.
    pub(super) fn cancel_write(&self, st: &mut State, id: u32) {
        let e = &mut st.entries[id as usize];
        let Body::Writing { slot, evict, .. } = e.body else {
            unreachable!("cancel_write on a chunk that is not being written")
        };
        let size = e.slot_bytes();
        e.body = Body::Resident { slot, extent: None };
        st.writes_in_flight -= 1;
        if evict {
            st.pending_evict_bytes -= size;
        }
        bump(&self.counters.spill_cancelled, 1);
        self.try_reclaim(st, id);
        self.wake(st);
    }

    /// Encodes a claimed chunk (`Writing { running: true }`) into `encoder`'s scratch; `None`
    /// (and the write cancelled) if the chunk was freed since it was claimed.
    pub(super) fn encode_chunk(
        &self,
        c: ChunkRef,
        encoder: &mut ExtentEncoder,
    ) -> Option<FrameMeta> {
        let (class, slot, len, compression) = {
            let mut st = lock(&self.state);
            let e = &st.entries[c.0 as usize];
            debug_assert_eq!(e.gen, c.1);
            let Body::Writing {
                slot,
                running: true,
                ..
            } = e.body
            else {
                unreachable!("encode_chunk on a chunk that is not being written")
            };
            if e.freed {
                self.cancel_write(&mut st, c.0);
                self.unlock(st);
                return None;
            }
            (e.class as usize, slot, e.len, e.hints.compression)
        };
        bump(&self.counters.bytes_compressed_in, len as u64);
        // A panicking codec lands the write as failed: the chunk stays resident.
        let mut guard = WriteGuard {
            shared: self,
            chunk: c,
            armed: true,
        };
        // The write is running: the slot is neither released nor rewritten until it lands.
        let encoded = read_slot(&self.regions[class], slot, len, |body| {
            encoder.encode(body, compression)
        });
        guard.armed = false;
        match encoded {
            Ok((meta, _)) => Some(meta),
            Err(e) => unreachable!("slot bodies fit the codec: {e}"),
        }
    }

    /// Writes the frame `encoder` holds for chunk `c` and lands the write. A chunk freed since
    /// it was encoded is not written at all.
    pub(super) fn store_and_land(&self, c: ChunkRef, meta: FrameMeta, encoder: &ExtentEncoder) {
        {
            let mut st = lock(&self.state);
            let e = &mut st.entries[c.0 as usize];
            if e.freed {
                self.cancel_write(&mut st, c.0);
                self.unlock(st);
                return;
            }
        }
        let frame = encoder.frame();
        // A panicking store lands the write as failed: the chunk stays resident.
        let mut guard = WriteGuard {
            shared: self,
            chunk: c,
            armed: true,
        };
        let result = self.write_with_retries(c, frame);
        guard.armed = false;
        let Some(result) = result else {
            return; // freed during a backoff: cancelled
        };
        let result = result.map(|addr| {
            bump(&self.counters.extent_bytes_written, frame.len() as u64);
            Stored { addr, meta }
        });
        self.land_write(c, result, true);
    }

    /// Ends the write of `c` with the store's `result` (see the module docs). An I/O error
    /// that is `persistent` (every retry failed) disables writes; one from a panic does not.
    pub(super) fn land_write(
        &self,
        c: ChunkRef,
        result: Result<Stored, StoreError>,
        persistent: bool,
    ) {
        let mut guard = lock(&self.state);
        guard.writes_in_flight -= 1;
        let st = &mut *guard;
        let e = &mut st.entries[c.0 as usize];
        let Body::Writing { slot, evict, .. } = e.body else {
            unreachable!()
        };
        let size = e.slot_bytes();
        let class = e.class as usize;
        if evict {
            st.pending_evict_bytes -= size;
        }
        match result {
            Ok(extent) => {
                let level = &self.levels[e.level()];
                bump(&level.chunks_written, 1);
                bump(&level.extent_bytes_written, extent.meta.padded_len() as u64);
                if evict && e.pins == 0 && !e.freed && !e.referenced {
                    e.body = Body::Evicted { extent };
                    st.resident_bytes -= size;
                    self.release_slot(st, class, slot);
                    bump(&self.counters.evictions_compress, 1);
                } else {
                    e.body = Body::Resident {
                        slot,
                        extent: Some(extent),
                    };
                    // Kept: pinned, freed (reclaimed below), or touched while being written
                    // (its second chance, used up now).
                    e.referenced = false;
                    if !evict {
                        bump(&self.counters.eager_writes, 1);
                    }
                    if !e.queued && !e.freed {
                        enqueue(st, c.0);
                    }
                }
            }
            Err(err) => {
                e.body = Body::Resident { slot, extent: None };
                match err {
                    StoreError::NoSpace => self.refused_for_space(),
                    StoreError::Io { .. } if persistent => {
                        bump(&self.counters.io_errors, 1);
                        self.disable_writes(&err);
                    }
                    StoreError::Io { .. } => {}
                }
                let e = &mut st.entries[c.0 as usize];
                if !e.queued && !e.freed {
                    enqueue(st, c.0);
                }
            }
        }
        self.try_reclaim(st, c.0);
        self.wake(st);
        self.unlock(guard);
    }
}

impl SpillTarget for Shared {
    fn claim_write(&self, chunk: ChunkRef) -> bool {
        Shared::claim_write(self, chunk)
    }

    fn claim_eager(&self, chunk: ChunkRef) -> bool {
        Shared::claim_eager(self, chunk)
    }

    fn encode(&self, chunk: ChunkRef, encoder: &mut ExtentEncoder) -> Option<FrameMeta> {
        self.encode_chunk(chunk, encoder)
    }

    fn store_and_land(&self, chunk: ChunkRef, meta: FrameMeta, encoder: &ExtentEncoder) {
        Shared::store_and_land(self, chunk, meta, encoder)
    }

    fn prefetch(&self, chunk: ChunkRef, read_buf: &mut AlignedBuf) {
        self.run_prefetch(chunk, read_buf)
    }

    fn job_finished(&self) {
        let st = lock(&self.state);
        self.wake(&st);
    }

    fn job_panicked(&self) {
        bump(&self.counters.spill_panics, 1);
    }
}

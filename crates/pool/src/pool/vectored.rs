//! Vectored pins: many chunks pinned with planned, coalesced reads ([`Pool::pin_each`]).
//!
//! Pinning chunks one by one issues one extent read per evicted chunk, in the order the
//! caller happens to ask. A caller that knows every chunk it needs (a batch of key lookups)
//! hands them over at once, and the pool:
//! 1. **plans**: under the state lock, notes which chunks are evicted and where their
//!    extents are;
//! 2. **coalesces**: sorts those extents by `(class, slot)` and cuts them into *reads*, runs
//!    of consecutive slots of one class whose span stays within [`COALESCE_CAP`] (a single
//!    larger extent still gets a read of its own). Only stores whose consecutive slots are
//!    adjacent ([`crate::ExtentStore::reads_spans`], the file store) coalesce; others read each
//!    extent alone;
//! 3. **issues**: visits the chunks that need no read first, then runs the reads on a reader
//!    thread up to [`READ_AHEAD`] reads ahead of this thread, which decodes each extent of a
//!    finished read into its slot and visits its chunk, so one slow read does not stall the
//!    decoding of the ones before it.
//!
//! # Invariants (tested in `tests/pool/vectored.rs`)
//! - Every chunk passed is visited exactly once, with a pin of its body or an error naming
//!   its extent; never with other bytes (each extent is checksummed as on a single pin).
//! - Every chunk is read from its extent at most once per call, and `reads ≤ faulted`,
//!   unless a read fails: then each of its chunks is re-read alone, with `pin`'s retries
//!   (counted in `read_retries`), before the error is the chunk's.
//! - A chunk is admitted exactly as by [`ChunkHandle::pin`]: room is reserved in the budget
//!   first. The call holds at most one pin of its own at a time (the visitor may keep clones),
//!   and its read buffers, outside the budget, stay under `(READ_AHEAD + 2) × COALESCE_CAP`
//!   (or the length of the one extent larger than that).
//! - Extents are only read while their chunks' handles are borrowed by the call, so no extent
//!   can be freed (and its slot reused) under a read.

use std::sync::mpsc;
use std::sync::Arc;

use super::handle::{ChunkHandle, Pool};
use super::pin::PinGuard;
use super::state::{lock, Body, Stored};
use crate::aligned::AlignedBuf;
use crate::error::PoolError;
use crate::extent::alloc::extent_class_size;
use crate::extent::ExtentAddr;
use crate::stats::bump;

/// Soft cap on the bytes of one coalesced read.
pub const COALESCE_CAP: usize = 1 << 20;

/// Reads the reader thread may run ahead of decoding.
pub(crate) const READ_AHEAD: usize = 2;

/// What one [`Pool::pin_each`] call did (the pool's `vectored_*` counters sum these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectoredReads {
    /// Chunks visited.
    pub chunks: u64,
    /// Chunks that were evicted when the call planned its reads (each read back at most once).
    pub faulted: u64,
    /// Read calls issued to the extent store.
    pub reads: u64,
    /// Extents read by a read that also fetched an earlier extent (saved read calls).
    pub coalesced: u64,
    /// Bytes those reads transferred.
    pub bytes: u64,
}

impl std::ops::AddAssign for VectoredReads {
    fn add_assign(&mut self, o: Self) {
        self.chunks += o.chunks;
        self.faulted += o.faulted;
        self.reads += o.reads;
        self.coalesced += o.coalesced;
        self.bytes += o.bytes;
    }
}

/// An evicted chunk the call will read: its position in the caller's list and its extent.
#[derive(Clone, Copy)]
struct Planned {
    index: usize,
    extent: Stored,
}

/// One store call: extents at consecutive slots of one class, in slot order.
struct Read {
    members: Vec<Planned>,
}

impl Read {
    fn first(&self) -> ExtentAddr {
        self.members[0].extent.addr
    }

    fn last_len(&self) -> usize {
        self.members[self.members.len() - 1]
            .extent
            .meta
            .padded_len()
    }

    /// Bytes the read transfers.
    fn span(&self) -> usize {
        let class = extent_class_size(self.first().class);
        (self.members.len() - 1) * class + self.last_len()
    }
}

/// Cuts the evicted chunks into reads (see the module docs).
fn plan(mut evicted: Vec<Planned>, spans: bool) -> Vec<Read> {
    evicted.sort_by_key(|p| (p.extent.addr.class, p.extent.addr.slot));
    let mut reads: Vec<Read> = Vec::new();
    for p in evicted {
        if let Some(read) = reads.last_mut() {
            let last = read.members[read.members.len() - 1].extent.addr;
            let addr = p.extent.addr;
            let class = extent_class_size(addr.class);
            let adjacent = spans && addr.class == last.class && addr.slot == last.slot + 1;
            if adjacent && read.members.len() * class + p.extent.meta.padded_len() <= COALESCE_CAP {
                read.members.push(p);
                continue;
            }
        }
        reads.push(Read { members: vec![p] });
    }
    reads
}

impl Pool {
    /// Pins every chunk of `handles` once and calls `visit(i, pin)` for each (`i` indexes
    /// `handles`), reading the evicted ones with planned, coalesced reads overlapped with
    /// decoding (see the module docs). Chunks are visited in an order of the pool's choosing:
    /// resident ones first, then evicted ones as their reads land. A chunk whose extent
    /// cannot be read back intact is visited with the error.
    ///
    /// # Panics
    /// If a handle belongs to another pool.
    pub fn pin_each(
        &self,
        handles: &[&ChunkHandle],
        mut visit: impl FnMut(usize, Result<PinGuard, PoolError>),
    ) -> VectoredReads {
        let sh = &self.shared;
        for h in handles {
            assert!(
                Arc::ptr_eq(&h.shared, sh),
                "pin_each: a chunk of another pool"
            );
        }
        let mut evicted = Vec::new();
        let mut resident = Vec::new();
        {
            let st = lock(&sh.state);
            for (index, h) in handles.iter().enumerate() {
                match st.entries[h.id as usize].body {
                    Body::Evicted { extent } => evicted.push(Planned { index, extent }),
                    _ => resident.push(index),
                }
            }
        }
        let mut stats = VectoredReads {
            chunks: handles.len() as u64,
            faulted: evicted.len() as u64,
            ..VectoredReads::default()
        };
        for index in resident {
            visit(index, handles[index].pin());
        }
        let reads = plan(evicted, sh.store.reads_spans());
        for read in &reads {
            stats.reads += 1;
            stats.coalesced += read.members.len() as u64 - 1;
            stats.bytes += read.span() as u64;
        }
        let issue = |read: &Read, buf: &mut AlignedBuf| {
            let count = read.members.len() as u32;
            sh.read_span(read.first(), count, read.last_len(), buf)
        };
        let mut land = |read: &Read, buf: &AlignedBuf, result: Result<(), PoolError>| {
            let class = extent_class_size(read.first().class);
            for (i, p) in read.members.iter().enumerate() {
                let handle = handles[p.index];
                // A failed read or a frame that fails verification is re-read on its own
                // (`pin` retries, see `health`); only then is the error the chunk's.
                let pinned = match &result {
                    Err(_) => {
                        bump(&sh.counters.read_retries, 1);
                        handle.pin()
                    }
                    Ok(()) => {
                        let frame = &buf.as_slice()[i * class..][..p.extent.meta.padded_len()];
                        match handle.pin_with(|extent, dst| sh.decode_frame(extent, frame, dst)) {
                            Err(_) => {
                                bump(&sh.counters.read_retries, 1);
                                handle.pin()
                            }
                            pinned => pinned,
                        }
                    }
                };
                visit(p.index, pinned);
            }
        };
        if reads.len() < 2 {
            let mut buf = sh.take_read_buf();
            for read in &reads {
                let result = issue(read, &mut buf);
                land(read, &buf, result);
            }
            sh.return_read_buf(buf);
        } else {
            std::thread::scope(|scope| {
                let (done, landed) = mpsc::sync_channel(READ_AHEAD);
                let reads = &reads;
                scope.spawn(move || {
                    for read in reads {
                        let mut buf = AlignedBuf::default();
                        let result = issue(read, &mut buf);
                        if done.send((buf, result)).is_err() {
                            break; // the visitor panicked
                        }
                    }
                });
                for read in reads {
                    let (buf, result) = landed.recv().expect("the reader thread ended early");
                    land(read, &buf, result);
                }
            });
        }
        bump(&sh.counters.vectored_calls, 1);
        bump(&sh.counters.vectored_chunks, stats.chunks);
        bump(&sh.counters.vectored_reads, stats.reads);
        bump(&sh.counters.vectored_extents_coalesced, stats.coalesced);
        stats
    }
}

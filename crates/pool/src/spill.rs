//! Spill threads: compression, extent I/O and prefetch off the worker threads.
//!
//! Two lanes, so that compression (CPU) overlaps device I/O (waiting):
//! - **Compressor threads** (`spill_threads`, default 1) take eviction *writes* and, when
//!   idle, *eager backing* of chunks hinted [`crate::Backing::Eager`]. Each encodes the chunk
//!   into one of its two encoders and hands the frame to the I/O lane, then encodes the next
//!   chunk into the other encoder while the first frame is written (double buffering). A
//!   compressor blocks only when both of its encoders are out.
//! - **I/O threads** (`io_threads`, default 2) write handed-over frames and land them, and run
//!   *prefetches*: read an evicted chunk's extent and decode it into a slot. Several I/O
//!   threads give the device more than one request at a time and decode in parallel.
//!
//! The write queue is bounded by `spill_queue_depth` (when full, the evicting thread writes
//! inline instead, so nothing grows without bound); prefetches are bounded likewise and
//! dropped when full; eager backing is served only when no write waits.
//!
//! The lanes know nothing of the pool's internals: they drive a [`SpillTarget`] (implemented
//! by the pool's shared state), held through a weak reference.
//!
//! Jobs name chunks by `(id, generation)`, never by pointer: a job whose chunk was freed
//! while queued finds a newer generation (or a vacant entry) and does nothing, so a chunk
//! freed before its write ran costs no compression and no I/O.
//!
//! # Scratch ownership
//! Each compressor owns its two encoders; an encoder lent to the I/O lane with a frame comes
//! back to its owner through the queue (`Queues::returned`), cleared by its next `encode`.
//! I/O threads own their read buffers. Threads hold only a weak reference to the pool and
//! exit when the pool is gone: the pool's drop sets `shutdown`, which drops every queued job
//! and frame at once and wakes every thread, including a compressor waiting for its encoders
//! to come back.
//!
//! # Panics
//! A job that panics (a store or codec call) is caught on its thread: the pool's unwind
//! guards have already landed its write or load as failed (see `pool::health`), the panic
//! is counted in `spill_panics`, the encoder goes back to its owner, and the thread keeps
//! serving, so nothing waits forever for a job that will never finish.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use crate::aligned::AlignedBuf;
use crate::codec::{ExtentEncoder, FrameMeta};

/// A chunk named by slab index and generation.
pub(crate) type ChunkRef = (u32, u32);

/// What the spill lanes do to chunks, implemented by the pool's shared state. Every method
/// takes the chunk by name and does nothing (returns `false` or `None`) when that chunk is
/// gone or no longer in the state the job expects.
pub(crate) trait SpillTarget: Send + Sync + 'static {
    /// Claims a queued eviction write for this compressor.
    fn claim_write(&self, chunk: ChunkRef) -> bool;
    /// Claims a resident, unbacked chunk for eager backing.
    fn claim_eager(&self, chunk: ChunkRef) -> bool;
    /// Encodes a claimed chunk into `encoder`; `None` if it was freed meanwhile.
    fn encode(&self, chunk: ChunkRef, encoder: &mut ExtentEncoder) -> Option<FrameMeta>;
    /// Writes the frame `encoder` holds for `chunk` and lands the write.
    fn store_and_land(&self, chunk: ChunkRef, meta: FrameMeta, encoder: &ExtentEncoder);
    /// Faults an evicted chunk in if the budget has room without waiting.
    fn prefetch(&self, chunk: ChunkRef, read_buf: &mut AlignedBuf);
    /// A job (of either lane) is done: wakes threads waiting for the pool to quiesce.
    fn job_finished(&self);
    /// A job panicked (and was caught): counts it.
    fn job_panicked(&self);
}

/// Encoders per compressor thread: one being filled while the other's frame is written.
const ENCODERS_PER_COMPRESSOR: usize = 2;

/// Most chunks waiting for eager backing.
pub(crate) const EAGER_QUEUE_BOUND: usize = 4096;

/// A frame encoded by a compressor, waiting for an I/O thread to write it.
pub(crate) struct EncodedWrite {
    pub(crate) chunk: ChunkRef,
    pub(crate) meta: FrameMeta,
    /// Holds the frame; goes back to compressor `owner` once written.
    pub(crate) encoder: ExtentEncoder,
    owner: usize,
}

#[derive(Default)]
struct Queues {
    writes: VecDeque<ChunkRef>,
    eager: VecDeque<ChunkRef>,
    prefetches: VecDeque<ChunkRef>,
    encoded: VecDeque<EncodedWrite>,
    /// Encoders handed back by the I/O lane, per compressor.
    returned: Vec<Vec<ExtentEncoder>>,
    /// Jobs taken by a thread and not finished yet.
    running: usize,
    shutdown: bool,
}

enum CompressJob {
    Write(ChunkRef),
    Eager(ChunkRef),
}

enum IoJob {
    Store(EncodedWrite),
    Prefetch(ChunkRef),
}

/// The job queues shared by the pool and its spill threads.
pub(crate) struct SpillQueue {
    queues: Mutex<Queues>,
    /// Signalled when compressor work arrives.
    compress_ready: Condvar,
    /// Signalled when I/O work arrives.
    io_ready: Condvar,
    depth: usize,
    compressors: usize,
}

impl SpillQueue {
    pub(crate) fn new(compressors: usize, depth: usize) -> Self {
        SpillQueue {
            queues: Mutex::new(Queues {
                returned: (0..compressors).map(|_| Vec::new()).collect(),
                ..Queues::default()
            }),
            compress_ready: Condvar::new(),
            io_ready: Condvar::new(),
            depth,
            compressors,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an eviction write; false when there are no spill threads or the queue is full.
    pub(crate) fn try_write(&self, chunk: ChunkRef) -> bool {
        self.try_push(chunk, |q| &mut q.writes, self.depth, &self.compress_ready)
    }

    /// Queues a prefetch; false when there are no spill threads or the queue is full.
    pub(crate) fn try_prefetch(&self, chunk: ChunkRef) -> bool {
        self.try_push(chunk, |q| &mut q.prefetches, self.depth, &self.io_ready)
    }

    /// Queues eager backing; false when there are no spill threads or [`EAGER_QUEUE_BOUND`]
    /// chunks already wait (the chunk then stays lazy). Served only when no write waits;
    /// entries of chunks freed meanwhile are skipped when served.
    pub(crate) fn try_eager(&self, chunk: ChunkRef) -> bool {
        self.try_push(
            chunk,
            |q| &mut q.eager,
            EAGER_QUEUE_BOUND,
            &self.compress_ready,
        )
    }

    fn try_push(
        &self,
        chunk: ChunkRef,
        which: impl FnOnce(&mut Queues) -> &mut VecDeque<ChunkRef>,
        bound: usize,
        ready: &Condvar,
    ) -> bool {
        if self.compressors == 0 {
            return false;
        }
        let mut q = self.lock();
        let list = which(&mut q);
        if list.len() >= bound {
            return false;
        }
        list.push_back(chunk);
        drop(q);
        ready.notify_one();
        true
    }

    /// Jobs waiting or running, in both lanes.
    pub(crate) fn pending(&self) -> usize {
        let q = self.lock();
        q.writes.len() + q.prefetches.len() + q.eager.len() + q.encoded.len() + q.running
    }

    fn hand_to_io(&self, write: EncodedWrite) {
        self.lock().encoded.push_back(write);
        self.io_ready.notify_one();
    }

    fn finished(&self) {
        self.lock().running -= 1;
    }

    /// Gives a written frame's encoder back to compressor `owner` (dropped after shutdown).
    fn give_back(&self, owner: usize, encoder: ExtentEncoder) {
        let mut q = self.lock();
        if q.shutdown {
            return;
        }
        q.returned[owner].push(encoder);
        drop(q);
        self.compress_ready.notify_all();
    }

    /// The next job for compressor `id`, once it has an encoder in `free` (encoders handed
    /// back are moved there first); `None` at shutdown.
    fn next_compress(&self, id: usize, free: &mut Vec<ExtentEncoder>) -> Option<CompressJob> {
        let mut q = self.lock();
        loop {
            if q.shutdown {
                return None;
            }
            free.append(&mut q.returned[id]);
            // Have an encoder in hand before taking a job, so a job never waits behind this
            // thread's I/O while another compressor could run it.
            let job = if free.is_empty() {
                None
            } else if let Some(c) = q.writes.pop_front() {
                Some(CompressJob::Write(c))
            } else {
                q.eager.pop_front().map(CompressJob::Eager)
            };
            let Some(job) = job else {
                q = self
                    .compress_ready
                    .wait(q)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            };
            q.running += 1;
            return Some(job);
        }
    }

    fn next_io(&self) -> Option<IoJob> {
        let mut q = self.lock();
        loop {
            // At shutdown (the pool is gone) nothing waits for queued frames: they were dropped.
            let job = if q.shutdown {
                return None;
            } else if let Some(w) = q.encoded.pop_front() {
                IoJob::Store(w)
            } else if let Some(c) = q.prefetches.pop_front() {
                IoJob::Prefetch(c)
            } else {
                q = self.io_ready.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            q.running += 1;
            return Some(job);
        }
    }

    /// Tells every thread to exit once its current job is done, and drops every queued job
    /// and frame (nothing is left to land them).
    pub(crate) fn shutdown(&self) {
        let mut q = self.lock();
        q.shutdown = true;
        let dropped = (
            std::mem::take(&mut q.encoded),
            std::mem::take(&mut q.returned),
            std::mem::take(&mut q.writes),
            std::mem::take(&mut q.prefetches),
            std::mem::take(&mut q.eager),
        );
        drop(q);
        drop(dropped);
        self.compress_ready.notify_all();
        self.io_ready.notify_all();
    }
}

/// Starts `compressors` compressor threads and `io` I/O threads serving `queue` for `pool`.
pub(crate) fn start<T: SpillTarget>(
    compressors: usize,
    io: usize,
    queue: &Arc<SpillQueue>,
    pool: Weak<T>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    for i in 0..compressors {
        let (queue, pool) = (Arc::clone(queue), pool.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("spillway-compress-{i}"))
                .spawn(move || run_compressor(i, &queue, &pool))?,
        );
    }
    for i in 0..io {
        let (queue, pool) = (Arc::clone(queue), pool.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("spillway-io-{i}"))
                .spawn(move || run_io(&queue, &pool))?,
        );
    }
    Ok(threads)
}

fn run_compressor<T: SpillTarget>(id: usize, queue: &SpillQueue, pool: &Weak<T>) {
    let mut free: Vec<ExtentEncoder> = (0..ENCODERS_PER_COMPRESSOR)
        .map(|_| ExtentEncoder::new())
        .collect();
    while let Some(job) = queue.next_compress(id, &mut free) {
        let Some(shared) = pool.upgrade() else { return };
        let mut encoder = free.pop().expect("an encoder is free");
        let encoded = catch_unwind(AssertUnwindSafe(|| {
            let chunk = match job {
                CompressJob::Write(c) => shared.claim_write(c).then_some(c),
                CompressJob::Eager(c) => shared.claim_eager(c).then_some(c),
            };
            chunk.and_then(|c| Some((c, shared.encode(c, &mut encoder)?)))
        }));
        match encoded {
            Ok(Some((chunk, meta))) => queue.hand_to_io(EncodedWrite {
                chunk,
                meta,
                encoder,
                owner: id,
            }),
            Ok(None) => free.push(encoder),
            Err(_) => {
                shared.job_panicked();
                free.push(encoder);
            }
        }
        queue.finished();
        shared.job_finished();
    }
}

fn run_io<T: SpillTarget>(queue: &SpillQueue, pool: &Weak<T>) {
    let mut read_buf = AlignedBuf::new();
    while let Some(job) = queue.next_io() {
        let Some(shared) = pool.upgrade() else { return };
        match job {
            IoJob::Store(w) => {
                let stored = catch_unwind(AssertUnwindSafe(|| {
                    shared.store_and_land(w.chunk, w.meta, &w.encoder)
                }));
                if stored.is_err() {
                    shared.job_panicked();
                }
                queue.give_back(w.owner, w.encoder);
            }
            IoJob::Prefetch(c) => {
                let fetched = catch_unwind(AssertUnwindSafe(|| shared.prefetch(c, &mut read_buf)));
                if fetched.is_err() {
                    shared.job_panicked();
                    read_buf = AlignedBuf::new();
                }
            }
        }
        read_buf.shrink_to_bound(crate::codec::SCRATCH_BOUND);
        queue.finished();
        shared.job_finished();
    }
}

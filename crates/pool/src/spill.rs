//! Spill threads: compression, extent writes and prefetch reads off the worker threads.
//!
//! The queue holds three kinds of work, served in this order:
//! 1. **writes** of chunks chosen for eviction (bounded by `spill_queue_depth`; when full,
//!    the evicting thread writes inline instead, so the queue never grows without bound),
//! 2. **prefetches** of evicted chunks a reader will want soon (bounded likewise; dropped
//!    when full),
//! 3. **eager backing** of chunks hinted [`crate::Backing::Eager`], done only when nothing
//!    else waits: the chunk stays resident and its later eviction is a page release.
//!
//! Jobs name chunks by `(id, generation)`, never by pointer: a job whose chunk was freed
//! while queued finds a newer generation (or a vacant entry) and does nothing, so a chunk
//! freed before its write ran costs no compression and no I/O.
//!
//! Each thread owns its codec scratch and read buffer. Threads hold only a weak reference to
//! the pool and exit when the pool is gone (`shutdown` is set by the pool's drop).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

use crate::aligned::AlignedBuf;
use crate::codec::ExtentEncoder;
use crate::pool::Shared;

/// A chunk named by slab index and generation.
pub(crate) type ChunkRef = (u32, u32);

#[derive(Debug)]
pub(crate) enum Job {
    Write(ChunkRef),
    Prefetch(ChunkRef),
    Eager(ChunkRef),
}

#[derive(Default)]
struct Queues {
    writes: VecDeque<ChunkRef>,
    prefetches: VecDeque<ChunkRef>,
    eager: VecDeque<ChunkRef>,
    /// Jobs taken by a thread and not finished yet.
    running: usize,
    shutdown: bool,
}

/// The job queue shared by the pool and its spill threads.
pub(crate) struct SpillQueue {
    queues: Mutex<Queues>,
    ready: Condvar,
    depth: usize,
    threads: usize,
}

impl SpillQueue {
    pub(crate) fn new(threads: usize, depth: usize) -> Self {
        SpillQueue { queues: Mutex::default(), ready: Condvar::new(), depth, threads }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an eviction write; false when there are no threads or the queue is full.
    pub(crate) fn try_write(&self, chunk: ChunkRef) -> bool {
        self.try_push(chunk, |q| &mut q.writes, self.depth)
    }

    /// Queues a prefetch; false when there are no threads or the queue is full.
    pub(crate) fn try_prefetch(&self, chunk: ChunkRef) -> bool {
        self.try_push(chunk, |q| &mut q.prefetches, self.depth)
    }

    /// Queues eager backing; false when there are no threads. Unbounded in count (one entry
    /// per live eager chunk at most), served only when idle.
    pub(crate) fn try_eager(&self, chunk: ChunkRef) -> bool {
        self.try_push(chunk, |q| &mut q.eager, usize::MAX)
    }

    fn try_push(
        &self,
        chunk: ChunkRef,
        which: impl FnOnce(&mut Queues) -> &mut VecDeque<ChunkRef>,
        bound: usize,
    ) -> bool {
        if self.threads == 0 {
            return false;
        }
        let mut q = self.lock();
        let list = which(&mut q);
        if list.len() >= bound {
            return false;
        }
        list.push_back(chunk);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// Jobs waiting or running.
    pub(crate) fn pending(&self) -> usize {
        let q = self.lock();
        q.writes.len() + q.prefetches.len() + q.eager.len() + q.running
    }

    fn finished(&self) {
        self.lock().running -= 1;
    }

    /// Blocks until a job is available or shutdown; `None` means exit.
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if q.shutdown {
                return None;
            }
            let job = if let Some(c) = q.writes.pop_front() {
                Job::Write(c)
            } else if let Some(c) = q.prefetches.pop_front() {
                Job::Prefetch(c)
            } else if let Some(c) = q.eager.pop_front() {
                Job::Eager(c)
            } else {
                q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            q.running += 1;
            return Some(job);
        }
    }

    /// Tells every thread to exit once its current job is done.
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.ready.notify_all();
    }
}

/// What a writer owns: its codec scratch and its read buffer.
#[derive(Default)]
pub(crate) struct Worker {
    pub(crate) encoder: ExtentEncoder,
    pub(crate) read_buf: AlignedBuf,
}

/// Starts `n` spill threads serving `queue` for `pool`.
pub(crate) fn start(
    n: usize,
    queue: &Arc<SpillQueue>,
    pool: Weak<Shared>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let queue = Arc::clone(queue);
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("spillway-spill-{i}"))
                .spawn(move || run(&queue, &pool))
        })
        .collect()
}

fn run(queue: &SpillQueue, pool: &Weak<Shared>) {
    let mut worker = Worker::default();
    while let Some(job) = queue.next() {
        let Some(shared) = pool.upgrade() else { return };
        match job {
            Job::Write(c) => shared.run_write(c, &mut worker),
            Job::Prefetch(c) => shared.run_prefetch(c, &mut worker),
            Job::Eager(c) => shared.run_eager(c, &mut worker),
        }
        queue.finished();
        shared.job_finished();
        worker.read_buf.shrink_to_bound(crate::codec::SCRATCH_BOUND);
    }
}

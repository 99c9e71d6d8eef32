//! Surviving extent-store faults: write retries with backoff, disabling writes only on a
//! persistent failure and re-enabling them after a probe write, read retries, and unwind
//! guards that keep the state machine whole when a store or codec call panics.
//!
//! Invariants:
//! - A transient fault costs a retry, never data: a write that fails is retried
//!   [`WRITE_RETRY_DELAYS`]`.len()` times with those delays before it lands as failed (the
//!   chunk stays resident, unbacked); only such a *persistent* failure (every attempt of one
//!   write failed, about a quarter of a second of errors) disables writes, loudly.
//! - Disabled writes are probed: once [`WRITE_PROBE_INTERVAL`] has passed, the next thread
//!   that would otherwise go over budget writes (and frees) a one-page probe frame; if the
//!   store takes it, writes are re-enabled. One probe at a time.
//! - A read that fails (I/O error, checksum mismatch, corrupt frame) is re-read
//!   [`READ_RETRY_DELAYS`]`.len()` times before the error surfaces; a re-read is verified like
//!   the first, so a retry never returns other bytes.
//! - A full store is said, not shouted: the first refused write warns, and further warnings
//!   come at most every [`FULL_WARNING_INTERVAL`] while writes keep being refused (a store at
//!   its capacity frees and refills many times a second; every refused write is counted in
//!   `write_nospace`).
//! - A chunk is never left `Loading` or `Writing` by a panic: [`LoadGuard`] and
//!   [`WriteGuard`] land the load or write as failed while unwinding, so waiters wake, the
//!   in-flight accounting is undone, and the chunk keeps its intact copy (its extent, or its
//!   slot).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::state::{lock, Shared, Stored};
use crate::aligned::AlignedBuf;
use crate::extent::{StoreError, EXTENT_ALIGN};
use crate::spill::ChunkRef;
use crate::stats::bump;

/// Delays before each retry of a write that failed with an I/O error: three retries, four
/// attempts over about 222 ms. A write whose every attempt fails disables writes.
pub const WRITE_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(2),
    Duration::from_millis(20),
    Duration::from_millis(200),
];

/// Delays before each re-read of an extent whose read failed (I/O error, checksum mismatch,
/// corrupt frame): three retries, four attempts over about 61 ms, before the error surfaces
/// (a device failing 3 % of calls then fails a read about once in a million).
pub const READ_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(50),
];

/// Time between probe writes while writes are disabled.
pub const WRITE_PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Least time between two warnings that the extent store is full.
pub const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

impl Shared {
    /// Counts a write the store refused for want of space (the chunk stays resident), and
    /// warns if none was said in the last [`FULL_WARNING_INTERVAL`].
    pub(super) fn refused_for_space(&self) {
        bump(&self.counters.write_nospace, 1);
        self.store_full.store(true, Ordering::Relaxed);
        let mut last = lock(&self.full_warned_at);
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= FULL_WARNING_INTERVAL) {
            *last = Some(now);
            let refused = self.counters.write_nospace.load(Ordering::Relaxed);
            tracing::warn!(
                "extent store full: keeping chunks resident ({refused} writes refused so far; \
                 said at most every {} s)",
                FULL_WARNING_INTERVAL.as_secs()
            );
        }
    }

    /// Writes `frame` to the store, retrying I/O errors after [`WRITE_RETRY_DELAYS`]. Returns
    /// `None` (and lands nothing) if chunk `c` was freed during a backoff: the write is then
    /// cancelled.
    pub(super) fn write_with_retries(
        &self,
        c: ChunkRef,
        frame: &[u8],
    ) -> Option<Result<crate::extent::ExtentAddr, StoreError>> {
        let mut attempt = 0;
        loop {
            match self.store.write(frame) {
                Err(err @ StoreError::Io { .. }) if attempt < WRITE_RETRY_DELAYS.len() => {
                    let delay = WRITE_RETRY_DELAYS[attempt];
                    attempt += 1;
                    bump(&self.counters.io_errors, 1);
                    bump(&self.counters.write_retries, 1);
                    tracing::warn!(attempt, ?delay, "extent write failed, retrying: {err}");
                    std::thread::sleep(delay);
                    let mut st = lock(&self.state);
                    if st.entries[c.0 as usize].freed {
                        self.cancel_write(&mut st, c.0);
                        self.unlock(st);
                        return None;
                    }
                }
                other => return Some(other),
            }
        }
    }

    /// A write failed on every attempt: disables writes until a probe write succeeds.
    pub(super) fn disable_writes(&self, err: &StoreError) {
        *lock(&self.next_probe) = Instant::now() + WRITE_PROBE_INTERVAL;
        if !self.writes_disabled.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "extent writes failed {} times in a row ({err}): writes disabled, chunks stay \
                 resident (memory may exceed the budget); probing the store every {:?}",
                WRITE_RETRY_DELAYS.len() + 1,
                WRITE_PROBE_INTERVAL
            );
        }
    }

    /// Whether writes are disabled and a probe write is due.
    pub(super) fn probe_due(&self) -> bool {
        self.writes_disabled.load(Ordering::Relaxed) && Instant::now() >= *lock(&self.next_probe)
    }

    /// Writes and frees a one-page probe frame if writes are disabled and a probe is due (one
    /// probe at a time); re-enables writes when the store takes it. Returns whether writes
    /// are enabled afterwards. Call with no pool lock held.
    pub(super) fn probe_writes(&self) -> bool {
        if !self.probe_due() {
            return !self.writes_disabled.load(Ordering::Relaxed);
        }
        if self.probing.swap(true, Ordering::Acquire) {
            return false;
        }
        let mut page = AlignedBuf::with_capacity(EXTENT_ALIGN);
        page.resize(EXTENT_ALIGN);
        let result = self.store.write(page.as_slice());
        let reopened = match result {
            Ok(addr) => {
                self.store.free(addr, EXTENT_ALIGN);
                true
            }
            // The device answers, it is only full: writes resume, and ENOSPC degrades as usual.
            Err(StoreError::NoSpace) => {
                self.store_full.store(true, Ordering::Relaxed);
                true
            }
            Err(err) => {
                bump(&self.counters.io_errors, 1);
                tracing::warn!("probe write failed, writes stay disabled: {err}");
                *lock(&self.next_probe) = Instant::now() + WRITE_PROBE_INTERVAL;
                false
            }
        };
        if reopened {
            self.writes_disabled.store(false, Ordering::Relaxed);
            bump(&self.counters.writes_reenabled, 1);
            tracing::warn!("probe write succeeded: extent writes re-enabled");
        }
        self.probing.store(false, Ordering::Release);
        reopened
    }

    /// Reads and decodes `extent` into `dst`, re-reading it after [`READ_RETRY_DELAYS`] when
    /// the read or its verification fails. Every attempt is verified against the checksum.
    pub(super) fn read_extent(
        &self,
        extent: Stored,
        buf: &mut AlignedBuf,
        dst: &mut [u8],
    ) -> Result<(), crate::error::PoolError> {
        let mut attempt = 0;
        loop {
            let result = self
                .read_span(extent.addr, 1, extent.meta.padded_len(), buf)
                .and_then(|()| self.decode_frame(extent, buf.as_slice(), dst));
            match result {
                Err(err) if attempt < READ_RETRY_DELAYS.len() => {
                    let delay = READ_RETRY_DELAYS[attempt];
                    attempt += 1;
                    bump(&self.counters.read_retries, 1);
                    tracing::warn!(attempt, ?delay, "extent read failed, re-reading: {err}");
                    std::thread::sleep(delay);
                }
                Err(err) => {
                    tracing::error!(
                        "extent read failed {} times, giving up: {err}",
                        READ_RETRY_DELAYS.len() + 1
                    );
                    return Err(err);
                }
                Ok(()) => return Ok(()),
            }
        }
    }
}

/// Lands a fault-in as failed (the chunk back to `Evicted`, its slot released) if it is
/// dropped armed: while unwinding from a panic in a store read or a decode.
pub(super) struct LoadGuard<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u32,
    pub(super) armed: bool,
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.shared.state);
            tracing::error!("a fault-in panicked; the chunk stays evicted, its extent intact");
            self.shared.land_load(&mut st, self.id, false);
            self.shared.wake(&st);
            self.shared.unlock(st);
        }
    }
}

/// Lands a running write as failed (the chunk back to unbacked-resident, in-flight counts
/// undone) if it is dropped armed: while unwinding from a panic in the codec or the store.
pub(super) struct WriteGuard<'a> {
    pub(super) shared: &'a Shared,
    pub(super) chunk: ChunkRef,
    pub(super) armed: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::error!("an extent write panicked; the chunk stays resident");
            let err = StoreError::Io {
                op: "write",
                addr: crate::extent::ExtentAddr { class: 0, slot: 0 },
                source: std::io::Error::other("the write panicked"),
            };
            self.shared.land_write(self.chunk, Err(err), false);
        }
    }
}

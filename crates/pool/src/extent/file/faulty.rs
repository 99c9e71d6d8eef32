//! Fault injection for the file store (feature `fault-injection`, and this crate's own
//! tests): [`FaultyIo`], an [`ExtentIo`] seam that makes the real system calls except where a
//! programmed plan says to fail.
//!
//! Invariant: with an empty plan, `FaultyIo` behaves exactly like the system calls; each
//! planned fault is injected once, in order, by whichever thread calls next, and counted.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::os::{ExtentIo, SystemIo};
use crate::extent::EXTENT_ALIGN;

/// A write fault [`FaultyIo`] can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// Writes only a prefix of the buffer (about half, page-aligned when the buffer spans two
    /// pages or more) and reports that many bytes.
    ShortWrite,
    /// Fails with `ENOSPC` without writing.
    NoSpace,
    /// Fails with `EIO` without writing.
    Eio,
}

/// A read fault [`FaultyIo`] can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFault {
    /// Fails with `EIO` without reading.
    Eio,
}

#[derive(Debug, Default)]
struct FaultPlan {
    writes: VecDeque<WriteFault>,
    reads: VecDeque<ReadFault>,
    flip_on_next_read: Option<usize>,
    punch_failures: usize,
}

/// Test seam: the real system calls, with a programmable plan of faults.
///
/// Each `write_at`/`read_at`/`punch_hole` call consumes the next planned fault of its kind, if
/// any, and otherwise makes the real system call. Hand it to [`crate::FileStore::open_with_io`] as
/// an `Arc` and keep a clone to program it:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use spillway_pool::{FaultyIo, FileStore, FileStoreOptions, WriteFault};
/// let faults = Arc::new(FaultyIo::new());
/// let store = FileStore::open_with_io("/tmp".as_ref(), FileStoreOptions::default(), faults.clone())?;
/// faults.fail_next_writes(1, WriteFault::Eio);
/// # Ok::<(), spillway_pool::ConfigError>(())
/// ```
///
/// Faults are consumed in order by whichever thread calls next; tests that inject faults
/// should drive the store from one thread.
#[derive(Debug, Default)]
pub struct FaultyIo {
    inner: SystemIo,
    plan: Mutex<FaultPlan>,
    write_calls: AtomicU64,
    read_calls: AtomicU64,
    punch_calls: AtomicU64,
    faults_injected: AtomicU64,
}

impl FaultyIo {
    /// A pass-through seam with an empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    fn plan(&self) -> MutexGuard<'_, FaultPlan> {
        self.plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next `n` `write_at` calls each suffer `fault` (after faults planned earlier).
    pub fn fail_next_writes(&self, n: usize, fault: WriteFault) {
        self.plan().writes.extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` `read_at` calls each suffer `fault` (after faults planned earlier).
    pub fn fail_next_reads(&self, n: usize, fault: ReadFault) {
        self.plan().reads.extend(std::iter::repeat_n(fault, n));
    }

    /// The next successful `read_at` call inverts the byte at `offset_in_buf` of what it read
    /// (the last byte read, if it read fewer), so the caller's checksum must catch it.
    pub fn flip_byte_on_next_read(&self, offset_in_buf: usize) {
        self.plan().flip_on_next_read = Some(offset_in_buf);
    }

    /// The next `n` `punch_hole` calls fail with `EOPNOTSUPP`.
    pub fn fail_next_punches(&self, n: usize) {
        self.plan().punch_failures += n;
    }

    /// Forgets every planned fault not yet injected.
    pub fn clear(&self) {
        *self.plan() = FaultPlan::default();
    }

    /// `write_at` calls seen, faulty or not.
    pub fn write_calls(&self) -> u64 {
        self.write_calls.load(Ordering::Relaxed)
    }

    /// `read_at` calls seen, faulty or not.
    pub fn read_calls(&self) -> u64 {
        self.read_calls.load(Ordering::Relaxed)
    }

    /// `punch_hole` calls seen, faulty or not.
    pub fn punch_calls(&self) -> u64 {
        self.punch_calls.load(Ordering::Relaxed)
    }

    /// Faults injected so far (short writes and flipped bytes included).
    pub fn faults_injected(&self) -> u64 {
        self.faults_injected.load(Ordering::Relaxed)
    }

    fn injected(&self) {
        self.faults_injected.fetch_add(1, Ordering::Relaxed);
    }
}

impl ExtentIo for FaultyIo {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.write_calls.fetch_add(1, Ordering::Relaxed);
        let fault = self.plan().writes.pop_front();
        match fault {
            None => self.inner.write_at(file, buf, offset),
            Some(WriteFault::NoSpace) => {
                self.injected();
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            Some(WriteFault::Eio) => {
                self.injected();
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
            Some(WriteFault::ShortWrite) => {
                self.injected();
                let half = buf.len() / 2;
                let prefix = if half >= EXTENT_ALIGN {
                    half - half % EXTENT_ALIGN
                } else {
                    half.max(1).min(buf.len())
                };
                // A real prefix write: the bytes reported as written are on the device.
                self.inner.write_at(file, &buf[..prefix], offset)
            }
        }
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_calls.fetch_add(1, Ordering::Relaxed);
        let fault = self.plan().reads.pop_front();
        if let Some(ReadFault::Eio) = fault {
            self.injected();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let read = self.inner.read_at(file, buf, offset)?;
        if read > 0 {
            if let Some(at) = self.plan().flip_on_next_read.take() {
                self.injected();
                let at = at.min(read - 1);
                buf[at] = !buf[at];
            }
        }
        Ok(read)
    }

    fn punch_hole(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        self.punch_calls.fetch_add(1, Ordering::Relaxed);
        {
            let mut plan = self.plan();
            if plan.punch_failures > 0 {
                plan.punch_failures -= 1;
                drop(plan);
                self.injected();
                return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
            }
        }
        self.inner.punch_hole(file, offset, len)
    }
}

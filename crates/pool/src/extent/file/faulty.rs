//! Fault injection for the file store (feature `fault-injection`, and this crate's own
//! tests): [`FaultyIo`], an [`ExtentIo`] seam that makes the real system calls except where a
//! programmed plan says to fail.
//!
//! Invariant: with an empty plan and no [`FaultRates`], `FaultyIo` behaves exactly like the
//! system calls; each planned fault is injected once, in order, by whichever thread calls
//! next, and counted. Zero fills (`write_zeros`) are not `write_at` calls: planned write
//! faults and random `eio`/`short` faults never hit them (so a plan counts frame writes
//! exactly); they have their own plan ([`FaultyIo::fail_next_fills`]) and take space on the
//! simulated device of `enospc-after`. Random faults ([`FaultyIo::random`]) are drawn from a seeded generator,
//! one draw per call in call order: the same seed and the same order of calls inject the same
//! faults (with several spill threads the order of calls, so the faults, can differ).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::os::{ExtentIo, SystemIo, ZERO_FILL_CHUNK};
use crate::config::parse_size;
use crate::extent::EXTENT_ALIGN;

/// Rates of random faults for [`FaultyIo::random`], as the CLI's `--inject-faults` takes them:
/// `eio=0.01,enospc-after=64MiB,flip=0.001,short=0.01` (any subset, in any order).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    /// Probability that a `write_at` or `read_at` call fails with `EIO` (`eio=`).
    pub eio: f64,
    /// Probability that a `write_at` call writes only a prefix (`short=`).
    pub short: f64,
    /// Probability that a successful `read_at` call returns one byte inverted (`flip=`).
    pub flip: f64,
    /// A device of this many bytes: writes that would grow the scratch files past it, summed,
    /// fail with `ENOSPC` (`enospc-after=`, a size such as `64MiB`). Rewriting space already
    /// used succeeds, so the store degrades and recovers as extents are freed and reused.
    pub enospc_after: Option<u64>,
}

impl FaultRates {
    /// Parses `key=value` pairs separated by commas (keys `eio`, `short`, `flip`:
    /// probabilities from 0 to 1; `enospc-after`: a size). Errors name the bad pair.
    pub fn parse(spec: &str) -> Result<FaultRates, String> {
        let mut rates = FaultRates::default();
        if spec.trim().is_empty() {
            return Err(
                "empty fault spec (example: eio=0.01,enospc-after=64MiB,flip=0.001,short=0.01)"
                    .into(),
            );
        }
        for pair in spec.split(',') {
            let (key, value) = pair.trim().split_once('=').ok_or_else(|| {
                format!("{pair:?} is not key=value (keys: eio, short, flip, enospc-after)")
            })?;
            let rate = || -> Result<f64, String> {
                match value.trim().parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err(format!("{key}={value}: not a probability between 0 and 1")),
                }
            };
            match key.trim() {
                "eio" => rates.eio = rate()?,
                "short" => rates.short = rate()?,
                "flip" => rates.flip = rate()?,
                "enospc-after" => {
                    rates.enospc_after =
                        Some(parse_size(value).map_err(|e| format!("enospc-after: {e}"))?)
                }
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (keys: eio, short, flip, enospc-after)"
                    ))
                }
            }
        }
        Ok(rates)
    }
}

impl std::fmt::Display for FaultRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "eio={},short={},flip={}",
            self.eio, self.short, self.flip
        )?;
        if let Some(bytes) = self.enospc_after {
            write!(f, ",enospc-after={bytes}")?;
        }
        Ok(())
    }
}

/// Random-fault state: the rates, the seeded draw counter and the simulated device.
#[derive(Debug, Default)]
struct RandomFaults {
    rates: FaultRates,
    seed: u64,
    draws: AtomicU64,
    /// Per scratch file (by descriptor), the highest byte written; and their sum.
    device: Mutex<(HashMap<i32, u64>, u64)>,
}

impl RandomFaults {
    /// The next draw, uniform in `[0, 1)` (splitmix64 of the seed and the draw index).
    fn draw(&self) -> f64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let mut z = self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hit(&self, rate: f64) -> bool {
        rate > 0.0 && self.draw() < rate
    }

    /// Whether a write of `len` bytes at `offset` of `file` fits the simulated device (and
    /// records the growth if it does).
    fn fits(&self, file: &File, offset: u64, len: usize) -> bool {
        let Some(capacity) = self.rates.enospc_after else {
            return true;
        };
        let mut device = self.device.lock().unwrap_or_else(|p| p.into_inner());
        let (files, used) = &mut *device;
        let end = offset + len as u64;
        let high = files.entry(file.as_raw_fd()).or_insert(0);
        if end <= *high {
            return true;
        }
        let growth = end - *high;
        if *used + growth > capacity {
            return false;
        }
        *high = end;
        *used += growth;
        true
    }
}

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
    /// Successful reads still to flip a byte of, and where.
    flips: usize,
    flip_at: usize,
    punch_failures: usize,
    fill_failures: usize,
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
    random: Option<RandomFaults>,
    write_calls: AtomicU64,
    read_calls: AtomicU64,
    punch_calls: AtomicU64,
    fill_calls: AtomicU64,
    faults_injected: AtomicU64,
}

impl FaultyIo {
    /// A pass-through seam with an empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// A seam that injects random faults at `rates`, drawn deterministically from `seed`
    /// (see the module docs); planned faults can still be added.
    pub fn random(rates: FaultRates, seed: u64) -> Self {
        FaultyIo {
            random: Some(RandomFaults {
                rates,
                seed,
                ..RandomFaults::default()
            }),
            ..Self::default()
        }
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
        self.flip_bytes_on_next_reads(1, offset_in_buf);
    }

    /// The next `n` successful `read_at` calls each invert the byte at `offset_in_buf` (as
    /// [`FaultyIo::flip_byte_on_next_read`]).
    pub fn flip_bytes_on_next_reads(&self, n: usize, offset_in_buf: usize) {
        let mut plan = self.plan();
        plan.flips = n;
        plan.flip_at = offset_in_buf;
    }

    /// The next `n` `punch_hole` calls fail with `EOPNOTSUPP`.
    pub fn fail_next_punches(&self, n: usize) {
        self.plan().punch_failures += n;
    }

    /// The next `n` `write_zeros` calls (slot fills) fail with `ENOSPC`.
    pub fn fail_next_fills(&self, n: usize) {
        self.plan().fill_failures += n;
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

    /// `write_zeros` calls (slot fills) seen, faulty or not.
    pub fn fill_calls(&self) -> u64 {
        self.fill_calls.load(Ordering::Relaxed)
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
        let mut fault = self.plan().writes.pop_front();
        if let (None, Some(random)) = (fault, &self.random) {
            if !random.fits(file, offset, buf.len()) {
                fault = Some(WriteFault::NoSpace);
            } else if random.hit(random.rates.eio) {
                fault = Some(WriteFault::Eio);
            } else if buf.len() > 1 && random.hit(random.rates.short) {
                fault = Some(WriteFault::ShortWrite);
            }
        }
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
        let mut fault = self.plan().reads.pop_front();
        if let (None, Some(random)) = (fault, &self.random) {
            if random.hit(random.rates.eio) {
                fault = Some(ReadFault::Eio);
            }
        }
        if let Some(ReadFault::Eio) = fault {
            self.injected();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let read = self.inner.read_at(file, buf, offset)?;
        if read > 0 {
            let planned = {
                let mut plan = self.plan();
                let flip = plan.flips > 0;
                if flip {
                    plan.flips -= 1;
                }
                flip.then_some(plan.flip_at)
            };
            let flip = planned.or_else(|| {
                let random = self.random.as_ref()?;
                random
                    .hit(random.rates.flip)
                    .then(|| random.draw() as usize % read)
            });
            if let Some(at) = flip {
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

    fn write_zeros(&self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        self.fill_calls.fetch_add(1, Ordering::Relaxed);
        let len = len.min(ZERO_FILL_CHUNK);
        let planned = {
            let mut plan = self.plan();
            let fail = plan.fill_failures > 0;
            if fail {
                plan.fill_failures -= 1;
            }
            fail
        };
        let full = planned
            || self
                .random
                .as_ref()
                .is_some_and(|random| !random.fits(file, offset, len));
        if full {
            self.injected();
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.write_zeros(file, offset, len)
    }
}

//! The file extent store, the default backend: one unlinked scratch file per extent class.
//!
//! Each extent class (see [`super::alloc`]) gets its own file in the configured directory,
//! opened on first use. The extent at `(class, slot)` lives at byte offset
//! `slot * extent_class_size(class)` of that class's file; a [`SlotAllocator`] hands out the
//! slots. Writes and reads are positional (`pwrite`/`pread`) of exactly the frame's padded
//! length, so device bytes written are the compressed size rounded up to a page, never the
//! class size.
//!
//! # Invariants
//! - Scratch files are created `0600` and unlinked (`O_TMPFILE`, or unlink right after open
//!   where `O_TMPFILE` is missing): nothing appears in the directory, and the space goes back
//!   to the filesystem when the store is dropped or the process dies.
//! - The allocator gives each live extent its own slot, so concurrent writes and reads touch
//!   disjoint byte ranges. Only the allocator sits behind a lock; `pread`/`pwrite` run
//!   outside it.
//! - A failed `write` gives its slot back before returning, so it never leaks a slot or
//!   changes [`ExtentStore::live_bytes`].
//! - `O_DIRECT` is switched on where the filesystem accepts it (probed once, when the store is
//!   opened); frames are page-aligned and page-padded, so every direct transfer is aligned. A
//!   misaligned frame (not produced by the codec) still works: it goes through an aligned
//!   bounce buffer.
//!
//! # Disk space
//! A free slot keeps its blocks so that the next extent of its class overwrites them without
//! allocating. Two things return them to the filesystem with
//! `fallocate(FALLOC_FL_PUNCH_HOLE)`: freeing a slot of a class of at least
//! [`PUNCH_ON_FREE_MIN_BYTES`] punches it right away (large extents are where idle free slots
//! cost most), and a write that hits `ENOSPC` punches every free slot not yet punched, then
//! retries once before reporting [`StoreError::NoSpace`]. Without either, a class's file
//! would stay as large as that class's peak.
//!
//! [`FileStoreOptions::capacity`] bounds the bytes reserved by live extents, counted as the
//! class sizes of their slots; past it `write` returns [`StoreError::NoSpace`] without any
//! I/O.
//!
//! # Fault injection
//! All I/O goes through the [`ExtentIo`] seam. [`SystemIo`] makes the real system calls;
//! [`FaultyIo`] wraps it with a programmable plan (short writes, `ENOSPC`, `EIO`, flipped
//! bytes) for tests, including integration tests outside this crate.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::alloc::{extent_class_of, extent_class_size, SlotAllocator, EXTENT_CLASSES};
use super::{ExtentAddr, ExtentStore, StoreCounters, StoreError, EXTENT_ALIGN};
use crate::aligned::AlignedBuf;
use crate::error::ConfigError;

/// Classes whose slots are at least this large are hole-punched as soon as a slot is freed;
/// smaller ones only when the device fills up.
pub const PUNCH_ON_FREE_MIN_BYTES: usize = 1 << 20;

/// Consecutive transfers that make no (aligned) progress before a read or write gives up.
const MAX_STALLED_TRANSFERS: u32 = 8;

/// The system calls the file store makes, as a seam for fault injection.
///
/// Implementations transfer at most `buf.len()` bytes and report how many, like the system
/// calls; the store loops over short transfers and retries `EINTR` itself.
pub trait ExtentIo: Send + Sync + 'static {
    /// Writes from `buf` at `offset` of `fd`; returns the bytes written.
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Reads into `buf` from `offset` of `fd`; returns the bytes read (0 at end of file).
    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Deallocates `len` bytes at `offset` of `fd`, keeping the file size.
    fn punch_hole(&self, fd: RawFd, offset: u64, len: u64) -> io::Result<()>;
}

/// The real system calls: `pwrite(2)`, `pread(2)` and
/// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemIo;

fn to_off_t(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))
}

impl ExtentIo for SystemIo {
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
        let offset = to_off_t(offset)?;
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call; the kernel
        // does not keep the pointer afterwards. A bad `fd` is reported as EBADF, not UB.
        let written = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset) };
        if written < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(written as usize)
        }
    }

    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let offset = to_off_t(offset)?;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes and exclusively borrowed for
        // the whole call; the kernel writes at most that many bytes and keeps no pointer.
        let read = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
        if read < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(read as usize)
        }
    }

    fn punch_hole(&self, fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
        let (offset, len) = (to_off_t(offset)?, to_off_t(len)?);
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: fallocate takes no pointers; a bad `fd` or range is reported as an error.
        if unsafe { libc::fallocate(fd, mode, offset, len) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
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
    flip_on_next_read: Option<usize>,
    punch_failures: usize,
}

/// Test seam: [`SystemIo`] with a programmable plan of faults.
///
/// Each `pwrite`/`pread`/`punch_hole` call consumes the next planned fault of its kind, if
/// any, and otherwise makes the real system call. Hand it to [`FileStore::open_with_io`] as
/// an `Arc` and keep a clone to program it:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use spillway_pool::extent::file::{FaultyIo, FileStore, FileStoreOptions, WriteFault};
/// let faults = Arc::new(FaultyIo::new());
/// let store = FileStore::open_with_io("/tmp".as_ref(), FileStoreOptions::default(), faults.clone())?;
/// faults.fail_next_writes(1, WriteFault::Eio);
/// # Ok::<(), spillway_pool::error::ConfigError>(())
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

    /// The next `n` `pwrite` calls each suffer `fault` (after faults planned earlier).
    pub fn fail_next_writes(&self, n: usize, fault: WriteFault) {
        self.plan().writes.extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` `pread` calls each suffer `fault` (after faults planned earlier).
    pub fn fail_next_reads(&self, n: usize, fault: ReadFault) {
        self.plan().reads.extend(std::iter::repeat_n(fault, n));
    }

    /// The next successful `pread` call inverts the byte at `offset_in_buf` of what it read
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

    /// `pwrite` calls seen, faulty or not.
    pub fn write_calls(&self) -> u64 {
        self.write_calls.load(Ordering::Relaxed)
    }

    /// `pread` calls seen, faulty or not.
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
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.write_calls.fetch_add(1, Ordering::Relaxed);
        let fault = self.plan().writes.pop_front();
        match fault {
            None => self.inner.pwrite(fd, buf, offset),
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
                self.inner.pwrite(fd, &buf[..prefix], offset)
            }
        }
    }

    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_calls.fetch_add(1, Ordering::Relaxed);
        let fault = self.plan().reads.pop_front();
        if let Some(ReadFault::Eio) = fault {
            self.injected();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let read = self.inner.pread(fd, buf, offset)?;
        if read > 0 {
            if let Some(at) = self.plan().flip_on_next_read.take() {
                self.injected();
                let at = at.min(read - 1);
                buf[at] = !buf[at];
            }
        }
        Ok(read)
    }

    fn punch_hole(&self, fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
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
        self.inner.punch_hole(fd, offset, len)
    }
}

/// How a [`FileStore`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStoreOptions {
    /// Try `O_DIRECT` (used only where the filesystem accepts it). Default `true`; `false`
    /// forces buffered I/O.
    pub direct_io: bool,
    /// Most bytes live extents may reserve, counted as the class sizes of their slots.
    /// `None` (the default): until the device is full.
    pub capacity: Option<u64>,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            direct_io: true,
            capacity: None,
        }
    }
}

/// One class's scratch file and whether `O_DIRECT` is on for it.
#[derive(Debug)]
struct ClassFile {
    file: File,
    direct: bool,
}

/// What the allocator lock protects.
#[derive(Debug)]
struct SlotState {
    slots: SlotAllocator,
    /// Sum of the class sizes of allocated slots (what `capacity` bounds).
    reserved_bytes: u64,
}

/// The file extent store. See the [module docs](self).
pub struct FileStore {
    dir: PathBuf,
    options: FileStoreOptions,
    /// `O_DIRECT` requested and accepted by the directory's filesystem.
    direct_io: bool,
    io: Arc<dyn ExtentIo>,
    /// One lazily opened file per extent class.
    files: Vec<OnceLock<ClassFile>>,
    /// Serializes opening class files, so each class opens exactly one.
    open_lock: Mutex<()>,
    state: Mutex<SlotState>,
    live_bytes: AtomicU64,
    holes_punched: AtomicU64,
}

impl FileStore {
    /// Opens a store over scratch files in `dir`, with the real system calls.
    ///
    /// Fails with [`ConfigError::ExtentDir`] unless `dir` exists, is a directory and accepts
    /// a new file (one is created and dropped to prove it).
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<FileStore, ConfigError> {
        Self::open_with_io(dir, options, Arc::new(SystemIo))
    }

    /// Like [`FileStore::open`], with all extent I/O going through `io` (the directory checks
    /// and the `O_DIRECT` probe always use the real system calls).
    pub fn open_with_io(
        dir: &Path,
        options: FileStoreOptions,
        io: Arc<dyn ExtentIo>,
    ) -> Result<FileStore, ConfigError> {
        let probe = validate_extent_dir(dir)?;
        let direct_io = options.direct_io && probe_direct_io(&probe);
        drop(probe);
        tracing::debug!(dir = %dir.display(), direct_io, "opened file extent store");
        Ok(FileStore {
            dir: dir.to_path_buf(),
            options,
            direct_io,
            io,
            files: (0..EXTENT_CLASSES).map(|_| OnceLock::new()).collect(),
            open_lock: Mutex::new(()),
            state: Mutex::new(SlotState {
                slots: SlotAllocator::new(),
                reserved_bytes: 0,
            }),
            live_bytes: AtomicU64::new(0),
            holes_punched: AtomicU64::new(0),
        })
    }

    /// The directory holding the (unlinked) scratch files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> FileStoreOptions {
        self.options
    }

    /// Whether extent I/O bypasses the page cache (`O_DIRECT` requested and accepted by the
    /// filesystem).
    pub fn direct_io(&self) -> bool {
        self.direct_io
    }

    /// Number of class files opened so far (one per class written at least once).
    pub fn open_class_files(&self) -> usize {
        self.files.iter().filter(|f| f.get().is_some()).count()
    }

    /// Bytes reserved by live extents: the class sizes of their slots (what
    /// [`FileStoreOptions::capacity`] bounds).
    pub fn reserved_bytes(&self) -> u64 {
        self.lock_state().reserved_bytes
    }

    fn lock_state(&self) -> MutexGuard<'_, SlotState> {
        // The allocator is never left half-updated by a panic, so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves a slot of `class`, or `NoSpace` past the capacity.
    fn alloc_slot(&self, class: u16) -> Result<u32, StoreError> {
        let class_size = extent_class_size(class) as u64;
        let mut state = self.lock_state();
        if let Some(capacity) = self.options.capacity {
            if state.reserved_bytes + class_size > capacity {
                return Err(StoreError::NoSpace);
            }
        }
        let slot = state.slots.alloc(class).ok_or(StoreError::NoSpace)?;
        state.reserved_bytes += class_size;
        Ok(slot)
    }

    /// Gives a slot back, unpunched or punched.
    fn release_slot(&self, addr: ExtentAddr, punched: bool) {
        let mut state = self.lock_state();
        if punched {
            state.slots.free_punched(addr.class, addr.slot);
        } else {
            state.slots.free(addr.class, addr.slot);
        }
        state.reserved_bytes -= extent_class_size(addr.class) as u64;
    }

    /// The file of `class`, opened (and switched to `O_DIRECT` if the store uses it) on first
    /// use.
    fn class_file(&self, class: u16) -> io::Result<&ClassFile> {
        let cell = &self.files[class as usize];
        if let Some(file) = cell.get() {
            return Ok(file);
        }
        let _opening = self
            .open_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(file) = cell.get() {
            return Ok(file);
        }
        let file = create_scratch_file(&self.dir)?;
        let direct = self.direct_io && enable_direct_io(&file).is_ok();
        if self.direct_io && !direct {
            tracing::warn!(
                class,
                "O_DIRECT refused for an extent file; it uses buffered I/O"
            );
        }
        Ok(cell.get_or_init(|| ClassFile { file, direct }))
    }

    fn slot_offset(addr: ExtentAddr) -> u64 {
        u64::from(addr.slot) * extent_class_size(addr.class) as u64
    }

    /// Writes `frame` into the slot at `addr`: on `ENOSPC`, punches the free slots' holes and
    /// retries once.
    fn write_slot(&self, addr: ExtentAddr, frame: &[u8]) -> Result<(), StoreError> {
        let io_error = |source| StoreError::Io {
            op: "write",
            addr,
            source,
        };
        let file = self.class_file(addr.class).map_err(|source| {
            if is_no_space(&source) {
                StoreError::NoSpace
            } else {
                StoreError::Io {
                    op: "open",
                    addr,
                    source,
                }
            }
        })?;
        let offset = Self::slot_offset(addr);
        match self.write_frame_at(file, frame, offset) {
            Ok(()) => Ok(()),
            Err(error) if is_no_space(&error) => {
                let punched = self.punch_free_holes();
                tracing::warn!(
                    punched,
                    "extent device full; punched free extents and retrying"
                );
                match self.write_frame_at(file, frame, offset) {
                    Ok(()) => Ok(()),
                    Err(error) if is_no_space(&error) => Err(StoreError::NoSpace),
                    Err(error) => Err(io_error(error)),
                }
            }
            Err(error) => Err(io_error(error)),
        }
    }

    /// Writes all of `frame` at `offset`, through an aligned bounce buffer if `O_DIRECT` is on
    /// and `frame` is not page-aligned in address and length.
    fn write_frame_at(&self, file: &ClassFile, frame: &[u8], offset: u64) -> io::Result<()> {
        if file.direct && !is_page_aligned(frame) {
            let padded = frame.len().next_multiple_of(EXTENT_ALIGN);
            let mut bounce = AlignedBuf::with_capacity(padded);
            bounce.resize(padded);
            let (head, tail) = bounce.as_mut_slice().split_at_mut(frame.len());
            head.copy_from_slice(frame);
            tail.fill(0);
            return self.write_all_at(file, bounce.as_slice(), offset);
        }
        self.write_all_at(file, frame, offset)
    }

    fn write_all_at(&self, file: &ClassFile, buf: &[u8], offset: u64) -> io::Result<()> {
        let fd = file.file.as_raw_fd();
        let mut done = 0;
        let mut stalls = 0;
        while done < buf.len() {
            match self.io.pwrite(fd, &buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "pwrite wrote 0 bytes",
                    ))
                }
                Ok(written) => {
                    let next = resume_point(file.direct, done, written, buf.len());
                    stalls = if next == done { stalls + 1 } else { 0 };
                    if stalls > MAX_STALLED_TRANSFERS {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "pwrite keeps writing less than one aligned block",
                        ));
                    }
                    done = next;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn read_exact_at(&self, file: &ClassFile, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let fd = file.file.as_raw_fd();
        let len = buf.len();
        let mut done = 0;
        let mut stalls = 0;
        while done < len {
            match self.io.pread(fd, &mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("end of extent file after {done} of {len} bytes"),
                    ))
                }
                Ok(read) => {
                    let next = resume_point(file.direct, done, read, len);
                    stalls = if next == done { stalls + 1 } else { 0 };
                    if stalls > MAX_STALLED_TRANSFERS {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "pread keeps reading less than one aligned block",
                        ));
                    }
                    done = next;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Punches the holes of every free slot not punched yet; returns how many it punched.
    /// The slots are taken off the free lists while being punched, so no write can land in a
    /// range being deallocated.
    fn punch_free_holes(&self) -> usize {
        let taken = self.lock_state().slots.take_unpunched_free();
        let mut outcome = Vec::with_capacity(taken.len());
        for (class, slot) in taken {
            let addr = ExtentAddr { class, slot };
            outcome.push((addr, self.punch_slot(addr)));
        }
        let punched = outcome.iter().filter(|(_, punched)| *punched).count();
        let mut state = self.lock_state();
        for (addr, punched) in outcome {
            if punched {
                state.slots.free_punched(addr.class, addr.slot);
            } else {
                state.slots.free(addr.class, addr.slot);
            }
        }
        punched
    }

    /// Deallocates the slot's byte range. The caller owns the slot (allocated to it, or taken
    /// off the free list). True if the range now holds no blocks.
    fn punch_slot(&self, addr: ExtentAddr) -> bool {
        // A class whose file was never opened has nothing on the device.
        let Some(file) = self.files[addr.class as usize].get() else {
            return true;
        };
        let len = extent_class_size(addr.class) as u64;
        match self
            .io
            .punch_hole(file.file.as_raw_fd(), Self::slot_offset(addr), len)
        {
            Ok(()) => {
                self.holes_punched.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::debug!(%addr, %error, "could not punch the hole of a free extent");
                false
            }
        }
    }
}

impl ExtentStore for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    /// # Panics
    /// If `frame` is longer than [`super::alloc::MAX_EXTENT_LEN`] (the codec never produces
    /// such frames).
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        let class = extent_class_of(frame.len().max(1));
        let slot = self.alloc_slot(class)?;
        let addr = ExtentAddr { class, slot };
        match self.write_slot(addr, frame) {
            Ok(()) => {
                self.live_bytes
                    .fetch_add(frame.len() as u64, Ordering::Relaxed);
                Ok(addr)
            }
            Err(error) => {
                // The slot may hold part of the frame: it goes back unpunched.
                self.release_slot(addr, false);
                Err(error)
            }
        }
    }

    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        self.read_span(addr, 1, len, buf)
    }

    fn reads_spans(&self) -> bool {
        true
    }

    /// Consecutive slots of a class are consecutive ranges of its file: one `pread`.
    fn read_span(
        &self,
        first: ExtentAddr,
        count: u32,
        last_len: usize,
        buf: &mut AlignedBuf,
    ) -> Result<(), StoreError> {
        let io_error = |source| StoreError::Io {
            op: "read",
            addr: first,
            source,
        };
        buf.clear();
        let file = check_addr(first, last_len)
            .and_then(|()| match first.slot.checked_add(count.saturating_sub(1)) {
                Some(_) if count > 0 => Ok(()),
                _ => Err(invalid_input(format!(
                    "a span of {count} slots from slot {}",
                    first.slot
                ))),
            })
            .and_then(|()| {
                self.files[first.class as usize].get().ok_or_else(|| {
                    invalid_input("no extent of this class was ever written".to_string())
                })
            })
            .map_err(io_error)?;
        let len = (count as usize - 1) * extent_class_size(first.class) + last_len;
        // O_DIRECT transfers whole blocks: read the padded length, keep `len`.
        let transfer = if file.direct {
            len.next_multiple_of(EXTENT_ALIGN)
        } else {
            len
        };
        buf.resize(transfer);
        match self.read_exact_at(file, buf.as_mut_slice(), Self::slot_offset(first)) {
            Ok(()) => {
                buf.resize(len);
                Ok(())
            }
            Err(error) => {
                buf.clear();
                Err(io_error(error))
            }
        }
    }

    /// Slots of classes of at least [`PUNCH_ON_FREE_MIN_BYTES`] are hole-punched before they
    /// go back to the free list; smaller ones keep their blocks until the device fills up.
    fn free(&self, addr: ExtentAddr, len: usize) {
        if check_addr(addr, len).is_err() {
            debug_assert!(false, "free of an invalid extent {addr} ({len} bytes)");
            return;
        }
        self.live_bytes.fetch_sub(len as u64, Ordering::Relaxed);
        let punched =
            extent_class_size(addr.class) >= PUNCH_ON_FREE_MIN_BYTES && self.punch_slot(addr);
        self.release_slot(addr, punched);
    }

    fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    fn counters(&self) -> StoreCounters {
        StoreCounters {
            holes_punched: self.holes_punched.load(Ordering::Relaxed),
            ..StoreCounters::default()
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("direct_io", &self.direct_io)
            .field("open_class_files", &self.open_class_files())
            .field("live_bytes", &self.live_bytes())
            .finish_non_exhaustive()
    }
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Checks that `addr` names a class and `len` fits its slots.
fn check_addr(addr: ExtentAddr, len: usize) -> io::Result<()> {
    if usize::from(addr.class) >= EXTENT_CLASSES {
        return Err(invalid_input(format!(
            "extent class {} does not exist",
            addr.class
        )));
    }
    let class_size = extent_class_size(addr.class);
    if len > class_size {
        return Err(invalid_input(format!(
            "length {len} exceeds the {class_size}-byte slots of class {}",
            addr.class
        )));
    }
    Ok(())
}

fn is_no_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn is_page_aligned(buf: &[u8]) -> bool {
    (buf.as_ptr() as usize) % EXTENT_ALIGN == 0 && buf.len() % EXTENT_ALIGN == 0
}

/// Where a transfer resumes after moving `moved` bytes from position `done` of `total`.
/// Direct I/O resumes at a page boundary (re-transferring a partial page, which is
/// idempotent), since an unaligned offset would fail with `EINVAL`.
fn resume_point(direct: bool, done: usize, moved: usize, total: usize) -> usize {
    let end = (done + moved).min(total);
    if direct && end < total {
        end - end % EXTENT_ALIGN
    } else {
        end
    }
}

/// Proves `dir` can hold extent files; returns the probe file (unlinked, `0600`).
fn validate_extent_dir(dir: &Path) -> Result<File, ConfigError> {
    let refuse = |reason: &str, source: Option<io::Error>| ConfigError::ExtentDir {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
        source,
    };
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(refuse("does not exist", Some(error)))
        }
        Err(error) if error.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(refuse(
                "is not a directory (a component of the path is a file)",
                Some(error),
            ))
        }
        Err(error) => return Err(refuse("cannot be inspected", Some(error))),
    };
    if !metadata.is_dir() {
        return Err(refuse("is not a directory", None));
    }
    create_scratch_file(dir).map_err(|error| {
        refuse(
            "is not writable (cannot create a scratch file in it)",
            Some(error),
        )
    })
}

/// Creates an unlinked read-write file in `dir` with mode `0600`: `O_TMPFILE` where the
/// filesystem supports it, else a randomly named file unlinked right after it is opened.
fn create_scratch_file(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .or_else(|error| match error.raw_os_error() {
            // The filesystem (or kernel) has no O_TMPFILE.
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::ENOENT) => tempfile::tempfile_in(dir),
            _ => Err(error),
        })?;
    // Whatever path created it, and whatever the umask, the file is private.
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Switches `O_DIRECT` on for `file`.
fn enable_direct_io(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(F_GETFL) takes no pointers; `fd` is open for the lifetime of `file`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL takes an integer argument.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the filesystem of `probe` accepts `O_DIRECT`: the flag is accepted and one aligned
/// page can be written with it. Errors other than `EINVAL` (say `ENOSPC`) say nothing about
/// alignment and keep `O_DIRECT`.
fn probe_direct_io(probe: &File) -> bool {
    if let Err(error) = enable_direct_io(probe) {
        tracing::info!(%error, "filesystem refuses O_DIRECT; extent files use buffered I/O");
        return false;
    }
    let mut page = AlignedBuf::with_capacity(EXTENT_ALIGN);
    page.resize(EXTENT_ALIGN);
    match SystemIo.pwrite(probe.as_raw_fd(), page.as_slice(), 0) {
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
            tracing::info!(%error, "O_DIRECT write refused; extent files use buffered I/O");
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            FileStore::open_with_io(dir.path(), FileStoreOptions::default(), faults.clone())
                .unwrap();
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
}

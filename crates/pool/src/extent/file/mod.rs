//! The file extent store, the default backend: one unlinked scratch file per extent class.
//!
//! Each extent class (see [`super::alloc`]) gets its own file in the configured directory,
//! opened on first use. The extent at `(class, slot)` lives at byte offset
//! `slot * extent_class_size(class)` of that class's file; a [`SlotAllocator`] hands out the
//! slots. Writes and reads are positional (`pwrite`/`pread`, through std's `FileExt`) of
//! exactly the frame's padded length, so device bytes written are the compressed size rounded
//! up to a page, never the class size.
//!
//! # Invariants
//! - Scratch files are created `0600` and unlinked (`O_TMPFILE`, or unlink right after open
//!   where `O_TMPFILE` is missing): nothing appears in the directory, and the space goes back
//!   to the filesystem when the store is dropped or the process dies.
//! - The allocator gives each live extent its own slot, so concurrent writes and reads touch
//!   disjoint byte ranges. Only the allocator sits behind a lock; reads and writes run
//!   outside it.
//! - A failed `write` gives its slot back before returning, so it never leaks a slot or
//!   changes [`ExtentStore::live_bytes`].
//! - `O_DIRECT` is switched on where the filesystem accepts it (probed once, when the store is
//!   opened); frames are page-aligned and page-padded, so every direct transfer is aligned. A
//!   misaligned frame (not produced by the codec) still works: it goes through an aligned
//!   bounce buffer.
//!
//! # Dense class files
//! The first write into a slot also writes zeros over the rest of the slot's range (the gap
//! between the frame's padded length and the class size, under 25 % of the slot), so a class
//! file holds blocks over every slot it ever used: one dense range that the filesystem
//! allocates and keeps as a few large extents, and frees in a few operations when the store
//! is dropped. Without the fill, every slot is its own extent between holes, and freeing the
//! file (the last `close` of an unlinked file, which the process waits for) costs one
//! operation per slot: on ext4 mounted with `discard`, one synchronous device discard each,
//! 2,800 of them (0.3 to 9 s) after a 10M-update join at a 32 MiB budget. A slot is filled
//! once (the allocator records what its range holds, [`SlotBlocks`]); reusing it writes the
//! frame only. Not filled: classes that punch on free (below), and every slot once a write
//! has met a full device (space then goes to frames). Fill bytes are counted
//! ([`StoreCounters::fill_bytes`]), not in the frames' written bytes.
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
//! All extent I/O goes through the [`ExtentIo`] seam (`os`, the store's one module of OS
//! calls). With the `fault-injection` feature, `FaultyIo` wraps the real calls with a
//! programmable plan (short writes, `ENOSPC`, `EIO`, flipped bytes) for tests, including
//! integration tests outside this crate.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::aligned::AlignedBuf;
use crate::error::ConfigError;
use crate::extent::alloc::{
    extent_class_of, extent_class_size, Grant, SlotAllocator, SlotBlocks, EXTENT_CLASSES,
};
use crate::extent::{ExtentAddr, ExtentStore, StoreCounters, StoreError, EXTENT_ALIGN};

#[cfg(any(test, feature = "fault-injection"))]
mod faulty;
mod os;

#[cfg(any(test, feature = "fault-injection"))]
pub use faulty::{FaultRates, FaultyIo, ReadFault, WriteFault};
use os::{
    create_scratch_file, enable_direct_io, is_invalid_argument, is_no_space, memory_filesystem,
    SystemIo,
};
pub use os::{ExtentIo, ZERO_FILL_CHUNK};

/// Classes whose slots are at least this large are hole-punched as soon as a slot is freed;
/// smaller ones only when the device fills up.
pub const PUNCH_ON_FREE_MIN_BYTES: usize = 1 << 20;

/// Consecutive transfers that make no (aligned) progress before a read or write gives up.
const MAX_STALLED_TRANSFERS: u32 = 8;

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

/// What a [`FileStore`]'s class files take on the device ([`FileStore::disk_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Sum of the class files' lengths: each reaches the end of its highest slot written.
    pub file_bytes: u64,
    /// Bytes the filesystem holds for them (`st_blocks`); below `file_bytes` by the holes
    /// (slots never filled, ranges punched).
    pub allocated_bytes: u64,
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

/// The file extent store, the pool's default: one unlinked `0600` scratch file per extent
/// class, `O_DIRECT` where the filesystem accepts it, positional reads and writes of each
/// frame's padded length. Freed slots are reused; their blocks go back to the filesystem by
/// hole punching (classes of 1 MiB and up on free, smaller ones when the device fills). A
/// `write` stores the whole frame or nothing a later `read` could return.
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
    /// Zero bytes written to fill slots' ranges.
    fill_bytes: AtomicU64,
    /// Cleared by the first write that meets a full device: no slot is filled after it.
    fill_slots: AtomicBool,
    /// The extent directory's filesystem, when it lives in memory (tmpfs, ramfs).
    memory_fs: Option<&'static str>,
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
        let memory_fs = memory_filesystem(&probe);
        drop(probe);
        if let Some(fs) = memory_fs {
            tracing::warn!(
                "extent dir {} is on {fs}, which lives in RAM: spilled chunks will stay in \
                 memory (and count against RAM, not disk); give an extent dir on a disk",
                dir.display()
            );
        }
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
            fill_bytes: AtomicU64::new(0),
            fill_slots: AtomicBool::new(true),
            memory_fs,
        })
    }

    /// `Some("tmpfs")` or `Some("ramfs")` when the extent directory is on a filesystem kept
    /// in memory: "spilled" extents then stay in RAM (warned about when the store opens).
    pub fn memory_filesystem(&self) -> Option<&'static str> {
        self.memory_fs
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

    /// What the class files take on the device now: their lengths and the bytes the
    /// filesystem holds for them (`fstat`).
    pub fn disk_usage(&self) -> io::Result<DiskUsage> {
        let mut usage = DiskUsage::default();
        for file in self.files.iter().filter_map(OnceLock::get) {
            let metadata = file.file.metadata()?;
            usage.file_bytes += metadata.len();
            usage.allocated_bytes += metadata.blocks() * 512;
        }
        Ok(usage)
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
    fn alloc_slot(&self, class: u16) -> Result<Grant, StoreError> {
        let class_size = extent_class_size(class) as u64;
        let mut state = self.lock_state();
        if let Some(capacity) = self.options.capacity {
            if state.reserved_bytes + class_size > capacity {
                return Err(StoreError::NoSpace);
            }
        }
        let grant = state.slots.alloc(class).ok_or(StoreError::NoSpace)?;
        state.reserved_bytes += class_size;
        Ok(grant)
    }

    /// Gives a slot back, recording what its range holds now if that changed.
    fn release_slot(&self, addr: ExtentAddr, blocks: Option<SlotBlocks>) {
        let mut state = self.lock_state();
        if let Some(blocks) = blocks {
            state.slots.set_blocks(addr.class, addr.slot, blocks);
        }
        state.slots.free(addr.class, addr.slot);
        state.reserved_bytes -= extent_class_size(addr.class) as u64;
    }

    /// After a frame of `written` bytes landed in the slot granted as `grant`: fills the rest
    /// of a slot that does not hold blocks over its whole range yet (see "Dense class files"
    /// in the module docs) and records what the range holds.
    fn complete_slot(&self, addr: ExtentAddr, grant: Grant, written: usize) {
        if grant.blocks == SlotBlocks::Full {
            return;
        }
        let class_size = extent_class_size(addr.class);
        let start = written.next_multiple_of(EXTENT_ALIGN);
        let blocks = if start >= class_size
            || (class_size < PUNCH_ON_FREE_MIN_BYTES
                && self.fill_slots.load(Ordering::Relaxed)
                && self.fill_range(addr, start, class_size))
        {
            SlotBlocks::Full
        } else {
            SlotBlocks::Partial
        };
        if blocks != grant.blocks {
            self.lock_state()
                .slots
                .set_blocks(addr.class, addr.slot, blocks);
        }
    }

    /// Writes zeros over bytes `start..end` of the slot at `addr` (page-aligned bounds).
    /// False if a write failed (the range may then be partly filled); a full device also
    /// stops every later fill.
    fn fill_range(&self, addr: ExtentAddr, start: usize, end: usize) -> bool {
        let Some(file) = self.files[addr.class as usize].get() else {
            return false;
        };
        let base = Self::slot_offset(addr);
        let (mut done, mut stalls) = (start, 0);
        while done < end {
            match self
                .io
                .write_zeros(&file.file, base + done as u64, end - done)
            {
                Ok(written) if written > 0 => {
                    let next = resume_point(file.direct, done, written, end);
                    stalls = if next == done { stalls + 1 } else { 0 };
                    if stalls > MAX_STALLED_TRANSFERS {
                        return false;
                    }
                    done = next;
                }
                Ok(_) => return false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    if is_no_space(&error) {
                        self.fill_slots.store(false, Ordering::Relaxed);
                    }
                    tracing::debug!(%addr, %error, "could not fill an extent slot");
                    return false;
                }
            }
        }
        self.fill_bytes
            .fetch_add((end - start) as u64, Ordering::Relaxed);
        true
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
                self.fill_slots.store(false, Ordering::Relaxed);
                let punched = self.punch_free_holes();
                // Per write: the pool warns once when the store stays full.
                tracing::debug!(
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
        let mut done = 0;
        let mut stalls = 0;
        while done < buf.len() {
            match self
                .io
                .write_at(&file.file, &buf[done..], offset + done as u64)
            {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write_at wrote 0 bytes",
                    ))
                }
                Ok(written) => {
                    let next = resume_point(file.direct, done, written, buf.len());
                    stalls = if next == done { stalls + 1 } else { 0 };
                    if stalls > MAX_STALLED_TRANSFERS {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "write_at keeps writing less than one aligned block",
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
        let len = buf.len();
        let mut done = 0;
        let mut stalls = 0;
        while done < len {
            match self
                .io
                .read_at(&file.file, &mut buf[done..], offset + done as u64)
            {
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
                            "read_at keeps reading less than one aligned block",
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
                state
                    .slots
                    .set_blocks(addr.class, addr.slot, SlotBlocks::Empty);
            }
            state.slots.free(addr.class, addr.slot);
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
        match self.io.punch_hole(&file.file, Self::slot_offset(addr), len) {
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
    /// If `frame` is longer than the largest extent class (10 MiB) (the codec never produces
    /// such frames).
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        let class = extent_class_of(frame.len().max(1));
        let grant = self.alloc_slot(class)?;
        let addr = ExtentAddr {
            class,
            slot: grant.slot,
        };
        match self.write_slot(addr, frame) {
            Ok(()) => {
                self.complete_slot(addr, grant, frame.len());
                self.live_bytes
                    .fetch_add(frame.len() as u64, Ordering::Relaxed);
                Ok(addr)
            }
            Err(error) => {
                // The slot may hold part of the frame: it goes back with some blocks.
                let blocks = (grant.blocks == SlotBlocks::Empty).then_some(SlotBlocks::Partial);
                self.release_slot(addr, blocks);
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

    /// Slots of classes of at least 1 MiB (`PUNCH_ON_FREE_MIN_BYTES`) are hole-punched before they
    /// go back to the free list; smaller ones keep their blocks until the device fills up.
    fn free(&self, addr: ExtentAddr, len: usize) {
        if check_addr(addr, len).is_err() {
            debug_assert!(false, "free of an invalid extent {addr} ({len} bytes)");
            return;
        }
        self.live_bytes.fetch_sub(len as u64, Ordering::Relaxed);
        let punched =
            extent_class_size(addr.class) >= PUNCH_ON_FREE_MIN_BYTES && self.punch_slot(addr);
        self.release_slot(addr, punched.then_some(SlotBlocks::Empty));
    }

    fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    fn counters(&self) -> StoreCounters {
        StoreCounters {
            holes_punched: self.holes_punched.load(Ordering::Relaxed),
            fill_bytes: self.fill_bytes.load(Ordering::Relaxed),
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

fn is_page_aligned(buf: &[u8]) -> bool {
    (buf.as_ptr() as usize).is_multiple_of(EXTENT_ALIGN) && buf.len().is_multiple_of(EXTENT_ALIGN)
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
        Err(error) if os::is_not_a_directory(&error) => {
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
    match SystemIo.write_at(probe, page.as_slice(), 0) {
        Err(error) if is_invalid_argument(&error) => {
            tracing::info!(%error, "O_DIRECT write refused; extent files use buffered I/O");
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests;

//! [`StableArena`] and [`StableBytes`]: bytes that stay *valid* for as long as their owner
//! lives without staying *resident*.
//!
//! Invariant: every `&[u8]` a [`StableBytes`] hands out stays valid and unchanged until the
//! `StableBytes` drops, whatever [`StableBytes::release`] was called in between; releasing
//! only drops the pages from the process's resident set, and a later read faults them back.
//!
//! # What it is for
//! A differential cursor may return items that borrow from the batch for as long as the
//! batch is borrowed, longer than any pin of pool memory. A reader that must hand out such
//! borrows copies the bytes once into a `StableBytes` owned by the borrowed object, hands out
//! slices of it, and calls `release` when it wants the memory back: the slices stay valid,
//! the resident set shrinks.
//!
//! # How
//! A [`StableArena`] owns one unlinked scratch file (mode `0600`, `tempfile`) on a real disk.
//! [`StableArena::store`] writes the bytes at a fresh page-aligned offset with `pwrite`, then
//! maps that range `PROT_READ`, `MAP_SHARED` (the page cache is coherent with the mapping, so
//! the mapping shows exactly what was written). `release` is `madvise(MADV_DONTNEED)` over the
//! mapping: for a shared file mapping this unmaps the pages from the process (its RSS drops)
//! and keeps the contents in the page cache or the file; the next touch faults them back in.
//! Drop unmaps the range, then punches a hole over it (freeing the disk and the page cache).
//!
//! # Soundness
//! The bytes of a region are written once, by `store`, before the region is mapped and before
//! any borrow of it exists; nothing writes the range again while it is mapped: the mapping is
//! read-only, the arena never writes an offset that belongs to a live region (regions are
//! disjoint; the bump offset rewinds only when no region is live), and the file is private to
//! the arena (unlinked, never handed out). The mapping is removed only by `Drop`, which takes
//! `&mut self`, so no borrow from `as_bytes(&self)` can exist then; `release` keeps the
//! mapping (only its pages go), so a slice read after it sees the same bytes, faulted back.
//!
//! # Not on tmpfs
//! On tmpfs or ramfs the "file" is RAM: releasing would free nothing. [`StableArena::new`]
//! refuses such a directory; [`StableArena::new_or_heap`] then falls back to heap copies
//! (valid, never released), logging a warning once and counting every byte so stored
//! ([`StableStats::heap_bytes`]). A failed write (disk full) falls back the same way, per
//! region.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// `statfs` magic numbers of filesystems whose files live in RAM.
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Counts of a [`StableArena`] (and every [`StableBytes`] it stored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StableStats {
    /// Regions alive now (mapped or heap).
    pub regions: u64,
    /// Bytes of the regions alive now.
    pub bytes: u64,
    /// Bytes stored on the heap instead of the scratch file (tmpfs, or a failed write), in
    /// total since the arena was made: they are never released.
    pub heap_bytes: u64,
    /// `release` calls that dropped pages.
    pub releases: u64,
}

/// A scratch file that [`StableBytes`] regions are written into and mapped from (see the
/// module docs). Cheap to clone (an `Arc`); regions keep their arena alive.
#[derive(Clone, Debug)]
pub struct StableArena {
    inner: Arc<ArenaInner>,
}

#[derive(Debug)]
struct ArenaInner {
    /// The unlinked scratch file; `None`: every region is a heap copy.
    file: Option<File>,
    /// The next free offset and the number of live mapped regions.
    cursor: Mutex<(u64, u64)>,
    page: usize,
    regions: AtomicU64,
    bytes: AtomicU64,
    heap_bytes: AtomicU64,
    releases: AtomicU64,
    /// Regions the scratch file failed to take (each fell back to the heap); only the first
    /// is logged, so a full disk does not print a line per chunk.
    write_failures: AtomicU64,
}

impl StableArena {
    /// An arena over an unlinked scratch file in `dir`. Refuses (`ErrorKind::Unsupported`) a
    /// directory on tmpfs or ramfs, whose files are RAM.
    pub fn new(dir: &Path) -> io::Result<StableArena> {
        // O_TMPFILE where supported, else created and unlinked at once; never in `dir`.
        let file = tempfile::tempfile_in(dir)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        if in_ram(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is on tmpfs/ramfs: stable bytes there would stay in RAM",
                    dir.display()
                ),
            ));
        }
        Ok(Self::with_file(Some(file)))
    }

    /// [`StableArena::new`], or, if `dir` is refused or unusable, an arena of heap copies
    /// (logged once as a warning here; their bytes are counted in [`StableStats::heap_bytes`]).
    pub fn new_or_heap(dir: &Path) -> StableArena {
        match Self::new(dir) {
            Ok(arena) => arena,
            Err(e) => {
                tracing::warn!(
                    "spillway: no stable scratch file in {} ({e}); variable-length cursor \
                     reads are copied to the heap and never released",
                    dir.display()
                );
                Self::heap()
            }
        }
    }

    /// An arena whose regions are heap copies: valid, never released.
    pub fn heap() -> StableArena {
        Self::with_file(None)
    }

    fn with_file(file: Option<File>) -> StableArena {
        StableArena {
            inner: Arc::new(ArenaInner {
                file,
                cursor: Mutex::new((0, 0)),
                page: page_size(),
                regions: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                heap_bytes: AtomicU64::new(0),
                releases: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
            }),
        }
    }

    /// Whether regions are mapped from a scratch file (else they are heap copies).
    pub fn is_mapped(&self) -> bool {
        self.inner.file.is_some()
    }

    /// The arena's counts.
    pub fn stats(&self) -> StableStats {
        let i = &self.inner;
        StableStats {
            regions: i.regions.load(Ordering::Relaxed),
            bytes: i.bytes.load(Ordering::Relaxed),
            heap_bytes: i.heap_bytes.load(Ordering::Relaxed),
            releases: i.releases.load(Ordering::Relaxed),
        }
    }

    /// Stores a copy of `bytes` (written once, never again) and returns it. Falls back to a
    /// heap copy (counted) when the scratch file cannot take it.
    pub fn store(&self, bytes: &[u8]) -> StableBytes {
        let inner = &self.inner;
        inner.regions.fetch_add(1, Ordering::Relaxed);
        inner.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let repr = match &inner.file {
            Some(file) if !bytes.is_empty() => match self.map(file, bytes) {
                Ok(mapped) => Repr::Mapped(mapped),
                Err(e) => {
                    if inner.write_failures.fetch_add(1, Ordering::Relaxed) == 0 {
                        tracing::warn!(
                            "spillway: stable bytes fall back to the heap: {e} (said once; \
                             every such region is counted in the stable bytes' heap_bytes)"
                        );
                    }
                    self.heap_copy(bytes)
                }
            },
            Some(_) => Repr::Heap(Box::default()),
            None => self.heap_copy(bytes),
        };
        StableBytes {
            arena: Arc::clone(&self.inner),
            repr,
        }
    }

    fn heap_copy(&self, bytes: &[u8]) -> Repr {
        let inner = &self.inner;
        inner
            .heap_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Repr::Heap(bytes.into())
    }

    /// Writes `bytes` at a fresh page-aligned offset of `file` and maps them read-only.
    fn map(&self, file: &File, bytes: &[u8]) -> io::Result<Mapped> {
        let inner = &self.inner;
        let map_len = bytes.len().div_ceil(inner.page) * inner.page;
        let offset = {
            let mut cursor = inner.cursor.lock().unwrap_or_else(|p| p.into_inner());
            let offset = cursor.0;
            cursor.0 += map_len as u64;
            cursor.1 += 1;
            offset
        };
        let mapped = file
            .write_all_at(bytes, offset)
            .and_then(|()| map_shared(file, offset, map_len));
        match mapped {
            Ok(ptr) => Ok(Mapped {
                ptr,
                len: bytes.len(),
                map_len,
                offset,
            }),
            Err(e) => {
                inner.free_range(file, offset, map_len as u64);
                Err(e)
            }
        }
    }
}

impl ArenaInner {
    /// Gives `len` bytes at `offset` back: punches them out of the file, and rewinds the bump
    /// offset once no mapped region is live.
    fn free_range(&self, file: &File, offset: u64, len: u64) {
        // A failed punch only leaves disk space allocated until the file closes.
        let _ = punch_hole(file, offset, len);
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        cursor.1 -= 1;
        if cursor.1 == 0 {
            cursor.0 = 0;
        }
    }
}

/// Bytes written once and readable (`as_bytes`) until dropped; `release` gives their pages
/// back without invalidating them (see the module docs).
#[derive(Debug)]
pub struct StableBytes {
    arena: Arc<ArenaInner>,
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    Mapped(Mapped),
    Heap(Box<[u8]>),
}

/// A read-only shared mapping of `map_len` bytes at `offset` of the arena's file, of which
/// the first `len` are the stored bytes.
#[derive(Debug)]
struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
    map_len: usize,
    offset: u64,
}

// SAFETY: a `Mapped` is a read-only view of a file range that nothing writes while it is
// mapped (module docs); reading it from any thread is as safe as reading a `&[u8]`, and the
// unmap in `Drop` needs no thread affinity.
unsafe impl Send for Mapped {}
// SAFETY: as above: shared access only reads immutable bytes; `release` is an madvise that
// keeps the contents.
unsafe impl Sync for Mapped {}

impl StableBytes {
    /// The stored bytes, valid and unchanged for as long as `self` is borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            // SAFETY: `ptr` maps `map_len ≥ len` readable bytes that were written before the
            // mapping was made and are never written again while it lives; the mapping lives
            // until `Drop`, which cannot run while this borrow of `self` exists. `release`
            // keeps the mapping (its pages fault back on access).
            Repr::Mapped(m) => unsafe { std::slice::from_raw_parts(m.ptr.as_ptr(), m.len) },
            Repr::Heap(bytes) => bytes,
        }
    }

    /// Bytes stored.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Mapped(m) => m.len,
            Repr::Heap(bytes) => bytes.len(),
        }
    }

    /// Whether no bytes are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes are mapped from the scratch file (else a heap copy, which `release`
    /// leaves alone).
    pub fn is_mapped(&self) -> bool {
        matches!(self.repr, Repr::Mapped(_))
    }

    /// Drops the bytes' pages from the process's resident set; every slice handed out stays
    /// valid and reads the same bytes (faulted back from the page cache or the file).
    pub fn release(&self) {
        if let Repr::Mapped(m) = &self.repr {
            // SAFETY: `ptr..ptr + map_len` is our own live shared file mapping; MADV_DONTNEED on
            // a MAP_SHARED file mapping only unmaps its pages, the contents stay in the file
            // (nothing is discarded, so live slices keep reading the same bytes).
            let rc =
                unsafe { libc::madvise(m.ptr.as_ptr().cast(), m.map_len, libc::MADV_DONTNEED) };
            if rc == 0 {
                self.arena.releases.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for StableBytes {
    fn drop(&mut self) {
        self.arena.regions.fetch_sub(1, Ordering::Relaxed);
        self.arena
            .bytes
            .fetch_sub(self.len() as u64, Ordering::Relaxed);
        if let Repr::Mapped(m) = &self.repr {
            // SAFETY: the mapping is ours and `&mut self` proves no slice of it is borrowed.
            unsafe { libc::munmap(m.ptr.as_ptr().cast(), m.map_len) };
            if let Some(file) = &self.arena.file {
                self.arena.free_range(file, m.offset, m.map_len as u64);
            }
        }
    }
}

/// Maps `len` bytes at `offset` of `file` read-only and shared.
fn map_shared(file: &File, offset: u64, len: usize) -> io::Result<NonNull<u8>> {
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
    // SAFETY: a fresh mapping chosen by the kernel (no address hint), of a file range we
    // just wrote; it overlaps no Rust object. Failure is reported as MAP_FAILED.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            off,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// `fallocate(PUNCH_HOLE | KEEP_SIZE)` over `len` bytes at `offset`.
fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let to_off = |x: u64| {
        libc::off_t::try_from(x)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))
    };
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate takes no pointers; the descriptor is open for the borrow of `file`.
    if unsafe { libc::fallocate(file.as_raw_fd(), mode, to_off(offset)?, to_off(len)?) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The system's page size (mapping offsets must be multiples of it).
fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// Whether `file` lives on a filesystem kept in RAM (tmpfs, ramfs).
fn in_ram(file: &File) -> io::Result<bool> {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable statfs; the descriptor is open for the borrow.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut stat) } < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let kind = stat.f_type as i64;
    Ok(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages of the mapping of `bytes` in this process (its `Rss:` in smaps; the
    /// page cache does not count, as `mincore` would).
    fn resident_pages(bytes: &StableBytes) -> usize {
        let Repr::Mapped(m) = &bytes.repr else {
            return 0;
        };
        let start = format!("{:x}-", m.ptr.as_ptr() as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines.next().expect("the mapping is listed");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        let kib: usize = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 4
    }

    #[test]
    fn write_read_release_read_again() {
        let dir = std::env::temp_dir();
        let Ok(arena) = StableArena::new(&dir) else {
            eprintln!("skipped: {} is on tmpfs", dir.display());
            return;
        };
        let data: Vec<u8> = (0..3 << 20)
            .map(|i: u32| (i * 7 + i / 4096) as u8)
            .collect();
        let a = arena.store(&data);
        let b = arena.store(b"hello, stable");
        assert!(a.is_mapped() && b.is_mapped());
        let slice: &[u8] = a.as_bytes(); // a borrow that outlives the release below
        assert_eq!(slice, &data[..]);
        assert_eq!(b.as_bytes(), b"hello, stable");
        assert!(resident_pages(&a) > 0, "read pages are resident");
        a.release();
        assert_eq!(
            resident_pages(&a),
            0,
            "released pages leave the resident set"
        );
        assert_eq!(slice, &data[..], "and read back the same bytes");
        assert!(resident_pages(&a) > 0);
        let stats = arena.stats();
        assert_eq!((stats.regions, stats.heap_bytes), (2, 0));
        assert_eq!(stats.bytes, data.len() as u64 + 13);
        assert!(stats.releases >= 1);
        drop(a);
        // The freed range is reused once nothing is live, and reads the new bytes.
        drop(b);
        let c = arena.store(&[9u8; 5000]);
        assert_eq!(c.as_bytes(), &[9u8; 5000][..]);
        let empty = arena.store(&[]);
        assert!(empty.is_empty() && empty.as_bytes().is_empty());
        assert_eq!(arena.stats().regions, 2);
    }

    #[test]
    fn tmpfs_is_refused_and_heap_fallback_counts() {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            if let Err(e) = StableArena::new(shm) {
                assert_eq!(e.kind(), io::ErrorKind::Unsupported);
                let arena = StableArena::new_or_heap(shm);
                assert!(!arena.is_mapped());
                let bytes = arena.store(b"abc");
                bytes.release();
                assert_eq!(bytes.as_bytes(), b"abc");
                assert_eq!(arena.stats().heap_bytes, 3);
            }
        }
        let heap = StableArena::heap();
        assert_eq!(heap.store(b"xy").as_bytes(), b"xy");
    }
}

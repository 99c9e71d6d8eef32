//! The swap extent store: a pool-owned anonymous arena pushed out to swap with
//! `MADV_PAGEOUT`.
//!
//! For machines that have a swap device and no scratch filesystem. Extents are copied into
//! one large `MAP_NORESERVE` anonymous mapping (the *arena*) and then advised out with
//! `MADV_PAGEOUT`; reading one is a copy out of the arena, and the kernel swaps the pages
//! back in on the way. Swap-in is several times slower than explicit reads of a file extent
//! (see the brief), so this is never the default.
//!
//! # Layout
//! The arena is carved into [`SWAP_SEGMENT_BYTES`] segments, claimed by extent classes on
//! demand (a class claims its next segment when its slots run out) and never given back. A
//! segment of class `c` holds `SWAP_SEGMENT_BYTES / extent_class_size(c)` slots, so slot `s`
//! of class `c` lives at `segments[c][s / per_segment] + (s % per_segment) * class size`.
//! Unlike a fixed split of the arena per class, space goes to whichever classes the workload
//! uses. When no segment is left, `write` returns [`StoreError::NoSpace`]. Untouched parts of
//! the arena cost neither memory nor swap.
//!
//! # Residency is observed, not trusted
//! `MADV_PAGEOUT` is advisory: the kernel may decline pages. Written extents enter a FIFO;
//! while the FIFO holds more than [`SwapStoreOptions::rss_target`] bytes, the writer advises
//! the oldest extent out, then reads its pages' entries in `/proc/self/pagemap` (bit 63:
//! present in RAM; `mincore` would also count pages in the swap cache) and advises again, up
//! to [`SwapStoreOptions::max_pageout_retries`] times, while any page is still present.
//! Retries count as `pageout_retries`; an extent with pages still present after the last
//! retry counts as `pageout_declined` (its data is intact, just resident). If
//! `/proc/self/pagemap` cannot be opened, residency is not observed: each extent is advised
//! once and nothing is counted.
//!
//! # Swap exhaustion
//! A full swap device does not fail a write into the arena: the kernel runs out of places to
//! put anonymous pages and the OOM killer ends the process. So before every write the store
//! reads `SwapFree` from `/proc/meminfo` and refuses the write with [`StoreError::NoSpace`]
//! unless the frame, the extents written but not yet paged out, and a margin of
//! [`SWAP_FREE_MARGIN`] all fit: the pool then keeps the chunk resident and degrades as with a
//! full disk (`write_nospace`), resuming when extents are freed. If `/proc/meminfo` cannot be
//! read, writes are not checked.
//!
//! # Invariants
//! - The arena mapping lives exactly as long as the store; every pointer into it is computed
//!   from a slot address checked against the claimed segments, and ranges never cross a slot
//!   boundary, so every access lies inside the mapping.
//! - The allocator gives each live extent its own slot: live extents occupy disjoint ranges.
//! - Every copy into or out of a slot, and the `MADV_DONTNEED` that frees it, holds the slot's
//!   stripe lock (write for writes and frees, read for reads). A read of a stale address, a
//!   caller bug, thus returns wrong bytes (caught by the frame checksum), never a data race.
//! - `free` releases the slot's memory and swap space (`MADV_DONTNEED`) before the slot can
//!   be handed out again.
//!
//! Built with the `heap-regions` feature (for Miri), the swap store is unavailable:
//! [`SwapStore::new`] returns [`ConfigError::Invalid`].

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use super::alloc::{extent_class_of, extent_class_size, SlotAllocator, EXTENT_CLASSES};
use super::{ExtentAddr, ExtentStore, StoreCounters, StoreError, EXTENT_ALIGN};
use crate::aligned::AlignedBuf;
use crate::error::ConfigError;

/// Unit in which extent classes claim arena space.
pub const SWAP_SEGMENT_BYTES: usize = 32 << 20;

/// Swap that must stay free after a write (besides the frame and the extents still waiting
/// for pageout): headroom for the rest of the system and for pages the kernel swaps on its own.
pub const SWAP_FREE_MARGIN: u64 = 64 << 20;

/// Free swap in bytes, from `SwapFree` in `/proc/meminfo`; `None` if it cannot be read.
fn free_swap_from_meminfo() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_swap_free(&meminfo)
}

/// The `SwapFree:  123456 kB` line of `/proc/meminfo`, in bytes.
fn parse_swap_free(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("SwapFree:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Number of stripe locks serializing access to slots (by slot hash).
const SLOT_STRIPES: usize = 64;

/// `/proc/self/pagemap` entry bit: the page is present in RAM.
const PAGEMAP_PRESENT: u64 = 1 << 63;

/// Whether an active swap area with non-zero size exists, according to `/proc/swaps`.
pub fn swap_available() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|swaps| swaps_lists_an_area(&swaps))
}

/// Parses `/proc/swaps` (`Filename Type Size Used Priority`, header first; blanks in file
/// names are escaped as `\040`): true if any area has a non-zero size.
fn swaps_lists_an_area(swaps: &str) -> bool {
    swaps.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(2)
            .and_then(|size| size.parse::<u64>().ok())
            .is_some_and(|size| size > 0)
    })
}

/// How a [`SwapStore`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapStoreOptions {
    /// Address space reserved for the arena (no memory or swap is committed up front).
    /// Rounded down to whole 32 MiB segments. Default 64 GiB.
    pub arena_bytes: usize,
    /// Bytes of written extents allowed to stay resident before the oldest are paged out.
    /// Default 0: each extent is paged out right after it is written.
    pub rss_target: u64,
    /// Extra `MADV_PAGEOUT` calls for an extent whose pages are still present. Default 3.
    pub max_pageout_retries: u32,
}

impl Default for SwapStoreOptions {
    fn default() -> Self {
        SwapStoreOptions {
            arena_bytes: 64 << 30,
            rss_target: 0,
            max_pageout_retries: 3,
        }
    }
}

/// The anonymous mapping, unmapped on drop.
struct Arena {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the arena is plain memory owned by the store; all access to its bytes goes through
// the store, which serializes conflicting slot accesses with its stripe locks.
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

impl Arena {
    fn reserve(len: usize) -> io::Result<Arena> {
        // SAFETY: a fresh anonymous private mapping at an address the kernel picks; it
        // overlaps no existing Rust object. MAP_NORESERVE commits no swap up front.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(raw.cast::<u8>()).ok_or_else(|| io::Error::other("mmap at 0"))?;
        let arena = Arena { base, len };
        // Extents are at most a few MiB and paged out one by one: huge pages would only make
        // the kernel split them (or swap 2 MiB for a 4 KiB extent).
        if let Err(error) = arena.advise(0, len, libc::MADV_NOHUGEPAGE) {
            tracing::debug!(%error, "MADV_NOHUGEPAGE refused on the swap arena");
        }
        Ok(arena)
    }

    /// `madvise(advice)` on `len` bytes at `offset`.
    fn advise(&self, offset: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
        debug_assert!(offset.is_multiple_of(EXTENT_ALIGN) && offset + len <= self.len);
        // SAFETY: the range lies inside the mapping (callers pass checked slot ranges, and
        // the assertion above restates it); the advice values used (NOHUGEPAGE, PAGEOUT,
        // DONTNEED) never unmap memory. DONTNEED zeroes the range, which callers only do to
        // free slots while holding the slot's stripe write lock, so no Rust reference
        // observes the change.
        let status = unsafe { libc::madvise(self.base.as_ptr().add(offset).cast(), len, advice) };
        if status < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `base..base + len` is the mapping made in `reserve`, unmapped once, here;
        // the store holding the arena is being dropped, so no access into it remains.
        if unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) } < 0 {
            tracing::warn!(error = %io::Error::last_os_error(), "munmap of the swap arena failed");
        }
    }
}

/// The allocator and the segments each class has claimed.
#[derive(Debug)]
struct SwapSlots {
    slots: SlotAllocator,
    /// Arena offsets of the segments each class has claimed, in claim order.
    segments: Vec<Vec<usize>>,
    /// Arena offset of the next unclaimed segment.
    next_segment: usize,
}

impl SwapSlots {
    fn slots_per_segment(class: u16) -> usize {
        SWAP_SEGMENT_BYTES / extent_class_size(class)
    }

    /// Arena offset of a slot, if its segment has been claimed.
    fn slot_offset(&self, addr: ExtentAddr) -> Option<usize> {
        let per_segment = Self::slots_per_segment(addr.class);
        let slot = addr.slot as usize;
        let segment = self
            .segments
            .get(usize::from(addr.class))?
            .get(slot / per_segment)?;
        Some(segment + (slot % per_segment) * extent_class_size(addr.class))
    }
}

/// A written extent that may still be resident.
#[derive(Clone, Copy, Debug)]
struct PendingExtent {
    addr: ExtentAddr,
    offset: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct PendingPageouts {
    queue: VecDeque<PendingExtent>,
    bytes: u64,
}

/// The swap extent store: extents copied into a pool-owned `MAP_NORESERVE` arena and pushed
/// to swap with `MADV_PAGEOUT`; residency is checked in `/proc/self/pagemap` and the pageout
/// retried a bounded number of times (`pageout_retries`, `pageout_declined`). For machines
/// with a swap device and no scratch filesystem; never the default.
pub struct SwapStore {
    arena: Arena,
    options: SwapStoreOptions,
    slots: Mutex<SwapSlots>,
    stripes: Box<[RwLock<()>]>,
    pending: Mutex<PendingPageouts>,
    /// `/proc/self/pagemap`, if it could be opened.
    pagemap: Option<File>,
    live_bytes: AtomicU64,
    pageout_retries: AtomicU64,
    pageout_declined: AtomicU64,
    /// Where free swap is read before each write (`/proc/meminfo`; tests substitute it).
    free_swap: fn() -> Option<u64>,
}

impl SwapStore {
    /// Reserves the arena. Fails with [`ConfigError::NoSwap`] when no swap area is active,
    /// [`ConfigError::Invalid`] for an arena smaller than one segment, a page size other than
    /// 4 KiB, or a `heap-regions` build, and [`ConfigError::ArenaReserve`] when the address
    /// space cannot be reserved.
    pub fn new(options: SwapStoreOptions) -> Result<SwapStore, ConfigError> {
        Self::build(options, true)
    }

    /// `new`, optionally without requiring swap (unit tests exercise the arena logic on
    /// machines without swap; pageouts are then simply declined).
    fn build(options: SwapStoreOptions, require_swap: bool) -> Result<SwapStore, ConfigError> {
        if cfg!(feature = "heap-regions") {
            return Err(ConfigError::Invalid(
                "the swap extent backend needs mmap; this build uses heap-regions".into(),
            ));
        }
        let arena_bytes = options.arena_bytes - options.arena_bytes % SWAP_SEGMENT_BYTES;
        if arena_bytes == 0 {
            return Err(ConfigError::Invalid(format!(
                "swap arena of {} bytes is smaller than one {SWAP_SEGMENT_BYTES}-byte segment",
                options.arena_bytes
            )));
        }
        // SAFETY: sysconf takes no pointers.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page_size != EXTENT_ALIGN as libc::c_long {
            return Err(ConfigError::Invalid(format!(
                "the swap extent backend needs {EXTENT_ALIGN}-byte pages; this system uses \
                 {page_size}"
            )));
        }
        if require_swap && !swap_available() {
            return Err(ConfigError::NoSwap);
        }
        let arena = Arena::reserve(arena_bytes).map_err(|source| ConfigError::ArenaReserve {
            bytes: arena_bytes,
            source,
        })?;
        let pagemap = match File::open("/proc/self/pagemap") {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(%error, "cannot open /proc/self/pagemap; swap pageouts are not verified");
                None
            }
        };
        Ok(SwapStore {
            arena,
            options: SwapStoreOptions {
                arena_bytes,
                ..options
            },
            slots: Mutex::new(SwapSlots {
                slots: SlotAllocator::with_slot_limit(0),
                segments: vec![Vec::new(); EXTENT_CLASSES],
                next_segment: 0,
            }),
            stripes: (0..SLOT_STRIPES).map(|_| RwLock::new(())).collect(),
            pending: Mutex::new(PendingPageouts::default()),
            pagemap,
            live_bytes: AtomicU64::new(0),
            pageout_retries: AtomicU64::new(0),
            pageout_declined: AtomicU64::new(0),
            // Unit tests without swap exercise the arena: no free-swap check for them.
            free_swap: if require_swap {
                free_swap_from_meminfo
            } else {
                || None
            },
        })
    }

    /// The options in effect (`arena_bytes` rounded down to whole segments).
    pub fn options(&self) -> SwapStoreOptions {
        self.options
    }

    /// Whether residency is observed through `/proc/self/pagemap`.
    pub fn observes_residency(&self) -> bool {
        self.pagemap.is_some()
    }

    /// Bytes of written extents not yet advised out (at most `rss_target` between writes).
    pub fn pending_pageout_bytes(&self) -> u64 {
        self.lock_pending().bytes
    }

    /// Pages of the extent at `addr` (of length `len`) present in RAM right now, per
    /// `/proc/self/pagemap`; `None` if residency cannot be observed or `addr` is unknown.
    pub fn resident_pages(&self, addr: ExtentAddr, len: usize) -> Option<usize> {
        let offset = self.checked_offset(addr, len).ok()?;
        self.count_resident_pages(offset, len.next_multiple_of(EXTENT_ALIGN))
    }

    fn lock_slots(&self) -> MutexGuard<'_, SwapSlots> {
        // Allocator updates cannot panic half-way, so a poisoned lock is still consistent.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_pending(&self) -> MutexGuard<'_, PendingPageouts> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stripe(&self, addr: ExtentAddr) -> &RwLock<()> {
        let hash = (usize::from(addr.class) << 24) ^ addr.slot as usize;
        &self.stripes[hash % SLOT_STRIPES]
    }

    /// A free slot of `class` and its arena offset, claiming a segment if the class has none
    /// free; `NoSpace` when the arena has no segment left.
    fn alloc_slot(&self, class: u16) -> Result<(ExtentAddr, usize), StoreError> {
        let mut state = self.lock_slots();
        let slot = match state.slots.alloc(class) {
            Some(grant) => grant.slot,
            None => {
                if state.next_segment + SWAP_SEGMENT_BYTES > self.arena.len {
                    return Err(StoreError::NoSpace);
                }
                let segment = state.next_segment;
                state.next_segment += SWAP_SEGMENT_BYTES;
                state.segments[usize::from(class)].push(segment);
                let limit = state.slots.slot_limit(class);
                let per_segment = SwapSlots::slots_per_segment(class) as u32;
                state.slots.set_slot_limit(class, limit + per_segment);
                state.slots.alloc(class).ok_or(StoreError::NoSpace)?.slot
            }
        };
        let addr = ExtentAddr { class, slot };
        let offset = state.slot_offset(addr).ok_or(StoreError::NoSpace)?;
        Ok((addr, offset))
    }

    /// Arena offset of `addr`, checked: a claimed slot, and `len` fits in it.
    fn checked_offset(&self, addr: ExtentAddr, len: usize) -> io::Result<usize> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        if usize::from(addr.class) >= EXTENT_CLASSES {
            return Err(invalid(format!(
                "extent class {} does not exist",
                addr.class
            )));
        }
        if len > extent_class_size(addr.class) {
            return Err(invalid(format!(
                "length {len} exceeds the {}-byte slots of class {}",
                extent_class_size(addr.class),
                addr.class
            )));
        }
        self.lock_slots()
            .slot_offset(addr)
            .ok_or_else(|| invalid("no extent was ever stored at this address".into()))
    }

    /// Queues a written extent for pageout, then pages out the oldest ones while more than
    /// `rss_target` bytes are queued.
    fn queue_pageout(&self, extent: PendingExtent) {
        let due: Vec<PendingExtent> = {
            let mut pending = self.lock_pending();
            pending.queue.push_back(extent);
            pending.bytes += extent.len as u64;
            let mut due = Vec::new();
            while pending.bytes > self.options.rss_target {
                let Some(oldest) = pending.queue.pop_front() else {
                    break;
                };
                pending.bytes -= oldest.len as u64;
                due.push(oldest);
            }
            due
        };
        for extent in due {
            self.page_out(extent);
        }
    }

    /// Advises an extent out and checks that it left RAM, retrying a bounded number of times.
    /// Paging out never changes the data, so a concurrent free and reuse of the slot makes
    /// this at worst page out (or count) the slot's new extent.
    fn page_out(&self, extent: PendingExtent) {
        let PendingExtent { addr, offset, len } = extent;
        for attempt in 0..=self.options.max_pageout_retries {
            if let Err(error) = self.arena.advise(offset, len, libc::MADV_PAGEOUT) {
                tracing::debug!(%addr, %error, "MADV_PAGEOUT failed");
                if self
                    .count_resident_pages(offset, len)
                    .is_some_and(|n| n > 0)
                {
                    self.pageout_declined.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            match self.count_resident_pages(offset, len) {
                None | Some(0) => return,
                Some(_) if attempt < self.options.max_pageout_retries => {
                    self.pageout_retries.fetch_add(1, Ordering::Relaxed);
                }
                Some(resident) => {
                    tracing::trace!(%addr, resident, "kernel declined to page out an extent");
                    self.pageout_declined.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Pages of `len` bytes at arena `offset` present in RAM, per `/proc/self/pagemap`.
    fn count_resident_pages(&self, offset: usize, len: usize) -> Option<usize> {
        let pagemap = self.pagemap.as_ref()?;
        let pages = len.div_ceil(EXTENT_ALIGN);
        let first_page = (self.arena.base.as_ptr() as usize + offset) / EXTENT_ALIGN;
        let mut entries = vec![0u8; pages * 8];
        if let Err(error) = pagemap.read_exact_at(&mut entries, first_page as u64 * 8) {
            tracing::debug!(%error, "reading /proc/self/pagemap failed");
            return None;
        }
        let present = entries
            .chunks_exact(8)
            .filter(|entry| {
                let entry = u64::from_ne_bytes([
                    entry[0], entry[1], entry[2], entry[3], entry[4], entry[5], entry[6], entry[7],
                ]);
                entry & PAGEMAP_PRESENT != 0
            })
            .count();
        Some(present)
    }
}

impl ExtentStore for SwapStore {
    fn name(&self) -> &'static str {
        "swap"
    }

    /// # Panics
    /// If `frame` is longer than the largest extent class (10 MiB) (the codec never produces
    /// such frames).
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError> {
        let class = extent_class_of(frame.len().max(1));
        if let Some(free) = (self.free_swap)() {
            let needed = frame.len() as u64 + self.pending_pageout_bytes() + SWAP_FREE_MARGIN;
            if free < needed {
                tracing::debug!(free, needed, "swap nearly exhausted: refusing an extent");
                return Err(StoreError::NoSpace);
            }
        }
        let (addr, offset) = self.alloc_slot(class)?;
        {
            let _exclusive = self.stripe(addr).write().unwrap_or_else(|p| p.into_inner());
            // SAFETY: `offset` is the start of a slot of `class` inside the arena mapping
            // (alloc_slot computed it from a claimed segment), and `frame.len()` is at most
            // the class size, so the destination range lies inside the mapping, which lives
            // as long as `self`. The slot was just allocated to this call, so no other write
            // targets it, and the stripe write lock excludes stale readers. The source is a
            // Rust slice and cannot overlap the arena, which no safe reference points into.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    frame.as_ptr(),
                    self.arena.base.as_ptr().add(offset),
                    frame.len(),
                );
            }
        }
        self.live_bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        let len = frame.len().next_multiple_of(EXTENT_ALIGN);
        if len > 0 {
            self.queue_pageout(PendingExtent { addr, offset, len });
        }
        Ok(addr)
    }

    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError> {
        buf.clear();
        let offset = self
            .checked_offset(addr, len)
            .map_err(|source| StoreError::Io {
                op: "read",
                addr,
                source,
            })?;
        buf.resize(len);
        let _shared = self.stripe(addr).read().unwrap_or_else(|p| p.into_inner());
        // SAFETY: checked_offset proved `offset..offset + len` lies inside one slot of a
        // claimed segment, inside the arena mapping that lives as long as `self`. Writers and
        // frees of this slot hold the stripe write lock, so nothing writes the range while we
        // copy. `buf` holds `len` bytes and is a separate allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.arena.base.as_ptr().add(offset),
                buf.as_mut_slice().as_mut_ptr(),
                len,
            );
        }
        Ok(())
    }

    /// Releases the slot's memory and swap space (`MADV_DONTNEED`) and drops the extent from
    /// the pageout queue if it is still there.
    fn free(&self, addr: ExtentAddr, len: usize) {
        let Ok(offset) = self.checked_offset(addr, len) else {
            debug_assert!(false, "free of an invalid extent {addr} ({len} bytes)");
            return;
        };
        {
            let mut pending = self.lock_pending();
            if !pending.queue.is_empty() {
                let mut dropped = 0;
                pending.queue.retain(|queued| {
                    let keep = queued.addr != addr;
                    if !keep {
                        dropped += queued.len as u64;
                    }
                    keep
                });
                pending.bytes -= dropped;
            }
        }
        {
            let _exclusive = self.stripe(addr).write().unwrap_or_else(|p| p.into_inner());
            let class_size = extent_class_size(addr.class);
            if let Err(error) = self.arena.advise(offset, class_size, libc::MADV_DONTNEED) {
                tracing::warn!(%addr, %error, "MADV_DONTNEED failed; the slot stays committed");
            }
        }
        self.lock_slots().slots.free(addr.class, addr.slot);
        self.live_bytes.fetch_sub(len as u64, Ordering::Relaxed);
    }

    fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    fn counters(&self) -> StoreCounters {
        StoreCounters {
            pageout_retries: self.pageout_retries.load(Ordering::Relaxed),
            pageout_declined: self.pageout_declined.load(Ordering::Relaxed),
            ..StoreCounters::default()
        }
    }
}

impl fmt::Debug for SwapStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwapStore")
            .field("options", &self.options)
            .field("observes_residency", &self.observes_residency())
            .field("live_bytes", &self.live_bytes())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pages: usize, seed: u8) -> AlignedBuf {
        let mut buf = AlignedBuf::with_capacity(pages * EXTENT_ALIGN);
        buf.resize(pages * EXTENT_ALIGN);
        for (i, byte) in buf.as_mut_slice().iter_mut().enumerate() {
            *byte = seed.wrapping_add((i / 13) as u8) | 1;
        }
        buf
    }

    /// A store over a small arena that works without swap (pageouts are then declined).
    fn arena_store(segments: usize, rss_target: u64) -> SwapStore {
        let options = SwapStoreOptions {
            arena_bytes: segments * SWAP_SEGMENT_BYTES,
            rss_target,
            max_pageout_retries: 2,
        };
        SwapStore::build(options, false).expect("reserve arena")
    }

    static FAKE_SWAP_FREE: AtomicU64 = AtomicU64::new(0);

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn nearly_exhausted_swap_refuses_writes_as_no_space() {
        let mut store = arena_store(1, 0);
        store.free_swap = || Some(FAKE_SWAP_FREE.load(Ordering::SeqCst));
        let page = frame(1, 1);
        FAKE_SWAP_FREE.store(SWAP_FREE_MARGIN + 4 * EXTENT_ALIGN as u64, Ordering::SeqCst);
        let addr = store
            .write(page.as_slice())
            .expect("room for a page and the margin");
        FAKE_SWAP_FREE.store(SWAP_FREE_MARGIN + 100, Ordering::SeqCst);
        assert!(matches!(
            store.write(page.as_slice()),
            Err(StoreError::NoSpace)
        ));
        assert_eq!(store.live_bytes(), EXTENT_ALIGN as u64, "nothing stored");
        // Swap freed elsewhere: writes resume.
        store.free(addr, EXTENT_ALIGN);
        FAKE_SWAP_FREE.store(1 << 30, Ordering::SeqCst);
        store.write(page.as_slice()).expect("room again");
    }

    #[test]
    fn meminfo_swap_free_parsing() {
        let meminfo = "MemTotal:  1000 kB\nSwapTotal:  2048 kB\nSwapFree:   1024 kB\n";
        assert_eq!(parse_swap_free(meminfo), Some(1 << 20));
        assert_eq!(parse_swap_free("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn proc_swaps_parsing() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!swaps_lists_an_area(header));
        assert!(!swaps_lists_an_area(""));
        assert!(swaps_lists_an_area(&format!(
            "{header}/root/swap\\040file                      file\t\t1048572\t\t0\t\t-2\n"
        )));
        assert!(!swaps_lists_an_area(&format!(
            "{header}/dev/zram0 partition 0 0 100\n"
        )));
    }

    #[test]
    #[cfg(feature = "heap-regions")]
    fn heap_regions_builds_have_no_swap_store() {
        let error = SwapStore::new(SwapStoreOptions::default()).expect_err("heap-regions");
        assert!(matches!(error, ConfigError::Invalid(_)), "{error}");
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn new_refuses_without_swap_or_with_a_tiny_arena() {
        if !swap_available() {
            assert!(matches!(
                SwapStore::new(SwapStoreOptions::default()),
                Err(ConfigError::NoSwap)
            ));
        }
        let tiny = SwapStoreOptions {
            arena_bytes: SWAP_SEGMENT_BYTES - 1,
            ..Default::default()
        };
        assert!(matches!(SwapStore::new(tiny), Err(ConfigError::Invalid(_))));
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn write_read_free_reuse_in_the_arena() {
        let store = arena_store(2, 0);
        let a = frame(3, 1);
        let b = frame(3, 2);
        let addr_a = store.write(a.as_slice()).unwrap();
        let addr_b = store.write(b.as_slice()).unwrap();
        assert_ne!(addr_a, addr_b);
        assert_eq!(store.live_bytes(), 6 * EXTENT_ALIGN as u64);
        assert_eq!(
            store.pending_pageout_bytes(),
            0,
            "rss_target 0 pages out every write"
        );
        let mut out = AlignedBuf::new();
        store.read(addr_a, a.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), a.as_slice());
        store.free(addr_a, a.len());
        assert_eq!(store.live_bytes(), 3 * EXTENT_ALIGN as u64);
        // The freed range was released: it reads back as zeros until rewritten.
        let offset = store.checked_offset(addr_a, a.len()).unwrap();
        // SAFETY: the offset was checked to lie inside the arena; no writer is active.
        let first = unsafe { *store.arena.base.as_ptr().add(offset) };
        assert_eq!(first, 0);
        let addr_c = store.write(b.as_slice()).unwrap();
        assert_eq!(addr_c, addr_a);
        store.read(addr_c, b.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), b.as_slice());
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn classes_claim_segments_until_the_arena_is_full() {
        let store = arena_store(2, 0);
        let small = frame(1, 3);
        let big = frame(2048, 4); // 8 MiB: 4 slots per segment
        let small_addr = store.write(small.as_slice()).unwrap();
        let mut big_addrs = Vec::new();
        for _ in 0..4 {
            big_addrs.push(store.write(big.as_slice()).unwrap());
        }
        assert!(matches!(
            store.write(big.as_slice()),
            Err(StoreError::NoSpace)
        ));
        assert!(matches!(
            store.write(frame(2, 5).as_slice()),
            Err(StoreError::NoSpace)
        ));
        // The classes that own segments still have room, and nothing written was lost.
        store.write(small.as_slice()).unwrap();
        store.free(big_addrs[1], big.len());
        let again = store.write(big.as_slice()).unwrap();
        assert_eq!(again, big_addrs[1]);
        let mut out = AlignedBuf::new();
        store.read(small_addr, small.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), small.as_slice());
        for addr in [big_addrs[0], big_addrs[3]] {
            store.read(addr, big.len(), &mut out).unwrap();
            assert_eq!(out.as_slice(), big.as_slice());
        }
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn rss_target_keeps_recent_extents_queued() {
        let store = arena_store(1, 4 * EXTENT_ALIGN as u64);
        let f = frame(2, 6);
        let first = store.write(f.as_slice()).unwrap();
        store.write(f.as_slice()).unwrap();
        assert_eq!(store.pending_pageout_bytes(), 4 * EXTENT_ALIGN as u64);
        store.write(f.as_slice()).unwrap();
        assert_eq!(store.pending_pageout_bytes(), 4 * EXTENT_ALIGN as u64);
        store.free(first, f.len());
        assert_eq!(
            store.pending_pageout_bytes(),
            4 * EXTENT_ALIGN as u64,
            "first was paged out"
        );
        let queued = store.lock_pending().queue[0].addr;
        store.free(queued, f.len());
        assert_eq!(store.pending_pageout_bytes(), 2 * EXTENT_ALIGN as u64);
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn pageout_outcome_is_observed() {
        let store = arena_store(1, 0);
        let f = frame(4, 7);
        let addr = store.write(f.as_slice()).unwrap();
        let counters = store.counters();
        let resident = store.resident_pages(addr, f.len());
        if !store.observes_residency() {
            assert_eq!(resident, None);
            assert_eq!(counters, StoreCounters::default());
        } else if swap_available() {
            // The kernel may decline; every outcome is counted consistently.
            let declined = resident.is_some_and(|n| n > 0);
            assert_eq!(counters.pageout_declined, u64::from(declined));
        } else {
            // Without swap, anonymous pages cannot leave RAM: every retry, then a decline.
            assert_eq!(resident, Some(4));
            assert_eq!(counters.pageout_retries, 2);
            assert_eq!(counters.pageout_declined, 1);
        }
        let mut out = AlignedBuf::new();
        store.read(addr, f.len(), &mut out).unwrap();
        assert_eq!(out.as_slice(), f.as_slice());
    }

    #[test]
    #[cfg_attr(any(miri, feature = "heap-regions"), ignore = "needs mmap")]
    fn bad_addresses_are_errors() {
        let store = arena_store(1, 0);
        let mut out = AlignedBuf::new();
        let unclaimed = ExtentAddr { class: 5, slot: 0 };
        assert!(matches!(
            store.read(unclaimed, EXTENT_ALIGN, &mut out),
            Err(StoreError::Io { op: "read", addr, .. }) if addr == unclaimed
        ));
        let addr = store.write(frame(1, 8).as_slice()).unwrap();
        assert!(store.read(addr, 2 * EXTENT_ALIGN, &mut out).is_err());
        let beyond = ExtentAddr {
            class: addr.class,
            slot: 1 << 20,
        };
        assert!(store.read(beyond, EXTENT_ALIGN, &mut out).is_err());
    }
}

//! Layer 1: the extent stores.
//!
//! An *extent* is the stored form of one evicted chunk: the bytes the [`crate::codec`] produced
//! (lz4 or raw), sized to their actual length rounded up to a 4 KiB page, never to lz4's
//! worst case. The frame metadata (codec, lengths, crc32c) stays in memory with the chunk, so
//! an extent on the device is nothing but payload; a misdirected or torn read is caught by the
//! checksum when the pool decodes it.
//!
//! # Invariants every store keeps
//! - `write` either stores all of `frame` and returns an address, or returns an error and
//!   stores nothing that a later `read` could return. It never panics on I/O failure.
//! - An address returned by `write` stays valid, and its bytes unchanged, until `free`.
//! - `read` returns exactly the bytes written (or an error naming the address); the caller
//!   verifies the checksum, the store does not.
//! - Stores are `Send + Sync`; concurrent calls on distinct addresses are allowed.
//!
//! Backends: [`file::FileStore`] (the default: `O_TMPFILE` files per extent class, `O_DIRECT`
//! where accepted), [`swap::SwapStore`] (an anonymous arena pushed out with `MADV_PAGEOUT`),
//! and [`memory::MemoryStore`] (compressed bytes kept in RAM).

use std::fmt;
use std::io;

use crate::aligned::AlignedBuf;

pub(crate) mod alloc;
pub(crate) mod file;
pub(crate) mod memory;
pub(crate) mod swap;

#[cfg(test)]
mod tests;

/// Granularity of extent sizes and I/O: one page. Frames handed to `write` are padded to it.
pub const EXTENT_ALIGN: usize = 4096;

/// Where an extent lives: the store's size class and the slot within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtentAddr {
    /// Extent size class: 41 classes from 4 KiB to 10 MiB (at most 25 % space waste).
    pub class: u16,
    /// Slot index within that class.
    pub slot: u32,
}

impl fmt::Display for ExtentAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "class {} ({} KiB) slot {}",
            self.class,
            alloc::extent_class_size(self.class) / 1024,
            self.slot
        )
    }
}

/// Why a store could not write or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device (or the store's configured capacity) is full. The pool keeps the chunk
    /// resident and retries later; nothing is lost.
    #[error("extent store is full")]
    NoSpace,
    /// Any other I/O failure, with the operation and address it happened on.
    #[error("{op} of extent {addr} failed: {source}")]
    Io {
        /// The operation (`write`, `read`, `open`, ...).
        op: &'static str,
        /// The extent it was for.
        addr: ExtentAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// A backend that stores frames as extents.
pub trait ExtentStore: Send + Sync + 'static {
    /// Short backend name for logs and metrics (`file`, `swap`, `memory`).
    fn name(&self) -> &'static str;

    /// Stores `frame` and returns its address. `frame` is page-aligned in memory, and its
    /// length is a multiple of [`EXTENT_ALIGN`] (the codec pads it).
    fn write(&self, frame: &[u8]) -> Result<ExtentAddr, StoreError>;

    /// Reads the `len` bytes (a multiple of [`EXTENT_ALIGN`], as written) of the extent at
    /// `addr` into `buf`, replacing its contents.
    fn read(&self, addr: ExtentAddr, len: usize, buf: &mut AlignedBuf) -> Result<(), StoreError>;

    /// Whether extents at consecutive slots of one class are adjacent in one address range,
    /// so that [`ExtentStore::read_span`] can fetch several with one transfer.
    fn reads_spans(&self) -> bool {
        false
    }

    /// Reads the extents at slots `first.slot .. first.slot + count` of `first.class` with one
    /// transfer into `buf` (replacing its contents): every extent but the last is read with
    /// its whole class slot, the last with `last_len` bytes (its padded length), so extent `i`
    /// starts at `i * extent_class_size(first.class)`. Stores that do not
    /// [`read spans`](ExtentStore::reads_spans) only accept `count == 1`.
    fn read_span(
        &self,
        first: ExtentAddr,
        count: u32,
        last_len: usize,
        buf: &mut AlignedBuf,
    ) -> Result<(), StoreError> {
        if count == 1 {
            return self.read(first, last_len, buf);
        }
        Err(StoreError::Io {
            op: "read span",
            addr: first,
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the {} store reads one extent at a time", self.name()),
            ),
        })
    }

    /// Releases the extent at `addr` (of padded length `len`). The address may be reused.
    fn free(&self, addr: ExtentAddr, len: usize);

    /// Bytes currently held by live extents (padded lengths).
    fn live_bytes(&self) -> u64;

    /// Store-specific counters (zeros where a store has none).
    fn counters(&self) -> StoreCounters {
        StoreCounters::default()
    }
}

/// Store-specific counters, merged into [`crate::PoolStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Free extent ranges returned to the filesystem with `FALLOC_FL_PUNCH_HOLE`.
    pub holes_punched: u64,
    /// Zero bytes written to fill extent slots once, so that the file store's class files
    /// stay dense (see `FileStore`).
    pub fill_bytes: u64,
    /// `MADV_PAGEOUT` calls repeated because pages were still resident afterwards.
    pub pageout_retries: u64,
    /// Extents whose pages stayed resident after the last pageout retry.
    pub pageout_declined: u64,
}

//! Typed errors of the pool and its extent stores.
//!
//! Two families: [`ConfigError`] is returned by [`crate::Pool::new`] before any chunk exists,
//! so a bad configuration never reaches a running dataflow; [`PoolError`] is returned by
//! reads of chunks whose extent cannot be read back intact. Write-side failures never
//! surface as errors to the caller: the chunk stays resident and a counter says why.

use std::io;
use std::path::PathBuf;

use crate::extent::ExtentAddr;

/// A pool configuration that cannot work, found when the pool is built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The budget is zero.
    #[error("pool budget is zero: give a budget of at least one 64 KiB slot")]
    ZeroBudget,
    /// The budget exceeds the machine's usable memory.
    #[error("pool budget {budget} bytes exceeds the machine's usable memory ({limit} bytes)")]
    BudgetTooLarge {
        /// The budget asked for.
        budget: u64,
        /// The machine's usable memory.
        limit: u64,
    },
    /// A size string that [`crate::parse_size`] cannot read.
    #[error("cannot parse size {input:?}: {reason} (examples: 65536, 256MiB, 2GiB, 1.5G)")]
    InvalidSize {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The extent directory cannot hold scratch files.
    #[error("extent directory {path}: {reason}")]
    ExtentDir {
        /// The directory.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
        /// The system error behind it, if any.
        #[source]
        source: Option<io::Error>,
    },
    /// The swap backend was asked for, and no swap device is active.
    #[error("the swap extent backend needs an active swap device, and /proc/swaps lists none")]
    NoSwap,
    /// A slot class's address range could not be reserved.
    #[error("cannot reserve {bytes} bytes of address space for the {class_size}-byte slot class")]
    RegionReserve {
        /// Slot size of the class.
        class_size: usize,
        /// Bytes of address space asked for.
        bytes: usize,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The swap store's arena could not be reserved.
    #[error("cannot reserve {bytes} bytes of address space for the swap extent arena")]
    ArenaReserve {
        /// Bytes of address space asked for.
        bytes: usize,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Any other setting that cannot work, described.
    #[error("invalid pool setting: {0}")]
    Invalid(String),
}

/// A failure to read a chunk back. Never returned as wrong bytes: either the body is intact
/// or the read fails with the extent named.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The store could not read the extent.
    #[error("I/O error reading extent {extent}: {source}")]
    ReadIo {
        /// The extent.
        extent: ExtentAddr,
        /// The store's I/O error.
        #[source]
        source: io::Error,
    },
    /// The extent's bytes do not match the checksum taken when it was written.
    #[error("checksum mismatch in extent {extent}: stored crc32c {expected:#010x}, computed {actual:#010x}")]
    Checksum {
        /// The extent.
        extent: ExtentAddr,
        /// The crc32c recorded at write time.
        expected: u32,
        /// The crc32c of the bytes read.
        actual: u32,
    },
    /// The extent's checksum matched but its frame does not decode to the recorded length.
    #[error("corrupt extent {extent}: {reason}")]
    Corrupt {
        /// The extent.
        extent: ExtentAddr,
        /// What the decoder found.
        reason: String,
    },
}

impl PoolError {
    /// The same failure, reported for `extent`: a coalesced read that failed fails every
    /// extent it was reading, each named in its own error.
    pub fn for_extent(&self, extent: ExtentAddr) -> PoolError {
        match self {
            PoolError::ReadIo { source, .. } => PoolError::ReadIo {
                extent,
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            PoolError::Checksum {
                expected, actual, ..
            } => PoolError::Checksum {
                extent,
                expected: *expected,
                actual: *actual,
            },
            PoolError::Corrupt { reason, .. } => PoolError::Corrupt {
                extent,
                reason: reason.clone(),
            },
        }
    }
}

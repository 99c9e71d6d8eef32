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
    #[error("pool budget is zero: give a budget of at least one 64 KiB slot")]
    ZeroBudget,
    #[error("pool budget {budget} bytes exceeds the machine's usable memory ({limit} bytes)")]
    BudgetTooLarge { budget: u64, limit: u64 },
    #[error("cannot parse size {input:?}: {reason} (examples: 65536, 256MiB, 2GiB, 1.5G)")]
    InvalidSize { input: String, reason: &'static str },
    #[error("extent directory {path}: {reason}")]
    ExtentDir {
        path: PathBuf,
        reason: String,
        #[source]
        source: Option<io::Error>,
    },
    #[error("the swap extent backend needs an active swap device, and /proc/swaps lists none")]
    NoSwap,
    #[error("cannot reserve {bytes} bytes of address space for the {class_size}-byte slot class")]
    RegionReserve {
        class_size: usize,
        bytes: usize,
        #[source]
        source: io::Error,
    },
    #[error("cannot reserve {bytes} bytes of address space for the swap extent arena")]
    ArenaReserve {
        bytes: usize,
        #[source]
        source: io::Error,
    },
    #[error("invalid pool setting: {0}")]
    Invalid(String),
}

/// A failure to read a chunk back. Never returned as wrong bytes: either the body is intact
/// or the read fails with the extent named.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("I/O error reading extent {extent}: {source}")]
    ReadIo {
        extent: ExtentAddr,
        #[source]
        source: io::Error,
    },
    #[error("checksum mismatch in extent {extent}: stored crc32c {expected:#010x}, computed {actual:#010x}")]
    Checksum {
        extent: ExtentAddr,
        expected: u32,
        actual: u32,
    },
    #[error("corrupt extent {extent}: {reason}")]
    Corrupt { extent: ExtentAddr, reason: String },
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

//! Tests that read the process's resident memory (`/proc/self/status`), in a binary of their
//! own so that no other test's memory moves it; they take turns ([`ONE_AT_A_TIME`]), each
//! measured against the RSS it starts from.
//!
//! - [`stable`]: reading a paged arrangement of `(String, String)` twice through cursors
//!   stays within the stable-bytes cap.
//! - [`wide`]: records with 4 KiB and 64 KiB values, arranged and read back, grow RSS by the
//!   budget and a few fixed buffers, not with the data.

use std::sync::Mutex;

use spillway_pool::{Pool, PoolConfig};

#[path = "rss/stable.rs"]
mod stable;
#[path = "rss/wide.rs"]
mod wide;

/// RSS is per process: the tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A `/proc/self/status` field, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        << 10
}

/// `VmRSS`, in bytes.
fn rss() -> u64 {
    status_bytes("VmRSS:")
}

/// A pool of `budget` with its extents and stable bytes in the temporary directory, or
/// `None` (the test is skipped, saying why) where that directory cannot hold a stable scratch
/// file (tmpfs).
fn scratch_pool(budget: u64) -> Option<Pool> {
    let dir = std::env::temp_dir();
    if let Err(e) = spillway_pool::StableArena::new(&dir) {
        eprintln!("skipped: no stable scratch file in {} ({e})", dir.display());
        return None;
    }
    let config = PoolConfig::default()
        .budget(budget)
        .unwrap()
        .extent_dir(&dir);
    Some(Pool::new(config).unwrap())
}

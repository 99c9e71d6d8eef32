//! The process's memory as the kernel counts it (`/proc/self/status`): what every report's
//! `peak_rss_bytes` and `rss_after_scan_bytes` are. Reads never fail: a missing field is 0.

/// A `/proc/self/status` field in bytes (`VmHWM:`, `VmRSS:`); 0 where it cannot be read.
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// The peak resident set size of this process so far (`VmHWM`), in bytes.
pub fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}

/// The resident set size of this process now (`VmRSS`), in bytes.
pub fn current_rss() -> u64 {
    status_bytes("VmRSS:")
}

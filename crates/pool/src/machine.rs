//! What the machine gives us: physical memory, the cgroup memory limit, and swap.
//!
//! Default budgets are derived from *usable* memory: physical RAM clamped by the memory
//! cgroup limit of this process (cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`),
//! never counting swap. Swap is reported separately, for validation of explicit budgets and
//! for the swap extent backend.

use std::fs;
use std::path::Path;

/// Physical RAM in bytes (`sysconf(_SC_PHYS_PAGES) * _SC_PAGESIZE`); 0 when unknown (and
/// under Miri, which cannot ask).
pub fn physical_memory_bytes() -> u64 {
    if cfg!(miri) {
        return 0;
    }
    // SAFETY: sysconf has no preconditions; it returns -1 on error, which we map to 0.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || page <= 0 {
        0
    } else {
        pages as u64 * page as u64
    }
}

/// The memory limit of this process's cgroup, if one is set (v2 `memory.max`, v1
/// `memory.limit_in_bytes`; "max" and v1's near-`i64::MAX` sentinel mean no limit).
pub fn cgroup_memory_limit() -> Option<u64> {
    if cfg!(miri) {
        return None;
    }
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_limit_from(&membership, Path::new("/sys/fs/cgroup"))
}

/// Parses `/proc/self/cgroup` content and reads the limit below `root`. Split out for tests.
pub fn cgroup_limit_from(membership: &str, root: &Path) -> Option<u64> {
    let mut best: Option<u64> = None;
    let mut consider = |v: Option<u64>| {
        if let Some(v) = v {
            best = Some(best.map_or(v, |b| b.min(v)));
        }
    };
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(c), Some(p)) => (id, c, p.trim_start_matches('/')),
            _ => continue,
        };
        if controllers.is_empty() {
            // cgroup v2 unified hierarchy: the limit of every ancestor applies.
            let mut dir = root.join(path);
            loop {
                consider(read_limit(&dir.join("memory.max")));
                if dir == root || !dir.pop() {
                    break;
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let mut dir = root.join("memory").join(path);
            let top = root.join("memory");
            loop {
                consider(read_limit(&dir.join("memory.limit_in_bytes")));
                if dir == top || !dir.pop() {
                    break;
                }
            }
        }
    }
    best
}

fn read_limit(file: &Path) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let v: u64 = text.parse().ok()?;
    // cgroup v1 reports "no limit" as a page-rounded i64::MAX.
    (v < (1u64 << 62)).then_some(v)
}

/// Memory this process may use: physical RAM clamped by the cgroup limit. Never swap.
pub fn usable_memory_bytes() -> u64 {
    let phys = physical_memory_bytes();
    match cgroup_memory_limit() {
        Some(limit) if phys == 0 => limit,
        Some(limit) => phys.min(limit),
        None => phys,
    }
}

/// Total active swap in bytes, from `/proc/swaps` (0 when none, or unreadable).
pub fn swap_total_bytes() -> u64 {
    if cfg!(miri) {
        return 0;
    }
    fs::read_to_string("/proc/swaps")
        .map(|s| parse_swaps(&s))
        .unwrap_or(0)
}

fn parse_swaps(text: &str) -> u64 {
    // Header: Filename Type Size Used Priority; sizes in KiB.
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// The default pool budget: a quarter of usable memory, at least 64 MiB.
pub fn default_budget_bytes() -> u64 {
    (usable_memory_bytes() / 4).max(64 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_memory_is_plausible() {
        assert!(physical_memory_bytes() > 64 << 20);
        assert!(usable_memory_bytes() <= physical_memory_bytes());
    }

    #[test]
    fn cgroup_v1_and_v2_limits_are_read() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("memory/job")).unwrap();
        fs::write(
            r.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        fs::write(r.join("memory/job/memory.limit_in_bytes"), "805306368\n").unwrap();
        assert_eq!(
            cgroup_limit_from("4:memory:/job\n3:cpu:/x\n", r),
            Some(805306368)
        );

        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/memory.max"), "1073741824\n").unwrap();
        fs::write(r.join("a/b/memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_limit_from("0::/a/b\n", r), Some(1 << 30));
        assert_eq!(cgroup_limit_from("0::/\n", r), None);
    }

    #[test]
    fn swaps_are_summed_in_bytes() {
        let t = "Filename Type Size Used Priority\n/swapfile file 2097148 0 -2\n/dev/x partition 4 0 -3\n";
        assert_eq!(parse_swaps(t), (2097148 + 4) * 1024);
        assert_eq!(parse_swaps("Filename Type Size Used Priority\n"), 0);
    }
}

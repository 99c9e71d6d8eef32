//! Pool configuration: a builder validated once, in [`crate::Pool::new`], before any chunk
//! exists. Sizes accept human forms (`256MiB`, `2GiB`, `1.5G`, `65_536`) through
//! [`parse_size`].
//!
//! Invariant: a [`PoolConfig`] is only data; nothing acts on it until `Pool::new` has
//! validated it, so a bad one is refused before any dataflow runs. With the `serde` feature a
//! config can be read from a file (say JSON): every field is optional (defaults as
//! [`PoolConfig::default`]), sizes are integers or strings for [`parse_size`], and the extent
//! backend is tagged by `kind`:
//! `{"budget": "256MiB", "extents": {"kind": "file", "dir": "/scratch"}}`.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::machine;

/// Where evicted chunks go.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)
)]
pub enum ExtentBackend {
    /// The default: one unlinked `O_TMPFILE` file per extent class in `dir` (the system temp
    /// dir when `None`), `O_DIRECT` where the filesystem accepts it.
    File {
        /// Directory of the scratch files; `None`: the system temp dir.
        #[cfg_attr(feature = "serde", serde(default))]
        dir: Option<PathBuf>,
        /// Try `O_DIRECT` (default true); buffered I/O is used when the filesystem refuses it.
        #[cfg_attr(feature = "serde", serde(default = "sizes::yes"))]
        direct_io: bool,
        /// Most bytes of extents to keep on the device; `None` = until the device is full.
        #[cfg_attr(
            feature = "serde",
            serde(default, deserialize_with = "sizes::optional")
        )]
        capacity: Option<u64>,
    },
    /// An anonymous arena pushed to the swap device with `MADV_PAGEOUT`. Needs active swap.
    Swap {
        /// Compressed bytes allowed to stay resident in the arena before being paged out.
        #[cfg_attr(feature = "serde", serde(default, deserialize_with = "sizes::size"))]
        rss_target: u64,
    },
    /// Compressed bytes stay in RAM, at most `capacity` of them.
    Memory {
        /// Most compressed bytes to keep; `None`: unbounded.
        #[cfg_attr(
            feature = "serde",
            serde(default, deserialize_with = "sizes::optional")
        )]
        capacity: Option<u64>,
    },
}

impl Default for ExtentBackend {
    fn default() -> Self {
        ExtentBackend::File {
            dir: None,
            direct_io: true,
            capacity: None,
        }
    }
}

impl ExtentBackend {
    /// Parses a backend name as used by the CLI: `file`, `swap` or `memory`.
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name {
            "file" => Ok(Self::default()),
            "swap" => Ok(ExtentBackend::Swap { rss_target: 0 }),
            "memory" => Ok(ExtentBackend::Memory { capacity: None }),
            other => Err(ConfigError::Invalid(format!(
                "unknown extent backend {other:?} (expected file, swap or memory)"
            ))),
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            ExtentBackend::File { .. } => "file",
            ExtentBackend::Swap { .. } => "swap",
            ExtentBackend::Memory { .. } => "memory",
        }
    }
}

/// Configuration of a [`crate::Pool`].
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PoolConfig {
    /// Byte budget for resident chunk slots (live-tunable with `Pool::set_budget`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "sizes::size"))]
    pub budget: u64,
    /// Where evicted chunks go.
    pub extents: ExtentBackend,
    /// Threads that compress evicted chunks off the worker threads. 0 means every eviction
    /// is compressed and written inline by the thread that needs the room (and there is no
    /// prefetch or eager backing).
    pub spill_threads: usize,
    /// Threads that write compressed frames and run prefetch reads, so device I/O overlaps
    /// compression and several reads are in flight. Used when `spill_threads > 0`; at least 1.
    pub io_threads: usize,
    /// Most write jobs queued for spill threads; beyond it evictions are written inline.
    pub spill_queue_depth: usize,
    /// Write-behind allowance: resident bytes may exceed the budget by this much while
    /// queued evictions are being written. `None`: a quarter of the budget, clamped to
    /// [64 KiB, 512 MiB].
    #[cfg_attr(feature = "serde", serde(deserialize_with = "sizes::optional"))]
    pub write_behind: Option<u64>,
    /// Cap of the warm free list (freed slots whose pages are kept). `None`:
    /// min(budget / 8, 1 GiB).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "sizes::optional"))]
    pub warm_cap: Option<u64>,
    /// Virtual address space reserved per slot class. `None`: max(2 × usable memory, 4 ×
    /// budget), which no workload within the budget can exhaust.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "sizes::optional"))]
    pub region_bytes_per_class: Option<u64>,
    /// Use transparent huge pages for slot classes of 2 MiB and up (default true).
    pub huge_pages: bool,
    /// Fill released slots with 0xDE. A testing aid that proves reads decode the extent
    /// rather than stale slot memory; costs a memset per release.
    pub poison_released_slots: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            budget: machine::default_budget_bytes(),
            extents: ExtentBackend::default(),
            spill_threads: 1,
            io_threads: 2,
            spill_queue_depth: 64,
            write_behind: None,
            warm_cap: None,
            region_bytes_per_class: None,
            huge_pages: true,
            poison_released_slots: false,
        }
    }
}

/// Something that names a byte size: an integer, or a string for [`parse_size`].
pub trait ByteSize {
    /// The size in bytes, or why it is not one.
    fn to_bytes(&self) -> Result<u64, ConfigError>;
}

impl ByteSize for u64 {
    fn to_bytes(&self) -> Result<u64, ConfigError> {
        Ok(*self)
    }
}

impl ByteSize for usize {
    fn to_bytes(&self) -> Result<u64, ConfigError> {
        Ok(*self as u64)
    }
}

impl ByteSize for &str {
    fn to_bytes(&self) -> Result<u64, ConfigError> {
        parse_size(self)
    }
}

impl ByteSize for String {
    fn to_bytes(&self) -> Result<u64, ConfigError> {
        parse_size(self)
    }
}

impl PoolConfig {
    /// Sets the byte budget (`"256MiB"`, `1 << 30`, ...).
    pub fn budget(mut self, size: impl ByteSize) -> Result<Self, ConfigError> {
        self.budget = size.to_bytes()?;
        Ok(self)
    }

    /// Sets the extent backend.
    pub fn extents(mut self, backend: ExtentBackend) -> Self {
        self.extents = backend;
        self
    }

    /// Uses file extents in `dir`.
    pub fn extent_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = Some(dir.into());
        self.extents = match self.extents {
            ExtentBackend::File {
                direct_io,
                capacity,
                ..
            } => ExtentBackend::File {
                dir,
                direct_io,
                capacity,
            },
            _ => ExtentBackend::File {
                dir,
                direct_io: true,
                capacity: None,
            },
        };
        self
    }

    /// Sets the number of spill threads.
    pub fn spill_threads(mut self, n: usize) -> Self {
        self.spill_threads = n;
        self
    }

    /// The write-behind allowance in effect for `budget`.
    pub fn write_behind_for(&self, budget: u64) -> u64 {
        self.write_behind
            .unwrap_or_else(|| (budget / 4).clamp(64 << 10, 512 << 20))
    }

    /// The warm-list cap in effect for `budget`.
    pub fn warm_cap_for(&self, budget: u64) -> u64 {
        self.warm_cap.unwrap_or_else(|| (budget / 8).min(1 << 30))
    }

    /// Checks everything that can be checked without touching the extent store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_budget(self.budget)?;
        if self.spill_queue_depth == 0 {
            return Err(ConfigError::Invalid(
                "spill_queue_depth must be at least 1".into(),
            ));
        }
        if self.spill_threads > 0 && !(1..=64).contains(&self.io_threads) {
            return Err(ConfigError::Invalid(format!(
                "io_threads = {} (1 to 64 when spill threads are on)",
                self.io_threads
            )));
        }
        if self.spill_threads > 64 {
            return Err(ConfigError::Invalid(format!(
                "spill_threads = {} (at most 64)",
                self.spill_threads
            )));
        }
        Ok(())
    }
}

/// Refuses a budget of zero, below one slot, or above usable memory plus swap.
pub fn validate_budget(budget: u64) -> Result<(), ConfigError> {
    if budget == 0 {
        return Err(ConfigError::ZeroBudget);
    }
    if budget < crate::slot::MIN_SLOT as u64 {
        return Err(ConfigError::Invalid(format!(
            "budget of {budget} bytes is below one {} KiB slot",
            crate::slot::MIN_SLOT >> 10
        )));
    }
    let limit = machine::usable_memory_bytes() + machine::swap_total_bytes();
    if limit > 0 && budget > limit {
        return Err(ConfigError::BudgetTooLarge { budget, limit });
    }
    Ok(())
}

/// Parses a byte size: an integer (underscores allowed) with an optional unit. `K`, `KiB`,
/// `M`, `MiB`, `G`, `GiB`, `T`, `TiB` are binary (1024-based); `KB`, `MB`, `GB`, `TB` are
/// decimal; `B` is bytes. Fractions are allowed with a unit (`1.5GiB`).
pub fn parse_size(input: &str) -> Result<u64, ConfigError> {
    let err = |reason| ConfigError::InvalidSize {
        input: input.to_string(),
        reason,
    };
    let s: String = input.trim().chars().filter(|c| *c != '_').collect();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(err("no number"));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "t" | "ti" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err("unknown unit")),
    };
    if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| err("not a number"))?;
        let bytes = v * mult as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(err("too large"));
        }
        Ok(bytes.round() as u64)
    } else {
        let v: u64 = num.parse().map_err(|_| err("not a number"))?;
        v.checked_mul(mult).ok_or_else(|| err("too large"))
    }
}

/// Formats a byte count for people: `256.0 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Sizes in a serialized config: an integer, or a string for [`parse_size`].
#[cfg(feature = "serde")]
mod sizes {
    use std::fmt;

    use serde::de::{Deserializer, Error, Visitor};

    /// `direct_io`'s default.
    pub(super) fn yes() -> bool {
        true
    }

    struct Size;

    impl<'de> Visitor<'de> for Size {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte size: an integer, or a string such as \"256MiB\"")
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("a byte size cannot be negative: {v}")))
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<u64, E> {
            super::parse_size(v).map_err(E::custom)
        }
    }

    struct OptionalSize;

    impl<'de> Visitor<'de> for OptionalSize {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte size or null")
        }

        fn visit_none<E: Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            size(d).map(Some)
        }
    }

    /// A size.
    pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Size)
    }

    /// A size or null.
    pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptionalSize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("1_000_000").unwrap(), 1_000_000);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size(" 64 KiB ").unwrap(), 64 << 10);
        for bad in [
            "",
            "MiB",
            "12XB",
            "1.2.3G",
            "99999999999999999999",
            "20000000T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(format_size(256 << 20), "256.0 MiB");
        assert_eq!(format_size(10), "10 B");
    }

    #[test]
    fn budgets_are_validated() {
        assert!(matches!(validate_budget(0), Err(ConfigError::ZeroBudget)));
        assert!(validate_budget(1000).is_err());
        assert!(matches!(
            validate_budget(1 << 60),
            Err(ConfigError::BudgetTooLarge { .. })
        ));
        assert!(validate_budget(64 << 20).is_ok());
        assert!(PoolConfig::default().budget("0").is_ok()); // parsing is not validation
        assert!(PoolConfig::default().budget("lots").is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn configs_deserialize_from_json_with_sizes_as_strings_or_integers() {
        let config: PoolConfig = serde_json::from_str(
            r#"{
                "budget": "256MiB",
                "extents": {"kind": "file", "dir": "/scratch", "capacity": "2GiB"},
                "spill_threads": 2,
                "write_behind": 1048576,
                "warm_cap": null
            }"#,
        )
        .unwrap();
        assert_eq!(config.budget, 256 << 20);
        assert_eq!(
            config.extents,
            ExtentBackend::File {
                dir: Some(PathBuf::from("/scratch")),
                direct_io: true,
                capacity: Some(2 << 30),
            }
        );
        assert_eq!(config.spill_threads, 2);
        assert_eq!(config.write_behind, Some(1 << 20));
        assert_eq!(config.warm_cap, None);
        let defaults = PoolConfig::default();
        assert_eq!(config.io_threads, defaults.io_threads);
        assert_eq!(config.huge_pages, defaults.huge_pages);

        let swap: ExtentBackend =
            serde_json::from_str(r#"{"kind": "swap", "rss_target": "64MiB"}"#).unwrap();
        assert_eq!(
            swap,
            ExtentBackend::Swap {
                rss_target: 64 << 20
            }
        );
        let memory: ExtentBackend = serde_json::from_str(r#"{"kind": "memory"}"#).unwrap();
        assert_eq!(memory, ExtentBackend::Memory { capacity: None });

        for bad in [
            r#"{"budget": "lots"}"#,
            r#"{"budget": -1}"#,
            r#"{"budgett": 1}"#,
            r#"{"extents": {"kind": "tape"}}"#,
        ] {
            assert!(serde_json::from_str::<PoolConfig>(bad).is_err(), "{bad}");
        }
    }
}

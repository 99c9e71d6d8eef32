//! The flags of `spillway join` and `spillway reduce`, and their validation into a [`Plan`]
//! before any work starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use spillway_pool::{ExtentBackend, PoolConfig};
use spillway_trace::PagingPolicy;

use super::input::InputSpec;
use super::key_dist::{KeyDist, KeySampler};
use super::parse_bytes;

/// Which arrangement the workload runs on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `PagedSpine` with paging on, through a pool with `--budget`.
    Pool,
    /// `PagedSpine` with paging off (resident).
    Memory,
    /// Upstream differential `OrdValSpine`.
    #[value(name = "dd-ord")]
    DdOrd,
    /// Upstream differential columnar `ColChunk` trace, with its spill at `--budget / 32`
    /// records.
    #[value(name = "dd-col")]
    DdCol,
}

impl Backend {
    /// The name used on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Pool => "pool",
            Backend::Memory => "memory",
            Backend::DdOrd => "dd-ord",
            Backend::DdCol => "dd-col",
        }
    }

    /// Every backend, in the order `compare` runs them by default.
    pub const ALL: [Backend; 4] = [
        Backend::Pool,
        Backend::Memory,
        Backend::DdOrd,
        Backend::DdCol,
    ];
}

/// Where the pool's evicted chunks go.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extents {
    /// Scratch files in `--extent-dir` (default: the system temp dir).
    File,
    /// The swap device (needs active swap).
    Swap,
    /// Compressed, in memory.
    Memory,
}

/// How `join` matches the probes against the arrangement.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinTactic {
    /// differential's `join_core`: cursors over both sides.
    Cursor,
    /// spillway's `VectoredJoin`: probe keys looked up in groups with vectored reads (paged
    /// backends only).
    Vectored,
}

impl JoinTactic {
    /// The tactic `backend` runs: the one asked for, or by default `vectored` on the paged
    /// backends (faster there, and bounded in memory for every type) and `cursor` upstream.
    pub fn resolve(backend: Backend, asked: Option<JoinTactic>) -> JoinTactic {
        match (asked, backend) {
            (Some(tactic), _) => tactic,
            (None, Backend::Pool | Backend::Memory) => JoinTactic::Vectored,
            (None, Backend::DdOrd | Backend::DdCol) => JoinTactic::Cursor,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JoinTactic::Cursor => "cursor",
            JoinTactic::Vectored => "vectored",
        }
    }
}

/// The query a run performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Join,
    Reduce,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Join => "join",
            Workload::Reduce => "reduce",
        }
    }

    /// The name of the query phase, as in the JSON field `<phase>_s`.
    pub fn query_phase(self) -> &'static str {
        match self {
            Workload::Join => "join",
            Workload::Reduce => "query",
        }
    }
}

/// A count: an integer with `_` separators or a `K`/`M`/`G` suffix (decimal: `10M` is
/// 10,000,000).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (digits, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        Some('g' | 'G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (&t[..], 1),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("cannot parse count {s:?} (examples: 1000000, 1_000_000, 10M)"))?;
    if n.is_nan()
        || n < 0.0
        || n * scale as f64 > u64::MAX as f64
        || (scale == 1 && n.fract() != 0.0)
    {
        return Err(format!(
            "cannot parse count {s:?} (examples: 1000000, 1_000_000, 10M)"
        ));
    }
    Ok((n * scale as f64).round() as u64)
}

/// A spine level for `--eager-from` / `--lazy-below`: a depth, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level(pub Option<u8>);

/// Parses a [`Level`]: `0` to `255`, or `none`.
pub fn parse_level(s: &str) -> Result<Level, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Level(None));
    }
    s.parse::<u8>()
        .map(|l| Level(Some(l)))
        .map_err(|_| format!("cannot parse level {s:?} (a depth from 0 to 255, or none)"))
}

/// The default pool budget: below the default data size (10M updates, 320 MB), so the first
/// run visibly pages.
pub const DEFAULT_BUDGET: &str = "64MiB";

/// Flags shared by `join` and `reduce`.
#[derive(clap::Args, Clone, Debug)]
pub struct QueryArgs {
    /// Updates in the generated input (`10M`, `1_000_000`).
    #[arg(long, default_value = "10M", value_parser = parse_count)]
    pub updates: u64,
    /// Distinct keys (default: updates / 4).
    #[arg(long, value_parser = parse_count)]
    pub keys: Option<u64>,
    /// Records in the probe collection of `join` (default: updates / 10).
    #[arg(long, value_parser = parse_count)]
    pub probes: Option<u64>,
    /// Timely rounds the updates are spread over, with compaction between rounds.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Fraction of updates retracted one round later.
    #[arg(long, default_value_t = 0.0)]
    pub retract: f64,
    /// How keys of updates and probes are drawn: `uniform`, or `zipf:S` (exponent `S > 0`;
    /// key 0 hottest). Under skew a join's output grows as `Σ p_k²`: keep `--probes` small.
    #[arg(long, default_value = "uniform")]
    pub key_dist: String,
    /// Seed of the generated input.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Arrangement backend.
    #[arg(long, value_enum, default_value = "pool")]
    pub backend: Backend,
    /// Pool budget (`256MiB`, `2GiB`); for `dd-col`, its spill budget is this / 32 records.
    #[arg(long, default_value = DEFAULT_BUDGET, value_parser = parse_bytes)]
    pub budget: u64,
    /// How `join` probes the arrangement: `cursor` (differential's `join_core`) or
    /// `vectored` (grouped vectored lookups; `pool` and `memory` only). Default: `vectored`
    /// on `pool` and `memory`, `cursor` on upstream backends.
    #[arg(long, value_enum)]
    pub join_tactic: Option<JoinTactic>,
    /// Spine levels at or above this are backed eagerly by idle spill threads (`none`: no
    /// level). Default: none (levels above `--lazy-below` are backed eagerly only under
    /// pressure).
    #[arg(long, value_parser = parse_level)]
    pub eager_from: Option<Level>,
    /// Spine levels at or below this are written only when evicted (`none`: no level).
    /// Levels between the two are backed eagerly only under pressure. Default: 0.
    #[arg(long, value_parser = parse_level)]
    pub lazy_below: Option<Level>,
    /// Extent store of the pool.
    #[arg(long, value_enum, default_value = "file")]
    pub extents: Extents,
    /// Directory of file extents and of the `dd-col` spill file (default: the system temp
    /// dir).
    #[arg(long)]
    pub extent_dir: Option<PathBuf>,
    /// Pool spill threads (compression and writes off the workers' threads).
    #[arg(long, default_value_t = 1)]
    pub spill_threads: usize,
    /// Worker threads per process.
    #[arg(long, short = 'w', default_value_t = 1)]
    pub workers: usize,
    /// Processes in the cluster (timely's multi-process mode; needs `--hostfile`).
    #[arg(long, short = 'n', default_value_t = 1)]
    pub processes: usize,
    /// This process's index in the cluster, from 0.
    #[arg(long, short = 'p', default_value_t = 0)]
    pub process: usize,
    /// A file with one `host:port` per process, in process order.
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
    /// Print exactly one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics` while the run lasts.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub workload: Workload,
    pub backend: Backend,
    pub join_tactic: JoinTactic,
    /// How paged arrangements back each spine level (`pool` backend).
    pub policy: PagingPolicy,
    /// Collect the per-level report (`spillway levels`).
    pub levels: bool,
    pub input: InputSpec,
    pub budget: u64,
    pub pool: Option<PoolConfig>,
    pub extent_dir: Option<PathBuf>,
    pub workers: usize,
    pub processes: usize,
    pub process: usize,
    pub addresses: Vec<String>,
}

impl Plan {
    /// Validates `args`: every error a user can make is reported here, before any work.
    pub fn new(workload: Workload, args: &QueryArgs) -> Result<Plan, String> {
        if args.updates == 0 {
            return Err("--updates must be at least 1".into());
        }
        if args.rounds == 0 || args.rounds > args.updates {
            return Err(format!(
                "--rounds must be between 1 and --updates ({})",
                args.updates
            ));
        }
        let keys = args.keys.unwrap_or((args.updates / 4).max(1));
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&args.retract) {
            return Err(format!(
                "--retract {} is not a fraction between 0 and 1",
                args.retract
            ));
        }
        let key_dist = KeyDist::parse(&args.key_dist)?;
        if args.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if args.processes == 0 || args.process >= args.processes {
            return Err(format!(
                "--process {} must be below --processes {}",
                args.process, args.processes
            ));
        }
        if args.join_tactic == Some(JoinTactic::Vectored) {
            if workload != Workload::Join {
                return Err("--join-tactic applies to `join` only".into());
            }
            if !matches!(args.backend, Backend::Pool | Backend::Memory) {
                return Err(format!(
                    "--join-tactic vectored needs a paged backend (pool or memory), not {}",
                    args.backend.name()
                ));
            }
        }
        let default = PagingPolicy::default();
        let policy = PagingPolicy {
            lazy_below: args.lazy_below.map_or(default.lazy_below, |l| l.0),
            eager_from: args.eager_from.map_or(default.eager_from, |l| l.0),
            ..default
        };
        policy
            .validate()
            .map_err(|e| format!("--lazy-below / --eager-from: {e}"))?;
        spillway_pool::config::validate_budget(args.budget)
            .map_err(|e| format!("--budget: {e}"))?;
        let addresses = match (&args.hostfile, args.processes) {
            (_, 1) => Vec::new(),
            (None, n) => return Err(format!("--processes {n} needs --hostfile")),
            (Some(path), n) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--hostfile {}: {e}", path.display()))?;
                let hosts: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect();
                if hosts.len() < n {
                    return Err(format!(
                        "--hostfile {} lists {} hosts, --processes needs {n}",
                        path.display(),
                        hosts.len()
                    ));
                }
                hosts.into_iter().take(n).collect()
            }
        };
        if let Some(dir) = &args.extent_dir {
            check_writable(dir)?;
        }
        let pool = match args.backend {
            Backend::Pool => {
                let extents = match args.extents {
                    Extents::File => ExtentBackend::default(),
                    Extents::Swap => ExtentBackend::Swap { rss_target: 0 },
                    Extents::Memory => ExtentBackend::Memory { capacity: None },
                };
                let mut config = PoolConfig {
                    budget: args.budget,
                    extents,
                    ..PoolConfig::default()
                }
                .spill_threads(args.spill_threads);
                if let (Some(dir), Extents::File) = (&args.extent_dir, args.extents) {
                    config = config.extent_dir(dir);
                }
                config.validate().map_err(|e| e.to_string())?;
                Some(config)
            }
            _ => None,
        };
        Ok(Plan {
            workload,
            backend: args.backend,
            join_tactic: JoinTactic::resolve(args.backend, args.join_tactic),
            policy,
            levels: false,
            input: InputSpec {
                seed: args.seed,
                updates: args.updates,
                keys,
                probes: args.probes.unwrap_or(args.updates / 10),
                rounds: args.rounds,
                retract: args.retract,
                key_dist: KeySampler::new(key_dist, keys),
            },
            budget: args.budget,
            pool,
            extent_dir: args.extent_dir.clone(),
            workers: args.workers,
            processes: args.processes,
            process: args.process,
            addresses,
        })
    }

    /// Where scratch files go: `--extent-dir`, or the system temp dir.
    pub fn scratch_dir(&self) -> PathBuf {
        self.extent_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Timely's configuration: one thread, threads of one process, or a cluster.
    pub fn timely_config(&self) -> timely::Config {
        let communication = if self.processes > 1 {
            timely::CommunicationConfig::Cluster {
                threads: self.workers,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            }
        } else if self.workers > 1 {
            timely::CommunicationConfig::Process(self.workers)
        } else {
            timely::CommunicationConfig::Thread
        };
        timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        }
    }
}

/// Fails unless a file can be created in `dir`.
fn check_writable(dir: &std::path::Path) -> Result<(), String> {
    tempfile::tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("--extent-dir {}: not writable: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_with_separators_and_suffixes() {
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("2.5k"), Ok(2_500));
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_count("ten").is_err());
        assert!(parse_count("-5").is_err());
        assert!(parse_count("1.5").is_err());
    }

    #[test]
    fn levels_parse_as_depths_or_none() {
        assert_eq!(parse_level("2"), Ok(Level(Some(2))));
        assert_eq!(parse_level("none"), Ok(Level(None)));
        assert!(parse_level("-1").is_err());
        assert!(parse_level("256").is_err());
    }
}

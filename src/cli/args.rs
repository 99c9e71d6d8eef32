//! The flags of `spillway join`, `reduce` and `levels` as typed ([`QueryArgs`]), their
//! validation into a [`QueryPlan`] before any work starts ([`QueryArgs::plan`]), and the way
//! back to a command line ([`QueryArgs::to_argv`]) for `compare`'s children.
//!
//! Every error a user can make in these flags is reported by [`QueryArgs::plan`] in one line
//! naming the flag; a plan that comes out of it runs as it says.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use spillway_pool::{ExtentBackend, PoolConfig};
use spillway_trace::PagingPolicy;
use spillway_workload::input::{InputSpec, Records, DEFAULT_VAL_BYTES, MAX_VAL_BYTES};
use spillway_workload::key_dist::{KeyDist, KeySampler};
use spillway_workload::plan::{Backend, JoinTactic, QueryPlan, Workload};
use spillway_workload::units::parse_count;

/// Parses a byte size for clap (`256MiB`, `2GiB`, `65536`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    spillway_pool::parse_size(s).map_err(|e| e.to_string())
}

/// The `--backend` / `--backends` values, with their help.
pub fn backend_parser() -> impl TypedValueParser<Value = Backend> {
    PossibleValuesParser::new([
        PossibleValue::new("pool").help("PagedSpine with paging on, through a pool with --budget"),
        PossibleValue::new("memory").help("PagedSpine with paging off (resident)"),
        PossibleValue::new("dd-ord").help("Upstream differential OrdValSpine"),
        PossibleValue::new("dd-col").help(
            "Upstream differential columnar ColChunk trace, with its spill at --budget / 32 records",
        ),
    ])
    .map(|name| Backend::from_name(&name).expect("every listed name is a backend"))
}

/// The `--join-tactic` values, with their help.
fn join_tactic_parser() -> impl TypedValueParser<Value = JoinTactic> {
    PossibleValuesParser::new([
        PossibleValue::new("cursor").help("differential's join_core: cursors over both sides"),
        PossibleValue::new("vectored").help(
            "spillway's VectoredJoin: probe keys looked up in groups with vectored reads (paged backends only)",
        ),
    ])
    .map(|name| JoinTactic::from_name(&name).expect("every listed name is a tactic"))
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

impl Extents {
    /// The name on the command line.
    fn name(self) -> &'static str {
        match self {
            Extents::File => "file",
            Extents::Swap => "swap",
            Extents::Memory => "memory",
        }
    }
}

/// A spine level for `--eager-from` / `--lazy-below`: a depth, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level(pub Option<u8>);

impl Level {
    /// The level as `--eager-from` / `--lazy-below` take it.
    fn arg(self) -> String {
        self.0.map_or_else(|| "none".to_string(), |l| l.to_string())
    }
}

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
#[derive(clap::Args, Clone, Debug, PartialEq)]
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
    /// What the records are: `u64` (`(u64 key, u64 value)` updates) or `strings`
    /// (`customer/000123456` keys from the same key draw, values of `--val-bytes` hex digits;
    /// `pool`, `memory` and `dd-ord` only).
    #[arg(long, default_value = "u64")]
    pub records: String,
    /// `--records strings`: the length of every value, bytes (`100`, `4KiB`; at most
    /// `16MiB`). Default: 100.
    #[arg(long)]
    pub val_bytes: Option<String>,
    /// Seed of the generated input.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Arrangement backend.
    #[arg(long, default_value = "pool", value_parser = backend_parser())]
    pub backend: Backend,
    /// Pool budget (`256MiB`, `2GiB`); for `dd-col`, its spill budget is this / 32 records.
    #[arg(long, default_value = DEFAULT_BUDGET, value_parser = parse_bytes)]
    pub budget: u64,
    /// How `join` probes the arrangement: `cursor` (differential's `join_core`) or
    /// `vectored` (grouped vectored lookups; `pool` and `memory` only). Default: `vectored`
    /// on `pool` and `memory`, `cursor` on upstream backends.
    #[arg(long, value_parser = join_tactic_parser())]
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
    /// Inject random faults into the file extent store, drawn from `--seed`:
    /// `eio=P,short=P,flip=P,enospc-after=SIZE` (any subset; P a probability per call).
    /// Needs a build with the `fault-injection` feature, the pool backend and file extents.
    #[arg(long, value_name = "SPEC")]
    pub inject_faults: Option<String>,
}

impl QueryArgs {
    /// Validates the flags for `workload`: every error a user can make is reported here,
    /// before any work.
    pub fn plan(&self, workload: Workload) -> Result<QueryPlan, String> {
        let args = self;
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
        let records = parse_records(&args.records, args.val_bytes.as_deref())?;
        if records != Records::U64 && args.backend == Backend::DdCol {
            return Err(format!(
                "--records {}: the dd-col backend does not support strings (use pool, memory or dd-ord)",
                records.name()
            ));
        }
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
            if !args.backend.is_paged() {
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
        spillway_pool::validate_budget(args.budget).map_err(|e| format!("--budget: {e}"))?;
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
        if let Some(spec) = &args.inject_faults {
            check_fault_spec(spec, args.backend, args.extents)?;
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
        Ok(QueryPlan {
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
                records,
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

    /// The command line that parses back to these flags: each flag once, with its value
    /// spelled so that it parses to the same value (what `compare` gives its children).
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            argv.push(format!("--{name}"));
            argv.push(value);
        };
        flag("updates", self.updates.to_string());
        if let Some(keys) = self.keys {
            flag("keys", keys.to_string());
        }
        if let Some(probes) = self.probes {
            flag("probes", probes.to_string());
        }
        flag("rounds", self.rounds.to_string());
        flag("retract", self.retract.to_string());
        flag("key-dist", self.key_dist.clone());
        flag("records", self.records.clone());
        if let Some(bytes) = &self.val_bytes {
            flag("val-bytes", bytes.clone());
        }
        flag("seed", self.seed.to_string());
        flag("backend", self.backend.name().to_string());
        flag("budget", self.budget.to_string());
        if let Some(tactic) = self.join_tactic {
            flag("join-tactic", tactic.name().to_string());
        }
        if let Some(level) = self.eager_from {
            flag("eager-from", level.arg());
        }
        if let Some(level) = self.lazy_below {
            flag("lazy-below", level.arg());
        }
        flag("extents", self.extents.name().to_string());
        if let Some(dir) = &self.extent_dir {
            flag("extent-dir", dir.display().to_string());
        }
        flag("spill-threads", self.spill_threads.to_string());
        flag("workers", self.workers.to_string());
        flag("processes", self.processes.to_string());
        flag("process", self.process.to_string());
        if let Some(path) = &self.hostfile {
            flag("hostfile", path.display().to_string());
        }
        if let Some(addr) = self.metrics_addr {
            flag("metrics-addr", addr.to_string());
        }
        if let Some(spec) = &self.inject_faults {
            flag("inject-faults", spec.clone());
        }
        if self.json {
            argv.push("--json".into());
        }
        if self.quiet {
            argv.push("--quiet".into());
        }
        argv
    }
}

/// Parses `--records` and `--val-bytes` into [`Records`]: one-line errors naming the flag.
pub fn parse_records(records: &str, val_bytes: Option<&str>) -> Result<Records, String> {
    match records.trim() {
        r if r.eq_ignore_ascii_case("u64") => match val_bytes {
            None => Ok(Records::U64),
            Some(_) => Err("--val-bytes applies to --records strings only".into()),
        },
        r if r.eq_ignore_ascii_case("strings") => {
            let val_bytes = match val_bytes {
                None => DEFAULT_VAL_BYTES,
                Some(s) => {
                    let n = spillway_pool::parse_size(s)
                        .map_err(|e| format!("--val-bytes {s:?}: {e}"))?;
                    if n == 0 || n > MAX_VAL_BYTES as u64 {
                        return Err(format!(
                            "--val-bytes {s:?}: must be between 1 and 16MiB ({MAX_VAL_BYTES}) bytes"
                        ));
                    }
                    n as usize
                }
            };
            Ok(Records::Strings { val_bytes })
        }
        _ => Err(format!(
            "--records {records:?}: unknown records (expected `u64` or `strings`)"
        )),
    }
}

/// Checks `--inject-faults SPEC`: a build with the `fault-injection` feature, the pool
/// backend on file extents, and a spec [`spillway_pool::FaultRates::parse`] reads.
fn check_fault_spec(spec: &str, backend: Backend, extents: Extents) -> Result<(), String> {
    if !cfg!(feature = "fault-injection") {
        return Err(
            "--inject-faults needs a spillway built with the `fault-injection` feature \
                    (cargo build --features fault-injection)"
                .into(),
        );
    }
    if backend != Backend::Pool || extents != Extents::File {
        return Err("--inject-faults needs --backend pool and --extents file".into());
    }
    parse_fault_spec(spec).map(drop)
}

/// Parses `--inject-faults SPEC` (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
pub fn parse_fault_spec(spec: &str) -> Result<spillway_pool::FaultRates, String> {
    spillway_pool::FaultRates::parse(spec).map_err(|e| format!("--inject-faults: {e}"))
}

/// Without the `fault-injection` feature there is nothing to parse into.
#[cfg(not(feature = "fault-injection"))]
fn parse_fault_spec(_spec: &str) -> Result<(), String> {
    Ok(())
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
    fn records_parse_with_their_value_length() {
        assert_eq!(parse_records("u64", None), Ok(Records::U64));
        assert_eq!(
            parse_records("strings", None),
            Ok(Records::Strings {
                val_bytes: DEFAULT_VAL_BYTES
            })
        );
        assert_eq!(
            parse_records("strings", Some("4KiB")),
            Ok(Records::Strings { val_bytes: 4096 })
        );
        assert_eq!(
            parse_records("strings", Some("16MiB")),
            Ok(Records::Strings {
                val_bytes: MAX_VAL_BYTES
            })
        );
        for (records, val_bytes) in [
            ("strings", Some("0")),
            ("strings", Some("16777217")),
            ("strings", Some("1GiB")),
            ("strings", Some("many")),
            ("u64", Some("100")),
            ("bytes", None),
        ] {
            let e = parse_records(records, val_bytes).unwrap_err();
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn levels_parse_as_depths_or_none() {
        assert_eq!(parse_level("2"), Ok(Level(Some(2))));
        assert_eq!(parse_level("none"), Ok(Level(None)));
        assert!(parse_level("-1").is_err());
        assert!(parse_level("256").is_err());
    }

    /// `QueryArgs` as a subcommand of its own, to parse command lines in tests.
    #[derive(clap::Parser, Debug)]
    struct Query {
        #[command(flatten)]
        args: QueryArgs,
    }

    fn parse(argv: &[&str]) -> QueryArgs {
        <Query as clap::Parser>::try_parse_from(std::iter::once("join").chain(argv.iter().copied()))
            .expect("parses")
            .args
    }

    #[test]
    fn argv_parses_back_to_the_same_flags_each_once() {
        for argv in [
            &[][..],
            &[
                "-q",
                "--json",
                "--updates",
                "1M",
                "--budget",
                "8MiB",
                "-w",
                "2",
            ][..],
            &[
                "--keys",
                "10k",
                "--probes",
                "7",
                "--rounds",
                "3",
                "--retract",
                "0.25",
                "--key-dist",
                "zipf:1.2",
                "--records",
                "strings",
                "--val-bytes",
                "4KiB",
                "--seed",
                "9",
                "--backend",
                "dd-col",
                "--join-tactic",
                "cursor",
                "--eager-from",
                "none",
                "--lazy-below",
                "3",
                "--extents",
                "memory",
                "--extent-dir",
                "/tmp",
                "--spill-threads",
                "2",
                "--processes",
                "2",
                "--process",
                "1",
                "--hostfile",
                "/tmp/hosts",
                "--metrics-addr",
                "127.0.0.1:9100",
            ][..],
        ] {
            let args = parse(argv);
            let again = args.to_argv();
            let again_refs: Vec<&str> = again.iter().map(String::as_str).collect();
            assert_eq!(parse(&again_refs), args, "{again:?}");
            let mut flags: Vec<&str> = again_refs
                .iter()
                .copied()
                .filter(|a| a.starts_with("--"))
                .collect();
            let all = flags.len();
            flags.sort_unstable();
            flags.dedup();
            assert_eq!(flags.len(), all, "a flag twice in {again:?}");
        }
    }
}

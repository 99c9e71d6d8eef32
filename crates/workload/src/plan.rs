//! What a `join` / `reduce` run does, as a validated [`QueryPlan`]: which query, on which
//! backend, over which input, with which pool and how many workers and processes.
//!
//! A plan holds no flag syntax and no defaults of its own: the CLI builds one from its flags
//! after checking every one of them, and examples and benches build one with
//! [`QueryPlan::local`]. Whatever a plan says is what runs; nothing downstream re-validates.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spillway_pool::{ConfigError, PoolConfig};
use spillway_trace::PagingPolicy;

use crate::input::{InputSpec, Records};
use crate::key_dist::KeySampler;

/// The query a run performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Join the arrangement with the probe collection.
    Join,
    /// Count records and take the largest value per key.
    Reduce,
}

impl Workload {
    /// The name on the command line and in the JSON output.
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

/// Which arrangement the workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `PagedSpine` with paging on, through a pool.
    Pool,
    /// `PagedSpine` with paging off (resident).
    Memory,
    /// Upstream differential `OrdValSpine`.
    DdOrd,
    /// Upstream differential columnar `ColChunk` trace, with its spill at `budget / 32`
    /// records.
    DdCol,
}

impl Backend {
    /// Every backend, in the order `compare` runs them by default.
    pub const ALL: [Backend; 4] = [
        Backend::Pool,
        Backend::Memory,
        Backend::DdOrd,
        Backend::DdCol,
    ];

    /// The name used on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Pool => "pool",
            Backend::Memory => "memory",
            Backend::DdOrd => "dd-ord",
            Backend::DdCol => "dd-col",
        }
    }

    /// The backend called `name`, if any.
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether the backend is spillway's `PagedSpine` (paging on or off).
    pub fn is_paged(self) -> bool {
        matches!(self, Backend::Pool | Backend::Memory)
    }
}

/// How `join` matches the probes against the arrangement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinTactic {
    /// differential's `join_core`: cursors over both sides.
    Cursor,
    /// spillway's `VectoredJoin`: probe keys looked up in groups with vectored reads (paged
    /// backends only).
    Vectored,
}

impl JoinTactic {
    /// Both tactics.
    pub const ALL: [JoinTactic; 2] = [JoinTactic::Cursor, JoinTactic::Vectored];

    /// The tactic `backend` runs: the one asked for, or by default `vectored` on the paged
    /// backends (faster there, and bounded in memory for every type) and `cursor` upstream.
    pub fn resolve(backend: Backend, asked: Option<JoinTactic>) -> JoinTactic {
        match (asked, backend.is_paged()) {
            (Some(tactic), _) => tactic,
            (None, true) => JoinTactic::Vectored,
            (None, false) => JoinTactic::Cursor,
        }
    }

    /// The name on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            JoinTactic::Cursor => "cursor",
            JoinTactic::Vectored => "vectored",
        }
    }

    /// The tactic called `name`, if any.
    pub fn from_name(name: &str) -> Option<JoinTactic> {
        JoinTactic::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    /// The query.
    pub workload: Workload,
    /// The arrangement it runs on.
    pub backend: Backend,
    /// How `join` probes the arrangement.
    pub join_tactic: JoinTactic,
    /// How paged arrangements back each spine level (`pool` backend).
    pub policy: PagingPolicy,
    /// Collect the per-level report (`spillway levels`).
    pub levels: bool,
    /// The generated input.
    pub input: InputSpec,
    /// The byte budget: the pool's, or the `dd-col` spill's (`budget / 32` records).
    pub budget: u64,
    /// The pool's configuration (`pool` backend only), already validated.
    pub pool: Option<PoolConfig>,
    /// Where file extents and the `dd-col` spill file go (`None`: the system temp dir).
    pub extent_dir: Option<PathBuf>,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes in the cluster.
    pub processes: usize,
    /// This process's index in the cluster.
    pub process: usize,
    /// One `host:port` per process, in process order (empty for one process).
    pub addresses: Vec<String>,
}

impl QueryPlan {
    /// A run in this process on one worker thread, with the CLI's defaults for everything
    /// else: the default paging policy, one spill thread, file extents in the system temp
    /// dir. For `Backend::Pool` the pool's configuration is validated here.
    pub fn local(
        workload: Workload,
        backend: Backend,
        input: InputSpec,
        budget: u64,
    ) -> Result<QueryPlan, ConfigError> {
        let pool = match backend {
            Backend::Pool => {
                let config = PoolConfig {
                    budget,
                    ..PoolConfig::default()
                }
                .spill_threads(1);
                config.validate()?;
                Some(config)
            }
            _ => None,
        };
        Ok(QueryPlan {
            workload,
            backend,
            join_tactic: JoinTactic::resolve(backend, None),
            policy: PagingPolicy::default(),
            levels: false,
            input,
            budget,
            pool,
            extent_dir: None,
            workers: 1,
            processes: 1,
            process: 0,
            addresses: Vec::new(),
        })
    }

    /// This plan as `spillway levels` runs it: the `join` workload with the per-level report.
    /// Refused for upstream backends, whose spines have no levels to report.
    pub fn for_levels(self) -> Result<QueryPlan, String> {
        if !self.backend.is_paged() {
            return Err(format!(
                "spillway levels reports paged arrangements (pool or memory), not {}",
                self.backend.name()
            ));
        }
        Ok(QueryPlan {
            workload: Workload::Join,
            levels: true,
            ..self
        })
    }

    /// Where scratch files go: the extent directory, or the system temp dir.
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

/// The input `spillway join` generates for `updates` updates when no other flag is given:
/// keys `updates / 4`, probes `updates / 10`, 10 rounds, no retractions, seed 1.
pub fn default_input(updates: u64) -> InputSpec {
    let keys = (updates / 4).max(1);
    InputSpec {
        seed: 1,
        updates,
        keys,
        probes: updates / 10,
        rounds: 10,
        retract: 0.0,
        key_dist: KeySampler::uniform(keys),
        records: Records::U64,
    }
}

//! Where a run is: the current phase and its progress, shown as a progress bar on stderr and
//! exported as metrics. Workers report through one shared [`Phases`], the CLI's
//! [`Progress`]; every call is idempotent across workers (phases are entered by name, rounds
//! with `fetch_max`), so any worker may make it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};
use spillway_workload::progress::Progress;

/// The phases of a run, in order.
pub const PHASES: [&str; 4] = ["build", "join", "query", "scan"];

/// The progress of a run, shared by its workers, its progress bar and its metrics.
pub struct Phases {
    current: Mutex<&'static str>,
    steps_done: AtomicU64,
    bar: ProgressBar,
    phase_gauge: IntGaugeVec,
    steps_gauge: IntGauge,
    updates_gauge: IntGauge,
    updates: AtomicU64,
}

impl Phases {
    /// Progress with a bar on stderr when `show` (and stderr is a terminal).
    pub fn new(show: bool) -> Phases {
        let target = if show && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Phases {
            current: Mutex::new(""),
            steps_done: AtomicU64::new(0),
            bar,
            phase_gauge: IntGaugeVec::new(
                Opts::new(
                    "spillway_phase",
                    "1 for the phase the run is in, 0 for the others",
                ),
                &["phase"],
            )
            .expect("valid metric"),
            steps_gauge: IntGauge::new(
                "spillway_phase_steps_done",
                "Steps (rounds) of the current phase done",
            )
            .expect("valid metric"),
            updates_gauge: IntGauge::new(
                "spillway_updates_entered",
                "Input updates entered so far",
            )
            .expect("valid metric"),
            updates: AtomicU64::new(0),
        }
    }

    /// Registers the progress metrics in `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        for phase in PHASES {
            self.phase_gauge.with_label_values(&[phase]).set(0);
        }
        registry.register(Box::new(self.phase_gauge.clone()))?;
        registry.register(Box::new(self.steps_gauge.clone()))?;
        registry.register(Box::new(self.updates_gauge.clone()))
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Phases {
    fn start(&self, name: &'static str, steps: u64) {
        let mut current = self.current.lock().expect("not poisoned");
        if *current == name {
            return;
        }
        if !current.is_empty() {
            self.phase_gauge.with_label_values(&[*current]).set(0);
        }
        *current = name;
        self.phase_gauge.with_label_values(&[name]).set(1);
        self.steps_done.store(0, Relaxed);
        self.steps_gauge.set(0);
        self.bar.set_prefix(name);
        self.bar.set_length(steps);
        self.bar.set_position(0);
    }

    fn step_done(&self, step: u64, updates: u64) {
        let done = self.steps_done.fetch_max(step, Relaxed).max(step);
        let entered = self.updates.fetch_add(updates, Relaxed) + updates;
        self.steps_gauge.set(done as i64);
        self.updates_gauge.set(entered as i64);
        self.bar.set_position(done);
        self.bar.set_message(format!("{entered} updates"));
    }
}

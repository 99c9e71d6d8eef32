//! Where a run is, told to whoever shows it. A run calls a [`Progress`] at every phase and
//! build round; implementations must accept the calls of every worker thread, in any order,
//! and repeated (phases are entered by name, steps are reported as "step N is done").

/// Hears a run's phases and steps (the CLI's progress bar and metrics; [`Silent`] elsewhere).
pub trait Progress: Send + Sync {
    /// Phase `name` of `steps` steps starts (a no-op if it already has).
    fn start(&self, name: &'static str, steps: u64);
    /// Step `step` (from 1) of the current phase is done, after `updates` more input updates
    /// were entered by the calling worker.
    fn step_done(&self, step: u64, updates: u64);
}

/// Progress nobody watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _name: &'static str, _steps: u64) {}
    fn step_done(&self, _step: u64, _updates: u64) {}
}

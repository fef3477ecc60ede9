//! Whether a worker that has just found the queue empty lets the OS run another thread once
//! before it sleeps.
//!
//! Why: when tasks come in a burst (a loop that spawns, a scope's children, a channel's two
//! ends on two workers), the next one is usually only a moment away, made by a thread that is
//! runnable but not running, which is what happens on a busy machine, where two cores are shared
//! with other processes. A worker that sleeps there costs a wait system call, and then the
//! scheduler's wake-up call and a context switch for every task or two: in `benches/scope` with
//! a CPU hog beside it, about 60,000 context switches for 10,000 children, with a worker waking
//! for one or two tasks at a time. A worker that yields once first (`std::thread::yield_now`)
//! lets the thread that makes the next task run in its place, and then finds that task
//! queued: about 500 context switches, and the scope took 0.61-0.75x tokio `JoinSet`'s time
//! against 0.83-1.27x, in interleaved pairs (`benches/FINDINGS.md`).
//!
//! Only a worker that has been busy yields: one that ran at least [`BUSY_RUNS`] tasks within a
//! [`WINDOW`] of time. A worker that waits for rare work (a remote job, a timer) sleeps at once,
//! as before: a yield there would only hand the CPU to another process for a time slice, during
//! which the job that wakes the worker waits, where a sleeping worker is run as soon as it is
//! woken. Yielding before *every* sleep made the remote round trip under load 1.41-1.53x the
//! protocol by hand, against 1.22-1.37x; yielding only after a worker ran 16 tasks in a row lost
//! the scope's gain (most sleeps there follow one or two tasks); spinning instead of yielding
//! made a quiet machine's spawns slower.
//!
//! The yield is not part of the no-lost-wake-up protocol: the worker yields after it registered
//! as a sleeper and took its last look, and then looks again; see `WaitForWork`.

use std::time::{Duration, Instant};

/// How long a window of counting lasts.
const WINDOW: Duration = Duration::from_micros(250);

/// Tasks run within one [`WINDOW`] that make a worker busy: a task every 16 µs or more often.
const BUSY_RUNS: u64 = 16;

/// How many tasks one worker ran, and since when it counts: a worker's own, kept by its `run`
/// loop across its ticks.
#[derive(Debug, Default)]
pub(super) struct Pace {
    runs: u64,
    /// The window being counted: when it opened, and `runs` then. Opened by the first look at
    /// [`busy`](Self::busy), and again by the first look after it closed.
    window: Option<(Instant, u64)>,
    /// Under the model checker, whether `busy` says yes, so the models are deterministic and
    /// cover both ways.
    #[cfg(klaw_loom)]
    always_busy: bool,
}

impl Pace {
    /// A worker's pace, never busy under the model checker unless made so.
    pub(super) fn new() -> Self {
        Pace::default()
    }

    /// A pace that is always busy, for the models of the yield.
    #[cfg(all(test, klaw_loom))]
    pub(super) fn always_busy() -> Self {
        Pace { always_busy: true, ..Pace::default() }
    }

    /// Counts one task run.
    pub(super) fn ran(&mut self) {
        self.runs += 1;
    }

    /// True if this worker, finding nothing to run, should yield its thread once before it
    /// sleeps: it ran at least [`BUSY_RUNS`] tasks in the current window.
    pub(super) fn busy(&mut self) -> bool {
        #[cfg(klaw_loom)]
        return self.always_busy;
        #[cfg(not(klaw_loom))]
        self.busy_at(Instant::now())
    }

    #[cfg_attr(klaw_loom, allow(dead_code))]
    fn busy_at(&mut self, now: Instant) -> bool {
        match self.window {
            Some((opened, runs_then)) if now.saturating_duration_since(opened) <= WINDOW => {
                self.runs - runs_then >= BUSY_RUNS
            }
            _ => {
                self.window = Some((now, self.runs));
                false
            }
        }
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::*;

    fn run(pace: &mut Pace, tasks: u64) {
        (0..tasks).for_each(|_| pace.ran());
    }

    #[test]
    fn a_worker_is_busy_once_it_ran_enough_tasks_in_the_window() {
        let start = Instant::now();
        let mut pace = Pace::new();
        assert!(!pace.busy_at(start), "the first look opens a window");
        run(&mut pace, BUSY_RUNS - 1);
        assert!(!pace.busy_at(start + WINDOW / 2), "one task short");
        pace.ran();
        assert!(pace.busy_at(start + WINDOW / 2));
        assert!(pace.busy_at(start + WINDOW), "the window's last instant counts");
    }

    #[test]
    fn a_closed_window_starts_the_count_again() {
        let start = Instant::now();
        let mut pace = Pace::new();
        assert!(!pace.busy_at(start));
        run(&mut pace, 100);
        let later = start + WINDOW * 3;
        assert!(!pace.busy_at(later), "the runs of a closed window do not count");
        run(&mut pace, BUSY_RUNS - 1);
        assert!(!pace.busy_at(later + WINDOW / 2));
        pace.ran();
        assert!(pace.busy_at(later + WINDOW / 2));
    }

    #[test]
    fn tasks_run_before_the_first_look_count_in_no_window() {
        let mut pace = Pace::new();
        run(&mut pace, 1000);
        assert!(!pace.busy_at(Instant::now()));
    }
}

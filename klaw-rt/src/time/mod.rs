//! Time: sleeping, intervals, the clock, and the error of a deadline that passed ([`Elapsed`]).
//! Bounding a future by a timeout or a deadline is a cancel region: `cancel::fail_after`
//! (tokio's `timeout`) and `cancel::move_on_after`.
//!
//! Every timer of klaw is a [`Sleep`]: sleeping, intervals, a task's timeout, a cancel region's
//! or a scope's deadline, `select!`'s `after` and `at` arms. A `Sleep` follows the clock of the
//! runtime it was made on. That is real time (an `async-io` timer, so it works under any
//! executor), except on a runtime built with `Runtime::builder().start_paused(true)` or under
//! `#[klaw::test(start_paused = true)]`: there the clock is virtual. It stands still while any
//! task can make progress, and when every task waits it jumps to the next deadline, so a test
//! of an hour-long timeout takes no time and runs the same way every time. [`now`] reads the
//! clock and [`advance`] moves it by hand.
//!
//! `std::time::Instant::now()` is always real time: code that should be testable under a paused
//! clock takes the time from [`now`].
#![forbid(unsafe_code)]

pub(crate) mod clock;
mod interval;
mod sleep;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};

pub(crate) use sleep::deadline_after;

use std::future::Future;
use std::time::{Duration, Instant};

/// A timeout or deadline passed before the future finished. Typed, so it can never be confused
/// with another error or escape as a panic.
///
/// ```
/// use std::time::Duration;
/// let err = klaw::runtime::block_on(klaw::cancel::fail_after(Duration::from_millis(1), std::future::pending::<()>()))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "deadline elapsed after 1ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed after {after:?}")]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    pub(crate) fn new(after: Duration) -> Self {
        Self { after }
    }

    /// How long the future had: for `fail_after(d, ..)`, `d`, counted from the future's first
    /// poll (a region's deadline is set when it starts running, as trio's is when its `with`
    /// block is entered; tokio's `timeout` counts from when it is called); for `fail_at`, from
    /// that first poll to the deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = klaw::runtime::block_on(klaw::cancel::fail_after(Duration::from_millis(2), std::future::pending::<()>())).unwrap_err();
    /// assert_eq!(err.after(), Duration::from_millis(2));
    /// ```
    pub fn after(&self) -> Duration {
        self.after
    }
}

/// The time on the current runtime's clock: under a paused clock its virtual time (an
/// `Instant` that started at the real time the runtime was built, and moves only when the clock
/// jumps or is [`advance`]d), otherwise `Instant::now()`. Deadlines meant for klaw's timers
/// (`sleep_until`, `cancel::fail_at`, `scope!(deadline = ..)`, `select!`'s `at`) are best taken
/// from here, so that they follow the same clock.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// rt.block_on(async {
///     let start = klaw::time::now();
///     klaw::time::sleep(Duration::from_secs(3600)).await; // no real time passes
///     assert_eq!(klaw::time::now() - start, Duration::from_secs(3600));
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[inline]
pub fn now() -> Instant {
    clock::with_current(|clock| match clock {
        None => Instant::now(),
        Some(clock) => clock.now(),
    })
}

/// `now() + duration` on the current clock, saturating far in the future.
#[inline]
pub(crate) fn deadline_in(duration: Duration) -> Instant {
    deadline_after(now(), duration)
}

/// Moves a paused clock forward by `duration` by hand. It first waits until every other task
/// waits (so a task spawned just before has reached its timer), then moves the clock and fires
/// every timer due by then, in deadline order, and completes once the tasks they woke wait
/// again. Time moves on its own too, when every task waits; `advance` is for tests that poll by
/// hand, or that check what happens *before* a deadline. `advance(Duration::ZERO)` just waits
/// until every other task waits (trio's `wait_all_tasks_blocked`); such a wait comes before any
/// jump of the clock.
///
/// # Panics
/// If the current runtime's clock is not paused (or there is no runtime): real time cannot be
/// moved.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// rt.block_on(async {
///     let handle = klaw::Handle::current().unwrap();
///     let alarm = handle.spawn(klaw::time::sleep(Duration::from_secs(60)));
///     klaw::time::advance(Duration::from_secs(59)).await;
///     assert!(!alarm.is_finished());
///     klaw::time::advance(Duration::from_secs(1)).await;
///     assert!(alarm.is_finished());
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[track_caller]
pub fn advance(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
    let Some(clock) = clock::current() else {
        panic!(
            "klaw::time::advance needs a paused clock: call it under \
             #[klaw::test(start_paused = true)] or a runtime built with \
             Runtime::builder().start_paused(true)"
        )
    };
    async move {
        clock.settled().await;
        clock.advance(duration);
        clock.settled().await;
    }
}

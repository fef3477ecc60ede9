//! [`Sleep`]: the one timer of klaw. Sleeping, a task's timeout, a cancel region's or a scope's
//! deadline and `select!`'s `after`/`at` arms are all one, so all of them follow the clock of
//! the runtime they were made on.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::coop;
use crate::time::clock::{self, VirtualClock};

/// Thirty years: the deadline of a sleep whose duration does not fit in an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + duration`, or thirty years from now if that does not fit in an `Instant`.
pub(crate) fn deadline_after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration).unwrap_or_else(|| now + FAR_FUTURE)
}

/// A future that completes at its deadline: what [`sleep`] and [`sleep_until`] return, and the
/// timer behind every timeout and deadline of klaw.
///
/// A `Sleep` takes its clock when it is made: on a runtime built with
/// `start_paused(true)` (or under `#[klaw::test(start_paused = true)]`) the runtime's virtual
/// clock, anywhere else real time (an `async-io` timer). Polling it after it completed
/// completes it again.
///
/// ```
/// use std::time::Duration;
/// klaw::runtime::block_on(async {
///     let mut sleep = klaw::time::sleep(Duration::from_millis(1));
///     assert!(!sleep.is_elapsed());
///     sleep.reset(klaw::time::now()); // due now
///     (&mut sleep).await;
///     assert!(sleep.is_elapsed());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Timer,
}

enum Timer {
    Real(async_io::Timer),
    /// A timer of a paused runtime's clock; `id` while registered with it.
    Virtual {
        clock: Arc<VirtualClock>,
        id: Option<u64>,
    },
}

impl Sleep {
    /// A sleep until `deadline`, on the current thread's clock.
    #[inline]
    pub(crate) fn until(deadline: Instant) -> Sleep {
        let timer = match clock::current() {
            None => Timer::Real(async_io::Timer::at(deadline)),
            Some(clock) => Timer::Virtual { clock, id: None },
        };
        Sleep { deadline, timer }
    }

    /// A sleep of `duration` from now, on the current thread's clock.
    #[inline]
    pub(crate) fn after(duration: Duration) -> Sleep {
        let timer = clock::current();
        let now = match &timer {
            None => Instant::now(),
            Some(clock) => clock.now(),
        };
        let deadline = deadline_after(now, duration);
        let timer = match timer {
            None => Timer::Real(async_io::Timer::at(deadline)),
            Some(clock) => Timer::Virtual { clock, id: None },
        };
        Sleep { deadline, timer }
    }

    /// When it completes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let deadline = klaw::time::now() + Duration::from_secs(5);
    /// assert_eq!(klaw::time::sleep_until(deadline).deadline(), deadline);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once its clock has reached the deadline, or, for a virtual clock, once the clock
    /// has stopped (its runtime shut down: a sleep on it then completes at once, so it says it
    /// has elapsed).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!klaw::time::sleep(Duration::from_secs(60)).is_elapsed());
    /// assert!(klaw::time::sleep(Duration::ZERO).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        match &self.timer {
            Timer::Real(_) => self.now() >= self.deadline,
            Timer::Virtual { clock, .. } => clock.is_due(self.deadline),
        }
    }

    /// Moves the deadline (earlier or later), whether or not it had passed. Its clock stays the
    /// one it was made with.
    ///
    /// ```
    /// use std::time::Duration;
    /// klaw::runtime::block_on(async {
    ///     let mut sleep = klaw::time::sleep(Duration::from_secs(3600));
    ///     sleep.reset(klaw::time::now() + Duration::from_millis(1));
    ///     sleep.await; // a millisecond, not an hour
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        let old = std::mem::replace(&mut self.deadline, deadline);
        match &mut self.timer {
            Timer::Real(timer) => timer.set_at(deadline),
            Timer::Virtual { clock, id } => {
                if let Some(id) = *id {
                    clock.move_timer(old, deadline, id);
                }
            }
        }
    }

    /// The time on this sleep's clock.
    pub(crate) fn now(&self) -> Instant {
        match &self.timer {
            Timer::Real(_) => Instant::now(),
            Timer::Virtual { clock, .. } => clock.now(),
        }
    }
}

impl Sleep {
    /// Polls the timer as a deadline (a task's timeout, a region's or a scope's deadline):
    /// without the cooperative budget, so a task that spent its budget still sees a deadline
    /// pass.
    #[inline]
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Timer::Real(timer) => match Pin::new(&mut *timer).poll(cx) {
                Poll::Ready(_) => {
                    // A fired one-shot `async-io` timer never fires again: re-arm it, so a
                    // later poll completes at once (nothing is registered until then).
                    timer.set_at(self.deadline);
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
            Timer::Virtual { clock, id } => clock.poll_timer(self.deadline, id, cx.waker()),
        }
    }
}

/// A sleep that has elapsed takes part in the task's cooperative budget: a loop over sleeps
/// that are already due yields once the budget is spent, like a loop over a full channel.
impl Future for Sleep {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if coop::held_here() {
            // Cancelled beside a shield that holds the cancellation open: this sleep never
            // completes (what encloses it drops it once the shield ends), so its timer leaves a
            // paused clock, which must not jump to it meanwhile. Polled again unheld, it would
            // register again.
            this.leave_clock();
            return Poll::Pending;
        }
        coop::budgeted_unheld(cx, |cx| this.poll_deadline(cx))
    }
}

impl Sleep {
    /// Takes a virtual timer off its clock (a real one wakes nobody once its waker is gone).
    fn leave_clock(&mut self) {
        if let Timer::Virtual { clock, id } = &mut self.timer {
            if let Some(id) = id.take() {
                clock.remove_timer(self.deadline, id);
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.leave_clock();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = match self.timer {
            Timer::Real(_) => "real",
            Timer::Virtual { .. } => "virtual",
        };
        f.debug_struct("Sleep").field("deadline", &self.deadline).field("clock", &clock).finish()
    }
}

/// Waits for `duration`, on the current runtime's clock: real time, or, under a runtime built
/// with `start_paused(true)`, its virtual clock (so a test of an hour-long sleep takes no time).
/// A duration too long for an `Instant` (`Duration::MAX`) waits thirty years, as in tokio.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// klaw::runtime::block_on(klaw::time::sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
#[inline]
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::after(duration)
}

/// Waits until `deadline` (at once if it has passed), on the current runtime's clock. Under a
/// paused clock, take the deadline from [`now`](crate::time::now), not `Instant::now()`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// klaw::runtime::block_on(klaw::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
#[inline]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::until(deadline)
}

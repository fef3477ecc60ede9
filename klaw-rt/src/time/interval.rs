//! [`Interval`]: ticks at a fixed period, with tokio's choice of what to do about missed ticks.
#![forbid(unsafe_code)]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use crate::time::sleep::{Sleep, deadline_after};

/// A tick later than this after its time counts as missed (as in tokio: timers are not exact,
/// and a tick a little late is not worth changing the schedule for).
const MISSED_AFTER: Duration = Duration::from_millis(5);

/// An [`Interval`] that ticks every `period`, the first tick at once. Missed ticks are caught up
/// in a burst ([`MissedTickBehavior::Burst`]) unless [`set_missed_tick_behavior`] says otherwise.
/// Dropping the interval stops it.
///
/// Unlike `sleep(period)` in a loop, an interval counts the time spent between ticks: a loop
/// whose work takes a second, on a two-second interval, runs every two seconds, not three.
///
/// # Panics
/// If `period` is zero.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// rt.block_on(async {
///     let start = klaw::time::now();
///     let mut interval = klaw::time::interval(Duration::from_secs(10));
///     assert_eq!(interval.tick().await, start); // at once
///     assert_eq!(interval.tick().await, start + Duration::from_secs(10));
///     assert_eq!(interval.tick().await, start + Duration::from_secs(20));
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
///
/// [`set_missed_tick_behavior`]: Interval::set_missed_tick_behavior
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero");
    new_interval(Sleep::after(Duration::ZERO), period)
}

/// An [`Interval`] that ticks every `period`, the first tick at `start`. Under a paused clock,
/// take `start` from [`now`](crate::time::now).
///
/// # Panics
/// If `period` is zero.
///
/// ```
/// use std::time::Duration;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// rt.block_on(async {
///     let start = klaw::time::now() + Duration::from_secs(50);
///     let mut interval = klaw::time::interval_at(start, Duration::from_secs(10));
///     assert_eq!(interval.tick().await, start); // after 50 s
///     assert_eq!(interval.tick().await, start + Duration::from_secs(10));
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero");
    new_interval(Sleep::until(start), period)
}

fn new_interval(delay: Sleep, period: Duration) -> Interval {
    Interval { delay, period, missed_tick_behavior: MissedTickBehavior::default() }
}

/// What an [`Interval`] does about the ticks it missed: its [`tick`](Interval::tick) was called
/// more than a few milliseconds after a tick was due (the work between ticks took too long).
/// The same three choices as tokio's, with the same meaning.
///
/// With a period of 50 ms, and work after the first tick that took until 200 ms, the ticks are
/// taken at these times (ms):
///
/// ```text
///        1st  2nd  3rd  4th  5th  6th  7th
/// Burst  0    200  200  200  200  250  300   every missed tick at once, then on schedule
/// Delay  0    200  250  300  350  400  450   one tick now, then a period from it
/// Skip   0    200  250  300  350  400  450   one tick now, then the next multiple of 50
/// ```
///
/// (`tick` gives the instant each tick was *due*: under Burst the 2nd to 5th give 50, 100, 150
/// and 200.)
///
/// Delay and Skip differ when the late tick falls between two multiples of the period: with
/// the late tick at 225, Delay ticks next at 275, Skip at 250.
///
/// ```
/// use std::time::Duration;
/// use klaw::time::MissedTickBehavior;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// rt.block_on(async {
///     let start = klaw::time::now();
///     let mut interval = klaw::time::interval(Duration::from_millis(50));
///     interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
///     interval.tick().await;
///     klaw::time::sleep(Duration::from_millis(225)).await; // missed four ticks
///     assert_eq!(interval.tick().await, start + Duration::from_millis(50)); // the first missed
///     assert_eq!(interval.tick().await, start + Duration::from_millis(250)); // next on the grid
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissedTickBehavior {
    /// Ticks as fast as it can until it is caught up, then on the original schedule: every
    /// tick is a multiple of the period from the start, and none is lost. The default.
    #[default]
    Burst,
    /// Ticks once now, then every period from now: no tick is ever less than a period after
    /// the one before, and the schedule shifts by the delay.
    Delay,
    /// Ticks once now, then at the next multiple of the period from the start: the missed
    /// ticks are dropped, and the schedule stays on its grid.
    Skip,
}

impl MissedTickBehavior {
    /// When to tick next, after the tick due at `due` was taken at `now`, too late.
    fn next_timeout(self, due: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            Self::Burst => deadline_after(due, period),
            Self::Delay => deadline_after(now, period),
            Self::Skip => {
                let behind = (now - due).as_nanos() % period.as_nanos();
                let behind = u64::try_from(behind)
                    .expect("too much time has passed since the interval was due to tick");
                match now.checked_add(period) {
                    // `behind` is less than a period: the next tick is after `now`.
                    Some(next) => next - Duration::from_nanos(behind),
                    // A period too long for an `Instant`: the deadline saturates far ahead, and
                    // taking `behind` off it could bring it back to `now`, a second tick at once.
                    None => deadline_after(now, period),
                }
            }
        }
    }
}

/// Ticks every period: what [`interval`] and [`interval_at`] return. Also a
/// [`Stream`](futures_core::Stream) of the ticks' `Instant`s, which never ends.
///
/// An interval follows the clock it was made on, as a [`Sleep`] does: a paused runtime's
/// virtual clock, or real time.
///
/// ```
/// use std::time::Duration;
/// use futures_lite::StreamExt;
/// let rt = klaw::Runtime::builder().start_paused(true).build()?;
/// let ticks = rt.block_on(async {
///     let start = klaw::time::now();
///     let ticks: Vec<_> = klaw::time::interval(Duration::from_secs(1)).take(3).collect().await;
///     ticks.into_iter().map(|tick| tick - start).collect::<Vec<_>>()
/// });
/// assert_eq!(ticks, [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2)]);
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug)]
pub struct Interval {
    /// Completes at the next tick's time.
    delay: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and gives the instant it was due at (not the instant it was
    /// taken: under [`Burst`](MissedTickBehavior::Burst), missed ticks come out with their own
    /// times).
    ///
    /// # Cancel safety
    /// Cancel safe: a `tick()` future dropped before it completes (it lost a `select!`, its
    /// region was cancelled) has taken no tick; the next `tick()` gives the same one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let start = klaw::time::now();
    ///     let mut interval = klaw::time::interval(Duration::from_secs(10));
    ///     interval.tick().await;
    ///     // A tick that loses to a shorter deadline is not lost.
    ///     let lost = klaw::cancel::move_on_after(Duration::from_secs(4), interval.tick()).await;
    ///     assert_eq!(lost, None);
    ///     assert_eq!(interval.tick().await, start + Duration::from_secs(10));
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick, for code that implements `Future` or `Stream` by hand: the
    /// waker is registered only when it returns `Pending`.
    ///
    /// ```
    /// use std::task::Poll;
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let mut interval = klaw::time::interval(Duration::from_secs(1));
    ///     let first = std::future::poll_fn(|cx| Poll::Ready(interval.poll_tick(cx))).await;
    ///     assert!(first.is_ready());
    ///     let second = std::future::poll_fn(|cx| Poll::Ready(interval.poll_tick(cx))).await;
    ///     assert!(second.is_pending());
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let due = self.delay.deadline();
        let now = self.delay.now();
        let next = if now > due + MISSED_AFTER {
            self.missed_tick_behavior.next_timeout(due, now, self.period)
        } else {
            deadline_after(due, self.period)
        };
        // Not registered until the next poll: a tick just taken does not wake anyone.
        self.delay.reset(next);
        Poll::Ready(due)
    }

    /// Starts over: the next tick a period from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let mut interval = klaw::time::interval(Duration::from_secs(10));
    ///     interval.tick().await;
    ///     klaw::time::sleep(Duration::from_secs(4)).await;
    ///     interval.reset();
    ///     let now = klaw::time::now();
    ///     assert_eq!(interval.tick().await, now + Duration::from_secs(10));
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn reset(&mut self) {
        let next = deadline_after(self.delay.now(), self.period);
        self.delay.reset(next);
    }

    /// Starts over: the next tick now, the ones after it a period apart.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let mut interval = klaw::time::interval(Duration::from_secs(10));
    ///     interval.tick().await;
    ///     interval.reset_immediately();
    ///     assert_eq!(interval.tick().await, klaw::time::now());
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn reset_immediately(&mut self) {
        let now = self.delay.now();
        self.delay.reset(now);
    }

    /// Starts over: the next tick `after` from now, the ones after it a period apart.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let mut interval = klaw::time::interval(Duration::from_secs(10));
    ///     interval.tick().await;
    ///     interval.reset_after(Duration::from_secs(2));
    ///     let now = klaw::time::now();
    ///     assert_eq!(interval.tick().await, now + Duration::from_secs(2));
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn reset_after(&mut self, after: Duration) {
        let next = deadline_after(self.delay.now(), after);
        self.delay.reset(next);
    }

    /// Starts over: the next tick at `deadline`, the ones after it a period apart.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let mut interval = klaw::time::interval(Duration::from_secs(10));
    ///     interval.tick().await;
    ///     let at = klaw::time::now() + Duration::from_secs(25);
    ///     interval.reset_at(at);
    ///     assert_eq!(interval.tick().await, at);
    /// });
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn reset_at(&mut self, deadline: Instant) {
        self.delay.reset(deadline);
    }

    /// What it does about missed ticks.
    ///
    /// ```
    /// use klaw::time::MissedTickBehavior;
    /// let interval = klaw::time::interval(std::time::Duration::from_secs(1));
    /// assert_eq!(interval.missed_tick_behavior(), MissedTickBehavior::Burst);
    /// ```
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Chooses what it does about missed ticks, from the next tick on.
    ///
    /// ```
    /// use klaw::time::MissedTickBehavior;
    /// let mut interval = klaw::time::interval(std::time::Duration::from_secs(1));
    /// interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    /// assert_eq!(interval.missed_tick_behavior(), MissedTickBehavior::Delay);
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }

    /// The time between ticks.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(klaw::time::interval(Duration::from_secs(3)).period(), Duration::from_secs(3));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

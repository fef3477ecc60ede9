//! Time: sleeping, and bounding a future with a timeout or a deadline. Timers come from
//! `async-io`, so they work under any executor, not just klaw's.
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use pin_project_lite::pin_project;

/// A timeout or deadline passed before the future finished. Typed, so it can never be confused
/// with another error or escape as a panic.
///
/// ```
/// use std::time::Duration;
/// let err = klaw::block_on(klaw::timeout(Duration::from_millis(1), std::future::pending::<()>()))
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

    /// How long the future had, from the moment the timeout was created.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = klaw::block_on(klaw::timeout(Duration::from_millis(2), std::future::pending::<()>())).unwrap_err();
    /// assert_eq!(err.after(), Duration::from_millis(2));
    /// ```
    pub fn after(&self) -> Duration {
        self.after
    }
}

/// Waits for `duration`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// klaw::block_on(klaw::sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}

/// Waits until `deadline` (at once if it has passed).
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// klaw::block_on(klaw::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub async fn sleep_until(deadline: Instant) {
    Timer::at(deadline).await;
}

/// Runs `future` for at most `duration`: `Ok` with its output, or `Err(Elapsed)`.
///
/// Cancel safety: on timeout the future is dropped where it stands, like any cancelled future.
///
/// ```
/// use std::time::Duration;
/// let fast = klaw::block_on(klaw::timeout(Duration::from_secs(5), async { 1 }));
/// assert_eq!(fast, Ok(1));
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout { future, timer: Timer::after(duration), after: duration }
}

/// Runs `future` until `deadline`: `Ok` with its output, or `Err(Elapsed)`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let late = klaw::block_on(klaw::timeout_at(deadline, std::future::pending::<()>()));
/// assert!(late.is_err());
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    let after = deadline.saturating_duration_since(Instant::now());
    Timeout { future, timer: Timer::at(deadline), after }
}

pin_project! {
    /// The future of [`timeout`] and [`timeout_at`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let bounded: klaw::time::Timeout<_> = klaw::timeout(Duration::from_secs(1), async { 5 });
    /// assert_eq!(klaw::block_on(bounded), Ok(5));
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        timer: Timer,
        after: Duration,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The future goes first: one that is ready at the deadline still counts as on time.
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(this.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(Elapsed { after: *this.after })),
            Poll::Pending => Poll::Pending,
        }
    }
}

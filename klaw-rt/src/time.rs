//! Time: sleeping, and the error of a deadline that passed ([`Elapsed`]). Bounding a future by a
//! timeout or a deadline is a cancel region: `cancel::fail_after` (tokio's `timeout`) and
//! `cancel::move_on_after`. Timers come from `async-io`, so they work under any executor.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use async_io::Timer;

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

    /// How long the future had, from the moment the timeout was created.
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

/// Waits for `duration`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// klaw::runtime::block_on(klaw::time::sleep(Duration::from_millis(5)));
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
/// klaw::runtime::block_on(klaw::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub async fn sleep_until(deadline: Instant) {
    Timer::at(deadline).await;
}

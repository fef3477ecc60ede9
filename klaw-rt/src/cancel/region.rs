//! `CancelScope`: a region of async code that is cancelled as a unit, by a token or a deadline.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use pin_project_lite::pin_project;

use crate::cancel::RegionState;
use crate::task::CancelReason;
use crate::task::current::{FrameKind, push_frame};

/// A cancel region, as in trio: the future it runs is dropped when the region is cancelled by
/// its [`CancelToken`] or when its deadline passes, and the region then returns the reason.
/// Regions nest: cancelling an outer one drops everything inside it, inner regions and the
/// children of inner scopes included. Inside a region, [`is_cancelled`](crate::is_cancelled)
/// reports the region's state, and a [`shield`](crate::shield) holds the region open until the
/// shielded future finishes.
///
/// ```
/// use klaw::{CancelReason, CancelScope};
/// use std::time::Duration;
///
/// klaw::block_on(async {
///     let region = CancelScope::new().timeout(Duration::from_secs(60));
///     let token = region.token();
///     token.cancel("operator pressed stop");
///     let result = region.run(klaw::sleep(Duration::from_secs(60))).await;
///     assert_eq!(result, Err(CancelReason::user("operator pressed stop")));
/// });
/// ```
#[must_use = "a CancelScope does nothing until `run` is awaited"]
#[derive(Default)]
pub struct CancelScope {
    state: Arc<RegionState>,
    deadline: Option<Instant>,
}

impl CancelScope {
    /// A region with no deadline, cancelled only through its token.
    ///
    /// ```
    /// let region = klaw::CancelScope::new();
    /// assert!(!region.token().is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the region with [`CancelReason::Deadline`] at `deadline` (the earlier deadline
    /// wins if one was set already).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// klaw::block_on(async {
    ///     let region = klaw::CancelScope::new().deadline(Instant::now() + Duration::from_millis(5));
    ///     let result = region.run(klaw::sleep(Duration::from_secs(60))).await;
    ///     assert_eq!(result, Err(klaw::CancelReason::Deadline));
    /// });
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Cancels the region with [`CancelReason::Deadline`] `timeout` from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// klaw::block_on(async {
    ///     let region = klaw::CancelScope::new().timeout(Duration::from_millis(5));
    ///     assert!(region.run(klaw::sleep(Duration::from_secs(60))).await.is_err());
    /// });
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.deadline(Instant::now() + timeout)
    }

    /// A cloneable, `Send` handle that cancels this region from anywhere.
    ///
    /// ```
    /// let region = klaw::CancelScope::new();
    /// let token = region.token();
    /// assert!(token.cancel("stop"));
    /// assert!(!token.clone().cancel("again")); // the first reason wins
    /// ```
    pub fn token(&self) -> CancelToken {
        CancelToken(self.state.clone())
    }

    /// Runs `future` inside the region: `Ok(output)` if it finishes, `Err(reason)` if the region
    /// is cancelled first (the future is then dropped, at the `.await` it was waiting on).
    ///
    /// ```
    /// klaw::block_on(async {
    ///     assert_eq!(klaw::CancelScope::new().run(async { 3 }).await, Ok(3));
    /// });
    /// ```
    pub fn run<F: Future>(self, future: F) -> Cancellable<F> {
        Cancellable {
            future: Some(future),
            state: self.state,
            deadline: self.deadline,
            timer: None,
            started: false,
        }
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelScope")
            .field("deadline", &self.deadline)
            .field("cancelled", &self.state.reason())
            .finish()
    }
}

/// Cancels a [`CancelScope`] from anywhere: cloneable, `Send` and `Sync`.
///
/// ```
/// use std::time::Duration;
/// let region = klaw::CancelScope::new();
/// let token = region.token();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(5));
///     token.cancel("from another thread");
/// });
/// let result = klaw::block_on(region.run(klaw::sleep(Duration::from_secs(60))));
/// assert!(result.is_err());
/// ```
#[derive(Clone)]
pub struct CancelToken(Arc<RegionState>);

impl CancelToken {
    /// Cancels the region; true if this call decided it (the first reason wins).
    ///
    /// ```
    /// let token = klaw::CancelScope::new().token();
    /// assert!(token.cancel(klaw::CancelReason::Shutdown));
    /// assert_eq!(token.reason(), Some(klaw::CancelReason::Shutdown));
    /// ```
    pub fn cancel(&self, reason: impl Into<CancelReason>) -> bool {
        self.0.cancel(reason.into())
    }

    /// True once the region was cancelled.
    ///
    /// ```
    /// let token = klaw::CancelScope::new().token();
    /// assert!(!token.is_cancelled());
    /// token.cancel("stop");
    /// assert!(token.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Why the region was cancelled, if it was.
    ///
    /// ```
    /// let token = klaw::CancelScope::new().token();
    /// assert_eq!(token.reason(), None);
    /// ```
    pub fn reason(&self) -> Option<CancelReason> {
        self.0.reason().cloned()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.0.reason()).finish()
    }
}

pin_project! {
    /// The future of [`CancelScope::run`].
    ///
    /// ```
    /// let running: klaw::Cancellable<_> = klaw::CancelScope::new().run(async { 7 });
    /// assert_eq!(klaw::block_on(running), Ok(7));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Cancellable<F> {
        #[pin]
        future: Option<F>,
        state: Arc<RegionState>,
        deadline: Option<Instant>,
        timer: Option<Timer>,
        started: bool,
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, CancelReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(this.future.is_some(), "a Cancellable was polled after it finished");
        if !*this.started {
            *this.started = true;
            *this.timer = this.deadline.map(Timer::at);
        }
        this.state.register(cx.waker());
        if let Some(timer) = this.timer.as_mut() {
            if Pin::new(timer).poll(cx).is_ready() {
                this.state.cancel(CancelReason::Deadline);
                *this.timer = None;
            }
        }
        if !this.state.must_stop() {
            let polled = {
                let _frame = push_frame(FrameKind::Region(this.state.clone()));
                let future = this.future.as_mut().as_pin_mut().expect("checked above");
                future.poll(cx)
            };
            if let Poll::Ready(output) = polled {
                this.future.set(None);
                return Poll::Ready(Ok(output));
            }
            if !this.state.must_stop() {
                return Poll::Pending;
            }
        }
        this.future.set(None);
        Poll::Ready(Err(this.state.reason().cloned().unwrap_or(CancelReason::Deadline)))
    }
}

impl<F> fmt::Debug for Cancellable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("deadline", &self.deadline)
            .field("cancelled", &self.state.reason())
            .finish_non_exhaustive()
    }
}

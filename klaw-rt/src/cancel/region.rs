//! `Region`: a region of async code that is cancelled as a unit, by a token or a deadline.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::cancel::RegionState;
use crate::cancel::frames::{self, FrameKind};
use crate::cancel::token::Token;
use crate::coop;
use crate::task::CancelReason;
use crate::task::current::{self, Adopter};
use crate::task::guard;
use crate::time::{self, Sleep};

/// A cancel region, as in trio: the future it runs is dropped when the region is cancelled by
/// its [`Token`] or when its deadline passes, and the region then returns the reason.
/// Regions nest: cancelling an outer one drops everything inside it, inner regions and the
/// children of inner scopes included. Inside a region, [`is_cancelled`](crate::cancel::is_cancelled)
/// reports the region's state, and a [`shield`](crate::cancel::shield) holds the region open until the
/// shielded future finishes.
///
/// ```
/// use klaw::{CancelReason, cancel::Region};
/// use std::time::Duration;
///
/// klaw::runtime::block_on(async {
///     let region = Region::new().timeout(Duration::from_secs(60));
///     let token = region.token();
///     token.cancel("operator pressed stop");
///     let result = region.run(klaw::time::sleep(Duration::from_secs(60))).await;
///     assert_eq!(result, Err(CancelReason::user("operator pressed stop")));
/// });
/// ```
#[must_use = "a Region does nothing until `run` is awaited"]
#[derive(Default)]
pub struct Region {
    pub(super) state: Arc<RegionState>,
    pub(super) deadline: Option<Instant>,
}

impl Region {
    /// A region with no deadline, cancelled only through its token.
    ///
    /// ```
    /// let region = klaw::cancel::Region::new();
    /// assert!(!region.token().is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the region with [`CancelReason::Deadline`] at `deadline` (the earlier deadline
    /// wins if one was set already). The deadline is armed when the region starts running: the
    /// token of a region not yet run reports nothing, even past the deadline, and running it
    /// then cancels it at once.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// klaw::runtime::block_on(async {
    ///     let region = klaw::cancel::Region::new().deadline(Instant::now() + Duration::from_millis(5));
    ///     let result = region.run(klaw::time::sleep(Duration::from_secs(60))).await;
    ///     assert_eq!(result, Err(klaw::CancelReason::Deadline));
    /// });
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Cancels the region with [`CancelReason::Deadline`] `timeout` from now, on the current
    /// runtime's clock ([`klaw::time::now`](crate::time::now)).
    ///
    /// ```
    /// use std::time::Duration;
    /// klaw::runtime::block_on(async {
    ///     let region = klaw::cancel::Region::new().timeout(Duration::from_millis(5));
    ///     assert!(region.run(klaw::time::sleep(Duration::from_secs(60))).await.is_err());
    /// });
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.deadline(time::deadline_in(timeout))
    }

    /// A cloneable, `Send` handle that cancels this region from anywhere.
    ///
    /// ```
    /// let region = klaw::cancel::Region::new();
    /// let token = region.token();
    /// assert!(token.cancel("stop"));
    /// assert!(!token.clone().cancel("again")); // the first reason wins
    /// ```
    pub fn token(&self) -> Token {
        Token(self.state.clone())
    }

    /// Runs `future` inside the region: `Ok(output)` if it finishes, `Err(reason)` if the region
    /// is cancelled first (the future is then dropped, at the `.await` it was waiting on).
    ///
    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::cancel::Region::new().run(async { 3 }).await, Ok(3));
    /// });
    /// ```
    pub fn run<F: Future>(self, future: F) -> Cancellable<F> {
        Cancellable {
            future: Some(future),
            state: self.state,
            deadline: self.deadline,
            timeout: None,
            timer: None,
            started: false,
            dropped_held: false,
            outcome: None,
            adopter: Adopter::default(),
        }
    }
}

impl Region {
    /// [`run`](Self::run) with a deadline `timeout` from when the run starts (its first poll),
    /// on the clock current then: what `move_on_after` and `fail_after` return, which read the
    /// clock when first polled, and hold their future once (not once as an argument and again
    /// in the run, as an `async fn` would).
    pub(crate) fn run_for<F: Future>(self, timeout: Duration, future: F) -> Cancellable<F> {
        Cancellable {
            future: Some(future),
            state: self.state,
            deadline: self.deadline,
            timeout: Some(timeout),
            timer: None,
            started: false,
            dropped_held: false,
            outcome: None,
            adopter: Adopter::default(),
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("deadline", &self.deadline)
            .field("cancelled", &self.state.reason())
            .finish()
    }
}

pin_project! {
    /// The future of [`Region::run`].
    ///
    /// It ends only after everything it started has ended: scopes that its future dropped
    /// hand it their children, and it waits for them before it returns.
    ///
    /// ```
    /// let running: klaw::cancel::Cancellable<_> = klaw::cancel::Region::new().run(async { 7 });
    /// assert_eq!(klaw::runtime::block_on(running), Ok(7));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Cancellable<F: Future> {
        #[pin]
        future: Option<F>,
        state: Arc<RegionState>,
        deadline: Option<Instant>,
        // A deadline this long after the start, on the clock current then.
        timeout: Option<Duration>,
        timer: Option<Sleep>,
        started: bool,
        // Its future was dropped beside a shield that holds what encloses it open: it never
        // returns, and ends when what encloses it drops it.
        dropped_held: bool,
        // Decided, and waiting for what the future left running.
        outcome: Option<Result<F::Output, CancelReason>>,
        // What scopes dropped in the future left running.
        adopter: Adopter,
    }

    impl<F: Future> PinnedDrop for Cancellable<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped by what encloses it: drop the future here, and hand what still runs to
            // the enclosing frame (or, outside any klaw task, wait for it right here).
            let adopter: &Adopter = this.adopter;
            let mut future = this.future;
            // A destructor in the future that panics still leaves what it started handed over.
            guard::drop_then(
                || adopter.adopting(|| future.set(None)),
                || {
                    if let Some(descendants) = adopter.running() {
                        current::hand_over(&descendants); // with what failed in them, now and later
                    }
                    current::hand_over_failures(adopter.take_failures());
                },
            );
            // Ended: it hears nothing of what enclosed it from now on (see `leave_enclosing`).
            if *this.started {
                this.state.leave_enclosing(true);
            }
        }
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, CancelReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.outcome.is_none() {
            if *this.dropped_held {
                // Dropped beside a shield (below): only what encloses it ends it now.
                return Poll::Pending;
            }
            assert!(this.future.is_some(), "a Cancellable was polled after it finished");
            if !*this.started {
                *this.started = true;
                if let Some(timeout) = this.timeout.take() {
                    let deadline = time::deadline_in(timeout);
                    *this.deadline = Some(this.deadline.map_or(deadline, |d| d.min(deadline)));
                }
                *this.timer = this.deadline.map(time::sleep_until);
                if let Some(deadline) = *this.deadline {
                    this.state.set_deadline(deadline);
                }
                this.state.listen_to_enclosing();
            }
            this.state.register(cx.waker());
            if let Some(timer) = this.timer.as_mut() {
                if timer.poll_deadline(cx).is_ready() {
                    // An enclosing region whose deadline passed first catches it, though its
                    // own timer has not been polled since.
                    frames::expire_enclosing(timer.deadline());
                    this.state.cancel(CancelReason::Deadline);
                    *this.timer = None;
                } else if this.state.own_reason().is_some() {
                    // Cancelled already (the first reason wins): the deadline can change nothing
                    // now, so it goes, and a paused clock does not jump to it while a shield
                    // inside holds the region open.
                    *this.timer = None;
                }
            }
            if !this.state.must_stop() {
                // What encloses the region has decided to stop, and a shield outside this region
                // holds it open for now: the future must not run on meanwhile (it is dropped
                // when that shield ends, and woken then). Its deadline can change nothing now,
                // so it goes, and a paused clock does not jump to it while the shield runs.
                if this.state.is_cancelled()
                    && !this.state.is_shielded()
                    && frames::enclosing_held()
                {
                    // Nor can the future's own: it goes now, as a trio checkpoint raises
                    // `Cancelled` at once, so its destructors run and a timer it registered
                    // before the cancel (a sleep, a region inside) leaves the clock. What it
                    // left running is handed over when this region is dropped.
                    *this.timer = None;
                    *this.dropped_held = true;
                    let future = &mut this.future;
                    this.adopter.adopting(|| future.set(None));
                    return Poll::Pending;
                }
                let future = this.future.as_mut().as_pin_mut().expect("checked above");
                let state = this.state.clone();
                let adopter = &*this.adopter;
                let poll = || {
                    frames::within(FrameKind::Region(state), || {
                        adopter.adopting(|| future.poll(cx))
                    })
                };
                // Cancelled, but a shield inside holds it open: only the shield runs on.
                let polled = coop::polling_held(this.state.stopping(), poll);
                // A scope inside that returned failures in this poll, before any cancel of
                // this region it could see, made its return (and so this completion) come first.
                let claimed = this.state.take_claim();
                match polled {
                    Poll::Ready(output) if this.state.own_reason().is_none() || claimed => {
                        *this.outcome = Some(Ok(output));
                    }
                    // A completion after this region's cancellation does not win: the region
                    // reports the cancellation, as a task handle would.
                    Poll::Ready(output) => drop(output),
                    Poll::Pending if !this.state.must_stop() => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if this.outcome.is_none() {
                if frames::enclosing_stopping() {
                    // Something around this region stops too: the outermost catches it, so
                    // this one never returns (what encloses it drops it, and was woken; or,
                    // held open by a shield elsewhere, once that shield ends).
                    return Poll::Pending;
                }
                let reason = this.state.own_reason().cloned().unwrap_or(CancelReason::Deadline);
                *this.outcome = Some(Err(reason));
            }
            // The outcome is decided: the deadline can change nothing now, so it goes, and a
            // paused clock does not jump to it while what the future left running ends.
            *this.timer = None;
            let future = &mut this.future;
            this.adopter.adopting(|| future.set(None));
        }
        // The region has ended its future; it returns once what that left running has ended,
        // and hands what failed in scopes the future dropped to the frame around it.
        if let Some(descendants) = this.adopter.running() {
            if descendants.poll_empty(cx).is_pending() {
                return Poll::Pending;
            }
        }
        current::hand_over_failures(this.adopter.take_failures());
        // Ended: its token reports what it heard until now, and nothing enclosing it later.
        this.state.leave_enclosing(false);
        Poll::Ready(this.outcome.take().expect("a Cancellable returns once"))
    }
}

impl<F: Future> fmt::Debug for Cancellable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("deadline", &self.deadline)
            .field("cancelled", &self.state.reason())
            .finish_non_exhaustive()
    }
}

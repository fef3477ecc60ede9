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
use crate::cancel::state::Tie;
use crate::coop;
use crate::sync::wakers::{Ticket, leave, poll_or_wait};
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
    state: Arc<RegionState>,
    deadline: Option<Instant>,
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

/// Cancels a [`Region`] from anywhere, and tells anyone who asks whether it was: cloneable,
/// `Send` and `Sync`. A region's token also hears the cancellation of everything around the
/// region (an enclosing region, its scope, its task), with that cancellation's reason; and a
/// token can have children ([`child`](Self::child)) that are cancelled with it, as
/// tokio-util's `CancellationToken` does.
///
/// ```
/// use std::time::Duration;
/// let region = klaw::cancel::Region::new();
/// let token = region.token();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(5));
///     token.cancel("from another thread");
/// });
/// let result = klaw::runtime::block_on(region.run(klaw::time::sleep(Duration::from_secs(60))));
/// assert!(result.is_err());
/// ```
#[derive(Clone)]
pub struct Token(Arc<RegionState>);

impl Token {
    /// A token of its own, tied to no region: cancel it, hand out its [`child`](Self::child)
    /// tokens, or run futures until it is cancelled.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel("stop");
    /// assert!(token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Token(RegionState::new())
    }

    /// A token cancelled whenever this one is (with this one's reason), and which can be
    /// cancelled alone without touching this one. Chains hold even if a middle token is dropped.
    ///
    /// ```
    /// let parent = klaw::cancel::Token::new();
    /// let child = parent.child();
    /// child.cancel("only the child");
    /// assert!(!parent.is_cancelled());
    /// let other = parent.child();
    /// parent.cancel("everyone");
    /// assert_eq!(other.reason(), Some(klaw::CancelReason::user("everyone")));
    /// ```
    pub fn child(&self) -> Token {
        let child = RegionState::new();
        child.listen_to(&self.0, Tie::Token);
        Token(child)
    }

    /// Cancels the region; true if this call decided it (the first reason wins).
    ///
    /// ```
    /// let token = klaw::cancel::Region::new().token();
    /// assert!(token.cancel(klaw::CancelReason::Shutdown));
    /// assert_eq!(token.reason(), Some(klaw::CancelReason::Shutdown));
    /// ```
    pub fn cancel(&self, reason: impl Into<CancelReason>) -> bool {
        self.0.cancel(reason.into())
    }

    /// True once cancelled: by this token, a parent token, or (for a region's token) anything
    /// around the region.
    ///
    /// ```
    /// let token = klaw::cancel::Region::new().token();
    /// assert!(!token.is_cancelled());
    /// token.cancel("stop");
    /// assert!(token.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Why it was cancelled, if it was: the first cancellation it heard.
    ///
    /// ```
    /// let token = klaw::cancel::Region::new().token();
    /// assert_eq!(token.reason(), None);
    /// ```
    pub fn reason(&self) -> Option<CancelReason> {
        self.0.reason().cloned()
    }

    /// Waits until the token is cancelled and gives the reason. Any number of tasks may wait.
    ///
    /// Cancel safe: dropping the future loses nothing.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// let waiter = token.clone();
    /// std::thread::spawn(move || token.cancel("done"));
    /// let reason = klaw::runtime::block_on(waiter.cancelled());
    /// assert_eq!(reason, klaw::CancelReason::user("done"));
    /// ```
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled { state: &self.0, ticket: Ticket::default() }
    }

    /// [`cancelled`](Self::cancelled) that holds the token, so it is `'static` and can move
    /// into a spawned task (tokio-util's `cancelled_owned`).
    ///
    /// Cancel safe: dropping the future loses nothing.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// let waiting: klaw::cancel::CancelledOwned = token.clone().cancelled_owned();
    /// std::thread::spawn(move || token.cancel("done"));
    /// assert_eq!(klaw::runtime::block_on(waiting), klaw::CancelReason::user("done"));
    /// ```
    pub fn cancelled_owned(self) -> CancelledOwned {
        CancelledOwned { state: self.0, ticket: Ticket::default() }
    }

    /// Runs `future` until it finishes (`Ok`) or this token is cancelled (`Err(reason)`; the
    /// future is dropped). Like tokio-util's `run_until_cancelled`, with the reason, and with a
    /// region's rule for a tie: a future that finishes in the poll in which the token is
    /// cancelled loses to the cancellation, and its output is dropped (tokio-util's gives it).
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// let same = token.clone();
    /// let outcome = klaw::runtime::block_on(token.run_until_cancelled(async move {
    ///     same.cancel("done");
    ///     7
    /// }));
    /// assert_eq!(outcome, Err(klaw::CancelReason::user("done")));
    /// ```
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// token.cancel("stop");
    /// let outcome = klaw::runtime::block_on(token.run_until_cancelled(std::future::pending::<()>()));
    /// assert_eq!(outcome, Err(klaw::CancelReason::user("stop")));
    /// ```
    pub fn run_until_cancelled<F: Future>(&self, future: F) -> Cancellable<F> {
        Region { state: self.child().0, deadline: None }.run(future)
    }

    /// [`run_until_cancelled`](Self::run_until_cancelled), taking the token (tokio-util's
    /// `run_until_cancelled_owned`); the future it returns never borrowed it anyway.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// let running = token.clone().run_until_cancelled_owned(async { 7 });
    /// assert_eq!(klaw::runtime::block_on(running), Ok(7));
    /// ```
    pub fn run_until_cancelled_owned<F: Future>(self, future: F) -> Cancellable<F> {
        self.run_until_cancelled(future)
    }

    /// A guard that cancels the token when dropped (with [`CancelReason::ParentCancelled`]),
    /// unless [`disarm`](CancelOnDrop::disarm)ed.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new();
    /// drop(token.clone().cancel_on_drop());
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel_on_drop(self) -> CancelOnDrop {
        CancelOnDrop(Some(self))
    }
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("cancelled", &self.0.reason()).finish()
    }
}

/// Two tokens are equal if they are the same token: clones of one another, or tokens of the
/// same region. A [`child`](Token::child) is another token. As tokio-util's
/// `CancellationToken`, so tokens can key a map.
///
/// ```
/// let token = klaw::cancel::Token::new();
/// assert_eq!(token, token.clone());
/// assert_ne!(token, token.child());
/// let region = klaw::cancel::Region::new();
/// assert_eq!(region.token(), region.token());
/// let tokens: std::collections::HashSet<_> = [token.clone(), token.clone()].into();
/// assert_eq!(tokens.len(), 1);
/// ```
impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Token {}

impl std::hash::Hash for Token {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// The future of [`Token::cancelled`]: ready with the reason once the token is cancelled.
///
/// ```
/// let token = klaw::cancel::Token::new();
/// token.cancel("now");
/// let waiting: klaw::cancel::Cancelled<'_> = token.cancelled();
/// assert_eq!(klaw::runtime::block_on(waiting), klaw::CancelReason::user("now"));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Cancelled<'a> {
    state: &'a RegionState,
    ticket: Ticket,
}

impl Future for Cancelled<'_> {
    type Output = CancelReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        let Cancelled { state, ticket } = &mut *self;
        poll_cancelled(state, ticket, cx)
    }
}

/// A poll of [`Cancelled`] or [`CancelledOwned`].
fn poll_cancelled(
    state: &RegionState,
    ticket: &mut Ticket,
    cx: &mut Context<'_>,
) -> Poll<CancelReason> {
    if let Some(reason) = state.reason() {
        return Poll::Ready(reason.clone());
    }
    // The look again under the waiters' lock sees a cancel that set the reason before it; one
    // after it takes this waker out and wakes it.
    poll_or_wait(
        state.cancelled_waiters(),
        |waiters| waiters,
        ticket,
        cx,
        |_| state.reason().cloned(),
    )
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        leave(self.state.cancelled_waiters(), |waiters| waiters, &mut self.ticket);
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled").field("cancelled", &self.state.reason()).finish()
    }
}

/// The future of [`Token::cancelled_owned`]: [`Cancelled`], holding its token.
///
/// ```
/// let token = klaw::cancel::Token::new();
/// token.cancel("now");
/// let reason = klaw::runtime::block_on(token.cancelled_owned());
/// assert_eq!(reason, klaw::CancelReason::user("now"));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct CancelledOwned {
    state: Arc<RegionState>,
    ticket: Ticket,
}

impl Future for CancelledOwned {
    type Output = CancelReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        let CancelledOwned { state, ticket } = &mut *self;
        poll_cancelled(state, ticket, cx)
    }
}

impl Drop for CancelledOwned {
    fn drop(&mut self) {
        leave(self.state.cancelled_waiters(), |waiters| waiters, &mut self.ticket);
    }
}

impl fmt::Debug for CancelledOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelledOwned").field("cancelled", &self.state.reason()).finish()
    }
}

/// Cancels its token when dropped; see [`Token::cancel_on_drop`].
///
/// ```
/// let token = klaw::cancel::Token::new();
/// let guard = token.clone().cancel_on_drop();
/// let token_again = guard.disarm();
/// assert!(!token_again.is_cancelled());
/// ```
#[must_use = "dropping the guard cancels the token at once"]
#[derive(Debug)]
pub struct CancelOnDrop(Option<Token>);

impl CancelOnDrop {
    /// Gives the token back without cancelling it.
    ///
    /// ```
    /// let token = klaw::cancel::Token::new().cancel_on_drop().disarm();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn disarm(mut self) -> Token {
        self.0.take().expect("the token is there until disarmed or dropped")
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel(CancelReason::ParentCancelled);
        }
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
        }
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, CancelReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.outcome.is_none() {
            assert!(this.future.is_some(), "a Cancellable was polled after it finished");
            if !*this.started {
                *this.started = true;
                if let Some(timeout) = this.timeout.take() {
                    let deadline = time::deadline_in(timeout);
                    *this.deadline = Some(this.deadline.map_or(deadline, |d| d.min(deadline)));
                }
                *this.timer = this.deadline.map(time::sleep_until);
                this.state.listen_to_enclosing();
            }
            this.state.register(cx.waker());
            if let Some(timer) = this.timer.as_mut() {
                if timer.poll_deadline(cx).is_ready() {
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
                // when that shield ends, and woken then).
                if this.state.is_cancelled()
                    && !this.state.is_shielded()
                    && frames::enclosing_held()
                {
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

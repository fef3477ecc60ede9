//! Cancel tokens: [`Token`], which cancels a region from anywhere and says whether it was, its
//! children, and the futures that wait for it ([`Cancelled`], [`CancelledOwned`]).
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::cancel::RegionState;
use crate::cancel::region::{Cancellable, Region};
use crate::cancel::state::Tie;
use crate::sync::wakers::{Ticket, leave, poll_or_wait};
use crate::task::CancelReason;

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
pub struct Token(pub(super) Arc<RegionState>);

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
    /// around the region while the region runs. Once the region has ended, what encloses it no
    /// longer reaches its token: it keeps what it heard until then (trio's rule for a cancel
    /// scope that has exited).
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

//! The cooperative budget: how many operations a task may complete in one poll before klaw's
//! own futures make it yield, so that a task that keeps finding ready values (a channel that is
//! never empty, a `select!` whose arms are always ready) cannot keep the other tasks of its
//! worker from running. As in tokio, a task gets 128 units per poll.
//!
//! The budget lives in a thread-local. The task runner sets it around each poll of a task's
//! body (`task/runner.rs`); everything polled inside that poll (a scope's local children, an
//! inline task) shares it. `Runtime::block_on` sets one around each poll of its future, as
//! tokio's `block_on` does, so the body of `#[klaw::main]` or `#[klaw::test]` yields too (a
//! `select!` there whose first arm is always ready still gets to its other arms). Anywhere
//! else (a foreign executor, a blocking closure, `klaw::runtime::block_on`) it is unlimited, so
//! klaw's channels work there exactly as without it.
//!
//! An operation that takes part calls `poll_proceed` before it looks for its value. With the
//! budget spent, that wakes the task and returns `Pending`: the task goes to the back of the
//! queue, and the operation has taken nothing. Otherwise it takes a unit and returns a
//! `RestoreOnPending`, which gives the unit back unless the operation says it completed
//! (`made_progress`): only a `Ready` costs a unit.
//!
//! Users see [`consume_budget`] and [`unconstrained`] (as `klaw::task::...`).
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// The units a task gets for one poll (tokio's number).
const PER_POLL: u8 = 128;

/// The budget of the code polled on a thread now: whose it is, and the units left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Budget {
    /// Outside any budget: a foreign executor, a blocking closure, [`unconstrained`].
    Unlimited,
    /// A klaw task's body, with its units left.
    Task(u8),
    /// The future of a `Runtime::block_on`, with its units left. It yields as a task does, but
    /// is not a task: it runs on no worker (see [`in_klaw_task`]).
    BlockOn(u8),
}

impl Budget {
    /// The units left; `None`: unlimited.
    #[inline]
    fn left(self) -> Option<u8> {
        match self {
            Budget::Unlimited => None,
            Budget::Task(left) | Budget::BlockOn(left) => Some(left),
        }
    }

    /// The same budget with one unit fewer (called with units left only).
    #[inline]
    fn spend(self) -> Budget {
        match self {
            Budget::Task(left) => Budget::Task(left - 1),
            Budget::BlockOn(left) => Budget::BlockOn(left - 1),
            Budget::Unlimited => Budget::Unlimited,
        }
    }
}

thread_local! {
    static BUDGET: Cell<Budget> = const { Cell::new(Budget::Unlimited) };
}

/// The budget of this thread now.
#[inline]
fn current() -> Budget {
    BUDGET.try_with(Cell::get).unwrap_or(Budget::Unlimited)
}

/// True while a klaw task's body is polled here (its budget is set), as opposed to a foreign
/// executor, a `block_on` (which has a budget, but runs on no worker), a blocking closure or
/// [`unconstrained`].
#[inline]
pub(crate) fn in_klaw_task() -> bool {
    matches!(current(), Budget::Task(_))
}

// Loom runs its threads on one OS thread, where a std thread-local would be shared: under the
// model checker neither is kept (the models check the wake-up protocol, which they do not change).
#[cfg(not(klaw_loom))]
thread_local! {
    /// Inside [`hand_off`].
    static HANDING_OFF: Cell<bool> = const { Cell::new(false) };
    /// This thread is its runtime's only worker.
    static SOLE_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Set while code whose cancellation is decided but held open by a shield in it is polled
    /// ([`polling_held`]).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// How to ask whether the code polled now is cancelled outside any shield: set by the cancel
/// module when the first shield starts (only a shield can hold a cancellation open), so this
/// module, below it, needs nothing of it.
#[cfg(not(klaw_loom))]
static CANCELLED_HERE: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

/// Sets how [`polling_held`] asks whether the code polled now is cancelled outside any shield.
pub(crate) fn set_cancelled_here(cancelled: fn() -> bool) {
    #[cfg(not(klaw_loom))]
    if CANCELLED_HERE.get().is_none() {
        let _ = CANCELLED_HERE.set(cancelled);
    }
    #[cfg(klaw_loom)]
    let _ = cancelled;
}

/// Runs `wake`, which wakes the other end of a channel this task has just handed a message or
/// a place to, or the first in line of a semaphore this task has just given permits back to
/// (a `Mutex`'s unlock). The task that wakes it is about to go on, and soon to wait or yield
/// itself, on this thread: klaw's executor keeps the woken task for this worker to run next,
/// without waking a sleeping worker for it (`runtime/executor/run.rs`), so the two take turns
/// on one worker's cache instead of spreading over two.
#[inline]
pub(crate) fn hand_off(wake: impl FnOnce()) {
    #[cfg(not(klaw_loom))]
    with_flag_raised(&HANDING_OFF, wake);
    #[cfg(klaw_loom)]
    wake();
}

/// Runs `f` with this thread's `flag` raised, then puts back what it was, also if `f` unwinds.
#[inline]
pub(crate) fn with_flag_raised<R>(
    flag: &'static std::thread::LocalKey<Cell<bool>>,
    f: impl FnOnce() -> R,
) -> R {
    with_flag(flag, true, f)
}

/// Runs `f` with this thread's `flag` set to `value`, then puts back what it was, also if `f`
/// unwinds.
#[inline]
pub(crate) fn with_flag<T: Copy + 'static, R>(
    flag: &'static std::thread::LocalKey<Cell<T>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<Cell<T>>, Option<T>);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            if let Some(before) = self.1 {
                let _ = self.0.try_with(|cell| cell.set(before));
            }
        }
    }
    let _restore = Restore(flag, flag.try_with(|cell| cell.replace(value)).ok());
    f()
}

/// Marks this thread as the only worker of its runtime (or not): set once, when a worker
/// thread starts.
pub(crate) fn set_sole_worker(sole: bool) {
    #[cfg(not(klaw_loom))]
    let _ = SOLE_WORKER.try_with(|cell| cell.set(sole));
    #[cfg(klaw_loom)]
    let _ = sole;
}

/// True on the only worker of a runtime, where a task that yields cannot go to another worker.
#[inline]
pub(crate) fn is_sole_worker() -> bool {
    #[cfg(not(klaw_loom))]
    return SOLE_WORKER.try_with(Cell::get).unwrap_or(false);
    #[cfg(klaw_loom)]
    false
}

/// Runs `poll`, one poll of code whose cancellation may be decided (a region's own, a scope's,
/// its task's): if `held`, it is, and only a shield inside still holds it open. Meanwhile
/// klaw's operations polled in it make no progress where the code polled now is cancelled,
/// that is, outside the shield: they return `Pending`, taking nothing (a message stays in its
/// channel, a sleep does not fire). So what runs beside the shield (another branch of a `join`,
/// another arm of a `select!`) stops at its next such `.await`, as trio's code stops at its
/// next checkpoint, and is dropped with the rest once the shield ends, which wakes whoever
/// holds the cancellation.
pub(crate) fn polling_held<R>(held: bool, poll: impl FnOnce() -> R) -> R {
    #[cfg(not(klaw_loom))]
    if held {
        return with_flag_raised(&HELD, poll);
    }
    #[cfg(klaw_loom)]
    let _ = held; // nothing is held under the model checker
    poll()
}

/// Runs `f` with no held cancellation in force on this thread: one of klaw's blocking helpers (a
/// nested `block_on`, `send_blocking`...) called while one is, from a destructor or from code
/// beside a shield, waits for what it waits for rather than for nothing.
#[cfg(not(klaw_loom))]
pub(crate) fn not_held<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&HELD, false, f)
}

/// True if the code polled now is cancelled outside a shield that holds its cancellation open
/// (see [`polling_held`]).
#[inline]
pub(crate) fn held_here() -> bool {
    #[cfg(not(klaw_loom))]
    return HELD.try_with(Cell::get).unwrap_or(false)
        && CANCELLED_HERE.get().is_some_and(|cancelled| cancelled());
    #[cfg(klaw_loom)]
    false
}

/// True inside [`hand_off`].
#[inline]
pub(crate) fn is_handing_off() -> bool {
    #[cfg(not(klaw_loom))]
    return HANDING_OFF.try_with(Cell::get).unwrap_or(false);
    #[cfg(klaw_loom)]
    false
}

/// Runs `f` with `budget`, then puts back the budget there was before, even if `f` panics.
#[inline]
fn with_budget<R>(budget: Budget, f: impl FnOnce() -> R) -> R {
    struct Reset(Budget);

    impl Drop for Reset {
        #[inline]
        fn drop(&mut self) {
            let _ = BUDGET.try_with(|cell| cell.set(self.0));
        }
    }

    let _reset = Reset(BUDGET.try_with(|cell| cell.replace(budget)).unwrap_or(Budget::Unlimited));
    f()
}

/// Runs one poll of a task's body with a fresh budget.
#[inline]
pub(crate) fn with_task_budget<R>(poll: impl FnOnce() -> R) -> R {
    with_budget(Budget::Task(PER_POLL), poll)
}

/// Runs `f` outside the budget: what it polls completes as it would outside any task (a
/// non-waiting take, which must not report "nothing now" only because the budget is spent).
#[inline]
pub(crate) fn without_budget<R>(f: impl FnOnce() -> R) -> R {
    with_budget(Budget::Unlimited, f)
}

pin_project! {
    /// The future of a `Runtime::block_on`, polled with a fresh budget each time, as tokio's
    /// `block_on` polls its future.
    pub(crate) struct BlockOnBudget<F> {
        #[pin]
        future: F,
    }
}

/// `future`, given a fresh budget for each of its polls (see [`BlockOnBudget`]).
pub(crate) fn block_on_budget<F: Future>(future: F) -> BlockOnBudget<F> {
    BlockOnBudget { future }
}

impl<F: Future> Future for BlockOnBudget<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.project().future;
        with_budget(Budget::BlockOn(PER_POLL), || future.poll(cx))
    }
}

/// Runs one poll of a task's body: with a fresh budget if it is polled by its executor, and
/// with the budget it finds if it is polled inside another klaw task's poll or a
/// `Runtime::block_on`'s (a scope's local child, an inline task), which it then shares, as the
/// branches of a `join!` share a tokio task's. Otherwise a parent with `n` local children could
/// complete `n` times the budget's operations in one poll.
#[inline]
pub(crate) fn with_body_budget<R>(poll: impl FnOnce() -> R) -> R {
    if current() == Budget::Unlimited { with_task_budget(poll) } else { poll() }
}

/// What [`poll_proceed`] gives: the unit it took, given back when dropped unless
/// [`made_progress`](Self::made_progress) was called.
#[must_use = "dropping it at once gives the unit back"]
pub(crate) struct RestoreOnPending(
    /// The budget before the unit was taken; `None` when there is nothing to give back.
    Option<Budget>,
);

impl RestoreOnPending {
    /// The operation completed (it returns `Ready`): the unit stays spent.
    #[inline]
    pub(crate) fn made_progress(mut self) {
        self.0 = None;
    }
}

impl Drop for RestoreOnPending {
    #[inline]
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            let _ = BUDGET.try_with(|cell| cell.set(before));
        }
    }
}

/// Takes one unit of the budget before an operation: `Ready` with the unit (given back unless
/// the operation completes), or, with the budget spent, `Pending` after waking the task, which
/// is polled again, with a fresh budget, after the tasks queued before it.
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<RestoreOnPending> {
    if held_here() {
        // Cancelled, held open by a shield elsewhere: no progress, and no wake-up needed (the
        // shield's end wakes what drops this code).
        return Poll::Pending;
    }
    poll_proceed_unheld(cx)
}

/// [`poll_proceed`] for a caller that has just seen [`held_here`] false.
#[inline]
fn poll_proceed_unheld(cx: &Context<'_>) -> Poll<RestoreOnPending> {
    let taken = BUDGET.try_with(|cell| {
        let budget = cell.get();
        match budget.left() {
            None => Some(RestoreOnPending(None)),
            Some(0) => None,
            Some(_) => {
                cell.set(budget.spend());
                Some(RestoreOnPending(Some(budget)))
            }
        }
    });
    match taken {
        Ok(Some(restore)) => Poll::Ready(restore),
        Ok(None) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Err(_) => Poll::Ready(RestoreOnPending(None)), // the thread is ending: unlimited
    }
}

/// Runs `op` (one poll of an operation) as a budgeted operation: not at all if the budget is
/// spent (the task is woken and `Pending` returned), and taking a unit if it is `Ready`.
#[inline(always)]
pub(crate) fn budgeted<R>(
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    if held_here() {
        return Poll::Pending; // see `poll_proceed`
    }
    budgeted_unheld(cx, op)
}

/// [`budgeted`] for a caller that has just seen [`held_here`] false (and acted on it: a
/// channel future in line leaves its line).
#[inline(always)]
pub(crate) fn budgeted_unheld<R>(
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    let restore = std::task::ready!(poll_proceed_unheld(cx));
    let polled = op(cx);
    if polled.is_ready() {
        restore.made_progress();
    }
    polled
}

/// `Pending` (after waking the task) if the budget is spent, without taking a unit: what
/// `select!` checks first, so that with the budget spent it yields rather than take its
/// `default` arm while its channel arms have values waiting. `Ready(true)` if the code is
/// cancelled beside a shield that holds it (see [`polling_held`]): then `select!` polls its arms
/// (which take nothing, and pass on a wake-up they were given) and returns `Pending`, never
/// taking `default`. Not public API.
#[doc(hidden)]
#[inline]
pub fn __poll_budget_available(cx: &Context<'_>) -> Poll<bool> {
    if held_here() {
        return Poll::Ready(true);
    }
    if current().left() == Some(0) {
        cx.waker().wake_by_ref();
        Poll::Pending
    } else {
        Poll::Ready(false)
    }
}

/// What `cancel::checkpoint` does once it knows the code is not cancelled: in a klaw task, take
/// one unit (yielding when the budget is spent, since a task's yield costs it its place in the
/// worker's queue); anywhere else (a `Runtime::block_on`, whose yield is only a poll again, a
/// foreign executor, a blocking closure, [`unconstrained`]), yield every time, so that a
/// deadline that passed is seen at the first checkpoint after it, as in trio.
pub(crate) async fn checkpoint() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        if !in_klaw_task() {
            yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        poll_proceed(cx).map(RestoreOnPending::made_progress)
    })
    .await;
}

/// Takes one unit of the task's cooperative budget, yielding first if it is spent: for code that
/// loops over work of its own that is always ready (a computation, a local queue) and would
/// otherwise keep its worker from the other tasks. A task, and the future of a
/// `Runtime::block_on` (the body of `#[klaw::main]` and `#[klaw::test]`), gets 128 units each
/// time it is polled; klaw's channel operations, `select!`, an elapsed `sleep` and
/// `cancel::checkpoint` take one each time they complete. Anywhere else (a foreign executor,
/// a blocking closure) the budget is unlimited and this returns at once.
///
/// Cancel safety: dropping it loses nothing.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let stop = Arc::new(AtomicBool::new(false));
/// let busy = rt.spawn({
///     let stop = stop.clone();
///     async move {
///         let mut rounds = 0u64;
///         while !stop.load(Ordering::Relaxed) {
///             rounds += 1; // a step of work that never waits
///             klaw::task::consume_budget().await; // yields once every 128 rounds
///         }
///         rounds
///     }
/// });
/// // On the same, only worker: it runs because `busy` yields.
/// let stopper = rt.spawn(async move { stop.store(true, Ordering::Relaxed) });
/// rt.block_on(stopper)?;
/// rt.block_on(busy)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn consume_budget() {
    std::future::poll_fn(|cx| poll_proceed(cx).map(RestoreOnPending::made_progress)).await;
}

/// Yields once: the task goes back to its executor's queue, behind the tasks already waiting
/// to run there, and is polled again after them (tokio's `task::yield_now`). It completes on
/// its second poll. Under any executor, or none: it only wakes its own task and returns
/// `Pending` once. Unlike [`consume_budget`], it yields every time.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// // One worker: the waiting task lets the other run only because it yields.
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let set = Arc::new(AtomicBool::new(false));
/// let waiter = rt.spawn({
///     let set = set.clone();
///     async move {
///         while !set.load(Ordering::SeqCst) {
///             klaw::task::yield_now().await;
///         }
///     }
/// });
/// let setter = rt.spawn(async move { set.store(true, Ordering::SeqCst) });
/// rt.block_on(waiter)?;
/// rt.block_on(setter)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
///
/// ```
/// let yielding: klaw::task::YieldNow = klaw::task::yield_now();
/// klaw::runtime::block_on(yielding);
/// ```
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Runs `future` with no cooperative budget: the operations in it never yield for the budget
/// (and take nothing from the task's). For a burst that must not be interrupted; a future that
/// keeps finding ready values in it keeps its worker from the other tasks, so use it sparingly.
///
/// ```
/// use std::future::Future;
/// use std::task::Poll;
///
/// /// How many receives complete in one poll, out of 1000 messages waiting.
/// async fn in_one_poll(rx: &klaw::channel::Receiver<u32>) -> usize {
///     std::future::poll_fn(|cx| {
///         let mut ready = 0;
///         while let Poll::Ready(Ok(_)) = std::pin::pin!(rx.recv()).poll(cx) {
///             ready += 1;
///         }
///         Poll::Ready(ready)
///     })
///     .await
/// }
///
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let (tx, rx) = klaw::channel::unbounded::<u32>();
/// for n in 0..2000 {
///     tx.try_send(n).unwrap();
/// }
/// let counts = rt.spawn(async move {
///     let budgeted = in_one_poll(&rx).await; // stops when the budget is spent
///     let unconstrained = klaw::task::unconstrained(in_one_poll(&rx)).await;
///     (budgeted, unconstrained)
/// });
/// assert_eq!(rt.block_on(counts)?, (128, 1872));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

pin_project! {
    /// A future run with no cooperative budget: what [`unconstrained`] returns.
    ///
    /// ```
    /// let free: klaw::task::Unconstrained<_> = klaw::task::unconstrained(async { 1 });
    /// assert_eq!(klaw::runtime::block_on(free), 1);
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Unconstrained<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.project().future;
        with_budget(Budget::Unlimited, || future.poll(cx))
    }
}

pin_project! {
    /// A future that takes one unit of the budget for its whole operation (`wait_for`'s loop).
    pub(crate) struct Cooperative<F> {
        #[pin]
        future: F,
    }
}

/// Makes `future` one budgeted operation: it takes a unit when it completes, and yields
/// before it is polled once the budget is spent.
pub(crate) fn cooperative<F: Future>(future: F) -> Cooperative<F> {
    Cooperative { future }
}

impl<F: Future> Future for Cooperative<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.project().future;
        budgeted(cx, |cx| future.poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn left() -> Option<u8> {
        current().left()
    }

    fn proceed() -> Poll<RestoreOnPending> {
        poll_proceed(&Context::from_waker(Waker::noop()))
    }

    #[test]
    fn budget_is_unlimited_outside_a_task_and_fresh_for_each_poll() {
        assert_eq!(left(), None);
        assert!(proceed().is_ready());
        assert_eq!(left(), None);
        with_task_budget(|| {
            assert_eq!(left(), Some(PER_POLL));
            // Given back when the operation turned out to be pending.
            drop(proceed());
            assert_eq!(left(), Some(PER_POLL));
            let Poll::Ready(restore) = proceed() else { panic!("the budget is fresh") };
            restore.made_progress();
            assert_eq!(left(), Some(PER_POLL - 1));
            // A nested task poll (an unconstrained future) does not touch the outer budget.
            with_budget(Budget::Unlimited, || {
                assert!(proceed().is_ready());
                assert_eq!(left(), None);
            });
            assert_eq!(left(), Some(PER_POLL - 1));
            for _ in 1..PER_POLL {
                let Poll::Ready(restore) = proceed() else { panic!("units are left") };
                restore.made_progress();
            }
            assert_eq!(left(), Some(0));
            assert!(proceed().is_pending());
            assert!(__poll_budget_available(&Context::from_waker(Waker::noop())).is_pending());
        });
        assert_eq!(left(), None);
    }

    #[test]
    fn a_block_on_has_a_budget_but_is_no_task() {
        let mut polls = 0;
        let mut future = std::pin::pin!(block_on_budget(std::future::poll_fn(|_| {
            polls += 1;
            assert_eq!(left(), Some(PER_POLL), "fresh for each poll");
            assert!(!in_klaw_task(), "a block_on runs on no worker");
            for _ in 0..PER_POLL {
                let Poll::Ready(restore) = proceed() else { panic!("units are left") };
                restore.made_progress();
            }
            assert!(proceed().is_pending());
            // A local child polled in it shares it.
            with_body_budget(|| {
                assert!(!in_klaw_task());
                assert_eq!(left(), Some(0));
            });
            if polls == 2 { Poll::Ready(()) } else { Poll::Pending }
        })));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(future.as_mut().poll(&mut cx).is_ready());
        assert_eq!(left(), None, "put back after each poll");
    }

    #[test]
    fn a_panicking_poll_puts_the_budget_back() {
        let caught = std::panic::catch_unwind(|| with_task_budget(|| panic!("in a poll")));
        assert!(caught.is_err());
        assert_eq!(left(), None);
    }
}

//! A [`BlockingTask`] awaited inline: on the current runtime's blocking pool, or on this thread
//! when there is no runtime. (Here, beside the scopes: what the closure fails with after its
//! await was dropped is reported as a cancelled child's failure is.)
//!
//! On the pool, the closure is a descendant of the code that awaits it, as a scope's blocking
//! child is of its scope: an await dropped before the closure returned (its region or task was
//! cancelled, a `select!` took another arm) cancels the job, so that `is_cancelled()` is true in
//! it, and hands it to the innermost frame around the await (a region, a scope, a task), which
//! ends only after the closure has returned, as a dropped scope hands over its children
//! (`task::current::hand_over`). A failure the closure returns after that cancel is that
//! frame's to report, as a cancelled child's is its scope's; so is one it returned before the
//! drop that the await never read, even one published only after the drop (the job's end waits
//! for what the closure itself left running). The job starts at the first poll, not when the future is
//! made: an await in a region that is already cancelled is dropped unpolled, and runs nothing.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::cancel::frames;
use crate::error::Error;
use crate::runtime::spawn::ParentLink;
use crate::runtime::{Handle, Placement};
use crate::scope::registry::Failure;
use crate::sync::Mutex;
use crate::task::core::{CoreRef, FailureTaker, Header, TaskCore};
use crate::task::current;
use crate::task::descendants::{AdoptedFailure, Descendants};
use crate::task::error::BoxError;
use crate::task::guard::guarded_boxed;
use crate::task::handle::TaskOutput;
use crate::task::runner::task_span;
use crate::task::spec::is_large;
use crate::task::state::Kind;
use crate::task::{
    BlockingTask, CancelReason, ExitReason, Outcome, TaskError, TaskHandle, TaskId, TaskInfo,
};

/// A [`BlockingTask`] awaited inline: it runs on the current runtime's blocking pool, or on this
/// thread when there is no runtime (as under a plain `klaw::runtime::block_on`).
///
/// ```
/// use std::future::IntoFuture;
/// let inline: klaw::task::InlineBlockingTask<u8, _> = klaw::task::BlockingTask::new(|| 2u8).into_future();
/// assert_eq!(klaw::runtime::block_on(inline), Ok(2));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct InlineBlockingTask<T: Send + 'static, E: Send + 'static> {
    state: InlineBlocking<T, E>,
}

// Nothing in it is pinned in place: the handle is `Unpin` and the output is only moved out.
impl<T: Send + 'static, E: Send + 'static> Unpin for InlineBlockingTask<T, E> {}

enum InlineBlocking<T, E> {
    /// Not polled yet: nothing runs until the first poll (as no future does), so an await in a
    /// region cancelled before it is reached never starts the closure (trio's "the entry is a
    /// cancellation point"). Boxed: the type names only the output, not the closure.
    Unstarted(Start<T, E>),
    /// The job on the pool, and what counts it until it has ended: handed to the frame around
    /// the await if the await is dropped first.
    /// With `unread_failure` for its types (which the future's own bounds cannot name), and
    /// the slot where a dropped await leaves the handle for the job's end.
    OnPool(TaskHandle<T, E>, Arc<Descendants>, UnreadFailure<T, E>, Arc<Mutex<Unread>>),
    /// The job's output was taken: what still counts is a failure adopted after a cancel that
    /// came while the await ran (a shutdown's).
    Awaited(Arc<Descendants>),
    /// Boxed: so the future is as small as its handle whatever the output, and a large output
    /// is not copied by value through the frames that made it.
    Ran(Option<Box<TaskOutput<T, E>>>),
}

/// What starts an inline job at the first poll. In a `std` mutex that is never locked (only
/// `get_mut` reaches it): so the future is `Sync` whenever its output is, as it was when the job
/// started at once, whatever the closure is.
type Start<T, E> = std::sync::Mutex<Option<Box<dyn FnOnce() -> InlineBlocking<T, E> + Send>>>;

/// How a job awaited inline reports to the code that awaits it: its end, and a failure after
/// its await was dropped (which cancelled it).
struct AwaitedBy {
    running: Arc<Descendants>,
    name: Option<String>,
    unread: Arc<Mutex<Unread>>,
}

/// Where the job's handle is, for a failure the await never read: the job's outcome can be
/// decided (the closure failed) long before it is published, when the job's end waits for what
/// the closure left running. An await dropped in between leaves the handle here, and the job's
/// end reads the failure from it once published; an await dropped after the end reads it itself.
enum Unread {
    /// The await holds the handle.
    Held,
    /// The await was dropped before the job ended: this takes the failure the job published,
    /// if it failed (it also drops the handle, so it runs outside the lock).
    Left(Box<dyn FnOnce() -> Option<Error> + Send>),
    /// The job has ended: its output is published.
    Ended,
}

impl<E: Into<BoxError> + Send + 'static> ParentLink<E> for AwaitedBy {
    /// The await gives the output, failure or not: there is no scope to fail.
    fn before_publish(&self, _: Kind) {}

    /// The closure failed after the await was dropped: the frame the job was handed to reports
    /// it (or, outside any frame, it is logged).
    fn raced(&self, task: &Header, error: TaskError<E>) {
        let error = Error::of_task(Some(TaskInfo::new(task.id(), self.name.as_deref())), error);
        self.running.adopt_failure(Box::new(Failure::Raced(error)));
    }

    fn adopted(&self, failure: Box<dyn AdoptedFailure>) {
        self.running.adopt_failure(failure);
    }

    /// Reports first a failure that a dropped await left unread: it reaches the frame the job
    /// was handed to before that frame can see the job gone.
    fn ended(self) {
        let unread = std::mem::replace(&mut *self.unread.lock(), Unread::Ended);
        if let Unread::Left(read) = unread {
            if let Some(failure) = read() {
                self.running.adopt_failure(Box::new(Failure::Raced(failure)));
            }
        }
        self.running.ended();
    }

    /// The await takes the output, failure or not; dropped, it cancelled the job first.
    fn failure_taker(&self) -> FailureTaker {
        FailureTaker::HandleOnly
    }

    fn list<T: Send + 'static>(&mut self, _: CoreRef<TaskCore<TaskOutput<T, E>>>) {
        unreachable!("a blocking task awaited inline waits for no slot of a limit")
    }

    /// No scope: the regions around the await are the code's own, which the job does not see.
    fn region(&self) -> Option<&std::sync::Arc<crate::cancel::RegionState>> {
        None
    }
}

impl<F, O, M> IntoFuture for BlockingTask<F, M>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    M::Err: Into<BoxError>,
{
    type Output = TaskOutput<M::Ok, M::Err>;
    type IntoFuture = InlineBlockingTask<M::Ok, M::Err>;

    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::task::BlockingTask::new(|| 6 * 7).await, Ok(42));
    /// });
    /// ```
    fn into_future(self) -> InlineBlockingTask<M::Ok, M::Err> {
        // A large closure goes down the layers (and the pool thread's) as a pointer, as a large
        // future does, boxed once, here; decided at compile time.
        let start: Box<dyn FnOnce() -> InlineBlocking<M::Ok, M::Err> + Send> =
            if const { is_large::<F>() } {
                let task = self.boxed();
                Box::new(move || inline(task))
            } else {
                Box::new(move || inline(self))
            };
        InlineBlockingTask { state: InlineBlocking::Unstarted(std::sync::Mutex::new(Some(start))) }
    }
}

/// Starts `task` on the current runtime's blocking pool, or runs it here without a runtime.
fn inline<F, O, M>(task: BlockingTask<F, M>) -> InlineBlocking<M::Ok, M::Err>
where
    F: FnOnce() -> O + Send + 'static,
    O: 'static,
    M: Outcome<O> + 'static,
    M::Err: Into<BoxError>,
{
    match Handle::current() {
        Ok(runtime) => {
            let running = Descendants::new();
            running.add();
            let unread = Arc::new(Mutex::new(Unread::Held));
            let link = AwaitedBy {
                running: running.clone(),
                name: task.name.as_deref().map(str::to_owned),
                unread: unread.clone(),
            };
            // Awaited under a shield, the closure is held by it as a scope's child there is, at a
            // runtime's shutdown too.
            let under_shield = frames::scope_under_shield();
            let placement = Placement { under_shield, ..Placement::default() };
            let handle = runtime.spawn_blocking_child(task, placement, |joiner| {
                if under_shield {
                    joiner.core().header().mark_under_shield();
                }
                Some(link)
            });
            InlineBlocking::OnPool(handle, running, unread_failure::<M::Ok, M::Err>, unread)
        }
        Err(_) => {
            let span = task_span(TaskId::next(), task.name.as_deref(), None);
            let _span = span.as_ref().map(|span| span.enter());
            InlineBlocking::Ran(Some(guarded_boxed::<M, O>(task.body)))
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Future for InlineBlockingTask<T, E> {
    type Output = TaskOutput<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Something around the await has decided to stop (a shield beside it may hold that open
        // for now): the await is dropped once nothing holds it, so a closure not started yet
        // never starts, and one running hears the cancel now, as a scope's blocking child does.
        let stopping = frames::enclosing_stopping();
        if let InlineBlocking::Unstarted(start) = &mut self.state {
            if stopping {
                return Poll::Pending; // what encloses it wakes the task when it drops it
            }
            let start = start.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            let start = start.take().expect("an InlineBlockingTask is started once");
            self.state = start();
        }
        match &mut self.state {
            InlineBlocking::Unstarted(_) => unreachable!("started above"),
            InlineBlocking::OnPool(handle, running, ..) => {
                if stopping {
                    handle.cancel(CancelReason::ParentCancelled);
                }
                let polled = Pin::new(handle).poll(cx);
                if polled.is_ready() {
                    self.state = InlineBlocking::Awaited(running.clone());
                }
                polled
            }
            InlineBlocking::Awaited(_) => {
                panic!("an InlineBlockingTask was polled after it completed")
            }
            InlineBlocking::Ran(output) => Poll::Ready(
                *output.take().expect("an InlineBlockingTask is polled to completion once"),
            ),
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Drop for InlineBlockingTask<T, E> {
    fn drop(&mut self) {
        let running = match std::mem::replace(&mut self.state, InlineBlocking::Ran(None)) {
            InlineBlocking::OnPool(mut handle, running, unread_failure, unread) => {
                // A closure still running hears the cancel; a job whose outcome is decided
                // (it returned, and may still wait for what it left running) keeps it.
                handle.cancel(CancelReason::ParentCancelled);
                let mut slot = unread.lock();
                if matches!(*slot, Unread::Ended) {
                    drop(slot);
                    // Dropped after the job ended, unread (its region was cancelled before the
                    // awaiting code saw the output): the frame around the await reports a
                    // failure, as it would one that came a moment later, after the cancel.
                    if let Some(failure) = unread_failure(&mut handle) {
                        current::hand_over_failures(vec![Box::new(Failure::Raced(failure))]);
                    }
                } else {
                    // Dropped before the job ended: the frame around the await waits for it
                    // (outside any frame, this blocks until it has ended), and the job's end
                    // reads the failure it publishes from the handle left here.
                    *slot = Unread::Left(Box::new(move || unread_failure(&mut handle)));
                    drop(slot);
                    current::hand_over(&running);
                }
                running
            }
            InlineBlocking::Awaited(running) => running,
            InlineBlocking::Unstarted(_) | InlineBlocking::Ran(_) => return,
        };
        // A failure after a cancel that came first (a shutdown's) while the await still ran, or
        // one the job's end read before the frame took its count.
        current::hand_over_failures(running.take_failures());
    }
}

/// What [`unread_failure`] is, for a job's output types.
type UnreadFailure<T, E> = fn(&mut TaskHandle<T, E>) -> Option<Error>;

/// The failure a job that has ended published, if nobody took its output: named as the scope
/// names a child's. A value, or a cancellation, is left in the handle.
fn unread_failure<T: Send + 'static, E: Into<BoxError> + Send + 'static>(
    handle: &mut TaskHandle<T, E>,
) -> Option<Error> {
    if handle.poll_done(&mut Context::from_waker(Waker::noop())).is_pending() {
        return None;
    }
    // A value, or a cancellation, stays for the handle's drop, which drops it with a panic in
    // its destructor caught, and never copies a large one through this frame.
    let failed = matches!(
        handle.exit_reason(),
        ExitReason::Error | ExitReason::Panicked | ExitReason::TimedOut
    );
    if !failed {
        return None;
    }
    let error = handle.take_output().err()?;
    Some(Error::of_task(Some(TaskInfo::new(handle.id(), handle.name())), error))
}

impl<T: Send + 'static, E: Send + 'static> fmt::Debug for InlineBlockingTask<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on_pool = matches!(self.state, InlineBlocking::OnPool(..));
        let started = !matches!(self.state, InlineBlocking::Unstarted(_));
        f.debug_struct("InlineBlockingTask")
            .field("started", &started)
            .field("on_pool", &on_pool)
            .finish()
    }
}

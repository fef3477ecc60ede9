//! `TaskHandle`: await a task's result, watch its state, cancel it. `TaskRef`: cancel only.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::task::core::{HeaderRef, Joiner};
use crate::task::error::TaskError;
use crate::task::spec::is_large;
use crate::task::{CancelReason, ExitReason, TaskId};

/// The output slot of a task whose success is `T` and failure `E`.
pub(crate) type TaskOutput<T, E> = Result<T, TaskError<E>>;

/// A handle to a spawned task: await it for the task's result, or cancel it.
///
/// Awaiting gives `Result<T, TaskError<E>>` once the task has *ended*: its body has returned,
/// failed, panicked, or been dropped after a cancel or timeout, and every descendant it started
/// (the children of the scopes it ran, theirs, and so on) has ended too. The first terminal state wins:
/// a task cancelled before it starts never runs its body, a task that completed is never reported
/// cancelled, and a completion that comes after a cancel is discarded.
///
/// Dropping the handle detaches the task; it keeps running. (Inside a scope, the scope still
/// owns it.) The value of a task whose handle is gone is dropped when the task ends (or with the
/// handle, if it had ended), as tokio's `JoinHandle` does, whatever [`TaskRef`]s remain; so a
/// child's value that its scope's body never took is gone when the scope returns.
///
/// ```
/// use klaw::{CancelReason, TaskError, task::ExitReason};
///
/// let rt = klaw::Runtime::builder().workers(2).build()?;
/// let handle = rt.spawn(std::future::pending::<()>());
/// assert!(handle.cancel("no longer needed"));
/// assert_eq!(handle.exit_reason(), ExitReason::Cancelled);
/// let result = rt.block_on(handle);
/// assert!(matches!(result, Err(TaskError::Cancelled(CancelReason::User(_)))));
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[must_use = "dropping a TaskHandle detaches the task; await it or keep it to cancel it"]
pub struct TaskHandle<T, E = Infallible> {
    joiner: Joiner<TaskOutput<T, E>>,
}

impl<T: Send + 'static, E: Send + 'static> TaskHandle<T, E> {
    pub(crate) fn new(joiner: Joiner<TaskOutput<T, E>>) -> Self {
        Self { joiner }
    }

    /// The task's id.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async { klaw::task::current_task_id() });
    /// let id = handle.id();
    /// assert_eq!(rt.block_on(handle), Ok(Some(id)));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn id(&self) -> TaskId {
        self.joiner.header().id()
    }

    /// The task's name, if it was given one.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(klaw::Task::new(async {}).name("index"));
    /// assert_eq!(handle.name(), Some("index"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.joiner.header().name()
    }

    /// How the task ended, or `Pending`. Changes at most once: the moment the outcome is decided
    /// (a cancel that wins shows at once, even while the body is still being dropped).
    ///
    /// ```
    /// use klaw::task::ExitReason;
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(handle.exit_reason(), ExitReason::Pending);
    /// handle.cancel("stop");
    /// assert_eq!(handle.exit_reason(), ExitReason::Cancelled); // at once, before the body is dropped
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn exit_reason(&self) -> ExitReason {
        self.joiner.header().exit_reason()
    }

    /// True once the task has ended and its result is ready: awaiting will not wait.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async { 1 });
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(rt.block_on(handle), Ok(1)); // does not wait
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.joiner.header().is_done()
    }

    /// True once the body has started running. A task cancelled before it started never will.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let handle = rt.spawn(async move {
    ///     started_tx.send(()).unwrap();
    ///     std::future::pending::<()>().await;
    /// });
    /// started.recv().unwrap();
    /// assert!(handle.has_started());
    /// handle.cancel("stop");
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn has_started(&self) -> bool {
        self.joiner.header().has_started()
    }

    /// The cancel reason, if the task ended cancelled.
    ///
    /// ```
    /// use klaw::CancelReason;
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(handle.cancel_reason(), None);
    /// handle.cancel(CancelReason::user("user pressed stop"));
    /// assert_eq!(handle.cancel_reason(), Some(CancelReason::user("user pressed stop")));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.joiner.header().cancel_reason()
    }

    /// Cancels the task. Returns true if this call decided the outcome, false if the task had
    /// already ended or another cancel got there first.
    ///
    /// The token exists before the task is scheduled, so a cancel right after `spawn` always
    /// takes effect: if the body has not started it never will; if it is running it is dropped
    /// at its next `.await` point (or, for a blocking task, sees [`is_cancelled`](crate::cancel::is_cancelled)).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// assert!(handle.cancel("first"));   // decided the outcome
    /// assert!(!handle.cancel("second")); // already decided
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn cancel(&self, reason: impl Into<CancelReason>) -> bool {
        self.joiner.cancel(reason.into())
    }

    /// A cloneable, `Send` reference to the task, for another thread or task: it reads how the
    /// task ended (`exit_reason`, `cancel_reason`, `id`) and can cancel it, but cannot await it.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// let task = handle.task_ref();
    /// let other = task.clone();
    /// assert!(other.cancel("from a clone"));
    /// assert!(task.is_cancelled());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn task_ref(&self) -> TaskRef {
        TaskRef(self.joiner.header_ref())
    }

    /// Registers `hook` to run once if the task is cancelled or times out (at once if it already
    /// was). Backends use this to forward a cancel, e.g. to a remote worker. A panicking hook is
    /// contained: it neither reaches the canceller nor stops other hooks. If the task ends
    /// otherwise, the hook never runs: it is dropped when the task ends (before this handle
    /// resolves), or at once if the task had ended.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// handle.on_cancel(move |reason| tx.send(reason.clone()).unwrap());
    /// handle.cancel("stop");
    /// assert_eq!(rx.recv().unwrap(), klaw::CancelReason::user("stop"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn on_cancel(&self, hook: impl FnOnce(&CancelReason) + Send + 'static) {
        self.joiner.header().on_cancel(Box::new(hook));
    }
}

impl<T: Send + 'static, E: Send + 'static> TaskHandle<T, E> {
    /// Ready once the task has ended, without taking its output.
    /// Cancelled before its body ever ran (and not yet ended).
    pub(crate) fn is_cancelled_unstarted(&self) -> bool {
        self.joiner.header().is_cancelled() && self.is_unstarted()
    }

    pub(crate) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.joiner.poll_done(cx)
    }

    /// The output, once [`poll_done`](Self::poll_done) was ready.
    pub(crate) fn take_output(&mut self) -> Result<T, TaskError<E>> {
        self.joiner.take_done_output()
    }

    /// [`take_output`](Self::take_output), boxed: for a large output, which goes up to the code
    /// that awaits it as a pointer (see `is_large`).
    pub(crate) fn take_output_boxed(&mut self) -> Box<Result<T, TaskError<E>>> {
        self.joiner.take_done_output_boxed()
    }
}

impl<T, E> TaskHandle<T, E> {
    /// Neither started nor ended: a child still waiting for a slot of its scope's limit.
    pub(crate) fn is_unstarted(&self) -> bool {
        let header = self.joiner.header();
        !header.has_started() && !header.is_done()
    }

    /// Wakes `waker` when the task is cancelled (at once if it already was). The key withdraws
    /// it with [`forget_cancel_wake`](Self::forget_cancel_wake); `None` if it already ran, or
    /// never will (the task ended otherwise).
    pub(crate) fn wake_on_cancel(&self, waker: Waker) -> Option<usize> {
        self.joiner.header().on_cancel_keyed(Box::new(move |_| waker.wake()))
    }

    /// Withdraws a wake of [`wake_on_cancel`](Self::wake_on_cancel) that has not run.
    pub(crate) fn forget_cancel_wake(&self, key: usize) {
        self.joiner.header().remove_hook(key);
    }
}

impl<T: Send + 'static, E: Send + 'static> Future for TaskHandle<T, E> {
    type Output = Result<T, TaskError<E>>;

    /// In a klaw task it takes part in the [cooperative budget](crate::coop::consume_budget),
    /// as tokio's `JoinHandle` does in tokio's: a loop that awaits handles of tasks that have
    /// already ended yields once the budget is spent.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A large output comes up boxed and leaves its box only here, in the awaiting code's
        // last frame (see `is_large`). Decided at compile time: a small one takes its old path.
        if const { is_large::<Self::Output>() } {
            match crate::coop::budgeted(cx, |cx| self.joiner.poll_output_boxed(cx)) {
                Poll::Ready(output) => Poll::Ready(*output),
                Poll::Pending => Poll::Pending,
            }
        } else {
            crate::coop::budgeted(cx, |cx| self.joiner.poll_output(cx))
        }
    }
}

impl<T, E> fmt::Debug for TaskHandle<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.joiner.header();
        f.debug_struct("TaskHandle")
            .field("id", &header.id())
            .field("name", &header.name())
            .field("exit_reason", &header.exit_reason())
            .finish()
    }
}

/// A reference to a task that anyone can hold: cloneable and `Send`, it reads how the task
/// ended and can cancel it, while the [`TaskHandle`] alone awaits its result (like tokio's
/// `AbortHandle`, which it also replaces). Keeping one keeps only the task's small shared state
/// alive, not the task.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn(std::future::pending::<()>());
/// let task = handle.task_ref();
/// std::thread::spawn(move || task.cancel("from another thread")).join().unwrap();
/// assert!(rt.block_on(handle).is_err());
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Clone)]
pub struct TaskRef(HeaderRef);

impl TaskRef {
    /// Cancels the task; see [`TaskHandle::cancel`].
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let task = rt.spawn(std::future::pending::<()>()).task_ref(); // handle dropped: detached
    /// assert!(task.cancel("stop"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn cancel(&self, reason: impl Into<CancelReason>) -> bool {
        self.0.cancel(reason.into())
    }

    /// The task's id.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async {});
    /// assert_eq!(handle.task_ref().id(), handle.id());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn id(&self) -> TaskId {
        self.0.header().id()
    }

    /// True once the task's outcome is decided as cancelled or timed out.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let task = rt.spawn(std::future::pending::<()>()).task_ref();
    /// assert!(!task.is_cancelled());
    /// task.cancel("stop");
    /// assert!(task.is_cancelled());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.0.header().is_cancelled()
    }

    /// Why the task was cancelled, if it ended cancelled.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let task = rt.spawn(std::future::pending::<()>()).task_ref();
    /// task.cancel("no longer needed");
    /// assert_eq!(task.cancel_reason(), Some(klaw::CancelReason::user("no longer needed")));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.0.header().cancel_reason()
    }

    /// True once the task has ended: its body has been dropped and its outcome published, as
    /// [`TaskHandle::is_finished`] says (tokio's `AbortHandle::is_finished`). A cancelled task's
    /// [`exit_reason`](Self::exit_reason) says `Cancelled` as soon as the cancel is decided,
    /// which can be before: while its body's destructors still run, or a shield holds it.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async { 1 });
    /// let task = handle.task_ref();
    /// rt.block_on(handle).unwrap();
    /// assert!(task.is_finished());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.0.header().is_done()
    }

    /// How the task ended, or `Pending`.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async { 1 });
    /// let task = handle.task_ref();
    /// rt.block_on(handle).unwrap();
    /// assert_eq!(task.exit_reason(), klaw::task::ExitReason::Success);
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn exit_reason(&self) -> ExitReason {
        self.0.header().exit_reason()
    }

    /// Registers a cancel hook; see [`TaskHandle::on_cancel`].
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let task = rt.spawn(std::future::pending::<()>()).task_ref();
    /// task.cancel("stop");
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// task.on_cancel(move |_| tx.send(()).unwrap()); // already cancelled: runs at once
    /// assert!(rx.try_recv().is_ok());
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn on_cancel(&self, hook: impl FnOnce(&CancelReason) + Send + 'static) {
        self.0.header().on_cancel(Box::new(hook));
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.0.header();
        f.debug_struct("TaskRef")
            .field("id", &header.id())
            .field("exit_reason", &header.exit_reason())
            .finish()
    }
}

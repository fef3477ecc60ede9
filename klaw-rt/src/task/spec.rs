//! What can be spawned: a future, or a [`Task`] that adds a name, a timeout and a failure mode.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use crate::task::error::TaskError;
use crate::task::remote::RemoteCall;

/// How a task's output maps to its [`ExitReason`](crate::task::ExitReason): what is a success, what
/// is a failure. Implemented by [`Plain`] and [`Fallible`].
///
/// ```
/// use klaw::{TaskError, task::{Fallible, Outcome, Plain}};
/// assert_eq!(<Plain as Outcome<Result<u8, ()>>>::split(Err(())), Ok(Err(())));
/// assert_eq!(<Fallible as Outcome<Result<u8, ()>>>::split(Err(())), Err(TaskError::Failed(())));
/// ```
pub trait Outcome<O> {
    /// The value a successful task gives.
    type Ok: Send + 'static;
    /// The error a failed task gives, inside [`TaskError::Failed`](crate::task::TaskError::Failed).
    type Err: Send + 'static;
    /// Splits the output into success or failure. Only a task whose body stands for another
    /// task (a remote one) ends with anything but `Ok` or `Failed`.
    fn split(output: O) -> Result<Self::Ok, TaskError<Self::Err>>;
}

/// Every output is a success (the default for a bare future): a `Result` stays a value, so
/// awaiting the handle gives `Result<Result<T, E>, TaskError>`, as with `tokio::spawn`.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let plain: klaw::Task<_, klaw::task::Plain> = klaw::Task::new(async { Err::<(), &str>("a value") });
/// assert_eq!(rt.block_on(rt.spawn(plain)), Ok(Err("a value")));
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Plain;

/// The output is a `Result`; `Err(e)` makes the task end with
/// [`ExitReason::Error`](crate::task::ExitReason::Error) and [`TaskError::Failed(e)`](crate::task::TaskError::Failed).
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let fallible: klaw::Task<_, klaw::task::Fallible> = klaw::Task::fallible(async { Err::<(), &str>("a failure") });
/// assert_eq!(rt.block_on(rt.spawn(fallible)), Err(klaw::TaskError::Failed("a failure")));
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fallible;

impl<O: Send + 'static> Outcome<O> for Plain {
    type Ok = O;
    type Err = Infallible;
    fn split(output: O) -> Result<O, TaskError<Infallible>> {
        Ok(output)
    }
}

impl<T: Send + 'static, E: Send + 'static> Outcome<Result<T, E>> for Fallible {
    type Ok = T;
    type Err = E;
    fn split(output: Result<T, E>) -> Result<T, TaskError<E>> {
        output.map_err(TaskError::Failed)
    }
}

/// The body stands for a task that runs elsewhere (a remote one): its output is already the
/// outcome that task had, so a panic or a timeout there is one here too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relayed;

impl<T: Send + 'static, E: Send + 'static> Outcome<Result<T, TaskError<E>>> for Relayed {
    type Ok = T;
    type Err = E;
    fn split(output: Result<T, TaskError<E>>) -> Result<T, TaskError<E>> {
        output
    }
}

/// A future with the options a task can carry: a name, a timeout, and whether an `Err` output
/// counts as a failure. `#[klaw::task]` builds these; you can also build one by hand.
///
/// ```
/// use klaw::{Task, TaskError, task::ExitReason};
/// use std::time::Duration;
///
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let parse = rt.spawn(Task::fallible(async { "x".parse::<u32>() }).name("parse"));
/// let slow = rt.spawn(Task::new(klaw::time::sleep(Duration::from_secs(60))).timeout(Duration::from_millis(5)));
/// rt.block_on(async {
///     assert!(matches!(parse.await, Err(TaskError::Failed(_))));
///     assert!(matches!(slow.await, Err(TaskError::TimedOut(_))));
/// });
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[must_use = "a Task does nothing until it is spawned or awaited"]
pub struct Task<F, M = Plain> {
    pub(crate) future: F,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) timeout: Option<Duration>,
    /// Set by `#[klaw::task(remote)]`: a runtime with a remote backend runs it there.
    pub(crate) remote: Option<Box<RemoteCall>>,
    mode: PhantomData<fn() -> M>,
}

impl<F: Future> Task<F, Plain> {
    /// A task whose every output is a success.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let plain = rt.spawn(klaw::Task::new(async { "9".parse::<u8>() }));
    /// assert_eq!(rt.block_on(plain), Ok(Ok(9))); // a plain task's Result is its value
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn new(future: F) -> Self {
        Task { future, name: None, timeout: None, remote: None, mode: PhantomData }
    }
}

impl<F, T, E> Task<F, Fallible>
where
    F: Future<Output = Result<T, E>>,
{
    /// A task whose `Err` output is a failure: its handle gives `Result<T, TaskError<E>>`.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let fallible = rt.spawn(klaw::Task::fallible(async { "9".parse::<u8>() }));
    /// assert_eq!(rt.block_on(fallible), Ok(9)); // Err would be TaskError::Failed
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn fallible(future: F) -> Self {
        Task { future, name: None, timeout: None, remote: None, mode: PhantomData }
    }
}

impl<F, M> Task<F, M> {
    /// Names the task (shown in `Debug`, logs and `TaskHandle::name`).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// assert_eq!(rt.spawn(klaw::Task::new(async {}).name("flush")).name(), Some("flush"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Ends the task with [`TaskError::TimedOut`](crate::task::TaskError::TimedOut) if it has not
    /// finished `timeout` after it first starts running.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let slow = rt.spawn(klaw::Task::new(klaw::time::sleep(Duration::from_secs(9))).timeout(Duration::from_millis(5)));
    /// assert_eq!(rt.block_on(slow), Err(klaw::TaskError::TimedOut(Duration::from_millis(5))));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The size, in bytes, from which a future is moved to the heap where it enters klaw (a spawn,
/// a `block_on`, a region's `move_on_after`/`fail_after`), before it is passed down. A blocking
/// task's closure is boxed from the same size where it enters (`spawn_blocking`, the spawn of a
/// `BlockingTask`, its inline await): it goes down as many layers, on the spawning thread and
/// then on the pool's (whose threads have the default 2 MiB stack too).
///
/// In a debug build every function that takes a future by value keeps a copy of it in its frame,
/// and a spawn passes it through a dozen generic layers (the spawn, the task, the runner,
/// `async-task`): a 200 KiB future then overflows a 2 MiB thread stack (libtest's), where tokio
/// does not. 2048 is `async-task`'s own bound, which heap-allocates any future of that size or
/// more, but only at the bottom of those layers; tokio boxes above the same 2048 bytes in its
/// `spawn` and `block_on` (`BOX_FUTURE_THRESHOLD`, 16 KiB in its release builds). klaw boxes at
/// the same bound in every build: a spawned future of that size would be boxed by `async-task`
/// anyway (so a release build makes no extra allocation, only an earlier one), and a blocked-on
/// or region's future is boxed once per call, nothing beside what such a call waits for.
pub(crate) const BOX_FUTURE_THRESHOLD: usize = 2048;

/// Whether a future (or a blocking closure) of type `F` is moved to the heap at klaw's entries. Always called in
/// `if const { .. }`: decided at compile time, so a small future (every benchmark's) compiles to
/// the path it always took, with no check and no allocation.
pub(crate) const fn is_large<F>() -> bool {
    size_of::<F>() >= BOX_FUTURE_THRESHOLD
}

impl<F, M> Task<F, M> {
    /// The same task with its future on the heap, so that what is passed down the layers of a
    /// spawn is a pointer (see [`BOX_FUTURE_THRESHOLD`]).
    pub(crate) fn boxed(self) -> Task<Pin<Box<F>>, M> {
        let Task { future, name, timeout, remote, mode } = self;
        Task { future: Box::pin(future), name, timeout, remote, mode }
    }
}

impl<F, M> fmt::Debug for Task<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("remote", &self.remote.as_ref().map(|call| call.task_name()))
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "remote")]
impl<F, M> Task<F, M> {
    /// The same task whose every output is a value (what a worker runs: it sends the output
    /// whole, and the submitter splits it).
    pub(crate) fn into_plain(self) -> Task<F, Plain> {
        Task {
            future: self.future,
            name: self.name,
            timeout: self.timeout,
            remote: None,
            mode: PhantomData,
        }
    }
}

impl<F: Future, M: Outcome<F::Output>> Task<F, M> {
    /// The registered name of the remote task this runs as, if it is one.
    ///
    /// ```
    /// assert_eq!(klaw::Task::new(async {}).remote_name(), None);
    /// ```
    pub fn remote_name(&self) -> Option<&'static str> {
        self.remote.as_ref().map(|call| call.task_name())
    }
}

/// A blocking function with the options a task can carry: a name, and whether an `Err` output
/// counts as a failure. `#[klaw::task(blocking)]` builds these. It runs on the runtime's blocking
/// pool, spawned in a scope (`s.spawn(task)`) or awaited inline (`task.await`).
///
/// ```
/// use klaw::task::BlockingTask;
/// klaw::runtime::block_on(async {
///     let sum = BlockingTask::new(|| (1..=10u64).sum::<u64>()).name("sum");
///     assert_eq!(sum.await, Ok(55));
///     let parse = BlockingTask::fallible(|| "x".parse::<u8>());
///     assert!(matches!(parse.await, Err(klaw::TaskError::Failed(_))));
/// });
/// ```
#[must_use = "a BlockingTask does nothing until it is spawned or awaited"]
pub struct BlockingTask<F, M = Plain> {
    pub(crate) body: F,
    pub(crate) name: Option<Cow<'static, str>>,
    mode: PhantomData<fn() -> M>,
}

impl<F> BlockingTask<F, Plain> {
    /// A blocking task whose every output is a success.
    ///
    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::task::BlockingTask::new(|| 2 + 2).await, Ok(4));
    /// });
    /// ```
    pub fn new<O>(body: F) -> Self
    where
        F: FnOnce() -> O,
    {
        BlockingTask { body, name: None, mode: PhantomData }
    }
}

impl<F> BlockingTask<F, Fallible> {
    /// A blocking task whose `Err` output is a failure.
    ///
    /// ```
    /// klaw::runtime::block_on(async {
    ///     assert_eq!(klaw::task::BlockingTask::fallible(|| "7".parse::<u8>()).await, Ok(7));
    /// });
    /// ```
    pub fn fallible<T, E>(body: F) -> Self
    where
        F: FnOnce() -> Result<T, E>,
    {
        BlockingTask { body, name: None, mode: PhantomData }
    }
}

impl<F, M> BlockingTask<F, M> {
    /// Names the task (shown in `Debug`, logs and `TaskHandle::name`).
    ///
    /// ```
    /// let task = klaw::task::BlockingTask::new(|| ()).name("fsync");
    /// assert!(format!("{task:?}").contains("fsync"));
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<F, M> BlockingTask<F, M> {
    /// The same task with its closure on the heap, so that what is passed down the layers of a
    /// spawn is a pointer (see [`BOX_FUTURE_THRESHOLD`]): `Box<F>` is itself a `FnOnce`.
    pub(crate) fn boxed(self) -> BlockingTask<Box<F>, M> {
        let BlockingTask { body, name, mode } = self;
        BlockingTask { body: Box::new(body), name, mode }
    }
}

impl<F, M> fmt::Debug for BlockingTask<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Anything a runtime can spawn: a future (as a [`Plain`] task) or a [`Task`].
///
/// ```
/// fn spawnable<T: klaw::task::IntoTask>(task: T) -> klaw::Task<T::Future, T::Mode> {
///     task.into_task()
/// }
/// let task = spawnable(async { 1 }).name("one");
/// assert_eq!(klaw::runtime::block_on(task), Ok(1));
/// ```
pub trait IntoTask {
    /// The future the task runs.
    type Future: Future;
    /// How its output maps to success or failure.
    type Mode: Outcome<<Self::Future as Future>::Output> + 'static;
    /// Converts into a task.
    fn into_task(self) -> Task<Self::Future, Self::Mode>;
}

impl<F: Future> IntoTask for F
where
    F::Output: Send + 'static,
{
    type Future = F;
    type Mode = Plain;
    fn into_task(self) -> Task<F, Plain> {
        Task::new(self)
    }
}

impl<F: Future, M: Outcome<F::Output> + 'static> IntoTask for Task<F, M> {
    type Future = F;
    type Mode = M;
    fn into_task(self) -> Self {
        self
    }
}

/// The success type of a spawnable `T`.
pub(crate) type OkOf<T> = <<T as IntoTask>::Mode as Outcome<OutputOf<T>>>::Ok;
/// The failure type of a spawnable `T`.
pub(crate) type ErrOf<T> = <<T as IntoTask>::Mode as Outcome<OutputOf<T>>>::Err;
type OutputOf<T> = <<T as IntoTask>::Future as Future>::Output;

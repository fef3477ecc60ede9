//! The errors of tasks, and `Error`, the one error type a klaw program can `?` everything into.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::time::Duration;

use crate::remote::RemoteError;
use crate::runtime::{BuildError, ConfigError, NoRuntime};
use crate::task::CancelReason;
use crate::time::Elapsed;

/// A boxed error, `Send + Sync`, as a task's failure is carried inside [`Error`].
///
/// ```
/// let error: klaw::BoxError = "disk full".into();
/// assert_eq!(error.to_string(), "disk full");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why awaiting a task did not give its value. `E` is the task's own error type
/// ([`Infallible`] for a task that cannot fail, i.e. one spawned from a bare future).
///
/// ```
/// use klaw::{Task, TaskError};
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let failed = rt.spawn(Task::fallible(async { Err::<(), _>(std::fmt::Error) }));
/// let panicked = rt.spawn(async { panic!("boom") });
/// rt.block_on(async {
///     assert!(matches!(failed.await, Err(TaskError::Failed(std::fmt::Error))));
///     match panicked.await {
///         Err(TaskError::Panicked(message)) => assert_eq!(message, "boom"),
///         other => panic!("unexpected {other:?}"),
///     }
/// });
/// # Ok::<(), klaw::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError<E = Infallible> {
    /// The task's body returned `Err(e)` (fallible tasks only).
    #[error("task failed: {0}")]
    Failed(#[source] E),
    /// The task was cancelled before it finished.
    #[error("task was cancelled ({0})")]
    Cancelled(CancelReason),
    /// The task's body panicked, with this message; the runtime went on.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The task's own timeout passed before it finished.
    #[error("task timed out after {0:?}")]
    TimedOut(Duration),
    /// A remote task could not be run, or its result could not come back (see [`RemoteError`]).
    /// Boxed: it is rare, and every task's output slot is as large as its largest variant.
    #[error("remote task: {0}")]
    Remote(#[source] Box<RemoteError>),
}

impl<E> TaskError<E> {
    /// True if the task was cancelled (not failed, panicked or timed out).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// handle.cancel("stop");
    /// assert!(rt.block_on(handle).unwrap_err().is_cancelled());
    /// # Ok::<(), klaw::BuildError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }

    /// Maps the task's own error, keeping the other variants.
    ///
    /// ```
    /// use klaw::TaskError;
    /// let err: TaskError<std::num::ParseIntError> = TaskError::Failed("x".parse::<u8>().unwrap_err());
    /// let mapped: TaskError<String> = err.map_failed(|e| e.to_string());
    /// assert_eq!(mapped, TaskError::Failed("invalid digit found in string".to_owned()));
    /// ```
    pub fn map_failed<F>(self, f: impl FnOnce(E) -> F) -> TaskError<F> {
        match self {
            Self::Failed(error) => TaskError::Failed(f(error)),
            Self::Cancelled(reason) => TaskError::Cancelled(reason),
            Self::Panicked(message) => TaskError::Panicked(message),
            Self::TimedOut(after) => TaskError::TimedOut(after),
            Self::Remote(error) => TaskError::Remote(error),
        }
    }
}

/// A task's own error, boxed, as [`Error::Task`] carries it. Displays as the error itself, and
/// can be downcast back to it.
///
/// ```
/// use klaw::{Error, Task, TaskError};
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let err: Error = rt.block_on(rt.spawn(Task::fallible(async { "x".parse::<u8>() }))).unwrap_err().into();
/// let Error::Task(TaskError::Failed(failure)) = err else { panic!("{err}") };
/// assert!(failure.downcast_ref::<std::num::ParseIntError>().is_some());
/// # Ok::<(), klaw::BuildError>(())
/// ```
#[derive(Debug)]
pub struct TaskFailure(BoxError);

impl TaskFailure {
    pub(crate) fn new(error: BoxError) -> Self {
        Self(error)
    }

    /// The error as its own type, if it is an `E`.
    ///
    /// ```
    /// use klaw::{Error, TaskError};
    /// let err: Error = TaskError::Failed(std::fmt::Error).into();
    /// let Error::Task(TaskError::Failed(failure)) = &err else { unreachable!() };
    /// assert!(failure.downcast_ref::<std::fmt::Error>().is_some());
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The boxed error.
    ///
    /// ```
    /// use klaw::{Error, TaskError};
    /// let err: Error = TaskError::Failed(std::fmt::Error).into();
    /// let Error::Task(TaskError::Failed(failure)) = err else { unreachable!() };
    /// let boxed: klaw::BoxError = failure.into_inner();
    /// assert!(boxed.is::<std::fmt::Error>());
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.0
    }
}

impl std::fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TaskFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Every error klaw gives, in one type, so `?` works across tasks, timeouts and configuration.
///
/// ```
/// use klaw::Task;
/// fn run() -> Result<u32, klaw::Error> {
///     let rt = klaw::Runtime::builder().build()?; // BuildError → Error
///     let task = rt.spawn(Task::fallible(async { "42".parse::<u32>() }));
///     let value = rt.block_on(task)?;             // TaskError<ParseIntError> → Error
///     Ok(value)
/// }
/// assert_eq!(run().unwrap(), 42);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task did not give its value: it failed, was cancelled, panicked or timed out.
    #[error(transparent)]
    Task(TaskError<TaskFailure>),
    /// A `timeout` or deadline passed.
    #[error(transparent)]
    Elapsed(#[from] Elapsed),
    /// The runtime could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// No runtime was current where one was needed.
    #[error(transparent)]
    NoRuntime(#[from] NoRuntime),
    /// Several things failed in one scope: the first, then the others in the order they
    /// happened. (A scope where one thing failed returns that error itself.)
    #[error(transparent)]
    Scope(ScopeError),
    /// Any other error, from user code.
    #[error(transparent)]
    Other(BoxError),
}

impl Error {
    /// The error that happened first: for [`Error::Scope`], its first error (recursively);
    /// otherwise `self`.
    ///
    /// ```
    /// let error = klaw::Error::other("disk full");
    /// assert_eq!(error.first().to_string(), "disk full");
    /// ```
    pub fn first(&self) -> &Error {
        match self {
            Self::Scope(scope) => scope.first().first(),
            other => other,
        }
    }

    /// Wraps any error of user code.
    ///
    /// ```
    /// let err = klaw::Error::other("disk full");
    /// assert_eq!(err.to_string(), "disk full");
    /// ```
    pub fn other(error: impl Into<BoxError>) -> Self {
        Self::Other(error.into())
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Build(BuildError::Config(error))
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<TaskError<E>> for Error {
    fn from(error: TaskError<E>) -> Self {
        Self::Task(error.map_failed(|error| TaskFailure(Box::new(error))))
    }
}

/// Several failures of one scope, the first first: what cancelled the scope (in supervisor mode,
/// simply the earliest), then every other, in the order they happened. None is dropped.
///
/// ```
/// # #[klaw::main(workers = 2)]
/// # async fn main() {
/// let error = klaw::scope!(supervisor, |s| {
///     for i in 0..3 {
///         s.spawn(klaw::Task::fallible(async move { Err::<(), _>(format!("job {i} failed")) }));
///     }
///     Ok(())
/// })
/// .unwrap_err();
/// let klaw::Error::Scope(failures) = error else { panic!("expected several failures") };
/// assert_eq!(failures.len(), 3);
/// assert!(failures.first().to_string().contains("failed"));
/// # }
/// ```
#[derive(Debug)]
pub struct ScopeError {
    errors: Vec<Error>,
}

impl ScopeError {
    pub(crate) fn new(errors: Vec<Error>) -> Self {
        debug_assert!(errors.len() >= 2, "a ScopeError holds several errors");
        Self { errors }
    }

    /// The first failure.
    ///
    /// ```
    /// # fn check(failures: &klaw::ScopeError) -> &klaw::Error {
    /// failures.first()
    /// # }
    /// ```
    pub fn first(&self) -> &Error {
        &self.errors[0]
    }

    /// Every failure, the first first.
    ///
    /// ```
    /// # fn check(failures: &klaw::ScopeError) -> usize {
    /// failures.errors().iter().filter(|e| matches!(e, klaw::Error::Task(_))).count()
    /// # }
    /// ```
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// How many failures (at least two).
    ///
    /// ```
    /// # fn check(failures: &klaw::ScopeError) -> bool {
    /// failures.len() >= 2
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ScopeError` holds at least two errors.
    ///
    /// ```
    /// # fn check(failures: &klaw::ScopeError) -> bool {
    /// !failures.is_empty()
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Takes the failures out, the first first.
    ///
    /// ```
    /// # fn check(failures: klaw::ScopeError) -> Vec<klaw::Error> {
    /// failures.into_errors()
    /// # }
    /// ```
    pub fn into_errors(self) -> Vec<Error> {
        self.errors
    }
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failures in one scope; first: {}", self.errors.len(), self.errors[0])?;
        for other in &self.errors[1..] {
            write!(f, "; then: {other}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScopeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.errors[0])
    }
}

/// Channel errors convert into [`Error::Other`] for `?`; the value a send refused stays inside
/// (downcast the error to `SendError<T>` to get it back).
///
/// ```
/// async fn forward(tx: &klaw::channel::Sender<u32>) -> Result<(), klaw::Error> {
///     tx.send(1).await?; // SendError<u32> → klaw::Error
///     Ok(())
/// }
/// let (tx, rx) = klaw::channel::<u32>(1);
/// drop(rx);
/// let error = klaw::block_on(forward(&tx)).unwrap_err();
/// let klaw::Error::Other(inner) = error else { panic!() };
/// assert_eq!(inner.downcast::<klaw::channel::SendError<u32>>().unwrap().into_inner(), 1);
/// ```
impl<T: Send + Sync + 'static> From<crate::channel::SendError<T>> for Error {
    fn from(error: crate::channel::SendError<T>) -> Self {
        Self::Other(Box::new(error))
    }
}

impl<T: Send + Sync + 'static> From<crate::channel::TrySendError<T>> for Error {
    fn from(error: crate::channel::TrySendError<T>) -> Self {
        Self::Other(Box::new(error))
    }
}

impl From<crate::channel::RecvError> for Error {
    fn from(error: crate::channel::RecvError) -> Self {
        Self::Other(Box::new(error))
    }
}

impl From<crate::channel::TryRecvError> for Error {
    fn from(error: crate::channel::TryRecvError) -> Self {
        Self::Other(Box::new(error))
    }
}

impl From<crate::channel::broadcast::RecvError> for Error {
    fn from(error: crate::channel::broadcast::RecvError) -> Self {
        Self::Other(Box::new(error))
    }
}

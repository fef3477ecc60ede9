//! Why awaiting a task did not give its value: [`TaskError`], and the boxed [`TaskFailure`] a
//! scope carries a child's own error in.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::time::Duration;

use crate::task::CancelReason;
use crate::task::remote::RemoteError;

/// A boxed error, `Send + Sync`, as a task's failure is carried inside [`Error`](crate::error::Error).
///
/// ```
/// let error: klaw::task::BoxError = "disk full".into();
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
/// # Ok::<(), klaw::runtime::BuildError>(())
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
    /// # Ok::<(), klaw::runtime::BuildError>(())
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

/// A task's own error, boxed, as [`Error::Task`](crate::error::Error::Task) carries it. Displays as the error itself, and
/// can be downcast back to it.
///
/// ```
/// use klaw::{Error, Task, TaskError};
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let err: Error = rt.block_on(rt.spawn(Task::fallible(async { "x".parse::<u8>() }))).unwrap_err().into();
/// let Error::Task(TaskError::Failed(failure)) = err else { panic!("{err}") };
/// assert!(failure.downcast_ref::<std::num::ParseIntError>().is_some());
/// # Ok::<(), klaw::runtime::BuildError>(())
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
    /// let boxed: klaw::task::BoxError = failure.into_inner();
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

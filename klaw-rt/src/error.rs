//! The errors of tasks, and `Error`, the one error type a klaw program can `?` everything into.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::time::Duration;

use crate::runtime::{BuildError, ConfigError, NoRuntime};
use crate::task::CancelReason;
use crate::time::Elapsed;

/// A boxed error, `Send + Sync`, as a task's failure is carried inside [`Error`].
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
}

impl<E> TaskError<E> {
    /// True if the task was cancelled (not failed, panicked or timed out).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }

    /// Maps the task's own error, keeping the other variants.
    pub fn map_failed<F>(self, f: impl FnOnce(E) -> F) -> TaskError<F> {
        match self {
            Self::Failed(error) => TaskError::Failed(f(error)),
            Self::Cancelled(reason) => TaskError::Cancelled(reason),
            Self::Panicked(message) => TaskError::Panicked(message),
            Self::TimedOut(after) => TaskError::TimedOut(after),
        }
    }
}

/// Every error klaw gives, in one type, so `?` works across tasks, timeouts and configuration.
///
/// ```
/// use klaw::Task;
/// fn run() -> Result<u32, klaw::Error> {
///     let rt = klaw::Runtime::builder().build()?; // ConfigError → Error
///     let task = rt.spawn(Task::fallible(async { "42".parse::<u32>() }));
///     let value = rt.block_on(task)?;             // TaskError<ParseIntError> → Error
///     Ok(value)
/// }
/// assert_eq!(run().unwrap(), 42);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task's body returned an error.
    #[error("task failed: {0}")]
    Failed(#[source] BoxError),
    /// A task was cancelled.
    #[error("task was cancelled ({0})")]
    Cancelled(CancelReason),
    /// A task panicked.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// A task's own timeout passed.
    #[error("task timed out after {0:?}")]
    TimedOut(Duration),
    /// A `timeout` or deadline passed.
    #[error(transparent)]
    Elapsed(#[from] Elapsed),
    /// The runtime could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// No runtime was current where one was needed.
    #[error(transparent)]
    NoRuntime(#[from] NoRuntime),
    /// Any other error, from user code.
    #[error(transparent)]
    Other(BoxError),
}

impl Error {
    /// Wraps any error of user code.
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
        match error {
            TaskError::Failed(error) => Self::Failed(Box::new(error)),
            TaskError::Cancelled(reason) => Self::Cancelled(reason),
            TaskError::Panicked(message) => Self::Panicked(message),
            TaskError::TimedOut(after) => Self::TimedOut(after),
        }
    }
}

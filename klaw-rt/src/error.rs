//! `Error`, the one error type a klaw program can `?` everything into, and `ScopeError`, the
//! failures of one scope together.
#![forbid(unsafe_code)]

use crate::runtime::{BuildError, ConfigError, NoRuntime};
use crate::task::error::{BoxError, TaskError, TaskFailure};
use crate::time::Elapsed;

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
        Self::Task(error.map_failed(|error| TaskFailure::new(Box::new(error))))
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
    /// # fn check(failures: &klaw::scope::ScopeError) -> &klaw::Error {
    /// failures.first()
    /// # }
    /// ```
    pub fn first(&self) -> &Error {
        &self.errors[0]
    }

    /// Every failure, the first first.
    ///
    /// ```
    /// # fn check(failures: &klaw::scope::ScopeError) -> usize {
    /// failures.errors().iter().filter(|e| matches!(e, klaw::Error::Task(_))).count()
    /// # }
    /// ```
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// How many failures (at least two).
    ///
    /// ```
    /// # fn check(failures: &klaw::scope::ScopeError) -> bool {
    /// failures.len() >= 2
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ScopeError` holds at least two errors.
    ///
    /// ```
    /// # fn check(failures: &klaw::scope::ScopeError) -> bool {
    /// !failures.is_empty()
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Takes the failures out, the first first.
    ///
    /// ```
    /// # fn check(failures: klaw::scope::ScopeError) -> Vec<klaw::Error> {
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
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// drop(rx);
/// let error = klaw::runtime::block_on(forward(&tx)).unwrap_err();
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

//! `Error`, the one error type a klaw program can `?` everything into, and `ScopeError`, the
//! failures of one scope together.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use crate::runtime::{BuildError, ConfigError, NoRuntime};
use crate::task::TaskId;
use crate::task::error::{BoxError, TaskError, TaskFailure, TaskInfo};
use crate::time::Elapsed;

/// Every error klaw gives, in one type, so `?` works across tasks, timeouts and configuration.
///
/// Each layer says what happened and gives the cause as its [`source`](std::error::Error::source),
/// so a report (anyhow's `{:#}` or `{:?}`, eyre's) prints the whole chain once, and the root
/// cause can be found by downcasting along it.
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
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A task did not give its value: it failed, was cancelled, panicked or timed out. `task`
    /// says which, when it is known (a scope always knows its children).
    #[non_exhaustive]
    Task {
        /// The task, if known.
        task: Option<TaskInfo>,
        /// What happened to it; a failure carries the task's own error.
        error: TaskError<TaskFailure>,
    },
    /// The body of a scope returned this error.
    Body(BoxError),
    /// A `timeout` or deadline passed.
    Elapsed(Elapsed),
    /// The runtime could not be built.
    Build(BuildError),
    /// No runtime was current where one was needed.
    NoRuntime(NoRuntime),
    /// Several things failed in one scope: the first, then the others in the order they
    /// happened. (A scope where one thing failed returns that error itself.)
    Scope(ScopeError),
    /// Any other error: one that user code wraps with [`Error::other`], or that `?` converts
    /// (an I/O error, a channel's). Like every layer it says what happened in its own words,
    /// "an operation failed", and gives that error as its `source`, so a report prints it once
    /// and anyhow's `root_cause` or a downcast along the chain finds it.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let error = klaw::Error::other(std::io::Error::other("disk full"));
    /// assert_eq!(error.to_string(), "an operation failed");
    /// let source = error.source().unwrap();
    /// assert_eq!(source.to_string(), "disk full");
    /// assert!(source.downcast_ref::<std::io::Error>().is_some());
    /// ```
    Other(BoxError),
}

impl Error {
    /// The error that happened first: for [`Error::Scope`], its first error (recursively);
    /// otherwise `self`.
    ///
    /// ```
    /// let error = klaw::Error::other("disk full");
    /// assert!(matches!(error.first(), klaw::Error::Other(_)));
    /// ```
    pub fn first(&self) -> &Error {
        match self {
            Self::Scope(scope) => scope.first().first(),
            other => other,
        }
    }

    /// What happened to the task this error is about, if it is about one ([`Error::Task`], or
    /// a scope's [`first`](Self::first) error that is): what tokio's `JoinError` says.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// let error = klaw::scope!(|s| {
    ///     let mut set = s.child_set::<(), std::convert::Infallible>();
    ///     set.spawn(std::future::pending());
    ///     set.cancel_all("enough");
    ///     Ok(set.next_finished().await.unwrap().unwrap_err())
    /// })?;
    /// assert!(error.is_cancelled() && !error.is_panic());
    /// assert!(error.task_error().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn task_error(&self) -> Option<&TaskError<TaskFailure>> {
        match self.first() {
            Self::Task { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True if this is about a task that was cancelled (see [`task_error`](Self::task_error)).
    ///
    /// ```
    /// assert!(!klaw::Error::other("disk full").is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.task_error().is_some_and(TaskError::is_cancelled)
    }

    /// True if this is about a task that panicked (see [`task_error`](Self::task_error)).
    ///
    /// ```
    /// assert!(!klaw::Error::other("disk full").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.task_error().is_some_and(TaskError::is_panic)
    }

    /// Wraps any error of user code, as [`Error::Other`]: it is the `source`, the next link of
    /// the chain.
    ///
    /// A klaw error given to it is returned as it is: wrapping it would only add a second
    /// "an operation failed" to its report.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let err = klaw::Error::other("disk full");
    /// assert_eq!(err.source().unwrap().to_string(), "disk full");
    /// let again = klaw::Error::other(err);
    /// assert_eq!(format!("{again}: {}", again.source().unwrap()), "an operation failed: disk full");
    /// ```
    pub fn other(error: impl Into<BoxError>) -> Self {
        Self::klaw_or(error.into(), Self::Other)
    }

    /// `error` itself if it is a klaw error, else `wrap(error)`.
    fn klaw_or(error: BoxError, wrap: fn(BoxError) -> Self) -> Self {
        match error.downcast::<Error>() {
            Ok(error) => *error,
            Err(error) => wrap(error),
        }
    }

    /// The error a scope's body returned: a klaw error as it is, anything else as [`Error::Body`].
    pub(crate) fn from_body(error: BoxError) -> Self {
        Self::klaw_or(error, Self::Body)
    }

    /// `error` of the task `task`.
    pub(crate) fn of_task<E: Into<BoxError>>(task: Option<TaskInfo>, error: TaskError<E>) -> Self {
        let failure = |error: E| TaskFailure::new(Self::unwrap_other(error.into()));
        Self::Task { task, error: error.map_failed(failure) }
    }

    /// A task's own error as its failure carries it. An [`Error::Other`] (what `?` on an I/O
    /// or a channel's error makes in a task returning `klaw::Error`) adds nothing to "task
    /// failed", so the failure is the error it wraps: the task's report reads "task `x` (#3)
    /// failed: <the error>", and the failure downcasts to that error's type.
    fn unwrap_other(error: BoxError) -> BoxError {
        match error.downcast::<Error>() {
            Ok(error) => match *error {
                Self::Other(inner) => inner,
                other => Box::new(other),
            },
            Err(error) => error,
        }
    }
}

impl Error {
    /// What the scope reports for this failure of its child once the scope's body has taken it
    /// (see [`TakenFailure`](crate::task::TakenFailure)): the same task and variant, a failure's
    /// error replaced by its words. `None` for what is not a failure (a cancellation).
    pub(crate) fn taken_stand_in(&self) -> Option<Error> {
        let Self::Task { task, error } = self else { return None };
        let error = match error {
            TaskError::Failed(failure) => TaskError::Failed(TaskFailure::new(Box::new(
                crate::task::TakenFailure::new(WithCauses(failure.as_source()).to_string()),
            ))),
            TaskError::Panicked(message) => TaskError::Panicked(message.clone()),
            TaskError::TimedOut(after) => TaskError::TimedOut(*after),
            TaskError::Remote(error) => TaskError::Remote(error.clone()),
            TaskError::Cancelled(_) => return None,
        };
        Some(Self::Task { task: task.clone(), error })
    }

    /// Whether `error`, or a cause of it, is klaw's error about task `id` (in a group, any
    /// entry's): the body returned that task's failure, perhaps wrapped.
    pub(crate) fn names_task(error: &(dyn std::error::Error + 'static), id: TaskId) -> bool {
        let mut next = Some(error);
        while let Some(error) = next {
            match error.downcast_ref::<Error>() {
                Some(Self::Task { task: Some(task), .. }) if task.id() == id => return true,
                Some(Self::Scope(group)) => {
                    return group.errors().iter().any(|entry| Self::names_task(entry, id));
                }
                _ => next = error.source(),
            }
        }
        false
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Task { task: Some(task), error } => error.describe(task, f),
            Self::Task { task: None, error } => error.fmt(f),
            Self::Body(_) => f.write_str("the scope's body failed"),
            Self::Elapsed(error) => error.fmt(f),
            Self::Build(error) => error.fmt(f),
            Self::NoRuntime(error) => error.fmt(f),
            Self::Scope(error) => error.fmt(f),
            Self::Other(_) => f.write_str("an operation failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Task { error: TaskError::Failed(failure), .. } => Some(failure.as_source()),
            Self::Task { error: TaskError::Remote(error), .. } => Some(&**error),
            Self::Task { .. } => None,
            Self::Body(error) | Self::Other(error) => Some(&**error),
            // The errors below display as themselves: their causes are theirs.
            Self::Elapsed(error) => error.source(),
            Self::Build(error) => error.source(),
            Self::NoRuntime(error) => error.source(),
            Self::Scope(error) => error.source(),
        }
    }
}

impl From<Elapsed> for Error {
    fn from(error: Elapsed) -> Self {
        Self::Elapsed(error)
    }
}

impl From<BuildError> for Error {
    fn from(error: BuildError) -> Self {
        Self::Build(error)
    }
}

impl From<NoRuntime> for Error {
    fn from(error: NoRuntime) -> Self {
        Self::NoRuntime(error)
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Build(BuildError::Config(error))
    }
}

/// Any task's error converts, whatever the task's own error type: a std error, `anyhow::Error`,
/// `eyre::Report`, `Box<dyn Error + Send + Sync>`. The task's error stays the cause.
///
/// ```
/// use std::error::Error as _;
/// let error: klaw::Error = klaw::TaskError::Failed("disk full").into();
/// assert_eq!(error.to_string(), "task failed");
/// assert_eq!(error.source().unwrap().to_string(), "disk full");
/// ```
impl<E: Into<BoxError>> From<TaskError<E>> for Error {
    fn from(error: TaskError<E>) -> Self {
        Self::of_task(None, error)
    }
}

/// Several failures of one scope, the first first: what cancelled the scope (in supervisor mode,
/// simply the earliest), then every other, in the order they happened. None is dropped.
///
/// It displays every failure on its own line, with the whole chain of its causes, so it has no
/// `source` of its own: each of [`errors`](Self::errors) has its own.
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
/// assert!(failures.to_string().starts_with("3 failures in one scope:\n  1. task #"));
/// # }
/// ```
#[derive(Debug)]
pub struct ScopeError {
    scope: Option<Cow<'static, str>>,
    errors: Vec<Error>,
}

impl ScopeError {
    pub(crate) fn new(scope: Option<Cow<'static, str>>, errors: Vec<Error>) -> Self {
        debug_assert!(errors.len() >= 2, "a ScopeError holds several errors");
        Self { scope, errors }
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
    /// failures.errors().iter().filter(|e| matches!(e, klaw::Error::Task { error: _, .. })).count()
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
        write!(f, "{} failures in ", self.errors.len())?;
        match &self.scope {
            Some(name) => write!(f, "scope `{name}`:")?,
            None => f.write_str("one scope:")?,
        }
        for (number, error) in self.errors.iter().enumerate() {
            write!(f, "\n  {}. ", number + 1)?;
            // An entry may span lines (a nested scope's own list, a message with a newline):
            // its later lines go under it, so the reader can tell this list's entries apart.
            std::fmt::Write::write_fmt(&mut Indented(f), format_args!("{}", WithCauses(error)))?;
        }
        Ok(())
    }
}

/// Writes through to a formatter, indenting every line after the first one under an entry of
/// a [`ScopeError`]'s list.
struct Indented<'a, 'f>(&'a mut std::fmt::Formatter<'f>);

impl std::fmt::Write for Indented<'_, '_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut lines = text.split('\n');
        if let Some(first) = lines.next() {
            self.0.write_str(first)?;
        }
        for line in lines {
            self.0.write_str("\n     ")?;
            self.0.write_str(line)?;
        }
        Ok(())
    }
}

/// Displays an error and each of its causes, `: `-separated (what anyhow's `{:#}` prints): what
/// a report or a log line of a failure shows, since each layer displays only its own words.
pub(crate) struct WithCauses<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl std::error::Error for ScopeError {}

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

/// A closed semaphore converts for `?`, as a channel's errors do.
///
/// ```
/// # klaw::runtime::block_on(async {
/// async fn work(permits: &klaw::sync::Semaphore) -> Result<(), klaw::Error> {
///     let _permit = permits.acquire().await?;
///     Ok(())
/// }
/// let permits = klaw::sync::Semaphore::new(1);
/// permits.close();
/// assert!(work(&permits).await.is_err());
/// # });
/// ```
impl From<crate::primitives::AcquireError> for Error {
    fn from(error: crate::primitives::AcquireError) -> Self {
        Self::Other(Box::new(error))
    }
}

/// An I/O error converts for `?`, so a `#[klaw::main]` or `#[klaw::test]` body that returns
/// `Result<_, klaw::Error>` can use `?` on files and sockets directly (inside a `scope!` body,
/// `?` converts any error already). It becomes [`Error::Other`], whose `source` is the I/O
/// error.
///
/// ```
/// fn read_config(path: &str) -> Result<String, klaw::Error> {
///     Ok(std::fs::read_to_string(path)?)
/// }
/// let error = read_config("/no/such/klaw.toml").unwrap_err();
/// let klaw::Error::Other(inner) = error else { panic!("an I/O error is `Other`") };
/// assert!(inner.downcast_ref::<std::io::Error>().is_some());
/// ```
impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self::Other(Box::new(error))
    }
}

impl From<crate::primitives::TryAcquireError> for Error {
    fn from(error: crate::primitives::TryAcquireError) -> Self {
        Self::Other(Box::new(error))
    }
}

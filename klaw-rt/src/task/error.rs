//! Why awaiting a task did not give its value: [`TaskError`], and the boxed [`TaskFailure`] a
//! scope carries a child's own error in.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use crate::task::remote::RemoteError;
use crate::task::{CancelReason, TaskId};

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
/// It is a [`std::error::Error`] when `E` is one, with `E` as its
/// [`source`](std::error::Error::source). Whatever `E` is (a std error, `anyhow::Error`,
/// `eyre::Report`, `Box<dyn Error + Send + Sync>`), it converts into [`klaw::Error`](crate::error::Error)
/// with `?`, keeping the task's own error as the cause.
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError<E = Infallible> {
    /// The task's body returned `Err(e)` (fallible tasks only).
    Failed(E),
    /// The task was cancelled before it finished.
    Cancelled(CancelReason),
    /// The task's body panicked, with this message; the runtime went on.
    Panicked(String),
    /// The task's own timeout passed before it finished.
    TimedOut(Duration),
    /// A remote task could not be run, or its result could not come back (see [`RemoteError`]).
    /// Boxed: it is rare, and every task's output slot is as large as its largest variant.
    Remote(Box<RemoteError>),
}

impl<E> TaskError<E> {
    /// Writes what happened to `task` (`"task"`, or a task's name and id): its own words only,
    /// the cause is the error's `source`.
    pub(crate) fn describe(
        &self,
        task: &dyn fmt::Display,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        match self {
            Self::Failed(_) => write!(f, "{task} failed"),
            Self::Cancelled(reason) => write!(f, "{task} was cancelled: {reason}"),
            Self::Panicked(message) => write!(f, "{task} panicked: {message}"),
            Self::TimedOut(after) => write!(f, "{task} timed out after {after:?}"),
            Self::Remote(_) => write!(f, "{task} could not run remotely"),
        }
    }
}

/// Says what happened, not why: a failure's cause is its [`source`](std::error::Error::source),
/// so a report (`{:#}` of anyhow, eyre's) prints each cause once.
impl<E> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(&"task", f)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TaskError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed(error) => Some(error),
            Self::Remote(error) => Some(&**error),
            _ => None,
        }
    }
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

    /// True if the task's body panicked: tokio's `JoinError::is_panic`. The panic was caught
    /// and the runtime went on; what it said is [`panic_message`](Self::panic_message) (klaw
    /// keeps its message, not the payload, so there is no `into_panic` to resume it).
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let handle = rt.spawn(async { panic!("the disk is full") });
    /// let error = rt.block_on(handle).unwrap_err();
    /// assert!(error.is_panic());
    /// assert_eq!(error.panic_message(), Some("the disk is full"));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// What the task's body panicked with, if it panicked: the `&str` or `String` it gave
    /// `panic!`, or `"Box<dyn Any>"` for a payload of another type, as `std` prints it.
    ///
    /// ```
    /// let error: klaw::TaskError = klaw::TaskError::Cancelled(klaw::CancelReason::user("stop"));
    /// assert_eq!(error.panic_message(), None);
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Self::Panicked(message) => Some(message),
            _ => None,
        }
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
/// let Error::Task { error: TaskError::Failed(failure), .. } = err else { panic!("{err}") };
/// assert!(failure.downcast_ref::<std::num::ParseIntError>().is_some());
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug)]
pub struct TaskFailure(BoxError);

impl TaskFailure {
    /// Boxes a task's error; one that is already a `TaskFailure` is not boxed twice.
    pub(crate) fn new(error: BoxError) -> Self {
        match error.downcast::<TaskFailure>() {
            Ok(failure) => *failure,
            Err(error) => Self(error),
        }
    }

    /// The task's own error, as the `source` of the error that carries it.
    pub(crate) fn as_source(&self) -> &(dyn std::error::Error + 'static) {
        &*self.0
    }

    /// The error as its own type, if it is an `E`.
    ///
    /// ```
    /// use klaw::{Error, TaskError};
    /// let err: Error = TaskError::Failed(std::fmt::Error).into();
    /// let Error::Task { error: TaskError::Failed(failure), .. } = &err else { unreachable!() };
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
    /// let Error::Task { error: TaskError::Failed(failure), .. } = err else { unreachable!() };
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

/// What a scope reports for a child's failure that its body took and did not return: the body
/// awaited the failed child's handle inside a [`shield`](crate::cancel::shield) (the one place a
/// cancelled scope's body can see a sibling's failure), got the error, and dropped it or returned
/// another. The scope still fails with that child, as Kotlin fails the parent of a child whose
/// exception someone caught (trio gives no way to catch it); the error itself went to the body,
/// so the scope carries its words (with its causes) instead. (A panic, a timeout or a remote
/// failure the body took is listed as it was: their words are all they carry.)
///
/// ```
/// use klaw::{Error, Task, TaskError};
/// # #[klaw::main(workers = 1)]
/// # async fn main() {
/// let error = klaw::scope!(|s| {
///     let child = s.spawn(Task::fallible(async { Err::<(), _>(std::fmt::Error) }).name("render"));
///     let _dropped = klaw::cancel::shield(child).await; // the body takes the failure...
///     Ok(()) // ...and does not return it
/// })
/// .unwrap_err();
/// let Error::Task { task: Some(task), error: TaskError::Failed(failure), .. } = &error else {
///     panic!("{error:?}")
/// };
/// assert_eq!(task.name(), Some("render"));
/// let taken = failure.downcast_ref::<klaw::task::TakenFailure>().unwrap();
/// assert_eq!(taken.message(), "an error occurred when formatting an argument");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{message} (the scope's body took this failure from the child's handle and did not return it)"
)]
pub struct TakenFailure {
    message: String,
}

impl TakenFailure {
    /// The stand-in for a failure whose words, with its causes, are `message`.
    pub(crate) fn new(message: String) -> Self {
        Self { message }
    }

    /// The failure's words, its causes after it, as `": "`-separated text.
    ///
    /// ```
    /// # #[klaw::main(workers = 1)]
    /// # async fn main() {
    /// let error = klaw::scope!(|s| {
    ///     let child = s.spawn(klaw::Task::fallible(async { Err::<(), _>("disk full") }));
    ///     drop(klaw::cancel::shield(child).await);
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// let klaw::Error::Task { error: klaw::TaskError::Failed(failure), .. } = &error else { panic!() };
    /// assert_eq!(failure.downcast_ref::<klaw::task::TakenFailure>().unwrap().message(), "disk full");
    /// # }
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Which task: its id and, if it has one, its name. Displays as ``task `fetch` (#12)``, or
/// `task #12` for a task without a name.
///
/// ```
/// # #[klaw::main(workers = 1)]
/// # async fn main() {
/// let error = klaw::scope!(|s| {
///     s.spawn(klaw::Task::fallible(async { Err::<(), _>(std::fmt::Error) }).name("render"));
///     Ok(())
/// })
/// .unwrap_err();
/// let klaw::Error::Task { task: Some(task), .. } = &error else { panic!("{error}") };
/// assert_eq!(task.name(), Some("render"));
/// assert_eq!(task.to_string(), format!("task `render` ({})", task.id()));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    id: TaskId,
    name: Option<Cow<'static, str>>,
}

impl TaskInfo {
    pub(crate) fn new(id: TaskId, name: Option<&str>) -> Self {
        Self { id, name: name.map(|name| Cow::Owned(name.to_owned())) }
    }

    /// The task's id.
    ///
    /// ```
    /// # fn check(task: &klaw::task::TaskInfo) -> klaw::task::TaskId {
    /// task.id()
    /// # }
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name, if it was given one.
    ///
    /// ```
    /// # fn check(task: &klaw::task::TaskInfo) -> bool {
    /// task.name().is_some_and(|name| name.starts_with("fetch"))
    /// # }
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task `{name}` ({})", self.id),
            None => write!(f, "task {}", self.id),
        }
    }
}

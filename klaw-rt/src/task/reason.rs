//! Why a task was cancelled, and how a task ended.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use crate::task::state::Kind;

/// Why a task was cancelled. Every [`TaskError::Cancelled`](crate::task::TaskError::Cancelled) carries
/// one, so a cancelled task always says who stopped it.
///
/// ```
/// use klaw::CancelReason;
/// let reason: CancelReason = "user pressed stop".into();
/// assert_eq!(reason, CancelReason::user("user pressed stop"));
/// assert_eq!(reason.to_string(), "user pressed stop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// Cancelled by user code, with its message.
    User(Cow<'static, str>),
    /// A deadline or timeout passed.
    Deadline,
    /// A sibling in the same scope failed, so the scope cancelled the rest.
    SiblingFailed,
    /// The enclosing scope or parent task was cancelled.
    ParentCancelled,
    /// The runtime shut down (or its executor went away) before the task finished.
    Shutdown,
    /// A background child's scope finished its work (the body and every other child ended),
    /// so the background child was stopped: see `Scope::spawn_background`.
    ScopeFinished,
    /// The process was asked to stop (Ctrl-C, `SIGINT`).
    Interrupted,
}

impl CancelReason {
    /// A cancellation by user code with a message.
    ///
    /// ```
    /// let reason = klaw::CancelReason::user(format!("request {} aborted", 17));
    /// assert_eq!(reason.to_string(), "request 17 aborted");
    /// ```
    pub fn user(message: impl Into<Cow<'static, str>>) -> Self {
        Self::User(message.into())
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(message) => f.write_str(message),
            Self::Deadline => f.write_str("deadline passed"),
            Self::SiblingFailed => f.write_str("a sibling task failed"),
            Self::ParentCancelled => f.write_str("the parent was cancelled"),
            Self::Shutdown => f.write_str("the runtime shut down"),
            Self::ScopeFinished => f.write_str("its scope finished the rest of its work"),
            Self::Interrupted => f.write_str("interrupted (Ctrl-C)"),
        }
    }
}

impl From<&'static str> for CancelReason {
    fn from(message: &'static str) -> Self {
        Self::user(message)
    }
}

impl From<String> for CancelReason {
    fn from(message: String) -> Self {
        Self::user(message)
    }
}

/// How a task ended, or `Pending` while it has not. The first terminal state wins: once this
/// is anything but `Pending`, it never changes.
///
/// ```
/// use klaw::task::ExitReason;
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn(async { 7 });
/// let task = handle.task_ref();
/// assert_eq!(rt.block_on(handle).unwrap(), 7);
/// assert_eq!(task.exit_reason(), ExitReason::Success);
/// assert!(!task.cancel("too late: the first terminal state wins"));
/// assert_eq!(task.exit_reason().to_string(), "success");
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// Not ended yet (queued or running).
    Pending,
    /// The body returned a value (for a fallible task: `Ok`).
    Success,
    /// The body of a fallible task returned `Err`.
    Error,
    /// Cancelled before it finished; see [`CancelReason`].
    Cancelled,
    /// The body panicked; the runtime caught it and goes on.
    Panicked,
    /// The task's own timeout passed before it finished.
    TimedOut,
}

impl ExitReason {
    pub(crate) fn from_kind(kind: Kind) -> Self {
        match kind {
            Kind::Pending => Self::Pending,
            Kind::Success => Self::Success,
            Kind::Error => Self::Error,
            Kind::Cancelled => Self::Cancelled,
            Kind::Panicked => Self::Panicked,
            Kind::TimedOut => Self::TimedOut,
        }
    }

    /// True for every state but `Pending`.
    ///
    /// ```
    /// use klaw::task::ExitReason;
    /// assert!(!ExitReason::Pending.is_terminal());
    /// assert!(ExitReason::Cancelled.is_terminal());
    /// ```
    pub fn is_terminal(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Panicked => "panicked",
            Self::TimedOut => "timed out",
        })
    }
}

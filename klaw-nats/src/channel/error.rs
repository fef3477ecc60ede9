//! The errors of sending on a distributed channel. A local channel refuses a value only when it
//! is full or closed; across the network a send can also fail because the server could not be
//! reached in time, or because the value cannot be sent at all (it does not encode, or it is too
//! large). Each is its own variant, so
//! `Closed` only ever means closed, and every variant hands the value back.

use std::fmt;

/// What `Unavailable` says, for both error types.
const UNAVAILABLE: &str = "the NATS server did not take the value within the publish retry bound \
     (KLAW_NATS_PUBLISH_RETRY_MS); the channel may still be open, send again later";

/// What `Unconfirmed` says, for both error types.
const UNCONFIRMED: &str = "the NATS server did not confirm the value within the publish retry \
     bound (KLAW_NATS_PUBLISH_RETRY_MS), and an attempt may have stored it: it may still be \
     received, so sending it again may deliver it twice";

/// Why `send` on a distributed channel did not send a value; the value comes back in every
/// case.
///
/// ```
/// use klaw_nats::channel::SendError;
/// let error = SendError::Unavailable(7);
/// assert!(!error.is_closed());
/// assert_eq!(error.into_inner(), 7);
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The channel was closed (by any process): nobody will ever receive the value.
    #[error("sending on a closed channel")]
    Closed(T),
    /// The server did not take the value for as long as
    /// [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry) allows (it was
    /// restarting, or the connection was down). The channel may well be open: send again
    /// later.
    #[error("{UNAVAILABLE}")]
    Unavailable(T),
    /// The server did not confirm the value for as long as
    /// [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry) allows, and an attempt
    /// went out that got no answer: the server may have stored the value, and a receiver may
    /// get it. Unlike `Unavailable`, sending it again may deliver it twice.
    #[error("{UNCONFIRMED}")]
    Unconfirmed(T),
    /// This value can never be sent: its `Serialize` implementation failed, or, encoded, it is
    /// larger than the server's `max_payload`. Sending it again fails the same way.
    #[error("this value cannot be sent: {reason}")]
    Rejected {
        /// The value.
        value: T,
        /// What was wrong with it.
        reason: String,
    },
}

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// assert_eq!(klaw_nats::channel::SendError::Closed("a").into_inner(), "a");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(value)
            | Self::Unavailable(value)
            | Self::Unconfirmed(value)
            | Self::Rejected { value, .. } => value,
        }
    }

    /// True for `Closed`: the channel will never take a value again.
    ///
    /// ```
    /// assert!(klaw_nats::channel::SendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> SendError<T> {
    /// What a send that does not wait for room makes of a `try_send`'s refusal: the same, and
    /// `Full` as `Unavailable` (a stream that drops its oldest message is never full; a caller
    /// that waits for room handles `Full` before).
    pub(crate) fn never_full(error: TrySendError<T>) -> Self {
        match error {
            TrySendError::Full(value) | TrySendError::Unavailable(value) => {
                Self::Unavailable(value)
            }
            TrySendError::Closed(value) => Self::Closed(value),
            TrySendError::Unconfirmed(value) => Self::Unconfirmed(value),
            TrySendError::Rejected { value, reason } => Self::Rejected { value, reason },
        }
    }

    /// The same refusal, of `f(value)`.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            Self::Closed(value) => SendError::Closed(f(value)),
            Self::Unavailable(value) => SendError::Unavailable(f(value)),
            Self::Unconfirmed(value) => SendError::Unconfirmed(f(value)),
            Self::Rejected { value, reason } => SendError::Rejected { value: f(value), reason },
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Unavailable(_) => f.write_str("Unavailable(..)"),
            Self::Unconfirmed(_) => f.write_str("Unconfirmed(..)"),
            Self::Rejected { reason, .. } => {
                f.debug_struct("Rejected").field("reason", reason).finish_non_exhaustive()
            }
        }
    }
}

/// Why `try_send` on a distributed channel did not send a value; the value comes back in every
/// case.
///
/// ```
/// use klaw_nats::channel::TrySendError;
/// let error = TrySendError::Full(1);
/// assert!(error.is_full());
/// assert_eq!(error.into_inner(), 1);
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The channel holds its capacity; try again later or `send(..).await`.
    #[error("sending on a full channel")]
    Full(T),
    /// As [`SendError::Closed`].
    #[error("sending on a closed channel")]
    Closed(T),
    /// As [`SendError::Unavailable`].
    #[error("{UNAVAILABLE}")]
    Unavailable(T),
    /// As [`SendError::Unconfirmed`].
    #[error("{UNCONFIRMED}")]
    Unconfirmed(T),
    /// As [`SendError::Rejected`].
    #[error("this value cannot be sent: {reason}")]
    Rejected {
        /// The value.
        value: T,
        /// What was wrong with it.
        reason: String,
    },
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// assert_eq!(klaw_nats::channel::TrySendError::Unavailable(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value)
            | Self::Closed(value)
            | Self::Unavailable(value)
            | Self::Unconfirmed(value)
            | Self::Rejected { value, .. } => value,
        }
    }

    /// True for `Full`.
    ///
    /// ```
    /// assert!(klaw_nats::channel::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// True for `Closed`.
    ///
    /// ```
    /// assert!(klaw_nats::channel::TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Unavailable(_) => f.write_str("Unavailable(..)"),
            Self::Unconfirmed(_) => f.write_str("Unconfirmed(..)"),
            Self::Rejected { reason, .. } => {
                f.debug_struct("Rejected").field("reason", reason).finish_non_exhaustive()
            }
        }
    }
}

/// Every variant but `Full` means the same as in [`SendError`].
///
/// ```
/// use klaw_nats::channel::{SendError, TrySendError};
/// assert_eq!(TrySendError::from(SendError::Closed(2)), TrySendError::Closed(2));
/// ```
impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(error: SendError<T>) -> Self {
        match error {
            SendError::Closed(value) => Self::Closed(value),
            SendError::Unavailable(value) => Self::Unavailable(value),
            SendError::Unconfirmed(value) => Self::Unconfirmed(value),
            SendError::Rejected { value, reason } => Self::Rejected { value, reason },
        }
    }
}

/// `?` into `klaw::Error` (the value is inside: downcast to `SendError<T>` to get it back).
///
/// ```
/// async fn forward(tx: &klaw_nats::channel::mpmc::Sender<u32>) -> Result<(), klaw::Error> {
///     tx.send(1).await?;
///     Ok(())
/// }
/// ```
impl<T: Send + Sync + 'static> From<SendError<T>> for klaw_rt::error::Error {
    fn from(error: SendError<T>) -> Self {
        Self::other(error)
    }
}

/// `?` into `klaw::Error`, as [`SendError`]'s.
///
/// ```
/// async fn offer(tx: &klaw_nats::channel::mpmc::Sender<u32>) -> Result<(), klaw::Error> {
///     tx.try_send(1).await?;
///     Ok(())
/// }
/// ```
impl<T: Send + Sync + 'static> From<TrySendError<T>> for klaw_rt::error::Error {
    fn from(error: TrySendError<T>) -> Self {
        Self::other(error)
    }
}

//! The errors of channel operations. Every one that refuses a value gives it back.
#![forbid(unsafe_code)]

use std::fmt;

/// `send` on a closed channel: every receiver is gone, or the channel was closed. The value was
/// not sent and comes back in the error.
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// drop(rx);
/// let error = klaw::runtime::block_on(tx.send(7)).unwrap_err();
/// assert_eq!(error.into_inner(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sending on a closed channel")]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// assert_eq!(klaw::channel::SendError(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

/// Why `try_send` refused a value; the value comes back either way.
///
/// ```
/// use klaw::channel::TrySendError;
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// drop(rx);
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// The channel is full; try again later or `send(..).await`.
    #[error("sending on a full channel")]
    Full(T),
    /// The channel is closed; nobody will ever receive the value.
    #[error("sending on a closed channel")]
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// assert_eq!(klaw::channel::TrySendError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Closed(value) => value,
        }
    }

    /// True for `Full`.
    ///
    /// ```
    /// assert!(klaw::channel::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// True for `Closed`.
    ///
    /// ```
    /// assert!(klaw::channel::TrySendError::Closed(()).is_closed());
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
        }
    }
}

/// `recv` found the channel closed and drained: no message will ever come.
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// drop(tx);
/// assert_eq!(klaw::runtime::block_on(rx.recv()), Err(klaw::channel::RecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Every sender is gone (or the channel was closed) and every message was received.
    #[error("receiving on a closed and empty channel")]
    Closed,
}

/// Why `try_recv` returned no message.
///
/// ```
/// use klaw::channel::TryRecvError;
/// let (tx, rx) = klaw::channel::bounded::<u32>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// No message now; one may come later.
    #[error("receiving on an empty channel")]
    Empty,
    /// Closed and drained: no message will ever come.
    #[error("receiving on a closed and empty channel")]
    Closed,
}

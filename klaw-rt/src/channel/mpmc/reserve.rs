//! Reserving a place before sending: `Sender::reserve` and its `Permit`.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::channel::error::SendError;
use crate::channel::mpmc::chan::Chan;

/// A reserved place in a channel, from [`Sender::reserve`](crate::channel::Sender::reserve): [`send`](Self::send) uses it
/// without waiting; dropping it gives it back.
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u8>(1);
/// let permit: klaw::channel::Permit<'_, u8> = klaw::runtime::block_on(tx.reserve()).unwrap();
/// permit.send(8).unwrap();
/// assert_eq!(rx.try_recv(), Ok(8));
/// ```
#[must_use = "an unused permit gives its place back when dropped"]
pub struct Permit<'a, T> {
    pub(super) chan: &'a Chan<T>,
}

impl<T> Permit<'_, T> {
    /// Sends `value` in the reserved place. `Err(SendError(value))` if the channel closed
    /// meanwhile.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let permit = klaw::runtime::block_on(tx.reserve()).unwrap();
    /// permit.send(4).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(4));
    /// ```
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let chan = self.chan;
        std::mem::forget(self); // the place is used here, not given back
        chan.send_with_permit(value)
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.chan.release_permit();
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// The future of [`Sender::reserve`](crate::channel::Sender::reserve).
///
/// ```
/// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
/// let reserving: klaw::channel::Reserve<'_, u8> = tx.reserve();
/// assert!(klaw::runtime::block_on(reserving).is_ok());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Reserve<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) waiter: Option<usize>,
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.chan.poll_reserve(&mut this.waiter, false, cx).map(|reserved| {
            reserved.map(|()| Permit { chan: this.chan }).map_err(|()| SendError(()))
        })
    }
}

impl<T> Drop for Reserve<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.waiter.take() {
            self.chan.leave_senders(key);
        }
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve").field("waiting", &self.waiter.is_some()).finish()
    }
}

//! Reserving a place before sending: `Sender::reserve` and its `Permit`, and
//! `Sender::reserve_owned` and its `OwnedPermit`, which holds the sender it came from.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::channel::error::{SendError, TrySendError};
use crate::channel::mpmc::Sender;
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

/// A reserved place that owns its [`Sender`], from [`Sender::reserve_owned`]: it is
/// `'static`, so it can be moved into a task or a thread. [`send`](Self::send) uses the place
/// and gives the sender back; dropping it (or [`release`](Self::release)) gives the place back.
///
/// ```
/// let (tx, rx) = klaw::channel::bounded::<u8>(1);
/// let permit: klaw::channel::OwnedPermit<u8> = klaw::runtime::block_on(tx.reserve_owned()).unwrap();
/// let tx = std::thread::spawn(move || permit.send(8).unwrap()).join().unwrap();
/// assert_eq!(rx.try_recv(), Ok(8));
/// assert!(tx.try_send(9).is_ok()); // the sender came back
/// ```
#[must_use = "an unused permit gives its place back when dropped"]
pub struct OwnedPermit<T> {
    /// `None` only once used or released.
    sender: Option<Sender<T>>,
}

impl<T> OwnedPermit<T> {
    /// Sends `value` in the reserved place and gives the sender back. `Err(SendError(value))`
    /// if the channel closed meanwhile (the sender, of no use on a closed channel, is dropped).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::bounded::<u8>(1);
    /// let permit = tx.try_reserve_owned().unwrap();
    /// let tx = permit.send(4).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(4));
    /// drop(rx);
    /// assert!(tx.try_reserve_owned().is_err()); // closed: the last receiver went
    /// ```
    pub fn send(mut self, value: T) -> Result<Sender<T>, SendError<T>> {
        let sender = self.sender.take().expect("a permit holds its sender until it is used");
        // The place is used here, not given back (the drop above finds no sender).
        sender.chan.send_with_permit(value).map(|()| sender)
    }

    /// Gives the place back unused, and the sender with it.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
    /// let permit = tx.try_reserve_owned().unwrap();
    /// let tx = permit.release();
    /// assert!(tx.try_send(1).is_ok()); // the place is free again
    /// ```
    pub fn release(mut self) -> Sender<T> {
        let sender = self.sender.take().expect("a permit holds its sender until it is used");
        sender.chan.release_permit();
        sender
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        // The place first: the sender may be the last, and its drop closes the channel.
        if let Some(sender) = self.sender.take() {
            sender.chan.release_permit();
        }
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
    }
}

/// The future of [`Sender::reserve_owned`].
///
/// ```
/// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
/// let reserving: klaw::channel::ReserveOwned<u8> = tx.reserve_owned();
/// assert!(klaw::runtime::block_on(reserving).is_ok());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct ReserveOwned<T> {
    /// `None` once the future has completed.
    sender: Option<Sender<T>>,
    waiter: Option<usize>,
}

impl<T> ReserveOwned<T> {
    pub(super) fn new(sender: Sender<T>) -> Self {
        ReserveOwned { sender: Some(sender), waiter: None }
    }
}

impl<T> Future for ReserveOwned<T> {
    type Output = Result<OwnedPermit<T>, SendError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sender = this.sender.as_ref().expect("`ReserveOwned` polled after it completed");
        let reserved = std::task::ready!(sender.chan.poll_reserve(&mut this.waiter, false, cx));
        let sender = this.sender.take().expect("checked above");
        Poll::Ready(match reserved {
            Ok(()) => Ok(OwnedPermit { sender: Some(sender) }),
            Err(()) => Err(SendError(())),
        })
    }
}

impl<T> Drop for ReserveOwned<T> {
    fn drop(&mut self) {
        if let (Some(key), Some(sender)) = (self.waiter.take(), &self.sender) {
            sender.chan.leave_senders(key);
        }
    }
}

impl<T> fmt::Debug for ReserveOwned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReserveOwned").field("waiting", &self.waiter.is_some()).finish()
    }
}

/// [`Sender::try_reserve_owned`]: a permit now, or the sender back with the reason.
pub(super) fn try_reserve_owned<T>(
    sender: Sender<T>,
) -> Result<OwnedPermit<T>, TrySendError<Sender<T>>> {
    match sender.chan.try_reserve() {
        Ok(()) => Ok(OwnedPermit { sender: Some(sender) }),
        Err(TrySendError::Full(())) => Err(TrySendError::Full(sender)),
        Err(TrySendError::Closed(())) => Err(TrySendError::Closed(sender)),
    }
}

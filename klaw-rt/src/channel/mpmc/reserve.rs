//! Reserving a place before sending: `Sender::reserve`, its `Permit`, and the step the `Sink`
//! shares with them.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::channel::error::SendError;
use crate::channel::mpmc::state::{Chan, SendWait};

/// A reserved place in a channel, from [`Sender::reserve`](crate::channel::Sender::reserve): [`send`](Self::send) uses it
/// without waiting; dropping it gives it back.
///
/// ```
/// let (tx, rx) = klaw::channel::<u8>(1);
/// let permit: klaw::channel::Permit<'_, u8> = klaw::block_on(tx.reserve()).unwrap();
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
    /// let (tx, rx) = klaw::channel::<u8>(1);
    /// let permit = klaw::block_on(tx.reserve()).unwrap();
    /// permit.send(4).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(4));
    /// ```
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let chan = self.chan;
        std::mem::forget(self); // the place is used here, not given back
        let sent = chan.lock().send_reserved(value);
        match sent {
            Ok(waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
                Ok(())
            }
            Err(value) => Err(SendError(value)),
        }
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        let waker = self.chan.lock().release_place();
        if let Some(waker) = waker {
            waker.wake();
        }
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
/// let (tx, _rx) = klaw::channel::<u8>(1);
/// let reserving: klaw::channel::Reserve<'_, u8> = tx.reserve();
/// assert!(klaw::block_on(reserving).is_ok());
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Reserve<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) waiter: Option<usize>,
}

/// One step of reserving a place, shared by `Reserve` and the `Sink`: `Ready(Ok(()))` once a
/// place is reserved, `Ready(Err(()))` if the channel is closed, `Pending` while waiting in line.
pub(super) fn poll_place<T>(
    chan: &Chan<T>,
    waiter: &mut Option<usize>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), ()>> {
    let mut state = chan.lock();
    if let Some(key) = *waiter {
        return match state.poll_send_waiter(key, cx.waker()) {
            None => Poll::Pending,
            Some(SendWait::Granted(_)) => {
                *waiter = None;
                Poll::Ready(Ok(()))
            }
            Some(_) => {
                *waiter = None;
                Poll::Ready(Err(()))
            }
        };
    }
    if state.is_closed() {
        return Poll::Ready(Err(()));
    }
    if state.try_reserve() {
        return Poll::Ready(Ok(()));
    }
    *waiter = Some(state.wait_send(cx.waker(), SendWait::Place));
    Poll::Pending
}

pub(super) fn cancel_place<T>(chan: &Chan<T>, waiter: &mut Option<usize>) {
    if let Some(key) = waiter.take() {
        let (_, waker) = chan.lock().cancel_send(key);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_place(this.chan, &mut this.waiter, cx).map(|reserved| {
            reserved.map(|()| Permit { chan: this.chan }).map_err(|()| SendError(()))
        })
    }
}

impl<T> Drop for Reserve<'_, T> {
    fn drop(&mut self) {
        cancel_place(self.chan, &mut self.waiter);
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve").field("waiting", &self.waiter.is_some()).finish()
    }
}

//! What `select!` needs from channels, and `select_any` over a dynamic list of receivers.
#![forbid(unsafe_code)]

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::channel::{Permit, Receiver, Recv, RecvError, Reserve, SendError, Sender};

/// What a `recv(...)` arm of `select!` accepts: a klaw MPMC [`Receiver`] (or a reference to
/// one). The arm binds `Result<T, RecvError>`, so closing is always handled.
///
/// ```
/// fn arm<R: klaw::__private::SelectRecv>(_: &R) {}
/// let (_tx, rx) = klaw::channel::bounded::<u8>(1);
/// arm(&rx);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a klaw receiver, so it cannot be used in `recv(...)`",
    label = "not a `klaw::channel::Receiver`",
    note = "`recv(rx)` takes a `klaw::channel::Receiver<T>`; for any other future (a broadcast or \
            watch receiver, a oneshot), write the future arm `future -> pattern => ...`"
)]
pub trait SelectRecv {
    /// What the message is.
    type Message;

    #[doc(hidden)]
    fn __select_recv(&self) -> Recv<'_, Self::Message>;
}

impl<T> SelectRecv for Receiver<T> {
    type Message = T;

    fn __select_recv(&self) -> Recv<'_, T> {
        self.recv()
    }
}

impl<R: SelectRecv + ?Sized> SelectRecv for &R {
    type Message = R::Message;

    fn __select_recv(&self) -> Recv<'_, R::Message> {
        (**self).__select_recv()
    }
}

impl<R: SelectRecv + ?Sized> SelectRecv for &mut R {
    type Message = R::Message;

    fn __select_recv(&self) -> Recv<'_, R::Message> {
        (**self).__select_recv()
    }
}

/// What a `send(...)` arm of `select!` accepts: a klaw MPMC [`Sender`] (or a reference to one).
/// The arm waits for a place, and only the winning arm evaluates and sends its value, so a
/// losing `send` arm consumes nothing.
///
/// ```
/// fn arm<S: klaw::__private::SelectSend>(_: &S) {}
/// let (tx, _rx) = klaw::channel::bounded::<u8>(1);
/// arm(&tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a klaw sender, so it cannot be used in `send(...)`",
    label = "not a `klaw::channel::Sender`",
    note = "`send(tx, value)` takes a `klaw::channel::Sender<T>`; for any other future, write the \
            future arm `future -> pattern => ...`"
)]
pub trait SelectSend {
    /// What the message is.
    type Message;

    #[doc(hidden)]
    fn __select_reserve(&self) -> Reserve<'_, Self::Message>;
}

impl<T> SelectSend for Sender<T> {
    type Message = T;

    fn __select_reserve(&self) -> Reserve<'_, T> {
        self.reserve()
    }
}

impl<S: SelectSend + ?Sized> SelectSend for &S {
    type Message = S::Message;

    fn __select_reserve(&self) -> Reserve<'_, S::Message> {
        (**self).__select_reserve()
    }
}

impl<S: SelectSend + ?Sized> SelectSend for &mut S {
    type Message = S::Message;

    fn __select_reserve(&self) -> Reserve<'_, S::Message> {
        (**self).__select_reserve()
    }
}

/// What a future arm of `select!` (`future -> pattern => ...`) accepts: any `Future` or
/// `IntoFuture`, as `.await` does. The arm's future has this trait's `Future` type, which is a
/// future by its bound: a value that is no future is then one error, where the arm makes it,
/// rather than one more at every poll.
///
/// ```
/// fn arm<F: klaw::__private::SelectFuture>(_: F) {}
/// arm(async { 1 });
/// ```
pub trait SelectFuture {
    /// The future the arm polls.
    type Future: Future<Output = Self::Output>;
    /// What the arm binds.
    type Output;

    #[doc(hidden)]
    fn __select_future(self) -> Self::Future;
}

impl<F: IntoFuture> SelectFuture for F {
    type Future = F::IntoFuture;
    type Output = F::Output;

    fn __select_future(self) -> F::IntoFuture {
        self.into_future()
    }
}

/// The winning `send` arm: send `value` in the reserved place, or give it back if the channel
/// is closed.
#[doc(hidden)]
pub fn __finish_send<T>(
    reserved: Result<Permit<'_, T>, SendError<()>>,
    value: T,
) -> Result<(), SendError<T>> {
    match reserved {
        Ok(permit) => permit.send(value),
        Err(SendError(())) => Err(SendError(value)),
    }
}

/// `select!`'s first pass over a `recv` arm, in the arms' order: a message (or `Closed`) if one
/// is there now, without joining the receivers' wait list; a receive already in line (from an
/// earlier poll of the `select!`) is polled as usual. Only when no arm is ready does the second
/// pass, [`__select_join`], put the `recv` arms in line. So while messages keep coming, a losing
/// arm costs one look, not a join and a leave of a locked list.
#[doc(hidden)]
#[inline]
pub fn __select_look<T>(
    recv: Pin<&mut Recv<'_, T>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, RecvError>> {
    Pin::into_inner(recv).poll_look(cx)
}

/// `select!`'s second pass over a `recv` arm, once no arm was ready in the first: a receive out
/// of line joins the line and then looks once more (so a message sent since the first look is
/// taken, and one sent later wakes the task); one in line was polled by the first pass and is
/// `Pending`.
#[doc(hidden)]
#[inline]
pub fn __select_join<T>(
    recv: Pin<&mut Recv<'_, T>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, RecvError>> {
    Pin::into_inner(recv).poll_join(cx)
}

/// Where a fair `select!` starts polling: a random arm, so no arm starves another.
#[doc(hidden)]
pub fn __random_start(arms: usize) -> usize {
    fastrand::usize(..arms.max(1))
}

/// Waits for a message on any of `receivers`, fairly: `(index, result)` of the first ready.
/// A closed receiver is ready too, with `Err(RecvError::Closed)`: remove it and call again.
/// `None` for an empty list (there is nothing to wait for).
///
/// Cancel safety: as for [`Receiver::recv`]; the losing receivers consume nothing.
///
/// ```
/// let (tx_a, rx_a) = klaw::channel::bounded::<&str>(1);
/// let (_tx_b, rx_b) = klaw::channel::bounded::<&str>(1);
/// tx_a.try_send("from a").unwrap();
/// let receivers = vec![rx_a, rx_b];
/// let got = klaw::runtime::block_on(klaw::channel::select_any(&receivers));
/// assert_eq!(got, Some((0, Ok("from a"))));
/// ```
pub async fn select_any<T>(receivers: &[Receiver<T>]) -> Option<(usize, Result<T, RecvError>)> {
    if receivers.is_empty() {
        return None;
    }
    let mut pending: Vec<Recv<'_, T>> = receivers.iter().map(Receiver::recv).collect();
    let start = __random_start(pending.len());
    // In two passes, as `select!`: a look at each, then, if none was ready, a place in line.
    let winner = std::future::poll_fn(|cx: &mut Context<'_>| {
        let count = pending.len();
        for pass in [Recv::poll_look, Recv::poll_join] {
            for offset in 0..count {
                let index = (start + offset) % count;
                if let Poll::Ready(result) = pass(&mut pending[index], cx) {
                    return Poll::Ready((index, result));
                }
            }
        }
        Poll::Pending
    })
    .await;
    Some(winner)
}

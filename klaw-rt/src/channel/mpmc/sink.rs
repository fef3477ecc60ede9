//! `Sender` as a `futures::Sink`.
#![forbid(unsafe_code)]

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_sink::Sink;

use crate::channel::error::SendError;
use crate::channel::mpmc::sender::{Sender, SinkPlace};

/// A `Sink` reserves a place in `poll_ready` and uses it in `start_send`, so no value is ever
/// accepted and then lost. The error carries the value when there was one.
///
/// A `poll_ready` that returned `Ready` holds its place, as tokio's `PollSender` holds its
/// permit, until `start_send` uses it, [`Sender::abort_send`] gives it back or the `Sender` is
/// dropped: meanwhile the place counts as taken for every send, this `Sender`'s own `send` and
/// `try_send` included. (`SinkExt`'s `send`, `feed` and `send_all` call `start_send` in the poll
/// whose `poll_ready` was ready.) A `poll_ready` still waiting keeps no freed place from other
/// senders.
///
/// ```
/// use std::pin::Pin;
/// use futures_sink::Sink;
/// let (mut tx, rx) = klaw::channel::bounded::<u32>(1);
/// let ready = klaw::runtime::block_on(std::future::poll_fn(|cx| Pin::new(&mut tx).poll_ready(cx)));
/// assert!(ready.is_ok());
/// assert!(tx.try_send(1).is_err()); // the only place is the sink's
/// Pin::new(&mut tx).start_send(2).unwrap();
/// assert_eq!(rx.try_recv(), Ok(2));
/// ```
impl<T> Sink<T> for Sender<T> {
    type Error = SendError<Option<T>>;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = &mut *self;
        let mut waiter = match this.sink {
            SinkPlace::Reserved => return Poll::Ready(Ok(())),
            SinkPlace::Waiting(key) => Some(key),
            SinkPlace::None => None,
        };
        // It lingers in line: the `Sender` may never poll it again.
        let polled = this.chan.poll_reserve(&mut waiter, true, cx);
        this.sink = match (&polled, waiter) {
            (Poll::Ready(Ok(())), _) => SinkPlace::Reserved,
            (_, Some(key)) => SinkPlace::Waiting(key),
            _ => SinkPlace::None,
        };
        polled.map(|reserved| reserved.map_err(|()| SendError(None)))
    }

    fn start_send(mut self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = &mut *self;
        assert!(
            matches!(this.sink, SinkPlace::Reserved),
            "Sink::start_send without a successful poll_ready"
        );
        this.sink = SinkPlace::None;
        this.chan.send_with_permit(item).map_err(|SendError(item)| SendError(Some(item)))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(())) // a sent message is in the channel already
    }

    /// Closes the channel (for every sender and receiver), like [`Sender::close`].
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

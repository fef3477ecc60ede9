//! A broadcast channel across processes: a JetStream stream that keeps the last `capacity`
//! messages; each receiver reads it in order from where it subscribed, and a gap in the
//! sequence numbers is how many it missed.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_nats::jetstream::stream;
use futures_util::StreamExt;
use klaw_rt::channel::broadcast::{Lagged, RecvError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_wrapper::SyncWrapper;

use crate::NatsError;
use crate::channel::closing::Closing;
use crate::channel::publish::send_value;
use crate::channel::{SendError, check_name, check_stream_name};
use crate::connection::Connection;

/// How often a waiting receiver checks whether the channel was closed.
const CLOSE_CHECK: Duration = Duration::from_millis(500);

struct Shared {
    connection: Arc<Connection>,
    name: String,
    subject: String,
    stream: stream::Stream,
    closing: Closing,
}

pub(crate) async fn open<T: DeserializeOwned + Send + 'static>(
    connection: Arc<Connection>,
    name: &str,
    capacity: usize,
) -> Result<(Sender<T>, Receiver<T>), NatsError> {
    check_name(name)?;
    let namespace = &connection.config.namespace;
    let subject = format!("{namespace}.bcast.{name}");
    let stream_name = connection.config.broadcast_stream(name);
    check_stream_name(name, &stream_name)?;
    let shared = async_compat::Compat::new(async {
        let stream = connection
            .jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name,
                subjects: vec![subject.clone()],
                max_messages: i64::try_from(capacity.max(1)).unwrap_or(i64::MAX),
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::jetstream("creating the broadcast stream")(e.to_string()))?;
        // A `.` cannot be in a channel name: no MPMC channel's key (its bare name) is this one.
        let closing =
            Closing::watch(&connection, format!("bcast.{name}"), &stream, &subject).await?;
        Ok::<_, NatsError>(Arc::new(Shared {
            connection: connection.clone(),
            name: name.to_owned(),
            subject,
            stream,
            closing,
        }))
    })
    .await?;
    let receiver = Receiver::subscribe(shared.clone()).await?;
    Ok((Sender { shared, _values: PhantomData }, receiver))
}

/// Sends to every receiver of a distributed [`broadcast`](crate::Nats::broadcast). Cloneable.
pub struct Sender<T> {
    shared: Arc<Shared>,
    _values: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Sender<T> {
    /// Sends to every receiver subscribed now. Never waits for slow receivers: they lag.
    /// `Err(Closed(value))` if the channel is closed; `Err(Unavailable(value))` if the server
    /// did not take it within [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry);
    /// `Err(Unconfirmed(value))` if it may have (see
    /// [`SendError::Unconfirmed`]).
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::broadcast::Sender<String>) -> Result<(), klaw_nats::channel::SendError<String>> {
    /// tx.send("deploy started".to_owned()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let Shared { connection, subject, name, closing, .. } = &*self.shared;
        let sent = send_value(connection, subject, name, value, Some(closing)).await;
        // A broadcast stream drops its oldest message to make room: never full.
        sent.map_err(SendError::never_full)
    }

    /// A new receiver that sees what is sent from now on.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::broadcast::Sender<u8>) -> Result<(), klaw_nats::NatsError> {
    /// let rx = tx.subscribe().await?;
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self) -> Result<Receiver<T>, NatsError> {
        Receiver::subscribe(self.shared.clone()).await
    }

    /// Closes the channel for every process: receivers get what they have not read, then
    /// `Closed`. An `Err` means the server has not confirmed the close; it is stored again in
    /// the background, as [`mpmc::Sender::close`](crate::channel::mpmc::Sender::close) says.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::broadcast::Sender<u8>) -> Result<(), klaw_nats::NatsError> {
    /// tx.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<(), NatsError> {
        self.shared.closing.close(&self.shared.connection).await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), _values: PhantomData }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("channel", &self.shared.name).finish_non_exhaustive()
    }
}

/// A receive in progress, with the place it reads from, which it gives back when it ends.
type Receiving<T> = Pin<Box<dyn Future<Output = (Place, Result<T, RecvError>)> + Send>>;

/// Receives every message of a distributed [`broadcast`](crate::Nats::broadcast), in order.
///
/// It reads the stream by sequence number, so it sees exactly what the stream keeps: falling
/// more than `capacity` behind means missing messages, and it is told how many.
///
/// It is also a `futures::Stream` of `Result<T, Lagged>`, as a local broadcast receiver is,
/// which ends once the channel is closed and everything sent before was read.
pub struct Receiver<T> {
    shared: Arc<Shared>,
    /// Where this receiver reads; `None` while a receive in progress has it.
    place: Option<Place>,
    /// The receive in progress: a `recv` dropped before it ended, or the Stream's next item.
    /// The next `recv` or poll goes on with it, so what it read is not lost. Only reached
    /// through `&mut self`, so the handle stays `Sync`.
    receiving: SyncWrapper<Option<Receiving<T>>>,
}

/// Where a receiver is in the stream.
struct Place {
    /// Core NATS delivery of the same subject: only a sign that something new was stored.
    wakeups: async_nats::Subscriber,
    /// The stream sequence of the next message this receiver has not seen.
    expected: u64,
}

impl<T: DeserializeOwned + Send + 'static> Receiver<T> {
    async fn subscribe(shared: Arc<Shared>) -> Result<Self, NatsError> {
        let (wakeups, expected) = async_compat::Compat::new(async {
            // Subscribe first: whatever is stored after the sequence read wakes us.
            let wakeups = shared
                .connection
                .client
                .subscribe(shared.subject.clone())
                .await
                .map_err(|e| e.to_string())?;
            let info = shared.stream.get_info().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((wakeups, info.state.last_sequence + 1))
        })
        .await
        .map_err(NatsError::jetstream("subscribing to the broadcast"))?;
        let place = Some(Place { wakeups, expected });
        Ok(Self { shared, place, receiving: SyncWrapper::new(None) })
    }

    /// The next message. `Err(Lagged(n))` if `n` messages were dropped before this receiver
    /// read them (then it goes on from the oldest kept); `Err(Closed)` once the channel is
    /// closed and everything sent before was read.
    ///
    /// Cancel safety: a message is consumed only when returned; dropping this future loses
    /// nothing (the next `recv`, or the next item of the Stream, goes on with its receive).
    ///
    /// ```no_run
    /// # async fn demo(mut rx: klaw_nats::channel::broadcast::Receiver<String>) {
    /// loop {
    ///     match rx.recv().await {
    ///         Ok(event) => println!("{event}"),
    ///         Err(klaw::channel::broadcast::RecvError::Lagged(n)) => println!("missed {n}"),
    ///         Err(klaw::channel::broadcast::RecvError::Closed) => break,
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls the receive in progress, starting one if there is none.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let receiving = self.receiving.get_mut().get_or_insert_with(|| {
            let shared = self.shared.clone();
            let mut place =
                self.place.take().expect("a receiver's place is with it between receives");
            Box::pin(async move {
                let received = receive(&shared, &mut place).await;
                (place, received)
            })
        });
        let (place, received) = ready!(receiving.as_mut().poll(cx));
        *self.receiving.get_mut() = None;
        self.place = Some(place);
        Poll::Ready(received)
    }
}

/// The next message at `place`, or how many it missed, or `Closed`. Dropped, it has consumed
/// nothing: `place` moves on only as it returns.
async fn receive<T: DeserializeOwned>(shared: &Shared, place: &mut Place) -> Result<T, RecvError> {
    // A sequence the stream's bounds have shown stored (its last sequence passed it).
    let mut stored = None;
    loop {
        // Read before the server is asked: a message stored before the close was heard is then
        // seen by the reads below. (Read after them, a message stored between the server's
        // answer and the close would be left unread behind `Closed`.)
        let closed = shared.closing.is_closed();
        let stream = &shared.stream;
        let expected = place.expected;
        // Not there: not stored yet, or already dropped (the bounds below tell which).
        match async_compat::Compat::new(stream.get_raw_message(expected)).await {
            Ok(message) => {
                place.expected += 1;
                match rmp_serde::from_slice(&message.payload) {
                    Ok(value) => return Ok(value),
                    // Another type on the same channel's name (another process, a deploy that
                    // changed it): the receiver missed a value it can never read, and says so,
                    // as for one deleted from the middle, rather than going on as if nothing
                    // was skipped.
                    Err(error) => {
                        tracing::error!(channel = %shared.name, %error, "not a value of this channel's type: reported as missed");
                        return Err(RecvError::Lagged(1));
                    }
                }
            }
            // Missing although the bounds showed it stored: deleted from the middle of the
            // stream (an operator's `delete_message`), which a receiver skips as a lag of one
            // rather than asking for it for ever.
            Err(error)
                if stored == Some(expected)
                    && error.kind() == stream::RawMessageErrorKind::NoMessageFound =>
            {
                place.expected += 1;
                return Err(RecvError::Lagged(1));
            }
            Err(_) => {}
        }
        let bounds = async_compat::Compat::new(stream.get_info()).await;
        match bounds {
            Ok(info) => {
                let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                if place.expected < first {
                    let missed = first - place.expected;
                    place.expected = first;
                    return Err(RecvError::Lagged(missed));
                }
                if place.expected <= last {
                    // Stored meanwhile (or deleted: the next ask tells which).
                    stored = Some(expected);
                    continue;
                }
                if closed {
                    return Err(RecvError::Closed); // closed, and every message read
                }
            }
            // The bounds are not known (the server is away): not `Closed`, which only means
            // closed with every message read; wait, and ask again.
            Err(error) => {
                tracing::debug!(channel = %shared.name, %error, "the channel's bounds are unknown; waiting");
            }
        }
        place.wait_for_news().await;
    }
}

impl Place {
    /// Until something new is published, or the close-check interval passes.
    async fn wait_for_news(&mut self) {
        let next = async_compat::Compat::new(self.wakeups.next());
        // Real time even under a paused clock: the server does not follow it.
        let timeout = async_io::Timer::after(CLOSE_CHECK);
        let _ = futures_util::future::select(std::pin::pin!(next), std::pin::pin!(timeout)).await;
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.shared.name)
            .field("next_sequence", &self.place.as_ref().map(|place| place.expected))
            .field("receiving", &self.place.is_none())
            .finish_non_exhaustive()
    }
}

/// A receiver is a `futures::Stream` of what `recv` gives: `Ok(value)`, `Err(Lagged(n))` when
/// it missed `n` messages (then it goes on from the oldest kept), and the end once the channel
/// is closed and everything sent before was read, as a local broadcast receiver's stream.
///
/// ```no_run
/// # async fn demo(mut rx: klaw_nats::channel::broadcast::Receiver<String>) {
/// use futures_util::StreamExt;
/// while let Some(event) = rx.next().await {
///     match event {
///         Ok(event) => println!("{event}"),
///         Err(klaw::channel::broadcast::Lagged(n)) => println!("missed {n}"),
///     }
/// }
/// # }
/// ```
impl<T: DeserializeOwned + Send + 'static> futures_util::Stream for Receiver<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(|received| match received {
            Ok(value) => Some(Ok(value)),
            Err(RecvError::Lagged(missed)) => Some(Err(Lagged(missed))),
            Err(RecvError::Closed) => None,
        })
    }
}

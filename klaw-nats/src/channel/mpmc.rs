//! A bounded MPMC channel across processes: a JetStream work-queue stream (at most `capacity`
//! messages, new ones refused when full) and one durable consumer that every receiver shares.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message, consumer, stream};
use futures_util::StreamExt;
use klaw_rt::channel::{RecvError, TryRecvError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_wrapper::SyncWrapper;

use crate::NatsError;
use crate::channel::closing::Closing;
use crate::channel::publish::send_value;
use crate::channel::unconfirmed::Unconfirmed;
use crate::channel::{SendError, TrySendError, check_name, check_stream_name};
use crate::connection::Connection;

/// How long a receiver's pull waits for a message before it checks for closing.
const PULL_WAIT: Duration = Duration::from_millis(500);
/// How long after its wait a pull request given up is still followed (the client's own
/// margin for a request that waits).
const PULL_ANSWER_GRACE: Duration = Duration::from_secs(5);
/// How long a waiting receiver pauses after a pull the server did not answer.
const PULL_RETRY: Duration = Duration::from_millis(100);
/// How many messages a receiver takes from the server per pull: only the one `recv` returns.
/// A receiver that took more would hold them unacknowledged while its caller is busy; past the
/// consumer's ack wait the server gives them to another receiver too, so one message would reach
/// two receivers (and a receiver that stopped calling `recv` would keep them from the others
/// until then). Keeping held messages alive with progress acks trades that for messages stuck
/// behind an idle receiver; handing them back before the ack wait reorders them and still
/// races it. Pulling one per `recv` costs a round trip per message and keeps the rule simple:
/// a message is taken only to be returned at once, and goes to exactly one receiver.
const PULL_BATCH: usize = 1;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A send in progress, kept by the `Sink`.
type InFlight<T> = SyncWrapper<Option<BoxFuture<Result<(), SendError<T>>>>>;

struct Shared {
    connection: Arc<Connection>,
    name: String,
    subject: String,
    stream: stream::Stream,
    consumer: consumer::Consumer<consumer::pull::Config>,
    capacity: usize,
    closing: Closing,
    /// The acknowledgements of this channel's receives on this connection that the server has
    /// not confirmed yet.
    unconfirmed: Arc<Unconfirmed>,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    /// Messages in the stream: queued, or taken by a receiver whose `recv` has not returned,
    /// once every receive of this connection that returned before the call is confirmed.
    async fn len(&self) -> Result<usize, NatsError> {
        if let Some(out) = self.unconfirmed.out() {
            self.unconfirmed.settled(out).await;
        }
        let info = async_compat::Compat::new(self.stream.get_info())
            .await
            .map_err(|e| NatsError::jetstream("reading the channel's stream")(e.to_string()))?;
        Ok(usize::try_from(info.state.messages).unwrap_or(usize::MAX))
    }
}

pub(crate) async fn open<T>(
    connection: Arc<Connection>,
    name: &str,
    capacity: usize,
) -> Result<(Sender<T>, Receiver<T>), NatsError> {
    check_name(name)?;
    let config = &connection.config;
    let namespace = &config.namespace;
    let ack_wait = config.ack_wait;
    let subject = format!("{namespace}.chan.{name}");
    let stream_name = config.channel_stream(name);
    check_stream_name(name, &stream_name)?;
    let opened = async_compat::Compat::new(async {
        let stream = connection
            .jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                max_messages: i64::try_from(capacity.max(1)).unwrap_or(i64::MAX),
                discard: stream::DiscardPolicy::New,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::jetstream("creating the channel's stream")(e.to_string()))?;
        let consumer = stream
            .get_or_create_consumer(
                &stream_name,
                consumer::pull::Config {
                    durable_name: Some(stream_name.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| NatsError::jetstream("creating the channel's consumer")(e.to_string()))?;
        let closing = Closing::watch(&connection, name.to_owned()).await?;
        let capacity =
            usize::try_from(stream.cached_info().config.max_messages).unwrap_or(capacity);
        Ok::<_, NatsError>(Shared {
            connection: connection.clone(),
            name: name.to_owned(),
            subject,
            stream,
            consumer,
            capacity,
            closing,
            unconfirmed: Unconfirmed::of(&connection, &stream_name),
        })
    })
    .await?;
    let shared = Arc::new(opened);
    Ok((Sender::new(shared.clone()), Receiver::new(shared)))
}

/// Sends into a distributed [`channel`](crate::Nats::channel). Cloneable; a `futures::Sink`.
pub struct Sender<T> {
    shared: Arc<Shared>,
    // Only reached through `&mut self` (the Sink), so the handle stays `Sync`.
    in_flight: InFlight<T>,
    closing: SyncWrapper<Option<BoxFuture<()>>>,
    _values: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            in_flight: SyncWrapper::new(None),
            closing: SyncWrapper::new(None),
            _values: PhantomData,
        }
    }

    /// The capacity the channel was created with.
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) -> Result<(), klaw_nats::NatsError> {
    /// let (tx, _rx) = nats.channel::<u8>("c", 8).await?;
    /// assert_eq!(tx.capacity(), 8);
    /// # Ok(()) }
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// True once any process closed the channel (as far as this process has heard).
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) {
    /// assert!(!tx.is_closed());
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Messages in the channel: queued, or taken by a receiver whose `recv` has not returned
    /// them yet. It is a round trip to the server, hence `async`.
    ///
    /// A message that a `recv` on the same connection (the same [`Nats`](crate::Nats), through
    /// any handle of this channel) returned before the call no longer counts: `recv` does not
    /// wait for the server to confirm its acknowledgement, so `len` first waits for the
    /// confirmations of those receives (each at most the client's request timeout, 10 s by
    /// default, should the server stop answering). A `recv` in another process (another
    /// connection) is not waited for: its message counts until the server has processed its
    /// acknowledgement, about one round trip after that `recv` returned.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) -> Result<(), klaw_nats::NatsError> {
    /// println!("{} queued", tx.len().await?);
    /// # Ok(()) }
    /// ```
    pub async fn len(&self) -> Result<usize, NatsError> {
        self.shared.len().await
    }

    /// Closes the channel for every process: sends fail from now on; receivers get what is
    /// queued, then `Closed`.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) -> Result<(), klaw_nats::NatsError> {
    /// tx.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<(), NatsError> {
        close(&self.shared).await
    }

    /// True if no message is in the channel: [`len`](Self::len) is zero, with the same
    /// consistency.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) -> Result<(), klaw_nats::NatsError> {
    /// if tx.is_empty().await? { println!("drained") }
    /// # Ok(()) }
    /// ```
    pub async fn is_empty(&self) -> Result<bool, NatsError> {
        Ok(self.len().await? == 0)
    }
}

impl<T: Serialize + Send + 'static> Sender<T> {
    /// Sends if there is room now. `Full(value)` if the channel holds `capacity` messages,
    /// `Closed(value)` if it was closed, `Unavailable(value)` if the server did not take it
    /// within [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry) (a restart is
    /// retried that long): the value always comes back. It is a round trip to the server,
    /// hence `async`.
    ///
    /// The room a `recv` on the same connection (the same [`Nats`](crate::Nats), through any
    /// handle of this channel) freed before the call is there: if the server finds the channel
    /// full while it has not confirmed the acknowledgements of those receives, `try_send`
    /// waits for the confirmations and tries once more (each at most the client's request
    /// timeout, 10 s by default, should the server stop answering). The room a `recv` in
    /// another process frees is there once the server has processed its acknowledgement, about
    /// one round trip after that `recv` returned: a `try_send` just after it may still find the
    /// channel full (`send` waits for the room).
    ///
    /// Cancel safety: if dropped before it resolves, the message may or may not have been
    /// stored (the server may have it already); it is not returned.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) {
    /// match tx.try_send(1).await {
    ///     Ok(()) => {}
    ///     Err(klaw_nats::channel::TrySendError::Full(v)) => println!("{v} waits"),
    ///     Err(klaw_nats::channel::TrySendError::Closed(v)) => println!("{v} has nowhere to go"),
    ///     Err(other) => println!("try later: {other}"),
    /// }
    /// # }
    /// ```
    pub async fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        try_send(&self.shared, value).await
    }

    /// Sends, waiting while the channel is full (backpressure). `Err(Closed(value))` once it
    /// is closed; `Err(Unavailable(value))` if the server did not take it within
    /// [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry).
    ///
    /// Found full, it first waits for the confirmations of the receives on this connection
    /// that returned before the call, and tries again at once, as
    /// [`try_send`](Self::try_send) does; then it looks again, less and less often.
    ///
    /// Cancel safety: as [`try_send`](Self::try_send); a send dropped while it waits for room
    /// has sent nothing.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::mpmc::Sender<u8>) -> Result<(), klaw_nats::channel::SendError<u8>> {
    /// tx.send(7).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        send(self.shared.clone(), value).await
    }
}

async fn try_send<T: Serialize>(shared: &Shared, value: T) -> Result<(), TrySendError<T>> {
    // Taken before the first try: a receive whose confirmation comes between the server's
    // `Full` and a later look would be missed.
    let out = shared.unconfirmed.out();
    match (offer(shared, value).await, out) {
        // Full, maybe only because of this connection's receives the server has not settled:
        // once it has, the answer is the one a local channel gives.
        (Err(TrySendError::Full(value)), Some(out)) => {
            shared.unconfirmed.settled(out).await;
            offer(shared, value).await
        }
        (tried, _) => tried,
    }
}

/// Sends if the server has room now, without waiting for this connection's receives.
async fn offer<T: Serialize>(shared: &Shared, value: T) -> Result<(), TrySendError<T>> {
    send_value(&shared.connection, &shared.subject, &shared.name, value, || shared.is_closed())
        .await
}

async fn send<T: Serialize>(shared: Arc<Shared>, mut value: T) -> Result<(), SendError<T>> {
    // As `try_send`: the receives of this connection that returned before the call, whose
    // room the server may not count yet, are waited for once the channel is found full, then
    // the send is tried again at once.
    let mut out = shared.unconfirmed.out();
    let mut pause = Duration::from_millis(1);
    loop {
        match offer(&shared, value).await {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(back)) => value = back,
            Err(refused) => return Err(SendError::never_full(refused)),
        }
        if let Some(before) = out.take() {
            shared.unconfirmed.settled(before).await;
            continue;
        }
        // Full: the server does not tell when room frees up, so look again, less often.
        // Real time even under a paused clock: the server does not follow it.
        async_io::Timer::after(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

async fn close(shared: &Shared) -> Result<(), NatsError> {
    shared.closing.close().await
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self::new(self.shared.clone())
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("channel", &self.shared.name).finish_non_exhaustive()
    }
}

impl<T: Serialize + Send + 'static> futures_util::Sink<T> for Sender<T> {
    type Error = SendError<Option<T>>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_flush(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, value: T) -> Result<(), Self::Error> {
        *self.in_flight.get_mut() = Some(Box::pin(send(self.shared.clone(), value)));
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let Some(in_flight) = self.in_flight.get_mut().as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let sent = ready!(in_flight.as_mut().poll(cx));
        *self.in_flight.get_mut() = None;
        Poll::Ready(sent.map_err(|error| error.map(Some)))
    }

    /// Flushes, then closes the channel for every process, as a local sender's sink does.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let shared = self.shared.clone();
        let closing = self.closing.get_mut().get_or_insert_with(|| {
            Box::pin(async move {
                if let Err(error) = close(&shared).await {
                    tracing::warn!(channel = %shared.name, %error, "could not close");
                }
            })
        });
        ready!(closing.as_mut().poll(cx));
        *self.closing.get_mut() = None;
        Poll::Ready(Ok(()))
    }
}

/// Receives from a distributed [`channel`](crate::Nats::channel). Cloneable (each clone pulls
/// for itself); a `futures::Stream`.
pub struct Receiver<T> {
    shared: Arc<Shared>,
    /// Messages pulled and not yet handed out (only by a `recv` dropped between its pull and
    /// its return); handed back to the queue if dropped.
    taken: Arc<Taken>,
    /// The Stream's next item in progress. A `recv` or `try_recv` takes it over: given up
    /// while it waited, it has a pull request out, and the message the server sends to that
    /// request would otherwise wait, unread, for the ack wait to pass.
    next: Mutex<Option<BoxFuture<Result<T, RecvError>>>>,
}

#[derive(Default)]
struct Taken(Mutex<VecDeque<Message>>);

impl Taken {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Message>> {
        // No code under this lock panics; a poisoned queue is still sound.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Receiver<T> {
    fn new(shared: Arc<Shared>) -> Self {
        Self { shared, taken: Arc::default(), next: Mutex::new(None) }
    }

    /// The capacity the channel was created with (as [`Sender::capacity`]).
    ///
    /// ```no_run
    /// # async fn demo(nats: klaw_nats::Nats) -> Result<(), klaw_nats::NatsError> {
    /// let (_tx, rx) = nats.channel::<u8>("c", 8).await?;
    /// assert_eq!(rx.capacity(), 8);
    /// # Ok(()) }
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Messages in the channel, as [`Sender::len`] counts them: a message a `recv` on this
    /// connection returned before the call no longer counts; one a `recv` in another process
    /// returned counts until the server has processed its acknowledgement.
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) -> Result<(), klaw_nats::NatsError> {
    /// println!("{} waiting for a receiver", rx.len().await?);
    /// # Ok(()) }
    /// ```
    pub async fn len(&self) -> Result<usize, NatsError> {
        self.shared.len().await
    }

    /// True if no message is in the channel (as [`Sender::is_empty`]: [`len`](Self::len) is
    /// zero).
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) -> Result<(), klaw_nats::NatsError> {
    /// if rx.is_empty().await? { println!("nothing to do") }
    /// # Ok(()) }
    /// ```
    pub async fn is_empty(&self) -> Result<bool, NatsError> {
        Ok(self.len().await? == 0)
    }

    /// True once any process closed the channel (as far as this process has heard).
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) {
    /// assert!(!rx.is_closed());
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<T: DeserializeOwned + Send + 'static> Receiver<T> {
    /// The next message; waits for one. `Err(Closed)` once the channel is closed and empty.
    ///
    /// It returns as soon as it has sent the message's acknowledgement, without waiting for
    /// the server to confirm it (which would cost one more round trip per message). `len`,
    /// `try_send` and `send` called afterwards on the same connection (the same
    /// [`Nats`](crate::Nats), through any handle of this channel) wait for that confirmation
    /// where it matters, so for them the room it frees is there and the message no longer
    /// counts, as with a local channel. Another process sees the room once the server has
    /// processed the acknowledgement, about one round trip later. If the server never
    /// confirms it (it is away), the message may come again.
    ///
    /// Cancel safety: it does not wait between taking a message and returning it, so if this
    /// future is dropped before it returns, it has taken no message: one the server sends to
    /// its pull request afterwards is handed back to the queue at once, for this receiver's
    /// next call or another receiver. None is lost. A Stream item given up while it waited
    /// (a `select!` arm that lost) is taken over by the next `recv`, with what its pull
    /// request got.
    /// Delivery is at least once: a receiver whose process dies after it took a message but
    /// before it acknowledged it leaves that message to be delivered again, and so does a
    /// server killed just after `recv` returned, or a process that ends then (the
    /// acknowledgement may be lost with it).
    ///
    /// Each message goes to one receiver: a receiver takes a message from the server only when
    /// `recv` asks for one (no prefetch), so a receiver whose caller is busy holds none that
    /// another receiver is waiting for, however long past the ack wait it stays busy.
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) {
    /// while let Ok(value) = rx.recv().await {
    ///     println!("{value}");
    /// }
    /// # }
    /// ```
    pub async fn recv(&self) -> Result<T, RecvError> {
        match self.given_up_item() {
            Some(item) => item.await,
            None => recv(self.shared.clone(), self.taken.clone(), true)
                .await
                .map_err(|_| RecvError::Closed),
        }
    }

    /// The Stream's item in progress, if any, taken out of the receiver.
    fn given_up_item(&self) -> Option<BoxFuture<Result<T, RecvError>>> {
        // No code under this lock panics; a poisoned slot is still sound.
        self.next.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// A message if one is there now: `Empty` or `Closed` otherwise.
    ///
    /// Cancel safety: as [`recv`](Self::recv).
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) {
    /// if let Err(klaw::channel::TryRecvError::Empty) = rx.try_recv().await { println!("nothing yet") }
    /// # }
    /// ```
    pub async fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(mut item) = self.given_up_item() {
            // What its pull request already got is there now; if nothing is, dropping it hands
            // back to the queue whatever the server sends to that request later.
            let now = std::future::poll_fn(|cx| Poll::Ready(item.as_mut().poll(cx))).await;
            if let Poll::Ready(received) = now {
                return received.map_err(|_| TryRecvError::Closed);
            }
        }
        recv(self.shared.clone(), self.taken.clone(), false).await
    }

    /// Closes the channel for every process (see [`Sender::close`]).
    ///
    /// ```no_run
    /// # async fn demo(rx: klaw_nats::channel::mpmc::Receiver<u8>) -> Result<(), klaw_nats::NatsError> {
    /// rx.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<(), NatsError> {
        close(&self.shared).await
    }
}

/// Takes the next message: from those this receiver holds, else from the server.
async fn recv<T: DeserializeOwned>(
    shared: Arc<Shared>,
    taken: Arc<Taken>,
    wait: bool,
) -> Result<T, TryRecvError> {
    loop {
        let next = taken.lock().pop_front();
        if let Some(message) = next {
            match rmp_serde::from_slice::<T>(&message.payload) {
                Ok(value) => {
                    // No `.await` between taking the message and returning it: a `recv`
                    // dropped anywhere has either left it in `taken` or returned it.
                    acknowledge(&shared, message);
                    return Ok(value);
                }
                Err(error) => {
                    tracing::error!(channel = %shared.name, %error, "not a value of this channel's type: removed");
                    let _ = async_compat::Compat::new(message.ack_with(AckKind::Term)).await;
                    continue;
                }
            }
        }
        // Read before the pull, and only that reading ends the receive: a message stored
        // before the close was heard is then in what the pull finds. (Read after it, a message
        // stored between the server's empty answer and the close would be left unread behind
        // `Closed`, by every receiver.)
        let closed = shared.is_closed();
        let pulled = pull(&shared, wait && !closed).await;
        if pulled.is_empty() {
            if closed {
                return Err(TryRecvError::Closed);
            }
            if !wait {
                return Err(TryRecvError::Empty);
            }
            continue;
        }
        taken.lock().extend(pulled);
    }
}

/// Acknowledges a message `recv` is about to return, without waiting: a task on the
/// connection's runtime sends the acknowledgement and waits for the server's confirmation that
/// it removed the message, and holds the message's ticket until then (or until the client gives
/// up on the request), for `len` and the sends to wait for. If it is never confirmed (the
/// server is away), the message may come again: at least once.
fn acknowledge(shared: &Shared, message: Message) {
    let ticket = shared.unconfirmed.send();
    let client = shared.connection.client.clone();
    let channel = shared.name.clone();
    // A task dropped unrun (the runtime is shutting down) drops its ticket too: nobody waits
    // for an acknowledgement that will not be sent.
    shared.connection.tokio.spawn(async move {
        if let Err(error) = confirmed_ack(&client, &message).await {
            tracing::debug!(%channel, %error, "acknowledgement not confirmed; the message may come again");
        }
        drop(ticket);
    });
}

/// Acknowledges `message` and waits for the server's confirmation (an AckSync, as
/// `Message::double_ack`, but as a request on the client's shared reply subscription rather
/// than on a subscription made and removed for each message, which costs two more messages to
/// the server per `recv`). Runs on the client's tokio runtime.
async fn confirmed_ack(
    client: &async_nats::Client,
    message: &Message,
) -> Result<(), async_nats::Error> {
    let reply = message.reply.clone().ok_or("not a JetStream message: no reply subject")?;
    client.request(reply, AckKind::Ack.into()).await?;
    Ok(())
}

/// The next message if one is there now, or, with `wait`, the first one to arrive within
/// the pull wait (see [`PULL_BATCH`] for why one).
async fn pull(shared: &Shared, wait: bool) -> Vec<Message> {
    async_compat::Compat::new(async {
        let mut pulled = Vec::new();
        if let Ok(batch) = shared.consumer.fetch().max_messages(PULL_BATCH).messages().await {
            let mut batch = Pulling::new(batch, &shared.connection);
            while let Some(Ok(message)) = batch.next().await {
                pulled.push(message);
            }
        }
        if pulled.is_empty() && wait {
            let batch = shared
                .consumer
                .batch()
                .max_messages(PULL_BATCH)
                .expires(PULL_WAIT)
                .messages()
                .await;
            let failed = match batch {
                Ok(batch) => {
                    let mut batch = Pulling::new(batch, &shared.connection);
                    let mut failed = None;
                    while let Some(message) = batch.next().await {
                        match message {
                            Ok(message) => pulled.push(message),
                            Err(error) => {
                                failed = Some(error.to_string());
                                break;
                            }
                        }
                    }
                    failed
                }
                Err(error) => Some(error.to_string()),
            };
            // The server is away or recovering (a restart, a reconnect): a receiver waits for
            // it, as it waits for a message, without spinning.
            if let (true, Some(error)) = (pulled.is_empty(), failed) {
                tracing::debug!(channel = %shared.name, %error, "pull failed; waiting");
                tokio::time::sleep(PULL_RETRY).await;
            }
        }
        pulled
    })
    .await
}

/// A pull request in progress. The server answers it whether or not anyone still waits: a
/// `recv` dropped (a `select!` arm that lost, a timeout) while its request is out would leave
/// the message the server then sends, or has just sent, to a subscription that is gone, and
/// that message would reach no receiver until the ack wait passed. So a request given up is
/// followed to its end (the pull wait at most) by a task of its own, which hands back to the
/// queue at once whatever arrives.
struct Pulling {
    batch: Option<consumer::pull::Batch>,
    tokio: tokio::runtime::Handle,
}

impl Pulling {
    fn new(batch: consumer::pull::Batch, connection: &Connection) -> Self {
        Self { batch: Some(batch), tokio: connection.tokio.clone() }
    }

    async fn next(&mut self) -> Option<Result<Message, async_nats::Error>> {
        let batch = self.batch.as_mut()?;
        let next = batch.next().await;
        if next.is_none() {
            self.batch = None; // answered in full: nothing more can come
        }
        next
    }
}

impl Drop for Pulling {
    fn drop(&mut self) {
        let Some(mut batch) = self.batch.take() else { return };
        self.tokio.spawn(async move {
            let handed_back = async {
                while let Some(message) = batch.next().await {
                    if let Ok(message) = message {
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                    }
                }
            };
            // A request lost with the connection is never answered (and a no-wait one has no
            // client-side expiry): give up after the longest the server may take, as the client
            // does for a request that waits.
            let _ = tokio::time::timeout(PULL_WAIT + PULL_ANSWER_GRACE, handed_back).await;
        });
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self::new(self.shared.clone())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // A `recv` future borrows the receiver, so the only other holder of `taken` now is the
        // Stream's own pending future, which is dropped with it: nobody will hand these out.
        let held: Vec<Message> = self.taken.lock().drain(..).collect();
        if held.is_empty() {
            return;
        }
        // Hand them back now, rather than after the ack wait.
        self.shared.connection.tokio.spawn(async move {
            for message in held {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
        });
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.shared.name)
            .field("held", &self.taken.lock().len())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> futures_util::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (shared, taken) = (self.shared.clone(), self.taken.clone());
        let slot = self.next.get_mut().unwrap_or_else(PoisonError::into_inner);
        let next = slot.get_or_insert_with(|| {
            let next = recv(shared, taken, true);
            Box::pin(async move { next.await.map_err(|_| RecvError::Closed) })
        });
        let received = ready!(next.as_mut().poll(cx));
        *slot = None;
        Poll::Ready(received.ok())
    }
}

//! The sending end of a distributed MPMC channel: a send publishes to the channel's stream,
//! which refuses a message past its capacity; a full channel is retried until it has room.

#[allow(clippy::wildcard_imports, reason = "the parent's imports, split from one file")]
use super::*;

/// Sends into a distributed [`channel`](crate::Nats::channel). Cloneable; a `futures::Sink`.
pub struct Sender<T> {
    shared: Arc<Shared>,
    // Only reached through `&mut self` (the Sink), so the handle stays `Sync`.
    in_flight: InFlight<T>,
    closing: SyncWrapper<Option<BoxFuture<()>>>,
    _values: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
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
    /// queued, then `Closed`. An `Err` means the server has not confirmed the close: this
    /// process has closed the channel all the same, and stores the close again in the
    /// background until the server has it (while a handle of the channel lives here), so every
    /// process comes to see it closed.
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
    /// retried that long), `Unconfirmed(value)` if an attempt that may have stored it got no
    /// answer (see [`SendError::Unconfirmed`](crate::channel::SendError::Unconfirmed)): the
    /// value always comes back. It is a round trip to the server,
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
    /// [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry); `Err(Unconfirmed(value))`
    /// if it may have (see [`SendError::Unconfirmed`](crate::channel::SendError::Unconfirmed)).
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
    send_value(&shared.connection, &shared.subject, &shared.name, value, Some(&shared.closing))
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

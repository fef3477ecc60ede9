//! The receiving end of a distributed MPMC channel: one pull at a time from the consumer every
//! receiver shares, a message taken only to be returned at once and acknowledged.

#[allow(clippy::wildcard_imports, reason = "the parent's imports, split from one file")]
use super::*;

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
    pub(super) fn new(shared: Arc<Shared>) -> Self {
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
                match shared.len().await {
                    // Closed and empty: what the stream held is all received.
                    Ok(0) => return Err(TryRecvError::Closed),
                    // A message another receiver took and has not acknowledged (it may have
                    // died, or its `recv` was dropped): it comes back to the queue, for this
                    // receiver too. Closed is said only once nothing is left.
                    Ok(_) if wait => pull_held_back(&shared, &taken).await,
                    Ok(_) => return Err(TryRecvError::Empty),
                    // Not known (the server is away): not `Closed`, which only means closed
                    // and empty; look again.
                    Err(error) if wait => {
                        tracing::debug!(channel = %shared.name, %error, "closed; its length unknown: waiting");
                        async_compat::Compat::new(tokio::time::sleep(PULL_RETRY)).await;
                    }
                    Err(_) => return Err(TryRecvError::Empty),
                }
                continue;
            }
            if !wait {
                return Err(TryRecvError::Empty);
            }
            continue;
        }
        taken.lock().extend(pulled);
    }
}

/// On a closed channel whose stream still holds messages, all taken by receivers that have not
/// acknowledged them: waits for one to come back to the queue (a pull that waits), into
/// `taken`.
async fn pull_held_back(shared: &Shared, taken: &Taken) {
    let pulled = pull(shared, true).await;
    taken.lock().extend(pulled);
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
        // A no-wait request has no client-side expiry: one lost with its connection (a link
        // that died silently, a reconnect) would never be answered, and this receive would
        // wait for ever. It is given up after the longest an answer takes; its `Pulling`
        // hands back whatever still arrives.
        let no_wait = async {
            if let Ok(batch) = shared.consumer.fetch().max_messages(PULL_BATCH).messages().await {
                let mut batch = Pulling::new(batch, &shared.connection);
                while let Some(Ok(message)) = batch.next().await {
                    pulled.push(message);
                }
            }
        };
        let answered = tokio::time::timeout(PULL_ANSWER_GRACE, no_wait).await.is_ok();
        if !answered {
            tracing::debug!(channel = %shared.name, "pull not answered; asking again");
        }
        if pulled.is_empty() && wait && answered {
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
                    // Bounded as the no-wait request is, should the client's own expiry of a
                    // waiting request not end it.
                    let answered = tokio::time::timeout(PULL_WAIT + PULL_ANSWER_GRACE, async {
                        while let Some(message) = batch.next().await {
                            match message {
                                Ok(message) => pulled.push(message),
                                Err(error) => {
                                    failed = Some(error.to_string());
                                    break;
                                }
                            }
                        }
                    })
                    .await;
                    if answered.is_err() {
                        failed = Some("the pull request was not answered".to_owned());
                    }
                    failed
                }
                Err(error) => Some(error.to_string()),
            };
            // The server is away or recovering (a restart, a reconnect): a receiver waits for
            // it, as it waits for a message, without spinning. Or the consumer is gone (an
            // operator deleted it), and every pull would fail for ever with the values kept in
            // the stream: it is made again (the same durable name and config), which the pulls
            // of every receiver reach by its name.
            if let (true, Some(error)) = (pulled.is_empty(), failed) {
                tracing::debug!(channel = %shared.name, %error, "pull failed; waiting");
                let info = shared.consumer.cached_info();
                let (name, config) = (&info.name, info.config.clone());
                if let Err(error) = shared.stream.get_or_create_consumer(name, config).await {
                    tracing::debug!(channel = %shared.name, %error, "consumer not found or made");
                }
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

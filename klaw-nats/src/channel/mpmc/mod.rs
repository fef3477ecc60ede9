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

mod receiver;
mod sender;

pub use receiver::Receiver;
pub use sender::Sender;

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

/// Closes the channel for every end, in every process.
async fn close(shared: &Shared) -> Result<(), NatsError> {
    shared.closing.close(&shared.connection).await
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
        let closing = Closing::watch(&connection, name.to_owned(), &stream, &subject).await?;
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

//! A watch channel across processes: the value lives under a key of a key-value bucket; every
//! process keeps a local klaw `watch` channel current from the bucket's watch.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_nats::jetstream::kv;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::NatsError;
use crate::channel::publish::send_value;
use crate::channel::{SendError, check_name};
use crate::connection::Connection;
use crate::kv_watch::KvWatch;

pub(crate) async fn open<T>(
    connection: Arc<Connection>,
    name: &str,
    initial: T,
) -> Result<(Sender<T>, klaw_rt::channel::watch::Receiver<T>), NatsError>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    check_name(name)?;
    let encoded = rmp_serde::to_vec_named(&initial).map_err(|e| NatsError::JetStream {
        action: "encoding the initial value",
        message: e.to_string(),
    })?;
    let bucket_name = connection.config.watch_bucket();
    let (store, current, watch) = async_compat::Compat::new(async {
        let store = connection
            .jetstream
            .create_or_update_key_value(kv::Config {
                bucket: bucket_name,
                description: "klaw: distributed watch channels".to_owned(),
                history: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        // Set the initial value unless another process set one first. Any other refusal (a
        // value larger than the server takes) is the caller's to know: the receiver would
        // otherwise show a value no other process ever sees.
        match store.create(name, encoded.into()).await {
            Ok(_) => {}
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(format!("setting the initial value: {error}")),
        }
        // Watch first, then read: a change between the two is seen by one or the other (read
        // first, a change made in between would be in neither, and the receiver would keep a
        // stale value until the next change).
        let watch =
            KvWatch::new(&connection.client, &store, name, std::future::pending::<()>()).await?;
        let current = store.get(name).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((store, current, watch))
    })
    .await
    .map_err(NatsError::jetstream("opening the watch channel"))?;
    let current = current.and_then(|bytes| rmp_serde::from_slice(&bytes).ok()).unwrap_or(initial);
    let (local_tx, local_rx) = klaw_rt::channel::watch::channel(current);
    // The task serves the local receivers, not the distributed `Sender` (which publishes on its
    // own): it ends once every local receiver is gone, at once rather than at the next change
    // of the key (which may never come), and removes its server consumer.
    connection.tokio.spawn(async move {
        let mut watch = watch;
        {
            let forward = async {
                while let Some(change) = watch.next().await {
                    if change.operation != kv::Operation::Put {
                        continue;
                    }
                    let Ok(value) = rmp_serde::from_slice::<T>(&change.value) else { continue };
                    if local_tx.send(value).is_err() {
                        return;
                    }
                }
            };
            let receivers_gone = local_tx.closed();
            futures_util::future::select(std::pin::pin!(forward), std::pin::pin!(receivers_gone))
                .await;
        }
        watch.end().await;
    });
    let subject = crate::connection::key_subject(&store, name);
    let sender = Sender { connection, subject, key: name.to_owned(), _values: PhantomData };
    Ok((sender, local_rx))
}

/// Sets the value of a distributed [`watch`](crate::Nats::watch) channel. Cloneable.
pub struct Sender<T> {
    connection: Arc<Connection>,
    subject: String,
    key: String,
    _values: PhantomData<fn(T)>,
}

impl<T: Serialize> Sender<T> {
    /// Sets the value for every process. `Err(Unavailable(value))` if the server did not take
    /// it within [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry);
    /// `Err(Unconfirmed(value))` if it may have (see
    /// [`SendError::Unconfirmed`]). A watch channel is
    /// never closed.
    ///
    /// ```no_run
    /// # async fn demo(tx: klaw_nats::channel::watch::Sender<u32>) -> Result<(), klaw_nats::channel::SendError<u32>> {
    /// tx.send(3).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        // Published with a message id, rather than `put`, so that a retry after a lost
        // acknowledgement is not a second change. A watch is never closed, nor full.
        let sent = send_value(&self.connection, &self.subject, &self.key, value, None).await;
        sent.map_err(SendError::never_full)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            connection: self.connection.clone(),
            subject: self.subject.clone(),
            key: self.key.clone(),
            _values: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("key", &self.key).finish_non_exhaustive()
    }
}

//! Watching keys of a key-value bucket, with a watch that removes its server consumer when it
//! ends. `kv::Store::watch` leaves its (ephemeral, ordered) consumer to the server, which keeps
//! it 30 seconds after the last subscriber goes: a process that opens and drops channels as it
//! works would pile them up meanwhile.

use std::future::Future;
use std::str::FromStr;

use async_nats::jetstream::consumer::{self, DeliverPolicy, push};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use futures_util::stream::TakeUntil;

/// One change of a watched key.
pub(crate) struct KvChange {
    pub(crate) key: String,
    pub(crate) value: bytes::Bytes,
    pub(crate) operation: kv::Operation,
}

/// A watch of the keys matching `filter` in a bucket, ended by a stop signal.
pub(crate) struct KvWatch<S: Future> {
    changes: TakeUntil<push::Ordered, S>,
    store: kv::Store,
    prefix: String,
    /// Unique to this watch, and kept by the consumers it recreates after a server restart: how
    /// its consumer is found again to be removed.
    description: String,
    first_consumer: String,
}

impl<S: Future + Unpin> KvWatch<S> {
    /// Watches `filter` (a key, or `>` for all) for changes from now on, until `stop` resolves.
    pub(crate) async fn new(
        client: &async_nats::Client,
        store: &kv::Store,
        filter: &str,
        stop: S,
    ) -> Result<Self, String> {
        let description = format!("klaw watch {}", client.new_inbox());
        let consumer = store
            .stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                description: Some(description.clone()),
                filter_subject: format!("{}{filter}", store.prefix),
                replay_policy: consumer::ReplayPolicy::Instant,
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let first_consumer = consumer.cached_info().name.clone();
        let changes = consumer.messages().await.map_err(|e| e.to_string())?;
        Ok(Self {
            changes: changes.take_until(stop),
            store: store.clone(),
            prefix: store.prefix.clone(),
            description,
            first_consumer,
        })
    }

    /// The next change; `None` once stopped. A moment without the server is skipped (the
    /// watch recreates its consumer and resumes after it).
    pub(crate) async fn next(&mut self) -> Option<KvChange> {
        loop {
            let Ok(message) = self.changes.next().await? else { continue };
            let Some(key) = message.subject.strip_prefix(&self.prefix) else { continue };
            let headers = message.headers.as_ref();
            let operation = match headers.and_then(|h| h.get("KV-Operation")) {
                Some(op) => kv::Operation::from_str(op.as_str()).unwrap_or(kv::Operation::Delete),
                // A server marker (an expired or removed key) is never a value.
                None if headers.and_then(|h| h.get("Nats-Marker-Reason")).is_some() => {
                    kv::Operation::Purge
                }
                None => kv::Operation::Put,
            };
            return Some(KvChange {
                key: key.to_owned(),
                value: message.payload.clone(),
                operation,
            });
        }
    }

    /// Stops watching and removes the server consumer. Best effort: if the server is away (or
    /// a least-privilege user may not list consumers), the server drops it 30 s later.
    pub(crate) async fn end(self) {
        let Self { changes, store, description, first_consumer, .. } = self;
        drop(changes); // unsubscribes: nothing is delivered to this process any more
        if store.stream.delete_consumer(&first_consumer).await.is_ok() {
            return;
        }
        // After a server restart the watch ran on a recreated consumer, under another name.
        let mut consumers = store.stream.consumers();
        let mut ours = Vec::new();
        while let Some(Ok(info)) = consumers.next().await {
            if info.config.description.as_deref() == Some(description.as_str()) {
                ours.push(info.name);
            }
        }
        for name in ours {
            let _ = store.stream.delete_consumer(&name).await;
        }
    }
}

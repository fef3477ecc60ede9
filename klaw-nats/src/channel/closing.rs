//! Closing a distributed channel: a key in the namespace's `channels` bucket, which every
//! process watches into a local flag, one per channel and connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::kv;

use crate::NatsError;
use crate::connection::{Connection, PerChannel, shared_per_channel};
use crate::kv_watch::KvWatch;

/// The channels' closed flags on one connection, by key, while a handle lives: shared by every
/// opening of the channel there, so a close by one is a close for all at once (and its put is
/// stored again while any lives).
pub(crate) type ClosedFlags = PerChannel<AtomicBool>;

/// Whether one channel is closed, as far as this process has heard.
pub(crate) struct Closing {
    states: kv::Store,
    key: String,
    closed: Arc<AtomicBool>,
    /// Ends the watch task when this goes (with the channel's last handle): the task would
    /// otherwise notice only at the next change of the key, which may never come, and keep a
    /// server consumer, a subscription and the connection meanwhile.
    _stop_watching: klaw_rt::channel::oneshot::Sender<()>,
}

impl Closing {
    /// Reads the channel's state and keeps watching it. Call inside `Compat`.
    pub(crate) async fn watch(connection: &Connection, key: String) -> Result<Self, NatsError> {
        let states = connection
            .jetstream
            .create_or_update_key_value(kv::Config {
                bucket: connection.config.channels_bucket(),
                description: "klaw: closed distributed channels".to_owned(),
                history: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::jetstream("creating the channels bucket")(e.to_string()))?;
        // Watch first, then read: a close between the two is seen by one or the other.
        let (stop_watching, stopped) = klaw_rt::channel::oneshot::channel();
        let mut watch = KvWatch::new(&connection.client, &states, &key, stopped)
            .await
            .map_err(NatsError::jetstream("watching the channel's state"))?;
        // A state that cannot be read is not taken for open: the watch delivers only changes
        // from now on, so a close made before would never be seen.
        let stored = states
            .get(&key)
            .await
            .map_err(|e| NatsError::jetstream("reading the channel's state")(e.to_string()))?;
        let closed = shared_per_channel(&connection.closed_flags, &key);
        if stored.is_some() {
            closed.store(true, Ordering::Release);
        }
        let flag = Arc::downgrade(&closed);
        connection.tokio.spawn(async move {
            while let Some(change) = watch.next().await {
                let Some(flag) = flag.upgrade() else { break };
                if change.operation == kv::Operation::Put {
                    flag.store(true, Ordering::Release);
                }
            }
            watch.end().await;
        });
        Ok(Self { states, key, closed, _stop_watching: stop_watching })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the channel for every process (and at once for this one).
    ///
    /// An `Err` says the server has not confirmed the close yet: the put may be lost (the
    /// connection died silently under it) or may have landed. This process has closed the
    /// channel already (every opening of it on this connection), so the close is stored again
    /// in the background until the server confirms it, while any handle of the channel lives
    /// on the connection: every process comes to see it closed, rather than this one alone.
    pub(crate) async fn close(&self, connection: &Connection) -> Result<(), NatsError> {
        self.closed.store(true, Ordering::Release);
        let stored = async_compat::Compat::new(self.states.put(&self.key, "closed".into()))
            .await
            .map(drop)
            .map_err(|e| NatsError::jetstream("closing the channel")(e.to_string()));
        if stored.is_err() {
            let (states, key, flag) =
                (self.states.clone(), self.key.clone(), Arc::downgrade(&self.closed));
            connection.tokio.spawn(async move {
                let mut backoff = crate::backoff::Backoff::new();
                while flag.upgrade().is_some() {
                    backoff.wait().await;
                    match states.put(&key, "closed".into()).await {
                        Ok(_) => return,
                        Err(error) => {
                            tracing::debug!(%key, %error, "could not store a close; trying again")
                        }
                    }
                }
            });
        }
        stored
    }
}

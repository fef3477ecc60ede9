//! Closing a distributed channel: a key in the namespace's `channels` bucket, which every
//! process watches into a local flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use crate::NatsError;
use crate::connection::Connection;

/// Whether one channel is closed, as far as this process has heard.
pub(crate) struct Closing {
    states: kv::Store,
    key: String,
    closed: Arc<AtomicBool>,
}

impl Closing {
    /// Reads the channel's state and keeps watching it. Call inside `Compat`.
    pub(crate) async fn watch(connection: &Connection, key: String) -> Result<Self, NatsError> {
        let states = connection
            .jetstream
            .create_or_update_key_value(kv::Config {
                bucket: format!("{}_channels", connection.config.namespace),
                description: "klaw: closed distributed channels".to_owned(),
                history: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::jetstream("creating the channels bucket")(e.to_string()))?;
        let closed = Arc::new(AtomicBool::new(matches!(states.get(&key).await, Ok(Some(_)))));
        let mut watch = states
            .watch(&key)
            .await
            .map_err(|e| NatsError::jetstream("watching the channel's state")(e.to_string()))?;
        let flag = Arc::downgrade(&closed);
        connection.tokio.spawn(async move {
            while let Some(entry) = watch.next().await {
                // An error is a moment without the server (the watch resumes after it).
                let Ok(entry) = entry else { continue };
                let Some(flag) = flag.upgrade() else { return };
                if entry.operation == kv::Operation::Put {
                    flag.store(true, Ordering::Release);
                }
            }
        });
        Ok(Self { states, key, closed })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the channel for every process (and at once for this one).
    pub(crate) async fn close(&self) -> Result<(), NatsError> {
        self.closed.store(true, Ordering::Release);
        async_compat::Compat::new(self.states.put(&self.key, "closed".into()))
            .await
            .map(drop)
            .map_err(|e| NatsError::jetstream("closing the channel")(e.to_string()))
    }
}

//! Closing a distributed channel, in two steps, in this order:
//!
//! 1. The channel's stream stops taking messages: its subject is changed to one nobody sends
//!    to, so a publish the server handles after this finds no stream (the server decides, one
//!    message at a time, whether a message came before the close or after it).
//! 2. A key in the namespace's `channels` bucket says so; every process watches it into a
//!    local flag, one per channel and connection.
//!
//! Receivers say `Closed` once they have heard of the key and then found the stream empty; a
//! message stored before step 1 is in what they find. A sender looks at its flag first (a
//! closed channel refuses at once), but a flag is only what this process has heard so far: a
//! publish made after another process closed the channel is refused by the server (no stream),
//! and the sender then reads the key on the server to tell a close from a server that is
//! restarting (a stream moved off its subject whose key is missing counts as closed, and the
//! reader stores the key: a closer that stopped between the steps leaves no process alone in
//! seeing the channel open). A send whose earlier attempt got no answer cannot know whether
//! that one was stored before the close, and hands its value back as `Unconfirmed`, not
//! `Closed`. The other order would lose a value: a message stored between the key and the
//! stream's change could land after every receiver had said `Closed`, and its `send` return
//! `Ok`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::{self, kv, stream};

use crate::NatsError;
use crate::connection::{Connection, PerChannel, shared_per_channel};
use crate::kv_watch::KvWatch;
use crate::refusals::Refusals;

/// The channels' closed flags on one connection, by key, while a handle lives: shared by every
/// opening of the channel there, so a close by one is a close for all at once (and its put is
/// stored again while any lives).
pub(crate) type ClosedFlags = PerChannel<AtomicBool>;

/// Whether one channel is closed, as far as this process has heard.
pub(crate) struct Closing {
    states: kv::Store,
    key: String,
    closed: Arc<AtomicBool>,
    /// The channel's stream, which stops taking messages at a close (step 1 above).
    stream: Sealing,
    /// Ends the watch task when this goes (with the channel's last handle): the task would
    /// otherwise notice only at the next change of the key, which may never come, and keep a
    /// server consumer, a subscription and the connection meanwhile.
    _stop_watching: klaw_rt::channel::oneshot::Sender<()>,
}

impl Closing {
    /// Reads the channel's state and keeps watching it. `stream` is the channel's stream and
    /// `subject` the one its messages are sent to. Call inside `Compat`.
    pub(crate) async fn watch(
        connection: &Connection,
        key: String,
        stream: &stream::Stream,
        subject: &str,
    ) -> Result<Self, NatsError> {
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
        // A stream already moved off its subject is closed too, though its key may be missing
        // (the process closing it stopped between the two steps).
        if stored.is_some() || is_sealed(&stream.cached_info().config, subject) {
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
        let stream = Sealing {
            jetstream: connection.jetstream.clone(),
            refusals: connection.refusals.clone(),
            stream: stream.cached_info().config.name.clone(),
            subject: subject.to_owned(),
        };
        Ok(Self { states, key, closed, stream, _stop_watching: stop_watching })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the server holds the close (read there, not in what this process has heard; a
    /// close found sets the flag here too). For a publish the server refused as having no
    /// stream: a closed channel, or a server that is starting. A stream moved off its subject
    /// whose key is missing (the process closing it stopped between the two steps) is closed
    /// too, and its key is stored here, so that every process comes to hear it. Call inside
    /// `Compat`.
    pub(crate) async fn closed_on_server(&self) -> Result<bool, String> {
        let stored = self.states.get(&self.key).await.map_err(|error| error.to_string())?;
        let closed = stored.is_some() || self.stream.is_sealed().await?;
        if closed {
            self.closed.store(true, Ordering::Release);
        }
        if stored.is_none() && closed {
            self.states.put(&self.key, "closed".into()).await.map_err(|e| e.to_string())?;
        }
        Ok(closed)
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
        let stored = async_compat::Compat::new(store_close(&self.stream, &self.states, &self.key))
            .await
            .map_err(NatsError::jetstream("closing the channel"));
        if stored.is_err() {
            let (stream, states, key, flag) = (
                self.stream.clone(),
                self.states.clone(),
                self.key.clone(),
                Arc::downgrade(&self.closed),
            );
            connection.tokio.spawn(async move {
                let mut backoff = crate::backoff::Backoff::new();
                while flag.upgrade().is_some() {
                    backoff.wait().await;
                    match store_close(&stream, &states, &key).await {
                        Ok(()) => return,
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

/// A channel's stream, and how to make it stop taking messages.
#[derive(Clone)]
struct Sealing {
    jetstream: jetstream::Context,
    /// What the server refused this connection: a user who may not update the stream learns so
    /// at once, not after a request's timeout.
    refusals: Arc<Refusals>,
    stream: String,
    /// The subject the channel's messages are sent to.
    subject: String,
}

impl Sealing {
    /// Moves the stream to a subject nobody sends to: from the server's answer on, a publish to
    /// the channel finds no stream. Its messages stay, for the receivers. Done again (a second
    /// close, or a close stored again) it changes nothing.
    async fn seal(&self) -> Result<(), String> {
        let mut config = self.config().await?;
        if is_sealed(&config, &self.subject) {
            return Ok(());
        }
        config.subjects = vec![sealed_subject(&self.subject)];
        let tail = format!(".STREAM.UPDATE.{}", self.stream);
        match self.refusals.unless_refused(&tail, self.jetstream.update_stream(&config)).await {
            Some(updated) => updated.map(drop).map_err(|error| error.to_string()),
            None => Err(format!(
                "this user may not update the channel's stream `{}` (`$JS.API{tail}`), which \
                 closing it takes",
                self.stream
            )),
        }
    }

    /// The stream's configuration, as the server has it now.
    async fn config(&self) -> Result<stream::Config, String> {
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| e.to_string())?;
        Ok(stream.cached_info().config.clone())
    }

    /// Whether the stream was moved off its subject (a close, maybe not finished).
    async fn is_sealed(&self) -> Result<bool, String> {
        Ok(is_sealed(&self.config().await?, &self.subject))
    }
}

/// The subject a closed channel's stream is moved to (a channel's name has no `.`, so no
/// channel sends to it).
fn sealed_subject(subject: &str) -> String {
    format!("{subject}.closed")
}

/// Whether a channel's stream, configured so, was moved off the channel's `subject`.
fn is_sealed(config: &stream::Config, subject: &str) -> bool {
    config.subjects == [sealed_subject(subject)]
}

/// Closes the channel on the server: the stream first, then the key (see the module's doc).
async fn store_close(stream: &Sealing, states: &kv::Store, key: &str) -> Result<(), String> {
    stream.seal().await?;
    states.put(key, "closed".into()).await.map(drop).map_err(|error| error.to_string())
}

//! Publishing one message of a channel. A server restart or a reconnect makes a publish fail
//! for a moment; that is not the channel closing. So a failed publish is tried again, with the
//! same message id, for up to [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry):
//! the stream's duplicate window drops a second copy if the first one was stored after all and
//! only its acknowledgement was lost.
//!
//! While the client is disconnected nothing is published: the client would hold the message
//! and send it when the connection is back, perhaps after the bound has passed and the value
//! was handed back. So a value handed back was never given to a disconnected client; only one
//! whose connection broke while it was on its way, or whose last attempt got no
//! acknowledgement, can have reached the server. An attempt is never cut short, so a send ends
//! within the bound plus one acknowledgement wait.
//!
//! Without a message id, an attempt handed to the client is not tried again once it fails: it
//! may have been stored, and a second copy could not be told from it. Remote jobs are published
//! that way ([`publish_with_id`] with no id, which spares the server a duplicate lookup per
//! job): they wait for a connection within the bound, are handed over once, and learn whether
//! that attempt was made, which then may have reached the server: the backend then marks the
//! job cancelled before it reports the failure.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use klaw_rt::remote::JobId;
use serde::Serialize;
use tokio::time::Instant;

use crate::channel::TrySendError;
use crate::channel::closing::Closing;
use crate::connection::Connection;

/// The first pause between attempts; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);
/// How often a publish waiting for the connection to come back looks at it.
const RECONNECT_POLL: Duration = Duration::from_millis(50);

/// Sends `value` on the channel whose messages go to `subject`: `Closed` if `closing` (a channel
/// that can be closed) says so, before or after the server was tried (a channel closed while
/// the server was away is closed, not unavailable); else encoded and published. Every refusal
/// hands the value back.
pub(crate) async fn send_value<T: Serialize>(
    connection: &Connection,
    subject: &str,
    channel: &str,
    value: T,
    closing: Option<&Closing>,
) -> Result<(), TrySendError<T>> {
    let closed = || closing.is_some_and(Closing::is_closed);
    if closed() {
        return Err(TrySendError::Closed(value));
    }
    let payload = match encode(&value) {
        Ok(payload) => payload,
        Err(reason) => return Err(TrySendError::Rejected { value, reason }),
    };
    match publish(connection, subject, payload, channel, closing).await {
        Ok(()) => Ok(()),
        Err(Refused::Closed) => Err(TrySendError::Closed(value)),
        Err(Refused::Full) => Err(TrySendError::Full(value)),
        Err(Refused::Unavailable) if closed() => Err(TrySendError::Closed(value)),
        Err(Refused::Unavailable) => Err(TrySendError::Unavailable(value)),
        Err(Refused::Unconfirmed) => Err(TrySendError::Unconfirmed(value)),
        Err(Refused::Rejected(reason)) => Err(TrySendError::Rejected { value, reason }),
    }
}

/// `value` as MessagePack with named fields, or why it cannot be.
fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    rmp_serde::to_vec_named(value).map(Into::into).map_err(|error| error.to_string())
}

/// Why the server did not store the message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The channel's stream no longer takes messages: it was closed, as the server says.
    Closed,
    /// An attempt got no answer, so the message may have been stored (and received), and no
    /// later attempt settled it: the retry bound passed, a retry could not be told from a
    /// second copy (no message id), or the channel was closed meanwhile. Not `Closed` nor `Unavailable`, which say nobody
    /// receives the message.
    Unconfirmed,
    /// The stream holds its limit and refuses new messages.
    Full,
    /// No attempt succeeded within the retry bound, and none may have stored the message.
    Unavailable,
    /// The message can never be stored (it is larger than the server accepts).
    Rejected(String),
}

/// A publish that did not succeed: why, and whether an attempt was handed to the client (it
/// may then reach the server, now or once the connection is back).
#[derive(Debug)]
pub(crate) struct NotPublished {
    pub(crate) refused: Refused,
    pub(crate) handed_over: bool,
    /// What the last attempt's error said, if one was made.
    pub(crate) last_error: Option<String>,
}

/// Publishes `payload` to `subject` and waits for the server's acknowledgement, trying again
/// while it fails for another reason than a full stream or a closed channel. `channel` names it
/// in log events.
async fn publish(
    connection: &Connection,
    subject: &str,
    payload: Bytes,
    channel: &str,
    closing: Option<&Closing>,
) -> Result<(), Refused> {
    // Only a retry can store a message twice, so with retries off there is no id: the
    // server's duplicate tracking costs about a tenth of a channel's throughput.
    let retrying = !connection.config.publish_retry.is_zero();
    let message_id = retrying.then(|| JobId::random().to_string());
    let message_id = message_id.as_deref();
    match publish_with_id(connection, subject, payload, message_id, channel, closing).await {
        Ok(_) => Ok(()),
        Err(not_published) => Err(not_published.refused),
    }
}

/// Publishes as [`publish`] does, with `message_id` (if any) on every attempt; the stored
/// message's sequence, or why it was not stored. `what` names it in log events. With
/// `closing` (a channel's), an attempt the server finds no stream for ends the publish if the
/// server holds the channel's close: `Closed` if no attempt may have been stored, `Unconfirmed`
/// otherwise; it is tried again if not (a server that is starting has no streams yet either).
///
/// A retry after an attempt that may have stored the message relies on the server's duplicate
/// tracking by message id. A server rebuilds it from the messages it still holds when it
/// starts, so across a restart a message already received and removed from a work queue is
/// forgotten, and a retry stores it again. That takes an attempt stored whose acknowledgement
/// was lost, received, then a restart, all within the retry bound; retrying there is kept, since
/// the common case across a restart is an attempt that never reached the server (it went down
/// under it), which only a retry delivers.
pub(crate) async fn publish_with_id(
    connection: &Connection,
    subject: &str,
    payload: Bytes,
    message_id: Option<&str>,
    what: &str,
    closing: Option<&Closing>,
) -> Result<u64, NotPublished> {
    let jetstream = &connection.jetstream;
    async_compat::Compat::new(async {
        let deadline = Instant::now() + connection.config.publish_retry;
        let mut pause = FIRST_PAUSE;
        let mut handed_over = false;
        // An attempt was handed over and got no answer that rules out its message being stored.
        let mut maybe_stored = false;
        let mut last_error = None;
        let gave_up =
            |refused, handed_over, last_error| NotPublished { refused, handed_over, last_error };
        loop {
            if connection.client.connection_state() != State::Connected {
                if Instant::now() + RECONNECT_POLL > deadline {
                    tracing::warn!(%what, "no connection to the server: not published");
                    return Err(gave_up(unsettled(maybe_stored), handed_over, last_error));
                }
                tokio::time::sleep(RECONNECT_POLL).await;
                continue;
            }
            let mut publish = PublishMessage::build().payload(payload.clone());
            if let Some(id) = message_id {
                publish = publish.message_id(id);
            }
            let handed_over_before = handed_over;
            handed_over = true;
            // An attempt waits for its acknowledgement as long as the client does (its request
            // timeout, 5 s), never less: cut short, a slow acknowledgement of a stored message
            // would hand the value back.
            let attempt =
                async { jetstream.send_publish(subject.to_owned(), publish).await?.await };
            let error = match attempt.await {
                Ok(ack) => return Ok(ack.sequence),
                Err(error) if error.to_string().contains("maximum messages") => {
                    return Err(gave_up(Refused::Full, handed_over, Some(error.to_string())));
                }
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    // Refused by the client before sending: this attempt reached nothing.
                    let refused = Refused::Rejected(error.to_string());
                    return Err(gave_up(refused, handed_over_before, Some(error.to_string())));
                }
                Err(error) if error.kind() == PublishErrorKind::StreamNotFound => {
                    // Nothing was stored: no stream has the subject. A closed channel's stream
                    // no longer takes it (and its close is stored after the stream changed),
                    // but neither does a server that is starting.
                    if let Some(closing) = closing {
                        if closed_on_server(closing).await {
                            // `Closed` says the value never reached a receiver: only if no
                            // attempt may have been stored, before the stream changed.
                            let refused =
                                if maybe_stored { Refused::Unconfirmed } else { Refused::Closed };
                            return Err(gave_up(refused, handed_over, Some(error.to_string())));
                        }
                    }
                    error.to_string()
                }
                Err(error) => {
                    // No answer, or another failure: the message may have been stored.
                    maybe_stored = true;
                    error.to_string()
                }
            };
            if message_id.is_none() {
                // It may have been stored: without an id, a retry could store a second copy.
                tracing::warn!(%what, %error, "a publish without a message id failed: not retried");
                return Err(gave_up(unsettled(maybe_stored), handed_over, Some(error)));
            }
            if Instant::now() + pause > deadline {
                tracing::warn!(%what, %error, "the server did not take a message: not published");
                return Err(gave_up(unsettled(maybe_stored), handed_over, Some(error)));
            }
            tracing::debug!(%what, %error, ?pause, "publish failed; trying again");
            last_error = Some(error);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    })
    .await
}

/// How a publish that ran out of attempts ends: `Unconfirmed` if one may have stored the message.
fn unsettled(maybe_stored: bool) -> Refused {
    if maybe_stored { Refused::Unconfirmed } else { Refused::Unavailable }
}

/// How long a publish that found no stream waits to read the channel's close, at most: the
/// read is one request, and a send keeps to `publish_retry` plus one acknowledgement wait.
const CLOSE_READ_WAIT: Duration = Duration::from_secs(1);

/// True if the server says the channel is closed, read within [`CLOSE_READ_WAIT`]; a read that
/// fails or takes longer says nothing. Runs inside `Compat`.
async fn closed_on_server(closing: &Closing) -> bool {
    let read = tokio::time::timeout(CLOSE_READ_WAIT, closing.closed_on_server()).await;
    matches!(read, Ok(Ok(true)))
}

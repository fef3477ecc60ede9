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
    /// The stream holds its limit and refuses new messages.
    Full,
    /// No attempt succeeded within the retry bound.
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
/// `closing` (a channel's), a failed attempt ends the publish as `Closed` if the server holds
/// the channel's close, and is tried again otherwise (a server that is starting has no
/// streams yet either).
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
        let mut last_error = None;
        let gave_up =
            |refused, handed_over, last_error| NotPublished { refused, handed_over, last_error };
        loop {
            if connection.client.connection_state() != State::Connected {
                if Instant::now() + RECONNECT_POLL > deadline {
                    tracing::warn!(%what, "no connection to the server: not published");
                    return Err(gave_up(Refused::Unavailable, handed_over, last_error));
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
                Err(error) => error.to_string(),
            };
            // A closed channel's stream no longer takes its subject: the server answers that
            // no stream has it, or (a broadcast's receivers subscribe to the subject for news)
            // the attempt waits for an acknowledgement that never comes. Either way no attempt
            // can succeed once the server holds the close (it is stored after the stream
            // changed). A close that cannot be read is one more reason to try again.
            let closed = match closing {
                Some(closing) => closing.closed_on_server().await == Ok(true),
                None => false,
            };
            if closed {
                return Err(gave_up(Refused::Closed, handed_over, Some(error)));
            }
            if message_id.is_none() {
                // It may have been stored: without an id, a retry could store a second copy.
                tracing::warn!(%what, %error, "a publish without a message id failed: not retried");
                return Err(gave_up(Refused::Unavailable, handed_over, Some(error)));
            }
            if Instant::now() + pause > deadline {
                tracing::warn!(%what, %error, "the server did not take a message: not published");
                return Err(gave_up(Refused::Unavailable, handed_over, Some(error)));
            }
            tracing::debug!(%what, %error, ?pause, "publish failed; trying again");
            last_error = Some(error);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    })
    .await
}

//! Channels across processes, with the receive errors and traits of klaw's local channels.
//! Values travel as MessagePack with named fields.
//!
//! Sending has its own errors, [`SendError`] and [`TrySendError`]: besides `Full` and
//! `Closed`, a send across the network can find the server unreachable for longer than
//! [`NatsConfig::publish_retry`](crate::NatsConfig::publish_retry) (`Unavailable`: a restart
//! is retried that long, and `Closed` only ever means closed), find no answer to an attempt
//! that may have stored the value (`Unconfirmed`: it may still be received, so sending it again
//! may deliver it twice), or a value that can never be sent (`Rejected`). Each hands the value
//! back.
//!
//! - [`mpmc`]: a JetStream work-queue stream with one shared consumer: each message to one
//!   receiver, bounded (`Full`, and backpressure on `send`). A message a receiver took but
//!   did not hand to its caller (the receiver was dropped) goes back to the queue.
//! - [`broadcast`]: a limits stream; each receiver reads it in order and learns how many it
//!   missed.
//! - [`watch`]: a key-value bucket, watched.
//!
//! Closing is explicit (`close()`): a process cannot know how many senders other processes hold.

pub mod broadcast;
pub(crate) mod closing;
mod error;
pub mod mpmc;
pub(crate) mod publish;
pub(crate) mod unconfirmed;
pub mod watch;

pub use error::{SendError, TrySendError};

/// A valid stream, subject or key name part: letters, digits, `-` and `_`.
pub(crate) fn check_name(name: &str) -> Result<(), crate::NatsError> {
    if crate::config::is_plain_name(name) {
        Ok(())
    } else {
        Err(crate::NatsError::BadName { name: name.to_owned() })
    }
}

/// The channel `name` gives a stream the server can name: a longer one would be refused as a
/// JetStream failure, which says nothing of the name.
pub(crate) fn check_stream_name(name: &str, stream: &str) -> Result<(), crate::NatsError> {
    if stream.len() <= crate::config::MAX_JETSTREAM_NAME {
        Ok(())
    } else {
        Err(crate::NatsError::BadName { name: name.to_owned() })
    }
}

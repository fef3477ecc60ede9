//! Channels across processes, with the error types and traits of klaw's local channels.
//! Values travel as MessagePack with named fields.
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
mod closing;
pub mod mpmc;
pub mod watch;

/// A valid stream, subject or key name part: letters, digits, `-` and `_`.
pub(crate) fn check_name(name: &str) -> Result<(), crate::NatsError> {
    if crate::config::is_plain_name(name) {
        Ok(())
    } else {
        Err(crate::NatsError::BadName { name: name.to_owned() })
    }
}

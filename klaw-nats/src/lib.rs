//! # klaw-nats: the same klaw code on many machines
//!
//! A `#[klaw::task(remote)]` task is registered by name in every binary that links it. With
//! this backend (`Runtime::builder().backend(..)`, or `KLAW_BACKEND=nats` with
//! `KLAW_NATS_URL`), spawning it publishes a job to a JetStream work-queue stream; a
//! [`Worker`] (any process built from the same code) takes it, runs it in its own cancel
//! scope and publishes the outcome; the submitter's `TaskHandle` completes with the typed
//! result, the task's own error, or a typed [`RemoteError`](klaw_rt::remote::RemoteError).
//!
//! - **Cancel** reaches the worker: `handle.cancel(..)` removes a queued job from the stream
//!   and writes a marker to a key-value bucket that every worker watches; the worker running
//!   the job cancels it and terminates the message.
//! - **At least once**: a worker sends progress while a task runs, so a live worker keeps its
//!   job; a dead worker's job is redelivered after the ack wait, and reported failed after
//!   `max_deliver` deliveries. A remote task may therefore run more than once: make it
//!   idempotent.
//! - **Server**: `nats-server -js`, version 2.10 or later (tested with 2.15.1).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let config = klaw_nats::NatsConfig::new("nats://127.0.0.1:4222");
//! // In the worker processes:
//! klaw_nats::Worker::connect(config.clone()).await?.run().await?;
//! // In the submitter:
//! let backend = klaw_nats::NatsBackend::connect(config).await?;
//! let rt = klaw::Runtime::builder().backend(Arc::new(backend)).build()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod backend;
mod backoff;
pub mod channel;
mod config;
mod connection;
mod dead;
mod error;
mod kv_watch;
mod nats;
mod permissions;
mod protocol;
mod refusals;
mod worker;

pub use backend::{NatsBackend, SWEEP_EVERY};
pub use config::{
    ACK_WAIT_ENV, CREDS_ENV, MAX_DELIVER_ENV, MAX_PUBLISH_RETRY, MIN_ACK_WAIT, MIN_OUTCOME_TTL,
    NAMESPACE_ENV, NKEY_SEED_ENV, NatsAuth, NatsConfig, NatsTls, OUTCOME_TTL_ENV, PASSWORD_ENV,
    PUBLISH_RETRY_ENV, Secret, TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TOKEN_ENV, URL_ENV, USER_ENV,
    redact_url,
};
pub use connection::DEAD_LETTER_AGE;
pub use dead::{DeadLetter, DeadLetters};
pub use error::NatsError;
pub use nats::{Nats, broadcast, channel, watch};
pub use permissions::Permissions;
pub use worker::Worker;

/// The book's "Going distributed" chapter, compiled and run as doc-tests here, where
/// `klaw_nats` is in scope.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../../book/src/distributed.md")]
    struct GoingDistributed;
}

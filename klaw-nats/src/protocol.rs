//! What travels on the server: a job envelope; the reply is the task's encoded
//! `WireOutcome`, published to the subject the job names.

use serde::{Deserialize, Serialize};

/// One job, as MessagePack with named fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobEnvelope {
    pub(crate) id: String,
    pub(crate) task: String,
    pub(crate) build: String,
    #[serde(with = "serde_bytes")]
    pub(crate) args: Vec<u8>,
    /// Where the worker publishes the outcome.
    pub(crate) reply: String,
}

impl JobEnvelope {
    pub(crate) fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a job envelope always encodes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// The server's advisory when a job ran out of deliveries (JSON).
#[derive(Debug, Deserialize)]
pub(crate) struct MaxDeliveriesAdvisory {
    pub(crate) stream_seq: u64,
    pub(crate) deliveries: u64,
}

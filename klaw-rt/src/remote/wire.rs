//! What a worker sends back: the outcome of one run. The task's output travels as its own
//! MessagePack inside, so the envelope has the same shape for every task.

use serde::{Deserialize, Serialize};

use crate::task::remote::RemoteError;

/// The outcome of a remote run, as it travels.
///
/// ```
/// use klaw::remote::WireOutcome;
/// let refused = WireOutcome::Refused(klaw::remote::RemoteError::UnknownTask { name: "t".into() });
/// let bytes = refused.encode();
/// assert_eq!(WireOutcome::decode("t", &bytes), Ok(refused));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireOutcome {
    /// The task returned: its output (a `Result` too, for a fallible task), encoded.
    Returned(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The task panicked with this message.
    Panicked(String),
    /// The task's own timeout passed, after this many milliseconds.
    TimedOut(u64),
    /// The worker cancelled the task, for this reason (shutdown, or the submitter's cancel).
    Cancelled(String),
    /// The worker refused or could not run the job.
    Refused(RemoteError),
}

impl WireOutcome {
    /// Encodes as MessagePack with named fields.
    ///
    /// ```
    /// assert!(!klaw::remote::WireOutcome::Panicked("boom".into()).encode().is_empty());
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("an outcome of bytes and strings always encodes")
    }

    /// Decodes a reply to the task `name`.
    ///
    /// ```
    /// let garbage = klaw::remote::WireOutcome::decode("app::t", b"\xc1");
    /// assert!(matches!(garbage, Err(klaw::remote::RemoteError::Result { .. })));
    /// ```
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, RemoteError> {
        rmp_serde::from_slice(bytes).map_err(|error| RemoteError::Result {
            name: name.to_owned(),
            message: error.to_string(),
        })
    }
}

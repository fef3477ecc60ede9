//! What a worker sends back: the outcome of one run, encoded with the task's own types.

use serde::{Deserialize, Serialize};

use crate::TaskError;
use crate::remote::RemoteError;

/// The outcome of a remote run, as it travels. `T` and `E` are the task's success and error
/// types; the other variants need neither, so a worker that refuses a job can encode one
/// without knowing them.
///
/// ```
/// use klaw::remote::WireOutcome;
/// let sent = WireOutcome::<u32, String>::Ok(7);
/// let bytes = sent.encode().unwrap();
/// let back: Result<u32, klaw::TaskError<String>> =
///     WireOutcome::decode("app::seven", &bytes).unwrap().into_result("app::seven");
/// assert_eq!(back, Ok(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireOutcome<T, E> {
    /// The task succeeded with this value.
    Ok(T),
    /// The task failed with its own error.
    Failed(E),
    /// The task panicked with this message.
    Panicked(String),
    /// The task's own timeout passed, after this many milliseconds.
    TimedOut(u64),
    /// The worker cancelled the task, for this reason (shutdown, or the submitter's cancel).
    Cancelled(String),
    /// The worker refused or could not run the job.
    Refused(RemoteError),
}

impl<T: Serialize, E: Serialize> WireOutcome<T, E> {
    /// Encodes as MessagePack with named fields.
    ///
    /// ```
    /// assert!(klaw::remote::WireOutcome::<(), ()>::Panicked("boom".into()).encode().is_ok());
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }
}

impl<T: serde::de::DeserializeOwned, E: serde::de::DeserializeOwned> WireOutcome<T, E> {
    /// Decodes a reply to the task `name`.
    ///
    /// ```
    /// let garbage = klaw::remote::WireOutcome::<u32, ()>::decode("app::t", b"\xc1");
    /// assert!(matches!(garbage, Err(klaw::remote::RemoteError::Result { .. })));
    /// ```
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, RemoteError> {
        rmp_serde::from_slice(bytes).map_err(|error| RemoteError::Result {
            name: name.to_owned(),
            message: error.to_string(),
        })
    }
}

impl<T, E> WireOutcome<T, E> {
    /// The outcome as the task's handle gives it.
    ///
    /// ```
    /// use klaw::{TaskError, remote::WireOutcome};
    /// let failed = WireOutcome::<u32, String>::Failed("no".into()).into_result("app::t");
    /// assert_eq!(failed, Err(TaskError::Failed("no".to_owned())));
    /// ```
    pub fn into_result(self, name: &str) -> Result<T, TaskError<E>> {
        match self {
            Self::Ok(value) => Ok(value),
            Self::Failed(error) => Err(TaskError::Failed(error)),
            Self::Panicked(message) => Err(TaskError::Panicked(message)),
            Self::TimedOut(millis) => {
                Err(TaskError::TimedOut(std::time::Duration::from_millis(millis)))
            }
            Self::Cancelled(reason) => Err(TaskError::Remote(RemoteError::CancelledRemotely {
                name: name.to_owned(),
                reason,
            })),
            Self::Refused(error) => Err(TaskError::Remote(error)),
        }
    }
}

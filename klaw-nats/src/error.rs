//! What can go wrong talking to the server.

/// The server could not be reached, or refused a request.
///
/// ```
/// let error = klaw_nats::NatsError::Connect { url: "nats://h:1".into(), message: "refused".into() };
/// assert!(error.to_string().contains("nats-server -js"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// No connection to the server.
    #[error(
        "could not connect to NATS at {url}: {message} (is `nats-server -js` running there? \
         set KLAW_NATS_URL to its address)"
    )]
    Connect {
        /// The URL tried, without its credentials.
        url: String,
        /// What the client said (credentials removed).
        message: String,
    },
    /// A setting that is not valid: from the environment (`setting` names the variable) or
    /// from [`NatsConfig`](crate::NatsConfig) (`setting` names the field).
    #[error("{setting}={value:?} is not valid: expected {expected}")]
    Config {
        /// The variable or field.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// A channel name that cannot be part of a stream or subject name: a character other
    /// than a letter, a digit, `-` or `_`, or too long for the stream named after it.
    #[error(
        "`{name}` cannot name a channel: use letters, digits, `-` and `_`, and a name short \
         enough for its stream: `<namespace>_chan_<name>` (`_bcast_` for a broadcast), each \
         `_` of the namespace written `__`, has at most 255 characters"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// A stream or bucket of the namespace does not exist, and this connection's user may not
    /// create it: workers create them, and a least-privilege submitter may only find them.
    #[error(
        "{missing} does not exist and this user may not create it: start a worker first (a \
         worker creates the namespace's streams and buckets), or give this user the worker's \
         permissions (`klaw_nats::Permissions::worker`)"
    )]
    NotProvisioned {
        /// What is missing, with its name on the server.
        missing: String,
    },
    /// JetStream refused or failed a request.
    #[error("JetStream {action} failed: {message}{}", jetstream_hint(.message))]
    JetStream {
        /// What klaw was doing.
        action: &'static str,
        /// What the server said.
        message: String,
    },
}

/// The advice to run the server with JetStream, only where the failure says it is off (no
/// JetStream to answer): a permission, a timeout or a missing object is something else.
fn jetstream_hint(message: &str) -> &'static str {
    let message = message.to_ascii_lowercase();
    let off = ["not enabled", "no responders", "jetstream not available"];
    if off.iter().any(|words| message.contains(words)) {
        " (the server must run with JetStream: `-js`)"
    } else {
        ""
    }
}

impl NatsError {
    pub(crate) fn jetstream(action: &'static str) -> impl FnOnce(String) -> Self {
        move |message| Self::JetStream { action, message }
    }
}

impl From<NatsError> for klaw_rt::error::Error {
    fn from(error: NatsError) -> Self {
        klaw_rt::error::Error::other(error)
    }
}

#[cfg(test)]
mod tests {
    use super::NatsError;

    /// The `-js` advice comes only with a failure that says JetStream is off: a permission
    /// refused, say, is not fixed by it (it came with every JetStream failure).
    #[test]
    fn the_jetstream_advice_comes_only_when_jetstream_is_off() {
        let refused = NatsError::JetStream {
            action: "read a dead letter",
            message: "Permissions Violation for Publish to \"$JS.API.STREAM.MSG.GET.x\"".into(),
        };
        assert!(!refused.to_string().contains("-js"), "{refused}");
        let off =
            NatsError::JetStream { action: "create a stream", message: "no responders".into() };
        assert!(off.to_string().contains("`-js`"), "{off}");
    }
}

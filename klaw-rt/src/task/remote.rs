//! What a task needs to know of running elsewhere: why a remote run gave no result of its own
//! ([`RemoteError`], carried by `TaskError::Remote`), and the encoded call a remote task value
//! carries ([`RemoteCall`]). The registry, the wire format and the backends are `crate::remote`.

/// Why a remote task did not give a result of its own. Carried by
/// [`TaskError::Remote`](crate::task::TaskError::Remote); travels between processes, so it holds
/// strings, not source errors.
///
/// ```
/// let error = klaw::remote::RemoteError::UnknownTask { name: "app::fetch".into() };
/// assert!(error.to_string().contains("app::fetch"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum RemoteError {
    /// The worker has no task registered under this name.
    #[error(
        "the worker has no remote task `{name}`: is the crate that defines it linked into the \
         worker binary? (a worker lists its tasks when it starts; `use that_crate as _;` links one)"
    )]
    UnknownTask {
        /// The task's registered name.
        name: String,
    },
    /// The worker knows the task, from another build of its crate.
    #[error(
        "the worker runs `{name}` from build `{worker}`, the job came from build `{job}`: run \
         submitters and workers built from the same code"
    )]
    BuildMismatch {
        /// The task's registered name.
        name: String,
        /// The build the job was made by.
        job: String,
        /// The build the worker has.
        worker: String,
    },
    /// The arguments could not be encoded or decoded.
    #[error("the arguments of `{name}` could not be {action}: {message}")]
    Arguments {
        /// The task's registered name.
        name: String,
        /// `"encoded"` or `"decoded"`; or `"sent"`: the job is larger than the backend carries.
        action: String,
        /// What serde said.
        message: String,
    },
    /// The worker's reply could not be decoded as this task's result.
    #[error("the result of `{name}` could not be decoded: {message}")]
    Result {
        /// The task's registered name.
        name: String,
        /// What serde said.
        message: String,
    },
    /// The job was delivered this many times and never finished: workers died or ran out of
    /// time with it. At-least-once delivery gave up.
    #[error(
        "`{name}` was delivered {deliveries} times and never finished (its workers died or \
         lost it): giving up"
    )]
    MaxDeliveries {
        /// The task's registered name.
        name: String,
        /// How many times it was delivered.
        deliveries: u64,
    },
    /// The worker cancelled the task for its own reason (it shut down), and it was not retried.
    #[error("`{name}` was cancelled on the worker: {reason}")]
    CancelledRemotely {
        /// The task's registered name.
        name: String,
        /// The worker's reason.
        reason: String,
    },
    /// The job ran and left the queue, but its outcome expired before its submitter read it
    /// (the submitter was away longer than the outcome TTL): the task's result is gone.
    #[error(
        "the outcome of `{name}` expired before it was read (kept {ttl_secs} s): the task ran, \
         but its result is gone; keep outcomes longer, or reconnect sooner"
    )]
    OutcomeExpired {
        /// The task.
        name: String,
        /// How long outcomes were kept, in seconds.
        ttl_secs: u64,
    },
    /// The task ran, but its outcome is larger than the server carries in one message: it was
    /// not delivered, and the job was settled (not run again).
    #[error(
        "the outcome of `{name}` is {bytes} bytes, more than the server's maximum message of \
         {max} bytes: the task ran, but its result cannot be sent; return something smaller \
         (keep large data elsewhere and return where it is), or raise the server's max_payload"
    )]
    OutcomeTooLarge {
        /// The task.
        name: String,
        /// The size of the encoded outcome.
        bytes: u64,
        /// The largest message the server accepts (its `max_payload`).
        max: u64,
    },
    /// The backend could not talk to its server.
    #[error("the remote backend failed: {0}")]
    Transport(String),
}

/// Decodes a reply into the boxed `Result<T, TaskError<E>>` of the task's types.
pub(crate) type Decode = Box<dyn Fn(&str, &[u8]) -> Box<dyn std::any::Any + Send> + Send>;

/// How to run a task elsewhere: which task (its registered name and build), its encoded
/// arguments, and how to read its reply. `#[klaw::task(remote)]` attaches one to the task value
/// it returns.
pub struct RemoteCall {
    pub(crate) name: &'static str,
    pub(crate) build: &'static str,
    pub(crate) args: Result<Vec<u8>, RemoteError>,
    pub(crate) decode: Decode,
}

impl RemoteCall {
    /// The task's registered name.
    ///
    /// ```
    /// // Remote calls are made by #[klaw::task(remote)]; see the "Going distributed" chapter.
    /// fn name(call: &klaw::remote::RemoteCall) -> &'static str { call.task_name() }
    /// ```
    pub fn task_name(&self) -> &'static str {
        self.name
    }
}

impl std::fmt::Debug for RemoteCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCall")
            .field("task", &self.name)
            .field("args_len", &self.args.as_ref().map(Vec::len))
            .finish()
    }
}

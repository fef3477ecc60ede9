//! The caller's side: a remote task carries its encoded call, and a runtime with a backend
//! runs a proxy for it that submits the job and decodes the reply.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::TaskError;
use crate::remote::{
    JobId, RemoteBackend, RemoteError, RemoteJob, RemoteMode, RemoteTaskDef, WireOutcome,
};

/// Decodes a reply into the boxed `Result<T, TaskError<E>>` of the task's types.
type Decode = fn(&str, &[u8]) -> Box<dyn Any + Send>;

/// How to run a task elsewhere: which task, its encoded arguments, and how to read its reply.
/// `#[klaw::task(remote)]` attaches one to the task value it returns.
pub struct RemoteCall {
    def: &'static RemoteTaskDef,
    args: Result<Vec<u8>, RemoteError>,
    decode: Decode,
}

impl RemoteCall {
    /// A call of `def` with these encoded arguments, whose reply decodes as `Result<T, E>`.
    #[doc(hidden)]
    pub fn __new<O, M>(def: &'static RemoteTaskDef, args: Result<Vec<u8>, RemoteError>) -> Self
    where
        M: RemoteMode<O>,
        M::Ok: DeserializeOwned,
    {
        Self { def, args, decode: decode_reply::<O, M> }
    }

    /// The task's registered name.
    ///
    /// ```
    /// // Remote calls are made by #[klaw::task(remote)]; see the "Going distributed" chapter.
    /// fn name(call: &klaw::remote::RemoteCall) -> &'static str { call.task_name() }
    /// ```
    pub fn task_name(&self) -> &'static str {
        self.def.name()
    }
}

impl fmt::Debug for RemoteCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCall")
            .field("task", &self.def.name())
            .field("args_len", &self.args.as_ref().map(Vec::len))
            .finish()
    }
}

fn decode_reply<O, M>(name: &str, bytes: &[u8]) -> Box<dyn Any + Send>
where
    M: RemoteMode<O>,
    M::Ok: DeserializeOwned,
{
    let result: Result<M::Ok, TaskError<M::Err>> =
        match WireOutcome::<M::Ok, M::WireErr>::decode(name, bytes) {
            Ok(outcome) => match outcome.into_result(name) {
                Ok(value) => Ok(value),
                Err(TaskError::Failed(error)) => Err(M::from_wire(error).map_or_else(
                    || {
                        TaskError::Remote(RemoteError::Result {
                            name: name.to_owned(),
                            message: "a task that cannot fail was reported failed".to_owned(),
                        })
                    },
                    TaskError::Failed,
                )),
                Err(other) => Err(other.map_failed(|_| unreachable!("handled above"))),
            },
            Err(error) => Err(TaskError::Remote(error)),
        };
    Box::new(result)
}

/// The body of a task that stands for a remote one: submits the job, waits for the reply.
/// Dropping it (the task was cancelled) abandons the wait; the task's cancel hook tells the
/// backend.
pub(crate) async fn spawn_remote<T, E>(
    backend: Arc<dyn RemoteBackend>,
    call: Box<RemoteCall>,
    id: JobId,
    timeout: Option<Duration>,
) -> Result<T, TaskError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let RemoteCall { def, args, decode } = *call;
    let args = args.map_err(TaskError::Remote)?;
    let job = RemoteJob { id, task: def.name(), build: def.build(), args, timeout };
    let reply = backend.submit(job).await.map_err(TaskError::Remote)?;
    match decode(def.name(), &reply).downcast::<Result<T, TaskError<E>>>() {
        Ok(result) => *result,
        Err(_) => unreachable!("a remote call decodes into its own task's types"),
    }
}

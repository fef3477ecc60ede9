//! The caller's side: a remote task carries its encoded call, and a runtime with a backend
//! runs a proxy for it that submits the job and decodes the reply.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::TaskError;
use crate::remote::registry::{Codec, decode_reply};
use crate::remote::{JobId, RemoteBackend, RemoteError, RemoteJob, RemoteTaskDef};

/// Decodes a reply into the boxed `Result<T, TaskError<E>>` of the task's types.
type Decode = Box<dyn Fn(&str, &[u8]) -> Box<dyn Any + Send> + Send>;

/// How to run a task elsewhere: which task, its encoded arguments, and how to read its reply.
/// `#[klaw::task(remote)]` attaches one to the task value it returns.
pub struct RemoteCall {
    def: &'static RemoteTaskDef,
    args: Result<Vec<u8>, RemoteError>,
    decode: Decode,
}

impl RemoteCall {
    /// A call of `def` with these encoded arguments, whose output decodes with `output` and
    /// splits by the mode `M`.
    pub(crate) fn new<O: 'static, M: crate::Outcome<O> + 'static>(
        def: &'static RemoteTaskDef,
        args: Result<Vec<u8>, RemoteError>,
        output: Codec<O>,
    ) -> Self {
        let decode =
            Box::new(move |name: &str, bytes: &[u8]| decode_reply::<O, M>(name, bytes, output));
        Self { def, args, decode }
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

/// The body of a task that stands for a remote one: submits the job, waits for the reply.
/// Dropping it (the task was cancelled) abandons the wait; the task's cancel hook tells the
/// backend.
pub(crate) async fn run_remotely<T, E>(
    backend: Arc<dyn RemoteBackend>,
    call: Box<RemoteCall>,
    id: JobId,
) -> Result<T, TaskError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let RemoteCall { def, args, decode } = *call;
    let remote = |error| TaskError::Remote(Box::new(error));
    let args = args.map_err(remote)?;
    let job = RemoteJob { id, task: def.name(), build: def.build(), args };
    let reply = backend.submit(job).await.map_err(remote)?;
    match decode(def.name(), &reply).downcast::<Result<T, TaskError<E>>>() {
        Ok(result) => *result,
        Err(_) => unreachable!("a remote call decodes into its own task's types"),
    }
}

//! The caller's side: a remote task carries its encoded call, and a runtime with a backend
//! runs a proxy for it that submits the job and decodes the reply.

use std::sync::Arc;

use crate::remote::{JobId, RemoteBackend, RemoteJob};
use crate::task::error::TaskError;
use crate::task::remote::RemoteCall;

#[cfg(feature = "remote")]
impl<F: std::future::Future, M: crate::task::Outcome<F::Output> + 'static> crate::task::Task<F, M>
where
    F::Output: 'static,
{
    /// Attaches a remote call (what `#[klaw::task(remote)]` does).
    #[doc(hidden)]
    pub fn __remote(
        mut self,
        def: &'static crate::remote::RemoteTaskDef,
        args: Result<Vec<u8>, crate::remote::RemoteError>,
        output: crate::remote::Codec<F::Output>,
    ) -> Self {
        let decode = Box::new(move |name: &str, bytes: &[u8]| {
            crate::remote::registry::decode_reply::<F::Output, M>(name, bytes, output)
        });
        self.remote =
            Some(Box::new(RemoteCall { name: def.name(), build: def.build(), args, decode }));
        self
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
    let RemoteCall { name, build, args, decode } = *call;
    let remote = |error| TaskError::Remote(Box::new(error));
    let args = args.map_err(remote)?;
    let job = RemoteJob { id, task: name, build, args };
    let reply = backend.submit(job).await.map_err(remote)?;
    match decode(name, &reply).downcast::<Result<T, TaskError<E>>>() {
        Ok(result) => *result,
        Err(_) => unreachable!("a remote call decodes into its own task's types"),
    }
}

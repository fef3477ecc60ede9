//! Remote tasks (the registry and the wire format need the `remote` feature; the backend trait
//! is always here): a `#[klaw::task(remote)]` registers itself here at link time, by name, so a
//! worker process (built from the same code) can run it from its encoded arguments. With a
//! [`RemoteBackend`] in the runtime (`Runtime::builder().backend(..)`, or `KLAW_BACKEND`),
//! spawning such a task submits it to the backend; the handle completes with the result the
//! worker sent back. Without one, the task runs here, like any other.
//!
//! Arguments and results travel as MessagePack with named fields (`rmp-serde`). A job names its
//! task and the build of the task's crate, and a worker refuses a job whose task or build it does
//! not know, with a [`RemoteError`] that says which.
//!
//! ```
//! // The registry as a worker lists it when it starts (this doc-test registers no task).
//! for task in klaw::remote::remote_tasks() {
//!     println!("{} ({})", task.name(), task.build());
//! }
//! ```
#![forbid(unsafe_code)]

mod backend;
mod call;
#[cfg(feature = "remote")]
mod registry;
#[cfg(feature = "remote")]
mod wire;

pub use crate::task::remote::{RemoteCall, RemoteError};
#[cfg(feature = "remote")]
pub use backend::BackendFactory;
pub(crate) use backend::backend_from_env;
pub use backend::{
    BACKEND_ENV, BackendError, JobId, Relay, RemoteBackend, RemoteJob, SubmitFuture,
};
pub(crate) use call::run_remotely;
#[cfg(feature = "remote")]
pub use registry::{Portable, Registration, RemoteRun, RemoteTaskDef, find_task, remote_tasks};
#[cfg(feature = "remote")]
pub use wire::WireOutcome;

#[doc(hidden)]
#[cfg(feature = "remote")]
pub use inventory;
#[doc(hidden)]
#[cfg(feature = "remote")]
pub use registry::{__codec, __encode_args, __run, __split_args, Codec};

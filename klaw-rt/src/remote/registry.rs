//! The link-time registry of remote tasks: name → start from encoded arguments.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::remote::{RemoteError, RemoteMode, WireOutcome};
use crate::task::Task;

/// A started remote run: resolves to the encoded [`WireOutcome`] to send back.
pub type RemoteRun = Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'static>>;

/// One `#[klaw::task(remote)]`, as the registry holds it.
pub struct RemoteTaskDef {
    name: &'static str,
    build: &'static str,
    start: fn(&[u8]) -> Result<RemoteRun, RemoteError>,
}

impl RemoteTaskDef {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        build: &'static str,
        start: fn(&[u8]) -> Result<RemoteRun, RemoteError>,
    ) -> Self {
        Self { name, build, start }
    }

    /// The registered name: the task's module path and function name, or its `name = ".."`.
    ///
    /// ```
    /// assert!(klaw::remote::find_task("no::such::task").is_none());
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The build it comes from: its crate, version and signature. A worker refuses a job made
    /// by another build.
    ///
    /// ```
    /// for task in klaw::remote::remote_tasks() {
    ///     assert!(task.build().contains('@'));
    /// }
    /// ```
    pub fn build(&self) -> &'static str {
        self.build
    }

    /// Decodes the arguments and starts the task: what a worker does with a job. The run is a
    /// future: run it as a task of its own, so that it can be cancelled.
    ///
    /// ```
    /// if let Some(task) = klaw::remote::remote_tasks().next() {
    ///     assert!(task.start(b"not msgpack").is_err());
    /// }
    /// ```
    pub fn start(&self, args: &[u8]) -> Result<RemoteRun, RemoteError> {
        (self.start)(args)
    }
}

impl fmt::Debug for RemoteTaskDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTaskDef")
            .field("name", &self.name)
            .field("build", &self.build)
            .finish()
    }
}

/// A registry entry (what `#[klaw::task(remote)]` submits to `inventory`).
#[derive(Debug)]
pub struct Registration(#[doc(hidden)] pub &'static RemoteTaskDef);

inventory::collect!(Registration);

/// Every remote task linked into this binary.
///
/// ```
/// let names: Vec<&str> = klaw::remote::remote_tasks().map(|t| t.name()).collect();
/// assert!(names.iter().all(|name| !name.is_empty()));
/// ```
pub fn remote_tasks() -> impl Iterator<Item = &'static RemoteTaskDef> {
    inventory::iter::<Registration>.into_iter().map(|registration| registration.0)
}

/// The remote task registered under `name`.
///
/// ```
/// assert!(klaw::remote::find_task("app::missing").is_none());
/// ```
pub fn find_task(name: &str) -> Option<&'static RemoteTaskDef> {
    remote_tasks().find(|task| task.name == name)
}

/// Encodes a remote task's arguments (a tuple of references to them).
#[doc(hidden)]
pub fn __encode_args<A: Serialize>(name: &str, args: &A) -> Result<Vec<u8>, RemoteError> {
    rmp_serde::to_vec_named(args).map_err(|error| RemoteError::Arguments {
        name: name.to_owned(),
        action: "encoded".to_owned(),
        message: error.to_string(),
    })
}

/// Decodes a remote task's arguments on the worker.
#[doc(hidden)]
pub fn __decode_args<A: DeserializeOwned>(name: &str, args: &[u8]) -> Result<A, RemoteError> {
    rmp_serde::from_slice(args).map_err(|error| RemoteError::Arguments {
        name: name.to_owned(),
        action: "decoded".to_owned(),
        message: error.to_string(),
    })
}

/// Runs a task inline, as a worker does, and encodes its outcome.
#[doc(hidden)]
pub fn __run<F, M>(name: &'static str, task: Task<F, M>) -> RemoteRun
where
    F: Future + Send + 'static,
    M: RemoteMode<F::Output> + 'static,
    M::Ok: Serialize,
{
    Box::pin(async move {
        let outcome: WireOutcome<M::Ok, M::WireErr> = match task.into_future().await {
            Ok(value) => WireOutcome::Ok(value),
            Err(crate::TaskError::Failed(error)) => WireOutcome::Failed(M::to_wire(error)),
            Err(crate::TaskError::Panicked(message)) => WireOutcome::Panicked(message),
            Err(crate::TaskError::TimedOut(after)) => {
                WireOutcome::TimedOut(u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
            }
            Err(crate::TaskError::Cancelled(reason)) => WireOutcome::Cancelled(reason.to_string()),
            Err(crate::TaskError::Remote(error)) => WireOutcome::Refused(error),
        };
        outcome.encode().unwrap_or_else(|error| {
            let refused = WireOutcome::<(), ()>::Refused(RemoteError::Result {
                name: name.to_owned(),
                message: format!("the worker could not encode it: {error}"),
            });
            refused.encode().expect("a refusal always encodes")
        })
    })
}

/// A type that can be a remote task's argument or output: it must travel to a worker and back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel to a worker: a remote task's arguments and output must be \
               serde types",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or remove `remote` to run \
            the task only in this process"
)]
pub trait Portable {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Portable for T {}

#[doc(hidden)]
pub const fn __assert_remote_argument<T: Portable>() {}

#[doc(hidden)]
pub const fn __assert_remote_output<T: Portable>() {}

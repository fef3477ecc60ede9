//! The runtime of [klaw](https://docs.rs/klaw): executor, task handles, cancellation and time.
//!
//! Use it through the `klaw` crate, which re-exports everything here next to the macros.
//! The concurrency core is modelled with loom, one model file per module (`task/loom.rs`,
//! `scope/loom.rs`, `cancel/loom.rs`, `channel/loom.rs`):
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`.
#![deny(unsafe_code)]

pub mod cancel;
pub mod channel;
mod error;
pub mod log;
pub mod remote;
mod runtime;
pub mod scope;
mod sync;
pub mod task;
pub mod time;

pub use cancel::{
    CancelScope, CancelToken, Cancellable, Shielded, checkpoint, fail_after, fail_at, is_cancelled,
    move_on_after, move_on_at, shield,
};
pub use channel::broadcast::channel as broadcast;
pub use channel::oneshot::channel as oneshot;
pub use channel::watch::channel as watch;
pub use channel::{channel, unbounded};
pub use error::{Error, ScopeError};
pub use runtime::{
    BuildError, Builder, ConfigError, DEFAULT_MAX_BLOCKING_THREADS, Handle, InlineBlockingTask,
    MAX_BLOCKING_THREADS, MAX_WORKERS, MachineInfo, NoRuntime, Runtime, RuntimeConfig,
    ShutdownReport, ShutdownTimedOut, WORKERS_ENV, WorkersFrom, block_on,
};
pub use scope::{Scope, ScopeBody, ScopeHandle, ScopeOptions, Spawnable, scope_with};
pub use task::{
    BlockingTask, BoxError, CancelReason, Canceller, ExitReason, Fallible, InlineTask, IntoTask,
    Outcome, Plain, Task, TaskError, TaskFailure, TaskHandle, TaskId, current_task_id,
};
pub use time::{Elapsed, sleep, sleep_until, timeout, timeout_at};

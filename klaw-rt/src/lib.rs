//! The runtime of [klaw](https://docs.rs/klaw): executor, task handles, cancellation and time.
//!
//! Use it through the `klaw` crate, which re-exports everything here next to the macros.
//! The concurrency core (`task::core`) is modelled with loom:
//! `RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib --release loom`.
#![deny(unsafe_code)]

mod error;
pub mod log;
mod runtime;
mod sync;
pub mod task;
pub mod time;

pub use error::{BoxError, Error, TaskError, TaskFailure};
pub use runtime::{
    BuildError, Builder, ConfigError, DEFAULT_MAX_BLOCKING_THREADS, Handle, MAX_BLOCKING_THREADS,
    MAX_WORKERS, MachineInfo, NoRuntime, Runtime, RuntimeConfig, ShutdownReport, ShutdownTimedOut,
    WORKERS_ENV, WorkersFrom, block_on,
};
pub use task::{
    CancelReason, Canceller, ExitReason, Fallible, IntoTask, Outcome, Plain, Task, TaskHandle,
    TaskId, current_task_id, is_cancelled,
};
pub use time::{Elapsed, sleep, sleep_until, timeout, timeout_at};

#[cfg(all(test, klaw_loom))]
mod loom_tests;

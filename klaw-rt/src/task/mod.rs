//! Tasks: their identity, how they end, and the handles that observe and cancel them.

pub(crate) mod core;
mod core_ref;
pub(crate) mod current;
pub(crate) mod descendants;
pub(crate) mod error;
pub(crate) mod guard;
pub(crate) mod handle;
#[cfg(all(test, klaw_loom))]
mod loom;
mod reason;
pub(crate) mod remote;
pub(crate) mod runner;
pub(crate) mod shutdown_phase;
pub(crate) mod spec;
pub(crate) mod state;

pub use current::current_task_id;
pub use error::{BoxError, TakenFailure, TaskError, TaskFailure, TaskInfo};
pub use handle::{TaskHandle, TaskRef};
pub use reason::{CancelReason, ExitReason};
pub use spec::{BlockingTask, Fallible, IntoTask, Outcome, Plain, Task};

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identity: unique among all tasks of the process, never reused.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let a = rt.spawn(async {});
/// let b = rt.spawn(async {});
/// assert_ne!(a.id(), b.id());
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    pub(crate) fn next() -> Self {
        /// Ids are handed to threads in blocks, so spawning threads do not contend on one line.
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                // Relaxed: uniqueness needs only the atomicity of the increment.
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            Self(NonZeroU64::new(next).expect("task ids start at 1 and a u64 does not wrap"))
        })
    }

    /// The id as a number, for logs and metrics.
    ///
    /// ```
    /// let rt = klaw::Runtime::builder().workers(1).build()?;
    /// let id = rt.spawn(async {}).id();
    /// assert_eq!(id.to_string(), format!("#{}", id.as_u64()));
    /// # Ok::<(), klaw::runtime::BuildError>(())
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("#{}", self.0))
    }
}

//! How far a runtime's shutdown has gone, and so which tasks it cancels.
//!
//! A shutdown cancels in two steps. First the tasks nothing else reaches: those spawned on the
//! runtime, and the children of scopes outside any task's poll. Cancellation then runs down the
//! tree from them, as it does when a task is cancelled any other way, so a shield holds what
//! it holds on every path: a scope opened in a shielded cleanup keeps its children running
//! (each child of a scope in a task's poll is marked so, `Header::reached_through_scope`).
//! Only if tasks are left when the shutdown's cancel grace is over does it cancel every task,
//! those children included, as a last resort before it drops them.
#![forbid(unsafe_code)]

use crate::sync::{AtomicU8, Ordering};
use crate::task::core::Header;

const RUNNING: u8 = 0;
const ROOTS: u8 = 1;
const EVERY_TASK: u8 = 2;

/// A runtime's shutdown phase, shared by its counters and shown to its workers' threads.
#[derive(Debug, Default)]
pub(crate) struct ShutdownPhase(AtomicU8);

impl ShutdownPhase {
    /// True if a new task must be refused (`order` for the load): any task once the shutdown
    /// cancels every task, and before that a task no scope's task would reach
    /// (`reached_through_scope` false).
    #[inline]
    pub(crate) fn refuses(&self, reached_through_scope: bool, order: Ordering) -> bool {
        match self.0.load(order) {
            RUNNING => false,
            ROOTS => !reached_through_scope,
            _ => true,
        }
    }

    /// True if the shutdown cancels `task` directly now: any task once it cancels every task,
    /// and before that only a task no scope's task reaches.
    #[inline]
    pub(crate) fn cancels(&self, task: &Header) -> bool {
        match self.0.load(Ordering::Acquire) {
            RUNNING => false,
            ROOTS => !task.reached_through_scope(),
            _ => true,
        }
    }

    /// The first step: tasks no scope's task reaches are cancelled from now on.
    pub(crate) fn cancel_roots(&self) {
        self.0.fetch_max(ROOTS, Ordering::SeqCst);
    }

    /// The last resort: every task is cancelled from now on.
    pub(crate) fn cancel_every_task(&self) {
        self.0.store(EVERY_TASK, Ordering::SeqCst);
    }
}

//! How far a runtime's shutdown has gone, and so which tasks it cancels.
//!
//! A shutdown cancels in two steps, so that a shield holds what it holds on every other path.
//! First every task but those under a shield: the children of a scope opened under a shield in
//! a task's poll, and their descendants (each marked when it is spawned,
//! `Header::under_shield`). Those are left to the shield, which holds the cancel of the task it
//! is in: a shielded cleanup's scope keeps its children running. Only if tasks are left when
//! the shutdown's cancel grace is over does it cancel every task, those included, as a last
//! resort before it drops them.
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
    /// cancels every task, and before that any task not under a shield (`under_shield` false).
    #[inline]
    pub(crate) fn refuses(&self, under_shield: bool, order: Ordering) -> bool {
        match self.0.load(order) {
            RUNNING => false,
            ROOTS => !under_shield,
            _ => true,
        }
    }

    /// True if the shutdown cancels `task` directly now: any task once it cancels every task,
    /// and before that any task not under a shield.
    #[inline]
    pub(crate) fn cancels(&self, task: &Header) -> bool {
        match self.0.load(Ordering::Acquire) {
            RUNNING => false,
            ROOTS => !task.under_shield(),
            _ => true,
        }
    }

    /// The first step: every task not under a shield is cancelled from now on.
    pub(crate) fn cancel_roots(&self) {
        self.0.fetch_max(ROOTS, Ordering::SeqCst);
    }

    /// The last resort: every task is cancelled from now on.
    pub(crate) fn cancel_every_task(&self) {
        self.0.store(EVERY_TASK, Ordering::SeqCst);
    }
}

//! The runtime a thread belongs to: set for worker threads and for the duration of `block_on`,
//! so code inside a task can find its runtime (`Handle::current()`), and its clock
//! (`time::now()`, every timer made there).
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::Arc;

use crate::runtime::executor::Executor;

use crate::runtime::Shared;
use crate::time::clock::{self, ClockGuard};

#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) executor: Arc<Executor>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) is_worker: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Restores the previous context (and clock) when dropped, releasing this one's executor
/// reference.
pub(crate) struct ContextGuard {
    previous: Option<Context>,
    _clock: ClockGuard,
}

pub(crate) fn enter(context: Context) -> ContextGuard {
    let clock = clock::enter(context.shared.clock.clone());
    let previous = CURRENT.with(|current| current.borrow_mut().replace(context));
    ContextGuard { previous, _clock: clock }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Drop the replaced context outside the borrow: its executor may be the last reference.
        let replaced =
            CURRENT.with(|current| std::mem::replace(&mut *current.borrow_mut(), previous));
        drop(replaced);
    }
}

/// True while this thread's thread-locals are being destroyed (its end) and one of klaw's that
/// a shutdown reads is gone already. Those are the ones with a destructor: this context, the
/// cancel frames and the virtual clock. (The others are `Cell`s of plain values, which are never
/// destroyed.) Thread-locals go in the reverse order of their first use, so any of them may be
/// gone while the others are not.
pub(crate) fn thread_is_ending() -> bool {
    CURRENT.try_with(|_| ()).is_err()
        || crate::cancel::frames::destroyed()
        || crate::time::clock::destroyed()
}

pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

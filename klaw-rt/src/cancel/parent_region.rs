//! The region of the scope whose child is being polled on this thread: a parallel child's body
//! runs on a worker of its own, outside its scope's frames, yet the scope's deadline (and the
//! deadlines of the regions around the scope in its task) enclose it. A region in the child, the
//! child's own timeout, or `is_cancelled()` there that finds a deadline passed looks here too
//! (`frames::expire_enclosing`), so that a scope's deadline that passed first catches, though the
//! scope's task has not been polled since (its body computes, its worker is busy).
//!
//! Set for the length of a poll by the child's runner (through its scope's link), with the task
//! it is set for; no reference count is taken: the pointer is a borrow of the link's `Arc`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::Arc;

use crate::cancel::RegionState;
use crate::task::current;

thread_local! {
    static PARENT_REGION: Cell<Option<(*const (), *const RegionState)>> = const { Cell::new(None) };
}

/// Runs `f` (a poll of the current task, or a look at its timeout) with `region` as the region
/// of the current task's scope.
pub(crate) fn with<R>(region: &Arc<RegionState>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(*const (), *const RegionState)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = PARENT_REGION.try_with(|cell| cell.set(self.0));
        }
    }
    let set = Some((current::tag(), Arc::as_ptr(region)));
    // The guard is this function's own, so it always drops (on unwind too): the pointer never
    // outlives the borrow of `region`.
    let _restore = Restore(PARENT_REGION.with(|cell| cell.replace(set)));
    f()
}

/// The region of the current task's scope, if the current task is a scope's child being polled
/// (or looking at its timeout) on this thread.
pub(crate) fn get() -> Option<Arc<RegionState>> {
    let (task, region) = PARENT_REGION.try_with(Cell::get).ok()??;
    if task != current::tag() {
        return None; // set for another task: one this one runs inside (an inline task)
    }
    // SAFETY: `with` set the pointer from `Arc::as_ptr` of an `Arc` it borrows for as long as
    // the pointer is set (it restores the previous one before returning, on unwind too), so the
    // region is alive; adding a strong count first makes the `Arc` built from it an extra owner,
    // released when it drops, exactly as `Arc::clone` would.
    Some(unsafe {
        Arc::increment_strong_count(region);
        Arc::from_raw(region)
    })
}

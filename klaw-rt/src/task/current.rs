//! Which task is running on this thread, so code deep inside it can ask whether it was cancelled.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ptr;

use crate::task::TaskId;
use crate::task::core::Header;

thread_local! {
    static CURRENT: Cell<*const Header> = const { Cell::new(ptr::null()) };
}

/// Marks a task as current on this thread until dropped; restores the previous one (tasks nest
/// when a blocking section runs inside `block_on`, for instance).
pub(crate) struct EnterGuard {
    previous: *const Header,
}

/// Makes `header` the current task until the guard drops. The caller must keep the header alive
/// (own an `Arc` of its core) for as long as the guard lives.
pub(crate) fn enter(header: &Header) -> EnterGuard {
    let previous = CURRENT.with(|current| current.replace(header));
    EnterGuard { previous }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

fn with_current<R>(f: impl FnOnce(&Header) -> R) -> Option<R> {
    let header = CURRENT.with(Cell::get);
    // SAFETY: a non-null pointer was set by `enter`, whose caller keeps the header alive while its
    // guard lives; the guard restores the previous value before it returns, and guards nest
    // strictly on one thread, so the pointer is valid here.
    unsafe { header.as_ref() }.map(f)
}

/// True if the task running on this thread has been cancelled (or timed out).
///
/// Async code is stopped at its next `.await` when cancelled; blocking and CPU-bound code cannot
/// be, so it should check this between steps and return early. Outside any task it is `false`.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn_blocking(|| {
///     let mut steps = 0u64;
///     while !klaw::is_cancelled() {
///         steps += 1;
///         std::thread::sleep(std::time::Duration::from_millis(1));
///     }
///     steps
/// });
/// std::thread::sleep(std::time::Duration::from_millis(20));
/// handle.cancel("enough");
/// assert!(rt.block_on(handle).is_err()); // cancelled: the steps are discarded
/// # Ok::<(), klaw::BuildError>(())
/// ```
pub fn is_cancelled() -> bool {
    with_current(Header::is_cancelled).unwrap_or(false)
}

/// The id of the task running on this thread, if any.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn(async { klaw::current_task_id() });
/// let id = handle.id();
/// assert_eq!(rt.block_on(handle).unwrap(), Some(id));
/// assert_eq!(klaw::current_task_id(), None);
/// # Ok::<(), klaw::BuildError>(())
/// ```
pub fn current_task_id() -> Option<TaskId> {
    with_current(Header::id)
}

//! What is running on this thread: the current task, and the innermost *frame* (a task runner,
//! a cancel region, a scope) that adopts what a scope dropped here leaves running.
//!
//! Both are set for the length of a closure ([`run_as`], [`Adopter::adopting`]) and restored
//! after it, even if it panics: the guards are those functions' own, so no caller can forget
//! one, and the pointers kept here never outlive what they point to. (Each writes its own guard:
//! one generic over `&LocalKey` made every access an indirect call, measurably, on every poll.)
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::task::TaskId;
use crate::task::core::{Completer, CoreRef, Header, HeaderRef, TaskHeader};
use crate::task::descendants::{Descendants, Failures};
use crate::task::shutdown_phase::ShutdownPhase;

/// The task whose body runs on this thread, as `run_as` sets it.
#[derive(Clone, Copy)]
struct Current {
    task: NonNull<dyn TaskHeader>,
    /// What keeps the task alive for a reference made from this: for a core in an `Arc`, the
    /// `Arc` (`task` is `Arc::as_ptr` of it); else the waker the task is polled with (its own,
    /// whose allocation holds the core).
    shared: bool,
    waker: Option<NonNull<Waker>>,
}

thread_local! {
    /// On a worker thread, its runtime's shutdown phase (see [`with_shutdown_phase`]).
    static SHUTDOWN: Cell<Option<NonNull<ShutdownPhase>>> = const { Cell::new(None) };
    /// The task whose body is being polled (or run) on this thread.
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
    /// The innermost frame being polled (or dropping what it ran) on this thread: where a scope
    /// dropped here hands the children it still has.
    static ADOPTER: Cell<Option<NonNull<Adopter>>> = const { Cell::new(None) };
    /// The deadline of the task being polled, if it has a timeout (with its tag: a local child
    /// polled inside it is another task, and does not run to its deadline).
    static TASK_DEADLINE: Cell<Option<(*const (), Instant)>> = const { Cell::new(None) };
}

/// Runs `f`, a poll of the current task's body, with `deadline` as that task's deadline (see
/// [`task_deadline`]).
pub(crate) fn with_task_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(*const (), Instant)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = TASK_DEADLINE.try_with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(TASK_DEADLINE.with(|cell| cell.replace(Some((tag(), deadline)))));
    f()
}

/// The deadline of the task being polled now, if it has a timeout: what a region in it that
/// finds its own deadline passed compares (`frames::expire_enclosing`).
pub(crate) fn task_deadline() -> Option<Instant> {
    let (task, deadline) = TASK_DEADLINE.with(Cell::get)?;
    (task == tag()).then_some(deadline)
}

/// Runs `f` with `task` as this thread's current task (tasks nest: a scope polls its local
/// children inside its parent's poll). `running` is the waker the task is polled with, if it is
/// polled (a blocking task is not).
#[inline]
pub(crate) fn run_as<O: Send + 'static, R>(
    task: &Completer<O>,
    running: Option<&Waker>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<Current>);
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            CURRENT.with(|cell| cell.set(self.0));
        }
    }
    // The guard is this function's own, so it always drops (on unwind too): the previous task
    // is always put back, and the pointer never outlives the borrow of `task`.
    let (pointer, shared) = task.as_task_ptr();
    let current = Current { task: pointer, shared, waker: running.map(NonNull::from) };
    let _restore = Restore(CURRENT.with(|cell| cell.replace(Some(current))));
    f()
}

fn current() -> Option<NonNull<dyn TaskHeader>> {
    CURRENT.with(Cell::get).map(|current| current.task)
}

/// True if the current task is being polled on this thread: false in a blocking task's closure,
/// in a body dropped outside a poll (neither is polled), and outside any task.
pub(crate) fn task_is_polled() -> bool {
    CURRENT.with(Cell::get).is_some_and(|current| current.waker.is_some())
}

/// True unless a task is current and not polled (its blocking closure, a body dropped outside a
/// poll): what is polled now is dropped by what polls it when that stops, a task or, outside
/// any task, the code that polls (a `block_on`).
pub(crate) fn polled_or_outside_tasks() -> bool {
    CURRENT.with(Cell::get).is_none_or(|current| current.waker.is_some())
}

/// Reads the current task's header, if a task is running on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&Header) -> R) -> Option<R> {
    let task = current()?;
    // SAFETY: `run_as` set the pointer from a completer that it borrows for as long as the
    // pointer is set (it restores the previous one before returning), so the task is alive.
    Some(f(unsafe { task.as_ref() }.header()))
}

/// A shared reference to the current task, to keep past this call (a shield, a region).
pub(crate) fn current_ref() -> Option<HeaderRef> {
    let Current { task, shared, waker } = CURRENT.with(Cell::get)?;
    match (shared, waker) {
        (false, None) => None, // not made: an unpolled task in its own allocation runs no body
        (false, Some(waker)) => {
            // SAFETY: `run_as` set both pointers from borrows it holds while they are set (see
            // `with_current`); the core is the metadata of the task that `waker` wakes, the task
            // being polled, so a clone of the waker keeps the core alive.
            let (core, waker) = unsafe { (task.as_ref(), waker.as_ref()) };
            // SAFETY: as above.
            Some(unsafe { CoreRef::in_task(core, waker.clone()) })
        }
        (true, _) => {
            // SAFETY: the pointer is `Arc::as_ptr` of the completer's `Arc<TaskCore<O>>`,
            // coerced to `dyn TaskHeader`, and that `Arc` is alive while the pointer is set (see
            // `with_current`). Adding a strong count first makes the `Arc` built from it an extra
            // owner, released when the reference drops, exactly as `Arc::clone` would.
            let shared: Arc<dyn TaskHeader> = unsafe {
                Arc::increment_strong_count(task.as_ptr());
                Arc::from_raw(task.as_ptr())
            };
            Some(CoreRef::shared_dyn(shared))
        }
    }
}

/// Identifies the current task, for tagging what its body pushes on per-thread stacks; null
/// outside any task.
pub(crate) fn tag() -> *const () {
    current().map_or(std::ptr::null(), |task| task.as_ptr().cast::<()>().cast_const())
}

/// The descendants a frame (a task runner, a cancel region, a scope) must outlive: created on
/// first use, since most frames never adopt anything.
#[derive(Default)]
pub(crate) struct Adopter(Cell<Option<Arc<Descendants>>>);

impl Adopter {
    /// A frame that adopts into `descendants` (a scope: its children's count).
    pub(crate) fn with(descendants: Arc<Descendants>) -> Self {
        Adopter(Cell::new(Some(descendants)))
    }

    fn descendants(&self) -> Arc<Descendants> {
        let descendants = self.0.take().unwrap_or_default();
        self.0.set(Some(descendants.clone()));
        descendants
    }

    /// The failures this frame adopted from scopes dropped in it, for it to report.
    pub(crate) fn take_failures(&self) -> Failures {
        let Some(descendants) = self.0.take() else { return Failures::new() };
        let failures = descendants.take_failures();
        self.0.set(Some(descendants));
        failures
    }

    /// What this frame must still wait for, if anything.
    #[inline]
    pub(crate) fn running(&self) -> Option<Arc<Descendants>> {
        let descendants = self.0.take()?;
        let running = (!descendants.is_empty()).then(|| descendants.clone());
        self.0.set(Some(descendants));
        running
    }

    /// Runs `f` with this frame as the one a scope dropped on this thread hands its children to.
    #[inline]
    pub(crate) fn adopting<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<NonNull<Adopter>>);
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                ADOPTER.with(|cell| cell.set(self.0));
            }
        }
        // As in `run_as`: the guard is this function's own, so it always drops.
        let _restore = Restore(ADOPTER.with(|cell| cell.replace(Some(NonNull::from(self)))));
        f()
    }
}

impl std::fmt::Debug for Adopter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.running();
        f.debug_struct("Adopter").field("running", &running).finish()
    }
}

/// A scope or region is going away while `descendants` still run: the innermost frame on this
/// thread waits for them instead. With no frame here (a plain `block_on`, a foreign executor),
/// this blocks until they have ended.
pub(crate) fn hand_over(descendants: &Arc<Descendants>) {
    if descendants.is_empty() {
        return;
    }
    match frame_descendants() {
        Some(parent) => {
            debug_assert!(!Arc::ptr_eq(&parent, descendants), "a frame adopts its own children");
            descendants.then_parent(parent);
        }
        None => {
            tracing::debug!("a scope dropped outside any klaw task waits for its children");
            descendants.wait_blocking();
        }
    }
}

/// The descendants of the innermost frame on this thread (made if it had none yet): what a
/// scope dropped here hands its children and its failures to. `None` outside any frame.
pub(crate) fn frame_descendants() -> Option<Arc<Descendants>> {
    let adopter = ADOPTER.with(Cell::get)?;
    // SAFETY: `Adopter::adopting` set the pointer from a reference it borrows for as long as the
    // pointer is set (it restores the previous one before returning), so the adopter is alive.
    Some(unsafe { adopter.as_ref() }.descendants())
}

/// Hands `failures` to the innermost frame on this thread (a region returning, or going away,
/// passes on what it adopted); logs them outside any frame.
pub(crate) fn hand_over_failures(failures: Failures) {
    if failures.is_empty() {
        return;
    }
    match frame_descendants() {
        Some(frame) => failures.into_iter().for_each(|failure| frame.adopt_failure(failure)),
        None => failures.into_iter().for_each(|failure| failure.log()),
    }
}

/// Runs `f` (a worker thread's life) with `phase` as the shutdown phase of the runtime whose
/// tasks this thread polls.
pub(crate) fn with_shutdown_phase<R>(phase: &ShutdownPhase, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<ShutdownPhase>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SHUTDOWN.try_with(|cell| cell.set(self.0));
        }
    }
    // As in `run_as`: the guard is this function's own, so the pointer never outlives `phase`.
    let _restore = Restore(SHUTDOWN.with(|cell| cell.replace(Some(NonNull::from(phase)))));
    f()
}

/// True if this is a worker thread whose runtime's shutdown cancels `task`. A shutdown cancels
/// the tasks it cancels that wait, and every such task at its next poll; code in the middle of a
/// poll that never `.await`s (a CPU-bound loop, in its very first poll, which no list holds)
/// learns it here, through `is_cancelled()`. (A task under a shield is left to the shield until
/// the shutdown's last resort.)
pub(crate) fn runtime_shutdown_cancels(task: &Header) -> bool {
    let phase = SHUTDOWN.try_with(Cell::get).ok().flatten();
    // SAFETY: `with_shutdown_phase` set it from a borrow it holds while it is set.
    phase.is_some_and(|phase| unsafe { phase.as_ref() }.cancels(task))
}

/// The id of the task running on this thread, if any: inside its body's polls and its body's
/// drop. A task's *output* is dropped after the task has ended (when its handle is dropped, or
/// at its end if the handle went first), so an output's destructor sees the task that drops the
/// handle, or none, where tokio's sees the output's own task.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build()?;
/// let handle = rt.spawn(async { klaw::task::current_task_id() });
/// let id = handle.id();
/// assert_eq!(rt.block_on(handle).unwrap(), Some(id));
/// assert_eq!(klaw::task::current_task_id(), None);
/// # Ok::<(), klaw::runtime::BuildError>(())
/// ```
pub fn current_task_id() -> Option<TaskId> {
    with_current(Header::id)
}

//! The shared state of one task: an atomic state machine in which the first terminal state wins.
//!
//! The first terminal state wins: every terminal transition is a compare-and-swap from
//! `PENDING`, so exactly one of {completion, failure, panic, timeout, cancellation} decides the
//! outcome and nothing can overwrite it (a cancel racing a completion never turns a success into
//! a cancellation, or the reverse). And the cancel token exists before the task is scheduled: the
//! core is created before the task is handed to any executor, so a `cancel()` right after
//! `spawn` always takes effect. The loom models in `loom.rs` check both.
//!
//! The verbs of a task's end, everywhere in `task/`: the outcome is **decided** once (first
//! terminal state wins: `decide`, `decide_cancelled`, `decide_if_pending`); then the output is
//! **published** for the handle (`publish`); and the task has **ended** once the output is
//! published and its runner has told whoever counts it (`runner::end`, `Report::ended`).
//!
//! Three roles touch a core, each through its own type, so the aliasing rules of the two
//! `UnsafeCell` slots follow from ownership:
//! - [`Completer`]: unique, owned by whatever runs the body; the only writer of the output.
//! - [`Joiner`]: unique, owned by the `TaskHandle`; reads the output if it wins the `CLAIMED` bit,
//!   which a scope collecting an unawaited failure may win instead (`TaskCore::take_unclaimed`).
//! - [`CoreRef`]: shared and cloneable; may only decide `CANCELLED` and wake the others.
//!
//! A core lives in one of two places. A task spawned on the executor keeps it in the task's own
//! allocation (`async-task`'s metadata: one allocation per task), where a clone of the task's
//! waker keeps it alive and a cancel wakes the task through that clone. Every other task (a
//! blocking or local one, one waiting for a slot of its scope's limit, a remote task's relay)
//! keeps it in an `Arc` of its own, and its runner stores its waker in the header for a cancel
//! to wake. [`CoreRef`] hides which.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::task::Waker;

use slab::Slab;

use crate::sync::{AtomicPtr, AtomicUsize, Mutex, Ordering, UnsafeCell};
use crate::task::guard::drop_contained;
use crate::task::state::{Kind, Snapshot};
use crate::task::{CancelReason, ExitReason, TaskId};

mod completer;
mod joiner;

pub(crate) use crate::task::core_ref::{CoreRef, HeaderRef};
pub(crate) use completer::{Completer, FailureTaker};
pub(crate) use joiner::Joiner;

/// A callback run when the task is cancelled or times out (for backends: cancel a remote job).
pub(crate) type CancelHook = Box<dyn FnOnce(&CancelReason) + Send>;

/// The type-independent part of a task's shared state. `repr(C)` keeps the fields a worker
/// touches on every task (state, wakers) ahead of the cold ones (name, reason, hooks), so fewer
/// cache lines travel between the spawning thread and the worker.
#[repr(C)]
pub(crate) struct Header {
    state: AtomicUsize,
    /// Written by the completer before `STARTED` is set, read-only afterwards. Only a core in its
    /// own `Arc` stores one: in the task's allocation it would keep that allocation alive.
    runner_waker: UnsafeCell<Option<Waker>>,
    /// Exclusive to the joiner while `JOIN_WAKER` is clear, shared read-only while it is set.
    join_waker: UnsafeCell<Option<Waker>>,
    id: TaskId,
    /// Claimed (null → non-null) by the one cancel call that goes on to decide `CANCELLED`.
    reason: AtomicPtr<CancelReason>,
    /// Boxed: most tasks have no name, and every byte of a core is paid per task.
    name: Option<Box<Cow<'static, str>>>,
    /// Emptied by whoever decides `CANCELLED` or `TIMED_OUT`; later registrations run at once.
    /// Keyed, so a region that stops listening can leave. Boxed for the same reason as the
    /// name: most tasks never register a hook.
    hooks: Mutex<Option<Box<Slab<CancelHook>>>>,
}

/// A task's shared state: the slot its output travels through, then the header (the output
/// goes first so that it shares a cache line with the `Arc` counts and the state).
#[repr(C)]
pub(crate) struct TaskCore<O> {
    output: UnsafeCell<Option<O>>,
    header: Header,
}

// SAFETY: the output slot is written only by the unique `Completer` before `DONE` is published
// (release) and read only by the one winner of `claim` after observing `DONE` (acquire), so an `O` moves
// between threads but is never shared: `O: Send` suffices. The waker slots follow the protocol
// documented on `Header`; `Waker` is `Send + Sync`. Every other field is itself `Sync`.
unsafe impl<O: Send> Sync for TaskCore<O> {}
// SAFETY: as above; the core owns at most one `O`, which may move to another thread.
unsafe impl<O: Send> Send for TaskCore<O> {}

impl<O> TaskCore<O> {
    /// The core of a new task, pending and not started.
    pub(crate) fn new(id: TaskId, name: Option<Cow<'static, str>>) -> Self {
        TaskCore {
            header: Header {
                state: AtomicUsize::new(Snapshot::NEW.bits()),
                id,
                name: name.map(Box::new),
                reason: AtomicPtr::new(ptr::null_mut()),
                runner_waker: UnsafeCell::new(None),
                join_waker: UnsafeCell::new(None),
                hooks: Mutex::new(None),
            },
            output: UnsafeCell::new(None),
        }
    }
}

/// Creates the shared state of a new task, in an `Arc` of its own, and its two unique ends.
pub(crate) fn new_task<O: Send + 'static>(
    id: TaskId,
    name: Option<Cow<'static, str>>,
) -> (Completer<O>, Joiner<O>) {
    let core = Arc::new(TaskCore::new(id, name));
    let joiner = Joiner { core: CoreRef::shared(core.clone()) };
    (Completer { core: NonNull::from(&*core), shared: Some(core) }, joiner)
}

impl Header {
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|name| name.as_ref())
    }

    fn load(&self) -> Snapshot {
        Snapshot::from_bits(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn kind(&self) -> Kind {
        self.load().kind()
    }

    pub(crate) fn exit_reason(&self) -> ExitReason {
        ExitReason::from_kind(self.kind())
    }

    pub(crate) fn has_started(&self) -> bool {
        self.load().has(Snapshot::STARTED)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.load().has(Snapshot::DONE)
    }

    /// True once the outcome is decided as cancelled or timed out: the body should stop.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.kind().is_cancelled()
    }

    /// Marks the task as under a shield, which a runtime's shutdown leaves it to until its last
    /// resort ([`Snapshot::UNDER_SHIELD`]). Called once, before the task is scheduled: whoever
    /// later reads the mark learnt of the task through a lock or a queue.
    pub(crate) fn mark_under_shield(&self) {
        self.state.fetch_or(Snapshot::UNDER_SHIELD, Ordering::Relaxed);
    }

    /// True if the task is under a shield, which a runtime's shutdown leaves it to (see
    /// [`mark_under_shield`](Self::mark_under_shield)).
    pub(crate) fn under_shield(&self) -> bool {
        self.load().has(Snapshot::UNDER_SHIELD)
    }

    /// True while a `shield` in the body is active.
    pub(crate) fn is_shielded(&self) -> bool {
        self.load().shields() != 0
    }

    /// A shield in the body started: a cancellation may be decided but must not drop the body.
    pub(crate) fn shield_enter(&self) {
        self.state.fetch_add(Snapshot::SHIELD_UNIT, Ordering::AcqRel);
    }

    /// A shield ended. If it was the last and a cancellation is waiting, the runner must be woken
    /// so it drops the body now rather than at the body's next wake-up: this wakes a stored
    /// waker, and returns true so the caller's [`CoreRef`] wakes a task that stores none.
    pub(crate) fn shield_exit(&self) -> bool {
        let previous =
            Snapshot::from_bits(self.state.fetch_sub(Snapshot::SHIELD_UNIT, Ordering::AcqRel));
        debug_assert!(previous.shields() != 0, "shield_exit without shield_enter");
        let last = previous.shields() == 1;
        let wake = last && !previous.is_pending() && previous.has(Snapshot::STARTED);
        if wake {
            self.wake_runner();
        }
        wake
    }

    /// Claims the output slot; true for exactly one caller, and only once the output is published.
    fn claim(&self) -> bool {
        self.transition(|s| {
            (s.has(Snapshot::DONE) && !s.has(Snapshot::CLAIMED)).then(|| s.with(Snapshot::CLAIMED))
        })
        .is_ok()
    }

    /// Applies `f` to the state until it succeeds or `f` refuses (returns `None`).
    /// Ok carries the previous state, Err the state that made `f` refuse.
    fn transition(
        &self,
        mut f: impl FnMut(Snapshot) -> Option<Snapshot>,
    ) -> Result<Snapshot, Snapshot> {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let Some(next) = f(Snapshot::from_bits(current)) else {
                return Err(Snapshot::from_bits(current));
            };
            match self.state.compare_exchange(
                current,
                next.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(previous) => return Ok(Snapshot::from_bits(previous)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Decides the outcome if it is still pending. Returns the previous state if this call won.
    /// This is the first-terminal-state-wins guard.
    fn decide(&self, kind: Kind) -> Option<Snapshot> {
        self.transition(|s| s.is_pending().then(|| s.decided(kind))).ok()
    }

    /// The cancel reason, if the outcome is `CANCELLED`.
    pub(crate) fn cancel_reason(&self) -> Option<CancelReason> {
        if self.kind() != Kind::Cancelled {
            return None;
        }
        let reason = self.reason.load(Ordering::Acquire);
        // SAFETY: `CANCELLED` is only decided after a reason was stored (release, and the state
        // transition that followed is release too; we loaded the state with acquire). The box is
        // freed only when the core is dropped, which cannot happen while `&self` lives.
        unsafe { reason.as_ref() }.cloned()
    }

    /// Cancels the task if its outcome is still pending. Returns true if this call decided it.
    ///
    /// This wakes the runner only through a waker stored in the header. A task whose core is in
    /// its own allocation stores none: cancel it through a [`CoreRef`] (or its `Joiner`), which
    /// wakes it, unless it is known not to have started.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        if self.kind() != Kind::Pending {
            return false; // Fast path: decided already, so no allocation.
        }
        if !self.claim_reason(reason) {
            // Another cancel claimed the reason first; it will decide the outcome (or lose to a
            // completion that came first), so this call decides nothing.
            return false;
        }
        self.decide_cancelled()
    }

    /// Stores `reason` if no cancel has claimed the slot yet.
    fn claim_reason(&self, reason: CancelReason) -> bool {
        let boxed = Box::into_raw(Box::new(reason));
        match self.reason.compare_exchange(
            ptr::null_mut(),
            boxed,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(_) => {
                // SAFETY: `boxed` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(boxed) });
                false
            }
        }
    }

    /// Moves a pending task to `CANCELLED` (a reason must be stored); wakes the body so it is
    /// dropped promptly, then runs the cancel hooks.
    fn decide_cancelled(&self) -> bool {
        let Some(previous) = self.decide(Kind::Cancelled) else { return false };
        if previous.has(Snapshot::STARTED) {
            self.wake_runner();
        }
        self.run_hooks(&self.cancel_reason().unwrap_or(CancelReason::Shutdown));
        true
    }

    fn wake_runner(&self) {
        self.runner_waker.with(|slot| {
            // SAFETY: the caller observed `STARTED`, after which the slot is never written again,
            // so shared reads are sound.
            if let Some(waker) = unsafe { &*slot } {
                waker.wake_by_ref();
            }
        });
    }

    /// Registers a hook that runs (once) if the task is cancelled or times out. It runs at once
    /// if that has already happened, and is dropped unrun if the task ended otherwise.
    pub(crate) fn on_cancel(&self, hook: CancelHook) {
        let _ = self.on_cancel_keyed(hook);
    }

    /// Like [`on_cancel`](Self::on_cancel); returns the key that [`remove_hook`]
    /// (Self::remove_hook) takes while the hook waits, or `None` if it already ran (or never
    /// will: the task ended otherwise).
    pub(crate) fn on_cancel_keyed(&self, hook: CancelHook) -> Option<usize> {
        let mut hooks = self.hooks.lock();
        // Decided before we took the lock? Then the decider takes (or took) the list after its
        // transition, and our hook must not wait in it.
        let state = self.load();
        match state.kind() {
            Kind::Pending => {
                let key = hooks.get_or_insert_with(Box::default).insert(hook);
                if state.has(Snapshot::HOOKS) {
                    // Up before the outcome can be decided: the task's end sees it and takes
                    // the list, after this lock.
                    return Some(key);
                }
                let previous =
                    Snapshot::from_bits(self.state.fetch_or(Snapshot::HOOKS, Ordering::AcqRel));
                if previous.is_pending() || previous.kind().is_cancelled() {
                    // Pending: the end sees `HOOKS`. Cancelled meanwhile: the decider runs the
                    // list once we let go of it.
                    return Some(key);
                }
                // Ended otherwise meanwhile, and its end may have looked before `HOOKS` was up:
                // the hook will never run.
                let removed = hooks.as_mut().and_then(|hooks| hooks.try_remove(key));
                drop(hooks);
                drop(removed); // user code: outside the lock
                None
            }
            Kind::Cancelled | Kind::TimedOut => {
                drop(hooks);
                let reason = self.cancel_reason().unwrap_or(CancelReason::Deadline);
                run_contained(hook, &reason);
                None
            }
            _ => {
                drop(hooks);
                drop(hook); // user code: outside the lock
                None
            }
        }
    }

    /// Withdraws a hook that has not run. Each key is removed at most once.
    pub(crate) fn remove_hook(&self, key: usize) {
        let removed = self.hooks.lock().as_mut().and_then(|hooks| hooks.try_remove(key));
        drop(removed); // user code: outside the lock
    }

    /// Decides `TIMED_OUT` if the outcome is still pending (the task's deadline passed: seen by
    /// its own timer, or by a region in its body first, `frames::expire_enclosing`), and runs
    /// the cancel hooks with `Deadline`. True if this call decided it.
    pub(crate) fn time_out(&self) -> bool {
        if self.decide(Kind::TimedOut).is_none() {
            return false;
        }
        self.run_hooks(&CancelReason::Deadline);
        true
    }

    fn run_hooks(&self, reason: &CancelReason) {
        let hooks = self.hooks.lock().take();
        for (_, hook) in hooks.into_iter().flat_map(|hooks| *hooks) {
            run_contained(hook, reason);
        }
    }

    /// Drops, at the task's end, the hooks of a task that ended otherwise than cancelled: they
    /// will never run, and what they hold is user data (a remote job's backend, a waker), which
    /// must not wait for the core's last reference. That can be a waker async-io drops under its
    /// timers' lock, or one a channel holds: a destructor run there would run under that lock.
    /// A task that never had a hook takes no lock here.
    fn drop_unrun_hooks(&self) {
        let state = self.load();
        // Cancelled or timed out: whoever decided runs the list (and takes it).
        if state.has(Snapshot::HOOKS) && !state.kind().is_cancelled() {
            let hooks = self.hooks.lock().take();
            drop_contained(hooks); // user code: outside the lock
        }
    }
}

/// Runs a cancel hook so that its panic cannot reach the task or skip the other hooks.
fn run_contained(hook: CancelHook, reason: &CancelReason) {
    // A panicking hook is a bug in the hook; the cancel itself has already taken effect. Its
    // payload is user code too: a panic as it is dropped must not reach the canceller either.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(reason))) {
        crate::task::guard::drop_payload(payload);
    }
}

impl<O> Drop for TaskCore<O> {
    fn drop(&mut self) {
        let reason = self.header.reason.load(Ordering::Acquire);
        if !reason.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `claim_reason`, and this is the
            // last reference to the core, so nobody else can read it.
            drop(unsafe { Box::from_raw(reason) });
        }
        // An output nobody took is a value of user code, and a core in its task's allocation is
        // dropped where `async-task` aborts on a panic: its destructor's panic stays here.
        let output = self.output.with_mut(|slot| {
            // SAFETY: this is the last reference to the core: nobody else touches the slot.
            unsafe { (*slot).take() }
        });
        if output.is_some() {
            drop_contained(output);
        }
    }
}

impl<O> TaskCore<O> {
    fn take_claimed(&self) -> O {
        self.output
            .with_mut(|slot| {
                // SAFETY: the caller won `claim`, which needs `DONE` (acquire), so the completer's
                // write is visible and it never touches the slot again; and only one claim wins.
                unsafe { (*slot).take() }
            })
            .expect("a published output is taken once")
    }

    /// [`take_claimed`](Self::take_claimed), boxed in this frame: the one copy of a large output
    /// on the stack is here, not in every frame that hands it up.
    fn take_claimed_boxed(&self) -> Box<O> {
        let mut boxed = Box::<O>::new_uninit();
        self.output.with_mut(|slot| {
            // SAFETY: as in `take_claimed`: the slot is ours.
            let slot = unsafe { &mut *slot };
            let output: *const O = slot.as_ref().expect("a published output is taken once");
            // Copied straight from the slot to the heap: `Option::take` and `Box::new` would
            // each hold a copy in this frame.
            // SAFETY: `output` is valid for reads and `boxed` for writes of one `O`, and they are
            // two allocations, so they do not overlap.
            unsafe { ptr::copy_nonoverlapping(output, boxed.as_mut_ptr(), 1) };
            // SAFETY: the output now belongs to the box: the slot is emptied without dropping it.
            unsafe { ptr::write(slot, None) };
        });
        // SAFETY: written above.
        unsafe { boxed.assume_init() }
    }

    /// The output, if it is published and no handle has taken it (nor will: the claim is ours).
    pub(crate) fn take_unclaimed(&self) -> Option<O> {
        self.header.claim().then(|| self.take_claimed())
    }

    /// Drops the published output of a task once its handle is gone, unless a scope collects it:
    /// a value always (only a handle takes one), a failure if no scope collects failures from
    /// this task (`UNCOLLECTED`). Without this the output waited for the last reference to the
    /// core, a `TaskRef` kept by the user, the worker's own, or a waker held by async-io or a
    /// channel, and its destructor ran wherever that went, perhaps under that holder's lock; a
    /// value outlived the scope that discarded it. tokio's `JoinHandle` drops the output of a
    /// finished task when it is dropped, whatever `AbortHandle`s remain.
    ///
    /// A failure dropped here is one nobody will see: it is logged, as a scope logs a failure
    /// it cannot report.
    fn drop_unclaimed_output(&self) {
        let state = self.header.load();
        if state.output_goes_with_handle() {
            let output = self.take_unclaimed();
            if output.is_some() && state.kind().is_failure() {
                tracing::warn!(
                    task.id = self.header.id().as_u64(),
                    task.name = self.header.name(),
                    exit_reason = ?self.header.exit_reason(),
                    "a task failed and its handle was dropped: nobody takes the failure"
                );
            }
            drop_contained(output);
        }
    }
}

/// A task of any output type, reached through its header: what a `TaskRef`, a scope's list of
/// children and the current-task context hold (the one way to reach a header without knowing
/// the output type).
pub(crate) trait TaskHeader: Send + Sync {
    fn header(&self) -> &Header;
}

impl<O: Send> TaskHeader for TaskCore<O> {
    fn header(&self) -> &Header {
        &self.header
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::*;

    fn task() -> (Completer<u32>, Joiner<u32>) {
        new_task(TaskId::next(), None)
    }

    #[test]
    fn first_terminal_state_wins_over_a_later_cancel() {
        let (completer, joiner) = task();
        assert!(completer.decide(Kind::Success));
        assert!(!joiner.header().cancel(CancelReason::user("too late")));
        assert_eq!(joiner.header().exit_reason(), ExitReason::Success);
        assert_eq!(joiner.header().cancel_reason(), None);
    }

    #[test]
    fn first_terminal_state_wins_over_a_later_completion() {
        let (completer, joiner) = task();
        assert!(joiner.header().cancel(CancelReason::user("first")));
        assert!(!completer.decide(Kind::Success));
        assert!(!completer.decide(Kind::Panicked));
        assert_eq!(joiner.header().exit_reason(), ExitReason::Cancelled);
        assert_eq!(joiner.header().cancel_reason(), Some(CancelReason::user("first")));
    }

    #[test]
    fn a_task_cancelled_before_start_cannot_start() {
        let (mut completer, joiner) = task();
        assert!(joiner.header().cancel(CancelReason::Shutdown));
        assert!(!completer.try_start(None));
        assert!(!joiner.header().has_started());
    }

    #[test]
    fn hooks_run_once_and_a_panicking_hook_is_contained() {
        use std::sync::atomic::AtomicUsize as Counter;
        let runs = Arc::new(Counter::new(0));
        let (_completer, joiner) = task();
        let header = joiner.header();
        header.on_cancel(Box::new(|_| panic!("a broken hook")));
        let r = runs.clone();
        header.on_cancel(Box::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(header.cancel(CancelReason::user("stop")));
        assert!(!header.cancel(CancelReason::user("again")));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Registered after the cancel: runs at once, with the task's reason.
        let r = runs.clone();
        header.on_cancel(Box::new(move |reason| {
            assert_eq!(reason, &CancelReason::user("stop"));
            r.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn hooks_of_a_completed_task_never_run() {
        let (completer, joiner) = task();
        assert!(completer.decide(Kind::Success));
        joiner.header().on_cancel(Box::new(|_| panic!("must not run")));
        completer.publish(1, FailureTaker::Scope);
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod size_tests {
    use super::*;

    #[test]
    fn a_task_core_stays_small() {
        // Every spawned task allocates one core; in spawn-heavy code (100k tasks in flight) the
        // bytes per task decide the speed. Grow this only with a reason.
        let size = std::mem::size_of::<TaskCore<Result<u64, crate::task::TaskError>>>();
        assert!(size <= 112, "TaskCore grew to {size} bytes");
    }
}

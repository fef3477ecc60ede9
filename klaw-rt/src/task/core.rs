//! The shared state of one task: an atomic state machine in which the first terminal state wins.
//!
//! The first terminal state wins: every terminal transition is a compare-and-swap from
//! `PENDING`, so exactly one of {completion, failure, panic, timeout, cancellation} decides the
//! outcome and nothing can overwrite it (a cancel racing a completion never turns a success into
//! a cancellation, or the reverse). And the cancel token exists before the task is scheduled: the
//! core is created before the task is handed to any executor, so a `cancel()` right after
//! `spawn` always takes effect. The loom models in `loom_tests.rs` check both.
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
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::sync::{AtomicPtr, AtomicUsize, Mutex, Ordering, UnsafeCell};
use crate::task::guard::drop_contained;
use crate::task::state::{Kind, Snapshot};
use crate::task::{CancelReason, ExitReason, TaskId};

pub(crate) use crate::task::core_ref::{CoreRef, HeaderRef};

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
        match self.kind() {
            Kind::Pending => Some(hooks.get_or_insert_with(Box::default).insert(hook)),
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

    fn run_hooks(&self, reason: &CancelReason) {
        let hooks = self.hooks.lock().take();
        for (_, hook) in hooks.into_iter().flat_map(|hooks| *hooks) {
            run_contained(hook, reason);
        }
    }
}

/// Runs a cancel hook so that its panic cannot reach the task or skip the other hooks.
fn run_contained(hook: CancelHook, reason: &CancelReason) {
    // A panicking hook is a bug in the hook; the cancel itself has already taken effect.
    let _ = catch_unwind(AssertUnwindSafe(|| hook(reason)));
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

    /// Drops the published output of a task that succeeded, once its handle is gone: only a
    /// handle takes a value (a scope collects failures only, so those stay for it). Without this
    /// the value waited for the last reference to the core, a `TaskRef` kept by the user or the
    /// worker's own, and outlived the scope that discarded it; tokio's `JoinHandle` drops the
    /// output of a finished task when it is dropped, whatever `AbortHandle`s remain.
    fn drop_unclaimed_value(&self) {
        if self.header.kind() == Kind::Success {
            drop_contained(self.take_unclaimed());
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

/// The end of a task that runs its body: it starts it, decides its outcome, publishes its output.
pub(crate) struct Completer<O> {
    core: NonNull<TaskCore<O>>,
    /// The core's own `Arc`; `None` for a core in its task's allocation, which outlives every
    /// completer of that task (see [`Completer::in_task`]).
    shared: Option<Arc<TaskCore<O>>>,
}

// SAFETY: a completer is an owning reference to a `TaskCore<O>`, like `Arc<TaskCore<O>>`, which
// is `Send` and `Sync` when `O: Send`.
unsafe impl<O: Send> Send for Completer<O> {}
// SAFETY: as above.
unsafe impl<O: Send> Sync for Completer<O> {}

impl<O: Send + 'static> Completer<O> {
    /// The completer of a task whose core is `core`, the metadata of the task's own allocation.
    ///
    /// # Safety
    /// The allocation must outlive the completer: it lives in the task's future, or in what the
    /// future hands its end to while something else keeps the allocation (`task::in_task`).
    pub(crate) unsafe fn in_task(core: &TaskCore<O>) -> Self {
        Completer { core: NonNull::from(core), shared: None }
    }

    fn core_ref(&self) -> &TaskCore<O> {
        // SAFETY: the core is alive while this completer is: it holds the `Arc`, or the caller of
        // `in_task` promised the allocation outlives it.
        unsafe { self.core.as_ref() }
    }

    pub(crate) fn header(&self) -> &Header {
        &self.core_ref().header
    }

    /// A shared reference to the task. `running` is the waker the task is being polled with: for
    /// a core in the task's allocation, what keeps it alive.
    pub(crate) fn header_ref(&self, running: Option<&Waker>) -> HeaderRef {
        match &self.shared {
            Some(core) => CoreRef::shared(core.clone()).into_header_ref(),
            None => {
                let waker = running.expect("a task in its own allocation is polled by its waker");
                // SAFETY: the core is the metadata of the task being polled, and `waker` is that
                // task's waker (the executor polls the runner as the task's whole future).
                unsafe { CoreRef::in_task(self.core_ref(), waker.clone()) }.into_header_ref()
            }
        }
    }

    /// The shared core, for a scope that lists a child only when it starts (a child that waited
    /// for a slot of its scope's limit, whose core is in an `Arc`).
    pub(crate) fn shared_core(&self) -> CoreRef<TaskCore<O>> {
        let core = self.shared.as_ref().expect("a child that waited for a slot has a shared core");
        CoreRef::shared(core.clone())
    }

    /// The task as the current-task context points at it, and whether its core is in an `Arc`
    /// (then the pointer is `Arc::as_ptr` of it, so a `HeaderRef` can be made from it while this
    /// completer keeps the `Arc` alive).
    pub(crate) fn as_task_ptr(&self) -> (NonNull<dyn TaskHeader>, bool) {
        let core: NonNull<dyn TaskHeader> = self.core;
        (core, self.shared.is_some())
    }

    /// Marks the body as started unless the task was cancelled first; returns whether the body
    /// may run. `waker`, if any, is what a later cancel wakes so the body is dropped promptly.
    /// A core in the task's allocation stores no waker: its cancellers wake the task through
    /// theirs.
    pub(crate) fn try_start(&mut self, waker: Option<&Waker>) -> bool {
        if let Some(waker) = waker.filter(|_| self.shared.is_some()) {
            self.core_ref().header.runner_waker.with_mut(|slot| {
                // SAFETY: `STARTED` is not set yet and only this unique completer sets it, so no
                // canceller reads the slot until the release transition below publishes it.
                unsafe { *slot = Some(waker.clone()) };
            });
        }
        self.header().transition(|s| s.is_pending().then(|| s.with(Snapshot::STARTED))).is_ok()
    }

    /// Decides `kind` (success, error, panic, timeout) if the outcome is still pending.
    pub(crate) fn decide(&self, kind: Kind) -> bool {
        let won = self.header().decide(kind).is_some();
        if won && kind == Kind::TimedOut {
            self.header().run_hooks(&CancelReason::Deadline);
        }
        won
    }

    /// Makes sure the outcome is decided, cancelling with `reason` if it is still pending. Used
    /// when the body is dropped without finishing (its executor went away).
    pub(crate) fn decide_if_pending(&self, reason: CancelReason) {
        let header = self.header();
        if header.kind() == Kind::Pending
            && !header.cancel(reason)
            && header.kind() == Kind::Pending
        {
            // A concurrent cancel claimed the reason but has not decided yet: decide for it, with
            // its reason, because we are about to publish an output that needs the outcome.
            header.decide_cancelled();
        }
    }

    /// Stores the output and marks the task done, waking the joiner. Consumes the completer: an
    /// output is published exactly once.
    pub(crate) fn publish(self, output: O) {
        debug_assert!(
            self.header().kind() != Kind::Pending,
            "publish before the outcome was decided"
        );
        self.core_ref().output.with_mut(|slot| {
            // SAFETY: only this unique completer writes the slot, and the joiner reads it only
            // after observing `DONE`, which is set (release) by `mark_done`.
            unsafe { *slot = Some(output) };
        });
        self.mark_done();
    }

    /// [`publish`](Self::publish) for a large output, which came this far boxed: it leaves its
    /// box only here, into the slot, so no frame on the way held it by value.
    pub(crate) fn publish_boxed(self, output: Box<O>) {
        debug_assert!(
            self.header().kind() != Kind::Pending,
            "publish before the outcome was decided"
        );
        self.core_ref().output.with_mut(|slot| {
            // SAFETY: as in `publish`.
            unsafe { *slot = Some(*output) };
        });
        self.mark_done();
    }

    /// Marks the output published (`DONE`) and wakes the joiner. Inlined: `publish` was one
    /// function before `publish_boxed` shared its end, and the spawn benches measure it.
    #[inline(always)]
    fn mark_done(self) {
        let header = self.header();
        let previous = Snapshot::from_bits(header.state.fetch_or(Snapshot::DONE, Ordering::AcqRel));
        if previous.has(Snapshot::JOIN_WAKER) {
            header.join_waker.with(|slot| {
                // SAFETY: `JOIN_WAKER` was set, so the joiner stored a waker and will not touch
                // the slot again without clearing the flag, which fails now that `DONE` is set.
                if let Some(waker) = unsafe { &*slot } {
                    waker.wake_by_ref();
                }
            });
        }
        if previous.has(Snapshot::DETACHED) {
            // The handle went first: the value goes now, before the task is counted as ended,
            // so a scope that discarded it returns after it.
            self.core_ref().drop_unclaimed_value();
        }
    }
}

/// The end of a task that awaits its output (inside a `TaskHandle`).
pub(crate) struct Joiner<O> {
    core: CoreRef<TaskCore<O>>,
}

impl<O> Joiner<O> {
    pub(crate) fn header(&self) -> &Header {
        &self.core.header
    }

    /// The joiner of a task whose core is `core`, the metadata of the task's own allocation.
    ///
    /// # Safety
    /// `waker` must be that task's waker, which keeps the allocation alive.
    pub(crate) unsafe fn in_task(core: &TaskCore<O>, waker: Waker) -> Self {
        // SAFETY: as the caller promised.
        Joiner { core: unsafe { CoreRef::in_task(core, waker) } }
    }
}

impl<O: Send + 'static> Joiner<O> {
    /// The shared core, for a scope that must collect a failure nobody awaited.
    pub(crate) fn core(&self) -> CoreRef<TaskCore<O>> {
        self.core.clone()
    }

    pub(crate) fn header_ref(&self) -> HeaderRef {
        self.core.clone().into_header_ref()
    }

    /// Cancels the task if its outcome is still pending, and wakes it; true if this call decided.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        self.core.cancel(reason)
    }

    fn take_output(&mut self) -> O {
        assert!(
            self.core.header.claim(),
            "a TaskHandle was polled again after it returned the task's result"
        );
        self.core.take_claimed()
    }

    /// [`take_output`](Self::take_output) for a large output: boxed as it leaves the slot, so
    /// the frames between here and the code that awaits it hold a pointer (see `is_large`).
    fn take_output_boxed(&mut self) -> Box<O> {
        assert!(
            self.core.header.claim(),
            "a TaskHandle was polled again after it returned the task's result"
        );
        self.core.take_claimed_boxed()
    }

    /// [`poll_output`](Self::poll_output), the output boxed (see `take_output_boxed`).
    pub(crate) fn poll_output_boxed(&mut self, cx: &mut Context<'_>) -> Poll<Box<O>> {
        match self.poll_done(cx) {
            Poll::Ready(()) => Poll::Ready(self.take_output_boxed()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// [`take_done_output`](Self::take_done_output), the output boxed.
    pub(crate) fn take_done_output_boxed(&mut self) -> Box<O> {
        self.take_output_boxed()
    }

    /// Polls for the output: ready once the body has ended and the output is published.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<O> {
        match self.poll_done(cx) {
            Poll::Ready(()) => Poll::Ready(self.take_output()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes the output once [`poll_done`](Self::poll_done) was ready.
    pub(crate) fn take_done_output(&mut self) -> O {
        self.take_output()
    }

    /// Ready once the output is published (`DONE`, observed with acquire), without taking it.
    pub(crate) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let header = &self.core.header;
        let state = header.load();
        if state.has(Snapshot::DONE) {
            return Poll::Ready(());
        }
        if state.has(Snapshot::JOIN_WAKER) {
            let same = header.join_waker.with(|slot| {
                // SAFETY: while `JOIN_WAKER` is set the slot is shared read-only.
                unsafe { &*slot }.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
            });
            if same {
                return Poll::Pending;
            }
            // Take the slot back to replace the waker; fails only if the task is done.
            let taken_back = header
                .transition(|s| (!s.has(Snapshot::DONE)).then(|| s.without(Snapshot::JOIN_WAKER)));
            if taken_back.is_err() {
                return Poll::Ready(());
            }
        }
        let fresh = cx.waker().clone();
        let replaced = header.join_waker.with_mut(|slot| {
            // SAFETY: `JOIN_WAKER` is clear, so the completer never reads the slot: it is ours.
            unsafe { (*slot).replace(fresh) }
        });
        drop(replaced);
        match header.transition(|s| (!s.has(Snapshot::DONE)).then(|| s.with(Snapshot::JOIN_WAKER)))
        {
            Ok(_) => Poll::Pending,
            // Done meanwhile: the completer saw no waker to wake, so the output is ready.
            Err(_) => Poll::Ready(()),
        }
    }
}

impl<O> Drop for Joiner<O> {
    fn drop(&mut self) {
        // Withdraw our waker so a detached task does not wake a stale one. If the task is done,
        // the waker stays in the slot and is dropped with the core.
        let header = &self.core.header;
        let Ok(previous) = header.transition(|s| {
            if s.has(Snapshot::DONE) && (s.has(Snapshot::CLAIMED) || s.kind() != Kind::Success) {
                // Nothing left to do (no waker to withdraw, no value to drop): the common end
                // of an awaited handle costs one load, no write.
                return None;
            }
            let detached = s.with(Snapshot::DETACHED);
            Some(if !s.has(Snapshot::DONE) && s.has(Snapshot::JOIN_WAKER) {
                detached.without(Snapshot::JOIN_WAKER)
            } else {
                detached
            })
        }) else {
            return;
        };
        if !previous.has(Snapshot::DONE) && previous.has(Snapshot::JOIN_WAKER) {
            header.join_waker.with_mut(|slot| {
                // SAFETY: we cleared `JOIN_WAKER` before `DONE`, so the slot is ours again.
                drop(unsafe { (*slot).take() });
            });
        }
        if previous.has(Snapshot::DONE) {
            // Published before we went: a value nobody took goes with its handle. (Published
            // after, the completer drops it: it sees `DETACHED`.)
            self.core.drop_unclaimed_value();
        }
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
        completer.publish(1);
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

//! The end of a task that runs its body ([`Completer`]): it starts the body, decides the
//! outcome, and publishes the output, with who takes a failure the handle does not
//! ([`FailureTaker`]). A child of `core`, so it reaches the core's private fields; the state
//! protocol it follows is documented there.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::Arc;
use std::task::Waker;

use super::{CoreRef, Header, HeaderRef, TaskCore, TaskHeader};
use crate::sync::Ordering;
use crate::task::CancelReason;
use crate::task::state::{Kind, Snapshot};

/// The end of a task that runs its body: it starts it, decides its outcome, publishes its output.
pub(crate) struct Completer<O> {
    pub(super) core: NonNull<TaskCore<O>>,
    /// The core's own `Arc`; `None` for a core in its task's allocation, which outlives every
    /// completer of that task (see [`Completer::in_task`]).
    pub(super) shared: Option<Arc<TaskCore<O>>>,
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

    /// Decides `kind` (success, error, panic, timeout) if the outcome is still pending. Never a
    /// cancellation: that is decided by `cancel`, which stores its reason and runs the hooks
    /// (which `drop_unrun_hooks` and `on_cancel_keyed` count on). No body's output maps to one:
    /// a remote task cancelled on its worker is `TaskError::Remote` here.
    pub(crate) fn decide(&self, kind: Kind) -> bool {
        debug_assert_ne!(kind, Kind::Cancelled, "a cancellation is decided by `cancel`");
        if kind == Kind::TimedOut {
            return self.header().time_out();
        }
        self.header().decide(kind).is_some()
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
    pub(crate) fn publish(self, output: O, failure: FailureTaker) {
        debug_assert!(
            self.header().kind() != Kind::Pending,
            "publish before the outcome was decided"
        );
        self.core_ref().output.with_mut(|slot| {
            // SAFETY: only this unique completer writes the slot, and the joiner reads it only
            // after observing `DONE`, which is set (release) by `mark_done`.
            unsafe { *slot = Some(output) };
        });
        self.mark_done(failure);
    }

    /// [`publish`](Self::publish) for a large output, which came this far boxed: it leaves its
    /// box only here, into the slot, so no frame on the way held it by value.
    pub(crate) fn publish_boxed(self, output: Box<O>, failure: FailureTaker) {
        debug_assert!(
            self.header().kind() != Kind::Pending,
            "publish before the outcome was decided"
        );
        self.core_ref().output.with_mut(|slot| {
            // SAFETY: as in `publish`.
            unsafe { *slot = Some(*output) };
        });
        self.mark_done(failure);
    }

    /// Marks the output published (`DONE`) and wakes the joiner. Inlined: `publish` was one
    /// function before `publish_boxed` shared its end, and the spawn benches measure it.
    /// Hooks that will never run go first, so that once the handle resolves they are gone.
    #[inline(always)]
    fn mark_done(self, failure: FailureTaker) {
        let header = self.header();
        header.drop_unrun_hooks();
        let done = match failure {
            FailureTaker::Scope => Snapshot::DONE,
            FailureTaker::HandleOnly => Snapshot::DONE | Snapshot::UNCOLLECTED,
        };
        let previous = Snapshot::from_bits(header.state.fetch_or(done, Ordering::AcqRel));
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
            // The handle went first: the output goes now (unless a scope collects it), before
            // the task is counted as ended, so a scope that discarded it returns after it.
            self.core_ref().drop_unclaimed_output();
        }
    }
}

/// Who takes a failure that the task's handle does not (given with the output: see
/// `Snapshot::UNCOLLECTED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureTaker {
    /// The task's scope collects it, so it stays in the core for the scope.
    Scope,
    /// Only the handle: dropped with the handle if the handle never takes it.
    HandleOnly,
}

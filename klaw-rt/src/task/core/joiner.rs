//! The end of a task that awaits its output ([`Joiner`], inside a `TaskHandle`). A child of
//! `core`, so it reaches the core's private fields; the state protocol it follows is documented
//! there.
#![allow(unsafe_code)]

use std::task::{Context, Poll, Waker};

use super::{CoreRef, Header, HeaderRef, TaskCore};
use crate::task::CancelReason;
use crate::task::state::Snapshot;

/// The end of a task that awaits its output (inside a `TaskHandle`).
pub(crate) struct Joiner<O> {
    pub(super) core: CoreRef<TaskCore<O>>,
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
            if s.has(Snapshot::DONE) && (s.has(Snapshot::CLAIMED) || !s.output_goes_with_handle()) {
                // Nothing left to do (no waker to withdraw, no output to drop): the common end
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
            // Published before we went: an output nobody took goes with its handle, unless a
            // scope collects it. (Published after, the completer drops it: it sees `DETACHED`.)
            self.core.drop_unclaimed_output();
        }
    }
}

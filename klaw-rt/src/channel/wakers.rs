//! The `Sender::closed` futures of `oneshot`, `broadcast` and `watch`, on the wakers kept in
//! each channel's state (`sync::wakers`, whose items the channels take from here).
#![forbid(unsafe_code)]

use std::task::{Context, Poll};

use crate::coop;
use crate::sync::Mutex;
pub(crate) use crate::sync::wakers::{Ticket, Wake, WakerSet, leave, poll_or_wait};

/// Waits until `done` holds of the channel's state, with its waker in one [`WakerSet`] of that
/// state: what every `Sender::closed` future of `oneshot`, `broadcast` and `watch` is. Dropped
/// while it waits, it takes its waker out (and drops it after the lock).
pub(crate) struct WaitUntil<'a, S> {
    lock: &'a Mutex<S>,
    set: fn(&mut S) -> &mut WakerSet,
    done: fn(&S) -> bool,
    ticket: Ticket,
}

impl<'a, S> WaitUntil<'a, S> {
    pub(crate) fn new(
        lock: &'a Mutex<S>,
        set: fn(&mut S) -> &mut WakerSet,
        done: fn(&S) -> bool,
    ) -> Self {
        Self { lock, set, done, ticket: Ticket::default() }
    }

    /// Ready once `done` holds, taking a unit of the task's cooperative budget then.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let done = self.done;
        coop::budgeted(cx, |cx| {
            poll_or_wait(self.lock, self.set, &mut self.ticket, cx, |state| {
                done(state).then_some(())
            })
        })
    }
}

impl<S> Drop for WaitUntil<'_, S> {
    fn drop(&mut self) {
        leave(self.lock, self.set, &mut self.ticket);
    }
}

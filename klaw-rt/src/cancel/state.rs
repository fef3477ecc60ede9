//! The shared state of one cancel region: its reason once cancelled, the shields inside it, and
//! the waker of the task that polls it.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::Waker;

use crate::task::CancelReason;

#[derive(Debug, Default)]
pub(crate) struct RegionState {
    /// Set once: the first reason wins, as for tasks.
    reason: OnceLock<CancelReason>,
    /// Shields active inside the region; while any is, a cancelled region keeps polling.
    shielded: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl RegionState {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.reason.get().is_some()
    }

    pub(crate) fn reason(&self) -> Option<&CancelReason> {
        self.reason.get()
    }

    /// Cancels the region; true if this call decided it.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        let decided = self.reason.set(reason).is_ok();
        if decided {
            self.wake();
        }
        decided
    }

    /// Cancelled, and no shield inside holds it open: the inner future must be dropped now.
    pub(crate) fn must_stop(&self) -> bool {
        self.is_cancelled() && self.shielded.load(Ordering::Acquire) == 0
    }

    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(crate) fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn shield_enter(&self) {
        self.shielded.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn shield_exit(&self) {
        let previous = self.shielded.fetch_sub(1, Ordering::AcqRel);
        if previous == 1 && self.is_cancelled() {
            self.wake(); // the cancellation waited for this shield; let the region act on it
        }
    }
}

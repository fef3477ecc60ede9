//! A region or scope that waits to be dropped, and how long it believes that it will be.
//!
//! A region (or scope) cancelled while what encloses it stops too does not return: the
//! outermost catches the cancellation, and what encloses this one drops it at the end of the
//! task's poll, so no code between the two runs on. That holds while the region is polled by its
//! task's own poll, which ends. A foreign executor's `block_on` called in the task's body (in
//! sync code it calls: `futures::executor::block_on`, `pollster`) polls the region inside that
//! poll and does not return until the region does: nothing drops it, and waiting would block
//! the thread for ever.
//!
//! So a region that waits to be dropped notes which poll of its task it began waiting in, and a
//! timer of [`STILL_POLLED_AFTER`]. Polled again in the same task poll once the timer has fired,
//! it knows that poll did not end, and returns what it has (its cancellation). A combinator that
//! polls a future again in the same poll after it woke itself (`FuturesUnordered`) would only do
//! so within a task poll longer than that, which a task's poll never is unless it blocks.

use std::task::Context;
use std::time::Duration;

use crate::task::current;
use crate::time::{self, Sleep};

/// How long a task's poll runs on at most, as far as a region waiting to be dropped in it
/// believes: past it, the poll is blocked in something that polls the region itself.
const STILL_POLLED_AFTER: Duration = Duration::from_millis(10);

/// The poll a region began waiting to be dropped in, and the timer that tells it that poll is
/// blocked.
#[derive(Default)]
pub(crate) struct DropWait {
    waiting: Option<(u64, Sleep)>,
}

impl DropWait {
    /// Whether a region (or scope) that waits to be dropped should keep waiting: true unless it
    /// is polled by something nested in its task's poll, which that poll waits for (see the
    /// module's doc). Registers `cx` for the timer that tells it so.
    pub(crate) fn keep_waiting(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(poll) = current::task_poll() else { return true };
        let timer = match &mut self.waiting {
            Some((began, timer)) if *began == poll => timer,
            waiting => &mut waiting.insert((poll, time::sleep(STILL_POLLED_AFTER))).1,
        };
        timer.poll_deadline(cx).is_pending()
    }
}

impl std::fmt::Debug for DropWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropWait").field("waiting", &self.waiting.is_some()).finish()
    }
}

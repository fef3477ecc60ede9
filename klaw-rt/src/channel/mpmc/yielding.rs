//! A few yields before a receive or a send joins its wait list.
//!
//! A receive that finds the buffer empty (or a send that finds it full) could join its wait
//! list at once. But when the other end is busy on another worker, or queued behind this task
//! on the same one, what it waits for usually comes within a poll or two, and a wait costs far
//! more than a poll: a place in the list, a flag on the buffer, a wake-up by the other end, and
//! often a sleeping thread woken by a system call. Worse, waits feed each other. With four
//! producers on two workers and one consumer selecting over their channels, a consumer that
//! freed a place woke a sleeping producer each time, producers and consumer took turns
//! sleeping, and one CPU stayed idle (`benches/select`). A send that yields to its runtime a
//! few times instead, with the value kept in its future, finds its place on a later poll while
//! the consumer keeps draining; and a yield lets the other end run when both share a worker.
//! Measured (see `benches/README.md`), on a quiet machine: `select!` over four channels went
//! from 1.1–1.6x to 0.7–1.0x `tokio::select!` over tokio's mpsc, and SPSC from 1.1–1.2x to
//! 0.65–0.7x kanal's time; under load neither got worse. On klaw's own runtime SPSC went from
//! 31–36 to 24–28 ns a message.
//!
//! Where yielding does not pay (the other end is idle), it costs a re-poll per yield. So each
//! side of a channel keeps how many yields it allows: a wait that a yield ended restores the
//! full allowance, a wait that needed more halves it, down to one.
//!
//! A yield changes nothing of what a waiting task is promised: it is not in the line yet, so
//! the order of the line and the hand-off of wake-ups are those of the wait lists, and every
//! poll looks at the buffer again. Under the model checker nothing yields: each poll goes
//! straight to the wait the models check.

#[cfg(not(klaw_loom))]
use std::sync::atomic::{AtomicU8, Ordering};

/// The most yields before a wait: four measured as well as sixteen, and cost less when the
/// other end is idle.
#[cfg(not(klaw_loom))]
const MOST: u8 = 4;

/// What a future records of its yields: how many it took, or that it waits now.
const GAVE_UP: u8 = u8::MAX;

/// How many times one side of a channel (its receives, or its sends) yields before it waits.
#[derive(Debug)]
pub(crate) struct YieldBeforeWait {
    /// Relaxed: a hint; a stale value costs a yield more or less, never a message.
    #[cfg(not(klaw_loom))]
    allowed: AtomicU8,
}

impl YieldBeforeWait {
    pub(crate) fn new() -> Self {
        YieldBeforeWait {
            #[cfg(not(klaw_loom))]
            allowed: AtomicU8::new(MOST),
        }
    }

    /// A poll found nothing. True if the future should yield once more (its task is woken, and
    /// it returns `Pending` without joining the line), counting it in `yielded`; false if it
    /// should wait now.
    #[inline]
    pub(crate) fn again(&self, yielded: &mut u8) -> bool {
        #[cfg(klaw_loom)]
        {
            let _ = yielded;
            false
        }
        #[cfg(not(klaw_loom))]
        {
            if *yielded == GAVE_UP {
                return false;
            }
            let allowed = self.allowed.load(Ordering::Relaxed).max(1);
            if *yielded < allowed {
                *yielded += 1;
                return true;
            }
            // The yields did not pay this time: fewer next time.
            self.allowed.store(allowed / 2, Ordering::Relaxed);
            *yielded = GAVE_UP;
            false
        }
    }

    /// A poll found what it looked for; the future starts afresh (a stream polls on).
    #[inline]
    pub(crate) fn found(&self, yielded: &mut u8) {
        #[cfg(not(klaw_loom))]
        if *yielded != 0 && *yielded != GAVE_UP && self.allowed.load(Ordering::Relaxed) < MOST {
            // A yield paid: allow them all again.
            self.allowed.store(MOST, Ordering::Relaxed);
        }
        *yielded = 0;
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::*;

    /// Yields until `again` says wait; how many it allowed.
    fn yields_before_wait(side: &YieldBeforeWait) -> u8 {
        let mut yielded = 0;
        let mut allowed = 0;
        while side.again(&mut yielded) {
            allowed += 1;
        }
        allowed
    }

    #[test]
    fn yields_that_do_not_pay_are_halved_down_to_one_and_one_that_pays_restores_them() {
        let side = YieldBeforeWait::new();
        assert_eq!(yields_before_wait(&side), MOST);
        assert_eq!(yields_before_wait(&side), MOST / 2);
        assert_eq!(yields_before_wait(&side), 1);
        assert_eq!(yields_before_wait(&side), 1, "never fewer than one");
        // A wait that a yield ended: the full allowance again.
        let mut yielded = 0;
        assert!(side.again(&mut yielded));
        side.found(&mut yielded);
        assert_eq!(yielded, 0, "a stream starts afresh");
        assert_eq!(yields_before_wait(&side), MOST);
    }

    #[test]
    fn a_future_that_gave_up_waits_on_every_later_poll() {
        let side = YieldBeforeWait::new();
        let mut yielded = 0;
        while side.again(&mut yielded) {}
        assert!(!side.again(&mut yielded), "it waits now");
        assert_eq!(yields_before_wait(&side), MOST / 2, "halved once, not once per poll");
    }
}

//! One yield before a receive or a send joins its wait list.
//!
//! A receive that finds the buffer empty (or a send that finds it full) could join its wait
//! list at once. But when the other end is busy on another worker, or queued behind this task
//! on the same one, what it waits for usually comes within a poll, and a wait costs far more
//! than a poll: a place in the list, a flag on the buffer, a wake-up by the other end, and often
//! a sleeping thread woken by a system call. Worse, waits feed each other. With four producers
//! on two workers and one consumer selecting over their channels, a consumer that freed a place
//! woke a sleeping producer each time, producers and consumer took turns sleeping, and one CPU
//! stayed idle (`benches/select`). A send that yields to its runtime once instead, with the
//! value kept in its future, finds its place on the next poll while the consumer keeps
//! draining; and a yield lets the other end run when both share a worker. Measured (see
//! `benches/README.md`), on a quiet machine: `select!` over four channels went from 1.1–1.6x to
//! 0.7–1.0x `tokio::select!` over tokio's mpsc, and SPSC from 1.1–1.2x to 0.65–0.7x kanal's
//! time; on klaw's own runtime SPSC went from 31–36 to 24–28 ns a message.
//!
//! Why once: up to four yields, as many as had last paid on that side of the channel (halved
//! after a wait they did not spare, restored by one they did), measured no better than one on
//! the channel bench, and worse on `select`: 1.10–1.20x `tokio::select!` over tokio's mpsc
//! on a quiet machine against 0.93–1.01 with one yield, and 1.04–1.50 under load against
//! 0.91–1.41 (interleaved pairs). A producer that yields again and again at a full channel keeps
//! its worker busy where the consumer needed the CPU.
//!
//! A yield changes nothing of what a waiting task is promised: it is not in the line yet, so
//! the order of the line and the hand-off of wake-ups are those of the wait lists, and every
//! poll looks at the buffer again. Under the model checker nothing yields: each poll goes
//! straight to the wait the models check.

/// A poll of a receive or a send found nothing, while not in line. True if the future should
/// yield (its task is woken, and it returns `Pending` without joining the line): it has not
/// yet, which `yielded` records. False if it already did and should wait now.
#[inline]
pub(crate) fn again(yielded: &mut bool) -> bool {
    if cfg!(klaw_loom) || *yielded {
        return false;
    }
    *yielded = true;
    true
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::again;

    #[test]
    fn a_future_yields_once_and_then_waits_on_every_later_poll() {
        let mut yielded = false;
        assert!(again(&mut yielded), "the first poll that finds nothing yields");
        assert!(!again(&mut yielded), "the next one waits");
        assert!(!again(&mut yielded), "and so does every one after it");
    }
}

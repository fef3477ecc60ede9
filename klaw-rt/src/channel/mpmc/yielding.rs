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
//! **Except between two klaw tasks.** In a klaw task on a runtime with two workers or more, one
//! end of a channel with one sender and one receiver, whose other end waits in klaw tasks too,
//! joins its line at once. There the yield is what spreads the two ends: it leaves two tasks
//! queued when the run ends, so the executor wakes a sleeping worker, which takes one of them,
//! and from then on they run at once on two cores and every message's cache lines cross between
//! them. Waiting instead, the end is woken by the other's hand-off (`coop::hand_off`), which
//! klaw's executor leaves to the worker that made it (`runtime/executor/run.rs`): the two ends
//! take turns on one worker, as tokio keeps a waiting task woken by another on the waker's
//! worker. On klaw's runtime with two workers, 1M `u64` through `bounded(64)` between two tasks
//! went from 44–56 ns a message (13–22 in the host's faster phases) to 11.2–12.6, and `select!`
//! over four such channels, in a task, from 218–240 ns to 120–185 (`benches/README.md`,
//! **Channels on klaw's own runtime**). On a runtime's only worker nothing can spread, and
//! there a yield is cheaper than a wait (waiting took SPSC from 10.0 to 11.2 ns, and `select!`
//! from 32 to 35), so ends there still yield. A channel with more handles on either side keeps
//! its yield: its waits do not take turns (MPMC 4×4 measured the same either way, or slower
//! without yields), and neither does an end outside klaw tasks, whose other end (a `block_on`,
//! a foreign executor) the executor cannot bring onto its worker. Elsewhere (tokio tasks, a
//! `block_on`) nothing changes.
//!
//! A yield changes nothing of what a waiting task is promised: it is not in the line yet, so
//! the order of the line and the hand-off of wake-ups are those of the wait lists, and every
//! poll looks at the buffer again. Under the model checker nothing yields: each poll goes
//! straight to the wait the models check.

use crate::coop;

/// A poll of a receive or a send found nothing, while not in line. True if the future should
/// yield (its task is woken, and it returns `Pending` without joining the line): it has not
/// yet, which `yielded` records. False if it already did and should wait now, or if it runs in
/// a klaw task on a runtime with more than one worker and `hands_off` (asked only then: its
/// channel has one sender and one receiver, and the other end waits in klaw tasks).
#[inline]
pub(crate) fn again(yielded: &mut bool, hands_off: impl FnOnce() -> bool) -> bool {
    let hand_off = || coop::in_klaw_task() && !coop::is_sole_worker() && hands_off();
    if cfg!(klaw_loom) || *yielded || hand_off() {
        return false;
    }
    *yielded = true;
    true
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::again;
    use crate::channel::mpmc::chan::Chan;
    use crate::coop;

    #[test]
    fn a_future_yields_once_and_then_waits_on_every_later_poll() {
        let mut yielded = false;
        assert!(again(&mut yielded, || true), "the first poll that finds nothing yields");
        assert!(!again(&mut yielded, || true), "the next one waits");
        assert!(!again(&mut yielded, || true), "and so does every one after it");
    }

    /// A waker that counts its wake-ups: a yield wakes the task it returns `Pending` to.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What one poll of a receive or a send did: whether it yielded (its task woken, not in
    /// line) or joined the line without waking its task.
    #[derive(Debug, PartialEq)]
    enum Did {
        Yielded,
        Joined(usize),
    }

    /// Polls a fresh receive once on the empty `chan`, in a klaw task or not.
    fn receive_once(chan: &Chan<u64>, in_klaw_task: bool) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let (mut waiter, mut yielded) = (None, false);
        let mut poll =
            || chan.poll_recv(&mut waiter, &mut yielded, &mut Context::from_waker(&waker));
        let polled = if in_klaw_task { coop::with_task_budget(poll) } else { poll() };
        assert!(polled.is_pending(), "the channel is empty");
        did(&count, waiter, yielded)
    }

    /// Polls a fresh send once on the full `chan`, in a klaw task or not.
    fn send_once(chan: &Chan<u64>, in_klaw_task: bool) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let (mut value, mut waiter, mut yielded) = (Some(0), None, false);
        let mut cx = Context::from_waker(&waker);
        let mut poll = || chan.poll_send(&mut value, &mut waiter, &mut yielded, &mut cx);
        let polled = if in_klaw_task { coop::with_task_budget(poll) } else { poll() };
        assert!(matches!(polled, Poll::Pending), "the channel is full");
        did(&count, waiter, yielded)
    }

    fn did(count: &Count, waiter: Option<usize>, yielded: bool) -> Did {
        match (waiter, yielded) {
            (None, true) => {
                assert_eq!(count.0.load(Ordering::SeqCst), 1, "a yield wakes its task");
                Did::Yielded
            }
            (Some(key), false) => {
                assert_eq!(count.0.load(Ordering::SeqCst), 0, "a task in line is not woken");
                Did::Joined(key)
            }
            other => panic!("neither a yield nor a wait: {other:?}"),
        }
    }

    #[test]
    fn in_a_klaw_task_one_end_of_a_one_to_one_channel_waits_at_once_for_the_other() {
        let chan = Chan::<u64>::new(Some(1));
        assert_eq!(receive_once(&chan, false), Did::Yielded, "outside a klaw task it yields");
        let Did::Joined(key) = receive_once(&chan, true) else {
            panic!("in a klaw task it waits at once for the sender, as the sender does for it")
        };
        chan.leave_receivers(key);
        chan.try_push(1).unwrap(); // full
        let Did::Joined(key) = send_once(&chan, true) else {
            panic!("a send in a klaw task waits at once for a receiver that waits in klaw tasks")
        };
        chan.leave_senders(key);
    }

    #[test]
    fn a_channel_with_more_senders_or_whose_other_end_waits_outside_klaw_tasks_still_yields() {
        let chan = Chan::<u64>::new(Some(1));
        chan.add_sender();
        assert_eq!(receive_once(&chan, true), Did::Yielded, "two senders: it yields");
        chan.drop_sender(); // one sender again

        // The receiver waits outside klaw tasks (a `block_on`): a send in a klaw task yields
        // first, since what would take its place runs on another thread anyway.
        let Did::Joined(key) = receive_once_twice_outside(&chan) else { unreachable!() };
        chan.leave_receivers(key);
        chan.try_push(1).unwrap(); // full
        assert_eq!(send_once(&chan, true), Did::Yielded);
    }

    #[test]
    fn on_the_only_worker_of_a_runtime_a_one_to_one_channel_still_yields() {
        /// The mark is this thread's: another test may run on it next.
        struct Unmark;
        impl Drop for Unmark {
            fn drop(&mut self) {
                coop::set_sole_worker(false);
            }
        }
        coop::set_sole_worker(true);
        let _unmark = Unmark;
        let chan = Chan::<u64>::new(Some(1));
        assert_eq!(receive_once(&chan, true), Did::Yielded, "nothing to spread over");
    }

    /// A receive polled twice outside a klaw task: it yields, then joins the line there.
    fn receive_once_twice_outside(chan: &Chan<u64>) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let (mut waiter, mut yielded) = (None, false);
        let mut cx = Context::from_waker(&waker);
        assert!(chan.poll_recv(&mut waiter, &mut yielded, &mut cx).is_pending());
        assert!(chan.poll_recv(&mut waiter, &mut yielded, &mut cx).is_pending());
        Did::Joined(waiter.expect("the second poll joins the line"))
    }
}

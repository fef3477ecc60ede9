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
//! `benches/FINDINGS.md`), on a quiet machine: `select!` over four channels went from 1.1–1.6x to
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
//! **Except between two tasks of a pool.** In a task of a runtime with two workers or more
//! (klaw's, or tokio's with the `tokio` feature), one end of a channel with one sender and one
//! receiver, whose other end waits in tasks of the same executor kind (`crate::poller`), joins
//! its line at once. There the yield is what
//! spreads the two ends: it leaves two tasks queued when the run ends, so the executor wakes a
//! sleeping worker, which takes one of them, and from then on they run at once on two cores and
//! every message's cache lines cross between them. (tokio treats a task that wakes itself in its
//! poll as a yield: it queues it at the back and wakes another worker.) Waiting instead, the end
//! is woken by the other's hand-off, which stays on the waking worker: klaw's executor keeps it
//! for that worker to run next (`coop::hand_off`, `runtime/executor/run.rs`), as tokio puts a
//! task woken by one of its own tasks in that worker's LIFO slot. The two ends take turns on one
//! worker.
//! Measured (`benches/FINDINGS.md`, **Channels on klaw's own runtime** and **One-to-one channels
//! between tokio tasks**), 1M `u64` through `bounded(64)` between two tasks on 2 workers: on
//! klaw's runtime from 44–56 ns a message (13–22 in the host's faster phases) to 11.2–12.6,
//! and `select!` over four such channels, in a task, from 218–240 ns to 120–185; between tokio
//! tasks from 34 ns (the host's slow phase) to 14.6, and from 2.1x to 1.4x kanal's time in the
//! channel bench. On a runtime's only worker nothing can spread, and there a yield is cheaper
//! than a wait (on klaw's runtime waiting took SPSC from 10.0 to 11.2 ns, and `select!` from 32
//! to 35; on tokio's current-thread runtime from 8.8 to 10.1), so ends there still yield. A
//! channel with more handles on either side keeps its yield: its waits do not take turns (MPMC
//! 4×4 measured the same either way, or slower without yields), and neither does an end whose
//! other end waits outside tasks (a `block_on`, a blocking helper) or in another kind of
//! executor's tasks, which no executor can bring onto its worker.
//!
//! A yield changes nothing of what a waiting task is promised: it is not in the line yet, so
//! the order of the line and the hand-off of wake-ups are those of the wait lists, and every
//! poll looks at the buffer again. Under the model checker nothing yields: each poll goes
//! straight to the wait the models check.

use crate::poller::Poller;

/// A poll of a receive or a send found nothing, while not in line. True if the future should
/// yield (its task is woken, and it returns `Pending` without joining the line): it has not
/// yet, which `yielded` records. False if it already did and should wait now, or if it runs in
/// a task and `hands_off` for that kind of task (its channel has one sender and one receiver,
/// and the other end waits in tasks of the same kind), on a runtime with more than one worker
/// (`Poller::is_pool`).
#[inline]
pub(crate) fn again(yielded: &mut bool, hands_off: impl FnOnce(Poller) -> bool) -> bool {
    let hand_off = || {
        let here = Poller::here();
        here != Poller::Outside && hands_off(here) && here.is_pool()
    };
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
    use std::task::{Context, Wake, Waker};

    use super::again;
    use crate::channel::mpmc::chan::Chan;
    use crate::coop;

    #[test]
    fn a_future_yields_once_and_then_waits_on_every_later_poll() {
        let mut yielded = false;
        assert!(again(&mut yielded, |_| true), "the first poll that finds nothing yields");
        assert!(!again(&mut yielded, |_| true), "the next one waits");
        assert!(!again(&mut yielded, |_| true), "and so does every one after it");
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

    /// Where a poll runs.
    #[derive(Clone, Copy)]
    enum Place {
        /// Outside any task: a `block_on`.
        Outside,
        KlawTask,
        /// A tokio task on a current-thread runtime.
        #[cfg(feature = "tokio")]
        TokioCurrentThread,
        /// A tokio task on a multi-thread runtime with this many workers.
        #[cfg(feature = "tokio")]
        TokioWorkers(usize),
        /// tokio's `block_on` on a current-thread runtime: not a task.
        #[cfg(feature = "tokio")]
        TokioBlockOn,
    }

    /// Runs `poll` in `place`.
    fn polled_in<R: Send + 'static>(place: Place, poll: impl FnOnce() -> R + Send + 'static) -> R {
        #[cfg(feature = "tokio")]
        let current_thread = || tokio::runtime::Builder::new_current_thread().build().unwrap();
        match place {
            Place::Outside => poll(),
            Place::KlawTask => coop::with_task_budget(poll),
            #[cfg(feature = "tokio")]
            Place::TokioCurrentThread => {
                let runtime = current_thread();
                runtime.block_on(runtime.spawn(async { poll() })).unwrap()
            }
            #[cfg(feature = "tokio")]
            Place::TokioWorkers(workers) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                let runtime = builder.worker_threads(workers).build().unwrap();
                runtime.block_on(runtime.spawn(async { poll() })).unwrap()
            }
            #[cfg(feature = "tokio")]
            Place::TokioBlockOn => current_thread().block_on(async { poll() }),
        }
    }

    /// Polls a fresh receive once on the empty `chan`, in `place`.
    fn receive_once(chan: &Arc<Chan<u64>>, place: Place) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let chan = chan.clone();
        let (polled, waiter, yielded) = polled_in(place, move || {
            let (mut waiter, mut yielded) = (None, false);
            let mut cx = Context::from_waker(&waker);
            let polled = chan.poll_recv(&mut waiter, &mut yielded, false, &mut cx).map(drop);
            (polled, waiter, yielded)
        });
        assert!(polled.is_pending(), "the channel is empty");
        did(&count, waiter, yielded)
    }

    /// Polls a fresh send once on the full `chan`, in `place`.
    fn send_once(chan: &Arc<Chan<u64>>, place: Place) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let chan = chan.clone();
        let (polled, waiter, yielded) = polled_in(place, move || {
            let (mut value, mut waiter, mut yielded) = (Some(0), None, false);
            let mut cx = Context::from_waker(&waker);
            let polled = chan.poll_send(&mut value, &mut waiter, &mut yielded, &mut cx).map(drop);
            (polled, waiter, yielded)
        });
        assert!(polled.is_pending(), "the channel is full");
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
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        assert_eq!(receive_once(&chan, Place::Outside), Did::Yielded, "outside a task it yields");
        let Did::Joined(key) = receive_once(&chan, Place::KlawTask) else {
            panic!("in a klaw task it waits at once for the sender, as the sender does for it")
        };
        chan.leave_receivers(key);
        chan.try_push(1).unwrap(); // full
        let Did::Joined(key) = send_once(&chan, Place::KlawTask) else {
            panic!("a send in a klaw task waits at once for a receiver that waits in klaw tasks")
        };
        chan.leave_senders(key);
    }

    #[test]
    fn a_channel_with_more_senders_or_whose_other_end_waits_outside_tasks_still_yields() {
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        chan.add_sender();
        assert_eq!(receive_once(&chan, Place::KlawTask), Did::Yielded, "two senders: it yields");
        chan.drop_sender(); // one sender again

        // The receiver waits outside tasks (a `block_on`): a send in a klaw task yields
        // first, since what would take its place runs on another thread anyway.
        let Did::Joined(key) = receive_once_twice_outside(&chan) else { unreachable!() };
        chan.leave_receivers(key);
        chan.try_push(1).unwrap(); // full
        assert_eq!(send_once(&chan, Place::KlawTask), Did::Yielded);
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
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        assert_eq!(receive_once(&chan, Place::KlawTask), Did::Yielded, "nothing to spread over");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn in_a_tokio_task_on_two_workers_one_end_of_a_one_to_one_channel_waits_at_once() {
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        let Did::Joined(key) = receive_once(&chan, Place::TokioWorkers(2)) else {
            panic!("in a tokio task on two workers it waits at once, as in a klaw task")
        };
        chan.leave_receivers(key);
        chan.try_push(1).unwrap(); // full
        let Did::Joined(key) = send_once(&chan, Place::TokioWorkers(2)) else {
            panic!("a send in a tokio task waits at once for a receiver that waits in tokio tasks")
        };
        chan.leave_senders(key);
        // A klaw task cannot share a worker with a tokio task: a send there keeps its yield.
        assert_eq!(send_once(&chan, Place::KlawTask), Did::Yielded);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn in_a_tokio_task_on_one_thread_or_in_tokios_block_on_a_one_to_one_channel_still_yields() {
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        for place in [Place::TokioCurrentThread, Place::TokioWorkers(1), Place::TokioBlockOn] {
            assert_eq!(receive_once(&chan, place), Did::Yielded, "nothing to spread over");
        }
        // A receiver that waited in tokio's `block_on` is not in a task: a send yields first.
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let receiving = chan.clone();
        let waiter = polled_in(Place::TokioBlockOn, move || {
            let (mut waiter, mut yielded) = (None, false);
            let mut cx = Context::from_waker(&waker);
            assert!(receiving.poll_recv(&mut waiter, &mut yielded, false, &mut cx).is_pending());
            assert!(receiving.poll_recv(&mut waiter, &mut yielded, false, &mut cx).is_pending());
            waiter.expect("the second poll joins the line")
        });
        chan.leave_receivers(waiter);
        chan.try_push(1).unwrap(); // full
        assert_eq!(send_once(&chan, Place::TokioWorkers(2)), Did::Yielded);
    }

    /// A receive polled twice outside a task: it yields, then joins the line there.
    fn receive_once_twice_outside(chan: &Chan<u64>) -> Did {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let (mut waiter, mut yielded) = (None, false);
        let mut cx = Context::from_waker(&waker);
        assert!(chan.poll_recv(&mut waiter, &mut yielded, false, &mut cx).is_pending());
        assert!(chan.poll_recv(&mut waiter, &mut yielded, false, &mut cx).is_pending());
        Did::Joined(waiter.expect("the second poll joins the line"))
    }
}

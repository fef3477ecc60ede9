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

use std::task::Context;

use crate::poller::Poller;

/// How a receive or a send that found nothing yields (see [`again`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Yield {
    /// Its task is woken at once: queued behind what its executor has queued.
    Now,
    /// Its task is woken once its tokio worker has run what that worker has queued, as
    /// `tokio::task::yield_now` does (feature `tokio`), and no other worker is woken for it.
    BehindTokioQueue,
}

impl Yield {
    /// Wakes the task that yields, as chosen; the caller returns `Pending`.
    #[inline]
    pub(crate) fn wake(self, cx: &mut Context<'_>) {
        match self {
            Yield::Now => cx.waker().wake_by_ref(),
            #[cfg(all(feature = "tokio", not(klaw_loom)))]
            Yield::BehindTokioQueue => {
                use std::future::Future as _;
                // tokio's `yield_now` keeps the waker in its worker's list of deferred wake-ups
                // on its first poll (outside a worker it wakes at once); the future itself is
                // done with after that poll.
                let deferred = std::pin::pin!(tokio::task::yield_now());
                let _ = deferred.poll(cx);
            }
            #[cfg(not(all(feature = "tokio", not(klaw_loom))))]
            Yield::BehindTokioQueue => cx.waker().wake_by_ref(),
        }
    }
}

/// A poll of a receive or a send found nothing, while not in line. `Some` if the future should
/// yield (its task woken by [`Yield::wake`], it returns `Pending` without joining the line):
/// it has not yet, which `yielded` records. `None` if it already did and should wait now, or if
/// it runs in a task of a runtime with more than one worker (`Poller::is_pool`), its channel has
/// one sender and one receiver (`one_to_one`), and the other end waits in tasks of the same
/// kind (`other_waits_in`).
///
/// A one-to-one end in a tokio task of a pool whose other end waits elsewhere (a `block_on`, a
/// klaw task: `select!`'s producers, say) yields [`Yield::BehindTokioQueue`]: woken at once, its
/// task would go to the back of the worker's queue and wake a sleeping worker to take it, which
/// spreads the producers over both workers while the consumer they feed runs on a thread of its
/// own. Measured (`benches/FINDINGS.md`, **A channel's yield through tokio's `yield_now`,
/// decided**): `select!` over four channels fed by tokio tasks went from 1.16 to 0.79x
/// `tokio::select!` over tokio's mpsc on a quiet machine (medians of nine interleaved pairs),
/// and within its swings under load. MPMC ends keep [`Yield::Now`]: deferred, 4×4 went from
/// 0.98 to 1.11x kanal under load.
#[inline]
pub(crate) fn again(
    yielded: &mut bool,
    one_to_one: bool,
    other_waits_in: impl FnOnce(Poller) -> bool,
) -> Option<Yield> {
    if cfg!(klaw_loom) || *yielded {
        return None;
    }
    let mut how = Yield::Now;
    let here = Poller::here();
    if one_to_one && here != Poller::Outside {
        let hands_off = other_waits_in(here);
        if (hands_off || here == Poller::Tokio) && here.is_pool() {
            if hands_off {
                return None;
            }
            how = Yield::BehindTokioQueue;
        }
    }
    *yielded = true;
    Some(how)
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    use super::{Yield, again};
    use crate::channel::mpmc::chan::Chan;
    use crate::coop;

    #[test]
    fn a_future_yields_once_and_then_waits_on_every_later_poll() {
        let mut yielded = false;
        let mut again = || again(&mut yielded, true, |_| true);
        assert_eq!(again(), Some(Yield::Now), "the first poll that finds nothing yields");
        assert_eq!(again(), None, "the next one waits");
        assert_eq!(again(), None, "and so does every one after it");
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
        assert_eq!(send_once(&chan, Place::TokioWorkers(1)), Did::Yielded);
    }

    /// A one-to-one end in a tokio task of a pool, whose other end waits outside tasks (a
    /// `select!` consumer on a `block_on`, say), yields as `tokio::task::yield_now` does: its
    /// task is woken only once its worker has run what it has queued, not at once.
    #[cfg(feature = "tokio")]
    #[test]
    fn in_a_tokio_task_on_two_workers_a_yield_waits_behind_the_workers_queue() {
        let chan = Arc::new(Chan::<u64>::new(Some(1)));
        let receiver_outside = receive_once_twice_outside(&chan);
        let Did::Joined(waiter) = receiver_outside else { unreachable!() };
        chan.leave_receivers(waiter);
        chan.try_push(1).unwrap(); // full
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let sending = chan.clone();
        runtime
            .block_on(runtime.spawn(async move {
                let count = Arc::new(Count::default());
                let waker = Waker::from(count.clone());
                let (mut value, mut waiter, mut yielded) = (Some(0), None, false);
                let polled = sending.poll_send(
                    &mut value,
                    &mut waiter,
                    &mut yielded,
                    &mut Context::from_waker(&waker),
                );
                assert!(polled.is_pending() && waiter.is_none() && yielded, "it yields");
                assert_eq!(count.0.load(Ordering::SeqCst), 0, "not woken during its poll");
                // Deferred too, this task runs again only after the worker woke what it deferred.
                tokio::task::yield_now().await;
                assert_eq!(
                    count.0.load(Ordering::SeqCst),
                    1,
                    "woken once the worker ran its queue"
                );
            }))
            .unwrap();
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

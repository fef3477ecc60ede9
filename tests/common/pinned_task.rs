//! tokio-test's mock task for futures pinned in place (`task::spawn(..).poll()`, `is_woken()`):
//! [`Task`] polls a pinned future with its own waker and tells whether it was woken since the
//! last poll, and how many clones of its waker something else holds. With `poll_noop` and
//! `every_mpmc`, for the ports of tokio's channel tests (`ported_tokio_sync`,
//! `ported_tokio_sync_edges`). Included with `#[path = "common/pinned_task.rs"] mod pinned_task;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use klaw::channel::{Receiver, Sender, bounded, unbounded};

/// Above this capacity `bounded` keeps its messages in the growing buffer instead of the ring.
pub const GROWING: usize = 4097;

/// Counts the wake-ups of a waker, and (through the `Arc`'s count) the clones of it that exist.
#[derive(Default)]
struct Tracker {
    woken: AtomicUsize,
}

impl Wake for Tracker {
    fn wake(self: Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
    }
}

/// tokio-test's mock task, for a future pinned by the caller.
pub struct Task {
    tracker: Arc<Tracker>,
    waker: Waker,
}

impl Task {
    pub fn new() -> Self {
        let tracker = Arc::new(Tracker::default());
        let waker = Waker::from(tracker.clone());
        Task { tracker, waker }
    }

    /// Polls `future` with this task's waker; a wake-up before this poll is forgotten.
    pub fn poll<F: Future + ?Sized>(&self, future: Pin<&mut F>) -> Poll<F::Output> {
        self.forget_wakes();
        future.poll(&mut Context::from_waker(&self.waker))
    }

    /// The task's waker, to poll with by hand.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    pub fn is_woken(&self) -> bool {
        self.tracker.woken.load(Ordering::SeqCst) > 0
    }

    /// Forgets the wake-ups so far.
    pub fn forget_wakes(&self) {
        self.tracker.woken.store(0, Ordering::SeqCst);
    }

    /// Clones of this task's waker held by something other than the task itself.
    pub fn wakers_held_elsewhere(&self) -> usize {
        // The task holds the tracker and one waker.
        Arc::strong_count(&self.tracker) - 2
    }
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_noop<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// A bounded channel on the ring, one on the growing buffer, and an unbounded one.
pub fn every_mpmc<T>(ring_capacity: usize) -> [(&'static str, Sender<T>, Receiver<T>); 3] {
    let (ring_tx, ring_rx) = bounded(ring_capacity);
    let (list_tx, list_rx) = bounded(GROWING);
    let (unbounded_tx, unbounded_rx) = unbounded();
    [
        ("ring", ring_tx, ring_rx),
        ("growing", list_tx, list_rx),
        ("unbounded", unbounded_tx, unbounded_rx),
    ]
}

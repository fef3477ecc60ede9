//! A mock task, as tokio-test's `task::spawn`: polls a future by hand and records whether it was
//! woken; and `ready`/`pending`, its assertions. For the ports of tokio's sync tests
//! (`sync_primitives`, `ported_tokio_sync_primitives`).
//! Included with `#[path = "common/mock_task.rs"] mod mock_task;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts its wake-ups: one per "task", to tell which one a primitive woke.
#[derive(Default)]
pub struct WakeCount(AtomicUsize);

impl WakeCount {
    /// The wake-ups so far.
    pub fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `future` once with `count`'s waker.
pub fn poll_with<F: Future>(future: Pin<&mut F>, count: &Arc<WakeCount>) -> Poll<F::Output> {
    let waker = Waker::from(count.clone());
    future.poll(&mut Context::from_waker(&waker))
}

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future polled by hand, as tokio-test's `task::spawn`.
pub struct MockTask<F: Future> {
    pub future: Pin<Box<F>>,
    count: Arc<WakeCount>,
    waker: Waker,
}

pub fn mock<F: Future>(future: F) -> MockTask<F> {
    let count = Arc::new(WakeCount::default());
    MockTask { future: Box::pin(future), waker: Waker::from(count.clone()), count }
}

impl<F: Future> MockTask<F> {
    /// Polls once; forgets the wake-ups before it.
    pub fn poll(&mut self) -> Poll<F::Output> {
        self.count.0.store(0, Ordering::SeqCst);
        self.future.as_mut().poll(&mut Context::from_waker(&self.waker))
    }

    /// Woken since the last poll.
    pub fn is_woken(&self) -> bool {
        self.count.0.load(Ordering::SeqCst) > 0
    }
}

#[track_caller]
pub fn ready<T>(poll: Poll<T>) -> T {
    match poll {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("pending, expected ready"),
    }
}

#[track_caller]
pub fn pending<T>(poll: Poll<T>) {
    assert!(poll.is_pending(), "ready, expected pending");
}

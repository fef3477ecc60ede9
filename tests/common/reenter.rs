//! Wakers that come back into their channel when they are woken or dropped, wakers that count
//! their wake-ups, and a message whose `Clone` panics: the helpers of the channel tests
//! (`channel_edges`, `channel_api`).
//! Included with `#[path = "common/reenter.rs"] mod reenter;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A waker that runs `hook` when it is woken and when its last clone is dropped.
pub struct Reenter(Box<dyn Fn() + Send + Sync>);

impl Wake for Reenter {
    fn wake(self: Arc<Self>) {
        (self.0)();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        (self.0)();
    }
}

impl Drop for Reenter {
    fn drop(&mut self) {
        (self.0)();
    }
}

pub fn reentering(hook: impl Fn() + Send + Sync + 'static) -> Waker {
    Waker::from(Arc::new(Reenter(Box::new(hook))))
}

/// Runs `scenario` on its own thread: a deadlock fails the test instead of hanging it.
pub fn without_deadlock(scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        scenario();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the scenario deadlocked: a waker was dropped or woken under the channel's lock");
}

/// Polls `future` once with a waker that runs `hook`, then lets the channel hold the waker's
/// last clone, so that replacing or removing it runs `hook` too.
pub fn poll_with_hook<F: Future>(
    future: Pin<&mut F>,
    hook: impl Fn() + Send + Sync + 'static,
) -> Poll<F::Output> {
    let waker = reentering(hook);
    future.poll(&mut Context::from_waker(&waker))
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_noop<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls an MPMC `send` or `recv` with a waker that does nothing until it is done or waits in
/// its channel's line (its `Debug` says so): a send that finds no place, or a receive that
/// finds no message, yields to its task once before it joins the line.
pub fn poll_into_line<F: Future + std::fmt::Debug>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    for _ in 0..64 {
        if let Poll::Ready(output) = poll_noop(future.as_mut()) {
            return Poll::Ready(output);
        }
        if format!("{future:?}").contains("waiting: true") {
            return Poll::Pending;
        }
    }
    panic!("{future:?} never joined its channel's line");
}

/// A waker that counts how often it was woken.
pub struct Counted {
    pub waker: Waker,
    count: Arc<AtomicUsize>,
    wake: Arc<CountWake>,
}

impl Counted {
    pub fn woken(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Clones of the waker held elsewhere (tokio's `waker_ref_count` minus its own).
    #[allow(dead_code, reason = "not every test file that includes this module asks")]
    pub fn held_elsewhere(&self) -> usize {
        // The waker in `self.waker`, and `self.wake`.
        Arc::strong_count(&self.wake) - 2
    }

    pub fn cx(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }
}

struct CountWake(Arc<AtomicUsize>);

impl Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn counting_waker() -> Counted {
    let count = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(CountWake(count.clone()));
    Counted { waker: Waker::from(wake.clone()), count, wake }
}

/// A broadcast message whose `Clone` panics for message 1.
#[derive(Debug, PartialEq)]
pub struct PanicsOnClone(pub u32);

impl Clone for PanicsOnClone {
    fn clone(&self) -> Self {
        assert_ne!(self.0, 1, "clone of message 1");
        PanicsOnClone(self.0)
    }
}

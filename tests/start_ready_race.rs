//! `Scope::start` returns the value of a `ready` the child called just before it ended
//! (book/src/scopes.md: "returns once the child has called `ready.ready(value)`, with that
//! value"), though the child, on another thread, called it after `start` looked at the
//! readiness and ended before it looked at the child, in one poll. What would break it: a
//! `start` that looked at the readiness only before the child's end, so that it said `NotReady`
//! and dropped the value. A waker of the test's own makes that order certain, with no timing:
//! `start`'s second poll is given another waker, whose predecessor is dropped after the
//! readiness's last look, and that drop lets the child report and end. The handle `start`
//! returns then still gives the child's output: `start` waits for the end without taking it
//! (it took it, and the await of the handle panicked). (trio's
//! `test_nursery_start`: `start()` returns the value given to `task_status.started(value)`.)
#![allow(unsafe_code)]

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use common::in_task;
use klaw::scope::Ready;
use klaw::task::BlockingTask;

/// A waker whose wake-ups go on to the task's own waker, and whose first drop after it was
/// armed lets the started child report and end, then waits until that end is published.
struct Probe {
    /// The task's own waker.
    inner: Waker,
    /// Set right before the second poll of `start`.
    armed: AtomicBool,
    /// The interleaving ran.
    fired: AtomicBool,
    /// Tells the started child to call `ready` and return.
    go: Arc<AtomicBool>,
    /// A waker of this probe was woken (after the arming: only the child's handle still holds
    /// one, so this is the child's end, published).
    woken: AtomicBool,
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn probe_waker(probe: Arc<Probe>) -> Waker {
    let raw = RawWaker::new(Arc::into_raw(probe).cast::<()>(), &VTABLE);
    // SAFETY: every function of `VTABLE` takes `data` as a pointer made by `Arc::into_raw` of an
    // `Arc<Probe>`, each waker owning one strong count, as made here and in `clone`.
    unsafe { Waker::from_raw(raw) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<Probe>` pointer (see `probe_waker`); the clone owns the new
    // count.
    unsafe { Arc::increment_strong_count(data.cast::<Probe>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: as in `clone`; waking by value gives this waker's count back.
    let probe = unsafe { Arc::from_raw(data.cast::<Probe>()) };
    probe.woken.store(true, SeqCst);
    probe.inner.wake_by_ref();
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: as in `clone`; the waker keeps the count while it is borrowed.
    let probe = unsafe { &*data.cast::<Probe>() };
    probe.woken.store(true, SeqCst);
    probe.inner.wake_by_ref();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: as in `clone`; dropping gives this waker's count back.
    let probe = unsafe { Arc::from_raw(data.cast::<Probe>()) };
    if probe.armed.swap(false, SeqCst) {
        // The readiness was just looked at and found empty; the child's handle is looked at
        // next. Meanwhile the child calls `ready(7)`, and ends.
        probe.fired.store(true, SeqCst);
        probe.go.store(true, SeqCst);
        let began = Instant::now();
        while !probe.woken.load(SeqCst) && began.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

#[test]
fn a_ready_the_child_called_before_it_ended_is_what_start_returns() {
    in_task(|| async {
        let (fired, outcome) = klaw::scope!(|s| {
            let go = Arc::new(AtomicBool::new(false));
            let child_go = go.clone();
            let mut start = pin!(s.start(move |ready: Ready<u32>| {
                BlockingTask::new(move || {
                    let began = Instant::now();
                    while !child_go.load(SeqCst) && began.elapsed() < Duration::from_secs(10) {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    ready.ready(7); // ready first...
                    1u32 // ...then the end
                })
            }));
            let inner = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
            let probe = Arc::new(Probe {
                inner,
                armed: AtomicBool::new(false),
                fired: AtomicBool::new(false),
                go: go.clone(),
                woken: AtomicBool::new(false),
            });
            // First poll, with the probe's waker: `start` spawns the child (which waits for
            // `go`), and the readiness and the child's handle each keep a probe waker.
            let first_pending = {
                let waker = probe_waker(probe.clone());
                let mut cx = Context::from_waker(&waker);
                start.as_mut().poll(&mut cx).is_pending()
            };
            assert!(first_pending, "the child waits for `go`: start cannot have returned");
            probe.woken.store(false, SeqCst);
            probe.armed.store(true, SeqCst);
            // Second poll, with the task's own waker: the readiness replaces the probe's waker
            // and drops it after its last look, which runs the interleaving.
            let second = std::future::poll_fn(|cx| Poll::Ready(start.as_mut().poll(cx))).await;
            go.store(true, SeqCst); // in case the interleaving did not run: never hang
            let outcome = match second {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => start.await,
            };
            let fired = probe.fired.load(SeqCst);
            // The handle `start` gives back with the value still gives the child's own output
            // when awaited, as the book's `Ok(server.await?)` does.
            let outcome = match outcome {
                Ok((value, child)) => Ok((value, child.await.map_err(|error| format!("{error}")))),
                Err(error) => Err(format!("{error}")),
            };
            Ok((fired, outcome))
        })
        .unwrap();
        assert!(fired, "setup: the second poll did not replace the readiness's waker");
        let (value, joined) = outcome.unwrap_or_else(|error| {
            panic!("the child called `ready(7)` and only then ended, yet `start` failed: {error}")
        });
        assert_eq!(value, 7, "`start` did not return the value of the child's `ready`");
        assert_eq!(joined, Ok(1), "the handle `start` returned lost the child's output");
    });
}

//! A runtime with a paused clock (`Builder::start_paused`): where idle is detected.
//!
//! Such a runtime has one worker, which runs [`drive`] instead of `Executor::run`: it runs every
//! runnable task, and when there is none it asks the clock to move
//! ([`VirtualClock::try_jump`]). The clock moves only if nothing *holds* it: a `block_on` future
//! being polled or woken ([`block_on`] below keeps its hold), a blocking-pool job queued or
//! running (the pool keeps one per job). One worker is what makes "nothing is runnable" a fact
//! the worker can check (the executor's queue is empty, and the worker is the only one popping
//! it), and the runs repeatable: the tasks a jump wakes run in deadline order, one at a time.
//!
//! What klaw cannot see does not hold the clock: a thread it did not start, or I/O in flight. A
//! task waiting on those counts as waiting, and the clock may jump past its timers meanwhile.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use crate::runtime::executor::Executor;
use futures_lite::future;

use crate::runtime::Workers;
use crate::sync::{Mutex, Ordering, SetOnce};
use crate::time::clock::{Hold, Step, VirtualClock};

/// Tasks run between two looks at the reactor and at the stop flag.
const BATCH: usize = 200;

/// The worker of a paused runtime: runs tasks until told to stop, moving the clock whenever the
/// runtime is idle.
pub(crate) async fn drive(executor: &Executor, clock: &VirtualClock, workers: &Workers) {
    loop {
        let mut ran = 0;
        while ran < BATCH && executor.try_tick() {
            ran += 1;
        }
        if ran == BATCH {
            // Let the reactor deliver I/O, and the stop flag be seen.
            future::yield_now().await;
            continue;
        }
        if workers.stop.load(Ordering::Acquire) {
            return;
        }
        let released = clock.released();
        match clock.try_jump(|| executor.try_tick()) {
            Step::Busy | Step::Moved => continue,
            Step::Held | Step::NoTimer => {}
        }
        // Wait for a task to become runnable (then run it), the last hold to end, a first timer
        // (registered from outside the runtime), or the stop.
        future::or(future::or(executor.tick(), released), workers.stopped()).await;
    }
}

thread_local! {
    /// The paused `block_on` futures being polled on this thread, innermost last.
    static POLLED: RefCell<Vec<Arc<Main>>> = const { RefCell::new(Vec::new()) };
}

/// `Runtime::block_on` under a paused clock: the future holds the clock from the moment it is
/// woken until its poll returns `Pending` without having been woken again. A `block_on` inside
/// the poll of another of the same clock suspends that one's hold while it runs: the outer
/// future is not running then, it waits for the inner one, which may wait for the clock.
pub(crate) fn block_on<F: Future>(clock: &Arc<VirtualClock>, future: F) -> F::Output {
    let main = Arc::new(Main {
        state: Mutex::new(MainState {
            hold: Some(clock.hold()),
            woken: false,
            done: false,
            suspended: false,
        }),
        clock: clock.clone(),
        waker: SetOnce::new(),
    });
    // Released however this ends, a panic included; a late wake no longer holds.
    let _release = Release(main.clone());
    // After this one's hold is taken, and dropped before it is released: the clock is held
    // throughout. Only an outer `block_on` of the same clock: another runtime's clock is not
    // this one's to move.
    // The innermost of the same clock, though another runtime's `block_on` may sit between.
    let outer = POLLED.with(|polled| {
        polled.borrow().iter().rev().find(|outer| Arc::ptr_eq(&outer.clock, clock)).cloned()
    });
    let _outer = outer.map(Suspended::new);
    let mut future = pin!(future);
    let mut waker = None;
    async_io::block_on(std::future::poll_fn(|cx| {
        let waker = waker.get_or_insert_with(|| {
            // The same waker for the whole `block_on`: it unparks this thread.
            let _ = main.waker.set(cx.waker().clone());
            Waker::from(main.clone())
        });
        main.polling();
        let polled = {
            let _polled = Polled::enter(&main);
            future.as_mut().poll(&mut Context::from_waker(waker))
        };
        if polled.is_pending() {
            main.waiting();
        }
        polled
    }))
}

/// `main` is polled on this thread while it lives.
struct Polled;

impl Polled {
    fn enter(main: &Arc<Main>) -> Self {
        POLLED.with(|polled| polled.borrow_mut().push(main.clone()));
        Polled
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        let _ = POLLED.try_with(|polled| polled.borrow_mut().pop());
    }
}

/// An outer `block_on`'s future, whose hold is suspended while an inner one runs in its poll.
struct Suspended(Arc<Main>);

impl Suspended {
    fn new(outer: Arc<Main>) -> Self {
        let mut state = outer.state.lock();
        state.suspended = true;
        let hold = state.hold.take();
        drop(state);
        drop(hold); // outside the lock: releasing may notify the worker
        Suspended(outer)
    }
}

impl Drop for Suspended {
    fn drop(&mut self) {
        // Back in the outer future's poll, which holds the clock again.
        let mut state = self.0.state.lock();
        state.suspended = false;
        if state.hold.is_none() && !state.done {
            state.hold = Some(self.0.clock.hold());
        }
    }
}

/// The future of a `block_on`, as the clock sees it.
struct Main {
    state: Mutex<MainState>,
    clock: Arc<VirtualClock>,
    /// `async_io::block_on`'s waker, which unparks the thread.
    waker: SetOnce<Waker>,
}

struct MainState {
    /// Held while the future is polled, or woken and not polled yet.
    hold: Option<Hold>,
    /// Woken since its poll began: it will be polled again.
    woken: bool,
    /// `block_on` has returned: a wake holds nothing.
    done: bool,
    /// Its poll waits in a `block_on` inside it (see [`Suspended`]): a wake holds nothing yet.
    suspended: bool,
}

impl Main {
    fn polling(&self) {
        let mut state = self.state.lock();
        state.woken = false;
        if state.hold.is_none() {
            state.hold = Some(self.clock.hold());
        }
    }

    fn waiting(&self) {
        let mut state = self.state.lock();
        let released = if state.woken { None } else { state.hold.take() };
        drop(state);
        drop(released); // outside the lock: releasing may notify the worker
    }
}

impl Wake for Main {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if !state.done {
            state.woken = true;
            if state.hold.is_none() && !state.suspended {
                state.hold = Some(self.clock.hold());
            }
        }
        drop(state);
        if let Some(waker) = self.waker.get() {
            waker.wake_by_ref();
        }
    }
}

/// Ends a `block_on`'s hold for good.
struct Release(Arc<Main>);

impl Drop for Release {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.done = true;
        let hold = state.hold.take();
        drop(state);
        drop(hold);
    }
}

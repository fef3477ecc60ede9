//! The synchronisation primitives of the concurrency core.
//!
//! Under `--cfg klaw_loom` these are loom's, so the model checker explores every interleaving of
//! the code that uses them (`RUSTFLAGS="--cfg klaw_loom" cargo test -p klaw-rt --lib loom`).
//! Otherwise they are std's. The cfg has its own name because some dependencies react to a plain
//! `cfg(loom)`.
//!
//! `Arc` is deliberately std's in both builds: the core relies on `Arc<dyn Trait>` coercion, which
//! loom's `Arc` lacks, and no invariant of ours depends on reference-count ordering (loom tests
//! drop the last reference after joining their threads).

mod lock;
pub(crate) use lock::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

#[cfg(klaw_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(not(klaw_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};

/// `UnsafeCell` with loom's closure-based API, so every access is visible to the model checker.
#[cfg(klaw_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure-based API, so the same code compiles in both builds.
#[cfg(not(klaw_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

#[cfg(not(klaw_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(klaw_loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Gives shared access through a raw pointer; the caller upholds the aliasing rules.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives exclusive access through a raw pointer; the caller upholds the aliasing rules.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

mod once;
pub(crate) use once::SetOnce;

pub(crate) mod wakers;

#[cfg(not(klaw_loom))]
mod spin;

/// The channel core's lock: a spin lock in normal builds, loom's mutex under the model checker.
#[cfg(not(klaw_loom))]
pub(crate) use spin::SpinMutex;

/// The channel core's lock: a spin lock in normal builds, loom's mutex under the model checker.
#[cfg(klaw_loom)]
pub(crate) struct SpinMutex<T>(loom::sync::Mutex<T>);

#[cfg(klaw_loom)]
impl<T> SpinMutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

#[cfg(not(klaw_loom))]
/// Doublings before the backoff yields the thread: 127 `pause`s in all, about 4 µs here.
const SPIN_STEPS: u32 = 7;

/// Backoff for the waits of the channel ring: another thread is half-way through a push or a pop,
/// or won the CAS this one lost. It spins, doubling each time, for about 4 µs, then lets the
/// thread go. Backing off under contention keeps two cores from taking turns on the ring's cache
/// lines; yielding soon after matters on a busy machine, where the other thread was often
/// preempted half-way and spinning only burns the time slice it needs. (It spun 30 µs before:
/// with a CPU hog beside `benches/channel`, SPSC took 2.0-2.2x kanal's time in three runs out
/// of three; with 4 µs, 0.9-1.6x in five runs out of seven and 2.2x in two.) Under loom, a
/// yield, so the model checker runs the other thread.
#[derive(Debug)]
pub(crate) struct Backoff {
    #[cfg(not(klaw_loom))]
    step: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            #[cfg(not(klaw_loom))]
            step: 0,
        }
    }

    pub(crate) fn spin(&mut self) {
        #[cfg(not(klaw_loom))]
        if self.step < SPIN_STEPS {
            for _ in 0..(1u32 << self.step) {
                std::hint::spin_loop();
            }
            self.step += 1;
            return;
        }
        // The other thread may have been preempted mid-way: let it run.
        yield_thread();
    }
}

/// Lets the OS run another thread on this one's CPU; under loom, lets the model checker run
/// another thread.
pub(crate) fn yield_thread() {
    #[cfg(klaw_loom)]
    loom::thread::yield_now();
    #[cfg(not(klaw_loom))]
    std::thread::yield_now();
}

/// One waker, registered by the future that waits and taken by whoever wakes it. The waker is
/// never cloned, dropped or woken while the lock is held: an executor's waker may run code that
/// comes back here.
#[derive(Debug, Default)]
pub(crate) struct WakerSlot(Mutex<Option<std::task::Waker>>);

impl WakerSlot {
    fn lock(&self) -> MutexGuard<'_, Option<std::task::Waker>> {
        self.0.lock()
    }

    /// Stores `waker` for the next [`wake`](Self::wake) (unless an equivalent one is stored).
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        if self.lock().as_ref().is_some_and(|stored| stored.will_wake(waker)) {
            return;
        }
        let fresh = waker.clone();
        let replaced = self.lock().replace(fresh);
        drop(replaced); // outside the lock
    }

    /// Takes the stored waker, if any, and wakes it.
    pub(crate) fn wake(&self) {
        let waker = self.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

//! A spin lock for critical sections of a few dozen instructions (the channel core).
//!
//! Why not `std::sync::Mutex`: under contention it parks waiters with a futex, and on a busy
//! channel the syscalls cost more than the whole critical section. This lock spins with
//! backoff, then yields the thread, and never sleeps in the kernel. It is only sound to use
//! where no code under the lock can block or run user callbacks.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct SpinMutex<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `value`, so sharing the mutex shares a
// `T` only by moving access between threads: `T: Send` suffices, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for SpinMutex<T> {}
// SAFETY: the mutex owns its `T`.
unsafe impl<T: Send> Send for SpinMutex<T> {}

impl<T> SpinMutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            if !self.locked.swap(true, Ordering::Acquire) {
                return SpinGuard { mutex: self };
            }
            // Wait for it to look free before trying again, so waiters do not fight over the
            // cache line with writes. About 20 µs of spinning (127 `pause`s, then 64 per look),
            // then yields: past that the holder was most likely preempted.
            while self.locked.load(Ordering::Relaxed) {
                if spins < 16 {
                    for _ in 0..(1u32 << spins.min(6)) {
                        std::hint::spin_loop();
                    }
                    spins += 1;
                } else {
                    // The holder may have been preempted: let it run.
                    std::thread::yield_now();
                }
            }
        }
    }
}

pub(crate) struct SpinGuard<'a, T> {
    mutex: &'a SpinMutex<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock, so no other reference to the value exists.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock, and `&mut self` makes this the only access.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.locked.store(false, Ordering::Release);
    }
}

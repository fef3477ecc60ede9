//! `Mutex`: an async lock around a value, on klaw's own fair [`Semaphore`] with one permit, as
//! tokio's is on its semaphore.
//!
//! The value is in an `UnsafeCell`; the one permit is what makes its borrows sound (see each
//! `SAFETY`). The semaphore takes every waker out of its lock and wakes or drops it after, so a
//! waker may come back into the mutex (`Semaphore`'s module).
#![allow(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::primitives::acquire::{Acquire, granted};
use crate::primitives::permit::SemaphorePermit;
use crate::primitives::semaphore::{Place, Semaphore};
use crate::sync::UnsafeCell;

mod mapped;

pub use mapped::{MappedMutexGuard, OwnedMappedMutexGuard};

/// A lock around a value that tasks wait for without blocking their thread, so a guard may be
/// held across an `.await`. If the guard is never held across an `.await`, `std::sync::Mutex`
/// is simpler and faster (see the book's chapter on locks).
///
/// Works under any executor. **Fair, first come, first served** (it is built on klaw's
/// [`Semaphore`](crate::primitives::Semaphore), with one permit): a waiting `lock()` gets the
/// mutex before any that came later, and `try_lock` does not jump the line.
///
/// **Cancel safety:** dropping a [`lock`](Self::lock) future loses nothing (see there); a task
/// cancelled while holding a guard drops it, which unlocks. The value stays as the task left it:
/// a lock does not roll back a half-made change.
///
/// Making one allocates nothing (the value and the line of waiters live in the mutex itself); a
/// `lock()` that has to wait takes a place in the line.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::Mutex;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let count = Arc::new(Mutex::new(0));
///     klaw::scope!(|s| {
///         for _ in 0..10 {
///             let count = count.clone();
///             s.spawn(async move {
///                 let mut guard = count.lock().await;
///                 klaw::time::sleep(std::time::Duration::from_micros(10)).await; // held across an await
///                 *guard += 1;
///             });
///         }
///         Ok(())
///     })?;
///     assert_eq!(*count.lock().await, 10);
///     Ok(())
/// }
/// ```
pub struct Mutex<T: ?Sized> {
    /// One permit: the guard that holds it is the only way to the value.
    permit: Semaphore,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through the one guard that holds the permit, as with std's
// `Mutex`: sending the mutex sends the value, and sharing it lets any thread take `&mut T`, one
// at a time (`T: Send` for both).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A mutex around `value`, unlocked.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(5);
    /// assert_eq!(*mutex.try_lock().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Self {
        Mutex { permit: Semaphore::new(1), value: UnsafeCell::new(value) }
    }

    /// The value, taken out of the mutex.
    ///
    /// ```
    /// assert_eq!(klaw::sync::Mutex::new(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock; the guard unlocks when dropped.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it leaves the line, and if the mutex had been handed
    /// to it (an unlock gives the mutex to the first in line and wakes it), the mutex passes on
    /// to the next waiting `lock()`. Until then, a future that was handed the mutex holds it
    /// even before it is polled again, as tokio's does: keep a `lock()` you stop polling only as
    /// long as you would keep its guard.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(1);
    /// klaw::runtime::block_on(async {
    ///     *mutex.lock().await += 1;
    ///     assert_eq!(*mutex.lock().await, 2);
    /// });
    /// ```
    pub fn lock(&self) -> Lock<'_, T> {
        Lock { acquire: self.permit.acquire(), mutex: self }
    }

    /// Locks from blocking code (a thread outside any runtime, a blocking task), waiting in line
    /// as [`lock`](Self::lock) does. Like klaw's other blocking helpers it blocks its thread,
    /// so inside an async task it would stall that task's worker: await `lock()` there.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(1));
    /// let guard = mutex.try_lock_owned().unwrap();
    /// let other = mutex.clone();
    /// let thread = std::thread::spawn(move || *other.blocking_lock() += 1);
    /// drop(guard); // the thread gets the lock now
    /// thread.join().unwrap();
    /// assert_eq!(*mutex.try_lock().unwrap(), 2);
    /// ```
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        crate::poller::block_outside_tasks(self.lock())
    }

    /// [`blocking_lock`](Self::blocking_lock) for a mutex in an `Arc`: a `'static` guard.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(1));
    /// let guard: klaw::sync::OwnedMutexGuard<u32> = mutex.blocking_lock_owned();
    /// assert!(mutex.try_lock().is_none());
    /// ```
    pub fn blocking_lock_owned(self: &Arc<Self>) -> OwnedMutexGuard<T> {
        crate::poller::block_outside_tasks(self.lock_owned())
    }

    /// The lock if it is free now and nobody waits for it.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(1);
    /// let guard = mutex.try_lock().unwrap();
    /// assert!(mutex.try_lock().is_none());
    /// drop(guard);
    /// assert!(mutex.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let permit = self.permit.try_acquire().ok()?;
        Some(MutexGuard { mutex: self, _permit: permit, not_auto: PhantomData })
    }

    /// [`lock`](Self::lock) for a mutex in an `Arc`: the guard holds the `Arc`, so it is
    /// `'static` and can move into a spawned task (and so can the future).
    ///
    /// # Cancel safety
    /// As [`lock`](Self::lock): dropping the future loses nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(1));
    /// let guard: klaw::sync::OwnedMutexGuard<u32> = klaw::runtime::block_on(mutex.lock_owned());
    /// std::thread::spawn(move || assert_eq!(*guard, 1)).join().unwrap();
    /// assert!(mutex.try_lock().is_some());
    /// ```
    pub fn lock_owned(self: &Arc<Self>) -> LockOwned<T> {
        LockOwned { mutex: self.clone(), place: Place::new(1) }
    }

    /// [`try_lock`](Self::try_lock) for a mutex in an `Arc`: a `'static` guard.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(1));
    /// let guard = mutex.try_lock_owned().unwrap();
    /// assert!(mutex.try_lock_owned().is_none());
    /// ```
    pub fn try_lock_owned(self: &Arc<Self>) -> Option<OwnedMutexGuard<T>> {
        self.permit.try_acquire().ok()?.detach();
        Some(OwnedMutexGuard { mutex: self.clone(), not_auto: PhantomData })
    }

    /// The value, borrowed mutably: no locking, the `&mut` proves nobody else holds the mutex.
    ///
    /// ```
    /// let mut mutex = klaw::sync::Mutex::new(1);
    /// *mutex.get_mut() = 2;
    /// assert_eq!(mutex.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self`: no guard exists (each borrows the mutex or holds an `Arc` of it,
        // which `&mut Mutex` excludes), so nothing else reaches the value.
        self.value.with_mut(|value| unsafe { &mut *value })
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => out.field("data", &&*guard),
            None => out.field("data", &format_args!("<locked>")),
        };
        out.finish()
    }
}

/// The future of [`Mutex::lock`].
///
/// # Cancel safety
/// Dropping it loses nothing: it leaves the line, and if the mutex had been handed to it, it
/// goes on to the next in line.
///
/// ```
/// let mutex = klaw::sync::Mutex::new(1);
/// let lock: klaw::sync::Lock<'_, u32> = mutex.lock();
/// assert_eq!(*klaw::runtime::block_on(lock), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Lock<'a, T: ?Sized> {
    acquire: Acquire<'a>,
    mutex: &'a Mutex<T>,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let permit = granted(std::task::ready!(Pin::new(&mut self.acquire).poll(cx)));
        Poll::Ready(MutexGuard { mutex: self.mutex, _permit: permit, not_auto: PhantomData })
    }
}

impl<T: ?Sized> FusedFuture for Lock<'_, T> {
    fn is_terminated(&self) -> bool {
        self.acquire.is_terminated()
    }
}

/// The future of [`Mutex::lock_owned`]: `'static`, it holds the mutex's `Arc`.
///
/// # Cancel safety
/// Dropping it loses nothing, as [`Lock`]'s.
///
/// ```
/// use std::sync::Arc;
/// let mutex = Arc::new(klaw::sync::Mutex::new(1));
/// let lock: klaw::sync::LockOwned<u32> = mutex.lock_owned();
/// assert_eq!(*klaw::runtime::block_on(lock), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct LockOwned<T: ?Sized> {
    mutex: Arc<Mutex<T>>,
    place: Place,
}

impl<T: ?Sized> Future for LockOwned<T> {
    type Output = OwnedMutexGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // An `AcquireOwned` would need the semaphore in an `Arc` of its own: the future keeps its
        // place in the line itself, and the guard gives the permit back (`give_back`).
        let this = self.get_mut();
        granted(std::task::ready!(this.mutex.permit.poll_acquire(&mut this.place, cx)));
        Poll::Ready(OwnedMutexGuard { mutex: this.mutex.clone(), not_auto: PhantomData })
    }
}

impl<T: ?Sized> Drop for LockOwned<T> {
    fn drop(&mut self) {
        self.mutex.permit.leave(&mut self.place);
    }
}

impl<T: ?Sized> FusedFuture for LockOwned<T> {
    fn is_terminated(&self) -> bool {
        self.place.done
    }
}

macro_rules! future_debug {
    ($($name:ident<$($lt:lifetime,)? T>),*) => {$(
        impl<$($lt,)? T: ?Sized> fmt::Debug for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}

future_debug!(Lock<'a, T>, LockOwned<T>);

/// The lock of a [`Mutex`], held: gives the value; dropping it unlocks.
///
/// ```
/// let mutex = klaw::sync::Mutex::new(vec![1]);
/// let mut guard: klaw::sync::MutexGuard<'_, Vec<u32>> = mutex.try_lock().unwrap();
/// guard.push(2);
/// assert_eq!(*guard, [1, 2]);
/// ```
///
/// # Threads
/// It is `Send` if `T` is, and `Sync` only if `T` is, since threads that share it share the
/// `&T` it gives:
/// ```compile_fail
/// fn shared_between_threads<G: Sync>() {}
/// shared_between_threads::<klaw::sync::MutexGuard<'static, std::cell::Cell<u32>>>();
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// The mutex's one permit: no other guard exists while it is held.
    _permit: SemaphorePermit<'a>,
    /// Neither `Send` nor `Sync` by itself: the impls below say when.
    not_auto: PhantomData<*mut T>,
}

/// The lock of a [`Mutex`] in an `Arc`, held: `'static`, it holds the `Arc`. Dropping it
/// unlocks.
///
/// ```
/// use std::sync::Arc;
/// let mutex = Arc::new(klaw::sync::Mutex::new(1));
/// let mut guard: klaw::sync::OwnedMutexGuard<u32> = mutex.try_lock_owned().unwrap();
/// *guard += 1;
/// assert!(Arc::ptr_eq(klaw::sync::OwnedMutexGuard::mutex(&guard), &mutex));
/// drop(guard);
/// assert_eq!(*mutex.try_lock().unwrap(), 2);
/// ```
///
/// # Threads
/// It is `Send` if `T` is, and `Sync` only if `T` is both `Send` and `Sync`: threads that share
/// it share [`mutex`](Self::mutex), an `Arc` one of them may clone and be the last to drop, so
/// `T` must be free to move to it (a `std::sync::MutexGuard` is `Sync` but must not move):
/// ```compile_fail
/// fn shared_between_threads<G: Sync>() {}
/// shared_between_threads::<klaw::sync::OwnedMutexGuard<std::sync::MutexGuard<'static, ()>>>();
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct OwnedMutexGuard<T: ?Sized> {
    /// Holds the mutex's one permit, detached from any `SemaphorePermit`: its drop gives it back.
    mutex: Arc<Mutex<T>>,
    /// Neither `Send` nor `Sync` by itself: the impls below say when.
    not_auto: PhantomData<*mut T>,
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard locks. (An associated function, so it does not hide a method of
    /// `T` of the same name.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(()));
    /// let guard = mutex.try_lock_owned().unwrap();
    /// assert!(Arc::ptr_eq(klaw::sync::OwnedMutexGuard::mutex(&guard), &mutex));
    /// ```
    pub fn mutex(guard: &Self) -> &Arc<Mutex<T>> {
        &guard.mutex
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.mutex.permit.give_back(1);
    }
}

macro_rules! guard_impls {
    ($($name:ident<$($lt:lifetime,)? T>),*) => {$(
        impl<$($lt,)? T: ?Sized> Deref for $name<$($lt,)? T> {
            type Target = T;

            fn deref(&self) -> &T {
                // SAFETY: the guard holds the mutex's one permit, so no other guard exists, and
                // the `&T` borrows this guard, which cannot lend a `&mut T` meanwhile.
                self.mutex.value.with(|value| unsafe { &*value })
            }
        }

        impl<$($lt,)? T: ?Sized> DerefMut for $name<$($lt,)? T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: the guard holds the mutex's one permit, so no other guard exists, and
                // `&mut self` makes this the one borrow through it.
                self.mutex.value.with_mut(|value| unsafe { &mut *value })
            }
        }

        impl<$($lt,)? T: ?Sized + fmt::Debug> fmt::Debug for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($lt,)? T: ?Sized + fmt::Display> fmt::Display for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    )*};
}

guard_impls!(MutexGuard<'a, T>, OwnedMutexGuard<T>);

// SAFETY: a guard lends `&mut T` to whichever thread holds it (`T: Send` to move it there) and
// `&T` to every thread that shares it (`T: Sync`); the permit it holds is not tied to a thread.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}
// SAFETY: as `MutexGuard`; moving it also moves an `Arc<Mutex<T>>` (`T: Send`, already needed).
unsafe impl<T: ?Sized + Send> Send for OwnedMutexGuard<T> {}
// SAFETY: a shared owned guard also lends its `Arc<Mutex<T>>` (`OwnedMutexGuard::mutex`), which
// another thread may clone and so own, and drop `T` there: `T: Send` as well as `T: Sync`.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedMutexGuard<T> {}

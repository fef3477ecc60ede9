//! `Mutex`: an async lock around a value, on smol-rs's `async-lock`.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A lock around a value that tasks wait for without blocking their thread, so a guard may be
/// held across an `.await`. If the guard is never held across an `.await`, `std::sync::Mutex`
/// is simpler and faster (see the book's chapter on locks).
///
/// Built on smol-rs's `async-lock`; works under any executor. **Fairness:** not strictly first
/// come, first served: a `lock()` that has waited for more than half a millisecond makes the
/// mutex hand over fairly until it has the lock, so no waiter is starved.
///
/// **Cancel safety:** dropping a [`lock`](Self::lock) future loses nothing (see there); a task
/// cancelled while holding a guard drops it, which unlocks. The value stays as the task left it:
/// a lock does not roll back a half-made change.
///
/// One allocation per mutex: the value lives behind an `Arc`, which is what lets
/// [`lock_owned`](Self::lock_owned) give a `'static` guard.
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
    inner: Arc<async_lock::Mutex<T>>,
}

impl<T> Mutex<T> {
    /// A mutex around `value`, unlocked.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(5);
    /// assert_eq!(*mutex.try_lock().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Self {
        Mutex { inner: Arc::new(async_lock::Mutex::new(value)) }
    }

    /// The value, taken out of the mutex.
    ///
    /// ```
    /// assert_eq!(klaw::sync::Mutex::new(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        // Owned guards and their futures hold the `Arc<Mutex>` too, so none exists now.
        Arc::into_inner(self.inner).expect("no owned guard outlives its mutex").into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock; the guard unlocks when dropped.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing. It holds no lock (the lock is taken in the same poll
    /// that returns the guard), and if the mutex had been handed to it (it was woken but not
    /// polled again), the wake-up passes on to the next waiting `lock()`.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(1);
    /// klaw::runtime::block_on(async {
    ///     *mutex.lock().await += 1;
    ///     assert_eq!(*mutex.lock().await, 2);
    /// });
    /// ```
    pub fn lock(&self) -> Lock<'_, T> {
        Lock { inner: self.inner.lock() }
    }

    /// The lock if it is free now.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(1);
    /// let guard = mutex.try_lock().unwrap();
    /// assert!(mutex.try_lock().is_none());
    /// drop(guard);
    /// assert!(mutex.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner.try_lock().map(MutexGuard)
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
        LockOwned { inner: self.inner.lock_arc(), mutex: Some(self.clone()) }
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
        let guard = self.inner.try_lock_arc()?;
        Some(OwnedMutexGuard { guard, mutex: self.clone() })
    }

    /// The value, borrowed mutably: no locking, the `&mut` proves nobody else holds the mutex.
    ///
    /// ```
    /// let mut mutex = klaw::sync::Mutex::new(1);
    /// *mutex.get_mut() = 2;
    /// assert_eq!(mutex.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // Owned guards and their futures hold the `Arc<Mutex>` too, so none exists now.
        Arc::get_mut(&mut self.inner).expect("no owned guard outlives a `&mut Mutex`").get_mut()
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

pin_project_lite::pin_project! {
    /// The future of [`Mutex::lock`].
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: a wake-up it was given passes on to the next waiter.
    ///
    /// ```
    /// let mutex = klaw::sync::Mutex::new(1);
    /// let lock: klaw::sync::Lock<'_, u32> = mutex.lock();
    /// assert_eq!(*klaw::runtime::block_on(lock), 1);
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Lock<'a, T: ?Sized> {
        #[pin]
        inner: async_lock::futures::Lock<'a, T>,
    }
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(MutexGuard)
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Mutex::lock_owned`]: `'static`, it holds the mutex's `Arc`.
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: a wake-up it was given passes on to the next waiter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mutex = Arc::new(klaw::sync::Mutex::new(1));
    /// let lock: klaw::sync::LockOwned<u32> = mutex.lock_owned();
    /// assert_eq!(*klaw::runtime::block_on(lock), 1);
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct LockOwned<T: ?Sized> {
        #[pin]
        inner: async_lock::futures::LockArc<T>,
        mutex: Option<Arc<Mutex<T>>>,
    }
}

impl<T: ?Sized> Future for LockOwned<T> {
    type Output = OwnedMutexGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = std::task::ready!(this.inner.poll(cx));
        let mutex = this.mutex.take().expect("`LockOwned` polled after it completed");
        Poll::Ready(OwnedMutexGuard { guard, mutex })
    }
}

impl<T: ?Sized> fmt::Debug for LockOwned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockOwned").finish_non_exhaustive()
    }
}

/// The lock of a [`Mutex`], held: gives the value; dropping it unlocks.
///
/// ```
/// let mutex = klaw::sync::Mutex::new(vec![1]);
/// let mut guard: klaw::sync::MutexGuard<'_, Vec<u32>> = mutex.try_lock().unwrap();
/// guard.push(2);
/// assert_eq!(*guard, [1, 2]);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'a, T: ?Sized>(async_lock::MutexGuard<'a, T>);

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
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
#[must_use = "dropping the guard unlocks at once"]
pub struct OwnedMutexGuard<T: ?Sized> {
    // Declared first, so it unlocks before the `Arc` is let go.
    guard: async_lock::MutexGuardArc<T>,
    mutex: Arc<Mutex<T>>,
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

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

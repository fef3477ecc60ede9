//! `RwLock`: an async reader-writer lock around a value, on smol-rs's `async-lock`.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A lock around a value that many tasks may read at once, or one may write, and that tasks
/// wait for without blocking their thread.
///
/// Built on smol-rs's `async-lock`; works under any executor. **Writers are not starved:** once
/// a `write()` waits, new reads wait behind it. Among writers the order is that of the
/// [`Mutex`](crate::primitives::Mutex) (eventually fair).
///
/// **Cancel safety:** dropping a [`read`](Self::read) or [`write`](Self::write) future loses
/// nothing (see each); a dropped guard unlocks.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::RwLock;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let config = Arc::new(RwLock::new(String::from("v1")));
///     klaw::scope!(|s| {
///         for _ in 0..4 {
///             let config = config.clone();
///             s.spawn(async move { config.read().await.len() }); // readers share the lock
///         }
///         let config = config.clone();
///         s.spawn(async move { *config.write().await = String::from("v2") });
///         Ok(())
///     })?;
///     assert_eq!(*config.read().await, "v2");
///     Ok(())
/// }
/// ```
pub struct RwLock<T: ?Sized> {
    inner: Arc<async_lock::RwLock<T>>,
}

impl<T> RwLock<T> {
    /// A lock around `value`, unlocked.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(5);
    /// assert_eq!(*lock.try_read().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Self {
        RwLock { inner: Arc::new(async_lock::RwLock::new(value)) }
    }

    /// The value, taken out of the lock.
    ///
    /// ```
    /// assert_eq!(klaw::sync::RwLock::new(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        // Owned guards and their futures hold the `Arc<RwLock>` too, so none exists now.
        Arc::into_inner(self.inner).expect("no owned guard outlives its lock").into_inner()
    }

    /// [`read`](Self::read) for a lock in an `Arc`: the guard holds the `Arc`, so it is
    /// `'static` and can move into a spawned task. (The future borrows the `Arc`.)
    ///
    /// # Cancel safety
    /// As [`read`](Self::read): dropping the future loses nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let guard: klaw::sync::OwnedRwLockReadGuard<u32> =
    ///     klaw::runtime::block_on(lock.read_owned());
    /// std::thread::spawn(move || assert_eq!(*guard, 1)).join().unwrap();
    /// ```
    pub fn read_owned(self: &Arc<Self>) -> ReadOwned<'_, T> {
        ReadOwned { inner: self.inner.read_arc(), lock: Some(self.clone()) }
    }

    /// [`try_read`](Self::try_read) for a lock in an `Arc`: a `'static` guard.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let guard = lock.try_read_owned().unwrap();
    /// assert!(lock.try_write().is_none());
    /// ```
    pub fn try_read_owned(self: &Arc<Self>) -> Option<OwnedRwLockReadGuard<T>> {
        let guard = self.inner.try_read_arc()?;
        Some(OwnedRwLockReadGuard { guard, lock: self.clone() })
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for a read lock, shared with other readers; the guard unlocks when dropped. Waits
    /// while a writer holds the lock or waits for it.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it holds no lock, and a wake-up it was given passes on
    /// to the next waiting reader.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// klaw::runtime::block_on(async {
    ///     let (a, b) = (lock.read().await, lock.read().await); // shared
    ///     assert_eq!(*a + *b, 2);
    /// });
    /// ```
    pub fn read(&self) -> Read<'_, T> {
        Read { inner: self.inner.read() }
    }

    /// A read lock if one can be had now (no writer holds the lock or waits for it).
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// let writer = lock.try_write().unwrap();
    /// assert!(lock.try_read().is_none());
    /// drop(writer);
    /// assert!(lock.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.inner.try_read().map(RwLockReadGuard)
    }

    /// Waits for the write lock: no reader or other writer holds it. From the moment it starts
    /// waiting, new reads wait behind it.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it holds no lock, and the reads it was holding back
    /// (or the next writer) are woken.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// klaw::runtime::block_on(async {
    ///     *lock.write().await += 1;
    ///     assert_eq!(*lock.read().await, 2);
    /// });
    /// ```
    pub fn write(&self) -> Write<'_, T> {
        Write { inner: self.inner.write() }
    }

    /// The write lock if it is free now.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// let reader = lock.try_read().unwrap();
    /// assert!(lock.try_write().is_none());
    /// drop(reader);
    /// assert!(lock.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.inner.try_write().map(RwLockWriteGuard)
    }

    /// [`write`](Self::write) for a lock in an `Arc`: the guard holds the `Arc`, so it is
    /// `'static`. (The future borrows the `Arc`.)
    ///
    /// # Cancel safety
    /// As [`write`](Self::write): dropping the future loses nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let mut guard: klaw::sync::OwnedRwLockWriteGuard<u32> =
    ///     klaw::runtime::block_on(lock.write_owned());
    /// std::thread::spawn(move || *guard += 1).join().unwrap();
    /// assert_eq!(*lock.try_read().unwrap(), 2);
    /// ```
    pub fn write_owned(self: &Arc<Self>) -> WriteOwned<'_, T> {
        WriteOwned { inner: self.inner.write_arc(), lock: Some(self.clone()) }
    }

    /// [`try_write`](Self::try_write) for a lock in an `Arc`: a `'static` guard.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let guard = lock.try_write_owned().unwrap();
    /// assert!(lock.try_read().is_none());
    /// ```
    pub fn try_write_owned(self: &Arc<Self>) -> Option<OwnedRwLockWriteGuard<T>> {
        let guard = self.inner.try_write_arc()?;
        Some(OwnedRwLockWriteGuard { guard, lock: self.clone() })
    }

    /// The value, borrowed mutably: no locking, the `&mut` proves nobody else holds the lock.
    ///
    /// ```
    /// let mut lock = klaw::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // Owned guards and their futures hold the `Arc<RwLock>` too, so none exists now.
        Arc::get_mut(&mut self.inner).expect("no owned guard outlives a `&mut RwLock`").get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => out.field("data", &&*guard),
            None => out.field("data", &format_args!("<locked>")),
        };
        out.finish()
    }
}

/// Futures of an `RwLock`: each maps async-lock's future's output to klaw's guard.
macro_rules! lock_future {
    ($(#[$doc:meta])* $name:ident<$($lt:lifetime,)? $t:ident $(: ?$sized:ident)?>, $inner:ty => $out:ty, $wrap:expr) => {
        pin_project_lite::pin_project! {
            $(#[$doc])*
            #[must_use = "futures do nothing unless awaited"]
            pub struct $name<$($lt,)? $t $(: ?$sized)?> {
                #[pin]
                inner: $inner,
            }
        }

        impl<$($lt,)? $t $(: ?$sized)?> Future for $name<$($lt,)? $t> {
            type Output = $out;

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                self.project().inner.poll(cx).map($wrap)
            }
        }

        impl<$($lt,)? $t $(: ?$sized)?> fmt::Debug for $name<$($lt,)? $t> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

lock_future!(
    /// The future of [`RwLock::read`].
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: a wake-up it was given passes on to the next reader.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// let read: klaw::sync::Read<'_, u32> = lock.read();
    /// assert_eq!(*klaw::runtime::block_on(read), 1);
    /// ```
    Read<'a, T: ?Sized>, async_lock::futures::Read<'a, T> => RwLockReadGuard<'a, T>, RwLockReadGuard
);

lock_future!(
    /// The future of [`RwLock::write`].
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: the reads it was holding back, or the next writer, are woken.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// let write: klaw::sync::Write<'_, u32> = lock.write();
    /// *klaw::runtime::block_on(write) += 1;
    /// assert_eq!(*lock.try_read().unwrap(), 2);
    /// ```
    Write<'a, T: ?Sized>, async_lock::futures::Write<'a, T> => RwLockWriteGuard<'a, T>, RwLockWriteGuard
);

pin_project_lite::pin_project! {
    /// The future of [`RwLock::read_owned`]. It borrows the `Arc`; its guard does not.
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: a wake-up it was given passes on to the next reader.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let read: klaw::sync::ReadOwned<'_, u32> = lock.read_owned();
    /// assert_eq!(*klaw::runtime::block_on(read), 1);
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct ReadOwned<'a, T> {
        #[pin]
        inner: async_lock::futures::ReadArc<'a, T>,
        lock: Option<Arc<RwLock<T>>>,
    }
}

impl<T> Future for ReadOwned<'_, T> {
    type Output = OwnedRwLockReadGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = std::task::ready!(this.inner.poll(cx));
        let lock = this.lock.take().expect("`ReadOwned` polled after it completed");
        Poll::Ready(OwnedRwLockReadGuard { guard, lock })
    }
}

impl<T> fmt::Debug for ReadOwned<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOwned").finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RwLock::write_owned`]. It borrows the `Arc`; its guard does not.
    ///
    /// # Cancel safety
    /// Dropping it loses nothing: the reads it was holding back, or the next writer, are woken.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let write: klaw::sync::WriteOwned<'_, u32> = lock.write_owned();
    /// *klaw::runtime::block_on(write) += 1;
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct WriteOwned<'a, T: ?Sized> {
        #[pin]
        inner: async_lock::futures::WriteArc<'a, T>,
        lock: Option<Arc<RwLock<T>>>,
    }
}

impl<T: ?Sized> Future for WriteOwned<'_, T> {
    type Output = OwnedRwLockWriteGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = std::task::ready!(this.inner.poll(cx));
        let lock = this.lock.take().expect("`WriteOwned` polled after it completed");
        Poll::Ready(OwnedRwLockWriteGuard { guard, lock })
    }
}

impl<T: ?Sized> fmt::Debug for WriteOwned<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOwned").finish_non_exhaustive()
    }
}

/// A read lock of an [`RwLock`], held: gives the value, shared; dropping it unlocks.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let guard: klaw::sync::RwLockReadGuard<'_, u32> = lock.try_read().unwrap();
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct RwLockReadGuard<'a, T: ?Sized>(async_lock::RwLockReadGuard<'a, T>);

/// The write lock of an [`RwLock`], held: gives the value, exclusively; dropping it unlocks.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let mut guard: klaw::sync::RwLockWriteGuard<'_, u32> = lock.try_write().unwrap();
/// *guard = 2;
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct RwLockWriteGuard<'a, T: ?Sized>(async_lock::RwLockWriteGuard<'a, T>);

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock, with no moment unlocked in between: readers that
    /// waited get in too. (An associated function, so it does not hide a method of `T`.)
    ///
    /// ```
    /// use klaw::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new(1);
    /// let mut writer = lock.try_write().unwrap();
    /// *writer = 2;
    /// let reader = RwLockWriteGuard::downgrade(writer);
    /// assert_eq!(*reader + *lock.try_read().unwrap(), 4);
    /// ```
    pub fn downgrade(guard: Self) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard(async_lock::RwLockWriteGuard::downgrade(guard.0))
    }
}

/// A read lock of an [`RwLock`] in an `Arc`, held: `'static`, it holds the `Arc`.
///
/// ```
/// use std::sync::Arc;
/// let lock = Arc::new(klaw::sync::RwLock::new(1));
/// let guard: klaw::sync::OwnedRwLockReadGuard<u32> = lock.try_read_owned().unwrap();
/// assert!(Arc::ptr_eq(klaw::sync::OwnedRwLockReadGuard::lock(&guard), &lock));
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct OwnedRwLockReadGuard<T> {
    // Declared first, so it unlocks before the `Arc` is let go.
    guard: async_lock::RwLockReadGuardArc<T>,
    lock: Arc<RwLock<T>>,
}

impl<T> OwnedRwLockReadGuard<T> {
    /// The lock this guard reads. (An associated function, so it does not hide a method of `T`.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let guard = lock.try_read_owned().unwrap();
    /// assert_eq!(*klaw::sync::OwnedRwLockReadGuard::lock(&guard).try_read().unwrap(), 1);
    /// ```
    pub fn lock(guard: &Self) -> &Arc<RwLock<T>> {
        &guard.lock
    }
}

/// The write lock of an [`RwLock`] in an `Arc`, held: `'static`, it holds the `Arc`.
///
/// ```
/// use std::sync::Arc;
/// let lock = Arc::new(klaw::sync::RwLock::new(1));
/// let mut guard: klaw::sync::OwnedRwLockWriteGuard<u32> = lock.try_write_owned().unwrap();
/// *guard = 2;
/// assert!(Arc::ptr_eq(klaw::sync::OwnedRwLockWriteGuard::lock(&guard), &lock));
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    // Declared first, so it unlocks before the `Arc` is let go.
    guard: async_lock::RwLockWriteGuardArc<T>,
    lock: Arc<RwLock<T>>,
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// The lock this guard writes. (An associated function, so it does not hide a method of
    /// `T`.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let guard = lock.try_write_owned().unwrap();
    /// assert!(klaw::sync::OwnedRwLockWriteGuard::lock(&guard).try_read().is_none());
    /// ```
    pub fn lock(guard: &Self) -> &Arc<RwLock<T>> {
        &guard.lock
    }
}

impl<T> OwnedRwLockWriteGuard<T> {
    /// Turns the write lock into a read lock, with no moment unlocked in between.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use klaw::sync::{OwnedRwLockWriteGuard, RwLock};
    /// let lock = Arc::new(RwLock::new(1));
    /// let reader = OwnedRwLockWriteGuard::downgrade(lock.try_write_owned().unwrap());
    /// assert_eq!(*reader, *lock.try_read().unwrap());
    /// ```
    pub fn downgrade(guard: Self) -> OwnedRwLockReadGuard<T> {
        let OwnedRwLockWriteGuard { guard, lock } = guard;
        OwnedRwLockReadGuard { guard: async_lock::RwLockWriteGuardArc::downgrade(guard), lock }
    }
}

/// `Deref`, `Debug` and `Display` of a guard: the value's.
macro_rules! guard_impls {
    ($field:tt, $name:ident<$($lt:lifetime,)? T $(: ?$sized:ident)?>) => {
        impl<$($lt,)? T $(: ?$sized)?> Deref for $name<$($lt,)? T> {
            type Target = T;

            fn deref(&self) -> &T {
                &self.$field
            }
        }

        impl<$($lt,)? T: fmt::Debug $(+ ?$sized)?> fmt::Debug for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($lt,)? T: fmt::Display $(+ ?$sized)?> fmt::Display for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    };
}

guard_impls!(0, RwLockReadGuard<'a, T: ?Sized>);
guard_impls!(0, RwLockWriteGuard<'a, T: ?Sized>);
guard_impls!(guard, OwnedRwLockReadGuard<T>);
guard_impls!(guard, OwnedRwLockWriteGuard<T: ?Sized>);

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: ?Sized> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

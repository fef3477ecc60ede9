//! `RwLock`: an async reader-writer lock around a value, on klaw's own fair [`Semaphore`], as
//! tokio's is on its semaphore.
//!
//! The semaphore holds the lock's `max_reads` permits ([`MAX_READS`] unless
//! [`RwLock::with_max_readers`] says fewer): a read holds one, a write all of them. It serves
//! its line in order, and a waiting acquire gathers permits as they come back, so:
//! - once a write waits, every read that comes later waits behind it (and `try_read` does not
//!   jump the line), while the permits the readers in front give back gather in the write;
//! - a write that ends, or is cancelled while it waits, or is downgraded, gives back permits that
//!   go at once to every read waiting in front of the next write: each is woken, and none waits
//!   for another to be polled.
//!
//! The value is in an `UnsafeCell`; the permits are what make its borrows sound (see each
//! `SAFETY`).
#![allow(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::primitives::acquire::{Acquire, granted};
use crate::primitives::semaphore::Semaphore;
use crate::sync::UnsafeCell;

mod guards;
mod mapped;

pub use guards::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLockReadGuard, RwLockWriteGuard};
pub use mapped::{MappedRwLockReadGuard, MappedRwLockWriteGuard};

/// The semaphore's permits: as many reads at once, which no program reaches.
const MAX_READS: usize = Semaphore::MAX_PERMITS;

/// A lock around a value that many tasks may read at once, or one may write, and that tasks
/// wait for without blocking their thread.
///
/// Works under any executor. **Fair, first come, first served** (it is built on klaw's
/// [`Semaphore`](crate::primitives::Semaphore)): once a `write()` waits, new reads wait behind
/// it, and when a write ends, every read that waited before the next write gets in at once.
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
    /// `max_reads` permits: a read guard holds one, a write guard all.
    permits: Semaphore,
    /// How many permits `permits` was made with, at least one.
    max_reads: usize,
    value: UnsafeCell<T>,
}

// SAFETY: the value is shared between threads only as a `&T` through read guards, several at
// once, or lent as a `&mut T` through the one write guard, as with std's `RwLock`: sending the
// lock sends the value (`T: Send`), sharing it shares `&T` and lets any thread take `&mut T`
// (`T: Send + Sync`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A lock around `value`, unlocked.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(5);
    /// assert_eq!(*lock.try_read().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Self {
        RwLock {
            permits: Semaphore::new(MAX_READS),
            max_reads: MAX_READS,
            value: UnsafeCell::new(value),
        }
    }

    /// A lock around `value`, unlocked, that at most `max_reads` reads hold at once: one more
    /// read waits for one of them to end (and a write still waits for them all).
    ///
    /// # Panics
    /// If `max_reads` is 0 (no read could ever get in, and a write would need no permit), or
    /// more than `u32::MAX >> 3` (tokio's bound too).
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::with_max_readers(5, 2);
    /// let (a, b) = (lock.try_read().unwrap(), lock.try_read().unwrap());
    /// assert!(lock.try_read().is_none()); // two reads at most
    /// drop(a);
    /// assert_eq!(*lock.try_read().unwrap() + *b, 10);
    /// ```
    #[track_caller]
    pub fn with_max_readers(value: T, max_reads: u32) -> Self {
        assert!(
            (1..=u32::MAX >> 3).contains(&max_reads),
            "RwLock::with_max_readers: max_reads must be in 1..={}, got {max_reads}",
            u32::MAX >> 3
        );
        let max_reads = max_reads as usize;
        RwLock { permits: Semaphore::new(max_reads), max_reads, value: UnsafeCell::new(value) }
    }

    /// The value, taken out of the lock.
    ///
    /// ```
    /// assert_eq!(klaw::sync::RwLock::new(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
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
        ReadOwned { acquire: self.permits.acquire(), lock: Some(self.clone()) }
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
        self.permits.try_acquire().ok()?.detach();
        Some(OwnedRwLockReadGuard { lock: self.clone(), permits: 1 })
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for a read lock, shared with other readers; the guard unlocks when dropped. Waits
    /// while a writer holds the lock or waits for it.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it leaves the line, and a permit it was given (woken,
    /// not yet polled) goes back, to the next in line. Until it is polled or dropped, a future
    /// given its permit holds it, as tokio's does.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// klaw::runtime::block_on(async {
    ///     let (a, b) = (lock.read().await, lock.read().await); // shared
    ///     assert_eq!(*a + *b, 2);
    /// });
    /// ```
    pub fn read(&self) -> Read<'_, T> {
        Read { acquire: self.permits.acquire(), lock: self }
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
        let permit = self.permits.try_acquire().ok()?;
        Some(RwLockReadGuard { lock: self, _permit: permit })
    }

    /// Waits for the write lock: no reader or other writer holds it. From the moment it starts
    /// waiting, new reads wait behind it.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it leaves the line, the permits it had gathered go
    /// back, and the reads it was holding back (or the next writer) are woken. Until it is
    /// polled or dropped, a future given every permit holds the lock, as tokio's does.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// klaw::runtime::block_on(async {
    ///     *lock.write().await += 1;
    ///     assert_eq!(*lock.read().await, 2);
    /// });
    /// ```
    pub fn write(&self) -> Write<'_, T> {
        Write { acquire: self.permits.acquire_many(self.max_reads), lock: self }
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
        let permit = self.permits.try_acquire_many(self.max_reads).ok()?;
        Some(RwLockWriteGuard { lock: self, permit })
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
        WriteOwned { acquire: self.permits.acquire_many(self.max_reads), lock: Some(self.clone()) }
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
        self.permits.try_acquire_many(self.max_reads).ok()?.detach();
        Some(OwnedRwLockWriteGuard { lock: self.clone(), permits: self.max_reads })
    }

    /// Takes a read lock from blocking code (a thread outside any runtime, a blocking task),
    /// waiting in line as [`read`](Self::read) does. It blocks its thread: in an async task,
    /// await `read()`.
    ///
    /// ```
    /// let lock = klaw::sync::RwLock::new(1);
    /// let (a, b) = (lock.blocking_read(), lock.blocking_read());
    /// assert_eq!(*a + *b, 2);
    /// ```
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T> {
        crate::poller::block_outside_tasks(self.read())
    }

    /// Takes the write lock from blocking code, waiting in line as [`write`](Self::write) does.
    /// It blocks its thread: in an async task, await `write()`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(klaw::sync::RwLock::new(1));
    /// let reader = lock.try_read_owned().unwrap();
    /// let other = lock.clone();
    /// let thread = std::thread::spawn(move || *other.blocking_write() += 1);
    /// drop(reader); // the writer gets in now
    /// thread.join().unwrap();
    /// assert_eq!(*lock.blocking_read(), 2);
    /// ```
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T> {
        crate::poller::block_outside_tasks(self.write())
    }

    /// The value, borrowed mutably: no locking, the `&mut` proves nobody else holds the lock.
    ///
    /// ```
    /// let mut lock = klaw::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self`: no guard exists (each borrows the lock or holds an `Arc` of it,
        // which `&mut RwLock` excludes), so nothing else reaches the value.
        self.value.with_mut(|value| unsafe { &mut *value })
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

/// The future of [`RwLock::read`].
///
/// # Cancel safety
/// Dropping it loses nothing: it leaves the line, and a permit it was given goes on to the next
/// in line.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let read: klaw::sync::Read<'_, u32> = lock.read();
/// assert_eq!(*klaw::runtime::block_on(read), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Read<'a, T: ?Sized> {
    acquire: Acquire<'a>,
    lock: &'a RwLock<T>,
}

impl<'a, T: ?Sized> Future for Read<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let permit = granted(std::task::ready!(Pin::new(&mut self.acquire).poll(cx)));
        Poll::Ready(RwLockReadGuard { lock: self.lock, _permit: permit })
    }
}

/// The future of [`RwLock::write`].
///
/// # Cancel safety
/// Dropping it loses nothing: it leaves the line, and the permits it had gathered go on at once,
/// so the reads it was holding back, or the next writer, are woken.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let write: klaw::sync::Write<'_, u32> = lock.write();
/// *klaw::runtime::block_on(write) += 1;
/// assert_eq!(*lock.try_read().unwrap(), 2);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Write<'a, T: ?Sized> {
    acquire: Acquire<'a>,
    lock: &'a RwLock<T>,
}

impl<'a, T: ?Sized> Future for Write<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let permit = granted(std::task::ready!(Pin::new(&mut self.acquire).poll(cx)));
        Poll::Ready(RwLockWriteGuard { lock: self.lock, permit })
    }
}

/// The future of [`RwLock::read_owned`]. It borrows the `Arc`; its guard does not.
///
/// # Cancel safety
/// Dropping it loses nothing, as [`Read`]'s.
///
/// ```
/// use std::sync::Arc;
/// let lock = Arc::new(klaw::sync::RwLock::new(1));
/// let read: klaw::sync::ReadOwned<'_, u32> = lock.read_owned();
/// assert_eq!(*klaw::runtime::block_on(read), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct ReadOwned<'a, T> {
    acquire: Acquire<'a>,
    lock: Option<Arc<RwLock<T>>>,
}

impl<T> Future for ReadOwned<'_, T> {
    type Output = OwnedRwLockReadGuard<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        granted(std::task::ready!(Pin::new(&mut self.acquire).poll(cx))).detach();
        let lock = self.lock.take().expect("`ReadOwned` polled after it completed");
        Poll::Ready(OwnedRwLockReadGuard { lock, permits: 1 })
    }
}

/// The future of [`RwLock::write_owned`]. It borrows the `Arc`; its guard does not.
///
/// # Cancel safety
/// Dropping it loses nothing, as [`Write`]'s.
///
/// ```
/// use std::sync::Arc;
/// let lock = Arc::new(klaw::sync::RwLock::new(1));
/// let write: klaw::sync::WriteOwned<'_, u32> = lock.write_owned();
/// *klaw::runtime::block_on(write) += 1;
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct WriteOwned<'a, T: ?Sized> {
    acquire: Acquire<'a>,
    lock: Option<Arc<RwLock<T>>>,
}

impl<T: ?Sized> Future for WriteOwned<'_, T> {
    type Output = OwnedRwLockWriteGuard<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        granted(std::task::ready!(Pin::new(&mut self.acquire).poll(cx))).detach();
        let lock = self.lock.take().expect("`WriteOwned` polled after it completed");
        let permits = lock.max_reads;
        Poll::Ready(OwnedRwLockWriteGuard { lock, permits })
    }
}

macro_rules! future_debug {
    ($($name:ident<$($lt:lifetime,)? T $(: ?$sized:ident)?>),*) => {$(
        impl<$($lt,)? T $(: ?$sized)?> fmt::Debug for $name<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}

future_debug!(
    Read<'a, T: ?Sized>,
    Write<'a, T: ?Sized>,
    ReadOwned<'a, T>,
    WriteOwned<'a, T: ?Sized>
);

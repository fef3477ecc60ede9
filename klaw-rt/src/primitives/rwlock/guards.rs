//! The guards of an [`RwLock`]: a read or the write lock held, borrowed or owned. A guard
//! holds the lock's permits (one for a read, all for the write), which is what makes each
//! borrow of the value sound.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::RwLock;
use crate::primitives::permit::SemaphorePermit;

/// A read lock of an [`RwLock`], held: gives the value, shared; dropping it unlocks.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let guard: klaw::sync::RwLockReadGuard<'_, u32> = lock.try_read().unwrap();
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    pub(super) lock: &'a RwLock<T>,
    /// One of the lock's permits: no write guard exists while it is held.
    pub(super) _permit: SemaphorePermit<'a>,
}

/// The write lock of an [`RwLock`], held: gives the value, exclusively; dropping it unlocks.
///
/// ```
/// let lock = klaw::sync::RwLock::new(1);
/// let mut guard: klaw::sync::RwLockWriteGuard<'_, u32> = lock.try_write().unwrap();
/// *guard = 2;
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    pub(super) lock: &'a RwLock<T>,
    /// All the lock's permits: no other guard exists while they are held.
    pub(super) permit: SemaphorePermit<'a>,
}

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
        let RwLockWriteGuard { lock, mut permit } = guard;
        // All but one permit go back, to the reads waiting first in line.
        drop(permit.split(lock.max_reads - 1));
        RwLockReadGuard { lock, _permit: permit }
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
    pub(super) lock: Arc<RwLock<T>>,
    /// Permits of the lock held (one), given back on drop.
    pub(super) permits: usize,
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
    pub(super) lock: Arc<RwLock<T>>,
    /// Permits of the lock held (all of them), given back on drop.
    pub(super) permits: usize,
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
        let mut guard = guard;
        // The read guard takes one permit over first (so a waker that panics as the rest go
        // back loses none); the write guard's drop gives back the rest, to the reads waiting
        // first in line.
        let read = OwnedRwLockReadGuard { lock: guard.lock.clone(), permits: 1 };
        guard.permits -= 1;
        drop(guard);
        read
    }
}

/// `Deref`, `Debug` and `Display` of a guard: the value's.
impl<T> Drop for OwnedRwLockReadGuard<T> {
    fn drop(&mut self) {
        self.lock.permits.give_back(self.permits);
    }
}

impl<T: ?Sized> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        self.lock.permits.give_back(self.permits);
    }
}

macro_rules! guard_impls {
    ($name:ident<$($lt:lifetime,)? T $(: ?$sized:ident)?>) => {
        impl<$($lt,)? T $(: ?$sized)?> Deref for $name<$($lt,)? T> {
            type Target = T;

            fn deref(&self) -> &T {
                // SAFETY: the guard holds at least one permit of the lock, so no write guard
                // exists (it needs them all): nothing has the value mutably while this lives.
                self.lock.value.with(|value| unsafe { &*value })
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

guard_impls!(RwLockReadGuard<'a, T: ?Sized>);
guard_impls!(RwLockWriteGuard<'a, T: ?Sized>);
guard_impls!(OwnedRwLockReadGuard<T>);
guard_impls!(OwnedRwLockWriteGuard<T: ?Sized>);

macro_rules! deref_mut {
    ($($name:ident<$($lt:lifetime,)? T: ?Sized>),*) => {$(
        impl<$($lt,)? T: ?Sized> DerefMut for $name<$($lt,)? T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: the guard holds every permit of the lock, so no other guard exists, and
                // `&mut self` makes this the one borrow through it.
                self.lock.value.with_mut(|value| unsafe { &mut *value })
            }
        }
    )*};
}

deref_mut!(RwLockWriteGuard<'a, T: ?Sized>, OwnedRwLockWriteGuard<T: ?Sized>);

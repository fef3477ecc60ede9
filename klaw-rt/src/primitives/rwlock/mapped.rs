//! An [`RwLock`](super::RwLock) guard narrowed to a part of the value (`map`, `try_map`,
//! `downgrade_map`, `try_downgrade_map`), as tokio's: the narrowed guard keeps the permits the
//! guard held, and reaches the part through a pointer taken from the guard's borrow of the
//! value.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::{RwLockReadGuard, RwLockWriteGuard};
use crate::primitives::permit::SemaphorePermit;

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// Narrows the read guard to a part of the value; the read lock is held until the returned
    /// guard is dropped. (An associated function, so it does not hide a method of `T`.)
    ///
    /// ```
    /// use klaw::sync::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
    /// let lock = RwLock::new((1, String::from("a")));
    /// let name: MappedRwLockReadGuard<'_, String> =
    ///     RwLockReadGuard::map(lock.try_read().unwrap(), |pair| &pair.1);
    /// assert_eq!(*name, "a");
    /// assert!(lock.try_write().is_none()); // still read-locked
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> MappedRwLockReadGuard<'a, U> {
        let part: *const U = f(&this);
        let RwLockReadGuard { _permit, .. } = this;
        MappedRwLockReadGuard { part, _permit, not_auto: PhantomData }
    }

    /// Narrows the read guard to a part of the value if `f` finds one; else gives the guard
    /// back, still locked.
    ///
    /// ```
    /// use klaw::sync::{RwLock, RwLockReadGuard};
    /// let lock = RwLock::new(vec![1, 2]);
    /// let second = RwLockReadGuard::try_map(lock.try_read().unwrap(), |list| list.get(1));
    /// assert_eq!(*second.unwrap(), 2);
    /// ```
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<MappedRwLockReadGuard<'a, U>, Self> {
        let Some(part) = f(&this).map(|part| part as *const U) else { return Err(this) };
        let RwLockReadGuard { _permit, .. } = this;
        Ok(MappedRwLockReadGuard { part, _permit, not_auto: PhantomData })
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Narrows the write guard to a part of the value; the write lock is held until the
    /// returned guard is dropped.
    ///
    /// ```
    /// use klaw::sync::{MappedRwLockWriteGuard, RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new((1, 2));
    /// let mut second: MappedRwLockWriteGuard<'_, i32> =
    ///     RwLockWriteGuard::map(lock.try_write().unwrap(), |pair| &mut pair.1);
    /// *second = 20;
    /// assert!(lock.try_read().is_none()); // still write-locked
    /// drop(second);
    /// assert_eq!(*lock.try_read().unwrap(), (1, 20));
    /// ```
    pub fn map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedRwLockWriteGuard<'a, U> {
        let part: *mut U = f(&mut this);
        let RwLockWriteGuard { lock, permit } = this;
        MappedRwLockWriteGuard { part, permit, max_reads: lock.max_reads, not_auto: PhantomData }
    }

    /// Narrows the write guard to a part of the value if `f` finds one; else gives the guard
    /// back, still locked.
    ///
    /// ```
    /// use klaw::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new(None::<u8>);
    /// let inner = RwLockWriteGuard::try_map(lock.try_write().unwrap(), Option::as_mut);
    /// assert!(inner.is_err()); // nothing inside: the guard, back
    /// ```
    pub fn try_map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedRwLockWriteGuard<'a, U>, Self> {
        let Some(part) = f(&mut this).map(|part| part as *mut U) else { return Err(this) };
        let RwLockWriteGuard { lock, permit } = this;
        Ok(MappedRwLockWriteGuard {
            part,
            permit,
            max_reads: lock.max_reads,
            not_auto: PhantomData,
        })
    }

    /// Narrows the write guard to a part of the value and turns it into a read lock, with no
    /// moment unlocked in between (as [`downgrade`](Self::downgrade)): readers that waited get
    /// in too.
    ///
    /// ```
    /// use klaw::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new((1, 2));
    /// let mut writer = lock.try_write().unwrap();
    /// writer.1 = 5;
    /// let second = RwLockWriteGuard::downgrade_map(writer, |pair| &pair.1);
    /// assert_eq!(*second + lock.try_read().unwrap().1, 10);
    /// ```
    pub fn downgrade_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> &U,
    ) -> MappedRwLockReadGuard<'a, U> {
        // Found under the write lock, as tokio's: no reader gets in while `f` runs.
        let part: *const U = f(&this);
        let RwLockReadGuard { _permit, .. } = Self::downgrade(this);
        MappedRwLockReadGuard { part, _permit, not_auto: PhantomData }
    }

    /// [`downgrade_map`](Self::downgrade_map) if `f` finds a part; else gives the write guard
    /// back, still write-locked.
    ///
    /// ```
    /// use klaw::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new(vec![7]);
    /// let first = RwLockWriteGuard::try_downgrade_map(lock.try_write().unwrap(), |list| list.first());
    /// assert_eq!(*first.unwrap(), 7);
    /// ```
    pub fn try_downgrade_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<MappedRwLockReadGuard<'a, U>, Self> {
        // Found under the write lock, as tokio's: no reader gets in while `f` runs, and a guard
        // given back is the same write lock.
        let Some(part) = f(&this).map(|part| part as *const U) else { return Err(this) };
        let RwLockReadGuard { _permit, .. } = Self::downgrade(this);
        Ok(MappedRwLockReadGuard { part, _permit, not_auto: PhantomData })
    }
}

/// A read guard of an [`RwLock`](super::RwLock) narrowed to a part of the value: gives the
/// part, shared; dropping it unlocks.
///
/// ```
/// use klaw::sync::{RwLock, RwLockReadGuard};
/// let lock = RwLock::new([1, 2, 3]);
/// let last = RwLockReadGuard::map(lock.try_read().unwrap(), |items| &items[2]);
/// assert_eq!(*last, 3);
/// ```
///
/// # Threads
/// It is `Send` and `Sync` only if `U` is `Sync`, as it shares `&U`:
/// ```compile_fail
/// fn sent_between_threads<G: Send>() {}
/// sent_between_threads::<klaw::sync::MappedRwLockReadGuard<'static, std::cell::Cell<u32>>>();
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MappedRwLockReadGuard<'a, U: ?Sized> {
    /// Taken from the `&T` of the read guard whose permit `_permit` is.
    part: *const U,
    /// One of the lock's permits: no write guard exists while it is held.
    _permit: SemaphorePermit<'a>,
    /// Borrows the lock's value for `'a`; neither `Send` nor `Sync` by itself (see below).
    not_auto: PhantomData<&'a U>,
}

/// A write guard of an [`RwLock`](super::RwLock) narrowed to a part of the value: gives the
/// part, exclusively; dropping it unlocks.
///
/// ```
/// use klaw::sync::{RwLock, RwLockWriteGuard};
/// let lock = RwLock::new(vec![1]);
/// let mut first = RwLockWriteGuard::map(lock.try_write().unwrap(), |list| &mut list[0]);
/// *first = 2;
/// drop(first);
/// assert_eq!(*lock.try_read().unwrap(), [2]);
/// ```
///
/// # Threads
/// It is `Sync` only if `U` is, and `Send` only if `U` is `Send` and `Sync`: sent to another
/// thread, it may be downgraded there into a read guard that shares the part with readers on
/// every thread (a `Cell` inside a `std::sync::Mutex` would be `Send` but not `Sync`):
/// ```compile_fail
/// fn sent_between_threads<G: Send>() {}
/// sent_between_threads::<klaw::sync::MappedRwLockWriteGuard<'static, std::cell::Cell<u32>>>();
/// ```
/// ```compile_fail
/// fn shared_between_threads<G: Sync>() {}
/// shared_between_threads::<klaw::sync::MappedRwLockWriteGuard<'static, std::cell::Cell<u32>>>();
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MappedRwLockWriteGuard<'a, U: ?Sized> {
    /// Taken from the `&mut T` of the write guard whose permits `permit` holds.
    part: *mut U,
    /// All the lock's permits: no other guard exists while they are held.
    permit: SemaphorePermit<'a>,
    /// The lock's number of permits, for `downgrade`.
    max_reads: usize,
    /// Borrows the lock's value for `'a`; neither `Send` nor `Sync` by itself (see below).
    not_auto: PhantomData<&'a mut U>,
}

impl<'a, U: ?Sized> MappedRwLockWriteGuard<'a, U> {
    /// Turns the narrowed write lock into a narrowed read lock, with no moment unlocked in
    /// between: readers that waited get in too.
    ///
    /// ```
    /// use klaw::sync::{MappedRwLockWriteGuard, RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new((0, 0));
    /// let mut first = RwLockWriteGuard::map(lock.try_write().unwrap(), |pair| &mut pair.0);
    /// *first = 3;
    /// let first = MappedRwLockWriteGuard::downgrade(first);
    /// assert_eq!(*first + lock.try_read().unwrap().0, 6);
    /// ```
    pub fn downgrade(this: Self) -> MappedRwLockReadGuard<'a, U> {
        let MappedRwLockWriteGuard { part, mut permit, max_reads, .. } = this;
        // All but one permit go back, to the reads waiting first in line.
        drop(permit.split(max_reads - 1));
        MappedRwLockReadGuard { part, _permit: permit, not_auto: PhantomData }
    }
}

impl<U: ?Sized> Deref for MappedRwLockReadGuard<'_, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: `part` came from a `&T` of the value lent by a guard that held one of the
        // lock's permits, which this guard holds now: no write guard exists (it needs them all),
        // and the value lives as long as the lock this guard keeps borrowed.
        unsafe { &*self.part }
    }
}

impl<U: ?Sized> Deref for MappedRwLockWriteGuard<'_, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: `part` came from the `&mut T` of the value lent by the write guard whose
        // permits, all of them, this guard holds now: no other guard exists, the value lives as
        // long as the lock this guard keeps borrowed, and the `&U` borrows this guard, which
        // cannot lend a `&mut U` meanwhile.
        unsafe { &*self.part }
    }
}

impl<U: ?Sized> DerefMut for MappedRwLockWriteGuard<'_, U> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: as in `deref`; `&mut self` makes this the one borrow through it.
        unsafe { &mut *self.part }
    }
}

macro_rules! formatting {
    ($($name:ident),*) => {$(
        impl<U: ?Sized + fmt::Debug> fmt::Debug for $name<'_, U> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<U: ?Sized + fmt::Display> fmt::Display for $name<'_, U> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    )*};
}

formatting!(MappedRwLockReadGuard, MappedRwLockWriteGuard);

// SAFETY: a read guard lends only `&U`, to whichever threads hold or share it (`U: Sync`); its
// permit is not tied to a thread.
unsafe impl<U: ?Sized + Sync> Send for MappedRwLockReadGuard<'_, U> {}
// SAFETY: as above.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwLockReadGuard<'_, U> {}
// SAFETY: a write guard lends `&mut U` to whichever thread holds it (`U: Send` to move it there)
// and `&U` to every thread that shares it (`U: Sync`); its permits are not tied to a thread. Sent
// to another thread, it may be downgraded there into a read guard, which shares the part with
// the readers of every other thread: so `U: Sync` to send it as well, as tokio's.
unsafe impl<U: ?Sized + Send + Sync> Send for MappedRwLockWriteGuard<'_, U> {}
// SAFETY: as above.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwLockWriteGuard<'_, U> {}

//! A [`MutexGuard`] narrowed to a part of the value (`MutexGuard::map`, `try_map`), as tokio's
//! `MappedMutexGuard` and `OwnedMappedMutexGuard`: it still holds the mutex's one permit, and
//! reaches the part through a pointer taken from the guard's `&mut T`.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::{Mutex, MutexGuard, OwnedMutexGuard};
use crate::primitives::permit::SemaphorePermit;

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Narrows the guard to a part of the value: the mutex stays locked until the returned
    /// guard is dropped. (An associated function, so it does not hide a method of `T`.) If
    /// `f` panics, the guard is dropped and the mutex unlocked.
    ///
    /// ```
    /// use klaw::sync::{MappedMutexGuard, Mutex, MutexGuard};
    /// let mutex = Mutex::new((1, String::from("a")));
    /// let mut name: MappedMutexGuard<'_, String> =
    ///     MutexGuard::map(mutex.try_lock().unwrap(), |pair| &mut pair.1);
    /// name.push('b');
    /// assert!(mutex.try_lock().is_none()); // still locked
    /// drop(name);
    /// assert_eq!(mutex.try_lock().unwrap().1, "ab");
    /// ```
    pub fn map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedMutexGuard<'a, U> {
        let part: *mut U = f(&mut *this);
        let MutexGuard { _permit, .. } = this;
        MappedMutexGuard { part, _permit, not_auto: PhantomData }
    }

    /// Narrows the guard to a part of the value if `f` finds one; else gives the guard back,
    /// still locked.
    ///
    /// ```
    /// use klaw::sync::{Mutex, MutexGuard};
    /// let mutex = Mutex::new(vec![1, 2]);
    /// let first = MutexGuard::try_map(mutex.try_lock().unwrap(), |list| list.first_mut());
    /// assert_eq!(*first.unwrap(), 1);
    /// let tenth = MutexGuard::try_map(mutex.try_lock().unwrap(), |list| list.get_mut(9));
    /// assert_eq!(*tenth.unwrap_err(), [1, 2]); // the guard, back
    /// ```
    pub fn try_map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        let Some(part) = f(&mut *this).map(|part| part as *mut U) else { return Err(this) };
        let MutexGuard { _permit, .. } = this;
        Ok(MappedMutexGuard { part, _permit, not_auto: PhantomData })
    }
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// Narrows the guard to a part of the value, keeping the `Arc` (so the guard stays
    /// `'static`): the mutex stays locked until the returned guard is dropped. If `f` panics,
    /// the guard is dropped and the mutex unlocked.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use klaw::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};
    /// let mutex = Arc::new(Mutex::new((1, 2)));
    /// let mut second: OwnedMappedMutexGuard<(i32, i32), i32> =
    ///     OwnedMutexGuard::map(mutex.clone().try_lock_owned().unwrap(), |pair| &mut pair.1);
    /// *second += 40;
    /// drop(second);
    /// assert_eq!(*mutex.try_lock().unwrap(), (1, 42));
    /// ```
    pub fn map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> OwnedMappedMutexGuard<T, U> {
        let part: *mut U = f(&mut *this);
        OwnedMappedMutexGuard { part, mutex: into_mutex(this), not_auto: PhantomData }
    }

    /// Narrows the guard to a part of the value if `f` finds one; else gives the guard back,
    /// still locked.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use klaw::sync::{Mutex, OwnedMutexGuard};
    /// let mutex = Arc::new(Mutex::new(Some(3)));
    /// let inner = OwnedMutexGuard::try_map(mutex.clone().try_lock_owned().unwrap(), Option::as_mut);
    /// assert_eq!(*inner.unwrap(), 3);
    /// ```
    pub fn try_map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<OwnedMappedMutexGuard<T, U>, Self> {
        let Some(part) = f(&mut *this).map(|part| part as *mut U) else { return Err(this) };
        Ok(OwnedMappedMutexGuard { part, mutex: into_mutex(this), not_auto: PhantomData })
    }
}

/// Takes the `Arc` out of an owned guard without unlocking: the permit the guard held passes to
/// whoever holds the `Arc` now.
fn into_mutex<T: ?Sized>(guard: OwnedMutexGuard<T>) -> Arc<Mutex<T>> {
    let guard = ManuallyDrop::new(guard);
    // SAFETY: `guard` is never used or dropped again (`ManuallyDrop`), so the `Arc` is moved
    // out of it exactly once, and its drop (which would give the permit back) never runs.
    unsafe { std::ptr::read(&guard.mutex) }
}

/// A [`MutexGuard`] narrowed to a part of the value by [`MutexGuard::map`]: gives the part;
/// dropping it unlocks.
///
/// ```
/// use klaw::sync::{Mutex, MutexGuard};
/// let mutex = Mutex::new([0u8; 4]);
/// let mut last = MutexGuard::map(mutex.try_lock().unwrap(), |bytes| &mut bytes[3]);
/// *last = 9;
/// drop(last);
/// assert_eq!(*mutex.try_lock().unwrap(), [0, 0, 0, 9]);
/// ```
///
/// # Threads
/// It is `Send` if `U` is, and `Sync` only if `U` is, as a [`MutexGuard`]:
/// ```compile_fail
/// fn shared_between_threads<G: Sync>() {}
/// shared_between_threads::<klaw::sync::MappedMutexGuard<'static, std::cell::Cell<u32>>>();
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MappedMutexGuard<'a, U: ?Sized> {
    /// Taken from the `&mut T` of the guard that held `_permit`.
    part: *mut U,
    /// The mutex's one permit: no other guard exists while it is held.
    _permit: SemaphorePermit<'a>,
    /// Borrows the mutex's value for `'a`; neither `Send` nor `Sync` by itself (see below).
    not_auto: PhantomData<&'a mut U>,
}

/// An [`OwnedMutexGuard`] narrowed to a part of the value by [`OwnedMutexGuard::map`]:
/// `'static`, it holds the `Arc`; dropping it unlocks.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::{Mutex, OwnedMutexGuard};
/// let mutex = Arc::new(Mutex::new(vec![String::from("a")]));
/// let first = OwnedMutexGuard::map(mutex.clone().try_lock_owned().unwrap(), |list| &mut list[0]);
/// std::thread::spawn(move || assert_eq!(*first, "a")).join().unwrap();
/// assert!(mutex.try_lock().is_some()); // unlocked by the thread
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct OwnedMappedMutexGuard<T: ?Sized, U: ?Sized> {
    /// Taken from the `&mut T` of the guard whose permit `mutex` now holds.
    part: *mut U,
    /// Holds the mutex's one permit, detached: the drop gives it back.
    mutex: Arc<Mutex<T>>,
    /// Neither `Send` nor `Sync` by itself (see below).
    not_auto: PhantomData<*mut U>,
}

impl<T: ?Sized, U: ?Sized> Drop for OwnedMappedMutexGuard<T, U> {
    fn drop(&mut self) {
        self.mutex.permit.give_back(1);
    }
}

macro_rules! mapped_impls {
    ($($name:ident [$($generics:tt)*] [$($args:tt)*]),*) => {$(
        impl<$($generics)* U: ?Sized> Deref for $name<$($args)* U> {
            type Target = U;

            fn deref(&self) -> &U {
                // SAFETY: `part` came from a `&mut T` of the value, lent by a guard that held
                // the mutex's one permit, which this guard holds now: no other guard exists, the
                // value lives as long as the mutex this guard keeps borrowed (or owns through
                // its `Arc`), and the `&U` borrows this guard, which cannot lend a `&mut U`
                // meanwhile.
                unsafe { &*self.part }
            }
        }

        impl<$($generics)* U: ?Sized> DerefMut for $name<$($args)* U> {
            fn deref_mut(&mut self) -> &mut U {
                // SAFETY: as in `deref`; `&mut self` makes this the one borrow through it.
                unsafe { &mut *self.part }
            }
        }

        impl<$($generics)* U: ?Sized + fmt::Debug> fmt::Debug for $name<$($args)* U> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($generics)* U: ?Sized + fmt::Display> fmt::Display for $name<$($args)* U> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    )*};
}

mapped_impls!(MappedMutexGuard ['a,] ['a,], OwnedMappedMutexGuard [T: ?Sized,] [T,]);

// SAFETY: as `MutexGuard`: the guard lends `&mut U` to whichever thread holds it (`U: Send` to
// move it there) and `&U` to every thread that shares it (`U: Sync`); its permit is not tied to
// a thread.
unsafe impl<U: ?Sized + Send> Send for MappedMutexGuard<'_, U> {}
// SAFETY: as above.
unsafe impl<U: ?Sized + Sync> Sync for MappedMutexGuard<'_, U> {}
// SAFETY: as above; moving it also moves an `Arc<Mutex<T>>`, whose last drop may drop `T` on the
// thread it moved to (`T: Send`).
unsafe impl<T: ?Sized + Send, U: ?Sized + Send> Send for OwnedMappedMutexGuard<T, U> {}
// SAFETY: sharing it shares only `&U` (`U: Sync`); the `Arc` is not lent out.
unsafe impl<T: ?Sized + Send, U: ?Sized + Sync> Sync for OwnedMappedMutexGuard<T, U> {}

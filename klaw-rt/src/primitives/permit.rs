//! The permits of a [`Semaphore`]: given back when dropped.

use std::fmt;
use std::sync::Arc;

use crate::primitives::semaphore::Semaphore;

/// Permits of a [`Semaphore`], borrowed from it; dropping them gives them back (to the first
/// acquire in line, if one waits). [`forget`](Self::forget) keeps them out for good.
///
/// ```
/// let semaphore = klaw::sync::Semaphore::new(2);
/// let permit: klaw::sync::SemaphorePermit<'_> = semaphore.try_acquire().unwrap();
/// assert_eq!(semaphore.available_permits(), 1);
/// drop(permit);
/// assert_eq!(semaphore.available_permits(), 2);
/// ```
#[must_use = "dropping a permit gives it back at once"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl<'a> SemaphorePermit<'a> {
    pub(super) fn new(semaphore: &'a Semaphore, permits: usize) -> Self {
        SemaphorePermit { semaphore, permits }
    }

    /// Keeps these permits out of the semaphore for good: they are not given back.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(2);
    /// semaphore.try_acquire().unwrap().forget();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        let permits = std::mem::take(&mut self.permits);
        if permits > 0 {
            self.semaphore.forget_held(permits);
        }
    }

    /// Keeps these permits taken with no permit holding them: whoever detaches them gives them
    /// back with `Semaphore::give_back` (an owned `RwLock` guard, which holds the lock's `Arc`
    /// and counts its permits itself). Unlike `forget`, they still count as the semaphore's.
    pub(super) fn detach(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(5);
    /// assert_eq!(semaphore.try_acquire_many(3).unwrap().num_permits(), 3);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Takes `other`'s permits into this one.
    ///
    /// # Panics
    /// If `other` comes from another semaphore.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(3);
    /// let mut permit = semaphore.try_acquire().unwrap();
    /// permit.merge(semaphore.try_acquire_many(2).unwrap());
    /// assert_eq!(permit.num_permits(), 3);
    /// ```
    #[track_caller]
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            std::ptr::eq(self.semaphore, other.semaphore),
            "merging the permits of two different semaphores: a permit can only take in permits \
             of its own semaphore"
        );
        self.permits += std::mem::take(&mut other.permits);
    }

    /// Splits `n` of these permits off into a new permit; `None` if this holds fewer than `n`.
    ///
    /// ```
    /// let semaphore = klaw::sync::Semaphore::new(3);
    /// let mut permit = semaphore.try_acquire_many(3).unwrap();
    /// let one = permit.split(1).unwrap();
    /// assert_eq!((permit.num_permits(), one.num_permits()), (2, 1));
    /// assert!(permit.split(5).is_none());
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        self.permits = self.permits.checked_sub(n)?;
        Some(SemaphorePermit { semaphore: self.semaphore, permits: n })
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.give_back(self.permits);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").field("permits", &self.permits).finish_non_exhaustive()
    }
}

/// Permits of a [`Semaphore`] in an `Arc`, holding the `Arc`: `'static`, so they can move into
/// a spawned task. Dropping them gives them back; [`forget`](Self::forget) keeps them out.
///
/// ```
/// use std::sync::Arc;
/// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
/// let permit: klaw::sync::OwnedSemaphorePermit = semaphore.try_acquire_owned().unwrap();
/// assert!(Arc::ptr_eq(permit.semaphore(), &semaphore));
/// ```
#[must_use = "dropping a permit gives it back at once"]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    pub(super) fn new(semaphore: Arc<Semaphore>, permits: usize) -> Self {
        OwnedSemaphorePermit { semaphore, permits }
    }

    /// Keeps these permits out of the semaphore for good: they are not given back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
    /// semaphore.try_acquire_owned().unwrap().forget();
    /// assert_eq!(semaphore.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        let permits = std::mem::take(&mut self.permits);
        if permits > 0 {
            self.semaphore.forget_held(permits);
        }
    }

    /// How many permits this holds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(4));
    /// assert_eq!(semaphore.try_acquire_many_owned(4).unwrap().num_permits(), 4);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore these permits come from.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
    /// let permit = semaphore.try_acquire_owned().unwrap();
    /// assert_eq!(permit.semaphore().available_permits(), 0);
    /// ```
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// Takes `other`'s permits into this one.
    ///
    /// # Panics
    /// If `other` comes from another semaphore.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(2));
    /// let mut permit = semaphore.try_acquire_owned().unwrap();
    /// permit.merge(semaphore.try_acquire_owned().unwrap());
    /// assert_eq!(permit.num_permits(), 2);
    /// ```
    #[track_caller]
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            Arc::ptr_eq(&self.semaphore, &other.semaphore),
            "merging the permits of two different semaphores: a permit can only take in permits \
             of its own semaphore"
        );
        self.permits += std::mem::take(&mut other.permits);
    }

    /// Splits `n` of these permits off into a new permit; `None` if this holds fewer than `n`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let semaphore = Arc::new(klaw::sync::Semaphore::new(2));
    /// let mut permit = semaphore.try_acquire_many_owned(2).unwrap();
    /// let one = permit.split(1).unwrap();
    /// assert_eq!((permit.num_permits(), one.num_permits()), (1, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        self.permits = self.permits.checked_sub(n)?;
        Some(OwnedSemaphorePermit { semaphore: self.semaphore.clone(), permits: n })
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.give_back(self.permits);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

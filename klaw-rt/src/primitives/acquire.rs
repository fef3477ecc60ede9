//! The futures of [`Semaphore`]'s acquires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::primitives::error::AcquireError;
use crate::primitives::permit::{OwnedSemaphorePermit, SemaphorePermit};
use crate::primitives::semaphore::{Place, Semaphore};

/// The permits an acquire of a lock's semaphore gives (`Mutex`, `RwLock`): a lock never closes
/// its semaphore.
pub(super) fn granted<P>(acquired: Result<P, AcquireError>) -> P {
    acquired.expect("a lock's semaphore is never closed")
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// # Cancel safety
/// Dropping it loses nothing: it leaves the line and gives back the permits it had gathered, to
/// the next in line first.
///
/// ```
/// let semaphore = klaw::sync::Semaphore::new(1);
/// let acquire: klaw::sync::Acquire<'_> = semaphore.acquire();
/// assert_eq!(klaw::runtime::block_on(acquire).unwrap().num_permits(), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    place: Place,
}

impl<'a> Acquire<'a> {
    pub(super) fn new(semaphore: &'a Semaphore, n: usize) -> Self {
        Acquire { semaphore, place: Place::new(n) }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let wanted = this.place.wanted;
        this.semaphore
            .poll_acquire(&mut this.place, cx)
            .map_ok(|()| SemaphorePermit::new(this.semaphore, wanted))
    }
}

impl FusedFuture for Acquire<'_> {
    fn is_terminated(&self) -> bool {
        self.place.done
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.semaphore.leave(&mut self.place);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").field("permits", &self.place.wanted).finish_non_exhaustive()
    }
}

/// The future of [`Semaphore::acquire_owned`] and [`Semaphore::acquire_many_owned`]: `'static`,
/// it holds the semaphore's `Arc`.
///
/// # Cancel safety
/// Dropping it loses nothing: it leaves the line and gives back the permits it had gathered, to
/// the next in line first.
///
/// ```
/// use std::sync::Arc;
/// let semaphore = Arc::new(klaw::sync::Semaphore::new(1));
/// let acquire: klaw::sync::AcquireOwned = semaphore.acquire_owned();
/// let permit = std::thread::spawn(move || klaw::runtime::block_on(acquire)).join().unwrap();
/// assert_eq!(permit.unwrap().num_permits(), 1);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireOwned {
    semaphore: Arc<Semaphore>,
    place: Place,
}

impl AcquireOwned {
    pub(super) fn new(semaphore: Arc<Semaphore>, n: usize) -> Self {
        AcquireOwned { semaphore, place: Place::new(n) }
    }
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let wanted = this.place.wanted;
        this.semaphore
            .poll_acquire(&mut this.place, cx)
            .map_ok(|()| OwnedSemaphorePermit::new(this.semaphore.clone(), wanted))
    }
}

impl FusedFuture for AcquireOwned {
    fn is_terminated(&self) -> bool {
        self.place.done
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.semaphore.leave(&mut self.place);
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned").field("permits", &self.place.wanted).finish_non_exhaustive()
    }
}

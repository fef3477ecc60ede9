//! The errors of [`Semaphore`](super::Semaphore)'s acquires.

/// An acquire on a [closed](super::Semaphore::close) semaphore: no permit will ever be given.
///
/// ```
/// let semaphore = klaw::sync::Semaphore::new(1);
/// semaphore.close();
/// let error = klaw::runtime::block_on(semaphore.acquire()).unwrap_err();
/// assert!(error.to_string().starts_with("the semaphore is closed"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the semaphore is closed, so it gives no permits any more: stop acquiring from it (whoever \
     called `close()` is shutting the work it limits down)"
)]
pub struct AcquireError(pub(super) ());

/// Why [`try_acquire`](super::Semaphore::try_acquire) (or one of its variants) gave no permit.
///
/// ```
/// use klaw::sync::{Semaphore, TryAcquireError};
///
/// let semaphore = Semaphore::new(1);
/// let _held = semaphore.try_acquire().unwrap();
/// assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
/// semaphore.close();
/// assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAcquireError {
    /// The semaphore is closed: it gives no permits any more.
    #[error(
        "the semaphore is closed, so it gives no permits any more: stop acquiring from it \
         (whoever called `close()` is shutting the work it limits down)"
    )]
    Closed,
    /// Not enough permits are free now (or others are already waiting for them, and come first).
    #[error(
        "not enough permits are free now, or others wait for them first: wait for them with \
         `acquire`, or try again later"
    )]
    NoPermits,
}

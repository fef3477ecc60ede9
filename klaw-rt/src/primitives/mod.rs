//! Locks, semaphores and events for tasks: [`Mutex`], [`RwLock`], [`Semaphore`] (with owned
//! permits and several permits at once), [`Barrier`], and the signals [`Event`] (set once,
//! wakes everyone, as in trio) and [`Notify`] (as in tokio). All of them work under any
//! executor, and every async method says in its `# Cancel safety` section what happens if its
//! future is dropped before it completes.
//!
//! What is built on what:
//!
//! | type | on | order of waiters |
//! |---|---|---|
//! | [`Semaphore`], [`Notify`] | `waiters.rs`: a FIFO line under a `crate::sync::Mutex` | first come, first served |
//! | [`Mutex`] | [`Semaphore`] with one permit (as tokio's) | first come, first served |
//! | [`Event`], [`Barrier`] | `crate::sync::wakers`: a `WakerSet` beside their state, under a `crate::sync::Mutex` | all wake |
//! | [`RwLock`] | [`Semaphore`]: a read holds one permit, a write all of them (as tokio's) | first come, first served: no read gets past a waiting write, and a write that ends lets in every read that waited before the next write, at once |
//!
//! Every one of them takes its wakers out of its lock and wakes (or drops) them after the lock is
//! released, and runs no user code under it, so a waker may come back into the primitive that
//! woke it; `loom.rs` models them. (smol-rs's `async-lock` and `event-listener` were not kept:
//! `event-listener` wakes under its own list lock, so a waker that dropped another wait of the
//! same `Mutex`, `Barrier` or `Event` deadlocked; and `async-lock`'s `RwLock` let new reads past
//! a woken writer, and a released write woke one waiting read, which woke the next only once
//! polled.)
#![deny(unsafe_code)] // `mutex.rs` and `rwlock.rs` (with `rwlock/guards.rs`) allow it: the value in their cell

mod acquire;
mod barrier;
mod error;
mod event;
#[cfg(all(test, klaw_loom))]
mod loom;
mod mutex;
mod notify;
mod permit;
mod rwlock;
mod semaphore;
mod waiters;

pub use acquire::{Acquire, AcquireOwned};
pub use barrier::{Barrier, BarrierWait, BarrierWaitResult};
pub use error::{AcquireError, TryAcquireError};
pub use event::{Event, EventWait};
pub use mutex::{
    Lock, LockOwned, MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard,
};
pub use notify::{Notified, Notify, OwnedNotified};
pub use permit::{OwnedSemaphorePermit, SemaphorePermit};
pub use rwlock::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard,
    Read, ReadOwned, RwLock, RwLockReadGuard, RwLockWriteGuard, Write, WriteOwned,
};
pub use semaphore::Semaphore;

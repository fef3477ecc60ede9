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
//! | [`Mutex`], [`Barrier`] | smol-rs's `async-lock` | eventually fair (a waiter starved for 0.5 ms makes the lock fair) |
//! | [`Event`] | smol-rs's `event-listener` | all wake |
//! | [`Semaphore`], [`Notify`] | `waiters.rs`: a FIFO line under a `crate::sync::Mutex` | first come, first served |
//! | [`RwLock`] | [`Semaphore`]: a read holds one permit, a write all of them (as tokio's) | first come, first served: no read gets past a waiting write, and a write that ends lets in every read that waited before the next write, at once |
//!
//! The hand-written ones take every waker out of their lock and wake (or drop) it after the
//! lock is released, and run no user code under it; `loom.rs` models them.
//! (`async-lock`'s `RwLock` was not kept: a waiting writer lost its place to new reads while it
//! was woken, and a released write woke one waiting read, which woke the next only once polled.)
//! (`event-listener`, under `async-lock` and `Event`, wakes under its own list lock.)
#![deny(unsafe_code)] // `rwlock.rs` alone allows it: the value in its cell

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
pub use mutex::{Lock, LockOwned, Mutex, MutexGuard, OwnedMutexGuard};
pub use notify::{Notified, Notify};
pub use permit::{OwnedSemaphorePermit, SemaphorePermit};
pub use rwlock::{
    OwnedRwLockReadGuard, OwnedRwLockWriteGuard, Read, ReadOwned, RwLock, RwLockReadGuard,
    RwLockWriteGuard, Write, WriteOwned,
};
pub use semaphore::Semaphore;

//! `watch(initial)`: one current value; receivers see the latest and wait for changes.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::channel::error::{RecvError, SendError};
use crate::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

struct Waiting {
    wakers: Slab<Waker>,
    senders: usize,
    receivers: usize,
    /// Bumped on every send: the value's version.
    version: u64,
    /// Bumped whenever `wakers` is drained, so a receiver's key is valid only in its epoch.
    epoch: u64,
}

struct Shared<T> {
    value: RwLock<T>,
    waiting: Mutex<Waiting>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock()
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value.read()
    }
}

/// A watch channel holding `initial` until the first send.
///
/// ```
/// let (tx, mut rx) = klaw::channel::watch::channel("starting");
/// assert_eq!(*rx.borrow(), "starting");
/// tx.send("ready").unwrap();
/// klaw::runtime::block_on(async {
///     rx.changed().await.unwrap();
///     assert_eq!(*rx.borrow_and_update(), "ready");
/// });
/// ```
pub fn channel<T>(initial: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(initial),
        waiting: Mutex::new(Waiting {
            wakers: Slab::new(),
            senders: 1,
            receivers: 1,
            version: 0,
            epoch: 0,
        }),
    });
    (Sender { shared: shared.clone() }, Receiver { shared, seen: 0, waiter: None })
}

/// Sets the value of a [`watch`](crate::channel::watch::channel()) channel.
///
/// ```
/// let (tx, rx): (klaw::channel::watch::Sender<u8>, _) = klaw::channel::watch::channel(0);
/// tx.send(1).unwrap();
/// assert_eq!(*rx.borrow(), 1);
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Replaces the value and wakes the receivers; `Err(SendError(value))` if there is no
    /// receiver (the value is then not stored).
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(0);
    /// tx.send(1).unwrap();
    /// assert_eq!(*rx.borrow(), 1);
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.lock().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value whether or not anyone watches, and returns the old one.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(1);
    /// assert_eq!(tx.send_replace(2), 1);
    /// ```
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut slot = self.shared.value.write();
            std::mem::replace(&mut *slot, value)
        };
        let wakers: Vec<Waker> = {
            let mut waiting = self.shared.lock();
            waiting.version += 1;
            waiting.epoch += 1;
            waiting.wakers.drain().collect()
        };
        for waker in wakers {
            waker.wake();
        }
        old
    }

    /// The current value.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(5);
    /// assert_eq!(*tx.borrow(), 5);
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.read())
    }

    /// A new receiver that has seen the current value.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(1);
    /// drop(rx);
    /// let rx = tx.subscribe();
    /// assert!(!rx.has_changed().unwrap());
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        let mut waiting = self.shared.lock();
        waiting.receivers += 1;
        Receiver { shared: self.shared.clone(), seen: waiting.version, waiter: None }
    }

    /// How many receivers exist.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(());
    /// assert_eq!(tx.receiver_count(), 1);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let wakers: Vec<Waker> = {
            let mut waiting = self.shared.lock();
            waiting.senders -= 1;
            if waiting.senders == 0 {
                waiting.epoch += 1;
                waiting.wakers.drain().collect()
            } else {
                Vec::new()
            }
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Sender").field("value", &*self.shared.read()).finish()
    }
}

/// Watches the value of a [`watch`](crate::channel::watch::channel()) channel.
///
/// ```
/// let (tx, mut rx): (_, klaw::channel::watch::Receiver<u8>) = klaw::channel::watch::channel(0);
/// tx.send(5).unwrap();
/// klaw::runtime::block_on(rx.changed()).unwrap();
/// assert_eq!(*rx.borrow_and_update(), 5);
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has seen.
    seen: u64,
    /// This receiver's waker key, and the epoch it belongs to.
    waiter: Option<(usize, u64)>,
}

impl<T> Receiver<T> {
    /// The current value, without marking it seen. Hold the guard briefly: a send waits for it.
    ///
    /// ```
    /// let (_tx, rx) = klaw::channel::watch::channel(String::from("x"));
    /// assert_eq!(rx.borrow().len(), 1);
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.read())
    }

    /// The current value, marking it seen.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(1);
    /// tx.send(2).unwrap();
    /// assert_eq!(*rx.borrow_and_update(), 2);
    /// assert!(!rx.has_changed().unwrap());
    /// ```
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let guard = self.shared.read();
        self.seen = self.shared.lock().version;
        Ref(guard)
    }

    /// True if the value changed since this receiver last marked it seen;
    /// `Err(RecvError::Closed)` if every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(1);
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let waiting = self.shared.lock();
        if waiting.senders == 0 {
            return Err(RecvError::Closed);
        }
        Ok(waiting.version != self.seen)
    }

    /// Waits until the value changes (marking it seen); `Err(RecvError::Closed)` once every
    /// sender is gone. Intermediate values may be skipped: a watch keeps only the latest.
    ///
    /// Cancel safety: dropping the future marks nothing seen; a later `changed` still sees the
    /// change.
    ///
    /// ```
    /// let (tx, mut rx) = klaw::channel::watch::channel(0);
    /// std::thread::spawn(move || tx.send(1).unwrap());
    /// klaw::runtime::block_on(async {
    ///     rx.changed().await.unwrap();
    ///     assert_eq!(*rx.borrow(), 1);
    /// });
    /// ```
    pub fn changed(&mut self) -> Changed<'_, T> {
        Changed { receiver: self }
    }

    fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecvError>> {
        let mut waiting = self.shared.lock();
        if waiting.version != self.seen {
            self.seen = waiting.version;
            if let Some((key, epoch)) = self.waiter.take() {
                if epoch == waiting.epoch {
                    waiting.wakers.remove(key);
                }
            }
            return Poll::Ready(Ok(()));
        }
        if waiting.senders == 0 {
            return Poll::Ready(Err(RecvError::Closed));
        }
        let epoch = waiting.epoch;
        match self.waiter {
            Some((key, at)) if at == epoch => {
                let waker = &mut waiting.wakers[key];
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
            }
            _ => self.waiter = Some((waiting.wakers.insert(cx.waker().clone()), epoch)),
        }
        Poll::Pending
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.lock().receivers += 1;
        Receiver { shared: self.shared.clone(), seen: self.seen, waiter: None }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut waiting = self.shared.lock();
        waiting.receivers -= 1;
        if let Some((key, epoch)) = self.waiter.take() {
            if epoch == waiting.epoch {
                waiting.wakers.remove(key);
            }
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Receiver").field("value", &*self.shared.read()).finish()
    }
}

/// A read guard on a watch channel's value.
///
/// ```
/// let (_tx, rx) = klaw::channel::watch::channel(vec![1, 2]);
/// let value: klaw::channel::watch::Ref<'_, Vec<i32>> = rx.borrow();
/// assert_eq!(value.len(), 2);
/// ```
pub struct Ref<'a, T>(RwLockReadGuard<'a, T>);

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The future of [`Receiver::changed`].
///
/// ```
/// let (tx, mut rx) = klaw::channel::watch::channel(0);
/// tx.send(1).unwrap();
/// let changed: klaw::channel::watch::Changed<'_, i32> = rx.changed();
/// assert_eq!(klaw::runtime::block_on(changed), Ok(()));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll_changed(cx)
    }
}

impl<T> fmt::Debug for Changed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Changed").finish_non_exhaustive()
    }
}

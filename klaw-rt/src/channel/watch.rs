//! `watch(initial)`: one current value; receivers see the latest and wait for changes.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::channel::error::SendError;
use crate::channel::wakers::{Ticket, WaitUntil, Wake, WakerSet};
use crate::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

mod receiver;

pub use receiver::{Changed, Receiver, Ref};

struct Waiting {
    /// Receivers waiting for a change (or the last sender to go).
    changing: WakerSet,
    /// `Sender::closed` futures, waiting for the last receiver to go.
    closing: WakerSet,
    senders: usize,
    receivers: usize,
    version: u64,
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

    /// A handle's `Debug`: the value if it can be read at once, else `<locked>` (a send holds or
    /// waits for the lock), so formatting a handle never waits, not even while this thread
    /// holds a guard and a send waits (see [`Ref`]).
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        T: fmt::Debug,
    {
        let mut out = f.debug_struct(name);
        match self.value.try_read() {
            Some(value) => out.field("value", &*value),
            None => out.field("value", &format_args!("<locked>")),
        };
        out.finish()
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
    let shared = shared(initial, 1);
    (Sender { shared: shared.clone() }, Receiver { shared, seen: 0, ticket: Ticket::default() })
}

/// A channel's shared state, with one sender and `receivers` receivers.
fn shared<T>(initial: T, receivers: usize) -> Arc<Shared<T>> {
    Arc::new(Shared {
        value: RwLock::new(initial),
        waiting: Mutex::new(Waiting {
            changing: WakerSet::default(),
            closing: WakerSet::default(),
            senders: 1,
            receivers,
            version: 0,
        }),
    })
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
    /// A sender of a new channel holding `initial`, with no receiver yet (tokio's
    /// `Sender::new`): [`subscribe`](Self::subscribe) makes them. Until then `send` fails and
    /// gives its value back, while `send_replace` and `send_modify` store theirs.
    ///
    /// ```
    /// let tx = klaw::channel::watch::Sender::new(0);
    /// assert_eq!(tx.receiver_count(), 0);
    /// tx.send_replace(1);
    /// let rx = tx.subscribe();
    /// assert_eq!(*rx.borrow(), 1);
    /// ```
    pub fn new(initial: T) -> Self {
        Sender { shared: shared(initial, 0) }
    }

    /// True if `other` is a sender of the same channel.
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(0);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&klaw::channel::watch::Sender::new(0)));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

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
        let mut guard = self.shared.value.write();
        let old = std::mem::replace(&mut *guard, value);
        let wake = self.new_version();
        drop(guard);
        wake.wake();
        old
    }

    /// Changes the value in place with `modify`, and tells the receivers, whether or not
    /// anyone watches. `modify` runs under the value's write lock: it must not use this channel.
    /// If it panics, the value stays as `modify` left it and the receivers are not told.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(vec![1]);
    /// tx.send_modify(|list| list.push(2));
    /// assert_eq!(*rx.borrow(), [1, 2]);
    /// ```
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Changes the value in place with `modify`, which says whether it changed anything; the
    /// receivers hear of it only if it did. Returns what `modify` returned. `modify` runs under
    /// the value's write lock: it must not use this channel.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(3);
    /// assert!(!tx.send_if_modified(|n| if *n > 5 { *n = 0; true } else { false }));
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// assert!(tx.send_if_modified(|n| { *n += 1; true }));
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let mut guard = self.shared.value.write();
        let wake = modify(&mut guard).then(|| self.new_version());
        drop(guard);
        let modified = wake.is_some();
        if let Some(wake) = wake {
            wake.wake();
        }
        modified
    }

    /// A new version: every receiver has a change to see. Called with the value's write lock
    /// held, so that whoever holds the read lock sees a value and the version it belongs to
    /// (a receiver that marks a version seen as it reads the value never sees that value again
    /// as a later change). Gives back the waiting receivers, to wake once every lock is released.
    fn new_version(&self) -> Wake {
        let mut waiting = self.shared.lock();
        waiting.version += 1;
        waiting.changing.take_all()
    }

    /// True if every receiver is gone, so a `send` would fail.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(0);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receivers == 0
    }

    /// Waits until every receiver is gone.
    ///
    /// Cancel safety: dropping it loses nothing.
    ///
    /// ```
    /// let (tx, rx) = klaw::channel::watch::channel(0);
    /// std::thread::spawn(move || drop(rx));
    /// klaw::runtime::block_on(tx.closed());
    /// assert!(tx.is_closed());
    /// ```
    pub fn closed(&self) -> Closed<'_, T> {
        let shared = &self.shared.waiting;
        let waiting = WaitUntil::new(shared, |waiting| &mut waiting.closing, |w| w.receivers == 0);
        Closed(waiting, PhantomData)
    }

    /// The current value. Hold the guard briefly: a send waits for it (see [`Ref`]).
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(5);
    /// assert_eq!(*tx.borrow(), 5);
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref { guard: self.shared.read(), changed: false }
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
        let seen = waiting.version;
        drop(waiting);
        Receiver { shared: self.shared.clone(), seen, ticket: Ticket::default() }
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

    /// How many senders exist (a sender's clones count).
    ///
    /// ```
    /// let (tx, _rx) = klaw::channel::watch::channel(());
    /// let other = tx.clone();
    /// assert_eq!(tx.sender_count(), 2);
    /// drop(other);
    /// assert_eq!(tx.sender_count(), 1);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.shared.lock().senders
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
        let mut waiting = self.shared.lock();
        waiting.senders -= 1;
        let wake = if waiting.senders == 0 { waiting.changing.take_all() } else { Wake::default() };
        drop(waiting);
        wake.wake();
    }
}

/// Shows the value if it can be read at once, else `<locked>`. The value's `Debug` runs under
/// its read lock: it must not send on this channel.
impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.debug("watch::Sender", f)
    }
}

/// The future of [`Sender::closed`].
///
/// ```
/// let (tx, rx) = klaw::channel::watch::channel(0);
/// drop(rx);
/// let closed: klaw::channel::watch::Closed<'_, i32> = tx.closed();
/// klaw::runtime::block_on(closed);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T>(WaitUntil<'a, Waiting>, PhantomData<&'a Shared<T>>);

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll(cx)
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Closed").finish_non_exhaustive()
    }
}

/// The channel's errors where tokio keeps them (`tokio::sync::watch::error`), so code written
/// against tokio's paths needs no change here.
///
/// ```
/// use klaw::channel::watch::error::{RecvError, SendError};
/// let (tx, rx) = klaw::channel::watch::channel(0);
/// drop(rx);
/// assert_eq!(tx.send(1), Err(SendError(1)));
/// # let _: Option<RecvError> = None;
/// ```
pub mod error {
    pub use crate::channel::error::{RecvError, SendError};
}

//! `Event`: a flag that is set once, and wakes every waiter.
//!
//! The waiters' wakers sit in a `WakerSet` under the event's lock, and `sync::wakers` clones,
//! drops and wakes them only outside it, so a waker may come back into the event (wait on it,
//! drop another wait) when it is woken.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::sync::wakers::{Ticket, WakerSet, leave, poll_or_wait};
use crate::sync::{AtomicBool, Mutex, Ordering};

/// A one-shot event, as in trio: [`set`](Self::set) once, and every [`wait`](Self::wait), now
/// or later, returns. It cannot be unset. For a signal that is consumed by one waiter, or that
/// wakes only those waiting now, see [`Notify`](crate::primitives::Notify).
///
/// Works under any executor.
///
/// ```
/// use std::sync::Arc;
/// use klaw::sync::Event;
///
/// #[klaw::main(workers = 2)]
/// async fn main() -> Result<(), klaw::Error> {
///     let ready = Arc::new(Event::new());
///     klaw::scope!(|s| {
///         for _ in 0..3 {
///             let ready = ready.clone();
///             s.spawn(async move { ready.wait().await });
///         }
///         ready.set(); // all three wake
///         Ok(())
///     })?;
///     ready.wait().await; // and so does any later wait
///     Ok(())
/// }
/// ```
pub struct Event {
    /// Set once, never unset: a wait that finds it set takes no lock.
    set: AtomicBool,
    /// The waiting futures' wakers. `set` stores the flag before it takes them, and a wait looks
    /// at the flag again under this lock before it registers, so no wake-up falls in between.
    waiters: Mutex<WakerSet>,
}

impl Event {
    /// An event not set yet.
    ///
    /// ```
    /// assert!(!klaw::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Self {
        Event { set: AtomicBool::new(false), waiters: Mutex::new(WakerSet::default()) }
    }

    /// Sets the event and wakes every waiter. Setting it again does nothing.
    ///
    /// ```
    /// let event = klaw::sync::Event::new();
    /// event.set();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            let wake = self.waiters.lock().take_all();
            wake.wake(); // after the lock
        }
    }

    /// True once [`set`](Self::set) was called.
    ///
    /// ```
    /// let event = klaw::sync::Event::new();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waits until the event is set; at once if it is.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the event stays set, and every other waiter is woken
    /// all the same.
    ///
    /// ```
    /// let event = klaw::sync::Event::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     klaw::runtime::block_on(event.wait());
    /// });
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait { event: self, ticket: Ticket::default(), done: false }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).finish()
    }
}

/// The future of [`Event::wait`].
///
/// # Cancel safety
/// Dropping it loses nothing: the event stays set, and every other waiter is woken all the same.
///
/// ```
/// let event = klaw::sync::Event::new();
/// event.set();
/// let wait: klaw::sync::EventWait<'_> = event.wait();
/// klaw::runtime::block_on(wait);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    /// Its waker's place among the event's waiters, once it waits.
    ticket: Ticket,
    done: bool,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let event = this.event;
        let polled = if event.is_set() {
            leave(&event.waiters, |set| set, &mut this.ticket);
            Poll::Ready(())
        } else {
            poll_or_wait(
                &event.waiters,
                |set| set,
                &mut this.ticket,
                cx,
                |_| event.is_set().then_some(()),
            )
        };
        this.done = polled.is_ready();
        polled
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        leave(&self.event.waiters, |set| set, &mut self.ticket);
    }
}

impl FusedFuture for EventWait<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait").field("set", &self.event.is_set()).finish_non_exhaustive()
    }
}

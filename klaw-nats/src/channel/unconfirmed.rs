//! The acknowledgements of a channel's receives that the server has not confirmed yet, which
//! `len` and a send that finds the channel full wait for.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use klaw_rt::primitives::Notify;

use crate::connection::{Connection, PerChannel, shared_per_channel};

/// The acknowledgements of one channel's receives, sent on one connection, that the server has
/// not confirmed yet. A `recv` does not wait for the confirmation (one more round trip per
/// message); `len` waits instead for those sent before it was called, and so do `try_send`
/// and `send` when the server finds the channel full, so that within the connection the room
/// a `recv` frees is there, and `len` no longer counts its message, once that `recv` has
/// returned. One per channel and connection, so that every handle of the channel opened on
/// the connection waits for the receives of all.
#[derive(Default)]
pub(crate) struct Unconfirmed {
    tickets: Mutex<Tickets>,
    /// Notified each time a ticket is settled. klaw's `Notify`, which wakes its waiters after
    /// its lock: a waiter's waker (the executor's code) may drop another waiter, which takes
    /// that lock (`tests::a_waker_woken_by_a_settled_ack_may_drop_another_wait`).
    settled: Notify,
}

#[derive(Default)]
struct Tickets {
    /// The number of the next acknowledgement: every one below it was sent before.
    next: u64,
    /// Those sent whose request has not ended (confirmed, or given up by the client).
    out: BTreeSet<u64>,
}

/// The channels' [`Unconfirmed`] on one connection, by stream name, while a handle lives.
pub(crate) type UnconfirmedByChannel = PerChannel<Unconfirmed>;

impl Unconfirmed {
    /// The one of the channel whose stream is `stream` on `connection`; made if none lives.
    pub(crate) fn of(connection: &Connection, stream: &str) -> Arc<Self> {
        shared_per_channel(&connection.unconfirmed, stream)
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        // No code under this lock panics; poisoned tickets are still sound.
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an acknowledgement about to be sent as out until the ticket is dropped.
    pub(crate) fn send(self: &Arc<Self>) -> Ticket {
        let mut tickets = self.lock();
        let number = tickets.next;
        tickets.next += 1;
        tickets.out.insert(number);
        drop(tickets);
        Ticket { unconfirmed: self.clone(), number }
    }

    /// `Some` of the number of the next acknowledgement if any sent before is still out: the
    /// bound to give [`settled`](Self::settled). `None` if the server has settled them all, so
    /// what it says now already counts every receive that returned.
    pub(crate) fn out(&self) -> Option<u64> {
        let tickets = self.lock();
        (!tickets.out.is_empty()).then_some(tickets.next)
    }

    /// Waits until every acknowledgement numbered below `before` has settled. Those sent later
    /// are not waited for, so a steady stream of receives cannot hold a caller back for ever.
    pub(crate) async fn settled(&self, before: u64) {
        loop {
            // Made before looking: a ticket settled in between still completes it.
            let notified = self.settled.notified();
            let oldest = self.lock().out.first().copied();
            if oldest.is_none_or(|oldest| oldest >= before) {
                return;
            }
            notified.await;
        }
    }
}

/// An acknowledgement sent and not yet settled.
pub(crate) struct Ticket {
    unconfirmed: Arc<Unconfirmed>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.unconfirmed.lock().out.remove(&self.number);
        // Once the lock is released: the waiters woken may look at the tickets at once.
        self.unconfirmed.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use super::*;

    /// A wait for acknowledgements, owning its `Unconfirmed`.
    type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn wait(unconfirmed: &Arc<Unconfirmed>, before: u64) -> Wait {
        let unconfirmed = unconfirmed.clone();
        Box::pin(async move { unconfirmed.settled(before).await })
    }

    /// A waker that drops the wait it keeps when woken, counting its wake-ups.
    struct DropOnWake {
        kept: Mutex<Option<Wait>>,
        woken: AtomicUsize,
    }

    impl Wake for DropOnWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
            let kept = self.kept.lock().unwrap().take();
            drop(kept); // outside this waker's own lock
        }
    }

    /// An executor's waker may run code, here dropping another wait for the same channel's
    /// acknowledgements when an acknowledgement settles. The drop takes the notification's
    /// lock, so a notification that woke its waiters under that lock (event-listener's
    /// `notify` does) would never return.
    #[test]
    fn a_waker_woken_by_a_settled_ack_may_drop_another_wait() {
        let unconfirmed = Arc::new(Unconfirmed::default());
        let ticket = unconfirmed.send();
        let before = unconfirmed.out().expect("one acknowledgement is out");
        let mut other = wait(&unconfirmed, before);
        let mut noop = Context::from_waker(Waker::noop());
        assert!(other.as_mut().poll(&mut noop).is_pending(), "the other wait waits too");
        let dropper = Arc::new(DropOnWake { kept: Mutex::new(Some(other)), woken: 0.into() });
        let mut first = wait(&unconfirmed, before);
        let waker = Waker::from(dropper.clone());
        assert!(first.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());

        let (settled_tx, settled) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(ticket); // settles the acknowledgement and wakes both waits
            settled_tx.send(()).unwrap();
        });
        if settled.recv_timeout(Duration::from_secs(10)).is_err() {
            // Deadlocked: dropping the first wait would take the same lock, so it is leaked to
            // let the test fail rather than hang.
            std::mem::forget(first);
            panic!("settling an acknowledgement never returned: a woken waker dropped a wait");
        }
        assert_eq!(dropper.woken.load(Ordering::SeqCst), 1);
        assert!(dropper.kept.lock().unwrap().is_none(), "the other wait was dropped");
        assert!(first.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    }
}

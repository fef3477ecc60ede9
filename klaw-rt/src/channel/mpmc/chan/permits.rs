//! Permits: places reserved ahead of their sends (`reserve`, the `Sink`, `select!`'s `send`
//! arms), and the pushes that must count them. While any permit is out, `PERMITS_OUT` sends every
//! push through the permit lock, so no push takes a reserved place.

use std::task::{Context, Poll};

use super::Chan;
use crate::channel::error::{SendError, TrySendError};
use crate::channel::mpmc::ring::{CLOSED, PERMITS_OUT, Pop, Push, SENDERS_WAIT};
use crate::coop;

impl<T> Chan<T> {
    /// A push while permits are out: under the permit lock, which counts them. A close is
    /// looked for first: the channel may have closed since the push that sent this one here
    /// found it open, and a closed channel answers `Closed`, full or not.
    #[cold]
    pub(super) fn push_counting_permits(&self, value: T) -> Result<(), TrySendError<T>> {
        let pushed = {
            let permits = self.permits.lock();
            let capacity = self.capacity.expect("only a bounded channel has permits out");
            if self.buffer.is_closed() {
                return Err(TrySendError::Closed(value));
            }
            if *permits > 0 && self.buffer.len() + *permits >= capacity {
                return Err(TrySendError::Full(value));
            }
            self.buffer.push(value, true)
        };
        self.settle(pushed)
    }

    /// One poll of a `reserve`: `Ok` once a place is reserved, `Err` if the channel is closed.
    /// Budgeted as [`poll_recv`](Self::poll_recv) is: with the budget spent, it yields before
    /// it reserves anything. `lingers`: the waiter is kept in a handle (the `Sink`).
    pub(crate) fn poll_reserve(
        &self,
        waiter: &mut Option<usize>,
        lingers: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ()>> {
        if self.held_leaving_line(waiter, Self::leave_senders) {
            return Poll::Pending; // nothing reserved
        }
        coop::budgeted_unheld(cx, |cx| {
            if waiter.is_none() {
                match self.try_reserve() {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(TrySendError::Closed(())) => return Poll::Ready(Err(())),
                    Err(TrySendError::Full(())) => {}
                }
            }
            self.wait_for_place(waiter, lingers, cx, &mut Some(()), |()| self.try_reserve())
                .map(|reserved| reserved.map_err(drop))
        })
    }

    /// Reserves a place now if there is one.
    pub(crate) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let Some(capacity) = self.capacity else {
            // Unbounded: there is always a place, nothing to count.
            return if self.is_closed() { Err(TrySendError::Closed(())) } else { Ok(()) };
        };
        let mut permits = self.permits.lock();
        // Up first, so every push from here on is counted; pushes already past it are in `len`.
        let before = self.buffer.set_tail_flag(PERMITS_OUT);
        let refused = if before & CLOSED != 0 {
            TrySendError::Closed(())
        } else if self.buffer.len() + *permits >= capacity {
            TrySendError::Full(())
        } else {
            *permits += 1;
            return Ok(());
        };
        if *permits == 0 {
            self.buffer.clear_tail_flag(PERMITS_OUT);
        }
        Err(refused)
    }

    /// Pushes `value` even if the channel is full, taking the oldest message out to make room;
    /// gives back that message. Under the permit lock with `PERMITS_OUT` up, no other push can
    /// take a place meanwhile (pops only make room) and the channel cannot close (`close` takes
    /// the lock too), so one message out always makes room for one in. `Full(value)` only if
    /// every free place is reserved by a permit and nothing is queued to take out.
    pub(crate) fn force_push(&self, value: T) -> Result<Option<T>, TrySendError<T>> {
        let Some(capacity) = self.capacity else {
            return self.try_push(value).map(|()| None);
        };
        let (pushed, displaced) = {
            let permits = self.permits.lock();
            let before = self.buffer.set_tail_flag(PERMITS_OUT);
            let mut displaced = None;
            let pushed = if before & CLOSED != 0 {
                Push::Closed(value)
            } else {
                loop {
                    if self.buffer.len() + *permits < capacity {
                        break self.buffer.push(value, true);
                    }
                    match self.buffer.pop() {
                        // Room for one: the loop pushes next (the length only falls meanwhile).
                        Pop::Popped { value: oldest, .. } => displaced = Some(oldest),
                        // A receiver emptied it meanwhile: look again, unless permits hold it all.
                        Pop::Empty | Pop::Closed if *permits < capacity => {}
                        Pop::Empty | Pop::Closed => break Push::Full(value),
                    }
                }
            };
            if *permits == 0 {
                self.buffer.clear_tail_flag(PERMITS_OUT);
            }
            (pushed, displaced)
        };
        self.settle(pushed).map(|()| displaced)
    }

    /// Uses a reserved place. On a closed channel the value comes back.
    pub(crate) fn send_with_permit(&self, value: T) -> Result<(), SendError<T>> {
        if self.capacity.is_none() {
            return self.try_push(value).map_err(|refused| SendError(refused.into_inner()));
        }
        let pushed = {
            let mut permits = self.permits.lock();
            *permits -= 1;
            let pushed = self.buffer.push(value, true);
            if *permits == 0 {
                self.buffer.clear_tail_flag(PERMITS_OUT);
            }
            pushed
        };
        match self.settle(pushed) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(value)) => Err(SendError(value)),
            Err(TrySendError::Full(_)) => {
                unreachable!("a reserved place is free: while permits are out, pushes count them")
            }
        }
    }

    /// A reserved place comes back unused: it may be the one a waiting sender needs.
    pub(crate) fn release_permit(&self) {
        if self.capacity.is_none() {
            return;
        }
        {
            let mut permits = self.permits.lock();
            *permits -= 1;
            if *permits == 0 {
                self.buffer.clear_tail_flag(PERMITS_OUT);
            }
        }
        if self.buffer.head_flags() & SENDERS_WAIT != 0 {
            self.wake_a_sender();
        }
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::*;

    /// A push sent to the permit lock by a `PermitsOut` it saw before the channel closed: the
    /// close wins over a full channel, as every other push on a closed channel says `Closed`.
    #[test]
    fn a_push_counted_against_permits_on_a_channel_closed_meanwhile_says_closed_even_when_full() {
        let chan = Chan::<u32>::new(Some(2));
        chan.try_push(1).unwrap();
        chan.try_reserve().unwrap(); // one queued and one reserved: full
        assert!(chan.close());
        assert!(matches!(chan.push_counting_permits(3), Err(TrySendError::Closed(3))));
        assert!(matches!(chan.try_push(4), Err(TrySendError::Closed(4))));
    }
}

//! The bounded buffer: a lock-free ring of `capacity` slots (Vyukov's bounded MPMC queue), whose
//! head and tail words also carry the flags of the waiting protocol.
//!
//! Each slot has a *stamp*: the position a push may write it at, or that position plus one once
//! it holds a value. A position is `lap + index` with `index < capacity` and a lap of
//! `(capacity + 1).next_power_of_two()`, so "free at this lap" and "full at this lap" never look
//! alike. A push claims the tail position with a CAS and then writes its slot; a pop claims the
//! head position and then reads its slot. Producers only write `tail`, consumers only `head`, and
//! both padded to their own cache lines, so a producer and a consumer on two cores share nothing
//! but the slots themselves. Beside each word, on its line, a plain copy of the value it was last
//! moved to serves the fast path as its guess at the word ([`Cursor`]).
//!
//! The flags live in the low bits of the same words, which is what makes the waiting protocol
//! free on the fast path and race-free on the slow one: a receiver that is about to wait sets
//! [`RECEIVERS_WAIT`] with an RMW on `tail`, and every push's CAS on `tail` is ordered with it.
//! Either the push comes first (the receiver's re-check then sees its position in `tail`), or it
//! comes after (its CAS sees the flag and the pusher wakes a receiver). Senders waiting for a
//! place do the same with [`SENDERS_WAIT`] on `head`. No fence is needed, and a push or pop
//! that finds no flag set does no work for the protocol at all.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Backoff, Ordering, UnsafeCell};

/// `tail` flag: the channel is closed; no push succeeds from now on.
pub(crate) const CLOSED: usize = 1;
/// `tail` flag: receivers are waiting for a message (their list is not empty).
pub(crate) const RECEIVERS_WAIT: usize = 1 << 1;
/// `tail` flag: permits are out, so pushes go through the permit lock, which counts them.
pub(crate) const PERMITS_OUT: usize = 1 << 2;
/// `head` flag: senders are waiting for a place (their list is not empty).
pub(crate) const SENDERS_WAIT: usize = 1;
/// Low bits of `head` and `tail` that hold flags; positions are stored above them.
const FLAG_BITS: u32 = 3;
const FLAGS: usize = (1 << FLAG_BITS) - 1;
/// How many more looks [`Ring::looks_full`] takes at a full place's stamp: the backoff's first
/// spins, 1 + 2 + 4 `pause`s, about as long as a pop takes to free a place it has claimed.
const QUICK_LOOKS: usize = 3;
/// Positions wrap at this mask (they are stored shifted left by `FLAG_BITS`).
const POSITION_MASK: usize = usize::MAX >> FLAG_BITS;

/// What became of a value offered to the buffer.
pub(crate) enum Push<T> {
    /// In the buffer; `receivers_wait` if the receivers' flag was set when it went in.
    Pushed {
        receivers_wait: bool,
    },
    Full(T),
    Closed(T),
    /// Permits are out: the push must go through the permit lock (see `Chan`).
    PermitsOut(T),
}

/// What a pop found.
pub(crate) enum Pop<T> {
    /// A value; `senders_wait` if the senders' flag was set when it was taken.
    Popped {
        value: T,
        senders_wait: bool,
    },
    Empty,
    /// Empty, and closed: nothing will ever come.
    Closed,
}

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// One end of the ring: its word (position and flags), and a plain copy of the value the last
/// push (or pop) on this end moved it to, on the same cache line.
///
/// Why the copy: the fast path needs the word's current value as the expected value of its
/// CAS. On the 2-core AMD EPYC machines the benches run on, a load of a word that a locked
/// instruction (the previous operation's CAS) has just written waits for that instruction to
/// finish, which a load of an ordinary store does not. Reading the copy instead took one
/// thread's `try_send` plus `try_recv` from 8.5 to 6.3 ns (`benches/FINDINGS.md`).
///
/// The copy is only a guess, and the CAS checks it. A CAS that expects the copy succeeds only
/// if the word holds exactly that value at the CAS; positions only grow, so then no operation
/// has claimed that position yet, and the slot's stamp the fast path read before the CAS is as
/// valid as after a fresh load of the word. A stale copy (another thread moved the word, or a
/// flag went up or down) fails the CAS, or the stamp check before it, and the operation goes
/// through its loop, which loads the word itself.
struct Cursor {
    word: AtomicUsize,
    last_move: AtomicUsize,
}

impl Cursor {
    fn new() -> Self {
        Cursor { word: AtomicUsize::new(0), last_move: AtomicUsize::new(0) }
    }

    /// The guess at the word's value (see the type's doc).
    #[inline(always)]
    fn last_moved_to(&self) -> usize {
        self.last_move.load(Ordering::Relaxed)
    }

    /// Moves the word from `from` on to `to` if it still holds `from` (a weak CAS: it may fail
    /// spuriously), and then records the move; gives the word's value if it did not move it.
    #[inline(always)]
    fn move_on(&self, from: usize, to: usize) -> Result<(), usize> {
        self.word.compare_exchange_weak(from, to, Ordering::AcqRel, Ordering::Relaxed)?;
        self.last_move.store(to, Ordering::Relaxed);
        Ok(())
    }
}

pub(crate) struct Ring<T> {
    /// Position of the next pop, shifted, with `SENDERS_WAIT` (and a guess at it: [`Cursor`]).
    head: CachePadded<Cursor>,
    /// Position of the next push, shifted, with `CLOSED`, `RECEIVERS_WAIT` and `PERMITS_OUT`
    /// (and a guess at it).
    tail: CachePadded<Cursor>,
    /// `capacity` slots between `PADDING` unused ones on each side, so no other allocation
    /// shares (or prefetches along with) a cache line with a slot in use.
    slots: Box<[Slot<T>]>,
    capacity: usize,
    one_lap: usize,
    /// `one_lap - 1`: a position's index bits.
    index_mask: usize,
}

/// Bytes kept clear around the slots: two cache lines, as adjacent-line prefetchers pair them.
const PADDING: usize = 128;

// SAFETY: values move between threads through the slots (`T: Send`); a slot's value is written
// only by the push that claimed its position and read only by the pop that claimed it, each
// ordered by the slot's stamp (Release after the access, Acquire before the next one).
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; `&Ring` only moves values in and out, never shares a `&T`.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(
            capacity > 0 && capacity <= super::buffer::RING_MAX_CAPACITY,
            "a ring holds 1..=RING_MAX_CAPACITY slots"
        );
        let padding = Self::padding();
        let one_lap = (capacity + 1).next_power_of_two();
        let slots = (0..capacity + 2 * padding)
            .map(|index| Slot {
                // Padding slots are never used; their stamps are never read.
                stamp: AtomicUsize::new(index.wrapping_sub(padding)),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: CachePadded::new(Cursor::new()),
            tail: CachePadded::new(Cursor::new()),
            slots,
            capacity,
            one_lap,
            index_mask: one_lap - 1,
        }
    }

    fn padding() -> usize {
        PADDING.div_ceil(size_of::<Slot<T>>().max(1))
    }

    /// The slot of `position`.
    #[inline]
    fn slot(&self, position: usize) -> &Slot<T> {
        let index = Self::padding() + (position & self.index_mask);
        debug_assert!(
            index < self.slots.len() - Self::padding(),
            "a position's index is below capacity"
        );
        // SAFETY: every position in `head` and `tail` is 0 or came from `next`, whose index bits
        // are always below `capacity`; `slots` holds `capacity` slots after `padding` ones.
        unsafe { self.slots.get_unchecked(index) }
    }

    /// The position after `position`.
    #[inline]
    fn next(&self, position: usize) -> usize {
        let index = position & self.index_mask;
        if index + 1 < self.capacity {
            position + 1
        } else {
            (position - index).wrapping_add(self.one_lap) & POSITION_MASK
        }
    }

    /// True if a slot whose stamp is `stamp` still holds the value pushed one lap before
    /// `position`: not popped yet, or being popped right now.
    #[inline(always)]
    fn holds_last_lap(&self, stamp: usize, position: usize) -> bool {
        stamp.wrapping_add(self.one_lap) & POSITION_MASK == position + 1
    }

    /// Pushes `value` unless the ring is full or closed, or permits are out and `counted` is
    /// false (the caller holds the permit lock and has counted this push when it is true).
    ///
    /// The common case is tried once, inline, with the tail's last value as this end last moved
    /// it ([`Cursor`]): no flag that turns pushes away, the place free at this lap, and the
    /// compare-and-swap won. Anything else (a full ring, a lost race, a flag, a stale guess)
    /// goes through [`push_looping`](Self::push_looping), out of line, so the inlined path holds
    /// no loop and no backoff and its result stays in registers.
    #[inline(always)]
    pub(crate) fn push(&self, value: T, counted: bool) -> Push<T> {
        let tail = self.tail.last_moved_to();
        let position = tail >> FLAG_BITS;
        let slot = self.slot(position);
        if tail & (CLOSED | PERMITS_OUT) == 0 && slot.stamp.load(Ordering::Acquire) == position {
            let next = (self.next(position) << FLAG_BITS) | (tail & FLAGS);
            if self.tail.move_on(tail, next).is_ok() {
                return Self::fill(slot, position, value, tail);
            }
        }
        self.push_looping(value, counted)
    }

    /// Writes `value` into `slot`, whose `position` this push has just claimed by moving the
    /// tail word on from `tail`, having read (Acquire) the stamp that says the place is free.
    #[inline(always)]
    fn fill(slot: &Slot<T>, position: usize, value: T, tail: usize) -> Push<T> {
        // SAFETY: the CAS gave this push the slot's position, and its stamp (read with Acquire
        // before the CAS) says the last pop of it is done: no one else touches the value until
        // the stamp below says it is there.
        slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
        slot.stamp.store(position + 1, Ordering::Release);
        Push::Pushed { receivers_wait: tail & RECEIVERS_WAIT != 0 }
    }

    /// [`push`](Self::push), trying until the value is in or turned away.
    #[inline(never)]
    fn push_looping(&self, value: T, counted: bool) -> Push<T> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.word.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Push::Closed(value);
            }
            if tail & PERMITS_OUT != 0 && !counted {
                return Push::PermitsOut(value);
            }
            let position = tail >> FLAG_BITS;
            let slot = self.slot(position);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == position {
                let next = (self.next(position) << FLAG_BITS) | (tail & FLAGS);
                match self.tail.move_on(tail, next) {
                    Ok(()) => return Self::fill(slot, position, value, tail),
                    Err(current) => {
                        // Another push won the position: back off before trying the next one,
                        // so two cores do not take turns invalidating the line.
                        backoff.spin();
                        tail = current;
                    }
                }
            } else if self.holds_last_lap(stamp, position) {
                // The slot still holds last lap's value: full, unless a pop has claimed it and
                // is reading it right now. `head` tells which.
                let head = self.head.word.load(Ordering::Acquire) >> FLAG_BITS;
                if head.wrapping_add(self.one_lap) & POSITION_MASK == position {
                    return Push::Full(value);
                }
                backoff.spin();
                tail = self.tail.word.load(Ordering::Relaxed);
            } else {
                // Another push claimed this position and has not written yet: look again.
                backoff.spin();
                tail = self.tail.word.load(Ordering::Relaxed);
            }
        }
    }

    /// True if the place the next push needs still holds last lap's value, and still does after
    /// a few short spins: the ring is full, or a pop that has claimed the place is half-way
    /// through taking the value out. Reads the tail and that place's stamp, never `head`.
    #[cold]
    pub(crate) fn looks_full(&self) -> bool {
        let position = self.tail.word.load(Ordering::Relaxed) >> FLAG_BITS;
        let slot = self.slot(position);
        if !self.holds_last_lap(slot.stamp.load(Ordering::Acquire), position) {
            return false;
        }
        let mut backoff = Backoff::new();
        for _ in 0..QUICK_LOOKS {
            backoff.spin();
            if !self.holds_last_lap(slot.stamp.load(Ordering::Acquire), position) {
                return false;
            }
        }
        true
    }

    /// Pops the oldest value, if there is one. As for [`push`](Self::push), the common case
    /// (a value at the head, the compare-and-swap won, the head guessed from its last move) is
    /// tried once inline, and everything else goes through [`pop_looping`](Self::pop_looping).
    #[inline(always)]
    pub(crate) fn pop(&self) -> Pop<T> {
        let head = self.head.last_moved_to();
        let position = head >> FLAG_BITS;
        let slot = self.slot(position);
        if slot.stamp.load(Ordering::Acquire) == position + 1 {
            let next = (self.next(position) << FLAG_BITS) | (head & FLAGS);
            if self.head.move_on(head, next).is_ok() {
                return self.take(slot, position, head);
            }
        }
        self.pop_looping()
    }

    /// Takes the value out of `slot`, whose `position` this pop has just claimed by moving the
    /// head word on from `head`, having read (Acquire) the stamp that says the value is there.
    #[inline(always)]
    fn take(&self, slot: &Slot<T>, position: usize, head: usize) -> Pop<T> {
        // SAFETY: the CAS gave this pop the slot's position, and its stamp (read with Acquire
        // before the CAS) says the push that wrote it is done: the value is initialised and only
        // this pop reads it, once.
        let value = slot.value.with(|cell| unsafe { (*cell).assume_init_read() });
        let free = position.wrapping_add(self.one_lap) & POSITION_MASK;
        slot.stamp.store(free, Ordering::Release);
        Pop::Popped { value, senders_wait: head & SENDERS_WAIT != 0 }
    }

    /// [`pop`](Self::pop), trying until it has a value or the ring is empty.
    #[inline(never)]
    fn pop_looping(&self) -> Pop<T> {
        let mut backoff = Backoff::new();
        let mut head = self.head.word.load(Ordering::Relaxed);
        loop {
            let position = head >> FLAG_BITS;
            let slot = self.slot(position);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == position + 1 {
                let next = (self.next(position) << FLAG_BITS) | (head & FLAGS);
                match self.head.move_on(head, next) {
                    Ok(()) => return self.take(slot, position, head),
                    Err(current) => {
                        // Another pop won the position: back off, as for a push.
                        backoff.spin();
                        head = current;
                    }
                }
            } else if stamp == position {
                // Nothing written here yet: empty, unless a push has claimed the position and is
                // writing it right now. `tail` tells which.
                let tail = self.tail.word.load(Ordering::Acquire);
                if tail >> FLAG_BITS == position {
                    return if tail & CLOSED != 0 { Pop::Closed } else { Pop::Empty };
                }
                backoff.spin();
                head = self.head.word.load(Ordering::Relaxed);
            } else {
                // Another pop took this position: look again.
                backoff.spin();
                head = self.head.word.load(Ordering::Relaxed);
            }
        }
    }

    /// How many values are in the ring (claimed positions count).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.word.load(Ordering::Acquire);
            let head = self.head.word.load(Ordering::Acquire);
            // Both read at one moment only if `tail` did not move in between.
            if self.tail.word.load(Ordering::Acquire) == tail {
                let (head, tail) = (head >> FLAG_BITS, tail >> FLAG_BITS);
                let (head_index, tail_index) = (head & self.index_mask, tail & self.index_mask);
                return if head_index < tail_index {
                    tail_index - head_index
                } else if head_index > tail_index {
                    self.capacity - head_index + tail_index
                } else if head == tail {
                    0
                } else {
                    self.capacity
                };
            }
        }
    }

    /// Sets `flag` in the tail word; returns the word before.
    pub(crate) fn set_tail_flag(&self, flag: usize) -> usize {
        self.tail.word.fetch_or(flag, Ordering::AcqRel)
    }

    pub(crate) fn clear_tail_flag(&self, flag: usize) {
        self.tail.word.fetch_and(!flag, Ordering::AcqRel);
    }

    pub(crate) fn set_head_flag(&self, flag: usize) {
        self.head.word.fetch_or(flag, Ordering::AcqRel);
    }

    pub(crate) fn clear_head_flag(&self, flag: usize) {
        self.head.word.fetch_and(!flag, Ordering::AcqRel);
    }

    pub(crate) fn head_flags(&self) -> usize {
        self.head.word.load(Ordering::Acquire) & FLAGS
    }

    pub(crate) fn tail_flags(&self) -> usize {
        self.tail.word.load(Ordering::Acquire) & FLAGS
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Exclusive access: drop every value still in the ring, from head to tail.
        let head = self.head.word.load(Ordering::Relaxed) >> FLAG_BITS;
        let tail = self.tail.word.load(Ordering::Relaxed) >> FLAG_BITS;
        // SAFETY: `&mut self`: no push or pop is in flight, so every position from head to tail
        // holds a value written by a completed push and not yet popped.
        unsafe { self.drop_values(head, tail) };
    }
}

impl<T> Ring<T> {
    /// Drops the values at the positions from `position` up to `tail`; if one's drop panics,
    /// the values after it are still dropped as the panic unwinds.
    ///
    /// # Safety
    /// No push or pop is in flight, and each of those positions holds a value written by a
    /// completed push and not popped, which nothing will read after this.
    unsafe fn drop_values(&self, mut position: usize, tail: usize) {
        /// Kept only while a value's drop unwinds: then drops the values after it.
        struct TheRest<'a, T> {
            ring: &'a Ring<T>,
            from: usize,
            tail: usize,
        }
        impl<T> Drop for TheRest<'_, T> {
            fn drop(&mut self) {
                // SAFETY: the caller's contract, for the positions after the one that panicked.
                unsafe { self.ring.drop_values(self.from, self.tail) };
            }
        }
        while position != tail {
            let next = self.next(position);
            let the_rest = TheRest { ring: self, from: next, tail };
            // SAFETY: the caller's contract: the position holds a value nothing reads again.
            self.slot(position).value.with_mut(|cell| unsafe { (*cell).assume_init_drop() });
            std::mem::forget(the_rest);
            position = next;
        }
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_ring_looks_full_from_the_senders_side_only_while_every_place_holds_a_value() {
        let ring = Ring::new(2);
        assert!(!ring.looks_full());
        assert!(matches!(ring.push(1, false), Push::Pushed { .. }));
        assert!(!ring.looks_full(), "one place is free");
        assert!(matches!(ring.push(2, false), Push::Pushed { .. }));
        assert!(ring.looks_full());
        assert!(matches!(ring.pop(), Pop::Popped { value: 1, .. }));
        assert!(!ring.looks_full(), "the pop freed the place the next push needs");
        assert!(matches!(ring.push(3, false), Push::Pushed { .. }));
        assert!(ring.looks_full(), "full again, one lap on");
    }

    #[test]
    fn a_push_or_pop_whose_guess_at_its_word_is_stale_sees_the_word_as_it_is() {
        let ring = Ring::new(4);
        assert!(matches!(ring.push(1, false), Push::Pushed { receivers_wait: false }));
        ring.set_tail_flag(RECEIVERS_WAIT);
        assert!(
            matches!(ring.push(2, false), Push::Pushed { receivers_wait: true }),
            "a flag raised after the last push's move is reported: a waiting receiver is woken"
        );
        ring.set_head_flag(SENDERS_WAIT);
        assert!(matches!(ring.pop(), Pop::Popped { value: 1, senders_wait: true }));

        // A late copy, as a slower thread's store of an older move leaves it.
        ring.tail.last_move.store(0, Ordering::Relaxed);
        ring.head.last_move.store(0, Ordering::Relaxed);
        assert!(matches!(ring.push(3, false), Push::Pushed { .. }));
        assert!(matches!(ring.pop(), Pop::Popped { value: 2, .. }));
        assert!(matches!(ring.pop(), Pop::Popped { value: 3, .. }), "3 went after 2, not over 1");
        assert!(matches!(ring.pop(), Pop::Empty));

        ring.set_tail_flag(CLOSED);
        assert!(matches!(ring.push(4, false), Push::Closed(4)), "a close after the last move");
        assert!(matches!(ring.pop(), Pop::Closed));
    }
}

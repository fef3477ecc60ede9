//! Behaviours of kotlinx.coroutines' channel tests (`kotlinx-coroutines-core/common/test/channels/`:
//! `BufferedChannelTest`, `RendezvousChannelTest`, `ChannelUndeliveredElementTest`,
//! `ChannelUndeliveredElementFailureTest`, `ConflatedChannelTest`, `ChannelsTest`; kotlinx at
//! `792ac67b`) and of trio's memory channels (`src/trio/_tests/test_channel.py`) that the other
//! channel suites leave out (`channels`, `channel_api`, `channel_edges`, `channel_faults`,
//! `channel_tokio_edges`, `channel_value_ledger`, `channel_permit_edges`, `ported_tokio_sync*`,
//! `sync_tokio_forms`). Each test names the peer test it translates and the klaw promise it checks.
//!
//! Where klaw's rule differs from the peer's (klaw has no rendezvous channel; a send woken for a
//! place moves its value in on its own next poll, not at the receive; a close is channel-wide;
//! a woken waiter may be overtaken by one that was not waiting), klaw's documented rule is the
//! one checked, and the test says so.

mod common;
#[path = "common/reenter.rs"]
mod reenter;

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use common::{DEADLINE, ms, secs, within};
use futures_lite::Stream;
use klaw::CancelReason;
use klaw::cancel::{Region, fail_after, move_on_after};
use klaw::channel::{
    Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, bounded, unbounded,
};
use reenter::{counting_waker, poll_into_line, poll_noop};

// ---- Helpers.

/// A bounded channel on the ring and one of the same capacity on the growing buffer.
fn ring_and_growing<T>(capacity: usize) -> [(&'static str, Sender<T>, Receiver<T>); 2] {
    let (ring_tx, ring_rx) = bounded(capacity);
    let (list_tx, list_rx) = klaw::__private::growing_bounded(capacity);
    [("ring", ring_tx, ring_rx), ("growing", list_tx, list_rx)]
}

/// [`ring_and_growing`], and an unbounded channel.
fn every_mpmc<T>(capacity: usize) -> [(&'static str, Sender<T>, Receiver<T>); 3] {
    let [ring, growing] = ring_and_growing(capacity);
    let (unbounded_tx, unbounded_rx) = unbounded();
    [ring, growing, ("unbounded", unbounded_tx, unbounded_rx)]
}

/// The ids of the tracked values dropped, in order: Kotlin's `onUndeliveredElement` log, as a
/// Rust value's drop.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u32>>>);

impl Log {
    fn value(&self, id: u32) -> Tracked {
        Tracked { id, log: self.clone() }
    }

    fn dropped(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }
}

/// A value that writes its id to its log when dropped.
struct Tracked {
    id: u32,
    log: Log,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.0.lock().unwrap().push(self.id);
    }
}

// ---- Capacity and len.

/// Moves the channel's start `offset` places on (one in, one out), then fills it: exactly
/// `capacity` values go in, the next comes back `Full`, a `send` then waits in line and goes in
/// behind them once a receive frees a place, and all of them come out in order.
fn fill_from(name: &str, capacity: usize, offset: usize, tx: &Sender<usize>, rx: &Receiver<usize>) {
    let at = format!("{name}, capacity {capacity}, offset {offset}");
    for n in 0..offset {
        tx.try_send(n).unwrap();
        assert_eq!(rx.try_recv(), Ok(n), "{at}");
    }
    assert!(rx.is_empty(), "{at}");
    for k in 0..capacity {
        assert!(!tx.is_full() && !rx.is_full(), "{at}: full after {k}");
        assert_eq!(tx.try_send(1_000_000 + k), Ok(()), "{at}: refused after {k}");
        assert_eq!((tx.len(), rx.len()), (k + 1, k + 1), "{at}");
    }
    assert!(tx.is_full() && rx.is_full(), "{at}");
    assert_eq!(tx.capacity(), Some(capacity), "{at}");
    assert_eq!(tx.try_send(7), Err(TrySendError::Full(7)), "{at}");
    assert_eq!(tx.try_reserve().map(drop), Err(TrySendError::Full(())), "{at}");
    let mut waiting = pin!(tx.send(2_000_000));
    assert!(poll_into_line(waiting.as_mut()).is_pending(), "{at}");
    assert_eq!(rx.try_recv(), Ok(1_000_000), "{at}");
    assert_eq!(poll_noop(waiting.as_mut()), Poll::Ready(Ok(())), "{at}");
    let rest: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let expected: Vec<usize> = (1..capacity).map(|k| 1_000_000 + k).chain([2_000_000]).collect();
    assert_eq!(rest, expected, "{at}: order");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{at}");
    assert_eq!(tx.len(), 0, "{at}");
}

/// Kotlin `BufferedChannelTest.testBufferSize` and `testBufferSizeFromTheMiddle` (a channel of
/// 42 takes 42 sends without suspending from any starting point, and the 43rd suspends), over
/// every starting position of two laps of the ring (a lap is `(capacity + 1).next_power_of_two()`
/// positions, so most capacities here leave positions unused at the end of each lap) and of the
/// growing buffer, and at the seams of the largest ring.
/// klaw promise: the capacity is stored, not derived from the queue; `try_send` gives exactly
/// `Full(value)` at the capacity (and the value back); `len`/`is_full` agree on both ends; FIFO.
/// (`ported_tokio_sync::mpsc_try_recv_bounded` wraps a ring of 5 once.)
#[test]
fn mpmc_from_any_starting_position_a_channel_holds_exactly_its_capacity() {
    within(DEADLINE, || {
        for capacity in [1usize, 2, 3, 4, 5, 7, 8, 9, 42] {
            let lap = (capacity + 1).next_power_of_two();
            for offset in 0..=(2 * lap + 1) {
                for (name, tx, rx) in ring_and_growing::<usize>(capacity) {
                    fill_from(name, capacity, offset, &tx, &rx);
                }
            }
        }
        for offset in [0, 1, 4095, 4096, 4097, 8191, 8192, 8193] {
            let (tx, rx) = bounded::<usize>(4096);
            fill_from("the largest ring", 4096, offset, &tx, &rx);
        }
    });
}

/// Kotlin `BufferedChannelTest.testSimple` (a receive from a full buffer lets the suspended
/// sender's element in) and trio `test_channel_fairness` (second half: a freed place belongs to
/// the sender already waiting), for `recv_many`, which frees several places in one call.
/// klaw's rule: each message taken frees one place and wakes one waiting sender, oldest first
/// (book, "Who waits"); a woken send moves its value in on its own next poll, so the values of
/// the woken sends are not in the channel yet and `try_recv` finds it empty meanwhile.
/// (`sync_tokio_forms`' `recv_many` tests have at most one send waiting.)
#[test]
fn mpmc_recv_many_frees_a_place_per_message_and_wakes_as_many_waiting_sends() {
    within(DEADLINE, || {
        for (name, tx, rx) in ring_and_growing::<u32>(2) {
            tx.try_send(0).unwrap();
            tx.try_send(1).unwrap();
            let wakers = [counting_waker(), counting_waker(), counting_waker()];
            let mut sends: Vec<_> = (2..5).map(|value| Box::pin(tx.send(value))).collect();
            for (send, waker) in sends.iter_mut().zip(&wakers) {
                assert!(poll_into_line(send.as_mut()).is_pending(), "{name}");
                assert!(send.as_mut().poll(&mut waker.cx()).is_pending(), "{name}");
            }
            let mut batch = Vec::new();
            assert_eq!(klaw::runtime::block_on(rx.recv_many(&mut batch, 8)), Ok(2), "{name}");
            assert_eq!(batch, [0, 1], "{name}: only what was queued");
            let woken: Vec<usize> = wakers.iter().map(|w| w.woken()).collect();
            assert_eq!(woken, [1, 1, 0], "{name}: one waiting send woken per place freed");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{name}");
            assert_eq!(sends[0].as_mut().poll(&mut wakers[0].cx()), Poll::Ready(Ok(())), "{name}");
            assert_eq!(sends[1].as_mut().poll(&mut wakers[1].cx()), Poll::Ready(Ok(())), "{name}");
            assert!(sends[2].as_mut().poll(&mut wakers[2].cx()).is_pending(), "{name}: no place");
            batch.clear();
            assert_eq!(klaw::runtime::block_on(rx.recv_many(&mut batch, 1)), Ok(1), "{name}");
            assert_eq!(batch, [2], "{name}");
            assert_eq!(wakers[2].woken(), 1, "{name}: the last send woken for the place");
            assert_eq!(sends[2].as_mut().poll(&mut wakers[2].cx()), Poll::Ready(Ok(())), "{name}");
            let rest: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
            assert_eq!(rest, [3, 4], "{name}: the waiting sends' values, in line order");
        }
    });
}

// ---- Close while values are in flight.

/// Kotlin `RendezvousChannelTest.testSuspendSendOnClosedChannel` (a send suspended before the
/// close is still delivered) and trio `test_close_multiple_send_handles` (another send handle
/// closes). klaw's rule is the other one, and this checks it holds even when the place was
/// already handed over: a send woken for a freed place whose channel is closed (by another
/// sender) before it polls again gets its value back, the freed place stays empty, and the
/// channel dropped nothing. (`ported_tokio_sync::mpsc_recv_close_gets_none_reserved` checks a
/// `reserve`, which holds no value.)
#[test]
fn mpmc_a_send_woken_for_a_freed_place_then_closed_before_it_polls_gets_its_value_back() {
    within(DEADLINE, || {
        for (name, tx, rx) in ring_and_growing::<Tracked>(1) {
            let log = Log::default();
            let other = tx.clone();
            tx.try_send(log.value(0)).unwrap();
            let (w1, w2) = (counting_waker(), counting_waker());
            let mut one = pin!(tx.send(log.value(1)));
            let mut two = pin!(tx.send(log.value(2)));
            assert!(poll_into_line(one.as_mut()).is_pending(), "{name}");
            assert!(one.as_mut().poll(&mut w1.cx()).is_pending(), "{name}");
            assert!(poll_into_line(two.as_mut()).is_pending(), "{name}");
            assert!(two.as_mut().poll(&mut w2.cx()).is_pending(), "{name}");
            assert_eq!(rx.try_recv().map(|v| v.id), Ok(0), "{name}"); // a place: wakes `one`
            assert_eq!((w1.woken(), w2.woken()), (1, 0), "{name}");
            assert!(other.close(), "{name}");
            assert_eq!((w1.woken(), w2.woken()), (1, 1), "{name}: the close woke `two`");
            assert_eq!(log.dropped(), [0], "{name}: the channel dropped nothing");
            for (send, waker, id) in [(one.as_mut(), &w1, 1u32), (two.as_mut(), &w2, 2)] {
                match send.poll(&mut waker.cx()) {
                    Poll::Ready(Err(SendError(back))) => {
                        assert_eq!(back.id, id, "{name}: another value came back");
                        assert!(!log.dropped().contains(&id), "{name}: {id} dropped, not returned");
                    }
                    polled => panic!(
                        "{name}: send {id} gave {:?}",
                        polled.map(|sent| sent.map_err(|e| e.into_inner().id))
                    ),
                }
            }
            assert_eq!(log.dropped(), [0, 1, 2], "{name}");
            assert_eq!(
                rx.try_recv().map(|v| v.id),
                Err(TryRecvError::Closed),
                "{name}: the freed place stayed empty"
            );
            assert_eq!(rx.len(), 0, "{name}");
            let refused = tx.try_send(log.value(3)).map_err(|e| (e.is_closed(), e.into_inner().id));
            assert_eq!(refused, Err((true, 3)), "{name}");
        }
    });
}

/// Kotlin `BufferedChannelTest.testConsumeAll` and `ChannelsTest.testCloseWithMultipleSuspendedSenders`
/// (a full buffer and five suspended senders, then `cancel`), `ChannelUndeliveredElementTest.
/// testBufferedSendCancelled` (a buffered element is released only when the channel is
/// cancelled); with klaw's two ways to end a channel. klaw promises: on `close()` (by a receiver
/// or a sender) the queued values are still delivered, in order, and each waiting send is woken
/// once and gets back exactly its own value; when the last receiver goes (Kotlin's `cancel`)
/// the queued values are dropped then, once each, oldest first, and the waiting sends still get
/// their own values back. (`channel_faults::closing_wakes_every_waiting_sender_with_its_value`
/// sends `u64`s with one value queued, and closes only by the receiver's drop.)
#[test]
fn mpmc_close_or_the_last_receivers_drop_with_a_full_queue_and_sends_waiting() {
    within(DEADLINE, || {
        for how in ["a receiver closes", "a sender closes", "the last receiver goes"] {
            for (name, tx, rx) in ring_and_growing::<Tracked>(3) {
                let at = format!("{name}, {how}");
                let log = Log::default();
                for id in 0..3 {
                    tx.try_send(log.value(id)).unwrap();
                }
                let wakers = [counting_waker(), counting_waker(), counting_waker()];
                let mut sends: Vec<Pin<Box<klaw::channel::Send<'_, Tracked>>>> =
                    (3..6).map(|id| Box::pin(tx.send(log.value(id)))).collect();
                for (send, waker) in sends.iter_mut().zip(&wakers) {
                    assert!(poll_into_line(send.as_mut()).is_pending(), "{at}");
                    assert!(send.as_mut().poll(&mut waker.cx()).is_pending(), "{at}");
                }
                let other = tx.clone();
                let rx = match how {
                    "a receiver closes" => {
                        assert!(rx.close(), "{at}");
                        Some(rx)
                    }
                    "a sender closes" => {
                        assert!(other.close(), "{at}");
                        Some(rx)
                    }
                    _ => {
                        drop(rx);
                        assert_eq!(log.dropped(), [0, 1, 2], "{at}: queued values dropped then");
                        None
                    }
                };
                let dropped_by_the_channel = log.dropped();
                let mut returned = Vec::new();
                for ((send, waker), id) in sends.iter_mut().zip(&wakers).zip(3u32..) {
                    assert_eq!(waker.woken(), 1, "{at}: send {id} woken once");
                    match send.as_mut().poll(&mut waker.cx()) {
                        Poll::Ready(Err(SendError(back))) => {
                            assert_eq!(back.id, id, "{at}: another value came back");
                            returned.push(back);
                        }
                        polled => panic!(
                            "{at}: send {id} gave {:?}",
                            polled.map(|sent| sent.map_err(|e| e.into_inner().id))
                        ),
                    }
                }
                assert_eq!(log.dropped(), dropped_by_the_channel, "{at}: a returned value dropped");
                assert!(tx.is_closed(), "{at}");
                match rx {
                    Some(rx) => {
                        assert!(log.dropped().is_empty(), "{at}: close dropped a queued value");
                        assert_eq!(rx.len(), 3, "{at}");
                        let got: Vec<u32> =
                            std::iter::from_fn(|| rx.try_recv().ok().map(|v| v.id)).collect();
                        assert_eq!(got, [0, 1, 2], "{at}: the queue delivered in order");
                        assert_eq!(rx.try_recv().map(|v| v.id), Err(TryRecvError::Closed), "{at}");
                    }
                    None => assert_eq!(tx.len(), 0, "{at}"),
                }
                drop(returned);
                assert_eq!(log.dropped(), [0, 1, 2, 3, 4, 5], "{at}: every value dropped once");
            }
        }
    });
}

/// trio `test_close_basics` ("and it's persistent") and Kotlin `BasicOperationsTest.
/// testTrySendAfterClose` / `ChannelUndeliveredElementTest.testTrySendDoesNotInvokeHandlerOnClosedChannel`,
/// on a channel that is full (one value queued, one place held by a permit) when it closes.
/// klaw promise: every form of sending reports `Closed` (never `Full`) once the channel is
/// closed, and gives the value (or the sender) back; the permit's send fails with its value; the
/// queue is kept (len and capacity unchanged) and drains before `Closed`.
#[test]
fn mpmc_on_a_full_channel_that_closed_every_send_form_says_closed_and_gives_the_value_back() {
    within(DEADLINE, || {
        for by_receiver in [true, false] {
            for (name, tx, rx) in ring_and_growing::<u32>(2) {
                let by = if by_receiver { "receiver" } else { "sender" };
                let at = format!("{name}, closed by the {by}");
                tx.try_send(1).unwrap();
                let permit = tx.try_reserve().unwrap();
                assert!(tx.is_full() && !rx.is_full(), "{at}: the permit holds the last place");
                assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)), "{at}");
                assert!(if by_receiver { rx.close() } else { tx.close() }, "{at}");
                assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)), "{at}");
                assert_eq!(tx.force_send(3), Err(TrySendError::Closed(3)), "{at}");
                assert_eq!(tx.try_reserve().map(drop), Err(TrySendError::Closed(())), "{at}");
                assert!(
                    matches!(tx.clone().try_reserve_owned(), Err(TrySendError::Closed(_))),
                    "{at}: try_reserve_owned"
                );
                assert_eq!(klaw::runtime::block_on(tx.send(4)), Err(SendError(4)), "{at}");
                assert!(klaw::runtime::block_on(tx.reserve()).is_err(), "{at}");
                assert_eq!(permit.send(5), Err(SendError(5)), "{at}");
                assert_eq!((rx.len(), rx.capacity()), (1, Some(2)), "{at}");
                assert_eq!(rx.try_recv(), Ok(1), "{at}");
                assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "{at}");
                assert_eq!(tx.try_send(6), Err(TrySendError::Closed(6)), "{at}: and it stays so");
            }
        }
    });
}

// ---- Cancellation with a value in flight, in tasks.

/// trio `test_553`: a receive cancelled by a timeout on an empty channel of one place, then a
/// send into it. klaw promise: a `recv` cancelled while it waits takes nothing and keeps
/// nothing (not its place in line, not a place in the channel): the send goes in at once (on the
/// paused clock a send that waited would let its own deadline pass), the message stays for the
/// next receive, and a receiver waiting beside the cancelled one gets the next message.
#[klaw::test(start_paused = true, timeout = "10s")]
async fn mpmc_a_recv_cancelled_by_a_deadline_leaves_the_next_send_its_place() {
    let (tx, rx) = bounded::<&'static str>(1);
    let started = klaw::time::now();
    assert_eq!(move_on_after(secs(10), rx.recv()).await, None);
    assert!(klaw::time::now() - started >= secs(10));
    assert_eq!(fail_after(secs(1), tx.send("Test for PR #553")).await, Ok(Ok(())));
    assert_eq!(rx.try_recv(), Ok("Test for PR #553"));

    let rx2 = rx.clone();
    let other = klaw::Handle::current().unwrap().spawn(async move { rx2.recv().await });
    assert_eq!(move_on_after(secs(10), rx.recv()).await, None);
    assert_eq!(fail_after(secs(1), tx.send("second")).await, Ok(Ok(())));
    assert_eq!(other.await.expect("the other receiver's task"), Ok("second"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// Receives from `rx` inside `region` by `mode`; what its region returned, and what it received.
async fn receive_in(
    region: Region,
    rx: Receiver<u32>,
    mode: &'static str,
) -> (Result<(), CancelReason>, Vec<u32>) {
    let mut got = Vec::new();
    let outcome = match mode {
        "recv" => region.run(rx.recv()).await.map(|received| got.extend(received)),
        "recv_many" => region.run(rx.recv_many(&mut got, 4)).await.map(drop),
        _ => {
            let mut rx = rx;
            let next = futures_lite::StreamExt::next(&mut rx);
            region.run(next).await.map(|received| got.extend(received))
        }
    };
    (outcome, got)
}

/// Kotlin `ChannelUndeliveredElementFailureTest.testReceiveCancelledFail` and
/// `testReceiveCatchingCancelledFail`: a receiver suspended in `receive`, handed an element by
/// `send`, and cancelled before it is dispatched (Kotlin then reports the element undelivered).
/// On one worker, beside a task that does both, the receiving task cannot run between the
/// hand-over and its region's cancel.
/// klaw promise: a `recv` (or `recv_many`, or the `Stream`'s `next`) cancelled after a message
/// was handed to it loses no message: it stays in the channel, and the wake-up goes on to a
/// receiver waiting behind it. (`channels.rs` checks this by hand-polled futures;
/// `ported_tokio_select` checks a `select!` in a region on two workers, either outcome allowed.)
#[klaw::test(workers = 1, timeout = "10s")]
async fn mpmc_a_receive_cancelled_after_a_message_was_handed_to_it_leaves_the_message() {
    // The test's body runs on the test's own thread (`block_on`), beside the one worker: the
    // scenario runs in a task on that worker, so the receivers cannot run between its steps.
    let handle = klaw::Handle::current().unwrap();
    handle.spawn(handed_over_then_cancelled()).await.expect("the scenario's task");
}

async fn handed_over_then_cancelled() {
    for mode in ["recv", "recv_many", "stream"] {
        for someone_waits_behind in [false, true] {
            let at = format!("{mode}, another receiver waiting: {someone_waits_behind}");
            let (tx, rx) = bounded::<u32>(4);
            let region = Region::new();
            let token = region.token();
            let handle = klaw::Handle::current().unwrap();
            let first = handle.spawn(receive_in(region, rx.clone(), mode));
            klaw::time::sleep(ms(20)).await; // `first` waits in line
            let behind = someone_waits_behind.then(|| {
                let rx2 = rx.clone();
                handle.spawn(async move { rx2.recv().await })
            });
            klaw::time::sleep(ms(20)).await; // and `behind` after it
            tx.try_send(7).unwrap(); // handed to `first`, which does not run before the cancel
            assert!(token.cancel("gone"), "{at}");
            let (outcome, got) = first.await.expect("the first receiver's task");
            assert_eq!(outcome, Err(CancelReason::user("gone")), "{at}");
            assert!(got.is_empty(), "{at}: a cancelled receive took {got:?}");
            match behind {
                Some(behind) => {
                    assert_eq!(behind.await.expect("the receiver behind"), Ok(7), "{at}");
                    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{at}");
                }
                None => assert_eq!(rx.try_recv(), Ok(7), "{at}: the message left the channel"),
            }
        }
    }
}

/// Kotlin `ChannelUndeliveredElementTest.testBufferedSendCancelled` (element A buffered, B's
/// suspended send cancelled: B is released at once, A only when the channel is cancelled),
/// `testRendezvousSendCancelled` and `testSendToClosedChannel`, in a task with a deadline.
/// klaw promises (book, "Cancel safety"): a `send` cancelled while it waits drops its value with
/// the future, once, and delivers nothing; the queued value is untouched; the place it waited for
/// goes to the next sender; the last receiver's drop (Kotlin's `cancel`) drops what is queued; a
/// send to the closed channel gives its value back rather than dropping it.
/// (`channel_tokio_edges::mpmc_a_send_cancelled_in_line_drops_its_value_once_and_delivers_nothing`
/// drops a hand-polled future.)
#[klaw::test(start_paused = true, timeout = "10s")]
async fn mpmc_a_send_cancelled_by_a_deadline_drops_its_value_once_and_passes_the_place_on() {
    let log = Log::default();
    let (tx, rx) = bounded::<Tracked>(1);
    tx.send(log.value(0)).await.unwrap(); // A: buffered
    assert!(move_on_after(secs(1), tx.send(log.value(1))).await.is_none(), "B's send waited");
    assert_eq!(log.dropped(), [1], "B dropped once with its send; A kept");
    assert_eq!(rx.len(), 1);

    let (tx2, c) = (tx.clone(), log.value(2));
    let next = klaw::Handle::current()
        .unwrap()
        .spawn(async move { tx2.send(c).await.map_err(|e| e.into_inner().id) });
    klaw::time::sleep(ms(1)).await; // C's send waits in line
    assert_eq!(rx.recv().await.map(|v| v.id), Ok(0));
    assert_eq!(next.await.expect("C's task"), Ok(()), "the freed place went to C");
    assert_eq!(rx.recv().await.map(|v| v.id), Ok(2));
    assert_eq!(log.dropped(), [1, 0, 2], "B was never delivered");

    tx.send(log.value(3)).await.unwrap();
    drop(rx);
    assert_eq!(log.dropped(), [1, 0, 2, 3], "the queued value dropped with the last receiver");
    let back = tx.send(log.value(4)).await.unwrap_err().into_inner();
    assert_eq!(back.id, 4);
    assert_eq!(log.dropped(), [1, 0, 2, 3], "a refused value is the sender's, not dropped");
    drop(back);
}

// ---- Iteration after close.

/// Kotlin `BufferedChannelTest.testIteratorHasNextIsIdempotent`, `RendezvousChannelTest.
/// testIteratorClosed` and `BasicOperationsTest.testIteratorHasNextMustPrecedeNext`: an iterator
/// suspended in `hasNext` when the channel closes ends, and asking again keeps saying so.
/// klaw promise: a receiver's `Stream` waiting in line is woken once by the last sender's drop
/// (not by the drop of a sender that is not the last) and ends with `None`; an ended stream stays
/// ended, and `try_recv`/`recv` agree that the channel is closed and drained.
#[test]
fn mpmc_a_waiting_stream_ends_when_the_last_sender_goes_and_stays_ended() {
    within(DEADLINE, || {
        for (name, tx, mut rx) in every_mpmc::<u32>(2) {
            let waker = counting_waker();
            let next = |rx: &mut Receiver<u32>| Pin::new(rx).poll_next(&mut waker.cx());
            tx.try_send(1).unwrap();
            assert_eq!(next(&mut rx), Poll::Ready(Some(1)), "{name}");
            assert!(next(&mut rx).is_pending(), "{name}: yields once");
            assert!(next(&mut rx).is_pending(), "{name}: then waits in line");
            let before = waker.woken();
            let tx2 = tx.clone();
            drop(tx);
            assert_eq!(waker.woken(), before, "{name}: a sender remains; nothing to wake for");
            assert!(next(&mut rx).is_pending(), "{name}");
            drop(tx2);
            assert_eq!(waker.woken(), before + 1, "{name}: the last sender's drop woke it");
            assert_eq!(next(&mut rx), Poll::Ready(None), "{name}");
            assert_eq!(next(&mut rx), Poll::Ready(None), "{name}: ended stays ended");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "{name}");
            assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed), "{name}");
            assert_eq!(next(&mut rx), Poll::Ready(None), "{name}");
        }
    });
}

// ---- Conflation: `force_send` on a channel of one place.

/// Kotlin `ConflatedChannelTest.testConflationSendReceive` (a send to a waiting receiver, then
/// three more that conflate: the receiver gets the last), `testConflatedClose`, and
/// `ChannelUndeliveredElementTest.testChannelBufferOverflow` (DROP_OLDEST reports each dropped
/// element), with `force_send` on `bounded(1)`. klaw's rule differs from Kotlin's in one place:
/// a message pushed for a waiting receive stays in the channel until that receive polls, so it
/// can be displaced too. klaw promises: every displaced value comes back to the `force_send`
/// that displaced it (none is lost); the woken receive gets the latest; a push that displaces
/// still wakes a receiver waiting behind, so no receiver sleeps while a message waits; a value
/// forced in before the close is delivered after it.
#[test]
fn mpmc_force_send_on_one_place_conflates_and_gives_every_displaced_value_back() {
    within(DEADLINE, || {
        for (name, tx, rx) in ring_and_growing::<u32>(1) {
            let waker = counting_waker();
            let mut recv = pin!(rx.recv());
            assert!(poll_into_line(recv.as_mut()).is_pending(), "{name}");
            assert!(recv.as_mut().poll(&mut waker.cx()).is_pending(), "{name}");
            assert_eq!(tx.force_send(3), Ok(None), "{name}");
            assert_eq!(waker.woken(), 1, "{name}");
            assert_eq!(tx.force_send(4), Ok(Some(3)), "{name}: 3 was not received yet");
            assert_eq!(tx.force_send(5), Ok(Some(4)), "{name}");
            assert_eq!(tx.force_send(6), Ok(Some(5)), "{name}");
            assert_eq!(recv.as_mut().poll(&mut waker.cx()), Poll::Ready(Ok(6)), "{name}");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{name}");

            // Two receivers waiting: the displacing push wakes the second as well.
            let rx2 = rx.clone();
            let (w1, w2) = (counting_waker(), counting_waker());
            let mut r1 = pin!(rx.recv());
            let mut r2 = pin!(rx2.recv());
            assert!(poll_into_line(r1.as_mut()).is_pending(), "{name}");
            assert!(r1.as_mut().poll(&mut w1.cx()).is_pending(), "{name}");
            assert!(poll_into_line(r2.as_mut()).is_pending(), "{name}");
            assert!(r2.as_mut().poll(&mut w2.cx()).is_pending(), "{name}");
            assert_eq!(tx.force_send(10), Ok(None), "{name}");
            assert_eq!((w1.woken(), w2.woken()), (1, 0), "{name}: the oldest receive woken");
            assert_eq!(tx.force_send(11), Ok(Some(10)), "{name}");
            assert_eq!(r1.as_mut().poll(&mut w1.cx()), Poll::Ready(Ok(11)), "{name}");
            assert_eq!(tx.force_send(12), Ok(None), "{name}");
            assert!(w2.woken() >= 1, "{name}: a message waits and the receive behind sleeps");
            assert_eq!(r2.as_mut().poll(&mut w2.cx()), Poll::Ready(Ok(12)), "{name}");

            assert_eq!(tx.force_send(1), Ok(None), "{name}");
            drop(tx);
            assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(1), "{name}: kept across the close");
            assert_eq!(klaw::runtime::block_on(rx.recv()), Err(RecvError::Closed), "{name}");
        }
    });
}

// ---- Clone counting.

/// trio `test_receive_channel_clone_and_close` (with r2 and r3 open, closing r keeps the
/// channel open; closing the last makes sends fail) and `test_statistics` (`open_send_channels`,
/// `open_receive_channels`, `current_buffer_used`, `max_buffer_size`), with klaw's names. trio's
/// `clone()` of a closed handle raises; a klaw clone of a sender of a closed channel is a closed
/// sender, counted. klaw promises: `receiver_count`/`sender_count` follow clones and drops on
/// both ends; dropping receivers other than the last keeps the channel open and its queue; the
/// last one closes it and drops the queue (len 0); `capacity` is unchanged throughout.
#[test]
fn mpmc_counts_follow_clones_and_only_the_last_receiver_closes() {
    within(DEADLINE, || {
        for (name, tx, rx) in every_mpmc::<u32>(4) {
            let capacity = tx.capacity();
            assert_eq!((tx.sender_count(), tx.receiver_count()), (1, 1), "{name}");
            let (r2, r3) = (rx.clone(), rx.clone());
            assert_eq!((tx.receiver_count(), r3.receiver_count()), (3, 3), "{name}");
            tx.try_send(1).unwrap();
            drop(rx);
            drop(r2);
            assert_eq!((tx.receiver_count(), r3.receiver_count()), (1, 1), "{name}");
            assert!(!tx.is_closed(), "{name}: r3 is still open");
            assert_eq!(tx.try_send(2), Ok(()), "{name}");
            assert_eq!(r3.len(), 2, "{name}: the queue was kept");
            let s2 = tx.clone();
            assert_eq!(r3.sender_count(), 2, "{name}");
            drop(tx);
            assert_eq!((r3.sender_count(), s2.sender_count()), (1, 1), "{name}");
            assert!(!r3.is_closed(), "{name}: s2 is still open");
            drop(r3);
            assert_eq!(s2.receiver_count(), 0, "{name}");
            assert!(s2.is_closed(), "{name}");
            assert_eq!((s2.len(), s2.capacity()), (0, capacity), "{name}");
            assert_eq!(s2.try_send(3), Err(TrySendError::Closed(3)), "{name}");
            let s3 = s2.clone();
            assert_eq!((s2.sender_count(), s3.sender_count()), (2, 2), "{name}");
            assert!(s3.is_closed(), "{name}");
            assert_eq!(s3.try_reserve().map(drop), Err(TrySendError::Closed(())), "{name}");
        }
    });
}

//! What becomes of each *value* at the edges of the channels' promises (`book/src/channels.md`,
//! `book/src/select.md`, the rustdoc of `klaw-rt/src/channel/`): values that count their own
//! drops (or clones), so a value lost, leaked, dropped twice or delivered after its send was
//! cancelled shows up. Only what the other channel suites leave out is here: `channel_faults`
//! sends `u64`s (a leak or a double drop goes unseen), and `channels` / `ported_tokio_sync`
//! poll by hand without counting every wake-up on every kind of channel.

mod common;
#[path = "common/reenter.rs"]
mod reenter;

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::Poll;

use common::XorShift;
use futures_util::{SinkExt, StreamExt};
use klaw::channel::{self, Receiver, RecvError, SendError, Sender, broadcast};

// ---- Harness

/// What became of every value of a round, by id.
struct Ledger {
    made: Vec<AtomicBool>,
    drops: Vec<AtomicUsize>,
    received: Vec<AtomicUsize>,
    /// Its `send` future was dropped before it completed.
    cancelled: Vec<AtomicBool>,
    /// It came back in an error.
    returned: Vec<AtomicBool>,
    /// Its `send` (or permit) said `Ok`.
    sent: Vec<AtomicBool>,
}

impl Ledger {
    fn new(n: usize) -> Arc<Self> {
        fn fresh<T: Default>(n: usize) -> Vec<T> {
            (0..n).map(|_| T::default()).collect()
        }
        let (made, cancelled, returned, sent) = (fresh(n), fresh(n), fresh(n), fresh(n));
        Arc::new(Ledger { made, drops: fresh(n), received: fresh(n), cancelled, returned, sent })
    }

    fn msg(self: &Arc<Self>, id: usize) -> Msg {
        assert!(!self.made[id].swap(true, SeqCst), "the test made value {id} twice");
        Msg { id, ledger: self.clone() }
    }

    fn got(&self, msg: Msg) {
        self.received[msg.id].fetch_add(1, SeqCst);
    }

    fn back(&self, msg: Msg) {
        self.returned[msg.id].store(true, SeqCst);
    }

    fn mark(flags: &[AtomicBool], id: usize) {
        flags[id].store(true, SeqCst);
    }

    /// How a send of value `id` ended; `None`: its future was dropped unfinished.
    fn record(&self, id: usize, outcome: Option<Result<(), SendError<Msg>>>) {
        match outcome {
            Some(Ok(())) => Ledger::mark(&self.sent, id),
            Some(Err(SendError(back))) => self.back(back),
            None => Ledger::mark(&self.cancelled, id),
        }
    }

    fn count(flags: &[AtomicBool]) -> usize {
        flags.iter().filter(|f| f.load(SeqCst)).count()
    }

    /// Every value made was dropped exactly once and received at most once; a value whose
    /// send was cancelled or that came back was never received; a value sent was received,
    /// unless `may_drop_sent` (the last receiver went with values queued).
    fn check(&self, what: &str, may_drop_sent: bool) {
        for id in 0..self.drops.len() {
            let drops = self.drops[id].load(SeqCst);
            if !self.made[id].load(SeqCst) {
                assert_eq!(drops, 0, "{what}: value {id} never made");
                continue;
            }
            let received = self.received[id].load(SeqCst);
            let flag = |flags: &[AtomicBool]| flags[id].load(SeqCst);
            let (cancelled, returned, sent) =
                (flag(&self.cancelled), flag(&self.returned), flag(&self.sent));
            let state = format!(
                "{what}: value {id}: drops {drops}, received {received}, cancelled {cancelled}, \
                 returned {returned}, sent {sent}"
            );
            assert_eq!(drops, 1, "{state}");
            assert!(received <= 1, "received twice: {state}");
            assert!(!(cancelled && received > 0), "a cancelled send delivered: {state}");
            assert!(!(returned && received > 0), "a returned value was delivered: {state}");
            assert!(!(returned && sent), "sent and returned: {state}");
            if sent && !may_drop_sent {
                assert_eq!(received, 1, "accepted but never delivered: {state}");
            }
            if received > 0 {
                assert!(sent, "delivered without an Ok send: {state}");
            }
        }
    }
}

/// A value that tells its ledger when it is dropped.
struct Msg {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.ledger.drops[self.id].fetch_add(1, SeqCst);
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Msg({})", self.id)
    }
}

/// Polls `future` until it completes, but gives up after `pending` polls that returned
/// `Pending` (the task is woken at once after each, so a future in line is polled again while
/// it waits, and a wake-up it is given races the poll); `None` if it was dropped unfinished.
async fn at_most<F: Future>(future: F, pending: u64) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut left = pending;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if left == 0 => Poll::Ready(None),
        Poll::Pending => {
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Yields to the runtime `n` times.
async fn yields(n: u64) {
    for _ in 0..n {
        futures_lite::future::yield_now().await;
    }
}

/// Runs `round` for `n` rounds (`STRESS_SCALE=k` times as many, as in `channel_faults.rs`) on
/// one two-worker runtime, within `common::DEADLINE`: every stress test here has that frame.
fn repeat(n: usize, mut round: impl FnMut(&klaw::Runtime, usize) + Send + 'static) {
    let scale: usize = std::env::var("STRESS_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    common::with_deadline(move || {
        let rt = common::runtime(2);
        for r in 0..n * scale {
            round(&rt, r);
        }
    });
}

type Pair = (Sender<Msg>, Receiver<Msg>);
/// A kind of MPMC channel, by name.
type Kind = (&'static str, fn() -> Pair);

/// Every kind of MPMC channel, by name: the ring (capacities 1 and 2), the growing buffer
/// bounded to 2 (which `channel_faults` only reaches at a bound over 4096), and the unbounded one.
const KINDS: [Kind; 4] = [
    ("ring1", || channel::bounded(1)),
    ("ring2", || channel::bounded(2)),
    ("list2", || klaw::__private::growing_bounded(2)),
    ("unbounded", channel::unbounded),
];

/// [`repeat`] on every kind of channel, the round labelled `"{kind} round {r}"`.
fn on_every_kind(
    n: usize,
    mut round: impl FnMut(&klaw::Runtime, &str, fn() -> Pair, usize) + Send + 'static,
) {
    repeat(n, move |rt, r| {
        for (name, make) in KINDS {
            round(rt, &format!("{name} round {r}"), make, r);
        }
    });
}

/// How a consumer takes values: `recv` or the stream's `next()`, each dropped after a random
/// number (below `patience`) of pending polls, or a plain `recv().await` that waits, after a
/// random number of yields below `Wait`'s.
#[derive(Clone, Copy)]
enum Take {
    Recv(u64),
    Next(u64),
    Wait(u64),
}

/// Takes values into `ledger` until the channel is closed and empty.
async fn consume(mut rx: Receiver<Msg>, ledger: Arc<Ledger>, seed: u64, take: Take) {
    let mut rng = XorShift(seed);
    loop {
        let got = match take {
            Take::Recv(patience) => at_most(rx.recv(), rng.below(patience)).await.map(Result::ok),
            Take::Next(patience) => at_most(rx.next(), rng.below(patience)).await,
            Take::Wait(slow) => {
                yields(rng.below(slow)).await;
                Some(rx.recv().await.ok())
            }
        };
        match got {
            Some(Some(msg)) => ledger.got(msg),
            Some(None) => return,
            None => {}
        }
    }
}

/// The load of a [`cancelling_round`]: `ends` producer tasks send `per` values each (through
/// `send`, or `SinkExt::send` if `sink`), every send dropped after a random number (below
/// `patience`) of pending polls; `ends` consumer tasks take them as `take(c)` says.
struct Load {
    ends: usize,
    per: usize,
    patience: u64,
    sink: bool,
    take: fn(u64) -> Take,
}

/// One round of `load` on a fresh channel; returns the checked ledger.
fn cancelling_round(
    rt: &klaw::Runtime,
    label: &str,
    (tx, rx): Pair,
    seed: u64,
    load: Load,
) -> Arc<Ledger> {
    let Load { ends, per, patience, sink, take } = load;
    let ledger = Ledger::new(ends * per);
    let mut handles = Vec::new();
    for p in 0..ends {
        let (mut tx, ledger) = (tx.clone(), ledger.clone());
        handles.push(rt.spawn(async move {
            let mut rng = XorShift(seed * 31 + p as u64 + 1);
            for id in p * per..(p + 1) * per {
                let (msg, pending) = (ledger.msg(id), rng.below(patience));
                let outcome = if sink {
                    at_most(SinkExt::send(&mut tx, msg), pending).await.map(|sent| {
                        sent.map_err(|SendError(back)| SendError(back.expect("a value was given")))
                    })
                } else {
                    at_most(tx.send(msg), pending).await
                };
                ledger.record(id, outcome);
            }
        }));
    }
    drop(tx);
    for c in 0..ends as u64 {
        handles.push(rt.spawn(consume(rx.clone(), ledger.clone(), seed * 17 + c + 7, take(c))));
    }
    drop(rx);
    common::join_all(rt, handles);
    ledger.check(label, false);
    ledger
}

/// Polls `future` into its channel's line (`reenter::poll_into_line`), then once more with a
/// waker that counts its wake-ups, so that the line holds that waker; its count starts at 0.
fn in_line<F: Future + std::fmt::Debug>(mut future: Pin<&mut F>) -> reenter::Counted {
    let waker = reenter::counting_waker();
    assert!(reenter::poll_into_line(future.as_mut()).is_pending(), "expected to wait");
    assert!(future.poll(&mut waker.cx()).is_pending(), "expected to wait");
    waker
}

// ---- MPMC

/// channels.md: "`send`: dropping it sends nothing; the value is dropped with the future." and
/// "`recv`: dropping it loses no message". Two producers and two consumers cancel their sends
/// and receives at random points, on every kind of channel; every value is delivered once or
/// dropped once with its cancelled send (`channel_faults` sends it again instead of counting).
#[test]
fn mpmc_cancelled_sends_and_receives_deliver_each_value_once_or_drop_it_with_the_future() {
    on_every_kind(8, |rt, label, make, round| {
        let take = |_| Take::Recv(4);
        let load = Load { ends: 2, per: 300, patience: 4, sink: false, take };
        cancelling_round(rt, label, make(), round as u64 + 1, load);
    });
}

/// channels.md: "On a channel with one sender and one receiver whose two ends both run in tasks
/// of a runtime with two workers or more ... it waits at once instead", with the same promises:
/// "`send`: dropping it sends nothing; the value is dropped with the future", "`recv`: dropping
/// it loses no message". One producer and one consumer (the path that waits without a yield;
/// `channel_faults` keeps extra handles there), both cancelling at random; at least some sends
/// must be cancelled for the test to count.
#[test]
fn mpmc_one_to_one_cancelled_sends_and_receives_deliver_each_value_once() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let total = cancelled.clone();
    on_every_kind(8, move |rt, label, make, round| {
        let take = |_| Take::Recv(3);
        let load = Load { ends: 1, per: 600, patience: 3, sink: false, take };
        let ledger = cancelling_round(rt, label, make(), round as u64 + 29, load);
        total.fetch_add(Ledger::count(&ledger.cancelled), SeqCst);
    });
    assert!(cancelled.load(SeqCst) > 0, "the test never cancelled a send");
}

/// channels.md: "A stream or sink left waiting (a `next()` that lost a race, never polled
/// again) keeps no message or place from the others in line", and mpmc/sink.rs: "no value is ever
/// accepted and then lost". Producers feed through `SinkExt::send`, cancelled at random;
/// consumers take from the stream with `next()` cancelled at random, and with `recv`
/// (`channel_faults` never cancels a sink's send or a stream's `next()` under load).
#[test]
fn mpmc_cancelled_sink_sends_and_stream_nexts_lose_nothing() {
    on_every_kind(6, |rt, label, make, round| {
        let take = |c| if c == 0 { Take::Next(4) } else { Take::Wait(1) };
        let load = Load { ends: 2, per: 200, patience: 4, sink: true, take };
        cancelling_round(rt, label, make(), round as u64 + 17, load);
    });
}

/// channels.md: "When the last receiver goes, what is still queued is dropped with it (nobody
/// can receive it), so whatever a message holds is released then, not when the last sender
/// goes." Producers race the drop of the last receiver; with a sender still alive, every value
/// is dropped exactly once right after the producers are done (`ported_tokio_sync` checks it
/// without the race).
#[test]
fn mpmc_last_receiver_dropped_with_values_queued_drops_each_once_while_a_sender_lives() {
    const PER: usize = 200;
    on_every_kind(15, |rt, label, make, round| {
        let ledger = Ledger::new(2 * PER);
        let (tx, rx) = make();
        let mut handles = Vec::new();
        for p in 0..2usize {
            let (tx, ledger) = (tx.clone(), ledger.clone());
            handles.push(rt.spawn(async move {
                for id in p * PER..(p + 1) * PER {
                    ledger.record(id, Some(tx.send(ledger.msg(id)).await));
                }
            }));
        }
        for c in 0..2u64 {
            let (rx, ledger) = (rx.clone(), ledger.clone());
            handles.push(rt.spawn(async move {
                let stop = (round as u64 * 11 + c * 23) % 150;
                for _ in 0..stop {
                    match rx.recv().await {
                        Ok(msg) => ledger.got(msg),
                        Err(RecvError::Closed) => break,
                    }
                }
                // The receiver goes here, with values possibly queued.
            }));
        }
        drop(rx);
        common::join_all(rt, handles);
        assert_eq!(
            ledger.drops.iter().map(|d| d.load(SeqCst)).sum::<usize>(),
            Ledger::count(&ledger.made),
            "{label}: the queued values are dropped with the last receiver, \
             not kept until the last sender goes"
        );
        assert!(tx.is_closed());
        let probe = Ledger::new(1);
        assert_eq!(tx.try_send(probe.msg(0)).map_err(|e| e.is_closed()), Err(true));
        drop(tx);
        ledger.check(label, true);
    });
}

/// channels.md: "`reserve`: dropping it, or dropping an unused permit, gives the place back."
/// Producers reserve with cancellation and sometimes drop their permit unused; consumers cancel
/// receives. Afterwards every place of the channel can be reserved at once: none leaked
/// (`channel_faults` only sees a leak that leaves no place at all).
#[test]
fn mpmc_cancelled_reserves_and_dropped_permits_give_every_place_back() {
    const PER: usize = 300;
    on_every_kind(8, |rt, label, make, round| {
        let ledger = Ledger::new(2 * PER);
        let (tx, rx) = make();
        let mut producers = Vec::new();
        for p in 0..2usize {
            let (tx, ledger) = (tx.clone(), ledger.clone());
            producers.push(rt.spawn(async move {
                let mut rng = XorShift(round as u64 * 37 + p as u64 + 11);
                for id in p * PER..(p + 1) * PER {
                    let Some(reserved) = at_most(tx.reserve(), rng.below(4)).await else {
                        continue;
                    };
                    let permit = reserved.expect("open");
                    if rng.below(4) == 0 {
                        yields(1).await;
                        drop(permit);
                        continue;
                    }
                    ledger.record(id, Some(permit.send(ledger.msg(id))));
                }
            }));
        }
        let consumers: Vec<_> = (0..2u64)
            .map(|c| {
                let seed = round as u64 * 41 + c + 13;
                rt.spawn(consume(rx.clone(), ledger.clone(), seed, Take::Recv(4)))
            })
            .collect();
        common::join_all(rt, producers);
        // Every place can be held at once, once the consumers drained the channel.
        let capacity = tx.capacity();
        let permits = rt.block_on(async {
            let mut permits = Vec::new();
            for _ in 0..capacity.unwrap_or(4) {
                permits.push(tx.reserve().await.expect("open"));
            }
            permits
        });
        assert!(capacity.is_none() || tx.is_full());
        drop(permits);
        assert!(!tx.is_full(), "dropped permits give their places back");
        drop((tx, rx));
        common::join_all(rt, consumers);
        ledger.check(label, false);
    });
}

/// channels.md: "the wake-up a waiting `recv` was given passes to the next waiting receiver".
/// By hand: two receives wait, a message wakes the first, which is dropped unpolled; the second
/// is woken and gets the message. (`channels.rs` polls the second without asking whether it was
/// woken, on `bounded(1)` only.)
#[test]
fn mpmc_a_woken_recv_dropped_unpolled_passes_its_wake_up_to_the_next_receive() {
    for (name, make) in KINDS {
        let ledger = Ledger::new(1);
        let (tx, rx) = make();
        let (mut first, mut second) = (Box::pin(rx.recv()), Box::pin(rx.recv()));
        let (first_waker, second_waker) = (in_line(first.as_mut()), in_line(second.as_mut()));
        tx.try_send(ledger.msg(0)).unwrap();
        assert_eq!(first_waker.woken(), 1, "{name}: the first in line is woken");
        assert_eq!(second_waker.woken(), 0, "{name}: one wake-up per message");
        drop(first);
        assert_eq!(second_waker.woken(), 1, "{name}: the wake-up passed on");
        match second.as_mut().poll(&mut second_waker.cx()) {
            Poll::Ready(Ok(msg)) => ledger.got(msg),
            other => panic!("{name}: {other:?}"),
        }
        Ledger::mark(&ledger.sent, 0);
        drop(second);
        ledger.check(name, false);
    }
}

/// mpmc/sender.rs, `send`: "Waiting senders are woken in the order they started waiting, one for
/// each place that frees", and channels.md: dropping a `send` "sends nothing; the value is
/// dropped with the future". By hand: two sends wait on a full channel, a receive frees a place
/// and wakes the first, which is dropped unpolled with its value; the second is woken and
/// sends. (`channels.rs` neither counts the wake-ups nor the dropped value's drops.)
#[test]
fn mpmc_a_woken_send_dropped_unpolled_drops_its_value_and_passes_the_place_on() {
    for (name, make) in KINDS.into_iter().take(3) {
        let ledger = Ledger::new(4);
        let (tx, rx) = make();
        for id in 0..tx.capacity().unwrap() {
            tx.try_send(ledger.msg(id)).unwrap();
            Ledger::mark(&ledger.sent, id);
        }
        let mut first = Box::pin(tx.send(ledger.msg(2)));
        let mut second = Box::pin(tx.send(ledger.msg(3)));
        let (first_waker, second_waker) = (in_line(first.as_mut()), in_line(second.as_mut()));
        ledger.got(rx.try_recv().unwrap());
        assert_eq!(first_waker.woken(), 1, "{name}: the first sender is woken");
        assert_eq!(second_waker.woken(), 0, "{name}: one sender per freed place");
        drop(first);
        Ledger::mark(&ledger.cancelled, 2);
        assert_eq!(ledger.drops[2].load(SeqCst), 1, "{name}: dropped with its future");
        assert_eq!(second_waker.woken(), 1, "{name}: the place passed on");
        let sent = second.as_mut().poll(&mut second_waker.cx());
        assert!(matches!(sent, Poll::Ready(Ok(()))), "{name}");
        Ledger::mark(&ledger.sent, 3);
        drop(second);
        while let Ok(msg) = rx.try_recv() {
            ledger.got(msg);
        }
        drop((tx, rx));
        ledger.check(name, false);
    }
}

// ---- select!

/// select.md: "`value` is evaluated only if this arm wins", "A losing `recv` takes no message
/// ... and a losing `send` neither sends nor evaluates its value". A task selects between
/// sending to a full-ish channel and receiving from another, while other tasks drain and feed
/// them; every value evaluated is sent once, every value fed is received once (`select.rs`
/// checks one losing arm, with nothing racing it).
#[test]
fn select_send_and_recv_arms_that_lose_take_nothing_and_evaluate_nothing() {
    const FED: usize = 400;
    on_every_kind(6, |rt, label, make, round| {
        let fed = Ledger::new(FED);
        let out = Ledger::new(4 * FED);
        let (in_tx, in_rx) = make();
        let (out_tx, out_rx) = make();
        let evaluated = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        {
            let fed = fed.clone();
            handles.push(rt.spawn(async move {
                for id in 0..FED {
                    in_tx.send(fed.msg(id)).await.unwrap();
                    Ledger::mark(&fed.sent, id);
                }
            }));
        }
        let seed = round as u64 * 53 + 23;
        handles.push(rt.spawn(consume(out_rx, out.clone(), seed, Take::Wait(3))));
        {
            let (fed, out, evaluated) = (fed.clone(), out.clone(), evaluated.clone());
            handles.push(rt.spawn(async move {
                let mut next = 0usize;
                let mut wins = 0usize;
                loop {
                    let done = klaw::select! {
                        send(out_tx, {
                            evaluated.fetch_add(1, SeqCst);
                            let msg = out.msg(next);
                            next += 1;
                            msg
                        }) -> sent => {
                            sent.unwrap();
                            Ledger::mark(&out.sent, next - 1);
                            wins += 1;
                            next >= 4 * FED
                        },
                        recv(in_rx) -> got => match got {
                            Ok(msg) => { fed.got(msg); false }
                            Err(RecvError::Closed) => true,
                        },
                    };
                    if done {
                        break;
                    }
                }
                // Whatever is still fed once the sends ran out.
                while let Ok(msg) = in_rx.recv().await {
                    fed.got(msg);
                }
                assert_eq!(evaluated.load(SeqCst), wins, "only winners are evaluated");
                drop(out_tx);
            }));
        }
        common::join_all(rt, handles);
        assert_eq!(evaluated.load(SeqCst), Ledger::count(&out.made));
        fed.check(&format!("{label} fed"), false);
        out.check(&format!("{label} out"), false);
    });
}

// ---- broadcast

/// A broadcast value; `live`'s strong count, less one, is how many values and clones live.
#[derive(Clone, Debug)]
struct Seq {
    n: u64,
    _live: Arc<()>,
}

/// How many values the lag test sends.
const SENT: u64 = 2000;

/// Reads `rx` at a pace set by `slow` (random yields below it before each `recv`), until
/// `Closed` or a value of at least `quit`: after the first value, each value is the last plus
/// one plus what the lags before it said, and the sequence ends at `SENT - 1`.
async fn read_lagging(mut rx: broadcast::Receiver<Seq>, slow: u64, quit: u64) {
    let mut last: Option<u64> = None;
    let mut lag = 0u64;
    let mut rng = XorShift(slow * 7 + 1);
    loop {
        if slow > 0 {
            yields(rng.below(slow)).await;
        }
        match rx.recv().await {
            Ok(seq) => {
                if let Some(last) = last {
                    assert_eq!(seq.n, last + 1 + lag, "after {last} lag {lag}");
                }
                last = Some(seq.n);
                lag = 0;
                if seq.n >= quit {
                    return;
                }
            }
            Err(broadcast::RecvError::Lagged(n)) => {
                assert!(n > 0, "a lag of nothing");
                // Two in a row: sends overran it again before it looked.
                lag += n;
            }
            Err(broadcast::RecvError::Closed) => {
                assert_eq!(lag, 0, "closed right after a lag");
                if let Some(last) = last {
                    assert_eq!(last, SENT - 1, "closed before the last value");
                }
                return;
            }
        }
    }
}

/// channels.md: "a receiver more than `cap` behind gets `Lagged(n)`", and broadcast.rs:
/// "missed `n` messages; the next `recv` gives the oldest message still kept". A sender sends
/// 0..SENT while receivers (one subscribed meanwhile, one dropped meanwhile) read at different
/// speeds: after the first value a receiver sees, each value is the last plus one plus what the
/// lag before it said, and the sequence ends at `SENT - 1` then `Closed`. No clone outlives the
/// channel. (`channel_faults` checks only that the sums add up, `ported_tokio_sync` the exact
/// lags without a race.)
#[test]
fn broadcast_lagged_counts_are_exact_and_every_clone_is_dropped() {
    repeat(10, |rt, round| {
        let live = Arc::new(());
        let (tx, first) = broadcast::channel::<Seq>(4);
        let late = tx.clone();
        let mut handles = vec![
            rt.spawn(read_lagging(first, 0, u64::MAX)),
            rt.spawn(read_lagging(tx.subscribe(), 4, u64::MAX)),
            rt.spawn(read_lagging(tx.subscribe(), 2, SENT / 2)),
            rt.spawn(async move {
                yields(round as u64 % 13).await;
                let rx = late.subscribe();
                drop(late);
                read_lagging(rx, 1, u64::MAX).await;
            }),
        ];
        {
            let live = live.clone();
            handles.push(rt.spawn(async move {
                for n in 0..SENT {
                    tx.send(Seq { n, _live: live.clone() }).unwrap();
                    if n % 64 == 0 {
                        yields(1).await;
                    }
                }
            }));
        }
        common::join_all(rt, handles);
        assert_eq!(
            Arc::strong_count(&live) - 1,
            0,
            "round {round}: a value or clone outlived the channel"
        );
    });
}

/// broadcast.rs, `Lagged`: "missed `n` messages; the next `recv` gives the oldest message still
/// kept". By hand: a receiver already waiting in `recv` is woken by the sends that overflow it,
/// sees the exact lag, then the kept values in order, then `Closed` once the sender is gone
/// (`ported_tokio_sync` and `channel_api` lag only a receiver that was not waiting).
#[test]
fn broadcast_a_waiting_receiver_overrun_sees_the_lag_then_the_kept_values_then_closed() {
    let live = Arc::new(());
    let (tx, mut rx) = broadcast::channel::<Seq>(2);
    {
        let waker = reenter::counting_waker();
        let mut receiving = pin!(rx.recv());
        assert!(receiving.as_mut().poll(&mut waker.cx()).is_pending());
        for n in 0..5 {
            tx.send(Seq { n, _live: live.clone() }).unwrap();
        }
        assert!(waker.woken() >= 1, "the waiting receiver was woken");
        assert_eq!(
            receiving.poll(&mut waker.cx()).map(|r| r.map(|s| s.n)),
            Poll::Ready(Err(broadcast::RecvError::Lagged(3)))
        );
    }
    drop(tx);
    assert_eq!(rx.try_recv().map(|s| s.n), Ok(3));
    assert_eq!(klaw::runtime::block_on(rx.recv()).map(|s| s.n), Ok(4));
    assert_eq!(klaw::runtime::block_on(rx.recv()).map(|s| s.n), Err(broadcast::RecvError::Closed));
    assert_eq!(rx.try_recv().map(|s| s.n), Err(broadcast::TryRecvError::Closed));
    drop(rx);
    assert_eq!(Arc::strong_count(&live) - 1, 0);
}

/// `force_send` racing permits (`try_reserve` + `Permit::send` or a dropped permit),
/// `send_blocking`, receivers (`recv_blocking`, `recv_many_blocking`, `try_recv`) and a close at
/// a random moment. `channel_faults` races `force_send` with receivers only, and permits with
/// sends only; this mixes the two users of the permit lock (`force_push`, which takes a message
/// out before it puts its own in, and the counted pushes of permits), on the ring and on the
/// growing buffer.
///
/// Checked: every value is either accepted (`Ok`) and then received exactly once or displaced
/// (given back by a `force_send`) exactly once, or refused with its value back and never
/// received; no thread panics (e.g. `send_with_permit`'s `unreachable!("a reserved place is
/// free")`); nothing hangs; and after a round without a close, every place is free again.
mod force_send_with_permits {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use klaw::channel::{Receiver, SendError, Sender, TryRecvError, TrySendError, bounded};

    use super::common::within;

    const PER: usize = 300;
    const PRODUCERS: usize = 3;
    const TOTAL: usize = PER * PRODUCERS;

    struct Ledger {
        accepted: Vec<AtomicU8>,
        refused: Vec<AtomicU8>,
        received: Vec<AtomicU8>,
        displaced: Vec<AtomicU8>,
        producers_done: AtomicUsize,
    }

    impl Ledger {
        fn new() -> Arc<Self> {
            let fresh = || (0..TOTAL).map(|_| AtomicU8::new(0)).collect::<Vec<_>>();
            Arc::new(Ledger {
                accepted: fresh(),
                refused: fresh(),
                received: fresh(),
                displaced: fresh(),
                producers_done: AtomicUsize::new(0),
            })
        }

        fn check(&self, label: &str) {
            for id in 0..TOTAL {
                let (a, f, r, d) = (
                    self.accepted[id].load(SeqCst),
                    self.refused[id].load(SeqCst),
                    self.received[id].load(SeqCst),
                    self.displaced[id].load(SeqCst),
                );
                assert_eq!(a + f, 1, "{label}: value {id}: accepted {a} + refused {f}");
                if a == 1 {
                    assert_eq!(
                        r + d,
                        1,
                        "{label}: accepted value {id}: received {r} times, displaced {d} times"
                    );
                } else {
                    assert_eq!(
                        (r, d),
                        (0, 0),
                        "{label}: refused value {id} was received or displaced"
                    );
                }
            }
        }
    }

    /// A cheap per-thread pseudo-random sequence.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn round(label: &str, tx: Sender<u64>, rx: Receiver<u64>, close_midway: bool, seed: u64) {
        let capacity = tx.capacity().unwrap();
        let ledger = Ledger::new();
        let stop_close = Arc::new(AtomicBool::new(false));

        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let (tx, ledger) = (tx.clone(), ledger.clone());
            producers.push(std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(31).wrapping_add(p as u64 + 1) | 1;
                for i in 0..PER {
                    let id = p * PER + i;
                    let value = id as u64;
                    match p {
                        // force_send: accepted, maybe displacing an older accepted value.
                        0 => match tx.force_send(value) {
                            Ok(None) => ledger.accepted[id].store(1, SeqCst),
                            Ok(Some(old)) => {
                                ledger.accepted[id].store(1, SeqCst);
                                ledger.displaced[old as usize].fetch_add(1, SeqCst);
                            }
                            Err(TrySendError::Full(back)) | Err(TrySendError::Closed(back)) => {
                                assert_eq!(back, value);
                                ledger.refused[id].store(1, SeqCst);
                            }
                        },
                        // Permits: some dropped unused (the place must come back), the rest used.
                        1 => loop {
                            match tx.try_reserve() {
                                Ok(permit) => {
                                    if next(&mut rng) % 4 == 0 {
                                        drop(permit);
                                        std::thread::yield_now();
                                        continue;
                                    }
                                    match permit.send(value) {
                                        Ok(()) => ledger.accepted[id].store(1, SeqCst),
                                        Err(SendError(back)) => {
                                            assert_eq!(back, value);
                                            ledger.refused[id].store(1, SeqCst);
                                        }
                                    }
                                    break;
                                }
                                Err(TrySendError::Full(())) => std::thread::yield_now(),
                                Err(TrySendError::Closed(())) => {
                                    ledger.refused[id].store(1, SeqCst);
                                    break;
                                }
                            }
                        },
                        // Plain sends, waiting for a place.
                        _ => match tx.send_blocking(value) {
                            Ok(()) => ledger.accepted[id].store(1, SeqCst),
                            Err(SendError(back)) => {
                                assert_eq!(back, value);
                                ledger.refused[id].store(1, SeqCst);
                            }
                        },
                    }
                }
                ledger.producers_done.fetch_add(1, SeqCst);
            }));
        }

        let mut consumers = Vec::new();
        for c in 0..2u64 {
            let (rx, ledger) = (rx.clone(), ledger.clone());
            consumers.push(std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(17).wrapping_add(c + 7) | 1;
                let mut batch = Vec::new();
                loop {
                    match next(&mut rng) % 3 {
                        0 => match rx.recv_blocking() {
                            Ok(v) => {
                                ledger.received[v as usize].fetch_add(1, SeqCst);
                            }
                            Err(_) => return,
                        },
                        1 => {
                            batch.clear();
                            match rx.recv_many_blocking(&mut batch, 3) {
                                Ok(_) => {
                                    for &v in &batch {
                                        ledger.received[v as usize].fetch_add(1, SeqCst);
                                    }
                                }
                                Err(_) => return,
                            }
                        }
                        _ => match rx.try_recv() {
                            Ok(v) => {
                                ledger.received[v as usize].fetch_add(1, SeqCst);
                            }
                            Err(TryRecvError::Empty) => std::thread::yield_now(),
                            Err(TryRecvError::Closed) => return,
                        },
                    }
                }
            }));
        }

        let closer = close_midway.then(|| {
            let (tx, stop) = (tx.clone(), stop_close.clone());
            let wait = Duration::from_micros(next(&mut (seed | 1)) % 2000);
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                if !stop.load(SeqCst) {
                    tx.close();
                }
            })
        });

        for producer in producers {
            producer.join().expect("a producer panicked");
        }
        stop_close.store(true, SeqCst);
        if let Some(closer) = closer {
            closer.join().unwrap();
        }

        if !close_midway {
            // Let the consumers drain, then every place must be free: no place leaked by a permit
            // dropped unused or by a displacement.
            while !rx.is_empty() {
                std::thread::yield_now();
            }
            let mut permits = Vec::new();
            for n in 0..capacity {
                match tx.try_reserve() {
                    Ok(permit) => permits.push(permit),
                    Err(e) => {
                        panic!("{label}: place {n} of {capacity} not free after the round: {e:?}")
                    }
                }
            }
            drop(permits);
        }
        drop(tx);
        drop(rx);
        for consumer in consumers {
            consumer.join().expect("a consumer panicked");
        }
        ledger.check(label);
    }

    type MakeChannel = fn() -> (Sender<u64>, Receiver<u64>);

    #[test]
    fn force_send_permits_sends_and_receives_racing_account_for_every_value() {
        within(Duration::from_secs(120), || {
            for seed in 0..40u64 {
                for close_midway in [false, true] {
                    let makers: [(&str, MakeChannel); 4] = [
                        ("ring1", || bounded::<u64>(1)),
                        ("ring2", || bounded::<u64>(2)),
                        ("ring3", || bounded::<u64>(3)),
                        ("list2", || klaw::__private::growing_bounded::<u64>(2)),
                    ];
                    for (name, make) in makers {
                        let (tx, rx) = make();
                        let label = format!("{name} seed {seed} close_midway {close_midway}");
                        round(&label, tx, rx, close_midway, seed + 1);
                    }
                }
            }
        });
    }
}

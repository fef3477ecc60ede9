//! Channels under faults: races that need real threads, cancellation at random points, closing
//! while both sides wait, on klaw's multi-worker runtime, on tokio's multi-thread runtime (with
//! `--features tokio`) and on plain threads. Each stress test keeps a ledger: every value sent
//! is received exactly once, or handed back to its sender, or (for a cancelled `send`, as
//! documented) dropped with its future.
//!
//! Every scenario runs under a watchdog (`deadline`): a deadlock or a lost wake-up fails the
//! test with the scenario's progress instead of hanging. No assertion is on timing.
//!
//! `cargo nextest run --release --test channel_faults [--features tokio]`;
//! `STRESS_SCALE=10` repeats every stress loop ten times as often.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::XorShift;
use futures_lite::future::{or, yield_now};
use klaw::channel::{self, Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a thread of its own; panics with `progress()` if it has not ended after `secs`.
fn deadline<R: Send + 'static>(
    name: &str,
    secs: u64,
    progress: impl Fn() -> String,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name(format!("stress-{name}"))
        .spawn(move || {
            let out = f();
            let _ = done.send(());
            out
        })
        .unwrap();
    match finished.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(_) => unreachable!("the worker ended without reporting"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("DEADLOCK/LOST WAKE-UP: {name} did not finish within {secs}s; {}", progress())
        }
    }
}

const DEADLINE: u64 = 30;

/// A generator for `seed`, salted per call so no two runs of a test share their choices.
fn rng(seed: u64) -> XorShift {
    static SALT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let salt = SALT.fetch_add(0x9E37_79B9_7F4A_7C15, SeqCst);
    XorShift((seed ^ salt) | 1)
}

/// Polls `fut` once in the current task's context.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

fn micros(n: u64) -> Duration {
    Duration::from_micros(n)
}

type BoxFut = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

#[derive(Clone, Copy, Debug)]
enum Exec {
    /// klaw's runtime with this many workers.
    Klaw(usize),
    /// tokio's multi-thread runtime with this many workers.
    #[cfg(feature = "tokio")]
    Tokio(usize),
    /// One std thread per future, each in klaw's `block_on`.
    Threads,
}

/// Runs every future to its end on `exec`; a panic in one fails the test.
fn run_all(exec: Exec, futures: Vec<BoxFut>) {
    match exec {
        Exec::Klaw(workers) => {
            let rt = klaw::Runtime::builder().workers(workers).build().unwrap();
            let handles: Vec<_> = futures.into_iter().map(|f| rt.spawn(f)).collect();
            rt.block_on(async {
                for handle in handles {
                    handle.await.expect("a test task failed");
                }
            });
        }
        #[cfg(feature = "tokio")]
        Exec::Tokio(workers) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .build()
                .unwrap();
            let handles: Vec<_> = futures.into_iter().map(|f| rt.spawn(f)).collect();
            rt.block_on(async {
                for handle in handles {
                    handle.await.expect("a test task failed");
                }
            });
        }
        Exec::Threads => {
            let threads: Vec<_> = futures
                .into_iter()
                .map(|f| std::thread::spawn(move || klaw::runtime::block_on(f)))
                .collect();
            for thread in threads {
                thread.join().expect("a test thread failed");
            }
        }
    }
}

/// Every executor the build has.
fn executors() -> Vec<Exec> {
    #[allow(unused_mut)]
    let mut all = vec![Exec::Klaw(4), Exec::Klaw(2), Exec::Threads];
    #[cfg(feature = "tokio")]
    all.extend([Exec::Tokio(4), Exec::Tokio(2)]);
    all
}

// ---------------------------------------------------------------------------------------------
// MPMC: exactly once under random cancellation
// ---------------------------------------------------------------------------------------------

/// What happened to every message id.
struct Ledger {
    received: Vec<AtomicU32>,
    returned: Vec<AtomicU32>,
    total_received: AtomicUsize,
    total_returned: AtomicUsize,
    senders_done: AtomicUsize,
    receivers_done: AtomicUsize,
    cancelled_recvs: AtomicUsize,
    cancelled_sends: AtomicUsize,
}

impl Ledger {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Ledger {
            received: (0..n).map(|_| AtomicU32::new(0)).collect(),
            returned: (0..n).map(|_| AtomicU32::new(0)).collect(),
            total_received: AtomicUsize::new(0),
            total_returned: AtomicUsize::new(0),
            senders_done: AtomicUsize::new(0),
            receivers_done: AtomicUsize::new(0),
            cancelled_recvs: AtomicUsize::new(0),
            cancelled_sends: AtomicUsize::new(0),
        })
    }
    fn got(&self, id: u64) {
        self.received[id as usize].fetch_add(1, SeqCst);
        self.total_received.fetch_add(1, SeqCst);
    }
    fn back(&self, id: u64) {
        self.returned[id as usize].fetch_add(1, SeqCst);
        self.total_returned.fetch_add(1, SeqCst);
    }
    fn progress(&self) -> String {
        format!(
            "received {} returned {} of {}; senders done {}, receivers done {}; cancelled recvs {}, sends {}",
            self.total_received.load(SeqCst),
            self.total_returned.load(SeqCst),
            self.received.len(),
            self.senders_done.load(SeqCst),
            self.receivers_done.load(SeqCst),
            self.cancelled_recvs.load(SeqCst),
            self.cancelled_sends.load(SeqCst),
        )
    }
    /// Every id received exactly once, or (if `may_return`) returned exactly once instead.
    fn check(&self, may_return: bool) {
        for (id, (received, returned)) in self.received.iter().zip(&self.returned).enumerate() {
            let (received, returned) = (received.load(SeqCst), returned.load(SeqCst));
            if may_return {
                assert_eq!(
                    received + returned,
                    1,
                    "message {id}: received {received} times, returned {returned} times"
                );
            } else {
                assert_eq!((received, returned), (1, 0), "message {id}: (received, returned)");
            }
        }
    }
}

/// One receive, chosen by `mode`; `None` if it was cancelled before it completed. The modes
/// that cancel are followed by a plain `recv().await` in the caller, so every receiver ends in
/// a plain wait: a lost wake-up then hangs and the watchdog catches it.
async fn receive_somehow(
    rx: &Receiver<u64>,
    mode: u64,
    rng: &mut XorShift,
) -> Option<Result<u64, RecvError>> {
    match mode {
        // Polled once, then dropped (it may have yielded or joined the line).
        1 => {
            let mut recv = rx.recv();
            match poll_once(&mut recv).await {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            }
        }
        // Polled into line (after its yield), the task yields (a push may notify it
        // meanwhile), then dropped without looking.
        2 => {
            let mut recv = rx.recv();
            if let Poll::Ready(r) = poll_once(&mut recv).await {
                return Some(r);
            }
            if let Poll::Ready(r) = poll_once(&mut recv).await {
                return Some(r);
            }
            yield_now().await;
            None
        }
        // Raced with a short sleep.
        3 => {
            let d = micros(rng.below(200));
            or(async { Some(rx.recv().await) }, async {
                klaw::time::sleep(d).await;
                None
            })
            .await
        }
        // A select! arm that may lose to a timer.
        4 => {
            let d = micros(rng.below(200));
            klaw::select! {
                recv(rx) -> r => Some(r),
                after(d) => None,
            }
        }
        // try_recv
        5 => match rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            Err(TryRecvError::Empty) => None,
        },
        _ => Some(rx.recv().await),
    }
}

/// One send of `id`, chosen by `mode`; `Ok(true)` once it went in, `Ok(false)` if it was
/// cancelled before (then the value was not sent: the caller sends it again), `Err` if the
/// channel closed (the value came back).
async fn send_somehow(
    tx: &Sender<u64>,
    id: u64,
    mode: u64,
    rng: &mut XorShift,
) -> Result<bool, SendError<u64>> {
    match mode {
        1 => match tx.try_send(id) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Closed(v)) => Err(SendError(v)),
        },
        // Polled once, dropped: a send that did not complete sent nothing (documented).
        2 => {
            let mut send = tx.send(id);
            match poll_once(&mut send).await {
                Poll::Ready(r) => r.map(|()| true),
                Poll::Pending => Ok(false),
            }
        }
        // Polled into line, the task yields, dropped.
        3 => {
            let mut send = tx.send(id);
            for _ in 0..2 {
                if let Poll::Ready(r) = poll_once(&mut send).await {
                    return r.map(|()| true);
                }
            }
            yield_now().await;
            Ok(false)
        }
        4 => match tx.reserve().await {
            Ok(permit) => permit.send(id).map(|()| true),
            Err(SendError(())) => Err(SendError(id)),
        },
        // reserve raced with a sleep.
        5 => {
            let d = micros(rng.below(200));
            let reserved = or(async { Some(tx.reserve().await) }, async {
                klaw::time::sleep(d).await;
                None
            })
            .await;
            match reserved {
                Some(Ok(permit)) => permit.send(id).map(|()| true),
                Some(Err(SendError(()))) => Err(SendError(id)),
                None => Ok(false),
            }
        }
        // A permit taken and dropped unused (its place must come back), then not sent.
        6 => match tx.reserve().await {
            Ok(permit) => {
                if rng.below(2) == 0 {
                    yield_now().await;
                }
                drop(permit);
                Ok(false)
            }
            Err(SendError(())) => Err(SendError(id)),
        },
        // select!'s send arm against a timer.
        7 => {
            let d = micros(rng.below(200));
            klaw::select! {
                send(tx, id) -> r => r.map(|()| true),
                after(d) => Ok(false),
            }
        }
        // A reserve polled into line and dropped.
        8 => {
            let mut reserve = tx.reserve();
            for _ in 0..2 {
                if let Poll::Ready(r) = poll_once(&mut reserve).await {
                    return match r {
                        Ok(permit) => permit.send(id).map(|()| true),
                        Err(SendError(())) => Err(SendError(id)),
                    };
                }
            }
            yield_now().await;
            Ok(false)
        }
        _ => tx.send(id).await.map(|()| true),
    }
}

#[derive(Clone, Copy, Debug)]
struct Mpmc {
    capacity: Option<usize>,
    senders: usize,
    receivers: usize,
    per_sender: usize,
    /// Receivers cancel some of their receives.
    cancel_recvs: bool,
    /// Senders cancel some of their sends, reserve and drop permits, use select!.
    cancel_sends: bool,
    /// The channel is closed at a random moment (else only after everything was received).
    close_midway: bool,
}

/// Senders and receivers of one channel on `exec`: every id is received exactly once (or, with
/// `close_midway`, came back to its sender once instead).
fn mpmc_round(exec: Exec, cfg: Mpmc, seed: u64, ledger: Arc<Ledger>) {
    let total = cfg.senders * cfg.per_sender;
    let (tx, rx) = match cfg.capacity {
        Some(cap) => channel::bounded::<u64>(cap),
        None => channel::unbounded::<u64>(),
    };
    let mut futures: Vec<BoxFut> = Vec::new();
    for s in 0..cfg.senders {
        let tx = tx.clone();
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed.wrapping_mul(31).wrapping_add(s as u64));
            'ids: for i in 0..cfg.per_sender {
                let id = (s * cfg.per_sender + i) as u64;
                let mut mode = if cfg.cancel_sends { rng.below(12) } else { 0 };
                loop {
                    match send_somehow(&tx, id, mode, &mut rng).await {
                        Ok(true) => break,
                        Ok(false) => {
                            ledger.cancelled_sends.fetch_add(1, SeqCst);
                            mode = 0; // then a plain send: a lost wake-up would hang
                        }
                        Err(SendError(back)) => {
                            assert_eq!(back, id, "a refused send gave back another value");
                            ledger.back(id);
                            // Closed: every later id comes back too.
                            for j in i + 1..cfg.per_sender {
                                let id = (s * cfg.per_sender + j) as u64;
                                match tx.send(id).await {
                                    Err(SendError(back)) => {
                                        assert_eq!(back, id);
                                        ledger.back(id);
                                    }
                                    Ok(()) => panic!("a send succeeded after a send was refused"),
                                }
                            }
                            break 'ids;
                        }
                    }
                }
            }
            ledger.senders_done.fetch_add(1, SeqCst);
        }));
    }
    for r in 0..cfg.receivers {
        let rx = rx.clone();
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed.wrapping_mul(17).wrapping_add(1000 + r as u64));
            loop {
                let mode = if cfg.cancel_recvs { rng.below(8) } else { 0 };
                match receive_somehow(&rx, mode, &mut rng).await {
                    Some(Ok(id)) => ledger.got(id),
                    Some(Err(RecvError::Closed)) => break,
                    None => {
                        ledger.cancelled_recvs.fetch_add(1, SeqCst);
                    }
                }
                // A completed or cancelled op in mode != 0 is followed by a plain recv.
                if mode != 0 {
                    match rx.recv().await {
                        Ok(id) => ledger.got(id),
                        Err(RecvError::Closed) => break,
                    }
                }
            }
            ledger.receivers_done.fetch_add(1, SeqCst);
        }));
    }
    // The controller keeps a sender (so the channel stays open until everything was received,
    // and no close masks a lost wake-up) and a receiver (so nothing queued is dropped).
    {
        let ledger = ledger.clone();
        let keep_tx = tx;
        let keep_rx = rx;
        futures.push(Box::pin(async move {
            let mut rng = rng(seed ^ 0xC105E);
            if cfg.close_midway {
                klaw::time::sleep(micros(rng.below(2000))).await;
                keep_tx.close();
            } else {
                while ledger.total_received.load(SeqCst) < total {
                    klaw::time::sleep(Duration::from_millis(1)).await;
                }
            }
            drop(keep_tx);
            // Whatever is still queued after a close is received by the receivers, which
            // drain until Closed; this receiver only keeps the queue alive meanwhile.
            while ledger.receivers_done.load(SeqCst) < cfg.receivers {
                klaw::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(keep_rx.try_recv(), Err(TryRecvError::Closed), "receivers left a message");
        }));
    }
    run_all(exec, futures);
    ledger.check(cfg.close_midway);
}

/// `STRESS_SCALE=n` repeats every stress loop n times as often.
fn scale() -> usize {
    std::env::var("STRESS_SCALE").ok().and_then(|r| r.parse().ok()).unwrap_or(1)
}

fn mpmc_many(name: &str, cfg: Mpmc, rounds: usize) {
    mpmc_many_verbose(name, cfg, rounds, executors());
}

/// As `mpmc_many`, with the ledger of the stuck round shown on a deadlock.
fn mpmc_many_verbose(name: &str, cfg: Mpmc, rounds: usize, execs: Vec<Exec>) {
    let rounds = rounds * scale();
    for exec in execs {
        for round in 0..rounds {
            let label = format!("{name} on {exec:?} round {round}");
            let ledger = Ledger::new(cfg.senders * cfg.per_sender);
            let shown = ledger.clone();
            deadline(
                &label,
                DEADLINE,
                move || shown.progress(),
                move || mpmc_round(exec, cfg, round as u64, ledger),
            );
        }
    }
}

const BASE: Mpmc = Mpmc {
    capacity: Some(1),
    senders: 4,
    receivers: 4,
    per_sender: 500,
    cancel_recvs: true,
    cancel_sends: false,
    close_midway: false,
};

#[test]
fn mpmc_bounded1_cancelled_receivers_lose_nothing() {
    mpmc_many("bounded1 cancelled recvs", BASE, 20);
}

#[test]
fn mpmc_bounded2_cancelled_receivers_lose_nothing() {
    mpmc_many("bounded2 cancelled recvs", Mpmc { capacity: Some(2), ..BASE }, 20);
}

#[test]
fn mpmc_unbounded_cancelled_receivers_lose_nothing() {
    mpmc_many("unbounded cancelled recvs", Mpmc { capacity: None, ..BASE }, 20);
}

#[test]
fn mpmc_large_bound_list_buffer_cancelled_receivers_lose_nothing() {
    // Over 4096: the locked growing list, not the ring.
    mpmc_many("bounded5000 cancelled recvs", Mpmc { capacity: Some(5000), ..BASE }, 10);
}

#[test]
fn mpmc_bounded1_cancelled_senders_and_permits_lose_nothing() {
    let cfg = Mpmc { cancel_sends: true, cancel_recvs: false, ..BASE };
    mpmc_many("bounded1 cancelled sends", cfg, 20);
}

#[test]
fn mpmc_bounded2_everything_cancelled_loses_nothing() {
    let cfg = Mpmc { capacity: Some(2), cancel_sends: true, ..BASE };
    mpmc_many("bounded2 all cancelled", cfg, 20);
}

#[test]
fn mpmc_bounded1_everything_cancelled_loses_nothing() {
    let cfg = Mpmc { cancel_sends: true, ..BASE };
    mpmc_many("bounded1 all cancelled", cfg, 20);
}

#[test]
fn mpmc_unbounded_everything_cancelled_loses_nothing() {
    let cfg = Mpmc { capacity: None, cancel_sends: true, ..BASE };
    mpmc_many("unbounded all cancelled", cfg, 20);
}

#[test]
fn mpmc_many_senders_one_receiver_bounded1() {
    let cfg = Mpmc { senders: 8, receivers: 1, per_sender: 300, cancel_sends: true, ..BASE };
    mpmc_many("8x1 bounded1", cfg, 20);
}

#[test]
fn mpmc_one_sender_many_receivers_bounded1() {
    let cfg = Mpmc { senders: 1, receivers: 8, per_sender: 2000, ..BASE };
    mpmc_many("1x8 bounded1", cfg, 20);
}

#[test]
fn mpmc_close_midway_every_value_received_or_returned() {
    for capacity in [Some(1), Some(2), None] {
        let cfg = Mpmc { capacity, cancel_sends: true, close_midway: true, ..BASE };
        mpmc_many("close midway", cfg, 30);
    }
}

#[test]
fn mpmc_one_sender_one_receiver_with_cancellation() {
    // One sending and one receiving task (the controller's idle handles make it not one-to-one).
    let cfg = Mpmc { senders: 1, receivers: 1, per_sender: 5000, cancel_sends: true, ..BASE };
    mpmc_many_verbose("1x1 cancelled", cfg, 10, executors());
}

// ---------------------------------------------------------------------------------------------
// The one-to-one hand-off path, with handles cloned in and dropped mid-stream
// ---------------------------------------------------------------------------------------------

/// One sender task and one receiver task on a bounded channel with no other handle (so the
/// one-to-one hand-off path is taken on a pool), where now and then a second sender or a
/// second receiver is cloned into a new task for a while and dropped (a receiver clone
/// sometimes cancelled while it waits). Every id arrives exactly once; nothing hangs.
fn one_to_one_with_visitors(exec: Exec, capacity: usize, seed: u64) {
    const MAIN: usize = 20_000;
    const VISITS: usize = 50;
    const PER_VISIT: usize = 20;
    let total = MAIN + VISITS * PER_VISIT;
    let ledger = Ledger::new(total);
    let (tx, rx) = channel::bounded::<u64>(capacity);
    let spawner: Arc<dyn Fn(BoxFut) + Send + Sync> = spawner_for(exec);
    let mut futures: Vec<BoxFut> = Vec::new();
    {
        let ledger = ledger.clone();
        let spawn = spawner.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed);
            let mut visit = 0;
            for id in 0..MAIN as u64 {
                if visit < VISITS && rng.below((MAIN / VISITS) as u64) == 0 {
                    // A second sender for a while.
                    let visitor = tx.clone();
                    let ledger = ledger.clone();
                    let base = (MAIN + visit * PER_VISIT) as u64;
                    visit += 1;
                    spawn(Box::pin(async move {
                        for k in 0..PER_VISIT as u64 {
                            visitor.send(base + k).await.expect("open while the main sender lives");
                        }
                        drop(visitor);
                        ledger.senders_done.fetch_add(1, SeqCst);
                    }));
                }
                tx.send(id).await.unwrap();
            }
            // The visits not made yet are made now, by this sender.
            while visit < VISITS {
                let base = (MAIN + visit * PER_VISIT) as u64;
                for k in 0..PER_VISIT as u64 {
                    tx.send(base + k).await.unwrap();
                }
                ledger.senders_done.fetch_add(1, SeqCst);
                visit += 1;
            }
            // Wait for the visitors to end before this sender closes the channel (a visitor
            // refused by a close would not be a defect).
            while ledger.senders_done.load(SeqCst) < VISITS {
                klaw::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    {
        let ledger = ledger.clone();
        let spawn = spawner.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed ^ 0xABCD);
            let mut spawned = 0;
            loop {
                if rng.below(400) == 0 {
                    // A second receiver for a while, sometimes cancelled in line.
                    spawned += 1;
                    let visitor = rx.clone();
                    let ledger = ledger.clone();
                    let cancel_after = rng.below(3);
                    spawn(Box::pin(async move {
                        for _ in 0..PER_VISIT {
                            if cancel_after == 0 {
                                let mut recv = visitor.recv();
                                for _ in 0..2 {
                                    if let Poll::Ready(r) = poll_once(&mut recv).await {
                                        if let Ok(id) = r {
                                            ledger.got(id);
                                        }
                                        break;
                                    }
                                }
                                drop(recv);
                                yield_now().await;
                            } else {
                                let d = micros(cancel_after * 50);
                                let got = or(async { Some(visitor.recv().await) }, async {
                                    klaw::time::sleep(d).await;
                                    None
                                })
                                .await;
                                match got {
                                    Some(Ok(id)) => ledger.got(id),
                                    Some(Err(_)) => break,
                                    None => {}
                                }
                            }
                        }
                        ledger.receivers_done.fetch_add(1, SeqCst);
                    }));
                }
                match rx.recv().await {
                    Ok(id) => ledger.got(id),
                    Err(RecvError::Closed) => break,
                }
            }
            // The visiting receivers record what they took before they end.
            while ledger.receivers_done.load(SeqCst) < spawned {
                klaw::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    run_all(exec, futures);
    ledger.check(false);
}

/// A way to start more futures on `exec` from inside a test.
fn spawner_for(exec: Exec) -> Arc<dyn Fn(BoxFut) + Send + Sync> {
    match exec {
        Exec::Klaw(_) => Arc::new(|f: BoxFut| {
            let _detached = klaw::Handle::current().expect("in a klaw task").spawn(f);
        }),
        #[cfg(feature = "tokio")]
        Exec::Tokio(_) => Arc::new(|f: BoxFut| {
            tokio::spawn(f);
        }),
        Exec::Threads => Arc::new(|f: BoxFut| {
            std::thread::spawn(move || klaw::runtime::block_on(f));
        }),
    }
}

#[test]
fn one_to_one_hand_off_with_handles_cloned_in_and_dropped() {
    for exec in executors() {
        for capacity in [1, 2, 64] {
            for seed in 0..(3 * scale() as u64) {
                let label = format!("one-to-one visitors {exec:?} cap {capacity} seed {seed}");
                deadline(&label, DEADLINE, String::new, move || {
                    one_to_one_with_visitors(exec, capacity, seed)
                });
            }
        }
    }
}

/// One-to-one: the receiver is dropped mid-stream while the sender waits on a full channel:
/// the send fails with its own value, never hangs.
#[test]
fn one_to_one_receiver_dropped_while_the_sender_waits() {
    for exec in executors() {
        for round in 0..(200 * scale() as u64) {
            let label = format!("rx dropped mid-stream {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let (tx, rx) = channel::bounded::<u64>(1);
                let stop_after = rng(round).below(500);
                let outcome = Arc::new(Mutex::new(None));
                let out = outcome.clone();
                run_all(
                    exec,
                    vec![
                        Box::pin(async move {
                            for id in 0.. {
                                if let Err(SendError(back)) = tx.send(id).await {
                                    *out.lock().unwrap() = Some((id, back));
                                    return;
                                }
                            }
                        }),
                        Box::pin(async move {
                            for _ in 0..stop_after {
                                rx.recv().await.unwrap();
                            }
                            drop(rx);
                        }),
                    ],
                );
                let (id, back) = outcome.lock().unwrap().expect("the sender saw the close");
                assert_eq!(id, back, "the refused send gave back its own value");
            });
        }
    }
}

/// One-to-one: the sender is dropped mid-stream while the receiver waits: every sent value is
/// received, then Closed.
#[test]
fn one_to_one_sender_dropped_while_the_receiver_waits() {
    for exec in executors() {
        for round in 0..(200 * scale() as u64) {
            let label = format!("tx dropped mid-stream {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let (tx, rx) = channel::bounded::<u64>(2);
                let count = rng(round).below(500);
                let got = Arc::new(AtomicU64::new(u64::MAX));
                let g = got.clone();
                run_all(
                    exec,
                    vec![
                        Box::pin(async move {
                            for id in 0..count {
                                tx.send(id).await.unwrap();
                            }
                        }),
                        Box::pin(async move {
                            let mut n = 0;
                            while let Ok(id) = rx.recv().await {
                                assert_eq!(id, n, "order of one sender");
                                n += 1;
                            }
                            g.store(n, SeqCst);
                        }),
                    ],
                );
                assert_eq!(got.load(SeqCst), count);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Blocking ends mixed with async ends
// ---------------------------------------------------------------------------------------------

/// Senders on plain threads (`send_blocking`), receivers both in tasks (cancelled at random)
/// and on threads (`recv_blocking`), and async senders too: exactly once.
#[test]
fn blocking_and_async_ends_mixed_exactly_once() {
    for exec in executors() {
        for capacity in [Some(1), Some(2), None] {
            for round in 0..(10 * scale() as u64) {
                let label = format!("blocking mixed {exec:?} {capacity:?} round {round}");
                deadline(&label, DEADLINE, String::new, move || mixed_round(exec, capacity, round));
            }
        }
    }
}

fn mixed_round(exec: Exec, capacity: Option<usize>, seed: u64) {
    const PER: usize = 400;
    const BLOCKING_SENDERS: usize = 2;
    const ASYNC_SENDERS: usize = 2;
    const BLOCKING_RECEIVERS: usize = 2;
    const ASYNC_RECEIVERS: usize = 2;
    let total = (BLOCKING_SENDERS + ASYNC_SENDERS) * PER;
    let ledger = Ledger::new(total);
    let (tx, rx) = match capacity {
        Some(cap) => channel::bounded::<u64>(cap),
        None => channel::unbounded::<u64>(),
    };
    let mut threads = Vec::new();
    for s in 0..BLOCKING_SENDERS {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..PER {
                tx.send_blocking((s * PER + i) as u64).unwrap();
            }
        }));
    }
    for _ in 0..BLOCKING_RECEIVERS {
        let rx = rx.clone();
        let ledger = ledger.clone();
        threads.push(std::thread::spawn(move || {
            while let Ok(id) = rx.recv_blocking() {
                ledger.got(id);
            }
        }));
    }
    let mut futures: Vec<BoxFut> = Vec::new();
    for s in BLOCKING_SENDERS..BLOCKING_SENDERS + ASYNC_SENDERS {
        let tx = tx.clone();
        futures.push(Box::pin(async move {
            for i in 0..PER {
                tx.send((s * PER + i) as u64).await.unwrap();
            }
        }));
    }
    for r in 0..ASYNC_RECEIVERS {
        let rx = rx.clone();
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed * 7 + r as u64);
            loop {
                let mode = rng.below(8);
                match receive_somehow(&rx, mode, &mut rng).await {
                    Some(Ok(id)) => ledger.got(id),
                    Some(Err(RecvError::Closed)) => break,
                    None => {}
                }
                match rx.recv().await {
                    Ok(id) => ledger.got(id),
                    Err(RecvError::Closed) => break,
                }
            }
        }));
    }
    {
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            while ledger.total_received.load(SeqCst) < total {
                klaw::time::sleep(Duration::from_millis(1)).await;
            }
            drop(tx);
            drop(rx);
        }));
    }
    run_all(exec, futures);
    for thread in threads {
        thread.join().unwrap();
    }
    ledger.check(false);
}

// ---------------------------------------------------------------------------------------------
// Closing wakes every waiter, wherever it waits
// ---------------------------------------------------------------------------------------------

/// Receivers waiting in tasks, in `recv_blocking` and in `select!`: dropping the last sender
/// wakes every one with Closed.
#[test]
fn closing_wakes_every_waiting_receiver_with_closed() {
    for exec in executors() {
        for round in 0..(100 * scale() as u64) {
            let label = format!("close wakes receivers {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let (tx, rx) = channel::bounded::<u64>(1);
                let closed = Arc::new(AtomicUsize::new(0));
                let waiting = Arc::new(AtomicUsize::new(0));
                let mut threads = Vec::new();
                for _ in 0..2 {
                    let rx = rx.clone();
                    let closed = closed.clone();
                    threads.push(std::thread::spawn(move || {
                        assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
                        closed.fetch_add(1, SeqCst);
                    }));
                }
                let mut futures: Vec<BoxFut> = Vec::new();
                for i in 0..6 {
                    let rx = rx.clone();
                    let closed = closed.clone();
                    let waiting = waiting.clone();
                    futures.push(Box::pin(async move {
                        waiting.fetch_add(1, SeqCst);
                        let r = if i % 2 == 0 {
                            rx.recv().await
                        } else {
                            klaw::select! {
                                recv(rx) -> r => r,
                                after(Duration::from_secs(3600)) => panic!("timer"),
                            }
                        };
                        assert_eq!(r, Err(RecvError::Closed));
                        closed.fetch_add(1, SeqCst);
                    }));
                }
                let close_by_drop = round % 2 == 0;
                futures.push(Box::pin(async move {
                    while waiting.load(SeqCst) < 6 {
                        yield_now().await;
                    }
                    for _ in 0..(round % 5) {
                        yield_now().await;
                    }
                    if close_by_drop {
                        drop(tx);
                    } else {
                        rx.close();
                    }
                }));
                run_all(exec, futures);
                for t in threads {
                    t.join().unwrap();
                }
                assert_eq!(closed.load(SeqCst), 8);
            });
        }
    }
}

/// Senders waiting on a full channel (send, reserve, select! send arm, send_blocking) get their
/// own value back when the last receiver goes; `Sender::closed` waiters wake.
#[test]
fn closing_wakes_every_waiting_sender_with_its_value() {
    for exec in executors() {
        for round in 0..(100 * scale() as u64) {
            let label = format!("close wakes senders {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let (tx, rx) = channel::bounded::<u64>(1);
                tx.try_send(u64::MAX).unwrap(); // full
                let woken = Arc::new(AtomicUsize::new(0));
                let mut threads = Vec::new();
                for k in 0..2u64 {
                    let tx = tx.clone();
                    let woken = woken.clone();
                    threads.push(std::thread::spawn(move || {
                        assert_eq!(tx.send_blocking(100 + k), Err(SendError(100 + k)));
                        woken.fetch_add(1, SeqCst);
                    }));
                }
                let mut futures: Vec<BoxFut> = Vec::new();
                for k in 0..8u64 {
                    let tx = tx.clone();
                    let woken = woken.clone();
                    futures.push(Box::pin(async move {
                        match k % 4 {
                            0 => assert_eq!(tx.send(k).await, Err(SendError(k))),
                            1 => assert!(tx.reserve().await.is_err()),
                            2 => {
                                let r = klaw::select! {
                                    send(tx, k) -> r => r,
                                    after(Duration::from_secs(3600)) => panic!("timer"),
                                };
                                assert_eq!(r, Err(SendError(k)));
                            }
                            _ => tx.closed().await,
                        }
                        woken.fetch_add(1, SeqCst);
                    }));
                }
                futures.push(Box::pin(async move {
                    for _ in 0..(round % 7) {
                        yield_now().await;
                    }
                    drop(rx);
                }));
                drop(tx);
                run_all(exec, futures);
                for t in threads {
                    t.join().unwrap();
                }
                assert_eq!(woken.load(SeqCst), 10);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Permits
// ---------------------------------------------------------------------------------------------

/// Senders wait on a bounded(1) channel while other tasks keep taking permits and dropping them
/// unused; one receiver receives slowly. Every place a dropped permit gives back must reach a
/// waiting sender (else the senders hang while the channel is empty).
#[test]
fn dropped_permits_hand_their_place_to_waiting_senders() {
    for exec in executors() {
        for capacity in [1, 2] {
            for round in 0..(20 * scale() as u64) {
                let label = format!("dropped permits {exec:?} cap {capacity} round {round}");
                let ledger = Ledger::new(4 * 300);
                let shown = ledger.clone();
                deadline(
                    &label,
                    DEADLINE,
                    move || shown.progress(),
                    move || permit_round(exec, capacity, round, ledger),
                );
            }
        }
    }
}

fn permit_round(exec: Exec, capacity: usize, seed: u64, ledger: Arc<Ledger>) {
    const SENDERS: usize = 4;
    const PER: usize = 300;
    let (tx, rx) = channel::bounded::<u64>(capacity);
    let stop = Arc::new(AtomicBool::new(false));
    let mut futures: Vec<BoxFut> = Vec::new();
    for s in 0..SENDERS {
        let tx = tx.clone();
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            for i in 0..PER {
                tx.send((s * PER + i) as u64).await.unwrap();
            }
            ledger.senders_done.fetch_add(1, SeqCst);
        }));
    }
    for h in 0..3u64 {
        let tx = tx.clone();
        let stop = stop.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed * 13 + h);
            while !stop.load(SeqCst) {
                match rng.below(3) {
                    0 => {
                        // A permit held across a yield, then dropped unused.
                        let Ok(permit) = tx.reserve().await else { break };
                        yield_now().await;
                        drop(permit);
                    }
                    1 => {
                        // A reserve raced with a short sleep; a permit it got is dropped.
                        let d = micros(rng.below(100));
                        let reserved = or(async { Some(tx.reserve().await) }, async {
                            klaw::time::sleep(d).await;
                            None
                        })
                        .await;
                        if let Some(Err(_)) = reserved {
                            break;
                        }
                    }
                    _ => {
                        let mut reserve = tx.reserve();
                        let _ = poll_once(&mut reserve).await;
                        yield_now().await;
                        drop(reserve); // a permit it may have got is dropped with it
                    }
                }
            }
        }));
    }
    {
        let ledger = ledger.clone();
        futures.push(Box::pin(async move {
            let mut rng = rng(seed ^ 0xFEED);
            for _ in 0..SENDERS * PER {
                let id = rx.recv().await.unwrap();
                ledger.got(id);
                if rng.below(4) == 0 {
                    yield_now().await;
                }
            }
            stop.store(true, SeqCst);
            if let Ok(id) = rx.try_recv() {
                panic!("an extra message {id}");
            }
            drop(rx); // closes: a helper waiting in reserve gets Err and stops
        }));
    }
    run_all(exec, futures);
    ledger.check(false);
}

// ---------------------------------------------------------------------------------------------
// Stream and Sink state kept in the handle
// ---------------------------------------------------------------------------------------------

/// A receiver's `Stream` polled into line and then left alone (a `next()` that lost a race:
/// the stream's place in line lives in the receiver, not in the dropped `Next` future) must not
/// hold a wake-up while another receiver of the same channel waits: a message sent then must
/// reach the waiting receiver.
#[test]
fn an_idle_stream_does_not_keep_a_message_from_a_waiting_receiver() {
    use futures_lite::StreamExt;
    deadline("idle stream", 10, String::new, || {
        let (tx, mut rx) = channel::bounded::<u64>(4);
        let other = rx.clone();
        // Poll the stream into line (it yields first, then joins), then leave it idle.
        klaw::runtime::block_on(async {
            let mut next = rx.next();
            assert!(poll_once(&mut next).await.is_pending());
            assert!(poll_once(&mut next).await.is_pending());
        });
        let waiter = std::thread::spawn(move || other.recv_blocking());
        std::thread::sleep(Duration::from_millis(50)); // let it wait (not a timing assertion)
        tx.try_send(7).unwrap();
        let got = waiter.join().unwrap();
        assert_eq!(got, Ok(7));
        drop(rx);
    });
}

/// A `Sink::poll_ready` that returned `Ready` holds a place for the sender's next `start_send`
/// (as tokio's `PollSender` holds its permit): until then the place counts as taken for every
/// send, this sender's own `send` and `try_send` too, and `start_send`, `abort_send` or dropping
/// the sender gives it back. The documented rule, on a `bounded(1)` channel whose only place it holds.
#[test]
fn a_sink_reservation_holds_its_place_until_start_send_or_drop() {
    use futures_util::sink::Sink;
    deadline("sink then send", 10, String::new, || {
        let (mut tx, rx) = channel::bounded::<u64>(1);
        let ready = |tx: &mut channel::Sender<u64>| {
            klaw::runtime::block_on(std::future::poll_fn(|cx| Pin::new(&mut *tx).poll_ready(cx)))
        };
        ready(&mut tx).unwrap();
        assert_eq!(tx.try_send(1), Err(channel::TrySendError::Full(1)), "the place is the sink's");
        Pin::new(&mut tx).start_send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        ready(&mut tx).unwrap();
        let other = tx.clone();
        assert_eq!(other.try_send(3), Err(channel::TrySendError::Full(3)));
        assert!(tx.abort_send(), "gives the reserved place back");
        assert_eq!(other.try_send(3), Ok(()));
        assert_eq!(rx.try_recv(), Ok(3));
        ready(&mut tx).unwrap();
        drop(tx); // gives the reserved place back too
        assert_eq!(other.try_send(4), Ok(()));
        assert_eq!(rx.try_recv(), Ok(4));
    });
}

/// `SinkExt::send` under many senders with a slow receiver: exactly once, no hang.
#[test]
fn sink_senders_exactly_once() {
    use futures_util::SinkExt;
    for exec in executors() {
        for round in 0..(10 * scale() as u64) {
            let label = format!("sink senders {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                const PER: usize = 300;
                let ledger = Ledger::new(4 * PER);
                let (tx, rx) = channel::bounded::<u64>(1);
                let mut futures: Vec<BoxFut> = Vec::new();
                for s in 0..4 {
                    let mut tx = tx.clone();
                    futures.push(Box::pin(async move {
                        for i in 0..PER {
                            SinkExt::send(&mut tx, (s * PER + i) as u64).await.unwrap();
                        }
                    }));
                }
                drop(tx);
                for _ in 0..2 {
                    let rx = rx.clone();
                    let ledger = ledger.clone();
                    futures.push(Box::pin(async move {
                        while let Ok(id) = rx.recv().await {
                            ledger.got(id);
                        }
                    }));
                }
                drop(rx);
                run_all(exec, futures);
                ledger.check(false);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// select! over several channels
// ---------------------------------------------------------------------------------------------

/// Consumers select over two channels (and a timer); producers feed both. Every message is
/// received once; a losing arm takes nothing.
#[test]
fn select_over_two_channels_exactly_once() {
    for exec in executors() {
        for round in 0..(15 * scale() as u64) {
            let label = format!("select two {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                const PER: usize = 500;
                let total = 4 * PER;
                let ledger = Ledger::new(total);
                let (tx_a, rx_a) = channel::bounded::<u64>(1);
                let (tx_b, rx_b) = channel::bounded::<u64>(2);
                let mut futures: Vec<BoxFut> = Vec::new();
                for s in 0..4 {
                    let tx = if s % 2 == 0 { tx_a.clone() } else { tx_b.clone() };
                    futures.push(Box::pin(async move {
                        for i in 0..PER {
                            tx.send((s * PER + i) as u64).await.unwrap();
                        }
                    }));
                }
                for c in 0..3u64 {
                    let (rx_a, rx_b) = (rx_a.clone(), rx_b.clone());
                    let ledger = ledger.clone();
                    futures.push(Box::pin(async move {
                        let mut rng = rng(round * 5 + c);
                        let (mut a_open, mut b_open) = (true, true);
                        while a_open || b_open {
                            let d = micros(rng.below(300));
                            if a_open && b_open {
                                klaw::select! {
                                    recv(rx_a) -> r => match r { Ok(id) => ledger.got(id), Err(_) => a_open = false },
                                    recv(rx_b) -> r => match r { Ok(id) => ledger.got(id), Err(_) => b_open = false },
                                    after(d) => {}
                                }
                            } else {
                                let rx = if a_open { &rx_a } else { &rx_b };
                                match rx.recv().await {
                                    Ok(id) => ledger.got(id),
                                    Err(_) => {
                                        a_open = false;
                                        b_open = false;
                                    }
                                }
                            }
                        }
                    }));
                }
                {
                    let ledger = ledger.clone();
                    futures.push(Box::pin(async move {
                        while ledger.total_received.load(SeqCst) < total {
                            klaw::time::sleep(Duration::from_millis(1)).await;
                        }
                        drop((tx_a, tx_b));
                    }));
                }
                drop((rx_a, rx_b));
                run_all(exec, futures);
                ledger.check(false);
            });
        }
    }
}

/// `select_any` over a dynamic list of receivers, cancelled by a timer at random.
#[test]
fn select_any_cancelled_loses_nothing() {
    for exec in executors() {
        for round in 0..(15 * scale() as u64) {
            select_any_round(exec, round);
        }
    }
}

fn select_any_round(exec: Exec, round: u64) {
    const PER: usize = 400;
    let total = 3 * PER;
    let ledger = Ledger::new(total);
    let channels: Vec<_> = (0..3).map(|_| channel::bounded::<u64>(1)).collect();
    let weak: Vec<_> = channels.iter().map(|(tx, _)| tx.downgrade()).collect();
    let sent: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
    let label = format!("select_any {exec:?} round {round}");
    let (shown, shown_sent) = (ledger.clone(), sent.clone());
    let progress = move || {
        let lens: Vec<_> = weak
            .iter()
            .map(|w| w.upgrade().map(|tx| (tx.len(), tx.sender_count() - 1, tx.receiver_count())))
            .collect();
        let sent: Vec<_> = shown_sent.iter().map(|n| n.load(SeqCst)).collect();
        format!(
            "{}; sent per sender {sent:?}; (len, senders, receivers) {lens:?}",
            shown.progress()
        )
    };
    deadline(&label, DEADLINE, progress, move || {
        let mut futures: Vec<BoxFut> = Vec::new();
        for (s, (tx, _)) in channels.iter().enumerate() {
            let tx = tx.clone();
            let sent = sent.clone();
            futures.push(Box::pin(async move {
                for i in 0..PER {
                    tx.send((s * PER + i) as u64).await.unwrap();
                    sent[s].fetch_add(1, SeqCst);
                }
            }));
        }
        for c in 0..2u64 {
            let mut rxs: Vec<Receiver<u64>> = channels.iter().map(|(_, rx)| rx.clone()).collect();
            let ledger = ledger.clone();
            futures.push(Box::pin(async move {
                let mut rng = rng(round * 3 + c);
                loop {
                    if ledger.total_received.load(SeqCst) >= total || rxs.is_empty() {
                        break;
                    }
                    let d = micros(rng.below(300));
                    let got = or(async { channel::select_any(&rxs).await }, async {
                        klaw::time::sleep(d).await;
                        None
                    })
                    .await;
                    match got {
                        Some((_, Ok(id))) => ledger.got(id),
                        Some((index, Err(RecvError::Closed))) => {
                            // A finished sender closed its channel: drained, drop it.
                            rxs.remove(index);
                        }
                        None => {
                            ledger.cancelled_recvs.fetch_add(1, SeqCst);
                        }
                    }
                }
                ledger.receivers_done.fetch_add(1, SeqCst);
            }));
        }
        drop(channels);
        run_all(exec, futures);
        ledger.check(false);
    });
}

// ---------------------------------------------------------------------------------------------
// Broadcast
// ---------------------------------------------------------------------------------------------

/// Several senders on threads, receivers (some slow, some cancelled by timers) in tasks: each
/// receiver's messages plus what it was told it missed add up to what was sent, and each
/// sender's messages arrive in order, none twice.
#[test]
fn broadcast_lagging_receivers_account_for_every_message() {
    use klaw::channel::broadcast;
    for exec in executors() {
        for capacity in [1usize, 2, 16] {
            for round in 0..(10 * scale() as u64) {
                let label = format!("broadcast {exec:?} cap {capacity} round {round}");
                deadline(&label, DEADLINE, String::new, move || {
                    const SENDERS: u64 = 3;
                    const PER: u64 = 2000;
                    let (tx, rx) = broadcast::channel::<(u64, u64)>(capacity);
                    let receivers: Vec<_> = (0..4).map(|_| tx.subscribe()).collect();
                    drop(rx);
                    let mut futures: Vec<BoxFut> = Vec::new();
                    for (r, mut rx) in receivers.into_iter().enumerate() {
                        futures.push(Box::pin(async move {
                            let mut rng = rng(round * 11 + r as u64);
                            let mut last = [None::<u64>; SENDERS as usize];
                            let (mut got, mut missed) = (0u64, 0u64);
                            loop {
                                let polled = if r % 2 == 1 {
                                    let d = micros(rng.below(100));
                                    or(async { Some(rx.recv().await) }, async {
                                        klaw::time::sleep(d).await;
                                        None
                                    })
                                    .await
                                } else {
                                    if rng.below(8) == 0 {
                                        yield_now().await;
                                    }
                                    Some(rx.recv().await)
                                };
                                match polled {
                                    None => {}
                                    Some(Ok((s, i))) => {
                                        if let Some(prev) = last[s as usize] {
                                            assert!(i > prev, "sender {s}: {i} after {prev}");
                                        }
                                        last[s as usize] = Some(i);
                                        got += 1;
                                    }
                                    Some(Err(broadcast::RecvError::Lagged(n))) => {
                                        assert!(n > 0);
                                        missed += n;
                                    }
                                    Some(Err(broadcast::RecvError::Closed)) => break,
                                }
                            }
                            assert_eq!(
                                got + missed,
                                SENDERS * PER,
                                "receiver {r}: got {got} missed {missed}"
                            );
                        }));
                    }
                    let threads: Vec<_> = (0..SENDERS)
                        .map(|s| {
                            let tx = tx.clone();
                            std::thread::spawn(move || {
                                for i in 0..PER {
                                    tx.send((s, i)).unwrap();
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    run_all(exec, futures);
                    for t in threads {
                        t.join().unwrap();
                    }
                });
            }
        }
    }
}

/// A broadcast receiver dropped (with unread messages) while others wait and a sender sends:
/// the others still get everything; a receiver dropped does not wake or block anyone wrongly.
#[test]
fn broadcast_receiver_dropped_while_others_wait() {
    use klaw::channel::broadcast;
    for exec in executors() {
        for round in 0..(100 * scale() as u64) {
            let label = format!("broadcast drop {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let (tx, rx) = broadcast::channel::<u64>(8);
                let mut futures: Vec<BoxFut> = Vec::new();
                for _ in 0..3 {
                    let mut rx = tx.subscribe();
                    futures.push(Box::pin(async move {
                        let mut n = 0;
                        loop {
                            match rx.recv().await {
                                Ok(v) => {
                                    assert_eq!(v, n);
                                    n += 1;
                                }
                                Err(broadcast::RecvError::Lagged(k)) => n += k,
                                Err(broadcast::RecvError::Closed) => break,
                            }
                        }
                        assert_eq!(n, 500);
                    }));
                }
                let mut doomed = rx;
                futures.push(Box::pin(async move {
                    let mut rng = rng(round);
                    for _ in 0..rng.below(20) {
                        let _ = doomed.recv().await;
                    }
                    drop(doomed);
                }));
                futures.push(Box::pin(async move {
                    for v in 0..500 {
                        tx.send(v).unwrap();
                        if v % 16 == 0 {
                            yield_now().await;
                        }
                    }
                }));
                run_all(exec, futures);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

/// `changed()` racing the last sender's drop right after a last send: the receiver sees the
/// last value (a change not seen yet is reported before Closed), then Closed; never hangs.
#[test]
fn watch_changed_races_sender_drop_and_sees_the_last_value() {
    use klaw::channel::watch;
    for exec in executors() {
        for round in 0..(300 * scale() as u64) {
            let label = format!("watch {exec:?} round {round}");
            deadline(&label, DEADLINE, String::new, move || {
                let last = rng(round).below(50) + 1;
                let (tx, mut rx) = watch::channel(0u64);
                let mut rx2 = rx.clone();
                let seen = Arc::new(AtomicU64::new(0));
                let seen2 = Arc::new(AtomicU64::new(0));
                let (s1, s2) = (seen.clone(), seen2.clone());
                run_all(
                    exec,
                    vec![
                        Box::pin(async move {
                            while rx.changed().await.is_ok() {
                                let v = *rx.borrow_and_update();
                                s1.store(v, SeqCst);
                            }
                        }),
                        Box::pin(async move {
                            // Cancelled `changed()`s in between.
                            let mut rng = rng(round ^ 0x77);
                            loop {
                                let d = micros(rng.below(50));
                                let r = or(async { Some(rx2.changed().await) }, async {
                                    klaw::time::sleep(d).await;
                                    None
                                })
                                .await;
                                match r {
                                    Some(Ok(())) => {
                                        let v = *rx2.borrow_and_update();
                                        s2.store(v, SeqCst);
                                    }
                                    Some(Err(_)) => break,
                                    None => {}
                                }
                            }
                        }),
                        Box::pin(async move {
                            for v in 1..=last {
                                tx.send(v).unwrap();
                                if v % 4 == 0 {
                                    yield_now().await;
                                }
                            }
                            drop(tx);
                        }),
                    ],
                );
                assert_eq!(seen.load(SeqCst), last, "the last value was not seen");
                assert_eq!(
                    seen2.load(SeqCst),
                    last,
                    "the last value was not seen (cancelled waits)"
                );
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Oneshot
// ---------------------------------------------------------------------------------------------

static ONESHOT_DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, PartialEq)]
struct Tracked(u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        ONESHOT_DROPS.fetch_add(1, SeqCst);
    }
}

/// A oneshot send racing the receiver's drop, close, or a cancelled await on another thread:
/// the value is received, or comes back from `send`, or (send accepted, receiver gone) dropped
/// once with the receiver: always exactly one drop, never none or two.
#[test]
fn oneshot_send_racing_receiver_drop_returns_or_delivers_the_value() {
    use klaw::channel::oneshot;
    deadline("oneshot races", DEADLINE, String::new, || {
        let (mut received, mut returned, mut dropped_with_rx) = (0, 0, 0);
        for round in 0..(5000 * scale() as u64) {
            let before = ONESHOT_DROPS.load(SeqCst);
            let (tx, mut rx) = oneshot::channel::<Tracked>();
            let how = round % 4;
            let receiver = std::thread::spawn(move || -> Option<Tracked> {
                match how {
                    0 => {
                        drop(rx);
                        None
                    }
                    1 => {
                        rx.close();
                        rx.try_recv().ok()
                    }
                    2 => {
                        // An await cancelled by a short timer, then dropped.
                        klaw::runtime::block_on(or(async { (&mut rx).await.ok() }, async {
                            klaw::time::sleep(micros(round % 20)).await;
                            None
                        }))
                    }
                    _ => klaw::runtime::block_on(rx).ok(),
                }
            });
            let sent = tx.send(Tracked(round));
            let got = receiver.join().unwrap();
            match (sent, got) {
                (Ok(()), Some(v)) => {
                    assert_eq!(v.0, round);
                    received += 1;
                }
                (Ok(()), None) => {
                    assert_ne!(how, 3, "an awaited receiver of a sent value got Closed");
                    dropped_with_rx += 1;
                }
                (Err(back), None) => {
                    assert_eq!(back.0.0, round);
                    returned += 1;
                }
                (Err(_), Some(_)) => panic!("value both returned and received"),
            }
            assert_eq!(ONESHOT_DROPS.load(SeqCst) - before, 1, "round {round}: drops of the value");
        }
        // Each of the three ends was met (the race is real, not decided the same way each time).
        assert!(
            received > 0 && returned + dropped_with_rx > 0,
            "{received} {returned} {dropped_with_rx}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Weak senders
// ---------------------------------------------------------------------------------------------

/// A weak sender upgraded on one thread while the last strong sender drops on another: either
/// the upgrade fails, or the channel stays open for the upgraded sender (a send through it is
/// received), never an upgraded sender on a closed channel.
#[test]
fn weak_upgrade_racing_the_last_sender_drop() {
    deadline("weak upgrade", DEADLINE, String::new, || {
        for _ in 0..5000 {
            let (tx, rx) = channel::bounded::<u64>(1);
            let weak = tx.downgrade();
            let t = std::thread::spawn(move || drop(tx));
            match weak.upgrade() {
                Some(strong) => {
                    t.join().unwrap();
                    assert_eq!(
                        strong.try_send(1),
                        Ok(()),
                        "an upgraded sender on a closed channel"
                    );
                    assert_eq!(rx.try_recv(), Ok(1));
                }
                None => t.join().unwrap(),
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// More handle-held state, force_send, and hand-offs
// ---------------------------------------------------------------------------------------------

/// A sender's `Sink` that waited in line for a place (a `SinkExt::send` that lost a `select!`:
/// the sink's place in line lives in the `Sender`) and was then left alone must not keep a
/// freed place from another sender waiting in `send`.
#[test]
fn an_idle_sink_waiter_does_not_keep_a_place_from_a_waiting_sender() {
    use futures_util::sink::Sink;
    deadline("idle sink waiter", 10, String::new, || {
        let (mut idle, rx) = channel::bounded::<u64>(1);
        let other = idle.clone();
        idle.try_send(0).unwrap(); // full
        klaw::runtime::block_on(async {
            // Into line: the first poll may only look, a second waits.
            for _ in 0..2 {
                let polled =
                    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut idle).poll_ready(cx)))
                        .await;
                assert!(polled.is_pending());
            }
        });
        let waiter = std::thread::spawn(move || other.send_blocking(1));
        std::thread::sleep(Duration::from_millis(50)); // let it wait (not a timing assertion)
        assert_eq!(rx.recv_blocking(), Ok(0)); // a place frees
        waiter.join().unwrap().unwrap(); // the waiting sender must get it
        assert_eq!(rx.try_recv(), Ok(1));
        drop(idle);
    });
}

/// `force_send` from several threads racing receivers (some cancelled): every accepted value
/// is received once or displaced once (given back by the `force_send` that made room).
#[test]
fn force_send_racing_receivers_loses_nothing() {
    let rounds = 10 * scale() as u64;
    for exec in executors() {
        for capacity in [1usize, 2] {
            for round in 0..rounds {
                force_send_round(exec, capacity, round);
            }
        }
    }
}

fn force_send_round(exec: Exec, capacity: usize, round: u64) {
    const PER: usize = 1000;
    let total = 3 * PER;
    let ledger = Ledger::new(total);
    let (tx, rx) = channel::bounded::<u64>(capacity);
    let label = format!("force_send {exec:?} cap {capacity} round {round}");
    let (shown, probe_tx) = (ledger.clone(), tx.clone());
    let progress = move || {
        let missing: Vec<usize> = (0..total)
            .filter(|&id| shown.received[id].load(SeqCst) + shown.returned[id].load(SeqCst) == 0)
            .take(10)
            .collect();
        format!(
            "{}; channel len {} (cap {capacity}), reserved-full {}; ids neither received nor returned (first 10): {missing:?}",
            shown.progress(),
            probe_tx.len(),
            probe_tx.is_full(),
        )
    };
    deadline(&label, DEADLINE, progress, move || {
        let threads: Vec<_> = (0..3)
            .map(|s| {
                let tx = tx.clone();
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let id = (s * PER + i) as u64;
                        match tx.force_send(id) {
                            Ok(None) => {}
                            Ok(Some(displaced)) => ledger.back(displaced),
                            Err(e) => panic!("force_send refused: {e:?}"),
                        }
                    }
                    if ledger.senders_done.fetch_add(1, SeqCst) == 2 {
                        tx.close(); // the last one: receivers drain, then see Closed
                    }
                })
            })
            .collect();
        let mut futures: Vec<BoxFut> = Vec::new();
        for r in 0..2u64 {
            let rx = rx.clone();
            let ledger = ledger.clone();
            futures.push(Box::pin(async move {
                let mut rng = rng(round * 7 + r);
                loop {
                    if ledger.total_received.load(SeqCst) + ledger.total_returned.load(SeqCst)
                        >= total
                    {
                        break;
                    }
                    let mode = rng.below(6);
                    match receive_somehow(&rx, mode, &mut rng).await {
                        Some(Ok(id)) => ledger.got(id),
                        Some(Err(RecvError::Closed)) => break,
                        None => {}
                    }
                }
                ledger.receivers_done.fetch_add(1, SeqCst);
            }));
        }
        drop(rx);
        run_all(exec, futures);
        for t in threads {
            t.join().unwrap();
        }
        drop(tx);
        ledger.check(true);
    });
}

/// A task hands a message to a task waiting on a one-to-one channel (the woken task is kept for
/// this worker to run next), then loops until the woken task has run, yielding between its
/// checks: the woken task runs at the first yield. (A loop that never yields keeps it waiting,
/// on klaw's runtime as under tokio's LIFO slot: the book's Runtime chapter says so.)
#[test]
fn a_hand_off_followed_by_a_yielding_loop_lets_the_woken_task_run() {
    // tokio's first when it is built: its LIFO slot is the model klaw's hand-off follows.
    #[allow(unused_mut)]
    let mut execs = vec![];
    #[cfg(feature = "tokio")]
    execs.push(Exec::Tokio(4));
    execs.push(Exec::Klaw(4));
    for exec in execs {
        for round in 0..(20 * scale() as u64) {
            let label = format!("hand-off then a yielding loop {exec:?} round {round}");
            deadline(&label, 10, String::new, move || {
                let (tx, rx) = channel::bounded::<u64>(1);
                let ran = Arc::new(AtomicBool::new(false));
                let flag = ran.clone();
                let receiving = Arc::new(AtomicBool::new(false));
                let is_receiving = receiving.clone();
                run_all(
                    exec,
                    vec![
                        Box::pin(async move {
                            is_receiving.store(true, SeqCst);
                            rx.recv().await.unwrap();
                            flag.store(true, SeqCst);
                        }),
                        Box::pin(async move {
                            while !receiving.load(SeqCst) {
                                yield_now().await;
                            }
                            // Let the receiver get into line.
                            for _ in 0..10 {
                                yield_now().await;
                            }
                            tx.send(1).await.unwrap();
                            // Busy until the receiver ran, yielding between checks.
                            while !ran.load(SeqCst) {
                                yield_now().await;
                            }
                        }),
                    ],
                );
            });
        }
    }
}

//! Workers stuck in a poll that never returns (a body that spins without an `.await`, or blocks
//! its thread in a std `recv`): the tasks queued behind them, yielding or woken by a channel
//! hand-off just before the worker got stuck, still make progress on the idle workers, end once
//! released (each exactly once, never polled twice at once), and a shutdown reports nothing
//! abandoned. Written against a prototype of per-worker queues that was not kept (see
//! `benches/FINDINGS.md`, **A worker's own queue**), which held such tasks behind the stuck worker;
//! some comments below describe where that prototype kept them. The promises hold for any
//! executor.
//!
//! Every test has a deadline (a hang fails), and no test asserts on timing: only on outcomes
//! (progress counted in polls, values returned, reports).

mod common;

use std::collections::HashSet;
use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::{Flag, SetOnDrop, occupy_worker, runtime, secs, wait_for, wait_until, within};
use futures_lite::future::yield_now;
use klaw::{Runtime, TaskHandle};

// ---- helpers ----------------------------------------------------------------------------------

type Blocker = (std::sync::mpsc::Sender<()>, TaskHandle<()>);

fn release_blocker(rt: &Runtime, (release, blocker): Blocker) {
    release.send(()).unwrap();
    rt.block_on(blocker).unwrap();
}

/// One yielding task's observations: polls, whether two polls ever overlapped, where it ran.
#[derive(Default)]
struct Probe {
    polls: AtomicUsize,
    in_poll: AtomicBool,
    overlaps: AtomicUsize,
    threads: Mutex<HashSet<ThreadId>>,
}

impl Probe {
    fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }
}

/// A task that yields (waking itself in its poll, as `yield_now` does) until `stop` is set or
/// it has been polled `max + 1` times; gives `(id, polls)`. Each poll is guarded by an "in
/// poll" flag: a poll that finds it set is counted in `overlaps`.
fn guarded_yielder(
    rt: &Runtime,
    id: usize,
    max: Option<usize>,
    stop: &Arc<AtomicBool>,
) -> (Arc<Probe>, TaskHandle<(usize, usize)>) {
    let probe = Arc::new(Probe::default());
    let handle = rt.spawn({
        let (probe, stop) = (probe.clone(), stop.clone());
        std::future::poll_fn(move |cx| {
            if probe.in_poll.swap(true, SeqCst) {
                probe.overlaps.fetch_add(1, SeqCst);
            }
            let n = probe.polls.fetch_add(1, SeqCst) + 1;
            probe.threads.lock().unwrap().insert(std::thread::current().id());
            // A little work inside the poll, so that an overlap has room to show.
            for _ in 0..20 {
                std::hint::spin_loop();
            }
            let done = stop.load(SeqCst) || max.is_some_and(|max| n > max);
            probe.in_poll.store(false, SeqCst);
            if done {
                Poll::Ready((id, n))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    });
    (probe, handle)
}

#[derive(Clone, Copy, Debug)]
enum Stick {
    /// A loop without an `.await` (checks a flag).
    Spin,
    /// A plain std `mpsc::Receiver::recv` (not one of klaw's blocking helpers).
    Block,
}

impl Stick {
    /// Holds the polling thread until `released` is set (a spin) or `release` receives (a
    /// block), or, as a safety limit so that a failing test frees its worker either way, 20 s.
    fn hold(self, released: &AtomicBool, release: &std::sync::mpsc::Receiver<()>) {
        let limit = Duration::from_secs(20);
        match self {
            Stick::Spin => {
                let began = Instant::now();
                while !released.load(SeqCst) && began.elapsed() < limit {
                    std::hint::spin_loop();
                }
            }
            Stick::Block => {
                let _ = release.recv_timeout(limit);
            }
        }
    }
}

/// A task that yields until `go`, then is stuck in one poll (spinning or blocked in a std
/// `recv`) until released, then yields `later_yields` times and gives them back.
struct Stuck {
    go: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    stuck: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
    release_tx: std::sync::mpsc::Sender<()>,
    thread: Arc<Mutex<Option<ThreadId>>>,
    handle: TaskHandle<usize>,
}

impl Stuck {
    fn spawn(rt: &Runtime, stick: Stick, later_yields: usize) -> Stuck {
        let go = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let stuck = Arc::new(AtomicBool::new(false));
        let released = Arc::new(AtomicBool::new(false));
        let thread = Arc::new(Mutex::new(None));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let handle = rt.spawn({
            let (go, started, stuck, released, thread) =
                (go.clone(), started.clone(), stuck.clone(), released.clone(), thread.clone());
            async move {
                started.store(true, SeqCst);
                while !go.load(SeqCst) {
                    yield_now().await;
                }
                *thread.lock().unwrap() = Some(std::thread::current().id());
                stuck.store(true, SeqCst);
                stick.hold(&released, &release_rx);
                for _ in 0..later_yields {
                    yield_now().await;
                }
                later_yields
            }
        });
        Stuck { go, started, stuck, released, release_tx, thread, handle }
    }

    fn release(&self) {
        self.released.store(true, SeqCst);
        let _ = self.release_tx.send(());
    }

    fn thread(&self) -> Option<ThreadId> {
        *self.thread.lock().unwrap()
    }
}

// ---- 1. Two workers stuck at once, yielding tasks queued behind each ---------------------------

/// `workers` workers (3 or 4). All but one are held (a task blocked in a std `recv`), so that a
/// first group of yielding tasks and a first stuck task run on the one left, W1; the first gets
/// stuck. A second group and a second stuck task are spawned (they wait in the shared queue:
/// nobody can take them), one held worker, W2, is let go and runs them all; the second gets
/// stuck. Both W1 and W2 now have yielding tasks waiting in their own queues. The last held
/// workers are let go (idle): every yielding task must make progress while W1 and W2 are stuck.
fn two_stuck_workers(workers: usize, sticks: (Stick, Stick), round: usize) {
    const PER_GROUP: usize = 4;
    let what = format!("{workers} workers, {sticks:?}, round {round}");
    let rt = runtime(workers);
    let mut blockers: Vec<Blocker> = (1..workers).map(|_| occupy_worker(&rt)).collect();
    let stop = Arc::new(AtomicBool::new(false));

    let group1: Vec<_> = (0..PER_GROUP).map(|id| guarded_yielder(&rt, id, None, &stop)).collect();
    let stuck1 = Stuck::spawn(&rt, sticks.0, 10);
    let probes1: Vec<_> = group1.iter().map(|(probe, _)| probe.clone()).collect();
    wait_for("group 1 and stuck task 1 polled", || {
        stuck1.started.load(SeqCst) && probes1.iter().all(|probe| probe.polls() > 5)
    });
    stuck1.go.store(true, SeqCst);
    wait_for("stuck task 1 stuck", || stuck1.stuck.load(SeqCst));

    let group2: Vec<_> =
        (PER_GROUP..2 * PER_GROUP).map(|id| guarded_yielder(&rt, id, None, &stop)).collect();
    let stuck2 = Stuck::spawn(&rt, sticks.1, 10);
    let probes2: Vec<_> = group2.iter().map(|(probe, _)| probe.clone()).collect();
    release_blocker(&rt, blockers.remove(0));
    wait_for("group 2 and stuck task 2 polled", || {
        stuck2.started.load(SeqCst) && probes2.iter().all(|probe| probe.polls() > 5)
    });
    stuck2.go.store(true, SeqCst);
    wait_for("stuck task 2 stuck", || stuck2.stuck.load(SeqCst));

    // Preconditions of the scenario (a failure here is the test's, not klaw's).
    let (w1, w2) = (stuck1.thread().unwrap(), stuck2.thread().unwrap());
    assert_ne!(w1, w2, "{what}: precondition: the stuck tasks are on two workers");

    // Both stuck, with their groups behind them; now the other workers go idle.
    let all: Vec<_> = probes1.iter().chain(&probes2).cloned().collect();
    let before: Vec<usize> = all.iter().map(|probe| probe.polls()).collect();
    for blocker in blockers {
        release_blocker(&rt, blocker);
    }
    let progressed = wait_until(Duration::from_secs(10), || {
        all.iter().zip(&before).all(|(probe, &before)| probe.polls() >= before + 50)
    });
    let stalled: Vec<usize> = all
        .iter()
        .zip(&before)
        .enumerate()
        .filter(|(_, (probe, before))| probe.polls() < **before + 50)
        .map(|(id, _)| id)
        .collect();
    let still_stuck = !stuck1.handle.is_finished() && !stuck2.handle.is_finished();
    stuck1.release();
    stuck2.release();
    stop.store(true, SeqCst);
    assert!(still_stuck, "{what}: precondition: both stayed stuck while progress was counted");
    assert!(
        progressed,
        "{what}: yielding tasks {stalled:?} made no progress in 10 s while W1 and W2 were stuck \
         and {} worker(s) idle",
        workers - 2
    );
    // After release everything ends, each task once, none run twice at once.
    assert_eq!(rt.block_on(stuck1.handle), Ok(10), "{what}");
    assert_eq!(rt.block_on(stuck2.handle), Ok(10), "{what}");
    for (id, (probe, handle)) in group1.into_iter().chain(group2).enumerate() {
        let (got_id, polls) = rt.block_on(handle).unwrap();
        assert_eq!((got_id, polls), (id, probe.polls()), "{what}");
        assert_eq!(probe.overlaps.load(SeqCst), 0, "{what}: task {id} polled twice at once");
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(report.abandoned, 0, "{what}: {report}");
    assert!(!report.grace_expired, "{what}: {report}");
}

#[test]
fn two_workers_stuck_at_once_each_with_yielding_tasks_behind_it_on_three_and_four_workers() {
    within(Duration::from_secs(50), || {
        let mut round = 0;
        for workers in [3, 4] {
            for sticks in [
                (Stick::Spin, Stick::Spin),
                (Stick::Block, Stick::Block),
                (Stick::Spin, Stick::Block),
            ] {
                two_stuck_workers(workers, sticks, round);
                round += 1;
            }
        }
    });
}

/// The same promise when the idle workers fell asleep *before* the other workers got stuck
/// (nothing waited in any own queue when they went to sleep), and nothing wakes them after:
/// each stuck task is a consumer that a yielding producer woke by a channel hand-off (so it ran
/// next on the producer's worker) just before the producer yielded. The producer waits in that
/// worker's own queue behind the consumer's poll, which never returns until released. The book
/// (runtime.md) says such tasks wait until "an idle worker, which looks again at least every
/// 32 ms, finds its worker stuck".
fn stuck_after_the_idle_workers_fell_asleep(
    workers: usize,
    pairs: usize,
    stick: Stick,
    wake_idle: bool,
) {
    let what = format!("{workers} workers, {pairs} pair(s), {stick:?}, wake_idle={wake_idle}");
    let rt = runtime(workers);
    let stop = Arc::new(AtomicBool::new(false));
    let mut consumers = Vec::new();
    let mut producers = Vec::new();
    let mut releases = Vec::new();
    for _pair in 0..pairs {
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(AtomicBool::new(false));
        let stuck = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(AtomicBool::new(false));
        let consumer_thread = Arc::new(Mutex::new(None));
        let consumer = rt.spawn({
            let (released, stuck, waiting) = (released.clone(), stuck.clone(), waiting.clone());
            let consumer_thread = consumer_thread.clone();
            async move {
                waiting.store(true, SeqCst);
                let got = rx.recv().await.unwrap();
                *consumer_thread.lock().unwrap() = Some(std::thread::current().id());
                stuck.store(true, SeqCst);
                stick.hold(&released, &release_rx);
                got
            }
        });
        wait_for("the consumer waits", || waiting.load(SeqCst));
        // Every worker idle and asleep: nothing waits in any own queue.
        std::thread::sleep(Duration::from_millis(50));
        let probe = Arc::new(Probe::default());
        let producer = rt.spawn({
            let (probe, stop) = (probe.clone(), stop.clone());
            async move {
                tx.send(7).await.unwrap();
                loop {
                    probe.threads.lock().unwrap().insert(std::thread::current().id());
                    probe.polls.fetch_add(1, SeqCst);
                    if stop.load(SeqCst) {
                        return probe.polls();
                    }
                    yield_now().await;
                }
            }
        });
        wait_for("the consumer is stuck", || stuck.load(SeqCst));
        // Precondition: the consumer ran next on the producer's worker (the hand-off).
        let on = consumer_thread.lock().unwrap().unwrap();
        assert!(
            probe.threads.lock().unwrap().contains(&on),
            "{what}: precondition: the producer's first poll ran where the consumer is stuck"
        );
        if wake_idle {
            // Control: a task spawned from outside wakes an idle worker, which runs it and
            // goes back to sleep *while* the producer waits in the stuck worker's own queue.
            assert_eq!(rt.block_on(rt.spawn(async { 1 })), Ok(1));
        }
        consumers.push(consumer);
        producers.push((probe, producer));
        releases.push((released, release_tx));
    }
    let probes: Vec<_> = producers.iter().map(|(probe, _)| probe.clone()).collect();
    let before: Vec<usize> = probes.iter().map(|probe| probe.polls()).collect();
    let progressed = wait_until(Duration::from_secs(3), || {
        probes.iter().zip(&before).all(|(probe, &before)| probe.polls() >= before + 50)
    });
    let counts: Vec<(usize, usize)> =
        probes.iter().zip(&before).map(|(probe, &before)| (before, probe.polls())).collect();
    let stuck_all = consumers.iter().all(|consumer| !consumer.is_finished());
    for (released, release_tx) in &releases {
        released.store(true, SeqCst);
        let _ = release_tx.send(());
    }
    stop.store(true, SeqCst);
    assert!(stuck_all, "{what}: precondition: the consumers stayed stuck");
    assert!(
        progressed,
        "{what}: a yielding producer made no progress in 3 s behind its stuck consumer while \
         {} worker(s) were idle; (polls before, after) = {counts:?}",
        workers - pairs
    );
    for consumer in consumers {
        assert_eq!(rt.block_on(consumer), Ok(7), "{what}");
    }
    for (_, producer) in producers {
        rt.block_on(producer).unwrap();
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(report.abandoned, 0, "{what}: {report}");
}

#[test]
fn stuck_after_the_idle_workers_fell_asleep_one_pair_on_two_workers_spin() {
    within(Duration::from_secs(20), || {
        stuck_after_the_idle_workers_fell_asleep(2, 1, Stick::Spin, false)
    });
}

#[test]
fn stuck_after_the_idle_workers_fell_asleep_one_pair_on_two_workers_block() {
    within(Duration::from_secs(20), || {
        stuck_after_the_idle_workers_fell_asleep(2, 1, Stick::Block, false)
    });
}

#[test]
fn stuck_after_the_idle_workers_fell_asleep_two_pairs_on_three_and_four_workers() {
    within(Duration::from_secs(30), || {
        stuck_after_the_idle_workers_fell_asleep(3, 2, Stick::Block, false);
        stuck_after_the_idle_workers_fell_asleep(4, 2, Stick::Spin, false);
    });
}

/// Control for the three above: the same, but an idle worker is made to go to sleep again
/// after the producer was queued behind the stuck consumer.
#[test]
fn an_idle_worker_that_falls_asleep_after_the_worker_got_stuck_takes_the_task() {
    within(Duration::from_secs(30), || {
        for _ in 0..5 {
            stuck_after_the_idle_workers_fell_asleep(2, 1, Stick::Spin, true);
            stuck_after_the_idle_workers_fell_asleep(2, 1, Stick::Block, true);
        }
    });
}

/// A watch that lapses: the idle worker goes to sleep *while* two yielding tasks wait in the
/// other worker's own queue (so it watches it). Then one of them ends; the one left is alone,
/// so its worker's own queue is empty nearly all the time (the task is popped as soon as it is
/// pushed), and a look that finds nothing waiting arms no new one. Then the yielding task hands
/// a message to a consumer (which runs next on its worker and gets stuck) and yields on.
/// (Under load a run stretched past 100 us may move the tasks; wherever they are, the other
/// worker is the idle one: only the hand-off is checked.)
#[test]
fn a_producer_left_alone_behind_its_stuck_consumer_makes_progress() {
    within(Duration::from_secs(20), || {
        let rt = runtime(2);
        let (tx, rx) = klaw::channel::bounded::<u32>(1);
        let released = Arc::new(AtomicBool::new(false));
        let stuck = Arc::new(AtomicBool::new(false));
        let consumer_thread = Arc::new(Mutex::new(None));
        let producer_thread = Arc::new(Mutex::new(None));
        let consumer = rt.spawn({
            let (released, stuck, consumer_thread) =
                (released.clone(), stuck.clone(), consumer_thread.clone());
            async move {
                let got = rx.recv().await.unwrap();
                *consumer_thread.lock().unwrap() = Some(std::thread::current().id());
                stuck.store(true, SeqCst);
                let began = Instant::now();
                while !released.load(SeqCst) && began.elapsed() < Duration::from_secs(20) {
                    std::hint::spin_loop();
                }
                got
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        let blocker = occupy_worker(&rt);
        let (solo, send, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let polls = Arc::new(AtomicUsize::new(0));
        let partner = rt.spawn({
            let solo = solo.clone();
            async move {
                while !solo.load(SeqCst) {
                    yield_now().await;
                }
            }
        });
        let producer = rt.spawn({
            let (send, stop, polls, producer_thread) =
                (send.clone(), stop.clone(), polls.clone(), producer_thread.clone());
            async move {
                while !send.load(SeqCst) {
                    yield_now().await;
                }
                *producer_thread.lock().unwrap() = Some(std::thread::current().id());
                tx.send(7).await.unwrap();
                loop {
                    polls.fetch_add(1, SeqCst);
                    if stop.load(SeqCst) {
                        return polls.load(SeqCst);
                    }
                    yield_now().await;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(5));
        release_blocker(&rt, blocker); // W2 sleeps while two tasks wait in W1's own queue
        std::thread::sleep(Duration::from_millis(10));
        solo.store(true, SeqCst);
        rt.block_on(partner).unwrap();
        std::thread::sleep(Duration::from_millis(150)); // the idle worker's looks, <= 32 ms apart
        send.store(true, SeqCst);
        wait_for("the consumer is stuck", || stuck.load(SeqCst));
        let before = polls.load(SeqCst);
        let progressed = wait_until(Duration::from_secs(3), || polls.load(SeqCst) >= before + 50);
        let after = polls.load(SeqCst);
        released.store(true, SeqCst);
        stop.store(true, SeqCst);
        assert_eq!(
            *consumer_thread.lock().unwrap(),
            *producer_thread.lock().unwrap(),
            "precondition: the consumer ran next on the producer's worker (the hand-off)"
        );
        assert!(
            progressed,
            "the yielding producer made no progress in 3 s behind its stuck consumer while the \
             other worker was idle; polls before {before}, after {after}"
        );
        assert_eq!(rt.block_on(consumer), Ok(7));
        rt.block_on(producer).unwrap();
    });
}

// ---- 2. A stuck worker that resumes keeps working normally -------------------------------------

/// Two workers. W1 runs 6 yielding tasks (each yields a fixed number of times) and a task that
/// gets stuck while the other worker is held; the other worker is let go (the watch hands W1's
/// tasks to the shared queue), and W1 is released after `delay` (0 to ~3 ms: around the first
/// look, so that the resume races the hand-over). Every yielding task returns exactly its
/// count, the stuck task's later yields run, no poll overlaps another of the same task.
fn stuck_worker_resumes(round: usize, stick: Stick, delay: Duration) {
    const TASKS: usize = 6;
    const YIELDS: usize = 400;
    let what = format!("round {round}, {stick:?}, release after {delay:?}");
    let rt = runtime(2);
    let blocker = occupy_worker(&rt);
    let never = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> =
        (0..TASKS).map(|id| guarded_yielder(&rt, id, Some(YIELDS), &never)).collect();
    let stuck = Stuck::spawn(&rt, stick, 200);
    wait_for("the tasks polled", || {
        stuck.started.load(SeqCst) && tasks.iter().all(|(probe, _)| probe.polls() > 2)
    });
    stuck.go.store(true, SeqCst);
    wait_for("the task is stuck", || stuck.stuck.load(SeqCst));
    release_blocker(&rt, blocker);
    std::thread::sleep(delay);
    stuck.release();
    // The resumed worker also takes new work: tasks spawned after the release.
    let later: Vec<_> =
        (TASKS..TASKS + 4).map(|id| guarded_yielder(&rt, id, Some(YIELDS), &never)).collect();
    assert_eq!(rt.block_on(stuck.handle), Ok(200), "{what}: the stuck task's later yields");
    for (id, (probe, handle)) in tasks.into_iter().chain(later).enumerate() {
        let outcome = rt.block_on(handle);
        assert_eq!(outcome, Ok((id, YIELDS + 1)), "{what}: task {id}");
        assert_eq!(probe.polls(), YIELDS + 1, "{what}: task {id} polled a wrong number of times");
        assert_eq!(probe.overlaps.load(SeqCst), 0, "{what}: task {id} polled twice at once");
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(
        (report.succeeded, report.abandoned, report.cancelled),
        (2 + TASKS as u64 + 4, 0, 0),
        "{what}: {report}"
    );
}

#[test]
fn a_stuck_worker_that_resumes_keeps_working_and_no_task_is_lost_or_run_twice() {
    within(Duration::from_secs(40), || {
        for round in 0..24 {
            let stick = if round % 2 == 0 { Stick::Spin } else { Stick::Block };
            let delay = Duration::from_micros(250 * (round as u64 % 13));
            stuck_worker_resumes(round, stick, delay);
        }
    });
}

// ---- 3. Ping-pong beside a task that spins for milliseconds -----------------------------------

#[test]
fn ping_pong_beside_a_spinning_task_for_200_rounds_on_two_workers() {
    within(Duration::from_secs(50), || {
        const MESSAGES: u64 = 100;
        let rt = runtime(2);
        for round in 0..200u64 {
            let (ping_tx, ping_rx) = klaw::channel::bounded::<u64>(1);
            let (pong_tx, pong_rx) = klaw::channel::bounded::<u64>(1);
            let pinger = rt.spawn(async move {
                let mut replies = 0u64;
                for i in 0..MESSAGES {
                    ping_tx.send(i).await.unwrap();
                    let reply = pong_rx.recv().await.unwrap();
                    assert_eq!(reply, i + 1_000, "reply out of order");
                    replies += 1;
                }
                drop(ping_tx);
                assert!(pong_rx.recv().await.is_err(), "no reply after the last");
                replies
            });
            let ponger = rt.spawn(async move {
                let mut received = 0u64;
                while let Ok(i) = ping_rx.recv().await {
                    assert_eq!(i, received, "ping out of order");
                    received += 1;
                    pong_tx.send(i + 1_000).await.unwrap();
                }
                received
            });
            let spin = Duration::from_millis(2 + round % 4);
            let spinner = rt.spawn(async move {
                let mut spins = 0u32;
                for _ in 0..2 {
                    let began = Instant::now();
                    while began.elapsed() < spin {
                        std::hint::spin_loop();
                    }
                    spins += 1;
                    yield_now().await;
                }
                spins
            });
            assert_eq!(rt.block_on(pinger), Ok(MESSAGES), "round {round}");
            assert_eq!(rt.block_on(ponger), Ok(MESSAGES), "round {round}");
            assert_eq!(rt.block_on(spinner), Ok(2), "round {round}");
        }
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!((report.succeeded, report.abandoned, report.cancelled), (600, 0, 0), "{report}");
    });
}

// ---- 4. Shutdown of an idle runtime and of one whose busy worker keeps starting runs ---------

#[test]
fn an_idle_runtime_shuts_down_with_an_empty_report() {
    within(Duration::from_secs(20), || {
        for workers in [1, 2, 3] {
            let rt = runtime(workers);
            std::thread::sleep(Duration::from_millis(40)); // every worker asleep
            let report = rt.shutdown(Duration::from_secs(2));
            assert_eq!(
                (report.completed(), report.cancelled, report.abandoned, report.grace_expired),
                (0, 0, 0, false),
                "{workers} workers: {report}"
            );
        }
    });
}

/// 8 tasks yielding in loops for ~200 ms on 2 workers (all on one worker, the other held until
/// they have started, then let go: it sleeps and watches a worker that keeps beginning runs).
fn busy_worker_then_shutdown(forever: bool) {
    let rt = runtime(2);
    let blocker = occupy_worker(&rt);
    let polls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let polls = polls.clone();
            rt.spawn(async move {
                let began = Instant::now();
                let mut mine = 0u64;
                while forever || began.elapsed() < Duration::from_millis(200) {
                    polls.fetch_add(1, SeqCst);
                    mine += 1;
                    yield_now().await;
                }
                mine
            })
        })
        .collect();
    wait_for("the loops run", || polls.load(SeqCst) > 200);
    release_blocker(&rt, blocker);
    std::thread::sleep(Duration::from_millis(if forever { 100 } else { 20 }));
    let report =
        rt.shutdown(if forever { Duration::from_millis(20) } else { Duration::from_secs(5) });
    let unfinished = handles.iter().filter(|handle| !handle.is_finished()).count();
    assert_eq!(unfinished, 0, "forever={forever}: {report}");
    if forever {
        assert_eq!(
            (report.succeeded, report.cancelled, report.abandoned, report.grace_expired),
            (1, 8, 0, true),
            "{report}"
        );
    } else {
        assert_eq!(
            (report.succeeded, report.cancelled, report.abandoned, report.grace_expired),
            (9, 0, 0, false),
            "{report}"
        );
    }
}

#[test]
fn a_runtime_whose_busy_worker_keeps_starting_runs_shuts_down_and_counts_every_task() {
    within(Duration::from_secs(30), || {
        for _ in 0..3 {
            busy_worker_then_shutdown(false);
            busy_worker_then_shutdown(true);
        }
    });
}

// ---- 5. The `tokio` feature -------------------------------------------------------------------

/// Only built when the root crate's `tokio` feature is on (it is not in
/// `cargo nextest run -p klaw`); kept so that a run with it on probes the same watch.
#[cfg(feature = "tokio")]
#[test]
fn with_tokio_a_stuck_worker_with_yielding_tasks_behind_it() {
    within(Duration::from_secs(20), || {
        let rt = klaw::Runtime::builder().workers(2).tokio(true).build().unwrap();
        let blocker = occupy_worker(&rt);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..4).map(|id| guarded_yielder(&rt, id, None, &stop)).collect();
        let stuck = Stuck::spawn(&rt, Stick::Block, 5);
        wait_for("polled", || {
            stuck.started.load(SeqCst) && tasks.iter().all(|(p, _)| p.polls() > 2)
        });
        stuck.go.store(true, SeqCst);
        wait_for("stuck", || stuck.stuck.load(SeqCst));
        let before: Vec<_> = tasks.iter().map(|(p, _)| p.polls()).collect();
        release_blocker(&rt, blocker);
        let progressed = wait_until(Duration::from_secs(5), || {
            tasks.iter().zip(&before).all(|((p, _), &b)| p.polls() >= b + 50)
        });
        stuck.release();
        stop.store(true, SeqCst);
        assert!(progressed);
        assert_eq!(rt.block_on(stuck.handle), Ok(5));
        for (_, handle) in tasks {
            rt.block_on(handle).unwrap();
        }
    });
}

/// Spawns a task whose shielded cleanup, once `go` comes, blocks its thread (a synchronous flush,
/// say) until `release` is set; returns once the cleanup is in its shield.
fn spawn_cleanup_that_blocks(
    rt: &Runtime,
    go: klaw::channel::oneshot::Receiver<()>,
    release: &Flag,
) -> TaskHandle<()> {
    let in_shield = Flag::default();
    let cleanup = {
        let (in_shield, release) = (in_shield.clone(), release.clone());
        rt.spawn(async move {
            klaw::cancel::shield(async move {
                in_shield.set();
                let _ = go.await;
                while !release.is_set() {
                    std::hint::spin_loop();
                }
            })
            .await;
        })
    };
    wait_for("the cleanup to enter its shield", || in_shield.is_set());
    cleanup
}

/// One worker, stuck for good in a body that never yields; a task whose shielded cleanup waits
/// (at klaw's await points) for `go`, then blocks its thread until the test releases it. `go` is
/// set once the worker is stuck, so the cleanup's next poll can only be the shutdown's own.
///
/// Checks: `shutdown(0)` returns (within 15 s; it should take about 1.25 s).
///
/// Breaks (the test gives up after 15 s, releases both, and fails) if the last resort's thread
/// polls the shielded cleanup and is kept there.
#[test]
fn shutdown_returns_though_its_last_resort_polls_a_shield_that_blocks_its_thread() {
    within(secs(60), || {
        let rt = runtime(1);
        let release = Flag::default();
        let (go, go_rx) = klaw::channel::oneshot::channel::<()>();
        let _cleanup = spawn_cleanup_that_blocks(&rt, go_rx, &release);
        // The only worker, stuck until the end of the test.
        let (unstick, _stuck) = occupy_worker(&rt);
        std::thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();

        let (report_tx, report_rx) = mpsc::channel();
        let shutting_down = std::thread::spawn(move || {
            let _ = report_tx.send(rt.shutdown(Duration::ZERO));
        });
        let report = report_rx.recv_timeout(secs(15));
        release.set();
        let _ = unstick.send(());
        shutting_down.join().unwrap();
        let report = report.expect(
            "shutdown(0) hung: its last resort polled a shielded cleanup that blocks its thread, \
             on the shutdown's own thread",
        );
        assert!(report.abandoned >= 1, "the stuck body is abandoned: {report}");
    });
}

/// One worker stuck for good, a shielded cleanup queued for the shutdown's last resort that
/// blocks the thread polling it, and a plain waiting task queued behind it. Checks: by the time
/// `shutdown(0)` returns, the plain task was dropped, and only the stuck body and the cleanup are
/// reported abandoned. What would break it: a last resort on one thread, which the cleanup holds
/// while the plain task waits in the queue behind it, neither polled nor dropped.
#[test]
fn a_task_queued_behind_a_cleanup_that_blocks_the_last_resort_still_resolves() {
    within(secs(60), || {
        let rt = runtime(1);
        let (plain_parked, plain_dropped) = (Flag::default(), Flag::default());
        let _plain = {
            let (parked, guard) = (plain_parked.clone(), SetOnDrop(plain_dropped.clone()));
            rt.spawn(async move {
                let _guard = guard;
                parked.set();
                pending::<()>().await;
            })
        };
        wait_for("the plain task to park", || plain_parked.is_set());

        let (go_tx, go_rx) = klaw::channel::oneshot::channel::<()>();
        let release = Flag::default();
        let _cleanup = spawn_cleanup_that_blocks(&rt, go_rx, &release);

        // The only worker, stuck until the end of the test.
        let (unstick, _stuck) = occupy_worker(&rt);
        std::thread::sleep(Duration::from_millis(20));
        // Queued now, from outside the runtime: ahead of `plain`, which the first step queues.
        go_tx.send(()).unwrap();

        let (report_tx, report_rx) = mpsc::channel();
        let shutting_down = std::thread::spawn(move || {
            let _ = report_tx.send(rt.shutdown(Duration::ZERO));
        });
        let report = report_rx.recv_timeout(secs(20));
        // What the shutdown left, seen before anything is released.
        let plain_dropped_by_then = plain_dropped.is_set();
        release.set();
        let _ = unstick.send(());
        shutting_down.join().unwrap();
        let report = report.expect("shutdown(0) did not return");
        assert!(
            plain_dropped_by_then,
            "a cancelled task queued behind the blocked last resort was neither polled nor \
             dropped by the time shutdown returned: {report}"
        );
        assert_eq!(
            report.abandoned, 2,
            "only the stuck body and the blocking cleanup are abandoned: {report}"
        );
    });
}

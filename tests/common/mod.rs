//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A flag that a body sets to prove it ran.
#[derive(Clone, Default)]
pub struct Flag(Arc<AtomicBool>);

impl Flag {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sets its flag when dropped: proves a body was dropped (not leaked, not still running).
pub struct SetOnDrop(pub Flag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Counts drops of values a task produced, so a discarded output is seen to be dropped.
#[derive(Clone, Default)]
pub struct DropCount(Arc<AtomicUsize>);

pub struct Counted(DropCount);

impl DropCount {
    pub fn value(&self) -> Counted {
        Counted(self.clone())
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A runtime for one test.
pub fn runtime(workers: usize) -> klaw::Runtime {
    klaw::Runtime::builder().workers(workers).build().expect("runtime")
}

/// Blocks the calling worker thread until `release` is sent, so the tests can hold a worker.
pub fn occupy_worker(rt: &klaw::Runtime) -> (std::sync::mpsc::Sender<()>, klaw::TaskHandle<()>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, is_started) = std::sync::mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        started.send(()).unwrap();
        let _ = wait.recv_timeout(Duration::from_secs(30));
    });
    is_started.recv_timeout(Duration::from_secs(10)).expect("the blocker started");
    (release, blocker)
}

/// Awaits every handle in order and returns their values (panicking on any task error).
pub fn join_all<T: Send + 'static>(
    rt: &klaw::Runtime,
    handles: Vec<klaw::TaskHandle<T>>,
) -> Vec<T> {
    rt.block_on(async {
        let mut values = Vec::with_capacity(handles.len());
        for handle in handles {
            values.push(handle.await.expect("task ended without a value"));
        }
        values
    })
}

/// Counts live descendants: each guard is one, alive from when it is made until it is dropped
/// (with the future that owns it). A guard can take a while to drop, like a slow destructor.
#[derive(Clone, Default)]
pub struct Alive(Arc<AtomicUsize>);

pub struct AliveGuard {
    count: Arc<AtomicUsize>,
    drop_takes: Duration,
}

impl Alive {
    /// A new live descendant whose drop takes `drop_takes`.
    pub fn guard(&self, drop_takes: Duration) -> AliveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        AliveGuard { count: self.0.clone(), drop_takes }
    }
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// A child counted here from now until it is dropped, a drop that takes `drop_takes`: it
    /// never ends by itself.
    pub fn pending_child(&self, drop_takes: Duration) -> impl Future<Output = ()> + Send + 'static {
        let guard = self.guard(drop_takes);
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }
    }
}

/// A destructor that fails: panics with its message when dropped (unless already unwinding).
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        std::thread::sleep(self.drop_takes);
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error of the failing child in the scope tests.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("fetch {0} failed")]
pub struct FetchError(pub u32);

/// The ids of the `FetchError`s in a scope's error, in the order the scope lists them.
pub fn fetch_ids(error: &klaw::Error) -> Vec<u32> {
    use klaw::{Error, TaskError};
    let errors: Vec<&Error> = match error {
        Error::Scope(scope) => scope.errors().iter().collect(),
        other => vec![other],
    };
    errors
        .into_iter()
        .map(|error| match error {
            Error::Task { error: TaskError::Failed(failure), .. } => {
                failure.downcast_ref::<FetchError>().expect("a FetchError").0
            }
            other => panic!("not a failed fetch: {other:?}"),
        })
        .collect()
}

/// A fallible task that fails with `FetchError(id)` after `after`.
pub fn failing(
    id: u32,
    after: Duration,
) -> klaw::Task<impl Future<Output = Result<(), FetchError>>, klaw::task::Fallible> {
    klaw::Task::fallible(async move {
        klaw::time::sleep(after).await;
        Err(FetchError(id))
    })
}

/// How long a scenario run by [`with_deadline`] may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `scenario` on a thread of its own: a hang fails the test after [`DEADLINE`] instead of
/// blocking the suite, and a panic in it fails the test with its own message.
pub fn with_deadline(scenario: impl FnOnce() + Send + 'static) {
    within(DEADLINE, scenario);
}

/// Runs `scenario` on a thread of its own and gives what it returns: a hang fails the test after
/// `limit` instead of blocking the suite, and a panic in it fails the test with its own message.
pub fn within<T: Send + 'static>(
    limit: Duration,
    scenario: impl FnOnce() -> T + Send + 'static,
) -> T {
    use std::sync::mpsc::{self, RecvTimeoutError};
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(scenario());
    });
    match finished.recv_timeout(limit) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario returned without sending"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("the scenario hung: no end within {limit:?}"),
    }
}

/// Waits (on a plain thread, looking every 200 µs) until `done()`; false if `limit` passed first.
pub fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// Dumps `rt` until the dump satisfies `ready`, and gives that dump; fails after 10 s with the
/// last one. A test waits for the state it looks at instead of sleeping and hoping it came.
pub fn dump_when(rt: &klaw::Runtime, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let last = std::cell::RefCell::new(String::new());
    let seen = wait_until(secs(10), || {
        let tree = rt.dump().to_string();
        let done = ready(&tree);
        *last.borrow_mut() = tree;
        done
    });
    let tree = last.into_inner();
    assert!(seen, "never happened: {what}; the last dump:\n{tree}");
    tree
}

/// A short busy pause of `spins` spin-loop hints: for a stress test that holds something a
/// little while, so other threads can contend for it, or varies its timing. Not
/// `thread::yield_now`: on a busy machine a yield gives the CPU to any other process for up to a
/// time slice, and a test with thousands of them ran 30 to 100 times slower beside four busy
/// loops, near its deadline (the semaphore models: 21–28 s against 0.2 s quiet).
pub fn pause_spinning(spins: u32) {
    for _ in 0..spins {
        std::hint::spin_loop();
    }
}

/// Blocks this thread (a blocking closure's) until its task or region is cancelled, looking
/// every millisecond, for at most `limit`: true if the cancellation came. Bounded, so a cancel
/// that never arrives fails the test instead of hanging it.
pub fn block_until_cancelled(limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while !klaw::cancel::is_cancelled() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
    klaw::cancel::is_cancelled()
}

/// Waits until `done()`, failing the test with `what` after 10 s.
pub fn wait_for(what: &str, done: impl Fn() -> bool) {
    assert!(wait_until(Duration::from_secs(10), done), "never happened: {what}");
}

/// Runs the future `make` gives as a klaw task on a two-worker runtime, within [`DEADLINE`].
pub fn in_task<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_deadline(move || {
        let rt = runtime(2);
        match rt.block_on(rt.spawn(make())) {
            Ok(()) => {}
            Err(klaw::TaskError::Panicked(message)) => panic!("{message}"),
            Err(other) => panic!("the test's task ended with {other:?}"),
        }
    });
}

/// Runs the future `make` gives as a klaw task on a paused runtime ([`paused`]: virtual time
/// moves only when every task waits, so a task spawned before a deadline is polled before the
/// deadline can pass), within [`DEADLINE`].
pub fn in_paused_task<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_deadline(move || {
        let rt = paused();
        match rt.block_on(rt.spawn(make())) {
            Ok(()) => {}
            Err(klaw::TaskError::Panicked(message)) => panic!("{message}"),
            Err(other) => panic!("the test's task ended with {other:?}"),
        }
    });
}

/// For a deadline that must reach a blocking closure while it runs, on a real clock: a deadline
/// can pass before the blocking pool picks the job up, and a job cancelled while still queued is
/// withdrawn and never runs. So `attempt` is given a timeout of 10 ms, then twice as long each
/// time (up to 1 s), until it gives `Some`: the closure started before its deadline, and the
/// attempt checked what the test is about. An attempt whose closure never started gives `None`.
/// The caller's own deadline ([`in_task`]) bounds the tries.
pub async fn until_a_deadline_finds_it_running<T, Fut>(
    mut attempt: impl FnMut(Duration) -> Fut,
) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut timeout = ms(10);
    loop {
        if let Some(checked) = attempt(timeout).await {
            return checked;
        }
        timeout = (timeout * 2).min(secs(1));
    }
}

/// How many are inside (running) now, and the most that ever were at once.
#[derive(Clone, Default)]
pub struct Gauge {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Gauge {
    pub fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    pub fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
    /// Inside the gauge until the returned value is dropped, whose drop takes `drop_takes`.
    pub fn inside(&self, drop_takes: Duration) -> Inside {
        self.enter();
        Inside { gauge: self.clone(), drop_takes }
    }
}

/// Inside a [`Gauge`] from when it is made until it is dropped; its drop takes a while.
pub struct Inside {
    gauge: Gauge,
    drop_takes: Duration,
}

impl Drop for Inside {
    fn drop(&mut self) {
        std::thread::sleep(self.drop_takes);
        self.gauge.leave();
    }
}

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A runtime on a paused clock (`start_paused(true)`): its virtual time moves only when every
/// task waits.
pub fn paused() -> klaw::Runtime {
    klaw::Runtime::builder().start_paused(true).build().expect("a paused runtime")
}

/// A small deterministic generator (xorshift; no `fastrand` among klaw's dev-dependencies).
/// Its seed must not be zero.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Waits (at klaw's await points: a `sleep` of a millisecond) until `done` says so.
pub async fn until(done: impl Fn() -> bool) {
    while !done() {
        klaw::time::sleep(ms(1)).await;
    }
}

/// Waits until `done` says so, awaiting no klaw operation (a foreign future, as tokio's I/O
/// would be): the task is woken again at once each time.
pub async fn foreign_until(done: impl Fn() -> bool) {
    std::future::poll_fn(|cx| {
        if done() {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// `tokio::task::yield_now`: pending once (after waking its task), then ready.
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// Runs this binary's ignored test `name` alone in a child process, killed after `limit`: its
/// exit success (and "1 passed"), and its stdout and stderr together; `None` if it did not end
/// in time. For a test of what a failing or hanging test reports.
pub fn child_test_outcome(name: &str, limit: Duration) -> Option<(bool, String)> {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return Some((status.success() && text.contains("1 passed"), text));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(ms(10));
    }
}

/// Runs this binary's ignored test `name` alone in a child process (with `env` set), bounded by
/// `deadline`: for a case that may abort the process, or needs the process to itself. Fails if
/// the child did not pass (a panic, an abort, a hang).
pub fn in_child_process(name: &'static str, env: &[(&'static str, &str)], deadline: Duration) {
    let env: Vec<(&'static str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let shown = format!("{env:?}");
    let output = within(deadline, move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .envs(env)
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child process running {name} with {shown} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// Runs `last_step` in a blocking child of a scope (on `rt`) once the child sees the scope
/// cancelled, as book/src/cancellation.md asks blocking code to check (the scope's body cancels
/// it once the closure runs). Gives back the scope's result and what the step returned (`None`
/// if the child never got to return it).
pub fn last_step_of_a_cancelled_blocking_child<R: Send + 'static>(
    rt: &klaw::Runtime,
    last_step: impl FnOnce() -> R + Send + 'static,
) -> (Result<(), klaw::Error>, Option<R>) {
    let got = Arc::new(std::sync::Mutex::new(None));
    let seen = got.clone();
    let result = rt
        .block_on(rt.spawn(async move {
            klaw::scope!(|s| {
                let started = Flag::default();
                let running = started.clone();
                s.spawn_blocking(move || {
                    running.set();
                    while !klaw::cancel::is_cancelled() {
                        std::thread::sleep(ms(1));
                    }
                    *seen.lock().unwrap() = Some(last_step());
                });
                // Cancels only once the closure runs: a job cancelled while still queued is
                // withdrawn and never runs, and the step would be `None`.
                until(|| started.is_set()).await;
                s.cancel("stop");
                Ok(())
            })
        }))
        .expect("the scope's task ran");
    let step = got.lock().unwrap().take();
    (result, step)
}

/// Installs the log subscriber once (`info`, no output) and serialises the tests that use log
/// hooks (hooks are process-wide).
pub fn logging() -> std::sync::MutexGuard<'static, ()> {
    static INIT: std::sync::Once = std::sync::Once::new();
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    INIT.call_once(|| {
        klaw::log::LogConfig::default().filter("info").without_output().init().unwrap()
    });
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hook that forwards the events carrying `marker` to a channel.
pub fn forward(
    marker: &'static str,
) -> (klaw::log::HookId, std::sync::mpsc::Receiver<klaw::log::LogEvent>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let id = klaw::log::add_hook(move |event| {
        if event.fields.get("marker").map(String::as_str) == Some(marker) {
            let _ = tx.lock().unwrap().send(event.clone());
        }
    });
    (id, rx)
}

/// The events received so far, each as its message, task name and scope name, sorted.
pub fn messages_and_names(
    events: &std::sync::mpsc::Receiver<klaw::log::LogEvent>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut seen: Vec<_> = events
        .try_iter()
        .map(|e| {
            (e.message.clone(), e.task_name().map(str::to_owned), e.scope_name().map(str::to_owned))
        })
        .collect();
    seen.sort();
    seen
}

/// Counts how many times its future is polled.
pub struct CountPolls<F> {
    future: std::pin::Pin<Box<F>>,
    polls: usize,
}

impl<F: std::future::Future> std::future::Future for CountPolls<F> {
    type Output = (F::Output, usize);
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.polls += 1;
        match self.future.as_mut().poll(cx) {
            std::task::Poll::Ready(value) => std::task::Poll::Ready((value, self.polls)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// Runs `future` as a klaw task on a one-worker runtime, under [`DEADLINE`]: its output and how
/// many times the task polled it.
pub fn polls_in_a_task<F>(future: F) -> (F::Output, usize)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    within(DEADLINE, move || {
        let rt = runtime(1);
        rt.block_on(rt.spawn(CountPolls { future: Box::pin(future), polls: 0 })).unwrap()
    })
}

/// A waker that, when woken, drops a waiting future it keeps, counts the wake-up, and wakes
/// `then` (the task polling by hand, if it needs to hear of it): a waker that comes back into
/// what woke it, as tokio's `time_sleep.rs::drop_from_wake` drops sleeps from a wake.
pub struct DropOnWake<O> {
    pub other: std::sync::Mutex<Option<std::pin::Pin<Box<dyn Future<Output = O> + Send>>>>,
    pub woken: AtomicUsize,
    then: Option<std::task::Waker>,
}

impl<O> DropOnWake<O> {
    pub fn new(
        other: Option<std::pin::Pin<Box<dyn Future<Output = O> + Send>>>,
        then: Option<std::task::Waker>,
    ) -> Self {
        DropOnWake { other: std::sync::Mutex::new(other), woken: AtomicUsize::new(0), then }
    }

    /// Polls `other` once, which must then wait, and keeps it for the wake-up to drop.
    pub fn keep_waiting(&self, other: impl Future<Output = O> + Send + 'static) {
        let mut other: std::pin::Pin<Box<dyn Future<Output = O> + Send>> = Box::pin(other);
        let noop = &mut std::task::Context::from_waker(std::task::Waker::noop());
        assert!(other.as_mut().poll(noop).is_pending(), "the kept future must wait");
        *self.other.lock().unwrap() = Some(other);
    }

    /// Its wake-ups so far, and whether the future it kept was dropped.
    pub fn woken_and_dropped(&self) -> (usize, bool) {
        (self.woken.load(Ordering::SeqCst), self.other.lock().unwrap().is_none())
    }
}

impl<O: 'static> std::task::Wake for DropOnWake<O> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let other = self.other.lock().unwrap().take();
        drop(other);
        self.woken.fetch_add(1, Ordering::SeqCst);
        if let Some(then) = &self.then {
            then.wake_by_ref();
        }
    }
}

/// How many threads of this process are the blocking threads of the runtime named `prefix`
/// (Linux: `/proc/self/task/*/comm`, which holds the first 15 bytes of a thread's name).
pub fn pool_threads(prefix: &str) -> usize {
    let wanted = format!("{prefix}-blocking-");
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(&wanted))
        .count()
}

/// A future polled until it completes and pending for ever after: what a tokio `, if !done`
/// precondition does for a future reused across the iterations of a loop.
pub struct Fuse<F>(pub Option<F>);

impl<F: std::future::Future + Unpin> std::future::Future for Fuse<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let Some(future) = self.0.as_mut() else { return std::task::Poll::Pending };
        let polled = std::pin::Pin::new(future).poll(cx);
        if polled.is_ready() {
            self.0 = None;
        }
        polled
    }
}

/// Awaits `future`, setting `in_line` after the first poll that found it pending: from then on
/// it waits in its primitive's line (or is counted, for a barrier).
pub async fn signalling<F: Future>(future: F, in_line: Flag) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx: &mut std::task::Context<'_>| {
        let poll = future.as_mut().poll(cx);
        if poll.is_pending() {
            in_line.set();
        }
        poll
    })
    .await
}

//! What klaw's macros do at run time, at the edges of their options: `#[klaw::task]` tasks
//! (their ids, names, spans, timeouts, generic and associated functions, tasks as `select!`
//! arms), `#[klaw::main]`/`#[klaw::test]` options each taking effect (workers, blocking
//! threads, a paused clock, a test timeout, how a failing test reports), `scope!` options
//! combined, `select!` fairness, `biased;`, arm forms and patterns, and the cooperative budget
//! counted per poll.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{DEADLINE, Flag, Gauge, SetOnDrop, ms, secs, within};
use klaw::task::{TaskId, current_task_id};
use klaw::{Error, Handle, Task, TaskError};

// ---------------------------------------------------------------------------------------------
// #[klaw::task]: ids, names, generic and associated functions
// ---------------------------------------------------------------------------------------------

#[klaw::task(name = "who-am-i")]
async fn who_am_i() -> Option<TaskId> {
    klaw::time::sleep(ms(1)).await;
    current_task_id()
}

#[klaw::task(blocking, name = "blocking-who-am-i")]
fn blocking_who_am_i() -> Option<TaskId> {
    current_task_id()
}

#[klaw::task]
async fn echo<T: Send + 'static>(value: T) -> T {
    klaw::time::sleep(ms(1)).await;
    value
}

struct Doubler;

impl Doubler {
    #[klaw::task(name = "doubler")]
    async fn double(x: u64) -> u64 {
        x * 2
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_spawned_task_sees_its_handles_id_as_current_task_id() {
    let handle = Handle::current().unwrap().spawn(who_am_i());
    assert_eq!(handle.name(), Some("who-am-i"));
    let id = handle.id();
    assert_eq!(handle.await.unwrap(), Some(id));
    let (in_scope, scope_id) = klaw::scope!(|s| {
        let child = s.spawn(who_am_i());
        let id = child.id();
        Ok((child.await?, id))
    })
    .unwrap();
    assert_eq!(in_scope, Some(scope_id));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_task_awaited_inline_runs_as_part_of_the_awaiting_task() {
    // "Awaited inline, a task is part of the code that awaits it" (book/src/tasks.md).
    let outer = Handle::current().unwrap().spawn(async {
        let mine = current_task_id();
        (mine, who_am_i().await.unwrap())
    });
    let outer_id = outer.id();
    let (mine, inline) = outer.await.unwrap();
    assert_eq!(mine, Some(outer_id));
    assert_eq!(inline, Some(outer_id));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_blocking_task_sees_its_handles_id_and_name() {
    let (seen, id) = klaw::scope!(|s| {
        let child = s.spawn(blocking_who_am_i());
        assert_eq!(child.name(), Some("blocking-who-am-i"));
        let id = child.id();
        Ok((child.await?, id))
    })
    .unwrap();
    assert_eq!(seen, Some(id));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn every_call_of_a_task_fn_is_a_task_with_an_id_of_its_own() {
    let rt = Handle::current().unwrap();
    let handles: Vec<_> = (0..200).map(|_| rt.spawn(who_am_i())).collect();
    let mut ids = HashSet::new();
    for handle in handles {
        let id = handle.id();
        assert_eq!(handle.await.unwrap(), Some(id));
        assert!(ids.insert(id), "two tasks had the id {id:?}");
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn generic_and_associated_task_fns_run_inline_spawned_and_in_a_scope() {
    assert_eq!(echo(String::from("inline")).await, Ok(String::from("inline")));
    assert_eq!(Doubler::double(21).await, Ok(42));
    let spawned = Handle::current().unwrap().spawn(echo(vec![1u8, 2]));
    assert_eq!(spawned.name(), Some("echo"));
    assert_eq!(spawned.await, Ok(vec![1, 2]));
    let (a, b) = klaw::scope!(|s| {
        let a = s.spawn(echo(7u32));
        let b = s.spawn(Doubler::double(5));
        assert_eq!(b.name(), Some("doubler"));
        Ok((a.await?, b.await?))
    })
    .unwrap();
    assert_eq!((a, b), (7, 10));
}

// ---------------------------------------------------------------------------------------------
// #[klaw::task(timeout = ..)]
// ---------------------------------------------------------------------------------------------

#[klaw::task(timeout = "300ms")]
async fn step_of_150ms() -> u32 {
    klaw::time::sleep(ms(150)).await;
    1
}

#[klaw::task(timeout = "1m30s")]
async fn two_minutes() {
    klaw::time::sleep(secs(120)).await;
}

#[klaw::task(name = "kaboom", timeout = "5s")]
async fn kaboom(n: u32) -> u32 {
    klaw::time::sleep(ms(1)).await;
    if n > 0 {
        panic!("kaboom {n}");
    }
    n
}

#[klaw::task(timeout = "20ms")]
async fn slow_with_guard(dropped: Flag) {
    let _guard = SetOnDrop(dropped);
    klaw::time::sleep(secs(60)).await;
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_task_timeout_counts_from_its_start_not_while_it_waits_for_a_limit_slot() {
    // Task::timeout: "if it has not finished `timeout` after it first starts running".
    let total = klaw::scope!(limit = 1, |s| {
        let steps: Vec<_> = (0..3).map(|_| s.spawn(step_of_150ms())).collect();
        let mut total = 0;
        for step in steps {
            total += step.await?;
        }
        Ok(total)
    })
    .unwrap();
    assert_eq!(total, 3);
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_compound_timeout_literal_ends_the_task_at_exactly_that_time() {
    let start = klaw::time::now();
    assert_eq!(two_minutes().await, Err(TaskError::TimedOut(secs(90))));
    assert_eq!(klaw::time::now() - start, secs(90));
    let start = klaw::time::now();
    let spawned = Handle::current().unwrap().spawn(two_minutes());
    assert_eq!(spawned.await, Err(TaskError::TimedOut(secs(90))));
    assert_eq!(klaw::time::now() - start, secs(90));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_timed_task_that_panics_reports_its_panic_message_inline_and_spawned() {
    assert_eq!(kaboom(0).await, Ok(0));
    assert_eq!(kaboom(7).await, Err(TaskError::Panicked("kaboom 7".into())));
    let spawned = Handle::current().unwrap().spawn(kaboom(8));
    assert_eq!(spawned.await, Err(TaskError::Panicked("kaboom 8".into())));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_timed_out_task_has_dropped_its_body_when_its_await_returns() {
    let inline = Flag::default();
    assert!(matches!(slow_with_guard(inline.clone()).await, Err(TaskError::TimedOut(_))));
    assert!(inline.is_set());
    let spawned = Flag::default();
    let handle = Handle::current().unwrap().spawn(slow_with_guard(spawned.clone()));
    assert!(matches!(handle.await, Err(TaskError::TimedOut(_))));
    assert!(spawned.is_set());
}

// ---------------------------------------------------------------------------------------------
// Task values as select! arms
// ---------------------------------------------------------------------------------------------

#[klaw::task]
async fn never_done(dropped: Flag) -> u32 {
    let _guard = SetOnDrop(dropped);
    std::future::pending::<()>().await;
    0
}

#[klaw::task(blocking)]
fn blocking_until_cancelled(started: Flag, heard: Flag, returned: Flag) -> u32 {
    started.set();
    if common::block_until_cancelled(secs(5)) {
        heard.set();
    }
    std::thread::sleep(ms(100));
    returned.set();
    0
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_task_call_that_loses_a_select_is_dropped_before_the_body_runs() {
    let dropped = Flag::default();
    let won = klaw::select! {
        never_done(dropped.clone()) -> _ => "task",
        after(ms(10)) => {
            assert!(dropped.is_set(), "the losing task's body was not dropped");
            "timer"
        }
    };
    assert_eq!(won, "timer");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_blocking_task_that_loses_a_select_hears_the_cancel_and_its_task_waits_for_it() {
    // book/src/tasks.md: "if the await is dropped first (... a select! takes another arm), the
    // closure is cancelled ... the task around the await ends only after the closure has
    // returned".
    let (heard, returned) = (Flag::default(), Flag::default());
    let task = Handle::current().unwrap().spawn({
        let (heard, returned) = (heard.clone(), returned.clone());
        let started = Flag::default();
        let running = started.clone();
        async move {
            // The other arm wins once the closure runs: a job cancelled while still queued is
            // withdrawn and never runs, so it could not hear the cancel.
            klaw::select! {
                blocking_until_cancelled(started, heard, returned) -> _ => "blocking",
                common::until(move || running.is_set()) -> _ => "the other arm",
            }
        }
    });
    assert_eq!(task.await, Ok("the other arm"));
    assert!(returned.is_set(), "the task ended before its blocking closure returned");
    assert!(heard.is_set(), "the closure never saw is_cancelled()");
}

// ---------------------------------------------------------------------------------------------
// #[klaw::main] and #[klaw::test] options
// ---------------------------------------------------------------------------------------------

#[klaw::test(workers = 3, timeout = "10s")]
async fn workers_3_runs_three_tasks_at_once_on_three_threads() {
    // Three tasks that each block their thread until all three are there: only three worker
    // threads let them meet.
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let rt = Handle::current().unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            rt.spawn(async move {
                barrier.wait();
                std::thread::current().id()
            })
        })
        .collect();
    let mut threads = HashSet::new();
    for handle in handles {
        threads.insert(handle.await.unwrap());
    }
    assert_eq!(threads.len(), 3);
}

#[klaw::task(blocking)]
fn held_for_a_while(gauge: Gauge) {
    let _inside = gauge.inside(Duration::ZERO);
    std::thread::sleep(ms(20));
}

#[klaw::test(max_blocking_threads = 1, timeout = "10s")]
async fn max_blocking_threads_1_runs_one_blocking_task_at_a_time() {
    let gauge = Gauge::default();
    klaw::scope!(|s| {
        for _ in 0..4 {
            s.spawn(held_for_a_while(gauge.clone()));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(gauge.most(), 1);
}

#[klaw::test(start_paused = true, timeout = "2s")]
async fn start_paused_with_a_real_timeout_still_jumps_an_hour_of_virtual_time() {
    // The test's own real-time timeout (2 s) fails it if the hour is waited in real time.
    let start = klaw::time::now();
    klaw::time::sleep(secs(3600)).await;
    assert_eq!(klaw::time::now() - start, secs(3600));
}

#[klaw::test(timeout = "5s")]
#[should_panic(expected = "boom 42")]
async fn a_timed_test_that_panics_fails_with_its_panic_message() {
    klaw::time::sleep(ms(1)).await;
    panic!("boom {}", 42);
}

#[klaw::test(timeout = "100ms")]
#[should_panic(expected = "task `stuck-task`")]
async fn a_test_past_its_timeout_shows_the_named_task_it_waited_for() {
    klaw::scope!(name = "stuck-scope", |s| {
        s.spawn(Task::new(std::future::pending::<()>()).name("stuck-task"));
        Ok(())
    })
    .unwrap();
}

#[klaw::test(timeout = "100ms")]
#[should_panic(expected = "scope `stuck-scope`")]
async fn a_test_past_its_timeout_shows_the_named_scope_it_waited_in() {
    klaw::scope!(name = "stuck-scope", |s| {
        s.spawn(Task::new(std::future::pending::<()>()).name("stuck-task"));
        Ok(())
    })
    .unwrap();
}

/// `#[klaw::main]` on a function that is not `main`: it builds its runtime, gives the body's
/// value, and shuts the runtime down (cancelling what is left) before returning.
static LEFT_BEHIND_DROPPED: AtomicBool = AtomicBool::new(false);

#[klaw::main(workers = 2)]
async fn main_like() -> usize {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            LEFT_BEHIND_DROPPED.store(true, Ordering::SeqCst);
        }
    }
    let rt = Handle::current().unwrap();
    let started = Flag::default();
    let running = started.clone();
    let _detached = rt.spawn(async move {
        let _guard = Guard;
        running.set();
        std::future::pending::<()>().await;
    });
    // The body returns once the task runs, so that what is left is a running task (a task
    // cancelled before it starts never runs, and its guard would never be made).
    common::until(|| started.is_set()).await;
    rt.config().workers
}

#[test]
fn the_main_attribute_gives_the_bodys_value_and_ends_what_is_left() {
    within(DEADLINE, || {
        assert_eq!(main_like(), 2);
        assert!(
            LEFT_BEHIND_DROPPED.load(Ordering::SeqCst),
            "a task left running outlived the runtime of main"
        );
    });
}

// The child-process tests: each runs an ignored test of this binary and reads what it printed.

#[klaw::test(workers = 1)]
#[ignore = "run by a_test_returning_err_fails_with_the_errors_text"]
async fn child_returning_err() -> Result<(), klaw::Error> {
    klaw::time::sleep(ms(1)).await;
    Err(klaw::Error::other("the disk is full"))
}

/// An error that is not `Send`: a timed test's body runs on a thread of its own, and its error
/// must not have to cross back.
#[derive(Debug)]
struct NotSendError(#[allow(dead_code, reason = "shown by Debug")] std::rc::Rc<str>);

#[klaw::test(workers = 1, timeout = "10s")]
#[ignore = "run by a_timed_test_returning_a_non_send_err_fails_with_the_errors_text"]
async fn child_timed_returning_a_non_send_err() -> Result<(), NotSendError> {
    klaw::time::sleep(ms(1)).await;
    Err(NotSendError("the tape is worn".into()))
}

#[klaw::test(workers = 1, timeout = "10s")]
#[ignore = "run by a_timed_test_returning_ok_passes"]
async fn child_timed_returning_ok() -> Result<(), klaw::Error> {
    // `?` converts into the declared error type, as in an untimed test.
    let answer = Handle::current()?.spawn(async { 6 * 7 }).await?;
    assert_eq!(answer, 42);
    Ok(())
}

#[klaw::test(workers = 1, timeout = "200ms")]
#[ignore = "run by a_test_whose_body_blocks_its_thread_fails_at_its_timeout"]
async fn child_blocking_its_thread() {
    std::thread::sleep(secs(30));
}

#[klaw::test(workers = 1, timeout = "200ms")]
#[ignore = "run by a_test_stuck_in_a_shield_fails_at_its_timeout"]
async fn child_stuck_in_a_shield() {
    klaw::cancel::shield(std::future::pending::<()>()).await;
}

#[test]
fn a_test_returning_err_fails_with_the_errors_text() {
    let (passed, text) =
        common::child_test_outcome("child_returning_err", secs(20)).expect("the child hung");
    assert!(!passed, "a test returning Err passed:\n{text}");
    assert!(text.contains("the disk is full"), "the error's text is missing:\n{text}");
}

#[test]
fn a_timed_test_returning_a_non_send_err_fails_with_the_errors_text() {
    let outcome = common::child_test_outcome("child_timed_returning_a_non_send_err", secs(20));
    let (passed, text) = outcome.expect("the child hung");
    assert!(!passed, "a test returning Err passed:\n{text}");
    assert!(text.contains("Error: NotSendError(\"the tape is worn\")"), "{text}");
}

#[test]
fn a_timed_test_returning_ok_passes() {
    let (passed, text) =
        common::child_test_outcome("child_timed_returning_ok", secs(20)).expect("the child hung");
    assert!(passed, "{text}");
}

#[test]
fn a_test_whose_body_blocks_its_thread_fails_at_its_timeout() {
    // `#[klaw::test(timeout)]`: "past it the test fails with a message ... instead of hanging".
    let outcome = common::child_test_outcome("child_blocking_its_thread", secs(10));
    let (passed, text) = outcome.expect("the test hung 10 s past its 200ms timeout");
    assert!(!passed);
    assert!(text.contains("did not finish within its timeout of 200ms"), "{text}");
}

#[test]
fn a_test_stuck_in_a_shield_fails_at_its_timeout() {
    let outcome = common::child_test_outcome("child_stuck_in_a_shield", secs(10));
    let (passed, text) = outcome.expect("the test hung 10 s past its 200ms timeout");
    assert!(!passed);
    assert!(text.contains("did not finish within its timeout of 200ms"), "{text}");
}

/// Logs from the body of a test, timed or not, for
/// `a_timed_test_logs_to_the_subscriber_and_span_its_test_thread_set_up`.
#[klaw::test(workers = 1, timeout = "10s")]
#[ignore = "called by a_timed_test_logs_to_the_subscriber_and_span_its_test_thread_set_up"]
async fn child_timed_logging() {
    tracing::info!("from the timed body");
}

#[klaw::test(workers = 1)]
#[ignore = "called by a_timed_test_logs_to_the_subscriber_and_span_its_test_thread_set_up"]
async fn child_untimed_logging() {
    tracing::info!("from the untimed body");
}

/// What a test attribute that captures logs does (tracing-test's `#[traced_test]` under
/// `#[tokio::test]` or `#[klaw::test]`): it sets a default subscriber on the test's thread and
/// enters a span there, then runs the test's function. A timed test's body runs on a thread of
/// its own, but its events still reach that subscriber, inside that span, as an untimed test's
/// do (and as `#[tokio::test]`'s, whose body runs on the test's thread).
#[test]
fn a_timed_test_logs_to_the_subscriber_and_span_its_test_thread_set_up() {
    within(DEADLINE, || {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Captured(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _test = tracing::info_span!("the_test_s_span").entered();
            child_untimed_logging();
            child_timed_logging();
        });
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        for message in ["from the untimed body", "from the timed body"] {
            let line = written.lines().find(|line| line.contains(message));
            let line = line.unwrap_or_else(|| panic!("{message:?} was not logged: {written}"));
            assert!(line.contains("the_test_s_span"), "logged outside the test's span: {line}");
        }
    });
}

/// A writer into a shared buffer, for a `fmt` subscriber.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// scope! options combined
// ---------------------------------------------------------------------------------------------

#[klaw::test(start_paused = true, timeout = "10s")]
async fn of_a_scope_timeout_and_deadline_the_earlier_ends_the_scope() {
    let start = klaw::time::now();
    let early_deadline = klaw::scope!(timeout = "10s", deadline = start + ms(50), |s| {
        s.spawn(std::future::pending::<()>());
        Ok(())
    });
    assert!(matches!(early_deadline, Err(Error::Elapsed(_))), "{early_deadline:?}");
    assert_eq!(klaw::time::now() - start, ms(50));

    let start = klaw::time::now();
    let early_timeout = klaw::scope!(timeout = "50ms", deadline = start + secs(10), |s| {
        s.spawn(std::future::pending::<()>());
        Ok(())
    });
    assert!(matches!(early_timeout, Err(Error::Elapsed(_))), "{early_timeout:?}");
    assert_eq!(klaw::time::now() - start, ms(50));
}

#[klaw::test(workers = 4, timeout = "10s")]
async fn a_limit_given_as_an_expression_bounds_the_children() {
    let gauge = Gauge::default();
    let allowed = 1 + 1;
    klaw::scope!(limit = allowed, |s| {
        for _ in 0..6 {
            let gauge = gauge.clone();
            s.spawn(async move {
                gauge.enter();
                klaw::time::sleep(ms(10)).await;
                gauge.leave();
            });
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(gauge.most(), 2);
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn limit_and_timeout_the_timeout_ends_both_running_and_waiting_children() {
    let started = Arc::new(AtomicUsize::new(0));
    let start = klaw::time::now();
    let result = klaw::scope!(limit = 2, timeout = "100ms", |s| {
        for _ in 0..5 {
            let started = started.clone();
            s.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                klaw::time::sleep(secs(60)).await;
            });
        }
        Ok(())
    });
    assert!(matches!(result, Err(Error::Elapsed(_))), "{result:?}");
    assert_eq!(klaw::time::now() - start, ms(100));
    assert_eq!(started.load(Ordering::SeqCst), 2, "a waiting child started after the timeout");
}

#[klaw::test(start_paused = true, timeout = "10s")]
async fn a_supervisor_scope_past_its_timeout_keeps_the_failure_that_came_before() {
    // klaw's rule: "Nothing that failed is lost ... every failure a body actually produced is in
    // the scope's result".
    let result = klaw::scope!(supervisor, limit = 2, timeout = "100ms", |s| {
        s.spawn(common::failing(1, ms(10)));
        s.spawn(std::future::pending::<()>());
        s.spawn(common::failing(2, ms(10))); // waits for a slot until the first fails
        Ok(())
    });
    let error = result.unwrap_err();
    let all: Vec<&Error> = match &error {
        Error::Scope(scope) => scope.errors().iter().collect(),
        other => vec![other],
    };
    let failed: Vec<u32> = all
        .iter()
        .filter_map(|e| match e {
            Error::Task { error: TaskError::Failed(f), .. } => {
                f.downcast_ref::<common::FetchError>().map(|f| f.0)
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed, [1, 2], "{error:?}");
    assert!(all.iter().any(|e| matches!(e, Error::Elapsed(_))), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// select!: fairness, biased, arm forms and patterns
// ---------------------------------------------------------------------------------------------

const ROUNDS: usize = 10_000;

#[klaw::test(workers = 1, timeout = "20s")]
async fn a_fair_select_gives_three_always_ready_recv_arms_a_fair_share_over_10k_rounds() {
    let (tx_a, rx_a) = klaw::channel::bounded::<()>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<()>(1);
    let (tx_c, rx_c) = klaw::channel::bounded::<()>(1);
    for tx in [&tx_a, &tx_b, &tx_c] {
        tx.try_send(()).unwrap();
    }
    let mut wins = [0usize; 3];
    for _ in 0..ROUNDS {
        klaw::select! {
            recv(rx_a) -> m => { m.unwrap(); wins[0] += 1; tx_a.try_send(()).unwrap(); }
            recv(rx_b) -> m => { m.unwrap(); wins[1] += 1; tx_b.try_send(()).unwrap(); }
            recv(rx_c) -> m => { m.unwrap(); wins[2] += 1; tx_c.try_send(()).unwrap(); }
        }
    }
    // An even share is 3333; 2800 is more than ten standard deviations below it.
    assert!(wins.iter().all(|&w| w > 2800), "{wins:?}");
}

#[klaw::test(workers = 1, timeout = "20s")]
async fn a_fair_select_shares_wins_between_every_kind_of_ready_arm() {
    let (tx, rx) = klaw::channel::bounded::<()>(1);
    let (room, _kept) = klaw::channel::bounded::<()>(ROUNDS + 1);
    tx.try_send(()).unwrap();
    let mut wins: HashMap<&str, usize> = HashMap::new();
    for _ in 0..ROUNDS {
        let past = klaw::time::now();
        let won = klaw::select! {
            recv(rx) -> m => { m.unwrap(); tx.try_send(()).unwrap(); "recv" }
            send(room, ()) -> r => { r.unwrap(); "send" }
            std::future::ready(5) -> five => { assert_eq!(five, 5); "future" }
            after(Duration::ZERO) => "after",
            at(past) => "at",
        };
        *wins.entry(won).or_default() += 1;
    }
    // An even share is 2000 each.
    assert_eq!(wins.len(), 5, "{wins:?}");
    assert!(wins.values().all(|&w| w > 1500), "{wins:?}");
}

#[klaw::test(workers = 1, timeout = "20s")]
async fn biased_always_takes_the_first_ready_arm_over_10k_rounds() {
    let (tx_a, rx_a) = klaw::channel::bounded::<()>(1);
    let (tx_b, rx_b) = klaw::channel::bounded::<()>(1);
    tx_a.try_send(()).unwrap();
    tx_b.try_send(()).unwrap();
    for round in 0..ROUNDS {
        let won = klaw::select! {
            biased;
            std::future::ready(()) -> () => 0,
            recv(rx_a) -> _ => 1,
            recv(rx_b) -> _ => 2,
            after(Duration::ZERO) => 3,
            default => 4,
        };
        assert_eq!(won, 0, "round {round}");
    }
    assert_eq!((rx_a.len(), rx_b.len()), (1, 1), "a losing arm took a message");
    drop((tx_a, tx_b));
}

#[derive(Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[klaw::test(workers = 1, timeout = "10s")]
#[allow(clippy::needless_borrowed_reference)] // a reference pattern in an arm is the case
async fn arm_patterns_destructure_tuples_structs_slices_and_references() {
    let (a, b) = klaw::select! {
        async { (1, "one") } -> (n, word) => (n, word),
    };
    assert_eq!((a, b), (1, "one"));
    let sum = klaw::select! {
        biased;
        async { Point { x: 3, y: 4 } } -> Point { x, y: why } => x + why,
        std::future::pending::<()>() -> () => 0,
    };
    assert_eq!(sum, 7);
    let first = klaw::select! {
        async { [9u8, 8, 7] } -> [head, .., tail] => (head, tail),
    };
    assert_eq!(first, (9, 7));
    let owned = String::from("borrowed");
    let len = klaw::select! {
        async { &owned } -> &ref text => text.len(),
    };
    assert_eq!(len, 8);
    let (tx, rx) = klaw::channel::bounded::<(u8, u8)>(1);
    tx.try_send((1, 2)).unwrap();
    let pair = klaw::select! {
        recv(rx) -> msg => match msg {
            Ok((left, right)) => left + right,
            Err(_) => 0,
        },
    };
    assert_eq!(pair, 3);
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_send_and_a_recv_arm_on_the_same_channel_take_turns() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    let mut seen = Vec::new();
    for n in 0..10 {
        klaw::select! {
            send(tx, n) -> res => { res.unwrap(); seen.push("sent"); }
            recv(rx) -> msg => { msg.unwrap(); seen.push("received"); }
        }
    }
    let expected: Vec<&str> =
        (0..10).map(|n| if n % 2 == 0 { "sent" } else { "received" }).collect();
    assert_eq!(seen, expected);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_single_recv_arm_with_default_polled_in_a_loop_loses_no_message() {
    let (tx, rx) = klaw::channel::bounded::<u32>(4);
    let producer = Handle::current().unwrap().spawn(async move {
        for n in 0..2000 {
            tx.send(n).await.unwrap();
        }
    });
    let mut got = Vec::new();
    let mut idle = 0usize;
    loop {
        klaw::select! {
            recv(rx) -> msg => match msg {
                Ok(n) => got.push(n),
                Err(_) => break,
            },
            default => {
                idle += 1;
                common::yield_once().await;
            }
        }
    }
    producer.await.unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<_>>(), "after {idle} idle rounds");
}

#[klaw::test(workers = 1, timeout = "10s")]
#[allow(clippy::never_loop)] // the outer loop is there for its label: the case
async fn labeled_break_and_continue_leave_a_select_in_nested_loops() {
    let (tx, rx) = klaw::channel::bounded::<u32>(16);
    for n in 0..10 {
        tx.try_send(n).unwrap();
    }
    let mut odd = Vec::new();
    'outer: loop {
        loop {
            klaw::select! {
                biased;
                recv(rx) -> msg => {
                    let n = msg.unwrap();
                    if n == 7 { break 'outer; }
                    if n % 2 == 0 { continue; }
                    odd.push(n);
                }
                default => break 'outer,
            }
        }
    }
    assert_eq!(odd, [1, 3, 5]);
    assert_eq!(rx.try_recv(), Ok(8));
}

// ---------------------------------------------------------------------------------------------
// The cooperative budget, counted per poll
// ---------------------------------------------------------------------------------------------

#[test]
fn consume_budget_yields_after_exactly_128_units_per_poll() {
    // book/src/runtime.md: "each task has a cooperative budget: 128 operations each time it is
    // polled ... once the budget is spent, the next one yields".
    let ((), polls) = common::polls_in_a_task(async {
        for _ in 0..128 * 10 {
            klaw::task::consume_budget().await;
        }
    });
    assert_eq!(polls, 10);
}

#[test]
fn a_recv_loop_on_a_full_channel_yields_once_every_128_receives() {
    let (sum, polls) = common::polls_in_a_task(async {
        let (tx, rx) = klaw::channel::unbounded::<u64>();
        for n in 0..128 * 10 {
            tx.try_send(n).unwrap();
        }
        let mut sum = 0;
        for _ in 0..128 * 10 {
            sum += rx.recv().await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..1280).sum::<u64>());
    assert_eq!(polls, 10);
}

#[test]
fn an_inline_task_spends_its_awaiting_tasks_budget() {
    let ((), polls) = common::polls_in_a_task(async {
        for _ in 0..100 {
            klaw::task::consume_budget().await;
        }
        // 28 units left in this poll: the inline task's 100 take the rest and 72 of the next.
        Task::new(async {
            for _ in 0..100 {
                klaw::task::consume_budget().await;
            }
        })
        .await
        .unwrap();
    });
    assert_eq!(polls, 2);
}

#[test]
fn unconstrained_recv_and_select_loops_never_yield() {
    let (count, polls) = common::polls_in_a_task(klaw::task::unconstrained(async {
        let (tx, rx) = klaw::channel::unbounded::<u32>();
        for n in 0..10_000 {
            tx.try_send(n).unwrap();
        }
        let mut count = 0;
        for _ in 0..5_000 {
            rx.recv().await.unwrap();
            count += 1;
        }
        for _ in 0..5_000 {
            klaw::select! {
                recv(rx) -> m => { m.unwrap(); count += 1; }
                after(secs(1)) => {}
            }
        }
        count
    }));
    assert_eq!((count, polls), (10_000, 1));
}

// ---------------------------------------------------------------------------------------------
// The task's tracing span
// ---------------------------------------------------------------------------------------------

/// Installs klaw's subscriber once and serialises the logging tests (hooks are process-wide).
fn logging() -> std::sync::MutexGuard<'static, ()> {
    static INIT: std::sync::Once = std::sync::Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INIT.call_once(|| {
        klaw::log::LogConfig::default().filter("info").without_output().init().unwrap();
    });
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[klaw::task(name = "traced")]
async fn traced(marker: &'static str) {
    klaw::time::sleep(ms(1)).await;
    tracing::info!(marker, "async");
}

#[klaw::task(blocking, name = "traced-blocking")]
fn traced_blocking(marker: &'static str) {
    tracing::info!(marker, "blocking");
}

#[test]
fn a_task_fns_span_carries_its_name_its_handles_id_and_its_scope() {
    let _serial = logging();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = klaw::log::add_hook({
        let seen = seen.clone();
        move |event| {
            if event.fields.get("marker").map(String::as_str) == Some("span-probe") {
                seen.lock().unwrap().push((
                    event.message.clone(),
                    event.task_id(),
                    event.task_name().map(str::to_owned),
                    event.scope_name().map(str::to_owned),
                ));
            }
        }
    });
    let ids = within(DEADLINE, || {
        let rt = common::runtime(2);
        rt.block_on(async {
            klaw::scope!(name = "span-scope", |s| {
                let a = s.spawn(traced("span-probe"));
                let b = s.spawn(traced_blocking("span-probe"));
                let ids = (a.id().as_u64(), b.id().as_u64());
                a.await?;
                b.await?;
                Ok(ids)
            })
        })
        .unwrap()
    });
    assert!(klaw::log::remove_hook(hook));
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let scope = Some("span-scope".to_owned());
    assert_eq!(
        seen,
        [
            ("async".to_owned(), Some(ids.0), Some("traced".to_owned()), scope.clone()),
            ("blocking".to_owned(), Some(ids.1), Some("traced-blocking".to_owned()), scope),
        ]
    );
}

#[test]
fn a_task_fn_awaited_inline_logs_in_a_span_with_its_name() {
    let _serial = logging();
    let names = Arc::new(Mutex::new(Vec::new()));
    let hook = klaw::log::add_hook({
        let names = names.clone();
        move |event| {
            if event.fields.get("marker").map(String::as_str) == Some("inline-probe") {
                names.lock().unwrap().push(event.task_name().map(str::to_owned));
            }
        }
    });
    within(DEADLINE, || {
        let rt = common::runtime(2);
        rt.block_on(rt.spawn(async {
            traced("inline-probe").await.unwrap();
            traced_blocking("inline-probe").await.unwrap();
        }))
        .unwrap();
    });
    assert!(klaw::log::remove_hook(hook));
    let names = names.lock().unwrap().clone();
    assert_eq!(names, [Some("traced".to_owned()), Some("traced-blocking".to_owned())]);
}

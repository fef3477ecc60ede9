//! Log hooks and task spans at their edges: every kind of task logs with its own id, name and
//! scope (also a child without a name inside a named task or scope, and a task that waits many
//! times on several workers); a hook gets every event from every thread; a removed or cleared
//! hook is never called once `remove_hook` / `clear_hooks` has returned, even while other
//! threads log; a panicking hook (even one whose panic payload panics when dropped) reaches
//! neither the task that logged nor the other hooks; a hook may log, add and remove hooks, and
//! capture values that log when dropped, without deadlock or endless recursion; what a task's
//! destructors log when it is cancelled or shut down carries its fields; a second `init` is a
//! typed error from any thread.
//!
//! One global subscriber per process, so the tests share it and serialise. The scenarios that
//! could hang the hook list for every later test, or overflow the stack, run in a process of
//! their own (this test binary, run again on one `#[ignore]`d test).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{DEADLINE, forward, logging, messages_and_names, ms, within};
use klaw::log::{HookId, LogConfig, LogEvent, LogInitError, add_hook, clear_hooks, remove_hook};
use klaw::task::current_task_id;
use klaw::{Runtime, Task, TaskError};

/// The id of the klaw task current where this is called, 0 outside any.
fn current() -> u64 {
    current_task_id().map_or(0, |id| id.as_u64())
}

/// A task's fields as an event shows them: (message, task id, task name, scope name).
type Seen = (String, Option<u64>, Option<String>, Option<String>);

fn seen(event: &LogEvent) -> Seen {
    (
        event.message.clone(),
        event.task_id(),
        event.task_name().map(str::to_owned),
        event.scope_name().map(str::to_owned),
    )
}

/// Logs `message` (with `marker`) when dropped: a destructor that logs.
struct LogOnDrop {
    marker: &'static str,
    message: &'static str,
}

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        tracing::info!(marker = self.marker, current = current(), "{}", self.message);
    }
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Span fields
// ---------------------------------------------------------------------------------------------

#[test]
fn every_kind_of_scope_child_logs_with_its_own_id_its_name_and_its_scope() {
    let _serial = logging();
    let (hook, events) = forward("kinds");
    within(DEADLINE, || {
        let rt = runtime(2);
        rt.block_on(async {
            klaw::scope!(name = "kinds", |s| {
                s.spawn(
                    Task::new(async {
                        tracing::info!(marker = "kinds", current = current(), "parallel")
                    })
                    .name("par"),
                );
                s.spawn_local(
                    Task::new(async {
                        tracing::info!(marker = "kinds", current = current(), "local")
                    })
                    .name("loc"),
                );
                s.spawn_blocking(|| {
                    tracing::info!(marker = "kinds", current = current(), "blocking")
                });
                let ((), started) = s
                    .start(|ready| {
                        Task::new(async move {
                            ready.ready(());
                            tracing::info!(marker = "kinds", current = current(), "started");
                        })
                        .name("st")
                    })
                    .await?;
                started.await?;
                Ok(())
            })
        })
        .unwrap();
    });
    assert!(remove_hook(hook));
    let events: Vec<LogEvent> = events.try_iter().collect();
    assert_eq!(events.len(), 4, "{events:?}");
    let mut by_message = BTreeMap::new();
    for event in &events {
        let current: u64 = event.fields["current"].parse().unwrap();
        assert_ne!(current, 0, "logged in a task: {event:?}");
        assert_eq!(event.task_id(), Some(current), "the span's id is the task's: {event:?}");
        by_message.insert(event.message.as_str(), (event.task_name(), event.scope_name()));
    }
    let kinds = Some("kinds");
    assert_eq!(by_message["parallel"], (Some("par"), kinds));
    assert_eq!(by_message["local"], (Some("loc"), kinds));
    assert_eq!(by_message["blocking"], (None, kinds));
    assert_eq!(by_message["started"], (Some("st"), kinds));
}

/// `task_name()` is "the name of the klaw task the event happened in, if it has one": a child
/// without a name, spawned by a named task, has none; it does not borrow its parent's.
#[test]
fn an_unnamed_child_of_a_named_task_logs_without_a_name() {
    let _serial = logging();
    let (hook, events) = forward("unnamed");
    let parent = within(DEADLINE, || {
        let rt = runtime(2);
        let parent = rt.spawn(
            Task::new(async {
                tracing::info!(marker = "unnamed", current = current(), "parent");
                klaw::scope!(|s| {
                    s.spawn(async {
                        tracing::info!(marker = "unnamed", current = current(), "parallel")
                    });
                    s.spawn_local(async {
                        tracing::info!(marker = "unnamed", current = current(), "local")
                    });
                    s.spawn_blocking(|| {
                        tracing::info!(marker = "unnamed", current = current(), "blocking")
                    });
                    Ok(())
                })
                .unwrap();
                // Awaited inline: a task of its own (own span, own id), without a name.
                Task::new(async { tracing::info!(marker = "unnamed", "inline") }).await.unwrap();
            })
            .name("parent"),
        );
        let id = parent.id().as_u64();
        rt.block_on(parent).unwrap();
        id
    });
    assert!(remove_hook(hook));
    let events: Vec<LogEvent> = events.try_iter().collect();
    assert_eq!(events.len(), 5, "{events:?}");
    for event in &events {
        match event.message.as_str() {
            "parent" => assert_eq!(
                (event.task_id(), event.task_name()),
                (Some(parent), Some("parent")),
                "{event:?}"
            ),
            "inline" => {
                assert_ne!(event.task_id(), Some(parent), "an inline task has its own id");
                assert_eq!(event.task_name(), None, "{:?}", seen(event));
            }
            _ => {
                let current: u64 = event.fields["current"].parse().unwrap();
                assert_eq!(event.task_id(), Some(current), "{:?}", seen(event));
                assert_eq!(event.task_name(), None, "{:?}", seen(event));
            }
        }
    }
}

/// The book: "`scope` for the children of a named scope". A child of an unnamed scope has no
/// scope name, even when that scope runs in a child of a named one; a named inner scope wins.
#[test]
fn a_child_of_an_unnamed_scope_inside_a_named_one_logs_without_a_scope_name() {
    let _serial = logging();
    let (hook, events) = forward("nested-scopes");
    within(DEADLINE, || {
        let rt = runtime(2);
        rt.block_on(async {
            klaw::scope!(name = "outer", |s| {
                s.spawn(
                    Task::new(async {
                        tracing::info!(marker = "nested-scopes", "middle");
                        klaw::scope!(|anonymous| {
                            anonymous.spawn(
                                Task::new(async {
                                    tracing::info!(marker = "nested-scopes", "in unnamed")
                                })
                                .name("leaf"),
                            );
                            Ok(())
                        })
                        .unwrap();
                        klaw::scope!(name = "inner", |named| {
                            named.spawn(
                                Task::new(async {
                                    tracing::info!(marker = "nested-scopes", "in inner")
                                })
                                .name("leaf"),
                            );
                            Ok(())
                        })
                        .unwrap();
                    })
                    .name("middle"),
                );
                Ok(())
            })
        })
        .unwrap();
    });
    assert!(remove_hook(hook));
    let seen = messages_and_names(&events);
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        seen,
        [
            ("in inner".to_owned(), some("leaf"), some("inner")),
            ("in unnamed".to_owned(), some("leaf"), None),
            ("middle".to_owned(), some("middle"), some("outer")),
        ]
    );
}

#[test]
fn a_task_keeps_its_own_fields_on_every_poll_across_workers() {
    let _serial = logging();
    let (hook, events) = forward("moving");
    const TASKS: usize = 16;
    const STEPS: usize = 30;
    let ids = within(DEADLINE, || {
        let rt = runtime(4);
        let handles: Vec<_> = (0..TASKS)
            .map(|n| {
                rt.spawn(
                    Task::new(async move {
                        for step in 0..STEPS {
                            // Woken by the timer, so any worker may take the task next.
                            klaw::time::sleep(Duration::from_micros(200)).await;
                            tracing::info!(marker = "moving", current = current(), n, step, "step");
                        }
                    })
                    .name(format!("mover-{n}")),
                )
            })
            .collect();
        let ids: Vec<u64> = handles.iter().map(|h| h.id().as_u64()).collect();
        for handle in handles {
            rt.block_on(handle).unwrap();
        }
        ids
    });
    assert!(remove_hook(hook));
    let events: Vec<LogEvent> = events.try_iter().collect();
    assert_eq!(events.len(), TASKS * STEPS);
    for event in &events {
        let n: usize = event.fields["n"].parse().unwrap();
        let current: u64 = event.fields["current"].parse().unwrap();
        assert_eq!(current, ids[n]);
        assert_eq!(event.task_id(), Some(ids[n]), "{:?}", seen(event));
        assert_eq!(event.task_name(), Some(format!("mover-{n}").as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Every event, from every thread
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hook_receives_every_event_from_every_thread_and_every_worker() {
    let _serial = logging();
    const THREADS: usize = 8;
    const PER_THREAD: usize = 2_000;
    const TASKS: usize = 8;
    const PER_TASK: usize = 500;
    let counted = Arc::new(AtomicUsize::new(0));
    let count = counted.clone();
    let hook = add_hook(move |event| {
        if event.fields.get("marker").map(String::as_str) == Some("everywhere") {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    within(DEADLINE, || {
        let rt = runtime(2);
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                rt.spawn(async {
                    for i in 0..PER_TASK {
                        tracing::info!(marker = "everywhere", i, "from a task");
                        if i % 50 == 0 {
                            klaw::time::sleep(Duration::from_micros(10)).await;
                        }
                    }
                })
            })
            .collect();
        let blocking: Vec<_> = (0..TASKS)
            .map(|_| {
                rt.spawn_blocking(|| {
                    for i in 0..PER_TASK {
                        tracing::info!(marker = "everywhere", i, "from the pool");
                    }
                })
            })
            .collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                std::thread::spawn(|| {
                    for i in 0..PER_THREAD {
                        tracing::info!(marker = "everywhere", i, "from a thread");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for task in tasks {
            rt.block_on(task).unwrap();
        }
        for task in blocking {
            rt.block_on(task).unwrap();
        }
    });
    assert!(remove_hook(hook));
    assert_eq!(counted.load(Ordering::SeqCst), THREADS * PER_THREAD + 2 * TASKS * PER_TASK);
}

// ---------------------------------------------------------------------------------------------
// Removal, against events from other threads
// ---------------------------------------------------------------------------------------------

/// Threads that log without pause (marker "background") until dropped.
struct Chatter {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Chatter {
    fn start(threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        tracing::info!(marker = "background", "chatter");
                    }
                })
            })
            .collect();
        Chatter { stop, threads }
    }
}

impl Drop for Chatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A hook that takes a moment on every event: hooks run one after another, so the hooks after
/// it are called a moment after the event began.
fn slow_hook() -> HookId {
    add_hook(|_| std::thread::sleep(Duration::from_micros(50)))
}

/// The book: "A removed hook receives nothing more" (and klaw's rule: removed hooks do not receive
/// events). Once `remove_hook` has returned, the hook is not called again, by any thread; as
/// with a callback registry in tokio or a `Drop`-based unsubscribe, the caller may then free what
/// the hook uses.
#[test]
fn a_removed_hook_is_never_called_after_remove_hook_returns() {
    let _serial = logging();
    let late = Arc::new(AtomicUsize::new(0));
    within(DEADLINE, {
        let late = late.clone();
        move || {
            let slow = slow_hook();
            let chatter = Chatter::start(3);
            for _ in 0..300 {
                let removed = Arc::new(AtomicBool::new(false));
                let (flag, late) = (removed.clone(), late.clone());
                let id = add_hook(move |_| {
                    if flag.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                });
                std::thread::sleep(Duration::from_micros(100));
                assert!(remove_hook(id));
                removed.store(true, Ordering::SeqCst);
            }
            drop(chatter);
            assert!(remove_hook(slow));
        }
    });
    assert_eq!(late.load(Ordering::SeqCst), 0, "calls of hooks after remove_hook returned");
}

/// `clear_hooks` the same: no hook it removed runs after it returns.
#[test]
fn no_hook_is_called_after_clear_hooks_returns() {
    let _serial = logging();
    let late = Arc::new(AtomicUsize::new(0));
    within(DEADLINE, {
        let late = late.clone();
        move || {
            let chatter = Chatter::start(3);
            for _ in 0..300 {
                let cleared = Arc::new(AtomicBool::new(false));
                slow_hook();
                let (flag, late) = (cleared.clone(), late.clone());
                add_hook(move |_| {
                    if flag.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                });
                std::thread::sleep(Duration::from_micros(100));
                clear_hooks();
                cleared.store(true, Ordering::SeqCst);
            }
            drop(chatter);
        }
    });
    assert_eq!(late.load(Ordering::SeqCst), 0, "calls of hooks after clear_hooks returned");
}

// ---------------------------------------------------------------------------------------------
// Panicking hooks
// ---------------------------------------------------------------------------------------------

#[test]
fn a_panicking_hook_fails_no_task_that_logs_and_stops_no_later_hook() {
    let _serial = logging();
    let broken = add_hook(|event| {
        if event.fields.get("marker").map(String::as_str) == Some("hook-panics") {
            panic!("a broken hook");
        }
    });
    let (hook, events) = forward("hook-panics");
    within(DEADLINE, || {
        let rt = runtime(2);
        let parallel = rt.spawn(async { tracing::info!(marker = "hook-panics", "parallel") });
        let blocking = rt.spawn_blocking(|| tracing::info!(marker = "hook-panics", "blocking"));
        assert_eq!(rt.block_on(parallel), Ok(()));
        assert_eq!(rt.block_on(blocking), Ok(()));
        rt.block_on(async {
            klaw::scope!(|s| {
                s.spawn_local(async { tracing::info!(marker = "hook-panics", "local") });
                Ok(())
            })
        })
        .unwrap();
        // The runtime still runs tasks on both workers.
        let after: Vec<_> = (0..4).map(|n| rt.spawn(async move { n })).collect();
        assert_eq!(common::join_all(&rt, after), [0, 1, 2, 3]);
    });
    assert!(remove_hook(broken) && remove_hook(hook));
    let mut messages: Vec<String> = events.try_iter().map(|e| e.message).collect();
    messages.sort();
    assert_eq!(messages, ["blocking", "local", "parallel"]);
}

/// A panic payload whose own destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the panic payload panicked as it was dropped");
        }
    }
}

/// The book: "a panicking hook neither reaches the code that logged nor stops the other hooks",
/// whatever it panics with (klaw contains a destructor's panic payload the same way, by not
/// dropping a payload that could panic again).
#[test]
fn a_hook_whose_panic_payload_panics_when_dropped_does_not_reach_the_task_that_logged() {
    let _serial = logging();
    let broken = add_hook(|event| {
        if event.fields.get("marker").map(String::as_str) == Some("payload-panics") {
            std::panic::panic_any(PanicsWhenDropped);
        }
    });
    let (hook, events) = forward("payload-panics");
    let outcome = within(DEADLINE, || {
        let rt = runtime(1);
        let outcome = rt.block_on(rt.spawn(async {
            tracing::info!(marker = "payload-panics", "logged");
            "finished"
        }));
        // The worker survived: it still runs tasks.
        assert_eq!(rt.block_on(rt.spawn(async { 7 })), Ok(7));
        outcome
    });
    assert!(remove_hook(broken) && remove_hook(hook));
    assert_eq!(outcome, Ok("finished"));
    assert_eq!(events.try_iter().map(|e| e.message).collect::<Vec<_>>(), ["logged"]);
}

// ---------------------------------------------------------------------------------------------
// Re-entrancy
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hook_may_log_add_and_remove_hooks_and_remove_itself_while_it_runs() {
    let _serial = logging();
    let (nested_hook, nested) = forward("nested");
    let own_id: Arc<Mutex<Option<HookId>>> = Arc::default();
    let me = own_id.clone();
    let id = add_hook(move |event| {
        if event.fields.get("marker").map(String::as_str) == Some("reenter") {
            let extra = add_hook(|_| {});
            assert!(remove_hook(extra));
            tracing::info!(marker = "nested", "logged by a hook");
            if let Some(me) = me.lock().unwrap().take() {
                assert!(remove_hook(me), "the hook removes itself");
            }
        }
    });
    *own_id.lock().unwrap() = Some(id);
    within(DEADLINE, || {
        let rt = runtime(2);
        rt.block_on(rt.spawn(async { tracing::info!(marker = "reenter", "first") })).unwrap();
        std::thread::spawn(|| tracing::info!(marker = "reenter", "second")).join().unwrap();
    });
    assert!(!remove_hook(id), "the hook removed itself on the first event");
    assert!(remove_hook(nested_hook));
    // The book: "An event a hook logs itself goes to the output but not to the hooks again".
    assert_eq!(nested.try_iter().count(), 0, "an event a hook logs reached the hooks");
}

/// Runs the `#[ignore]`d test `name` of this binary in a process of its own (with
/// `KLAW_LOGGING_EDGES_CHILD` set, so it runs for real): its output and whether it passed, or
/// `None` if it did not end within the deadline (then it is killed).
fn in_child_process(name: &str) -> Option<(bool, String)> {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("KLAW_LOGGING_EDGES_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            let ran = text.contains("1 passed") || text.contains("1 failed");
            assert!(ran || !output.status.success(), "the child test did not run: {text}");
            return Some((output.status.success(), text));
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(ms(20));
    }
}

fn is_child() -> bool {
    std::env::var_os("KLAW_LOGGING_EDGES_CHILD").is_some()
}

/// A hook that logs on every event it gets. tracing's own dispatcher does not hand an event
/// logged inside a subscriber back to that subscriber (its re-entrancy guard for scoped
/// dispatchers); a tokio/tracing user expects such a hook to end, not to overflow the stack and
/// abort the process.
#[test]
fn a_hook_that_logs_on_every_event_does_not_recurse_without_end() {
    let _serial = logging();
    let outcome = in_child_process("child_a_hook_that_logs_on_every_event");
    let (passed, output) = outcome.expect("the child process hung");
    assert!(passed, "the child process failed: {output}");
}

#[test]
#[ignore = "run in a process of its own by a_hook_that_logs_on_every_event_does_not_recurse_without_end"]
fn child_a_hook_that_logs_on_every_event() {
    if !is_child() {
        return;
    }
    let _serial = logging();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let id = add_hook(move |event| {
        counter.fetch_add(1, Ordering::SeqCst);
        tracing::info!(seen = %event.message, "a hook logs what it saw");
    });
    tracing::info!("the first event");
    assert!(remove_hook(id));
    // Once, for the first event: the event the hook logs goes to the output only.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A hook's closure is dropped when it is removed; a value it captured may log as it is dropped
/// (a guard, a connection that says it closed). That must not deadlock the hook list.
#[test]
fn removing_a_hook_whose_captured_values_log_when_dropped_does_not_deadlock() {
    let _serial = logging();
    let outcome = in_child_process("child_removing_a_hook_whose_captures_log");
    let (passed, output) = outcome.expect("the child process hung: remove_hook deadlocked");
    assert!(passed, "the child process failed: {output}");
}

#[test]
#[ignore = "run in a process of its own by removing_a_hook_whose_captured_values_log_when_dropped_does_not_deadlock"]
fn child_removing_a_hook_whose_captures_log() {
    if !is_child() {
        return;
    }
    let _serial = logging();
    let (keeper, events) = forward("hook-dropped");
    let guard = LogOnDrop { marker: "hook-dropped", message: "the hook's capture was dropped" };
    let id = add_hook(move |_| {
        let _ = &guard;
    });
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let removed = remove_hook(id);
        let _ = done.send(removed);
    });
    assert_eq!(finished.recv_timeout(ms(5_000)), Ok(true), "remove_hook did not return");
    assert!(remove_hook(keeper));
    let messages: Vec<String> = events.try_iter().map(|e| e.message).collect();
    assert_eq!(messages, ["the hook's capture was dropped"]);
}

/// `KLAW_LOG=warn`, a usual production filter: a task's span only carries context, so a
/// `warn!` or `error!` inside a task is written, and given to hooks, with the task's id, name
/// and scope, as with `info` (tracing's rule for context spans: every filter that lets an event
/// through enables them). What is below the filter is still dropped.
#[test]
fn a_warn_filter_keeps_the_task_fields_on_what_tasks_log() {
    let _serial = logging();
    let outcome = in_child_process("child_logs_at_warn_inside_a_task");
    let (passed, output) = outcome.expect("the child process hung");
    assert!(passed, "the child process failed: {output}");
    let line = |message: &str| {
        output.lines().find(|line| line.contains(message)).unwrap_or_else(|| {
            panic!("no line says {message:?}: {output}");
        })
    };
    for message in ["the disk is almost full", "the disk is full"] {
        let written = line(message);
        assert!(
            written.contains("task.name=\"disk-watch\"") && written.contains("scope=\"jobs\""),
            "written without the task's fields: {written}"
        );
    }
    assert!(!output.contains("below the filter"), "{output}");
}

#[test]
#[ignore = "run in a process of its own by a_warn_filter_keeps_the_task_fields_on_what_tasks_log"]
fn child_logs_at_warn_inside_a_task() {
    if !is_child() {
        return;
    }
    let env = |name: &str| (name == klaw::log::LOG_ENV).then(|| "warn".to_owned());
    LogConfig::from_lookup(env).unwrap().init().unwrap();
    let (hook, events) = forward("warn-filter");
    let rt = runtime(2);
    let id = rt.block_on(async {
        klaw::scope!(name = "jobs", |s| {
            let watch = s.spawn(
                Task::new(async {
                    tracing::info!(marker = "warn-filter", "below the filter");
                    tracing::warn!(marker = "warn-filter", "the disk is almost full");
                    tracing::error!(marker = "warn-filter", "the disk is full");
                    current()
                })
                .name("disk-watch"),
            );
            Ok(watch.await?)
        })
        .unwrap()
    });
    assert!(remove_hook(hook));
    let mut seen: Vec<Seen> = events.try_iter().map(|e| seen(&e)).collect();
    seen.sort();
    let fields = (Some(id), Some("disk-watch".to_owned()), Some("jobs".to_owned()));
    let expected: Vec<Seen> = ["the disk is almost full", "the disk is full"]
        .map(|message| (message.to_owned(), fields.0, fields.1.clone(), fields.2.clone()))
        .into();
    assert_eq!(seen, expected);
}

// ---------------------------------------------------------------------------------------------
// Cancellation and shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn what_a_cancelled_task_logs_while_its_body_is_dropped_carries_its_fields() {
    let _serial = logging();
    let (hook, events) = forward("cancelled");
    let (running_id, unstarted_id) = within(DEADLINE, || {
        let rt = runtime(1);
        let (entered, is_entered) = mpsc::channel();
        let running = rt.spawn(
            Task::new(async move {
                let _guard = LogOnDrop { marker: "cancelled", message: "running, dropped" };
                entered.send(()).unwrap();
                std::future::pending::<()>().await;
            })
            .name("running"),
        );
        is_entered.recv_timeout(ms(10_000)).unwrap();
        // The only worker is held, so this one is cancelled before it ever runs.
        let (release, blocker) = common::occupy_worker(&rt);
        let guard = LogOnDrop { marker: "cancelled", message: "unstarted, dropped" };
        let unstarted = rt.spawn(
            Task::new(async move {
                let _guard = guard;
            })
            .name("unstarted"),
        );
        assert!(unstarted.cancel("not wanted"));
        assert!(running.cancel("stop"));
        release.send(()).unwrap();
        let ids = (running.id().as_u64(), unstarted.id().as_u64());
        assert!(matches!(rt.block_on(running), Err(TaskError::Cancelled(_))));
        assert!(matches!(rt.block_on(unstarted), Err(TaskError::Cancelled(_))));
        rt.block_on(blocker).unwrap();
        ids
    });
    assert!(remove_hook(hook));
    let mut seen: Vec<Seen> = events.try_iter().map(|e| seen(&e)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("running, dropped".to_owned(), Some(running_id), Some("running".to_owned()), None),
            (
                "unstarted, dropped".to_owned(),
                Some(unstarted_id),
                Some("unstarted".to_owned()),
                None
            ),
        ]
    );
}

#[test]
fn what_tasks_log_while_the_runtime_shuts_down_reaches_hooks_with_their_fields() {
    let _serial = logging();
    let (hook, events) = forward("shutdown");
    let (ids, report) = within(DEADLINE, || {
        let rt = runtime(2);
        let (entered, is_entered) = mpsc::channel();
        let handles: Vec<_> = (0..3)
            .map(|n| {
                let entered = entered.clone();
                rt.spawn(
                    Task::new(async move {
                        let _guard =
                            LogOnDrop { marker: "shutdown", message: "dropped at shutdown" };
                        entered.send(()).unwrap();
                        klaw::time::sleep(Duration::from_secs(60)).await;
                    })
                    .name(format!("sleeper-{n}")),
                )
            })
            .collect();
        for _ in 0..3 {
            is_entered.recv_timeout(ms(10_000)).unwrap();
        }
        let ids: Vec<u64> = handles.iter().map(|h| h.id().as_u64()).collect();
        let report = rt.shutdown(ms(50));
        (ids, report.cancelled)
    });
    assert!(remove_hook(hook));
    assert_eq!(report, 3);
    let mut seen: Vec<(Option<u64>, Option<String>)> =
        events.try_iter().map(|e| (e.task_id(), e.task_name().map(str::to_owned))).collect();
    seen.sort();
    let expected: Vec<_> =
        ids.iter().enumerate().map(|(n, id)| (Some(*id), Some(format!("sleeper-{n}")))).collect();
    assert_eq!(seen, expected);
}

// ---------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------

#[test]
fn init_from_many_threads_at_once_is_a_typed_error_never_a_panic() {
    let _serial = logging();
    let results = within(DEADLINE, || {
        let threads: Vec<_> = (0..8)
            .map(|n| {
                std::thread::spawn(move || {
                    if n % 2 == 0 {
                        klaw::log::init()
                    } else {
                        LogConfig::default().without_output().init()
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("init panicked")).collect::<Vec<_>>()
    });
    assert!(results.iter().all(|r| *r == Err(LogInitError::AlreadyInitialized)), "{results:?}");
    // Hooks still work after the failed attempts.
    let (hook, events) = forward("after-init");
    tracing::info!(marker = "after-init", "still delivered");
    assert!(remove_hook(hook));
    assert_eq!(events.try_iter().count(), 1);
}

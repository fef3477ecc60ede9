//! Log hooks really receive events (a hook that is never wired into the pipeline receives
//! nothing, silently): with the task's fields, and never after they are removed. One global
//! subscriber per process, so the tests share it and serialise.

mod common;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use common::{forward, logging, messages_and_names};

use klaw::log::{LogConfig, LogEvent, LogInitError, add_hook, clear_hooks, remove_hook};
use klaw::{Runtime, Task};

#[test]
fn a_hook_receives_events_from_a_task_with_the_task_fields() {
    let _serial = logging();
    let (id, events) = forward("in-task");
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handle = rt.spawn(
        Task::new(async { tracing::warn!(marker = "in-task", rows = 42, "loaded the table") })
            .name("loader"),
    );
    let task_id = handle.id().as_u64();
    rt.block_on(handle).unwrap();
    let blocking = rt.spawn_blocking(|| tracing::info!(marker = "in-task", "from the pool"));
    let blocking_id = blocking.id().as_u64();
    rt.block_on(blocking).unwrap();
    assert!(remove_hook(id));

    let events: Vec<LogEvent> = events.try_iter().collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let async_event = &events[0];
    assert_eq!(async_event.message, "loaded the table");
    assert_eq!(async_event.level, tracing::Level::WARN);
    assert_eq!(async_event.fields["rows"], "42");
    assert_eq!(async_event.task_id(), Some(task_id));
    assert_eq!(async_event.task_name(), Some("loader"));
    assert_eq!((events[1].task_id(), events[1].task_name()), (Some(blocking_id), None));
}

#[test]
fn a_scope_child_logs_with_its_name_and_its_scope() {
    let _serial = logging();
    let (id, events) = forward("in-scope");
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(async {
        klaw::scope!(name = "importer", |s| {
            s.spawn(
                Task::new(async { tracing::info!(marker = "in-scope", "parallel") }).name("rows"),
            );
            s.spawn_blocking(|| tracing::info!(marker = "in-scope", "blocking"));
            s.spawn_local(async { tracing::info!(marker = "in-scope", "local") });
            Ok(())
        })
    })
    .unwrap();
    assert!(remove_hook(id));
    let seen = messages_and_names(&events);
    let importer = Some("importer".to_owned());
    assert_eq!(
        seen,
        [
            ("blocking".to_owned(), None, importer.clone()),
            ("local".to_owned(), None, importer.clone()),
            ("parallel".to_owned(), Some("rows".to_owned()), importer),
        ]
    );
}

#[test]
fn a_removed_hook_receives_nothing() {
    let _serial = logging();
    let (id, events) = forward("removal");
    tracing::info!(marker = "removal", "before");
    assert!(remove_hook(id));
    assert!(!remove_hook(id), "a hook is removed once");
    tracing::info!(marker = "removal", "after");
    let messages: Vec<_> = events.try_iter().map(|e| e.message).collect();
    assert_eq!(messages, ["before"]);
}

#[test]
fn clear_hooks_removes_every_hook() {
    let _serial = logging();
    let (_a, first) = forward("clear");
    let (_b, second) = forward("clear");
    clear_hooks();
    tracing::info!(marker = "clear", "nobody listens");
    assert!(first.recv_timeout(Duration::from_millis(10)).is_err());
    assert!(second.try_recv().is_err());
}

#[test]
fn a_panicking_hook_is_contained_and_the_others_still_run() {
    let _serial = logging();
    let broken = add_hook(|event| {
        if event.fields.contains_key("marker") {
            panic!("a broken hook");
        }
    });
    let (id, events) = forward("contained");
    tracing::info!(marker = "contained", "still delivered");
    assert_eq!(events.try_recv().map(|e| e.message), Ok("still delivered".to_owned()));
    assert!(remove_hook(broken) && remove_hook(id));
}

#[test]
fn events_below_the_filter_reach_no_hook() {
    let _serial = logging();
    let (id, events) = forward("filtered");
    tracing::debug!(marker = "filtered", "below info");
    assert!(events.try_recv().is_err());
    assert!(remove_hook(id));
}

#[test]
fn bad_settings_and_a_second_init_are_typed_errors() {
    let _serial = logging();
    let env = |value: &'static str| {
        move |name: &str| (name == klaw::log::LOG_FORMAT_ENV).then(|| value.to_owned())
    };
    let err = LogConfig::from_lookup(env("yaml")).unwrap_err();
    assert_eq!(err, LogInitError::BadFormat { value: "yaml".into() });
    assert!(err.to_string().contains("KLAW_LOG_FORMAT") && err.to_string().contains("json"));
    let bad_filter = LogConfig::default().filter("info,[broken").init().unwrap_err();
    assert!(matches!(bad_filter, LogInitError::BadFilter { .. }), "{bad_filter}");
    assert_eq!(LogConfig::default().init(), Err(LogInitError::AlreadyInitialized));
}

/// The `error` field of each "dropped before it returned" event that `run` logs.
fn failures_of_dropped_scopes_logged_while(run: impl FnOnce()) -> Vec<Option<String>> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let id = add_hook(move |event| {
        if event.message.contains("dropped before it returned") {
            let _ = tx.lock().unwrap().send(event.fields.get("error").cloned());
        }
    });
    run();
    assert!(remove_hook(id));
    rx.try_iter().collect()
}

#[test]
fn a_failure_an_inner_scope_hands_to_an_outer_one_dropped_outside_any_task_is_logged() {
    let _serial = logging();
    let logged = failures_of_dropped_scopes_logged_while(|| {
        let rt = Runtime::builder().workers(2).build().unwrap();
        // `block_on`'s root future is no frame: the outer scope, dropped there, has nothing above
        // it; the inner one, dropped with the outer's body, hands its failure to the outer one.
        let failed = common::Flag::default();
        let failing = failed.clone();
        rt.block_on(async {
            let outer = async move {
                klaw::scope!(|_outer| {
                    klaw::scope!(supervisor, |inner| {
                        inner.spawn(Task::fallible(async move {
                            failing.set(); // in the poll that fails: the failure exists once set
                            Err::<(), _>(std::io::Error::other("disk on fire"))
                        }));
                        std::future::pending::<()>().await;
                        Ok(())
                    })?;
                    Ok(())
                })
            };
            // Dropped once the child failed (a child dropped before its first poll never runs,
            // and would have nothing to hand on).
            klaw::select! {
                outer -> _ => {},
                common::until(|| failed.is_set()) -> _ => {},
            }
        });
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].as_deref().is_some_and(|error| error.contains("disk on fire")), "{logged:?}");
}

#[test]
fn a_failure_in_a_scope_dropped_before_it_returned_is_logged() {
    let _serial = logging();
    let logged = failures_of_dropped_scopes_logged_while(|| {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let region = klaw::cancel::Region::new();
        let stop = region.token();
        let outcome = rt.block_on(region.run(async {
            klaw::scope!(|s| {
                // Still running when the region's cancel drops the scope; it fails afterwards.
                // The closure cancels the region itself, once it runs: a blocking job cancelled
                // while still queued is withdrawn and never runs, and would not fail.
                s.spawn(klaw::task::BlockingTask::fallible(move || {
                    stop.cancel("stop");
                    std::thread::sleep(Duration::from_millis(50));
                    Err::<(), _>(std::io::Error::other("disk on fire"))
                }));
                Ok(())
            })
        }));
        assert!(outcome.is_err());
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].as_deref().is_some_and(|error| error.contains("disk on fire")), "{logged:?}");
}

/// A top-level task whose handle was dropped fails: no scope collects the failure and no handle
/// can take it, so it is logged when it is dropped, once, with the task's id and name. A failure
/// its handle takes is not. Book (Tasks and handles): "nobody can take it, so it is dropped then,
/// and logged as a warning".
#[test]
fn a_failure_nobody_can_take_is_logged_once() {
    let _serial = logging();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let id = add_hook(move |event| {
        if event.message.contains("nobody takes the failure") {
            let _ = tx.lock().unwrap().send(event.clone());
        }
    });
    let rt = Runtime::builder().workers(2).build().unwrap();
    let unseen = rt.spawn(
        Task::fallible(async { Err::<(), _>(std::io::Error::other("disk on fire")) })
            .name("unseen"),
    );
    let unseen_id = unseen.id().as_u64();
    drop(unseen);
    let event = rx.recv_timeout(Duration::from_secs(10)).expect("the failure was logged");
    let seen = rt.spawn(Task::fallible(async { Err::<(), _>(std::io::Error::other("seen")) }));
    assert!(rt.block_on(seen).is_err());
    drop(rt);
    assert!(remove_hook(id));
    assert_eq!(event.level, tracing::Level::WARN);
    assert_eq!(event.fields["task.id"], unseen_id.to_string());
    assert_eq!(event.fields["task.name"], "unseen");
    assert!(rx.try_recv().is_err(), "logged once, and only the failure nobody took");
}

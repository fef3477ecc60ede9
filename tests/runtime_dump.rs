//! `Runtime::dump`: the live tree of scopes and tasks, tested on a deliberately stuck program.

mod common;

use klaw::Task;

/// A pipeline whose body forgot to `drop(tx)`: the consumer waits for a message that never comes,
/// so the scope never ends. Runs until `stop` says otherwise.
async fn forgotten_drop(stop: klaw::channel::oneshot::Receiver<()>) -> Result<(), klaw::Error> {
    klaw::scope!(name = "pipeline", |s| {
        let (tx, rx) = klaw::channel::bounded::<u32>(4);
        s.spawn(
            Task::new(async move {
                let mut sum = 0;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            })
            .name("consumer"),
        );
        s.spawn(
            Task::new(async move {
                klaw::scope!(name = "uploads", |inner| {
                    inner.spawn(Task::new(std::future::pending::<()>()).name("upload"));
                    Ok(())
                })
            })
            .name("uploader"),
        );
        tx.send(1).await?;
        let _ = stop.await; // stands in for the rest of the program
        s.cancel("the test is over");
        Ok(())
    })
}

#[test]
fn the_dump_of_a_stuck_tree_names_every_scope_and_task_where_it_waits() {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    let (stop_tx, stop_rx) = klaw::channel::oneshot::channel();
    let program = rt.spawn(Task::new(forgotten_drop(stop_rx)).name("main-loop"));
    // Stuck for good once every task waits (a task in the middle of a poll is not listed) and
    // the consumer waits for its next message.
    let tree = common::dump_when(&rt, "the tree is built and every task waits", |tree| {
        [
            "task `main-loop`",
            "scope `pipeline`",
            "task `uploader`",
            "scope `uploads`",
            "task `upload`",
        ]
        .iter()
        .all(|needle| tree.contains(needle))
            && tree
                .lines()
                .any(|line| line.contains("task `consumer`") && line.contains("first waited"))
    });
    let line = |needle: &str| {
        tree.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{tree}"))
            .to_owned()
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    assert!(tree.starts_with("klaw runtime: "), "{tree}");
    let main_loop = line("task `main-loop`");
    let pipeline = line("scope `pipeline`");
    let consumer = line("task `consumer`");
    let uploader = line("task `uploader`");
    let uploads = line("scope `uploads`");
    let upload = line("task `upload`");
    // The nesting: task, its scope, the scope's children, a child's own scope and its child.
    assert!(indent(&main_loop) < indent(&pipeline));
    assert!(indent(&pipeline) < indent(&consumer));
    assert_eq!(indent(&consumer), indent(&uploader));
    assert!(indent(&uploader) < indent(&uploads));
    assert!(indent(&uploads) < indent(&upload));
    // Where and how long: the consumer has waited, and says so.
    assert!(consumer.contains("first waited"), "{consumer}");
    assert!(pipeline.contains("2 children not ended"), "{pipeline}");

    stop_tx.send(()).unwrap();
    let result = rt.block_on(program);
    assert!(matches!(result, Ok(Err(_))), "the scope was cancelled: {result:?}");
    let after = rt.dump().to_string();
    assert!(!after.contains("pipeline"), "a closed scope leaves the dump:\n{after}");
}

#[test]
fn the_dump_shows_children_waiting_for_a_slot() {
    let rt = klaw::Runtime::builder().workers(1).build().unwrap();
    let (stop_tx, stop_rx) = klaw::channel::oneshot::channel::<()>();
    let program = rt.spawn(async move {
        klaw::scope!(name = "crawl", limit = 2, |s| {
            for _ in 0..10 {
                s.spawn(std::future::pending::<()>());
            }
            let _ = stop_rx.await;
            Ok(())
        })
    });
    // The body spawns the ten at once; the dump may come before it ran.
    common::dump_when(&rt, "eight children wait for a slot", |tree| {
        tree.contains("8 waiting for a slot (limit 2)")
    });
    stop_tx.send(()).unwrap();
    program.cancel("done");
    let _ = rt.block_on(program);
}

/// A `#[klaw::test]` whose timeout expires prints the tree as it was when it expired (before its
/// cancellation tore it down): here, the consumer a forgotten `drop(tx)` left waiting.
#[klaw::test(workers = 2, timeout = "300ms")]
#[should_panic(expected = "task `forgotten-consumer`")]
async fn an_expired_test_timeout_prints_the_stuck_tree() {
    let (tx, rx) = klaw::channel::bounded::<u32>(1);
    klaw::scope!(name = "stuck", |s| {
        s.spawn(
            Task::new(async move { while rx.recv().await.is_ok() {} }).name("forgotten-consumer"),
        );
        tx.send(1).await?;
        Ok(())
    })
    .unwrap();
}

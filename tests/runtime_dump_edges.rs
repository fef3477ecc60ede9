//! `Runtime::dump` / `Handle::dump` at the edges of what `book/src/runtime.md` promises: every
//! open scope appears (with its name, open time, children not ended, children waiting for a
//! slot, cancellation), every task under the scope it belongs to with its state and first wait,
//! nested scopes nest however deep, ended scopes and tasks vanish, and a dump taken from inside
//! a task, from another thread while scopes churn, or during a shutdown returns promptly and is
//! consistent. Also: a dump of ten thousand tasks is quick to take and to print.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{ms, wait_for, within};
use klaw::Task;

/// The first line of `tree` that contains `needle`, or a failure that shows the tree.
fn line_of(tree: &str, needle: &str) -> String {
    tree.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{tree}"))
        .to_owned()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The count the header line gives for `what` ("live tasks", "waiting", "open scopes").
fn header_count(tree: &str, what: &str) -> usize {
    let header = tree.lines().next().expect("a header line");
    let before = header.split(what).next().expect("the header names it");
    let number = before.trim_end().rsplit([' ', ',']).next().unwrap();
    number.parse().unwrap_or_else(|_| panic!("no count of {what:?} in {header:?}"))
}

/// Parses a `Duration` as `{:.1?}` prints it ("12.0ms", "1.5s", "800.0µs").
fn parse_debug_duration(text: &str) -> Duration {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap();
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap();
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" => 1e-6,
        "ns" => 1e-9,
        other => panic!("unit {other:?} in {text:?}"),
    };
    Duration::from_secs_f64(number * scale)
}

/// The duration a line gives after `label` (e.g. "open ", "first waited ").
fn ago(line: &str, label: &str) -> Duration {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    parse_debug_duration(rest.split(' ').next().unwrap())
}

/// A child cancelled with its scope that has not ended (its body is dropped, but a scope the body
/// opened left a shielded child running, which the child waits for) is still a child that has
/// not ended: the dump lists it under its scope as "cancelled (..), ending", and the scope counts
/// it. A hang during cancellation is exactly what a dump is taken to explain, so hiding the
/// ending child hides the cause (`describe` in dump.rs words this very state). The scope the
/// writer's body dropped stays too, marked dropped, with the flusher under it (it was shown
/// loose, at the tree's root, once its scope was dropped).
#[test]
fn a_cancelled_child_still_ending_stays_listed_under_its_scope() {
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let release = Arc::new(AtomicBool::new(false));
        let in_cleanup = Arc::new(AtomicBool::new(false));
        let (release2, in_cleanup2) = (release.clone(), in_cleanup.clone());
        let flushing = in_cleanup.clone();
        let job = rt.spawn(async move {
            klaw::scope!(name = "outer", |s| {
                s.spawn(
                    Task::new(async move {
                        klaw::scope!(name = "flush", |inner| {
                            inner.spawn(
                                Task::new(klaw::cancel::shield(async move {
                                    in_cleanup2.store(true, Ordering::SeqCst);
                                    common::until(|| release2.load(Ordering::SeqCst)).await;
                                }))
                                .name("flusher"),
                            );
                            Ok(())
                        })
                    })
                    .name("writer"),
                );
                // Only once the flusher runs: a writer cancelled before it started would never
                // run, and leave nothing ending to show.
                common::until(|| flushing.load(Ordering::SeqCst)).await;
                s.cancel("stop writing");
                Ok(())
            })
        });
        wait_for("the flusher runs", || in_cleanup.load(Ordering::SeqCst));
        // The flusher is shielded: once the cancel has reached the writer and the writer has
        // dropped its body (and so its scope), this is how the tree stays until the release.
        let tree = common::dump_when(
            &rt,
            "the cancel reached the outer scope and the writer, which dropped its scope",
            |tree| {
                tree.contains("cancelled: stop writing")
                    && tree
                        .lines()
                        .any(|l| l.contains("task `writer`") && l.contains("(stop writing)"))
                    && tree.lines().any(|l| {
                        l.contains("scope `flush`") && l.contains("dropped before it returned")
                    })
            },
        );
        release.store(true, Ordering::SeqCst);
        let _ = rt.block_on(job);

        let outer = line_of(&tree, "scope `outer`");
        assert!(outer.contains("cancelled: stop writing"), "{tree}");
        assert!(outer.contains("1 children not ended"), "the writer has not ended:\n{tree}");
        let writer = line_of(&tree, "task `writer`");
        assert!(writer.contains("cancelled (stop writing), ending"), "{tree}");
        assert!(indent(&outer) < indent(&writer), "{tree}");
        // The writer's scope was dropped with its body, before it returned: it stays in the tree
        // while its flusher runs, marked so, with the flusher under it.
        let flush = line_of(&tree, "scope `flush`");
        let flusher = line_of(&tree, "task `flusher`");
        assert!(flush.contains("dropped before it returned"), "{tree}");
        assert!(flush.contains("1 children not ended"), "{tree}");
        assert!(indent(&writer) < indent(&flush), "{tree}");
        assert!(indent(&flush) < indent(&flusher), "the flusher was shown loose:\n{tree}");
    });
}

/// The header's count of waiting tasks and the tree agree: a task that waits is never counted
/// and left out. Here one waits as a cancelled child of a scope, for a shielded descendant.
#[test]
fn every_waiting_task_counted_in_the_header_has_its_line() {
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let (release, released) = klaw::channel::oneshot::channel::<()>();
        let held = Arc::new(AtomicBool::new(false));
        let (holding, in_shield) = (held.clone(), held.clone());
        let job = rt.spawn(async move {
            klaw::scope!(name = "parent", |s| {
                s.spawn(Task::new(async move {
                    klaw::scope!(name = "held", |inner| {
                        inner.spawn(klaw::cancel::shield(async move {
                            holding.store(true, Ordering::SeqCst);
                            let _ = released.await;
                        }));
                        Ok(())
                    })
                }));
                // Only once the shielded grandchild runs: a child cancelled before it started
                // would never run.
                common::until(|| in_shield.load(Ordering::SeqCst)).await;
                s.cancel("over");
                Ok(())
            })
        });
        wait_for("the shielded grandchild runs", || held.load(Ordering::SeqCst));
        // The three tasks wait: the job in its scope, the child for its descendant, the
        // shielded one for the release (a wait that wakes no one: it is never seen running).
        let tree = common::dump_when(&rt, "the cancel landed and three tasks wait", |tree| {
            tree.contains("cancelled: over") && header_count(tree, "waiting") == 3
        });
        let _ = release.send(());
        let _ = rt.block_on(job);
        // Every task here waits, so each waiting task is one task line.
        let task_lines = tree.lines().filter(|l| l.trim_start().starts_with("task")).count();
        assert_eq!(
            task_lines,
            header_count(&tree, "waiting"),
            "every waiting task is shown:\n{tree}"
        );
        let scope_lines = tree.lines().filter(|l| l.trim_start().starts_with("scope")).count();
        assert_eq!(scope_lines, header_count(&tree, "open scopes"), "{tree}");
    });
}

/// Nested scopes nest, however deep: a recursive job (a tree walk, a divide and conquer) that
/// opens a scope in a child at each of 40 levels shows all 40, each deeper than the last.
#[test]
fn every_level_of_a_deeply_nested_tree_appears_in_the_dump() {
    const LEVELS: usize = 40;
    fn level(
        depth: usize,
        reached: Arc<AtomicUsize>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), klaw::Error>> + Send>> {
        Box::pin(async move {
            klaw::scope!(name = "level", |s| {
                reached.fetch_max(depth + 1, Ordering::SeqCst);
                if depth + 1 < LEVELS {
                    let reached = reached.clone();
                    s.spawn(
                        Task::fallible(level(depth + 1, reached)).name(format!("walker-{depth}")),
                    );
                } else {
                    s.spawn(Task::new(std::future::pending::<()>()).name("leaf"));
                }
                Ok(())
            })
        })
    }
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let reached = Arc::new(AtomicUsize::new(0));
        let job = rt.spawn(level(0, reached.clone()));
        wait_for("every level opened", || reached.load(Ordering::SeqCst) == LEVELS);
        // The last level spawns the leaf just after it counts itself.
        let tree =
            common::dump_when(&rt, "the leaf is spawned", |tree| tree.contains("task `leaf`"));
        job.cancel("seen");
        let _ = rt.block_on(job);
        let scopes = tree.lines().filter(|l| l.trim_start().starts_with("scope `level`")).count();
        assert_eq!(scopes, LEVELS, "every level's scope is shown:\n{tree}");
        let mut last = None;
        for depth in 0..LEVELS - 1 {
            let line = line_of(&tree, &format!("task `walker-{depth}`"));
            if let Some(last) = last {
                assert!(indent(&line) > last, "level {depth} nests in the one above:\n{tree}");
            }
            last = Some(indent(&line));
        }
        assert!(indent(&line_of(&tree, "task `leaf`")) > last.unwrap(), "{tree}");
    });
}

/// A scope line gives how long the scope has been open, and a task line how long ago it first
/// waited, and both are right to within the test's slack.
#[test]
fn open_times_and_first_waits_are_the_time_since_then() {
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let started = Instant::now();
        let job = rt.spawn(async {
            klaw::scope!(name = "timed", |s| {
                s.spawn(Task::new(std::future::pending::<()>()).name("idle"));
                Ok(())
            })
        });
        // The scope opened, and the child first waited, between `started` and `waiting`,
        // however late the child ran.
        common::dump_when(&rt, "the idle child waits", |tree| {
            tree.lines().any(|line| line.contains("task `idle`") && line.contains("first waited"))
        });
        let waiting = Instant::now();
        std::thread::sleep(ms(300));
        let least = waiting.elapsed();
        let tree = rt.dump().to_string();
        let most = started.elapsed();
        job.cancel("seen");
        let _ = rt.block_on(job);
        // The dump prints whole milliseconds, and past a second tenths of one (rounded).
        let (low, high) = (least.saturating_sub(ms(50)), most + ms(50));
        let open = ago(&line_of(&tree, "scope `timed`"), "open ");
        let waited = ago(&line_of(&tree, "task `idle`"), "first waited ");
        assert!(open >= low && open <= high, "open {open:?}, not in {low:?}..{high:?}:\n{tree}");
        assert!(
            waited >= low && waited <= high,
            "waited {waited:?}, not in {low:?}..{high:?}:\n{tree}"
        );
    });
}

/// Ended children leave their scope's line and count at once; a scope that ends leaves the
/// tree with its children; once everything ended, the tree is the header alone.
#[test]
fn ended_tasks_and_scopes_vanish_from_the_dump() {
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let (tx, rx) = klaw::channel::oneshot::channel::<()>();
        let (done_tx, done_rx) = klaw::channel::oneshot::channel::<()>();
        let opened = Arc::new(AtomicBool::new(false));
        let opener_done = opened.clone();
        let job = rt.spawn(async move {
            klaw::scope!(name = "mixed", |s| {
                s.spawn(Task::new(async {}).name("quick"));
                s.spawn(
                    Task::new(async move {
                        let _ = rx.await;
                    })
                    .name("slow"),
                );
                s.spawn(
                    Task::new(async move {
                        let closed = klaw::scope!(name = "short-lived", |inner| {
                            inner.spawn(Task::new(async {}).name("inner-quick"));
                            Ok(())
                        });
                        opener_done.store(true, Ordering::SeqCst);
                        closed
                    })
                    .name("opener"),
                );
                let _ = done_rx.await;
                Ok(())
            })
        });
        // Each dump waits for the state it looks at. The opener ran, so all three children
        // were spawned; then one child not ended is `slow` alone.
        wait_for("the opener's scope closed", || opened.load(Ordering::SeqCst));
        let children_left = |tree: &str, n: usize| {
            tree.lines().any(|line| {
                line.contains("scope `mixed`")
                    && line.contains(&format!(", {n} children not ended"))
            })
        };
        let tree =
            common::dump_when(&rt, "every child but `slow` ended", |tree| children_left(tree, 1));
        let _ = tx.send(());
        let later = common::dump_when(&rt, "`slow` ended too", |tree| children_left(tree, 0));
        let _ = done_tx.send(());
        rt.block_on(job).unwrap().unwrap();
        // The root task may still be ending its bookkeeping: wait until it left the list.
        wait_for("the job left the dump", || header_count(&rt.dump().to_string(), "waiting") == 0);
        let after = rt.dump().to_string();

        assert!(line_of(&tree, "scope `mixed`").contains("1 children not ended"), "{tree}");
        line_of(&tree, "task `slow`");
        for gone in ["quick`", "opener", "short-lived", "inner-quick"] {
            assert!(!tree.contains(gone), "{gone} ended:\n{tree}");
        }
        assert!(line_of(&later, "scope `mixed`").contains("0 children not ended"), "{later}");
        assert!(!later.contains("slow"), "{later}");
        assert_eq!(after.lines().count(), 1, "only the header is left:\n{after}");
        assert_eq!(header_count(&after, "open scopes"), 0, "{after}");
    });
}

/// A dump taken from inside a task (its own scope open, its children waiting) returns, and shows
/// that task, which is running and so not waiting, as the root of its scope.
#[test]
fn a_dump_from_inside_a_task_shows_its_own_scope() {
    common::in_task(|| async {
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let seen2 = seen.clone();
        let _ = klaw::scope!(name = "self-view", limit = 1, |s| {
            for i in 0..3 {
                s.spawn(Task::new(std::future::pending::<()>()).name(format!("pending-{i}")));
            }
            klaw::time::sleep(ms(20)).await;
            *seen2.lock().unwrap() = klaw::Handle::current()?.dump().to_string();
            s.cancel("seen");
            Ok(())
        });
        let tree = seen.lock().unwrap().clone();
        let scope = line_of(&tree, "scope `self-view`");
        assert!(scope.contains("1 children not ended"), "{tree}");
        assert!(scope.contains("2 waiting for a slot (limit 1)"), "{tree}");
        line_of(&tree, "task `pending-0`");
        assert!(!tree.contains("pending-1"), "a child waiting for a slot is no task yet:\n{tree}");
    });
}

/// Dumps taken on another thread while tasks open and close nested scopes in a loop all return
/// promptly, and each is a well-formed tree: every scope line is either a root's child or under
/// a task line, and the header's count of open scopes matches the scope lines shown.
#[test]
fn dumps_while_scopes_open_and_close_are_prompt_and_well_formed() {
    within(Duration::from_secs(60), || {
        let rt = common::runtime(2);
        let stop = Arc::new(AtomicBool::new(false));
        let mut jobs = Vec::new();
        for j in 0..4 {
            let stop = stop.clone();
            jobs.push(rt.spawn(async move {
                let mut rounds = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    klaw::scope!(name = "churn", |s| {
                        for i in 0..4 {
                            s.spawn(
                                Task::new(async move {
                                    klaw::scope!(name = "churn-inner", |inner| {
                                        inner.spawn(Task::new(async move {
                                            if (i + j) % 2 == 0 {
                                                common::yield_once().await;
                                            }
                                        }));
                                        Ok(())
                                    })
                                })
                                .name("churner"),
                            );
                        }
                        Ok(())
                    })
                    .unwrap();
                    rounds += 1;
                }
                rounds
            }));
        }
        let mut problems = Vec::new();
        let until = Instant::now() + Duration::from_secs(3);
        let mut dumps = 0;
        while Instant::now() < until {
            let tree = rt.dump().to_string();
            dumps += 1;
            let mut previous = 0usize;
            for (n, line) in tree.lines().enumerate().skip(1) {
                if indent(line) > previous + 2 {
                    problems.push(format!("line {n} jumps in:\n{tree}"));
                }
                previous = indent(line);
            }
            let scope_lines = tree.lines().filter(|l| l.trim_start().starts_with("scope")).count();
            if scope_lines != header_count(&tree, "open scopes") {
                problems.push(format!("{scope_lines} scope lines:\n{tree}"));
            }
        }
        stop.store(true, Ordering::SeqCst);
        let rounds: u64 = common::join_all(&rt, jobs).into_iter().sum();
        assert!(rounds > 0);
        assert!(
            problems.is_empty(),
            "{} of {dumps} dumps were not well formed; the first:\n{}",
            problems.len(),
            problems[0]
        );
    });
}

/// A dump taken on another thread while the runtime shuts down (cancelling a tree of scopes and
/// tasks) returns promptly and does not panic; one taken through a `Handle` after the runtime is
/// gone too, and shows nothing open.
#[test]
fn dumps_during_and_after_shutdown_return_promptly() {
    within(common::DEADLINE, || {
        let rt = common::runtime(2);
        let handle = rt.handle();
        for _ in 0..8 {
            drop(rt.spawn(async {
                klaw::scope!(name = "doomed", |s| {
                    for _ in 0..8 {
                        s.spawn(Task::new(async {
                            klaw::scope!(|inner| {
                                inner.spawn(std::future::pending::<()>());
                                Ok(())
                            })
                        }));
                    }
                    Ok(())
                })
            }));
        }
        std::thread::sleep(ms(50));
        let done = Arc::new(AtomicBool::new(false));
        let dumper = {
            let (handle, done) = (handle.clone(), done.clone());
            // A dump that hangs is caught by the test's deadline (no timing is asserted).
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let _ = handle.dump().to_string();
                }
            })
        };
        let _report = rt.shutdown(Duration::from_secs(5));
        done.store(true, Ordering::SeqCst);
        dumper.join().expect("no dump panicked");
        let after = handle.dump().to_string();
        assert_eq!(header_count(&after, "open scopes"), 0, "{after}");
        assert_eq!(header_count(&after, "waiting"), 0, "{after}");
    });
}

/// Ten thousand waiting tasks, each running a scope of its own with one waiting child: the dump
/// is whole and proportionate (one line per scope or task, no line longer than its names need),
/// and each task appears once.
#[test]
fn a_dump_of_ten_thousand_tasks_is_whole_and_proportionate() {
    const TASKS: usize = 10_000;
    within(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let opened = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..TASKS {
            let opened = opened.clone();
            jobs.push(rt.spawn(async move {
                klaw::scope!(name = "each", |s| {
                    s.spawn(Task::new(std::future::pending::<()>()).name("w"));
                    opened.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            }));
        }
        wait_for("every scope opened", || opened.load(Ordering::SeqCst) == TASKS);
        std::thread::sleep(ms(100));
        // No timing is asserted (tests assert no timings): taking this dump took 3.4–6.9 s in a
        // debug build when each task shown scanned every open scope, and a few milliseconds
        // since; the test's deadline is what catches a dump that does not end.
        let text = rt.dump().to_string();
        for job in &jobs {
            job.cancel("seen");
        }
        rt.block_on(async {
            for job in jobs {
                let _ = job.await;
            }
        });
        let lines = text.lines().count();
        assert_eq!(lines, 1 + 3 * TASKS, "a line per task, scope and child");
        assert!(text.len() < lines * 100, "{} bytes for {lines} lines", text.len());
        assert_eq!(text.matches("task `w`").count(), TASKS);
    });
}

/// An expired `#[klaw::test(timeout)]` names the stuck task even when it is deep in the tree (a
/// child's child, in a scope limited to one slot): the tree printed is the whole one.
#[klaw::test(workers = 2, timeout = "300ms")]
#[should_panic(expected = "task `deep-stuck`")]
async fn an_expired_test_timeout_names_a_deeply_nested_stuck_task() {
    klaw::scope!(name = "top", limit = 1, |s| {
        s.spawn(
            Task::new(async {
                klaw::scope!(name = "middle", |inner| {
                    inner.spawn(Task::new(std::future::pending::<()>()).name("deep-stuck"));
                    Ok(())
                })
            })
            .name("middle-owner"),
        );
        s.spawn(async {});
        Ok(())
    })
    .unwrap();
}

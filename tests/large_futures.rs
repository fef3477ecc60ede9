//! Large futures on a small stack: every way a future reaches klaw (spawned on a runtime or in a
//! scope, started, awaited inline, blocked on, bounded by a region, the body of `#[klaw::main]`
//! or `#[klaw::test]`) must not copy it down the stack once per layer, nor may a large blocking
//! closure (or what it returns) on its way to the blocking pool and back. Each case runs on a
//! thread with a 2 MiB stack (what libtest gives each test), in the debug build the tests are
//! built in, where every function that takes a future by value keeps a copy in its frame: a
//! 200 KiB future passed down ten layers overflows it. A stack overflow aborts the whole test
//! binary, so run one case alone (`--exact`) to see which.

mod common;

use std::future::IntoFuture;
use std::time::Duration;

use common::DEADLINE;
use klaw::Runtime;
use klaw::cancel::{fail_after, fail_at, move_on_after, move_on_at};

/// The stack libtest gives each test's thread.
const SMALL_STACK: usize = 2 << 20;

/// Bytes a large future holds across its `.await`: 100 times async-task's and tokio's 2 KiB
/// threshold, a tenth of the stack.
const LARGE: usize = 200 * 1024;

/// A future of over 200 KiB: its buffer lives across an `.await`.
async fn big(n: usize) -> usize {
    let buf = [7u8; LARGE];
    klaw::time::sleep(Duration::from_millis(1)).await;
    buf[n] as usize + n
}

/// A `#[klaw::task]` whose future is as large.
#[klaw::task]
async fn big_task(n: usize) -> usize {
    let buf = [7u8; LARGE];
    klaw::time::sleep(Duration::from_millis(1)).await;
    buf[n] as usize + n
}

/// Runs `scenario` on a thread with libtest's 2 MiB stack, within [`DEADLINE`].
fn on_small_stack<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let _ = done.send(scenario());
        })
        .expect("a thread with a 2 MiB stack");
    match finished.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario returned without sending"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the scenario hung: no end within {DEADLINE:?}")
        }
    }
}

fn one_worker() -> Runtime {
    common::runtime(1)
}

#[test]
fn the_future_is_large() {
    assert!(size_of_val(&big(0)) > LARGE);
    assert!(size_of_val(&big_task(0)) > LARGE);
}

#[test]
fn runtime_spawn() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(big(3));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn handle_spawn() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.handle().spawn(big(3));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn runtime_spawn_of_a_task() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(klaw::Task::new(big(3)).name("big").timeout(DEADLINE));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn scope_spawn() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = s.spawn(big(1));
                let b = s.spawn(big(2));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn scope_spawn_under_a_limit() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(limit = 1, |s| {
                let a = s.spawn(big(1));
                let b = s.spawn(big(2));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn scope_spawn_background() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = s.spawn_background(big(1));
                Ok(a.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8);
}

#[test]
fn scope_spawn_local() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = s.spawn_local(big(1));
                let b = s.spawn_local(big(2));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn child_set_spawn() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let mut set = s.child_set();
                set.spawn(big(1));
                set.spawn(big(2));
                let mut sum = 0;
                while let Some(value) = set.next_finished().await {
                    sum += value?;
                }
                Ok(sum)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn scope_start() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let (ready, child) = s
                    .start(|ready| async move {
                        let buf = [7u8; LARGE];
                        ready.ready(buf[1] as usize);
                        klaw::time::sleep(Duration::from_millis(1)).await;
                        buf[2] as usize
                    })
                    .await?;
                Ok(ready + child.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 14);
}

#[test]
fn a_task_spawned_in_a_scope_and_awaited_inline() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let spawned = s.spawn(big_task(1));
                let inline = big_task(2).await?;
                Ok(spawned.await? + inline)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn runtime_block_on() {
    let value = on_small_stack(|| one_worker().block_on(big(3)));
    assert_eq!(value, 10);
}

#[test]
fn runtime_block_on_of_a_task() {
    let value = on_small_stack(|| one_worker().block_on(big_task(3)));
    assert_eq!(value, Ok(10));
}

#[test]
fn free_block_on() {
    let value = on_small_stack(|| klaw::runtime::block_on(big(3)));
    assert_eq!(value, 10);
}

#[test]
fn move_on_after_of_a_large_future() {
    let value =
        on_small_stack(|| one_worker().block_on(async { move_on_after(DEADLINE, big(3)).await }));
    assert_eq!(value, Some(10));
}

#[test]
fn fail_after_of_a_large_future() {
    let value =
        on_small_stack(|| klaw::runtime::block_on(async { fail_after(DEADLINE, big(3)).await }));
    assert_eq!(value, Ok(10));
}

#[test]
fn move_on_at_of_a_large_future() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        rt.block_on(async { move_on_at(klaw::time::now() + DEADLINE, big(3)).await })
    });
    assert_eq!(value, Some(10));
}

#[test]
fn fail_at_of_a_large_future() {
    let value = on_small_stack(|| {
        klaw::runtime::block_on(async { fail_at(klaw::time::now() + DEADLINE, big(3)).await })
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn a_shield_and_a_regions_run_of_a_large_future() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            let shielded = klaw::cancel::shield(big(1)).await;
            let ran = klaw::cancel::Region::new().run(big(2)).await;
            (shielded, ran.ok())
        })
    });
    assert_eq!(value, (8, Some(9)));
}

#[test]
fn move_on_after_in_a_spawned_task() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(async { move_on_after(DEADLINE, big(3)).await });
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(Some(10)));
}

/// What `#[klaw::main]` expands to, called on a small stack (a program's main thread has 8 MiB,
/// which would hide the copies).
#[klaw::main(workers = 1)]
async fn big_main() -> usize {
    big(1).await + big(2).await + big(3).await
}

#[test]
fn main_attribute() {
    assert_eq!(on_small_stack(big_main), 8 + 9 + 10);
}

/// Fails a test with no `timeout` of its own that hangs: unless it is dropped within
/// [`DEADLINE`], it aborts the test binary, naming the test. (Bounding the body with
/// `fail_after` instead would nest it in a second large future, and test that instead.)
struct Watchdog(#[allow(dead_code, reason = "dropped to disarm")] std::sync::mpsc::Sender<()>);

impl Watchdog {
    fn arm(test: &'static str) -> Self {
        let (disarm, disarmed) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(DEADLINE)
            {
                #[allow(clippy::print_stderr, reason = "the abort has nowhere else to say why")]
                {
                    eprintln!("{test} hung: no end within {DEADLINE:?}");
                }
                std::process::abort();
            }
        });
        Watchdog(disarm)
    }
}

// libtest runs each of these on a thread with a 2 MiB stack: the attribute's expansion is what
// is tested, with the body of the report: three large futures awaited in turn.

#[klaw::test(workers = 1)]
async fn test_attribute() {
    let _watchdog = Watchdog::arm("test_attribute");
    assert_eq!(big(1).await + big(2).await + big(3).await, 8 + 9 + 10);
}

#[klaw::test(workers = 1, timeout = "30s")]
async fn test_attribute_with_a_timeout() {
    assert_eq!(big(1).await + big(2).await + big(3).await, 8 + 9 + 10);
}

#[klaw::test(start_paused = true)]
async fn test_attribute_start_paused() {
    let _watchdog = Watchdog::arm("test_attribute_start_paused");
    assert_eq!(big(1).await + big(2).await + big(3).await, 8 + 9 + 10);
}

#[klaw::test(start_paused = true, timeout = "30s")]
async fn test_attribute_start_paused_with_a_timeout() {
    assert_eq!(big(1).await + big(2).await + big(3).await, 8 + 9 + 10);
}

// Large blocking closures: every way a closure reaches the blocking pool. The closure captures
// `LARGE` bytes, and the pool's threads have the same 2 MiB stack, so both the side that spawns
// it and the side that runs it are checked.

/// A closure that captures `LARGE` bytes.
fn big_closure(n: usize) -> impl FnOnce() -> usize + Send + 'static {
    let buf = [7u8; LARGE];
    move || buf[n] as usize + n
}

/// A `#[klaw::task(blocking)]` whose closure captures its `LARGE`-byte argument.
#[klaw::task(blocking)]
fn big_blocking_task(buf: [u8; LARGE], n: usize) -> usize {
    buf[n] as usize + n
}

/// A blocking task that returns `LARGE` bytes, which go from the pool to whoever awaits them.
fn returns_large(n: usize) -> impl FnOnce() -> [u8; LARGE] + Send + 'static {
    move || [n as u8; LARGE]
}

#[test]
fn the_closure_is_large() {
    assert!(size_of_val(&big_closure(0)) >= LARGE);
    assert!(size_of_val(&big_blocking_task([0; LARGE], 0)) >= LARGE);
}

#[test]
fn runtime_spawn_blocking() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn_blocking(big_closure(3));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn handle_spawn_blocking() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.handle().spawn_blocking(big_closure(3));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn runtime_spawn_of_a_blocking_task() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(klaw::task::BlockingTask::new(big_closure(3)).name("big"));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn handle_spawn_of_a_blocking_task_attribute() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.handle().spawn(big_blocking_task([7; LARGE], 3));
        rt.block_on(handle)
    });
    assert_eq!(value, Ok(10));
}

#[test]
fn scope_spawn_blocking() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = s.spawn_blocking(big_closure(1));
                let b = s.spawn(klaw::task::BlockingTask::new(big_closure(2)));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn scope_spawn_of_a_blocking_task_attribute() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = s.spawn(big_blocking_task([7; LARGE], 1));
                let b = s.spawn_background(big_blocking_task([7; LARGE], 2));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn scope_spawn_blocking_under_a_limit() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(limit = 1, |s| {
                let a = s.spawn_blocking(big_closure(1));
                let b = s.spawn_blocking(big_closure(2));
                Ok(a.await? + b.await?)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn child_set_spawn_blocking() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let mut set = s.child_set();
                set.spawn_blocking(big_closure(1));
                set.spawn(klaw::task::BlockingTask::new(big_closure(2)));
                let mut sum = 0;
                while let Some(value) = set.next_finished().await {
                    sum += value?;
                }
                Ok(sum)
            })
        })
    });
    assert_eq!(value.unwrap(), 8 + 9);
}

#[test]
fn a_blocking_task_awaited_inline() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            let closure = klaw::task::BlockingTask::new(big_closure(1)).await;
            let attribute = big_blocking_task([7; LARGE], 2).await;
            (closure, attribute)
        })
    });
    assert_eq!(value, (Ok(8), Ok(9)));
}

#[test]
fn a_blocking_task_awaited_inline_outside_a_runtime() {
    let value = on_small_stack(|| {
        klaw::runtime::block_on(async { klaw::task::BlockingTask::new(big_closure(1)).await })
    });
    assert_eq!(value, Ok(8));
}

#[test]
fn a_large_value_returned_by_spawn_blocking() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        rt.block_on(rt.spawn_blocking(returns_large(1))).map(|out| out[LARGE - 1])
    });
    assert_eq!(value, Ok(1));
}

#[test]
fn a_large_value_returned_by_a_blocking_task_awaited_inline() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::task::BlockingTask::new(returns_large(3)).await.map(|out| out[LARGE - 1])
        })
    });
    assert_eq!(value, Ok(3));
}

#[test]
fn a_large_value_returned_by_a_blocking_task_awaited_inline_outside_a_runtime() {
    let value = on_small_stack(|| {
        klaw::runtime::block_on(async {
            klaw::task::BlockingTask::new(returns_large(4)).await.map(|out| out[LARGE - 1])
        })
    });
    assert_eq!(value, Ok(4));
}

// Large outputs of async tasks: every way a task's (or a region's, or a scope's) value reaches
// the code that awaits it. The task's future is small; its output is `LARGE` bytes, produced on a
// worker (or on the awaiting thread) and handed up to the user, who keeps its last byte
// (`on_small_stack` cannot return it: its own frames would hold it).

/// A future that returns `LARGE` bytes after an `.await`, holding none of them across it.
async fn large_output(n: u8) -> [u8; LARGE] {
    klaw::time::sleep(Duration::from_millis(1)).await;
    [n; LARGE]
}

/// A `#[klaw::task]` that returns `LARGE` bytes.
#[klaw::task]
async fn large_output_task(n: u8) -> [u8; LARGE] {
    klaw::time::sleep(Duration::from_millis(1)).await;
    [n; LARGE]
}

/// What the tests keep of a large output: its last byte.
fn last(output: &[u8; LARGE]) -> u8 {
    output[LARGE - 1]
}

/// Awaits `future`, whose output is large, and keeps what `keep` reads of it: one `.await` of a
/// large value per function, since a debug build gives every temporary of the awaiting code a
/// place of its own (the user's frame holds the value a few times; klaw's must not add more).
async fn kept<O, K>(future: impl IntoFuture<Output = O>, keep: impl FnOnce(&O) -> K) -> K {
    let output = future.await;
    keep(&output)
}

/// The last byte of a successful large output, or `None`.
fn last_ok<E>(output: &Result<[u8; LARGE], E>) -> Option<u8> {
    output.as_ref().ok().map(last)
}

/// The last byte of a large output, if there is one.
fn last_some(output: &Option<[u8; LARGE]>) -> Option<u8> {
    output.as_ref().map(last)
}

#[test]
fn the_output_is_large_and_its_future_small() {
    assert!(size_of_val(&large_output(0)) < 1024);
    assert!(size_of_val(&large_output_task(0)) < 1024);
}

#[test]
fn a_large_value_returned_by_runtime_spawn() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(large_output(1));
        rt.block_on(kept(handle, last_ok))
    });
    assert_eq!(value, Some(1));
}

#[test]
fn a_large_value_returned_by_handle_spawn_of_a_task() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.handle().spawn(klaw::Task::new(large_output(2)).timeout(DEADLINE));
        rt.block_on(kept(handle, last_ok))
    });
    assert_eq!(value, Some(2));
}

#[test]
fn a_large_value_returned_by_a_task_attribute_spawned() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        let handle = rt.spawn(large_output_task(3));
        rt.block_on(kept(handle, last_ok))
    });
    assert_eq!(value, Some(3));
}

#[test]
fn a_large_value_returned_by_a_scopes_child() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let a = kept(s.spawn(large_output(1)), last_ok).await;
                let b = kept(s.spawn(large_output_task(2)), last_ok).await;
                Ok((a, b))
            })
        })
    });
    assert_eq!(value.unwrap(), (Some(1), Some(2)));
}

#[test]
fn a_large_value_returned_by_a_scopes_local_child() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| Ok(kept(s.spawn_local(large_output(1)), last_ok).await))
        })
    });
    assert_eq!(value.unwrap(), Some(1));
}

#[test]
fn a_large_value_returned_by_a_child_under_a_limit() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(limit = 1, |s| {
                let a = s.spawn(large_output(1));
                let b = s.spawn(large_output(2));
                Ok((kept(a, last_ok).await, kept(b, last_ok).await))
            })
        })
    });
    assert_eq!(value.unwrap(), (Some(1), Some(2)));
}

#[test]
#[ignore = "aborts (stack overflow): the scope's future keeps the body's value in a field (`Drive::output`), so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_by_a_scopes_body() {
    let value = on_small_stack(|| {
        let scoped = async {
            klaw::scope!(|s| {
                let a = s.spawn(big(1));
                let mut out = [0u8; LARGE];
                out[LARGE - 1] = a.await? as u8;
                Ok(out)
            })
        };
        one_worker().block_on(kept(scoped, last_ok))
    });
    assert_eq!(value, Some(8));
}

#[test]
fn a_large_value_returned_by_a_child_set() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::scope!(|s| {
                let mut set = s.child_set();
                set.spawn(large_output(1));
                set.spawn(large_output(2));
                let mut sum = 0;
                while let Some(out) =
                    kept(set.next_finished(), |out| out.as_ref().map(last_ok)).await
                {
                    sum += out.expect("the child's value");
                }
                Ok(sum)
            })
        })
    });
    assert_eq!(value.unwrap(), 1 + 2);
}

#[test]
#[ignore = "aborts (stack overflow): an inline task's future keeps its value until its last poll, so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_by_a_task_awaited_inline() {
    let value =
        on_small_stack(|| one_worker().block_on(kept(klaw::Task::new(large_output(1)), last_ok)));
    assert_eq!(value, Some(1));
}

#[test]
#[ignore = "aborts (stack overflow): a timed inline task holds a region (`Cancellable`), whose future keeps its outcome in a field, so it is as large as the value (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_by_a_task_with_a_timeout_awaited_inline() {
    let value = on_small_stack(|| {
        let task = klaw::Task::new(large_output(2)).timeout(DEADLINE);
        one_worker().block_on(kept(task, last_ok))
    });
    assert_eq!(value, Some(2));
}

#[test]
#[ignore = "aborts (stack overflow): an inline task's future keeps its value until its last poll, so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_by_a_task_attribute_awaited_inline() {
    let value = on_small_stack(|| one_worker().block_on(kept(large_output_task(3), last_ok)));
    assert_eq!(value, Some(3));
}

#[test]
fn a_large_value_returned_by_runtime_block_on() {
    let value = on_small_stack(|| last(&one_worker().block_on(large_output(4))));
    assert_eq!(value, 4);
}

#[test]
fn a_large_value_returned_by_free_block_on() {
    let value = on_small_stack(|| last(&klaw::runtime::block_on(large_output(5))));
    assert_eq!(value, 5);
}

#[test]
#[ignore = "aborts (stack overflow): a region's future keeps its outcome in a field (`Cancellable::outcome`), so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_through_move_on_after() {
    let value = on_small_stack(|| {
        one_worker().block_on(kept(move_on_after(DEADLINE, large_output(1)), last_some))
    });
    assert_eq!(value, Some(1));
}

#[test]
#[ignore = "aborts (stack overflow): a region's future keeps its outcome in a field (`Cancellable::outcome`), so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_through_fail_after() {
    let value = on_small_stack(|| {
        klaw::runtime::block_on(kept(fail_after(DEADLINE, large_output(2)), last_ok))
    });
    assert_eq!(value, Some(2));
}

#[test]
#[ignore = "aborts (stack overflow): a region's future keeps its outcome in a field (`Cancellable::outcome`), so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_through_move_on_at() {
    let value = on_small_stack(|| {
        let rt = one_worker();
        rt.block_on(async {
            let deadline = klaw::time::now() + DEADLINE;
            kept(move_on_at(deadline, large_output(3)), last_some).await
        })
    });
    assert_eq!(value, Some(3));
}

#[test]
fn a_large_value_returned_through_a_shield() {
    let value =
        on_small_stack(|| one_worker().block_on(kept(klaw::cancel::shield(large_output(1)), last)));
    assert_eq!(value, 1);
}

#[test]
#[ignore = "aborts (stack overflow): a region's future keeps its outcome in a field (`Cancellable::outcome`), so it is as large as the value in every frame that holds it (ARCHITECTURE.md, large futures)"]
fn a_large_value_returned_through_a_regions_run() {
    let value = on_small_stack(|| {
        let ran = klaw::cancel::Region::new().run(large_output(2));
        one_worker().block_on(kept(ran, last_ok))
    });
    assert_eq!(value, Some(2));
}

#[test]
fn a_large_value_returned_by_a_select_arm() {
    let value = on_small_stack(|| {
        one_worker().block_on(async {
            klaw::select! {
                large_output(1) -> out => last(&out),
                after(DEADLINE) => 0,
            }
        })
    });
    assert_eq!(value, 1);
}

//! `#[klaw::task]`: the call syntax stays; the value is awaited inline, spawned in a scope or
//! submitted to a runtime, named, bounded by its timeout, and traced.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::runtime;
use klaw::{Error, TaskError, task::ExitReason};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("no page {0}")]
struct FetchError(u32);

#[klaw::task]
async fn fetch(id: u32) -> Result<String, FetchError> {
    klaw::time::sleep(Duration::from_millis(1)).await;
    if id == 0 { Err(FetchError(id)) } else { Ok(format!("page {id}")) }
}

#[klaw::task(name = "slow-fetch", timeout = "10ms")]
async fn slow_fetch() -> Result<(), FetchError> {
    klaw::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[klaw::task]
async fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[klaw::task(blocking)]
fn count_bytes(path: PathBuf) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[klaw::task(blocking, name = "sum")]
fn sum(upto: u64) -> u64 {
    (1..=upto).sum()
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_task_awaited_inline_gives_the_same_result_as_its_handle() {
    assert_eq!(fetch(1).await, Ok("page 1".to_string()));
    assert_eq!(fetch(0).await, Err(TaskError::Failed(FetchError(0))));
    assert_eq!(add(2, 3).await, Ok(5));
    assert_eq!(sum(10).await, Ok(55));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn tasks_spawn_in_a_scope_with_their_names() {
    let (a, b, total) = klaw::scope!(|s| {
        let a = s.spawn(fetch(1));
        let b = s.spawn(fetch(2));
        let total = s.spawn(sum(4));
        assert_eq!(a.name(), Some("fetch"));
        assert_eq!(total.name(), Some("sum"));
        Ok((a.await?, b.await?, total.await?))
    })
    .unwrap();
    assert_eq!((a.as_str(), b.as_str(), total), ("page 1", "page 2", 10));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_failing_task_fails_its_scope_with_its_typed_error() {
    let error = klaw::scope!(|s| {
        s.spawn(fetch(0));
        Ok(())
    })
    .unwrap_err();
    let Error::Task { error: TaskError::Failed(failure), .. } = error else {
        panic!("unexpected {error:?}")
    };
    assert_eq!(failure.downcast_ref::<FetchError>(), Some(&FetchError(0)));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn the_timeout_option_bounds_the_task_everywhere() {
    assert_eq!(slow_fetch().await, Err(TaskError::TimedOut(Duration::from_millis(10))));
    let error = klaw::scope!(|s| {
        let handle = s.spawn(slow_fetch());
        assert_eq!(handle.name(), Some("slow-fetch"));
        handle.await?;
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(error, Error::Task { error: TaskError::TimedOut(_), .. }));
}

#[test]
fn a_task_is_submitted_to_a_runtime_like_any_future() {
    let rt = runtime(1);
    let handle = rt.spawn(fetch(3));
    assert_eq!(handle.name(), Some("fetch"));
    assert_eq!(rt.block_on(handle), Ok("page 3".to_string()));
    let timed_out = rt.spawn(slow_fetch());
    let canceller = timed_out.task_ref();
    assert!(rt.block_on(timed_out).is_err());
    assert_eq!(canceller.exit_reason(), ExitReason::TimedOut);
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_blocking_task_reports_io_errors_as_failures() {
    let missing = count_bytes(PathBuf::from("/definitely/not/here")).await;
    assert!(
        matches!(missing, Err(TaskError::Failed(e)) if e.kind() == std::io::ErrorKind::NotFound)
    );
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    assert!(count_bytes(manifest).await.unwrap() > 0);
}

//! `#[klaw::test]` (and, through it, the expansion shared with `#[klaw::main]`).

use klaw::TaskError;

#[klaw::test(workers = 3)]
async fn the_attribute_builds_a_runtime_with_the_requested_workers() {
    let handle = klaw::Handle::current().expect("a runtime is current");
    assert_eq!(handle.config().workers, 3);
    assert_eq!(handle.spawn(async { 2 + 2 }).await, Ok(4));
}

#[klaw::test]
async fn the_body_can_use_question_mark() -> Result<(), klaw::Error> {
    let handle = klaw::Handle::current()?;
    let value = handle.spawn(klaw::Task::fallible(async { "17".parse::<u32>() })).await?;
    assert_eq!(value, 17);
    Ok(())
}

#[klaw::test(max_blocking_threads = 1)]
#[should_panic(expected = "boom")]
async fn other_attributes_still_apply() {
    let handle = klaw::Handle::current().unwrap();
    let result = handle.spawn(async { panic!("inner") }).await;
    assert!(matches!(result, Err(TaskError::Panicked(_))));
    panic!("boom");
}

#[klaw::test(timeout = "20ms")]
#[should_panic(expected = "did not finish within its timeout of 20ms")]
async fn a_test_that_hangs_fails_at_its_timeout() {
    std::future::pending::<()>().await;
}

#[klaw::test(timeout = std::time::Duration::from_secs(10))]
async fn a_test_timeout_can_be_a_duration_expression() {
    klaw::time::sleep(std::time::Duration::from_millis(1)).await;
}

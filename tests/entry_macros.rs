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

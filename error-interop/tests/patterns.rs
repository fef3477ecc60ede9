//! The three error patterns of the book's "Errors" chapter, with the error crates applications
//! use: `?` on any error inside a scope, fallible tasks whose error is anyhow's, eyre's, a boxed
//! or a std error, and no child's `Err` lost. Each test recovers the root cause by downcasting
//! along the chain, as a user of that crate would.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use anyhow::Context as _;
use klaw::{Task, TaskError};

const MISSING: &str = "/nonexistent/klaw-error-interop/config.toml";

/// The root cause of a std error chain.
fn root<'a>(error: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error
}

fn io_kind(error: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    root(error).downcast_ref::<io::Error>().map(io::Error::kind)
}

// ---- 1. `?` on any error inside a scope body, and `scope!(..)?` into the caller's error type.

async fn read_len(path: &str) -> Result<usize, klaw::Error> {
    klaw::scope!(|_s| {
        let data = std::fs::read(path)?; // io::Error, no annotation
        Ok(data.len())
    })
}

async fn with_anyhow(path: &str) -> anyhow::Result<usize> {
    let len = klaw::scope!(|_s| {
        let data = std::fs::read(path)?;
        Ok(data.len())
    })?;
    Ok(len)
}

async fn with_eyre(path: &str) -> eyre::Result<usize> {
    let len = klaw::scope!(|_s| {
        let data = std::fs::read(path)?;
        Ok(data.len())
    })?;
    Ok(len)
}

/// `scope!(..)?` in a function that returns klaw's own error, and `?` on that into anyhow.
async fn through_klaws_error(path: &str) -> anyhow::Result<usize> {
    Ok(read_len(path).await?)
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("the configuration is invalid: {0}")]
    Invalid(String),
    #[error("the concurrent part failed")]
    Klaw(#[from] klaw::Error),
}

async fn with_thiserror(path: &str) -> Result<usize, AppError> {
    let len = klaw::scope!(|_s| {
        let data = std::fs::read(path)?;
        Ok(data.len())
    })?;
    Ok(len)
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn question_mark_on_an_io_error_in_a_scope_reaches_anyhow_with_its_cause() {
    let error = with_anyhow(MISSING).await.unwrap_err();
    let found = error.chain().find_map(|cause| cause.downcast_ref::<io::Error>());
    assert_eq!(found.map(io::Error::kind), Some(io::ErrorKind::NotFound));
    assert_eq!(
        error.root_cause().downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );
    let report = format!("{error:#}");
    assert!(report.starts_with("the scope's body failed: "), "{report}");
    assert_eq!(report.matches("No such file").count(), 1, "each cause once: {report}");
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn klaws_error_carried_on_into_anyhow_keeps_the_root_cause() {
    let error = through_klaws_error(MISSING).await.unwrap_err();
    assert!(error.downcast_ref::<klaw::Error>().is_some(), "{error:?}");
    assert_eq!(
        error.root_cause().downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn question_mark_on_an_io_error_in_a_scope_reaches_eyre_with_its_cause() {
    let error = with_eyre(MISSING).await.unwrap_err();
    let found = error.chain().find_map(|cause| cause.downcast_ref::<io::Error>());
    assert_eq!(found.map(io::Error::kind), Some(io::ErrorKind::NotFound));
    assert!(error.root_cause().downcast_ref::<io::Error>().is_some());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn question_mark_on_an_io_error_in_a_scope_reaches_a_thiserror_enum_with_its_cause() {
    let error = with_thiserror(MISSING).await.unwrap_err();
    assert!(matches!(error, AppError::Klaw(klaw::Error::Body(_))), "{error:?}");
    assert_eq!(io_kind(&error), Some(io::ErrorKind::NotFound));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_body_may_name_its_error_type_and_gets_it_back_unchanged() {
    // anyhow: `.context` in the body, and the scope returns the very anyhow error.
    let error = klaw::scope!(|_s| -> anyhow::Result<_> {
        let data = std::fs::read(MISSING).with_context(|| format!("reading {MISSING}"))?;
        Ok(data.len())
    })
    .unwrap_err();
    assert_eq!(error.to_string(), format!("reading {MISSING}"));
    assert!(error.root_cause().downcast_ref::<io::Error>().is_some());

    // A thiserror enum: the body's own variant comes back typed; klaw's failures arrive through
    // the `#[from] klaw::Error` variant.
    let invalid =
        klaw::scope!(|_s| -> Result<(), AppError> { Err(AppError::Invalid("port".into())) });
    assert!(matches!(invalid, Err(AppError::Invalid(field)) if field == "port"));
    let child_failed = klaw::scope!(|s| -> Result<(), AppError> {
        s.spawn(Task::fallible(async { Err::<(), _>(io::Error::from(io::ErrorKind::TimedOut)) }));
        Ok(())
    });
    let Err(AppError::Klaw(error)) = child_failed else { panic!("{child_failed:?}") };
    assert_eq!(io_kind(&error), Some(io::ErrorKind::TimedOut));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_body_error_that_is_already_klaws_is_not_wrapped_again() {
    let error = klaw::scope!(|_s| {
        klaw::scope!(|_s| Err::<(), _>("inner gave up".into()))?;
        Ok(())
    })
    .unwrap_err();
    // The inner scope's `Error::Body` passes through the outer body as it is.
    let klaw::Error::Body(inner) = &error else { panic!("{error:?}") };
    assert_eq!(inner.to_string(), "inner gave up");
}

// ---- 2. Fallible tasks with the error types applications use; `h.await?` in a scope.

#[klaw::task]
async fn load_anyhow(path: &'static str) -> anyhow::Result<usize> {
    let data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    Ok(data.len())
}

#[klaw::task]
async fn load_eyre(path: &'static str) -> eyre::Result<usize> {
    use eyre::WrapErr as _;
    let data = std::fs::read(path).wrap_err_with(|| format!("reading {path}"))?;
    Ok(data.len())
}

#[klaw::task]
async fn load_boxed(path: &'static str) -> Result<usize, Box<dyn StdError + Send + Sync>> {
    Ok(std::fs::read(path)?.len())
}

#[klaw::task]
async fn load_std(path: &'static str) -> io::Result<usize> {
    Ok(std::fs::read(path)?.len())
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn an_anyhow_task_awaited_with_question_mark_in_a_scope_keeps_its_chain() {
    let error = klaw::scope!(|s| {
        let handle = s.spawn(load_anyhow(MISSING));
        Ok(handle.await?)
    })
    .unwrap_err();
    let klaw::Error::Task { task: Some(task), error: TaskError::Failed(_), .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(task.name(), Some("load_anyhow"));
    // The task's own context is the next link, the io error the root.
    let context = StdError::source(&error).unwrap();
    assert_eq!(context.to_string(), format!("reading {MISSING}"));
    assert_eq!(io_kind(&error), Some(io::ErrorKind::NotFound));
    // Into anyhow, as an application would carry it on.
    let error = anyhow::Error::from(error);
    assert!(error.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some()));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn eyre_boxed_and_std_error_tasks_all_await_with_question_mark_in_a_scope() {
    let eyre_error = klaw::scope!(|s| Ok(s.spawn(load_eyre(MISSING)).await?)).unwrap_err();
    assert_eq!(io_kind(&eyre_error), Some(io::ErrorKind::NotFound));
    let boxed_error = klaw::scope!(|s| Ok(s.spawn(load_boxed(MISSING)).await?)).unwrap_err();
    assert_eq!(io_kind(&boxed_error), Some(io::ErrorKind::NotFound));
    let std_error = klaw::scope!(|s| Ok(s.spawn(load_std(MISSING)).await?)).unwrap_err();
    assert_eq!(io_kind(&std_error), Some(io::ErrorKind::NotFound));
    // An eyre Report from klaw's error keeps the same root.
    let report = eyre::Report::from(std_error);
    assert!(report.root_cause().downcast_ref::<io::Error>().is_some());
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_supervisor_body_gets_an_anyhow_childs_failure_as_klaws_error_naming_the_child() {
    let error = klaw::scope!(supervisor, |s| {
        let handle = s.spawn(load_anyhow(MISSING));
        let id = handle.id();
        let failure = handle.await.unwrap_err();
        assert!(matches!(&failure, klaw::Error::Task { task: Some(task), .. } if task.id() == id));
        Err::<(), _>(failure.into())
    })
    .unwrap_err();
    // Reported once: the body's error is the child's failure, not a second copy.
    assert!(matches!(error, klaw::Error::Task { error: TaskError::Failed(_), .. }), "{error:?}");
    assert_eq!(io_kind(&error), Some(io::ErrorKind::NotFound));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn awaited_inline_a_task_converts_with_question_mark_too() {
    // A std-error task into anyhow (its `TaskError` is a std error)...
    async fn inline_std() -> anyhow::Result<usize> {
        Ok(load_std(MISSING).await?)
    }
    let error = inline_std().await.unwrap_err();
    assert!(error.root_cause().downcast_ref::<io::Error>().is_some());
    // ...and any task into klaw::Error, whatever its own error type.
    async fn inline_anyhow() -> Result<usize, klaw::Error> {
        Ok(load_anyhow(MISSING).await?)
    }
    let error = inline_anyhow().await.unwrap_err();
    assert_eq!(io_kind(&error), Some(io::ErrorKind::NotFound));
}

// ---- 3. In a scope, no child's `Err` is lost.

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_fallible_childs_err_fails_the_scope_though_nobody_awaits_it() {
    let error = klaw::scope!(|s| {
        // The handle is dropped at once: the failure still reaches the scope.
        s.spawn(Task::fallible(async {
            klaw::time::sleep(Duration::from_millis(5)).await;
            Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))
        }));
        Ok(())
    })
    .unwrap_err();
    assert_eq!(io_kind(&error), Some(io::ErrorKind::PermissionDenied));
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn question_mark_in_an_async_block_child_needs_only_its_error_type_named() {
    // `Ok::<_, E>` names what `?` converts into: no E0282.
    let error = klaw::scope!(|s| {
        s.spawn(Task::fallible(async {
            let data = std::fs::read(MISSING)?;
            Ok::<_, klaw::task::BoxError>(data.len())
        }));
        s.spawn(Task::fallible(async {
            let data = std::fs::read(MISSING).context("reading the config")?;
            anyhow::Ok(data.len())
        }));
        Ok(())
    })
    .unwrap_err();
    let errors: Vec<&klaw::Error> = match &error {
        klaw::Error::Scope(failures) => failures.errors().iter().collect(),
        single => vec![single],
    };
    assert!(!errors.is_empty());
    for error in errors {
        assert_eq!(io_kind(error), Some(io::ErrorKind::NotFound), "{error:?}");
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn task_new_keeps_a_childs_err_as_its_value() {
    let value = klaw::scope!(|s| {
        let handle = s.spawn(Task::new(async { std::fs::read(MISSING).map(|data| data.len()) }));
        Ok(handle.await?)
    })
    .unwrap();
    assert_eq!(value.unwrap_err().kind(), io::ErrorKind::NotFound);
}

// ---- What worked before these patterns, and must keep working.

#[klaw::test(workers = 1, timeout = "10s")]
async fn a_test_body_may_return_anyhow_result() -> anyhow::Result<()> {
    let len = read_len(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).await?;
    anyhow::ensure!(len > 0, "the manifest is not empty");
    Ok(())
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn klaw_error_goes_into_a_boxed_error_and_keeps_its_cause() {
    let error = read_len(MISSING).await.unwrap_err();
    let boxed: Box<dyn StdError + Send + Sync> = error.into();
    assert_eq!(io_kind(&*boxed), Some(io::ErrorKind::NotFound));
}

/// A worker that owns its channel, as application code does.
struct Worker {
    jobs: klaw::channel::Receiver<u32>,
}

impl Worker {
    async fn first_big_job(&mut self) -> Option<u32> {
        loop {
            klaw::select! {
                recv(self.jobs) -> job => match job {
                    Ok(job) if job > 10 => break Some(job),
                    Ok(_) => continue,
                    Err(_) => break None,
                },
            }
        }
    }
}

#[klaw::test(workers = 1, timeout = "10s")]
async fn select_on_a_struct_field_in_a_loop_breaks_with_a_value() {
    let (tx, jobs) = klaw::channel::bounded(4);
    for job in [1, 2, 30, 4] {
        tx.send(job).await.unwrap();
    }
    let mut worker = Worker { jobs };
    assert_eq!(worker.first_big_job().await, Some(30));
    drop(tx);
    assert_eq!(worker.first_big_job().await, Some(4).filter(|job| *job > 10));
}

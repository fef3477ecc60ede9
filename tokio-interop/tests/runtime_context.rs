//! Where the tokio context is, with `Builder::tokio(true)`: on every thread that polls klaw's
//! tasks (the workers, the blocking pool, the thread inside `block_on`), not elsewhere, and not
//! at all without the option; `tokio::spawn` runs on the tokio runtime's own thread, outside
//! every scope; and the tokio runtime ends with the klaw runtime, even when that is dropped
//! inside an async context.

use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn has_tokio_context() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

#[test]
fn every_thread_that_polls_tasks_is_in_the_tokio_context() -> TestResult {
    let rt = klaw::Runtime::builder().workers(2).tokio(true).build()?;
    assert!(rt.config().tokio);
    assert!(!has_tokio_context(), "only for the length of `block_on`");
    let seen = rt.block_on(async {
        klaw::scope!(|s| {
            let on_worker = s.spawn(async { (has_tokio_context(), thread_name()) });
            let on_pool = s.spawn_blocking(|| (has_tokio_context(), thread_name()));
            let in_block_on = (has_tokio_context(), thread_name());
            Ok([on_worker.await?, on_pool.await?, in_block_on])
        })
    })?;
    assert!(!has_tokio_context(), "`block_on` left the context behind");
    let [worker, pool, main] = seen;
    assert!(worker.0, "worker thread {:?}", worker.1);
    assert!(worker.1.starts_with("klaw-worker-"), "{}", worker.1);
    assert!(pool.0, "blocking-pool thread {:?}", pool.1);
    assert!(pool.1.starts_with("klaw-blocking-"), "{}", pool.1);
    assert!(main.0, "the thread inside `block_on`");
    Ok(())
}

#[test]
fn without_the_option_there_is_no_tokio_context() -> TestResult {
    let rt = klaw::Runtime::builder().workers(1).build()?;
    assert!(!rt.config().tokio, "off by default");
    let (in_task, in_block_on) = rt.block_on(async {
        let in_task = klaw::Handle::current()?.spawn(async { has_tokio_context() }).await?;
        Ok::<_, klaw::Error>((in_task, has_tokio_context()))
    })?;
    assert!(!in_task && !in_block_on);
    // Which is why a tokio type panics there.
    let bind = rt.spawn(async {
        let _ = tokio::net::TcpListener::bind("127.0.0.1:0").await;
    });
    let error = rt.block_on(bind).expect_err("a tokio listener needs a reactor");
    assert!(error.to_string().contains("no reactor running"), "{error}");
    Ok(())
}

#[klaw::test(tokio, workers = 1, timeout = "60s")]
async fn tokio_spawn_runs_on_the_tokio_thread_and_escapes_the_scope() -> TestResult {
    let (tx, rx) = klaw::channel::oneshot::channel();
    klaw::scope!(|s| {
        s.spawn(async move {
            // Not a child of the scope: nothing waits for it, and it outlives the scope.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(thread_name());
            });
        });
        Ok(())
    })?;
    // The scope has returned, and the tokio task is still running somewhere else.
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0);
    let thread = rx.await?;
    assert_eq!(thread, "klaw-tokio");
    Ok(())
}

#[test]
fn the_tokio_runtime_ends_with_the_klaw_runtime() -> TestResult {
    let rt = klaw::Runtime::builder().workers(1).tokio(true).build()?;
    let tokio = rt.block_on(async { tokio::runtime::Handle::current() });
    assert_eq!(tokio.block_on(tokio.spawn(async { 7 }))?, 7, "it runs while klaw does");
    drop(rt);
    // Shut down: what is spawned there now never runs.
    let spawned = tokio.block_on(tokio.spawn(async { 7 }));
    assert!(spawned.as_ref().is_err_and(|error| error.is_cancelled()), "{spawned:?}");
    Ok(())
}

#[klaw::test(workers = 1, timeout = "60s")]
async fn a_runtime_with_tokio_may_be_dropped_inside_a_task() -> TestResult {
    // tokio panics when a runtime is dropped the blocking way in an async context: klaw's
    // shutdown of its tokio runtime does not block.
    let inner = klaw::Runtime::builder().workers(1).tokio(true).build()?;
    assert_eq!(inner.block_on(inner.spawn(async { 1 + 1 }))?, 2);
    // A panic there would be this task's `Err(Panicked)`.
    klaw::Handle::current()?.spawn(async move { drop(inner) }).await?;
    Ok(())
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_owned()
}

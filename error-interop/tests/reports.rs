//! The exact text of a scope's report of several failures: each on its own line, with the task's
//! name and id and the whole chain of its causes; a cancelled child with its typed reason.

use std::io;
use std::time::Duration;

use anyhow::Context as _;
use klaw::Task;
use klaw::TaskHandle;

/// Waits until `handle`'s task has ended, without claiming its outcome.
async fn ended<T: Send + 'static, E: Send + 'static>(handle: &TaskHandle<T, E>) {
    while !handle.is_finished() {
        klaw::time::sleep(Duration::from_millis(1)).await;
    }
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn a_report_of_several_failures_names_every_task_and_its_causes() {
    let mut ids = Vec::new();
    let error = klaw::scope!(name = "report", supervisor, |s| {
        // One after the other, so the report's order is known.
        let config = s.spawn(
            Task::fallible(async {
                Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "klaw.toml is missing"))
                    .context("loading the configuration")
            })
            .name("load_config"),
        );
        ids.push(config.id());
        ended(&config).await;
        let panicked = s.spawn(async { panic!("index 3 out of range") });
        ids.push(panicked.id());
        ended(&panicked).await;
        let slow = s.spawn(
            Task::new(std::future::pending::<()>()).name("slow").timeout(Duration::from_millis(30)),
        );
        ids.push(slow.id());
        ended(&slow).await;
        let refresh = s.spawn(Task::new(std::future::pending::<()>()).name("refresh"));
        ids.push(refresh.id());
        refresh.cancel("no longer needed");
        refresh.await?; // the body's failure: the cancelled child, with its reason
        Ok(())
    })
    .unwrap_err();
    let expected = format!(
        "4 failures in scope `report`:\n  \
         1. task `load_config` ({}) failed: loading the configuration: klaw.toml is missing\n  \
         2. task {} panicked: index 3 out of range\n  \
         3. task `slow` ({}) timed out after 30ms\n  \
         4. task `refresh` ({}) was cancelled: no longer needed",
        ids[0], ids[1], ids[2], ids[3]
    );
    assert_eq!(error.to_string(), expected);
}

/// A scope whose one child fails with a two-link chain; and that child's id.
async fn one_failure() -> (klaw::Error, klaw::task::TaskId) {
    let error = klaw::scope!(|s| {
        s.spawn(
            Task::fallible(async {
                Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "klaw.toml is missing"))
                    .context("loading the configuration")
            })
            .name("load_config"),
        );
        Ok(())
    })
    .unwrap_err();
    let klaw::Error::Task { task: Some(task), .. } = &error else { panic!("{error:?}") };
    let id = task.id();
    (error, id)
}

#[klaw::test(workers = 2, timeout = "10s")]
async fn one_failure_reads_as_a_chain_in_anyhow_and_eyre() {
    let (error, id) = one_failure().await;
    let anyhow_error = anyhow::Error::from(error);
    let chain = format!(
        "task `load_config` ({id}) failed: loading the configuration: klaw.toml is missing"
    );
    assert_eq!(format!("{anyhow_error:#}"), chain);
    let causes = format!(
        "task `load_config` ({id}) failed\n\nCaused by:\n    \
         0: loading the configuration\n    \
         1: klaw.toml is missing"
    );
    // (A backtrace may follow, if `RUST_BACKTRACE` asks for one.)
    let debug = format!("{anyhow_error:?}");
    assert!(
        debug == causes || debug.starts_with(&format!("{causes}\n\nStack backtrace:")),
        "{debug}"
    );

    let (error, id) = one_failure().await;
    let report = eyre::Report::from(error);
    assert_eq!(
        format!("{report:#}"),
        format!(
            "task `load_config` ({id}) failed: loading the configuration: klaw.toml is missing"
        )
    );
}

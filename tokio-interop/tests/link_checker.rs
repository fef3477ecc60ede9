//! The link checker's core, as the example runs it, against the site it generates: the report's
//! numbers are the site's own (pages reachable, broken links and where they are, one retry per
//! flaky page), with a few fetchers, a retry policy and a deadline that does not pass.
//!
//! Without `tokio` in `#[klaw::test(..)]` this fails at once: binding the site's listener
//! panics with "there is no reactor running".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klaw_tokio_interop::{
    CheckOptions, EXTERNAL_LINK, Ending, Problem, Progress, Report, Site, SiteSpec,
    check_generated_site,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The path of a URL of the site: `/page/3`.
fn path(url: &str) -> String {
    let url = reqwest::Url::parse(url).expect("the report holds URLs");
    url.path().to_owned()
}

/// The report's broken links as the site lists them: path → paths of the pages linking to it.
fn broken_paths(report: &Report) -> BTreeMap<String, BTreeSet<String>> {
    report
        .broken
        .iter()
        .map(|broken| (path(&broken.url), broken.found_on.iter().map(|url| path(url)).collect()))
        .collect()
}

#[klaw::test(tokio, workers = 2, timeout = "120s")]
async fn the_report_matches_the_generated_site() -> TestResult {
    let spec = SiteSpec {
        pages: 200,
        broken_every: 13,
        slow_every: 11,
        slow_delay: Duration::from_millis(20),
        flaky_every: 9,
        orphans: 4,
    };
    let site = Arc::new(Site::generate(spec));
    let options = CheckOptions {
        fetchers: 4,
        timeout: Some(Duration::from_secs(60)),
        backoff: Duration::from_millis(5),
        progress_every: 25,
        ..CheckOptions::default()
    };
    let seen = Mutex::new(Vec::new());
    let progress = |progress: &Progress| seen.lock().unwrap().push(progress.clone());

    let report =
        check_generated_site(site.clone(), &options, std::future::pending(), &progress).await?;

    assert_eq!(report.ending, Ending::Complete, "{report}");
    let expected_broken = site.broken_links();
    assert_eq!(report.ok, site.reachable_pages(), "{report}");
    assert_eq!(report.ok, 200);
    assert_eq!(report.checked, report.ok + expected_broken.len());
    assert_eq!(broken_paths(&report), expected_broken, "{report}");
    assert!(report.broken.iter().all(|broken| matches!(broken.problem, Problem::Status(404))));
    assert_eq!(report.retries, site.flaky_pages() as u64, "one retry per flaky page: {report}");
    assert!(site.flaky_pages() > 0 && !expected_broken.is_empty(), "the site tests nothing");
    assert_eq!((report.external, report.unchecked), (1, 0));
    // Every page was asked for once, the flaky ones twice; the orphans never.
    assert_eq!(
        site.requests(),
        (site.reachable_pages() + site.flaky_pages()) as u64,
        "a page was fetched twice, or an orphan was found"
    );

    let seen = seen.into_inner().unwrap();
    let checked: Vec<usize> = seen.iter().map(|progress| progress.checked).collect();
    let every_25: Vec<usize> = (1..=report.checked / 25).map(|n| n * 25).collect();
    assert_eq!(checked, every_25, "a progress report every 25 pages");

    let text = report.to_string();
    assert!(text.contains(&format!("{} pages checked", report.checked)), "{text}");
    assert!(text.contains("/missing/shared (HTTP 404)"), "{text}");
    assert!(text.contains("linked from http://"), "{text}");
    assert!(!text.contains(EXTERNAL_LINK), "an external link was checked: {text}");
    assert_eq!(report.exit_code(false), 0);
    assert_eq!(report.exit_code(true), 1, "--strict fails on broken links");
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0, "the check left a task behind");
    Ok(())
}

#[klaw::test(tokio, workers = 2, timeout = "120s")]
async fn an_interrupt_gives_a_partial_report_after_every_fetch_ended() -> TestResult {
    // Every other page hangs (the root does not), so the check is still running when the
    // interrupt comes.
    let spec = SiteSpec {
        pages: 2000,
        slow_every: 2,
        slow_delay: Duration::from_secs(3600),
        flaky_every: 0,
        ..SiteSpec::default()
    };
    let site = Arc::new(Site::generate(spec));
    let (interrupt_tx, interrupt_rx) = klaw::channel::oneshot::channel::<()>();
    let interrupt = async move {
        let _ = interrupt_rx.await;
    };
    let report = klaw::scope!(|s| {
        // The "Ctrl-C" comes once the root was checked and its links are being fetched.
        let waiting = site.clone();
        s.spawn(async move {
            while waiting.requests() < 9 {
                klaw::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = interrupt_tx.send(());
        });
        Ok(check_generated_site(site.clone(), &CheckOptions::default(), interrupt, &|_| {}).await?)
    })?;
    assert_eq!(report.ending, Ending::Interrupted);
    assert_eq!(report.exit_code(false), 130);
    assert!(report.checked >= 1, "the root was checked: {report}");
    assert!(report.unchecked >= 1, "the hanging pages were not: {report}");
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0, "a fetch outlived the check");
    Ok(())
}

//! klaw with tokio-based crates: its `tokio` feature and `#[klaw::main(tokio)]` give a runtime
//! a tokio runtime whose I/O and time drivers serve axum, reqwest and `tokio::net` inside klaw
//! tasks, where klaw's scopes, deadlines and `select!` govern them.
//!
//! The library is a concurrent link checker, the core of `examples/link_checker.rs`:
//! [`Site`] generates a site (pages with links, some broken, some slow, some that fail once)
//! and serves it with axum on loopback; [`check_site`] crawls it from its root with N fetchers
//! (reqwest) in one bounded `scope!`, retrying transient failures with exponential backoff,
//! under a deadline, and returns a [`Report`]. [`check_generated_site`] does both in one scope.
//! The tests (`tests/`) check the report against the site, and the interplay itself: an axum
//! server and a reqwest client in one scope, a deadline that cancels fetches mid-way with no
//! connection left behind, and `tokio::net` under `select!`.

mod check;
mod report;
mod site;

use std::future::Future;
use std::sync::Arc;

pub use check::{CheckError, CheckOptions, check_site};
pub use report::{Broken, Ending, Problem, Progress, Report};
pub use site::{EXTERNAL_LINK, Site, SiteSpec};

/// Serves `site` on a loopback port and checks it from its root page, both in one scope: the
/// server is a background child, so the scope ends when the check is done, and cancels it.
/// See [`check_site`] for `options`, `interrupt` and `progress`.
///
/// # Errors
/// [`CheckError::Bind`] if no loopback port can be had, and what [`check_site`] returns.
///
/// ```
/// # #[klaw::main(tokio)]
/// # async fn main() -> Result<(), klaw_tokio_interop::CheckError> {
/// use std::sync::Arc;
/// use klaw_tokio_interop::{CheckOptions, Ending, Site, SiteSpec, check_generated_site};
/// let site = Arc::new(Site::generate(SiteSpec { pages: 30, slow_every: 0, ..Default::default() }));
/// let report = check_generated_site(site.clone(), &CheckOptions::default(), std::future::pending(), &|_| {}).await?;
/// assert_eq!((report.ending, report.ok), (Ending::Complete, 30));
/// # Ok(())
/// # }
/// ```
pub async fn check_generated_site(
    site: Arc<Site>,
    options: &CheckOptions,
    interrupt: impl Future<Output = ()> + Send,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Report, CheckError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(CheckError::Bind)?;
    let root = format!("http://{}/page/0", listener.local_addr().map_err(CheckError::Bind)?);
    let checked = klaw::scope!(name = "link-checker", |s| {
        s.spawn_background(klaw::Task::fallible(site.serve(listener)).name("site"));
        Ok(check_site(&root, options, interrupt, progress).await)
    });
    // The scope fails only if the server does (axum retries failed accepts, so it does not).
    checked.map_err(CheckError::Crawl)?
}

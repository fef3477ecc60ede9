//! The site the link checker checks: pages generated from a [`SiteSpec`] and served by axum on
//! loopback. The site knows its own answers (which pages are reachable from the root, which
//! links are broken and where they are, how many pages fail once), so a test can hold the
//! checker's report against them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The link to another host that the root page carries: the checker skips it (it checks one
/// site, and these tests never leave loopback).
pub const EXTERNAL_LINK: &str = "https://example.invalid/elsewhere";

/// What to generate. Page `i` links to `3i+1`, `3i+2` and `3i+3` (a tree, so every page is
/// reachable from `/page/0`), back to the root, and across to `(7i+5) mod pages`.
///
/// ```
/// let spec = klaw_tokio_interop::SiteSpec { pages: 40, ..Default::default() };
/// assert_eq!(spec.pages, 40);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    /// Pages `/page/0` to `/page/{pages - 1}`; `/page/0` is the root. At least 1.
    pub pages: usize,
    /// Every `broken_every`-th page links to a page that does not exist (404), and every page
    /// that is a multiple of it links to one shared missing page. 0: no broken links.
    pub broken_every: usize,
    /// Every `slow_every`-th page answers after `slow_delay`. 0: none is slow.
    pub slow_every: usize,
    /// How long a slow page takes.
    pub slow_delay: Duration,
    /// Every `flaky_every`-th page answers `503 Service Unavailable` the first time it is asked
    /// for, and normally after that. 0: none is flaky.
    pub flaky_every: usize,
    /// Pages that exist but that no page links to: the checker must not find them.
    pub orphans: usize,
}

impl Default for SiteSpec {
    /// 500 pages, a broken link on every 17th, a slow page (200 ms) every 23rd, a flaky one
    /// every 29th, and 5 orphans.
    ///
    /// ```
    /// let spec = klaw_tokio_interop::SiteSpec::default();
    /// assert_eq!((spec.pages, spec.orphans), (500, 5));
    /// ```
    fn default() -> Self {
        SiteSpec {
            pages: 500,
            broken_every: 17,
            slow_every: 23,
            slow_delay: Duration::from_millis(200),
            flaky_every: 29,
            orphans: 5,
        }
    }
}

/// A generated site: its pages' links, and how many times each page was asked for (a flaky
/// page fails its first request only).
///
/// ```
/// use klaw_tokio_interop::{Site, SiteSpec};
/// let site = Site::generate(SiteSpec { pages: 10, broken_every: 4, orphans: 2, ..Default::default() });
/// assert_eq!(site.reachable_pages(), 10); // the orphans are not reachable
/// assert_eq!(site.broken_links().len(), 3); // /missing/3, /missing/7, and the shared one
/// ```
#[derive(Debug)]
pub struct Site {
    spec: SiteSpec,
    /// The links of each page, orphans included, as paths (`/page/3`) or absolute URLs.
    links: Vec<Vec<String>>,
    /// Requests seen per page.
    hits: Vec<AtomicU32>,
}

impl Site {
    /// Generates the pages of `spec` (a `pages` of 0 is taken as 1: there is always a root).
    ///
    /// ```
    /// let site = klaw_tokio_interop::Site::generate(Default::default());
    /// assert_eq!(site.reachable_pages(), 500);
    /// ```
    pub fn generate(spec: SiteSpec) -> Site {
        let spec = SiteSpec { pages: spec.pages.max(1), ..spec };
        let pages = spec.pages;
        let total = pages + spec.orphans;
        let links = (0..total)
            .map(|i| {
                let mut links: Vec<String> = (1..=3)
                    .map(|k| 3 * i + k)
                    .filter(|&child| child < pages)
                    .map(|child| format!("/page/{child}"))
                    .collect();
                if i > 0 {
                    links.push("/page/0".to_owned());
                }
                links.push(format!("/page/{}", (7 * i + 5) % pages));
                if every(spec.broken_every, i) {
                    links.push(format!("/missing/{i}"));
                }
                if spec.broken_every > 0 && i > 0 && i % spec.broken_every == 0 {
                    links.push("/missing/shared".to_owned());
                }
                if i == 0 {
                    links.push(EXTERNAL_LINK.to_owned());
                }
                links
            })
            .collect();
        let hits = (0..total).map(|_| AtomicU32::new(0)).collect();
        Site { spec, links, hits }
    }

    /// The spec it was generated from.
    ///
    /// ```
    /// let site = klaw_tokio_interop::Site::generate(Default::default());
    /// assert_eq!(site.spec().pages, 500);
    /// ```
    pub fn spec(&self) -> &SiteSpec {
        &self.spec
    }

    /// The pages a crawl from the root reaches (each answers 200, possibly after a 503).
    ///
    /// ```
    /// use klaw_tokio_interop::{Site, SiteSpec};
    /// assert_eq!(Site::generate(SiteSpec { pages: 7, orphans: 3, ..Default::default() }).reachable_pages(), 7);
    /// ```
    pub fn reachable_pages(&self) -> usize {
        self.reachable().len()
    }

    /// Every broken link a crawl from the root finds: the missing path, and the pages (paths)
    /// that link to it.
    ///
    /// ```
    /// use klaw_tokio_interop::{Site, SiteSpec};
    /// let site = Site::generate(SiteSpec { pages: 10, broken_every: 4, ..Default::default() });
    /// let broken = site.broken_links();
    /// assert_eq!(broken["/missing/3"].iter().collect::<Vec<_>>(), ["/page/3"]);
    /// assert_eq!(broken["/missing/shared"].len(), 2); // /page/4 and /page/8
    /// ```
    pub fn broken_links(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut broken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for page in self.reachable() {
            for link in &self.links[page] {
                if link.starts_with("/missing/") {
                    broken.entry(link.clone()).or_default().insert(format!("/page/{page}"));
                }
            }
        }
        broken
    }

    /// The reachable pages that answer 503 once: a checker that retries makes exactly this
    /// many retries (when nothing else fails on the way).
    ///
    /// ```
    /// use klaw_tokio_interop::{Site, SiteSpec};
    /// let site = Site::generate(SiteSpec { pages: 10, flaky_every: 3, ..Default::default() });
    /// assert_eq!(site.flaky_pages(), 3); // pages 2, 5 and 8
    /// ```
    pub fn flaky_pages(&self) -> usize {
        self.reachable().into_iter().filter(|&page| every(self.spec.flaky_every, page)).count()
    }

    /// Requests the server has answered (or is answering), over every page.
    ///
    /// ```
    /// let site = klaw_tokio_interop::Site::generate(Default::default());
    /// assert_eq!(site.requests(), 0);
    /// ```
    pub fn requests(&self) -> u64 {
        self.hits.iter().map(|hits| u64::from(hits.load(Ordering::Relaxed))).sum()
    }

    /// Breadth-first from the root over the links to existing pages.
    fn reachable(&self) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([0]);
        let mut queue = VecDeque::from([0]);
        while let Some(page) = queue.pop_front() {
            for link in &self.links[page] {
                let target = link.strip_prefix("/page/").and_then(|id| id.parse::<usize>().ok());
                if let Some(target) = target.filter(|&t| t < self.links.len()) {
                    if seen.insert(target) {
                        queue.push_back(target);
                    }
                }
            }
        }
        seen
    }

    /// The site as an axum router: `/page/{id}`, and 404 for anything else.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let site = Arc::new(klaw_tokio_interop::Site::generate(Default::default()));
    /// let _router: axum::Router = site.router();
    /// ```
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/page/{id}", get(page)).with_state(self.clone())
    }

    /// Serves the site on `listener` until the future is dropped. Each connection is served by
    /// a task that axum hands to `tokio::spawn`; dropping this future stops accepting and
    /// makes them finish their request in flight and close.
    ///
    /// # Errors
    /// What axum's `serve` returns (it retries failed accepts itself).
    ///
    /// ```
    /// # #[klaw::main(tokio)]
    /// # async fn main() -> Result<(), klaw::Error> {
    /// use std::sync::Arc;
    /// let site = Arc::new(klaw_tokio_interop::Site::generate(Default::default()));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let served = klaw::cancel::move_on_after(std::time::Duration::from_millis(10), site.serve(listener));
    /// assert!(served.await.is_none(), "a server runs until it is cancelled");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The HTML of page `id`: a title and its links.
    fn html(&self, id: usize) -> String {
        let mut html =
            format!("<!doctype html>\n<html><head><title>Page {id}</title></head><body>");
        let _ = write!(html, "<h1>Page {id}</h1><ul>");
        for link in &self.links[id] {
            let _ = write!(html, "<li><a href=\"{link}\">{link}</a></li>");
        }
        html.push_str("</ul></body></html>\n");
        html
    }
}

/// `GET /page/{id}`.
async fn page(State(site): State<Arc<Site>>, Path(id): Path<String>) -> Response {
    let Some(id) = id.parse::<usize>().ok().filter(|&id| id < site.links.len()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let first = site.hits[id].fetch_add(1, Ordering::Relaxed) == 0;
    if first && every(site.spec.flaky_every, id) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if every(site.spec.slow_every, id) {
        // This handler runs on a task axum gave to `tokio::spawn`: tokio's timer is the one here.
        tokio::time::sleep(site.spec.slow_delay).await;
    }
    Html(site.html(id)).into_response()
}

/// Page `i` is one of every `n`-th (the last of each run of `n`); never when `n` is 0.
fn every(n: usize, i: usize) -> bool {
    n > 0 && i % n == n - 1
}

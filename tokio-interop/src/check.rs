//! The checker: a crawl from a root URL with at most `fetchers` requests at once, all children
//! of one `scope!(limit = ..)`, retries with exponential backoff for transient failures, and a
//! deadline over the whole check.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use klaw::CancelReason;
use klaw::cancel::Region;
use reqwest::{StatusCode, Url};

use crate::report::{Broken, Ending, Problem, Progress, Report};

/// How to check. `CheckOptions::default()`: 8 fetchers, no deadline, 10 s per attempt, 4
/// attempts with a backoff of 50 ms that doubles, progress every 50 pages.
///
/// ```
/// use std::time::Duration;
/// let options = klaw_tokio_interop::CheckOptions { fetchers: 4, timeout: Some(Duration::from_secs(30)), ..Default::default() };
/// assert_eq!(options.max_attempts, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// At most this many requests in flight (the scope's `limit`). At least 1.
    pub fetchers: usize,
    /// A deadline for the whole check; what was done by then is reported.
    pub timeout: Option<Duration>,
    /// A deadline for each attempt (the request and reading its body).
    pub request_timeout: Duration,
    /// Attempts per URL when it fails in a way that may pass (a 5xx or 429 status, a timeout,
    /// a connection error). At least 1.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    pub backoff: Duration,
    /// Report progress after every this many pages checked. 0: never.
    pub progress_every: usize,
}

impl Default for CheckOptions {
    /// ```
    /// let options = klaw_tokio_interop::CheckOptions::default();
    /// assert_eq!((options.fetchers, options.timeout), (8, None));
    /// ```
    fn default() -> Self {
        CheckOptions {
            fetchers: 8,
            timeout: None,
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff: Duration::from_millis(50),
            progress_every: 50,
        }
    }
}

/// Why a check could not run, or could not finish its work.
///
/// ```
/// let error = klaw_tokio_interop::CheckError::NoFetchers;
/// assert_eq!(error.to_string(), "--fetchers must be at least 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// `fetchers` is 0.
    #[error("--fetchers must be at least 1")]
    NoFetchers,
    /// `max_attempts` is 0.
    #[error("at least one attempt per page is needed")]
    NoAttempts,
    /// The root is not an absolute `http` URL.
    #[error("the root {root:?} is not an http URL")]
    BadRoot {
        /// The root as given.
        root: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The site's server could not listen on loopback.
    #[error("cannot listen on loopback")]
    Bind(#[source] std::io::Error),
    /// The crawl itself failed: a fetcher panicked, say. (A page that fails is not this: it is
    /// a broken link in the report.)
    #[error("the crawl failed")]
    Crawl(#[source] klaw::Error),
}

/// Checks every link reachable from `root` on `root`'s own host (other hosts are counted and
/// skipped), and reports. It returns early with a partial report when `options.timeout` passes
/// (`Ending::Deadline`) or when `interrupt` completes (`Ending::Interrupted`); either way every
/// fetch has ended by then. `progress` is called every `options.progress_every` pages.
///
/// Call it inside a klaw runtime with the `tokio` option: the fetchers use reqwest.
///
/// # Errors
/// [`CheckError`] for bad options, and if the crawl itself fails.
///
/// ```
/// # #[klaw::main(tokio)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::sync::Arc;
/// use klaw_tokio_interop::{CheckOptions, Site, SiteSpec, check_site};
/// let site = Arc::new(Site::generate(SiteSpec { pages: 20, slow_every: 0, ..Default::default() }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let root = format!("http://{}/page/0", listener.local_addr()?);
/// let report = klaw::scope!(|s| {
///     s.spawn_background(klaw::Task::fallible(site.clone().serve(listener)));
///     Ok(check_site(&root, &CheckOptions::default(), std::future::pending(), &|_| {}).await?)
/// })?;
/// assert_eq!(report.ok, 20);
/// assert_eq!(report.broken.len(), site.broken_links().len());
/// # Ok(())
/// # }
/// ```
pub async fn check_site(
    root: &str,
    options: &CheckOptions,
    interrupt: impl Future<Output = ()> + Send,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Report, CheckError> {
    if options.fetchers == 0 {
        return Err(CheckError::NoFetchers);
    }
    if options.max_attempts == 0 {
        return Err(CheckError::NoAttempts);
    }
    let root_url = Url::parse(root)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| CheckError::BadRoot { root: root.to_owned() })?;
    // No proxy: a checker of a loopback site must not send it through `HTTP_PROXY`.
    let client = reqwest::Client::builder().no_proxy().build().map_err(CheckError::Client)?;
    let started = klaw::time::now();
    let mut crawl = Crawl::new(root_url);
    let region = match options.timeout {
        Some(timeout) => Region::new().timeout(timeout),
        None => Region::new(),
    };
    // The crawl's state lives here, outside the future that is cancelled, so a deadline or an
    // interrupt still leaves everything checked so far to report.
    let ending = klaw::select! {
        region.run(crawl.run(&client, options, progress)) -> outcome => match outcome {
            Ok(Ok(())) => Ending::Complete,
            Ok(Err(error)) => return Err(CheckError::Crawl(error)),
            Err(CancelReason::Deadline) => Ending::Deadline(options.timeout.unwrap_or_default()),
            Err(reason) => Ending::Cancelled(reason),
        },
        interrupt -> () => Ending::Interrupted,
    };
    Ok(crawl.report(ending, klaw::time::now() - started))
}

/// What the crawl has found so far.
#[derive(Debug)]
struct Crawl {
    root: Url,
    /// Every URL of the site seen in a link (or the root): each is fetched once.
    seen: HashSet<Url>,
    /// For each URL, the pages that link to it.
    found_on: BTreeMap<Url, BTreeSet<Url>>,
    /// URLs that answered with a page.
    ok: usize,
    /// URLs that did not, and why.
    broken: BTreeMap<Url, Problem>,
    /// Links to other hosts, skipped.
    external: BTreeSet<Url>,
    retries: u64,
}

impl Crawl {
    fn new(root: Url) -> Self {
        Crawl {
            seen: HashSet::from([root.clone()]),
            root,
            found_on: BTreeMap::new(),
            ok: 0,
            broken: BTreeMap::new(),
            external: BTreeSet::new(),
            retries: 0,
        }
    }

    /// Fetches the root, then every new link of every page fetched, `fetchers` at a time: each
    /// fetch is a child of one scope, which returns only once all of them have ended.
    async fn run(
        &mut self,
        client: &reqwest::Client,
        options: &CheckOptions,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<(), klaw::Error> {
        let retry = Arc::new(RetryPolicy::from(options));
        let started = klaw::time::now();
        klaw::scope!(name = "crawl", limit = options.fetchers, |s| {
            let mut fetches = s.child_set();
            fetches.spawn(fetch(client.clone(), self.root.clone(), retry.clone()));
            while let Some(fetched) = fetches.next_finished().await {
                for link in self.record(fetched?) {
                    fetches.spawn(fetch(client.clone(), link, retry.clone()));
                }
                let checked = self.checked();
                if options.progress_every > 0 && checked % options.progress_every == 0 {
                    progress(&Progress {
                        checked,
                        queued: fetches.len(),
                        broken: self.broken.len(),
                        retries: self.retries,
                        elapsed: klaw::time::now() - started,
                    });
                }
            }
            Ok(())
        })
    }

    /// Takes in one fetch; returns the links not seen before, to fetch next.
    fn record(&mut self, fetched: Fetched) -> Vec<Url> {
        self.retries += u64::from(fetched.retries);
        let links = match fetched.outcome {
            Ok(links) => links,
            Err(problem) => {
                self.broken.insert(fetched.url, problem);
                return Vec::new();
            }
        };
        self.ok += 1;
        let mut new = Vec::new();
        for link in links {
            if link.origin() != self.root.origin() {
                self.external.insert(link);
                continue;
            }
            self.found_on.entry(link.clone()).or_default().insert(fetched.url.clone());
            if self.seen.insert(link.clone()) {
                new.push(link);
            }
        }
        new
    }

    fn checked(&self) -> usize {
        self.ok + self.broken.len()
    }

    fn report(self, ending: Ending, elapsed: Duration) -> Report {
        let checked = self.checked();
        let Crawl { root, seen, mut found_on, ok, broken, external, retries } = self;
        let broken = broken
            .into_iter()
            .map(|(url, problem)| {
                let found_on = found_on.remove(&url).unwrap_or_default();
                Broken {
                    url: url.to_string(),
                    problem,
                    found_on: found_on.into_iter().map(String::from).collect(),
                }
            })
            .collect();
        Report {
            root: root.to_string(),
            ending,
            checked,
            ok,
            broken,
            external: external.len(),
            unchecked: seen.len() - checked,
            retries,
            elapsed,
        }
    }
}

/// When and how often a fetch tries again.
#[derive(Debug)]
struct RetryPolicy {
    request_timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
}

impl From<&CheckOptions> for RetryPolicy {
    fn from(options: &CheckOptions) -> Self {
        RetryPolicy {
            request_timeout: options.request_timeout,
            max_attempts: options.max_attempts,
            backoff: options.backoff,
        }
    }
}

/// One URL, fetched: its page's links, or why it has none; and the retries it took.
#[derive(Debug)]
struct Fetched {
    url: Url,
    outcome: Result<Vec<Url>, Problem>,
    retries: u32,
}

/// Fetches `url`, retrying transient failures with exponential backoff; a named klaw task, so a
/// runtime dump shows each fetch in flight. Every wait in it (the request, the body, the
/// backoff) is a klaw deadline or timer, so cancelling the scope stops it at once.
#[klaw::task(name = "fetch")]
async fn fetch(client: reqwest::Client, url: Url, retry: Arc<RetryPolicy>) -> Fetched {
    let mut retries = 0;
    loop {
        let outcome = attempt(&client, &url, retry.request_timeout).await;
        match outcome {
            Err(problem) if problem.is_transient() && retries + 1 < retry.max_attempts => {
                let backoff = retry.backoff.saturating_mul(1 << retries.min(16));
                klaw::time::sleep(backoff).await;
                retries += 1;
            }
            outcome => {
                let outcome = outcome.map(|body| links(&url, &body));
                return Fetched { url, outcome, retries };
            }
        }
    }
}

/// One request and its body, under a klaw deadline.
async fn attempt(
    client: &reqwest::Client,
    url: &Url,
    timeout: Duration,
) -> Result<String, Problem> {
    match klaw::cancel::fail_after(timeout, get(client, url)).await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(status))) => Err(Problem::Status(status.as_u16())),
        Ok(Err(error)) => Err(Problem::Request(Arc::new(error))),
        Err(_elapsed) => Err(Problem::TimedOut(timeout)),
    }
}

/// The body of `url`, or the status that was not a success.
async fn get(client: &reqwest::Client, url: &Url) -> reqwest::Result<Result<String, StatusCode>> {
    let response = client.get(url.clone()).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Ok(Err(status));
    }
    Ok(Ok(response.text().await?))
}

/// The targets of a page's `href="..."` attributes, resolved against the page's URL, without
/// their fragments. A link that does not parse is skipped (a checker of HTML would report it;
/// this one checks the generated site).
fn links(page: &Url, html: &str) -> Vec<Url> {
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("href=\"") {
        rest = &rest[start + "href=\"".len()..];
        let Some(end) = rest.find('"') else { break };
        if let Ok(mut link) = page.join(&rest[..end]) {
            link.set_fragment(None);
            links.push(link);
        }
        rest = &rest[end..];
    }
    links
}

impl Problem {
    /// A failure that may pass if tried again.
    fn is_transient(&self) -> bool {
        match self {
            Problem::Status(status) => {
                let status = StatusCode::from_u16(*status).ok();
                status.is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS)
            }
            Problem::TimedOut(_) | Problem::Request(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_resolved_against_the_page_and_lose_their_fragment() {
        let page = Url::parse("http://127.0.0.1:1/page/3").unwrap();
        let html =
            r#"<a href="/page/4">x</a> <a href="5#top">y</a> <a href="https://a.example/">z</a>"#;
        let found: Vec<String> = links(&page, html).into_iter().map(String::from).collect();
        assert_eq!(
            found,
            ["http://127.0.0.1:1/page/4", "http://127.0.0.1:1/page/5", "https://a.example/"]
        );
    }

    #[test]
    fn only_failures_that_may_pass_are_retried() {
        assert!(Problem::Status(503).is_transient());
        assert!(Problem::Status(429).is_transient());
        assert!(Problem::TimedOut(Duration::from_secs(1)).is_transient());
        assert!(!Problem::Status(404).is_transient());
        assert!(!Problem::Status(410).is_transient());
    }
}

//! An axum server and a reqwest client in one `scope!`, on a runtime with the `tokio` option:
//! 200 fetches under `limit = 8` and a deadline all succeed; and a deadline that cancels the
//! fetches mid-way leaves no fetch, no handler and no connection behind.
//!
//! Without `tokio` in `#[klaw::test(..)]` both fail at once: binding the tokio listener panics
//! with "there is no reactor running".

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use common::{AliveCount, CountingListener, eventually};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A client that never goes through a proxy from the environment: these tests stay on loopback.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("a client without TLS builds")
}

/// Requests being handled now, and the most at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

async fn item(State(in_flight): State<Arc<InFlight>>, Path(id): Path<u32>) -> String {
    let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    in_flight.peak.fetch_max(now, Ordering::SeqCst);
    // A tokio timer in the handler (which runs on the task axum gave to `tokio::spawn`), so
    // that requests overlap.
    tokio::time::sleep(Duration::from_millis(2)).await;
    in_flight.now.fetch_sub(1, Ordering::SeqCst);
    format!("item {id}")
}

#[klaw::test(tokio, workers = 2, timeout = "120s")]
async fn an_axum_server_and_a_reqwest_client_in_one_scope_fetch_200_urls() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let in_flight = Arc::new(InFlight::default());
    let app = Router::new().route("/item/{id}", get(item)).with_state(in_flight.clone());
    let client = client();

    let bodies = klaw::scope!(limit = 8, timeout = "60s", |s| {
        // The server does not count against the limit, and the scope cancels it once the
        // fetches are done.
        s.spawn_background(klaw::Task::fallible(async move { axum::serve(listener, app).await }));
        let mut fetches = s.child_set();
        for id in 0..200u32 {
            let client = client.clone();
            fetches.spawn(klaw::Task::fallible(async move {
                let url = format!("http://{address}/item/{id}");
                let response = client.get(url).send().await?.error_for_status()?;
                Ok::<_, reqwest::Error>((id, response.text().await?))
            }));
        }
        let mut bodies = Vec::new();
        while let Some(fetched) = fetches.next_finished().await {
            bodies.push(fetched?);
        }
        Ok(bodies)
    })?;

    assert_eq!(bodies.len(), 200);
    let ids: BTreeSet<u32> = bodies.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..200).collect());
    for (id, body) in &bodies {
        assert_eq!(body, &format!("item {id}"));
    }
    let peak = in_flight.peak.load(Ordering::SeqCst);
    assert!((1..=8).contains(&peak), "{peak} requests were handled at once under limit = 8");
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0, "the scope left a task behind");
    Ok(())
}

/// What the server side of the cancellation test observes.
#[derive(Debug, Default)]
struct Hanging {
    /// Handlers running now (each one hangs): they end when their connection does.
    handlers: Arc<AliveCount>,
    /// Sends the number of handlers that ever started hanging.
    started: Option<klaw::channel::watch::Sender<usize>>,
}

async fn page(State(hanging): State<Arc<Hanging>>, Path(id): Path<u32>) -> String {
    if id < GOOD_PAGES {
        return format!("page {id}");
    }
    let _alive = hanging.handlers.enter();
    if let Some(started) = &hanging.started {
        started.send_modify(|started| *started += 1);
    }
    std::future::pending::<String>().await
}

/// Pages `0..GOOD_PAGES` answer at once; every later one hangs.
const GOOD_PAGES: u32 = 20;
const LIMIT: usize = 8;

#[klaw::test(tokio, workers = 2, timeout = "120s")]
async fn a_deadline_cancels_fetches_mid_way_and_leaves_no_connection_open() -> TestResult {
    let (listener, connections) = CountingListener::bind().await?;
    let address = axum::serve::Listener::local_addr(&listener)?;
    let (started_tx, started) = klaw::channel::watch::channel(0usize);
    let hanging = Arc::new(Hanging { handlers: Arc::default(), started: Some(started_tx) });
    let app = Router::new().route("/page/{id}", get(page)).with_state(hanging.clone());
    let client = client();
    let fetches_alive = Arc::new(AliveCount::default());
    let succeeded = Arc::new(AtomicUsize::new(0));

    let outcome = klaw::scope!(limit = LIMIT, |s| {
        s.spawn_background(klaw::Task::fallible(async move { axum::serve(listener, app).await }));
        for id in 0..200u32 {
            let (client, alive, succeeded) =
                (client.clone(), fetches_alive.clone(), succeeded.clone());
            s.spawn(klaw::Task::fallible(async move {
                let _alive = alive.enter();
                let url = format!("http://{address}/page/{id}");
                client.get(url).send().await?.error_for_status()?.text().await?;
                succeeded.fetch_add(1, Ordering::SeqCst);
                Ok::<_, reqwest::Error>(())
            }));
        }
        // Children start in spawn order as slots free up, and a slot is freed only once its
        // child has ended. So once LIMIT handlers hang, every slot holds a hanging fetch and
        // all the good ones have ended: from here on nothing finishes.
        let mut started = started;
        started.wait_for(|started| *started >= LIMIT).await?;
        // The deadline: it fails the body, and the scope cancels every fetch, in flight or
        // waiting for a slot.
        klaw::cancel::fail_after(Duration::from_millis(50), std::future::pending::<()>()).await?;
        Ok(())
    });

    // The deadline ended the scope...
    let error = outcome.expect_err("the hanging fetches cannot finish");
    assert!(
        matches!(&error, klaw::Error::Body(body) if body.is::<klaw::time::Elapsed>()),
        "not the deadline: {error:?}"
    );
    // ...only after every child had ended: no fetch is alive, no task is left.
    assert_eq!(fetches_alive.get(), 0, "the scope returned before its children ended");
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0, "the scope left a task behind");
    assert_eq!(succeeded.load(Ordering::SeqCst), GOOD_PAGES as usize);

    // Each cancelled request dropped its connection, and the server saw every one close. This
    // happens on tokio's thread (axum serves each connection in a task it gave to
    // `tokio::spawn`), so it is waited for, with a bound that only keeps a failure from hanging.
    assert!(connections.accepted() >= LIMIT, "{} connections", connections.accepted());
    drop(client);
    let all_closed = eventually(Duration::from_secs(30), || {
        connections.open() == 0 && hanging.handlers.get() == 0
    })
    .await;
    assert!(
        all_closed,
        "{} of {} connections still open, {} handlers still running",
        connections.open(),
        connections.accepted(),
        hanging.handlers.get()
    );
    Ok(())
}

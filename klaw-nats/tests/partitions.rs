//! Half-open partitions and receivers that die holding a message: faults in which nothing tells
//! the client that anything is wrong. A proxy between a client and the server swallows every
//! byte while every socket stays open (`Proxy::freeze`), as a link or a middlebox that dies
//! silently does, until the client's pings time out (`Proxy::thaw` ends it as that would:
//! the connection dropped, then back). What a client sent meanwhile never reached the server,
//! and no answer comes to what it asked.
//!
//! Each probe runs under a watchdog: a hang fails it. None asserts how long anything took.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    HELD_DROPPED, HELD_STARTED, NatsServer, Proxy, held_until_cancelled, port_of, wait_until,
    watchdog as probe,
};
use futures_util::StreamExt;
use klaw::Runtime;
use klaw::channel::RecvError;
use klaw_nats::{Nats, NatsBackend, NatsConfig, Worker};

fn nats(config: NatsConfig) -> Nats {
    klaw::runtime::block_on(Nats::connect(config)).unwrap()
}

/// A `recv` waiting while its connection freezes: the pull request it makes then is lost, and
/// a request that expects an answer at once has no expiry of its own. Once the link is back, a
/// value sent reaches the `recv`: it did not wait for ever on a request nobody will answer.
#[test]
fn a_recv_waiting_through_a_half_open_partition_receives_what_is_sent_after() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let here = nats(NatsConfig::new(proxy.url()).namespace("halfopen"));
        let there = nats(server.config().namespace("halfopen"));
        let (_, rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (tx, _) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();
        let rt = Runtime::builder().workers(2).local().build().unwrap();
        let waiting = rt.spawn(async move { rx.recv().await });
        std::thread::sleep(Duration::from_secs(1));
        proxy.freeze();
        // Longer than a waiting pull's own expiry: the next pull goes out into the void.
        std::thread::sleep(Duration::from_secs(8));
        proxy.thaw();
        wait_until(Duration::from_secs(30), "the client is back", || here.is_connected());
        klaw::runtime::block_on(tx.send(7)).unwrap();
        let got = rt.block_on(klaw::cancel::fail_after(Duration::from_secs(40), waiting));
        assert_eq!(got, Ok(Ok(Ok(7))), "the recv hung on a pull nobody answers");
    });
}

/// A cancel sent while the submitter's link is frozen: the put of its marker is lost, and the
/// client's request for it times out. The cancel still reaches the worker that runs the job
/// once the link is back: it is stored again until the server has it.
#[test]
fn a_cancel_sent_into_a_half_open_partition_still_reaches_the_running_job() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let backend = klaw::runtime::block_on(NatsBackend::connect(
            NatsConfig::new(proxy.url()).namespace("cancelvoid"),
        ))
        .unwrap();
        let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
        let workers = Runtime::builder().workers(2).local().build().unwrap();
        let worker =
            klaw::runtime::block_on(Worker::connect(server.config().namespace("cancelvoid")))
                .unwrap();
        let _worker = workers.spawn(worker.run());
        let handle = submitter.spawn(held_until_cancelled());
        wait_until(Duration::from_secs(30), "the worker runs the job", || {
            HELD_STARTED.load(Ordering::SeqCst)
        });
        proxy.freeze();
        assert!(handle.cancel("stop it"));
        // Past the client's request timeout: the marker's first put has failed.
        std::thread::sleep(Duration::from_secs(12));
        assert!(!HELD_DROPPED.load(Ordering::SeqCst), "the cancel crossed a frozen link");
        proxy.thaw();
        wait_until(Duration::from_secs(40), "the worker dropped the cancelled task", || {
            HELD_DROPPED.load(Ordering::SeqCst)
        });
    });
}

/// A close whose put is lost in a frozen link: `close` says it failed, and this process treats
/// the channel as closed. Once the link is back, every process sees it closed, not this one
/// alone.
#[test]
fn a_close_lost_in_a_half_open_partition_reaches_every_process_once_the_link_is_back() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let here = nats(NatsConfig::new(proxy.url()).namespace("closevoid"));
        let there = nats(server.config().namespace("closevoid"));
        let (tx, _rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (other, _orx) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();
        proxy.freeze();
        let closed = klaw::runtime::block_on(tx.close());
        assert!(closed.is_err(), "the server cannot have confirmed it: {closed:?}");
        assert!(tx.is_closed(), "closed here at once");
        assert!(!other.is_closed(), "nothing crossed the frozen link");
        proxy.thaw();
        wait_until(Duration::from_secs(40), "the other process sees the close", || {
            other.is_closed()
        });
    });
}

/// A value taken by a receiver that dies before it acknowledges it, on a channel closed
/// meanwhile: the channel is not empty (the value comes back to the queue after the ack
/// wait), so a `recv` waits for it and gets it, rather than saying `Closed`, which only means
/// closed and empty. `try_recv` says `Empty` meanwhile.
#[test]
fn a_closed_channel_still_gives_a_value_a_dead_receiver_held() {
    probe(Duration::from_secs(90), || {
        let server = NatsServer::start();
        let config = server.config().namespace("heldclose").ack_wait(Duration::from_secs(2));
        let here = nats(config);
        let (tx, rx) = klaw::runtime::block_on(here.channel::<u32>("c", 4)).unwrap();
        klaw::runtime::block_on(tx.send(1)).unwrap();
        // A receiver of another process takes the value, and dies before acknowledging it.
        let url = server.url.clone();
        klaw::runtime::block_on(async_compat::Compat::new(async move {
            let client = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream("heldclose_chan_c").await.unwrap();
            let consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("heldclose_chan_c").await.unwrap();
            let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
            let taken = batch.next().await.unwrap().unwrap();
            assert_eq!(rmp_serde::from_slice::<u32>(&taken.payload).unwrap(), 1);
            // dropped here unacknowledged, with its connection
        }));
        klaw::runtime::block_on(tx.close()).unwrap();
        assert_eq!(klaw::runtime::block_on(rx.len()).unwrap(), 1, "the value is in the channel");
        assert_eq!(
            klaw::runtime::block_on(rx.try_recv()),
            Err(klaw::channel::TryRecvError::Empty),
            "not Closed while a value is held"
        );
        let got =
            klaw::runtime::block_on(klaw::cancel::fail_after(Duration::from_secs(30), rx.recv()));
        assert_eq!(got, Ok(Ok(1)));
        let after =
            klaw::runtime::block_on(klaw::cancel::fail_after(Duration::from_secs(30), rx.recv()));
        assert_eq!(after, Ok(Err(RecvError::Closed)), "closed and empty now");
    });
}

/// A broadcast receiver reading a closed channel while its link is frozen: its requests time
/// out, so it cannot know whether values are left, and it waits rather than saying `Closed`
/// (which only means closed with every value read); once the link is back, it gets the value.
#[test]
fn a_closed_broadcast_read_across_a_frozen_link_still_gives_what_was_sent() {
    probe(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let here = nats(NatsConfig::new(proxy.url()).namespace("bclosed"));
        let (tx, mut rx) = klaw::runtime::block_on(here.broadcast::<u32>("b", 8)).unwrap();
        klaw::runtime::block_on(async {
            tx.send(1).await.unwrap();
            tx.close().await.unwrap();
        });
        proxy.freeze();
        let rt = Runtime::builder().workers(2).local().build().unwrap();
        let reading = rt.spawn(async move { (rx.recv().await, rx) });
        // Longer than both of the receiver's requests take to time out (the value, then the
        // stream's bounds): before, it then said `Closed`.
        std::thread::sleep(Duration::from_secs(13));
        assert!(!reading.is_finished(), "the receiver answered across a frozen link");
        proxy.thaw();
        let (got, mut rx) = rt
            .block_on(klaw::cancel::fail_after(Duration::from_secs(40), reading))
            .expect("within the limit")
            .expect("the task");
        assert_eq!(got, Ok(1));
        let after = rt.block_on(klaw::cancel::fail_after(Duration::from_secs(30), rx.recv()));
        assert_eq!(after, Ok(Err(klaw::channel::broadcast::RecvError::Closed)));
    });
}

/// A broadcast value deleted from the middle of its stream (by an operator): a receiver at it
/// counts it as missed (`Lagged(1)`) and goes on to the next, rather than asking the server
/// for it for ever.
#[test]
fn a_broadcast_value_deleted_from_the_middle_is_skipped_as_missed() {
    probe(Duration::from_secs(60), || {
        let server = NatsServer::start();
        let here = nats(server.config().namespace("bgap"));
        let (tx, mut rx) = klaw::runtime::block_on(here.broadcast::<u32>("b", 8)).unwrap();
        klaw::runtime::block_on(async {
            for value in 1..=3 {
                tx.send(value).await.unwrap();
            }
        });
        let url = server.url.clone();
        klaw::runtime::block_on(async_compat::Compat::new(async move {
            let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let stream = js.get_stream("bgap_bcast_b").await.unwrap();
            assert!(stream.delete_message(2).await.unwrap(), "the second value deleted");
        }));
        let mut next = || {
            klaw::runtime::block_on(klaw::cancel::fail_after(Duration::from_secs(10), rx.recv()))
        };
        use klaw::channel::broadcast::RecvError as BroadcastError;
        assert_eq!(next(), Ok(Ok(1)));
        assert_eq!(next(), Ok(Err(BroadcastError::Lagged(1))), "the deleted one");
        assert_eq!(next(), Ok(Ok(3)));
    });
}

/// A send whose value the server stored while the sender's link lost every answer: its
/// acknowledgement never comes, and the send gives up after its retry bound (1 s). Checks: the
/// value is received, and the send says so honestly (`Unconfirmed`: it may have been stored),
/// not `Unavailable` ("did not take the value", which would have the caller send it again).
/// What would break it: a send that maps every exhausted retry to `Unavailable`.
#[test]
fn a_send_whose_value_was_stored_without_an_answer_ends_unconfirmed() {
    probe(Duration::from_secs(90), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let namespace = "maybestored";
        let here = nats(
            NatsConfig::new(proxy.url()).namespace(namespace).publish_retry(Duration::from_secs(1)),
        );
        let there = nats(server.config().namespace(namespace));
        let (tx, _here_rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (_there_tx, rx) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();

        proxy.freeze_answers();
        let sent = klaw::runtime::block_on(tx.send(7));
        proxy.resume();
        assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(7), "the server stored 7");
        assert_eq!(sent, Err(klaw_nats::channel::SendError::Unconfirmed(7)));
    });
}

/// A value that does not decode as the receiver's type (another process sent a string on the
/// same broadcast channel) is reported as missed, `Lagged(1)`, as one deleted from the middle is;
/// the next value follows. What would break it: a receiver that skipped it with a log line only,
/// and handed the next value as if nothing was missed (its sender got `Ok`).
#[klaw::test(timeout = "30s")]
async fn a_broadcast_value_that_does_not_decode_is_reported_as_missed_not_skipped_silently() {
    let server = NatsServer::start();
    let one = Nats::connect(server.config().namespace("mixed-types")).await.unwrap();
    let two = Nats::connect(server.config().namespace("mixed-types")).await.unwrap();
    // One process reads numbers; another sends a string on the same channel, then a number.
    let (numbers, mut rx) = one.broadcast::<u64>("mixed", 16).await.unwrap();
    let (words, _their_rx) = two.broadcast::<String>("mixed", 16).await.unwrap();
    words.send("not a number".to_owned()).await.expect("the server took the string");
    numbers.send(7).await.unwrap();
    assert_eq!(
        rx.recv().await,
        Err(klaw::channel::broadcast::RecvError::Lagged(1)),
        "the string was accepted (its send returned Ok) and this receiver will never get it: \
         it must be told it missed one, not handed the next value as if nothing was skipped"
    );
    assert_eq!(rx.recv().await, Ok(7));
}

//! Closing a distributed channel at the edges: a close is one per channel and connection (every
//! opening of the channel there sees it at once, and a close the server has not confirmed is
//! stored again while any of them lives), and a channel whose state cannot be read when it is
//! opened is never taken for open; and a send that a close in another process overtook (its
//! link held it up, or it raced the close) hands its value back instead of leaving it stored
//! behind receivers that have said `Closed`.

mod common;

use std::time::Duration;

use common::{NatsServer, Proxy, port_of, wait_until};
use klaw_nats::channel::{SendError, TrySendError};
use klaw_nats::{NatsAuth, NatsConfig, Secret};

fn nats(config: NatsConfig) -> klaw_nats::Nats {
    klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap()
}

/// Two processes on one server, both in one namespace: `here` behind a proxy (its sends retry
/// for `publish_retry_secs`), `there` straight to the server.
struct TwoProcesses {
    _server: NatsServer,
    proxy: Proxy,
    here: klaw_nats::Nats,
    there: klaw_nats::Nats,
}

fn two_processes(namespace: &str, publish_retry_secs: u64) -> TwoProcesses {
    let server = NatsServer::start();
    let proxy = Proxy::to(port_of(&server.url));
    let config = NatsConfig::new(proxy.url()).namespace(namespace);
    let here = nats(config.publish_retry(Duration::from_secs(publish_retry_secs)));
    let there = nats(server.config().namespace(namespace));
    TwoProcesses { _server: server, proxy, here, there }
}

/// Two parts of a program open one channel on one connection; one closes it while its link is
/// frozen (the server cannot confirm it), and is then done with it. Checks: the other part sees
/// the close at once, and once the link is back every process sees it. What would break it: a
/// closed flag per opening, and a close stored again only while the opening that made it lives.
#[test]
fn a_close_the_server_did_not_confirm_reaches_every_opening_and_every_process() {
    common::watchdog(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let proxy = Proxy::to(port_of(&server.url));
        let here = nats(NatsConfig::new(proxy.url()).namespace("closeopen"));
        let there = nats(server.config().namespace("closeopen"));
        let (kept, _kept_rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (closing, closing_rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (other, _other_rx) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();
        proxy.freeze();
        let closed = klaw::runtime::block_on(closing.close());
        assert!(closed.is_err(), "the server cannot have confirmed it: {closed:?}");
        assert!(kept.is_closed(), "close() closed the channel in this process, but not here");
        drop((closing, closing_rx));
        std::thread::sleep(Duration::from_secs(2));
        proxy.thaw();
        wait_until(Duration::from_secs(40), "every handle in every process sees the close", || {
            kept.is_closed() && other.is_closed()
        });
    });
}

/// A channel closed before this process opened it, by a user allowed to read its state, opened
/// by one who may not read it (the server refuses the read, as it would time out on a server
/// that is recovering). Checks: the open fails with an error, or the channel is closed here;
/// it is never open. What would break it: a failed read of the state taken for "open", while
/// the watch delivers only later changes.
#[test]
fn a_channel_whose_state_could_not_be_read_at_open_is_not_taken_for_open() {
    common::watchdog(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("server.conf");
        std::fs::write(
            &conf,
            "authorization { users = [\n\
             { user: admin, password: admin }\n\
             { user: app, password: app, permissions: { \
               publish: { allow: [\">\"], deny: [\"$JS.API.DIRECT.GET.KV_blind_channels\", \
               \"$JS.API.DIRECT.GET.KV_blind_channels.>\"] }, subscribe: { allow: [\">\"] } } }\n\
             ] }\n",
        )
        .unwrap();
        let server = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
        let as_user = |user: &str, password: &str| {
            let auth =
                NatsAuth::UserPassword { user: user.into(), password: Secret::new(password) };
            server.config().namespace("blind").auth(auth)
        };
        let admin = nats(as_user("admin", "admin"));
        let (closer, _) = klaw::runtime::block_on(admin.channel::<u32>("c", 8)).unwrap();
        klaw::runtime::block_on(closer.close()).unwrap();
        let app = nats(as_user("app", "app"));
        match klaw::runtime::block_on(app.channel::<u32>("c", 8)) {
            Err(error) => assert!(error.to_string().contains("channel's state"), "{error}"),
            Ok((tx, _rx)) => {
                std::thread::sleep(Duration::from_secs(2));
                assert!(tx.is_closed(), "a channel closed before this open is open here");
                assert_eq!(klaw::runtime::block_on(tx.try_send(1)), Err(TrySendError::Closed(1)));
            }
        }
    });
}

/// A send whose publish is held up by a frozen link (it is tried again once the link is back)
/// while another process closes the channel and its receiver drains it and returns `Closed`.
/// Checks: the send hands the value back (`Unconfirmed`: its first attempt got no answer, so
/// for all the sender knows it was stored before the close; `Closed` would claim more), and
/// nothing is left in the stream (every receiver said `Closed`, so a message stored after that
/// would never be delivered). What would break it: a send that looks at the close only before
/// its publish, whose message then lands behind a close every receiver has already acted on,
/// and returns `Ok`.
#[test]
fn a_send_held_up_by_its_link_while_the_channel_closes_and_drains_hands_its_value_back() {
    common::watchdog(Duration::from_secs(120), || {
        let TwoProcesses { _server, proxy, here, there } = two_processes("lateclose", 30);
        let (tx, _rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (closer, drained) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();
        proxy.freeze();
        let sending = std::thread::spawn(move || klaw::runtime::block_on(tx.send(7)));
        std::thread::sleep(Duration::from_millis(500));
        klaw::runtime::block_on(closer.close()).unwrap();
        let last = klaw::runtime::block_on(drained.recv());
        assert_eq!(last, Err(klaw::channel::RecvError::Closed), "the channel was empty");
        proxy.resume();
        let sent = sending.join().unwrap();
        assert!(
            matches!(sent, Err(SendError::Unconfirmed(7))),
            "a value stored after every receiver said Closed is never delivered: {sent:?}"
        );
        assert_eq!(klaw::runtime::block_on(drained.len()).unwrap(), 0, "stranded in the stream");
    });
}

/// The broadcast twin of the test above: a send held up by a frozen link while another process
/// closes the channel and its receiver reads to `Closed`. Checks: the send hands its value back
/// (a broadcast's closed stream does not answer at all: its receivers listen on the subject, so
/// the send gives up after its retry bound). What would break it: a broadcast send that looks
/// at the close only before its publish.
#[test]
fn a_broadcast_send_held_up_while_the_channel_closes_and_is_read_out_hands_its_value_back() {
    common::watchdog(Duration::from_secs(120), || {
        let TwoProcesses { _server, proxy, here, there } = two_processes("latebcast", 6);
        let (tx, _rx) = klaw::runtime::block_on(here.broadcast::<u32>("b", 8)).unwrap();
        let (closer, mut read_out) =
            klaw::runtime::block_on(there.broadcast::<u32>("b", 8)).unwrap();
        proxy.freeze();
        let sending = std::thread::spawn(move || klaw::runtime::block_on(tx.send(7)));
        std::thread::sleep(Duration::from_millis(500));
        klaw::runtime::block_on(closer.close()).unwrap();
        let last = klaw::runtime::block_on(read_out.recv());
        assert_eq!(last, Err(klaw::channel::broadcast::RecvError::Closed));
        proxy.resume();
        let sent = sending.join().unwrap();
        assert!(
            matches!(sent, Err(SendError::Closed(7) | SendError::Unconfirmed(7))),
            "a value stored after every receiver said Closed is never read: {sent:?}"
        );
    });
}

/// Four senders in one process send as fast as they can while another process closes the
/// channel and drains it until `Closed`; the senders stop at their first `Closed`. Checks: every
/// value whose send returned `Ok` was received, and none whose send returned `Closed` was: the
/// server, not what each process has heard, decides which side of the close a message is on.
/// What would break it: a close that a send can overtake, or a receiver that says `Closed` with
/// messages left. (A send that trusts its own process's flag breaks it only when the send is
/// slower than the receiver's hearing of the close and two round trips, which the test above
/// makes certain with a frozen link.)
#[test]
fn sends_racing_a_close_in_another_process_are_each_delivered_or_handed_back() {
    common::watchdog(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let here = nats(server.config().namespace("raceclose"));
        let there = nats(server.config().namespace("raceclose"));
        let (tx, _rx) = klaw::runtime::block_on(here.channel::<u32>("c", 1_000_000)).unwrap();
        let (closer, drained) =
            klaw::runtime::block_on(there.channel::<u32>("c", 1_000_000)).unwrap();
        let senders: Vec<_> = (0..4u32)
            .map(|sender| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let (mut sent, mut refused) = (Vec::new(), None);
                    for n in 0.. {
                        let value = sender * 1_000_000 + n;
                        match klaw::runtime::block_on(tx.send(value)) {
                            Ok(()) => sent.push(value),
                            Err(SendError::Closed(back)) => {
                                refused = Some(back);
                                break;
                            }
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    (sent, refused)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        klaw::runtime::block_on(closer.close()).unwrap();
        let mut received = std::collections::BTreeSet::new();
        while let Ok(value) = klaw::runtime::block_on(drained.recv()) {
            assert!(received.insert(value), "{value} received twice");
        }
        let mut sent = std::collections::BTreeSet::new();
        for sender in senders {
            let (values, refused) = sender.join().unwrap();
            let refused = refused.expect("each sender stops at a Closed");
            assert!(!received.contains(&refused), "{refused} was received and handed back");
            sent.extend(values);
        }
        assert!(!sent.is_empty());
        let lost: Vec<_> = sent.difference(&received).collect();
        assert!(lost.is_empty(), "accepted and never delivered: {lost:?}");
        assert_eq!(received.len(), sent.len(), "received what no send accepted");
    });
}

/// A user who may publish and read but not update the channel's stream closes the channel.
/// Checks: `close()` fails at once (well within the client's 5 s request timeout) with an
/// error that names the permission, and the channel is closed in this process all the same.
/// What would break it: a close whose stream update waits out the request timeout and then
/// blames JetStream.
#[test]
fn a_close_the_user_may_not_make_fails_at_once_and_names_the_permission() {
    common::watchdog(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("server.conf");
        std::fs::write(
            &conf,
            "authorization { users = [\n\
             { user: app, password: app, permissions: { \
               publish: { allow: [\">\"], deny: [\"$JS.API.STREAM.UPDATE.sealdeny_chan_c\"] }, \
               subscribe: { allow: [\">\"] } } }\n\
             ] }\n",
        )
        .unwrap();
        let server = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
        let auth = NatsAuth::UserPassword { user: "app".into(), password: Secret::new("app") };
        let app = nats(server.config().namespace("sealdeny").auth(auth));
        let (tx, _rx) = klaw::runtime::block_on(app.channel::<u32>("c", 8)).unwrap();
        let started = std::time::Instant::now();
        let closed = klaw::runtime::block_on(tx.close());
        let error = closed.expect_err("the server refused the close").to_string();
        assert!(error.contains("STREAM.UPDATE"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(tx.is_closed(), "closed here all the same");
    });
}

/// The sender's link loses the server's answers (not its requests) while it sends 7: the server
/// stores 7 and its acknowledgement is lost. Another process then closes the channel, receives
/// 7 and then `Closed`; the link comes back. Checks: the send does not hand 7 back as `Closed`
/// (which says nobody receives it). What would break it: a publish that, after an attempt with
/// no answer, takes a close found on the server for proof that its message was not stored
/// (its retry can no longer reach the stream's duplicate window, which would have said so).
#[test]
fn a_send_stored_before_a_close_whose_ack_was_lost_is_not_handed_back_as_closed() {
    common::watchdog(Duration::from_secs(120), || {
        let TwoProcesses { _server, proxy, here, there } = two_processes("acklost", 30);
        let (tx, _here_rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        let (closer, rx) = klaw::runtime::block_on(there.channel::<u32>("c", 8)).unwrap();
        proxy.freeze_answers();
        let sending = std::thread::spawn(move || klaw::runtime::block_on(tx.send(7)));
        wait_until(Duration::from_secs(4), "the server stored 7", || {
            klaw::runtime::block_on(rx.len()).unwrap() == 1
        });
        klaw::runtime::block_on(closer.close()).unwrap();
        assert_eq!(klaw::runtime::block_on(rx.recv()), Ok(7), "7 was stored before the close");
        assert_eq!(klaw::runtime::block_on(rx.recv()), Err(klaw::channel::RecvError::Closed));
        proxy.resume();
        let sent = sending.join().unwrap();
        assert!(
            !matches!(sent, Err(SendError::Closed(7))),
            "7 was received, and handed back as Closed (nobody will ever receive it): {sent:?}"
        );
    });
}

/// A process has the channel open; the stream is then moved off its subject as a closer that
/// stopped between its two steps leaves it (done here with a plain JetStream client), so the
/// channel's key is missing. Checks: a process that opens it now sees it closed, and so does
/// the one that had it open: its send hands the value back as `Closed`, and its `recv` then
/// says `Closed` rather than waiting for ever. What would break it: a send that reads only the
/// key (it would say `Unavailable` after every retry bound, and nobody would store the key).
#[test]
fn a_channel_whose_close_stopped_half_way_is_closed_for_processes_that_had_it_open() {
    common::watchdog(Duration::from_secs(120), || {
        let server = NatsServer::start();
        let config = server.config().namespace("halfclosed");
        let before = nats(config.clone().publish_retry(Duration::from_secs(2)));
        let (tx, rx) = klaw::runtime::block_on(before.channel::<u32>("c", 8)).unwrap();
        let url = server.url.clone();
        klaw::runtime::block_on(async_compat::Compat::new(async move {
            let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let mut stream = js.get_stream("halfclosed_chan_c").await.unwrap();
            let mut sealed = stream.info().await.unwrap().config.clone();
            sealed.subjects = vec!["halfclosed.chan.c.closed".to_owned()];
            js.update_stream(&sealed).await.unwrap();
            // ...and the closer stops here: no key in the channels bucket.
        }));
        let after = nats(config);
        let (fresh, _fresh_rx) = klaw::runtime::block_on(after.channel::<u32>("c", 8)).unwrap();
        assert!(fresh.is_closed(), "an opening after the change sees the channel closed");
        let sent = klaw::runtime::block_on(tx.send(1));
        assert!(
            matches!(sent, Err(SendError::Closed(1))),
            "the channel is closed for another process, but a send here says {sent:?}"
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(klaw::runtime::block_on(rx.recv()));
        });
        let received = done_rx.recv_timeout(Duration::from_secs(15));
        assert_eq!(
            received,
            Ok(Err(klaw::channel::RecvError::Closed)),
            "a recv on the closed, empty channel did not say Closed within 15 s"
        );
    });
}

/// A send on an open channel whose link freezes (nothing gets through either way, no socket
/// closes). Checks: it hands its value back as `Unconfirmed` (its attempt went out and got no
/// answer: the server may have it) within `publish_retry` (1 s) plus
/// one acknowledgement wait (5 s), with 2 s to spare, as `NatsConfig::publish_retry` promises.
/// What would break it: a read of the channel's close after each failed attempt bounded only
/// by the client's request timeout (10 s), which a send makes to tell a close from a restart.
#[test]
fn a_send_on_a_frozen_link_ends_within_its_retry_bound_plus_one_ack_wait() {
    common::watchdog(Duration::from_secs(120), || {
        let TwoProcesses { _server, proxy, here, there: _there } = two_processes("frozenbound", 1);
        let (tx, _rx) = klaw::runtime::block_on(here.channel::<u32>("c", 8)).unwrap();
        proxy.freeze();
        let started = std::time::Instant::now();
        let sent = klaw::runtime::block_on(tx.send(1));
        let took = started.elapsed();
        assert_eq!(sent, Err(SendError::Unconfirmed(1)));
        assert!(took < Duration::from_secs(8), "1 s + one 5 s ack wait promised; took {took:?}");
    });
}

//! Closing a distributed channel at the edges: a close is one per channel and connection (every
//! opening of the channel there sees it at once, and a close the server has not confirmed is
//! stored again while any of them lives), and a channel whose state cannot be read when it is
//! opened is never taken for open.

mod common;

use std::time::Duration;

use common::{NatsServer, Proxy, port_of, wait_until};
use klaw_nats::channel::TrySendError;
use klaw_nats::{NatsAuth, NatsConfig, Secret};

fn nats(config: NatsConfig) -> klaw_nats::Nats {
    klaw::runtime::block_on(klaw_nats::Nats::connect(config)).unwrap()
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

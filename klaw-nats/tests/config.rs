//! A configuration is checked before anything connects: each bad value is a typed error naming
//! the variable (or field) and what it accepts. And no secret in a URL appears in an error,
//! a `Debug` output or a log line.
//!
//! One test per concern, run one after the other (the environment and the log hooks are
//! process-wide).

use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use klaw::log::{LogConfig, add_hook, remove_hook};
use klaw_nats::{NatsAuth, NatsBackend, NatsConfig, NatsError, Secret, Worker};

fn serial() -> MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INIT.call_once(|| LogConfig::default().filter("trace").without_output().init().unwrap());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `NatsConfig::from_env` with `name=value` set (and the others unset).
fn from_env_with(name: &str, value: &str) -> Result<NatsConfig, NatsError> {
    let names = [
        klaw_nats::NAMESPACE_ENV,
        klaw_nats::ACK_WAIT_ENV,
        klaw_nats::MAX_DELIVER_ENV,
        klaw_nats::OUTCOME_TTL_ENV,
        klaw_nats::PUBLISH_RETRY_ENV,
    ];
    // SAFETY: the tests of this binary run one at a time (`serial`), and nothing else in this
    // process reads the environment concurrently.
    unsafe {
        for other in names {
            std::env::remove_var(other);
        }
        std::env::set_var(name, value);
    }
    let config = NatsConfig::from_env();
    // SAFETY: as above.
    unsafe { std::env::remove_var(name) };
    config
}

#[test]
fn bad_environment_values_are_typed_errors_naming_the_variable() {
    let _serial = serial();
    let cases = [
        (klaw_nats::NAMESPACE_ENV, "a b", "letters, digits"),
        (klaw_nats::NAMESPACE_ENV, "*", "letters, digits"),
        (klaw_nats::NAMESPACE_ENV, ">", "letters, digits"),
        (klaw_nats::NAMESPACE_ENV, "", "letters, digits"),
        // JetStream names a key-value bucket's stream `KV_<bucket>`: see `NatsConfig::namespace`.
        (klaw_nats::NAMESPACE_ENV, "KV", "not `KV`"),
        (klaw_nats::ACK_WAIT_ENV, "0", "at least 100"),
        (klaw_nats::ACK_WAIT_ENV, "thirty", "milliseconds"),
        (klaw_nats::MAX_DELIVER_ENV, "0", "from 1"),
        (klaw_nats::MAX_DELIVER_ENV, "99999999999", "from 1"),
        (klaw_nats::OUTCOME_TTL_ENV, "0", "at least 1"),
        (klaw_nats::PUBLISH_RETRY_ENV, "120001", "duplicate window"),
        (klaw_nats::PUBLISH_RETRY_ENV, "soon", "milliseconds"),
    ];
    for (name, value, accepted) in cases {
        let error = from_env_with(name, value).unwrap_err();
        let NatsError::Config { setting, .. } = &error else { panic!("{name}={value}: {error:?}") };
        assert_eq!(*setting, name);
        let message = error.to_string();
        assert!(message.starts_with(&format!("{name}={value:?} is not valid")), "{message}");
        assert!(message.contains(accepted), "{message}");
    }
    let fine = from_env_with(klaw_nats::ACK_WAIT_ENV, "2500").unwrap();
    assert_eq!(fine.ack_wait, Duration::from_millis(2500));
}

#[test]
fn a_bad_config_is_refused_before_connecting() {
    let _serial = serial();
    // Port 1: nothing listens there, so only a check made before connecting can answer.
    let zero_wait = NatsConfig::new("nats://127.0.0.1:1").ack_wait(Duration::ZERO);
    let error = klaw::runtime::block_on(NatsBackend::connect(zero_wait)).unwrap_err();
    assert!(
        matches!(error, NatsError::Config { setting: "NatsConfig::ack_wait", .. }),
        "{error:?}"
    );
    let no_delivery = NatsConfig::new("nats://127.0.0.1:1").max_deliver(0);
    let error = klaw::runtime::block_on(Worker::connect(no_delivery)).unwrap_err();
    assert!(matches!(error, NatsError::Config { setting: "NatsConfig::max_deliver", .. }));
    let wildcard = NatsConfig::new("nats://127.0.0.1:1").namespace("orders.>");
    let error = klaw::runtime::block_on(klaw_nats::Nats::connect(wildcard)).unwrap_err();
    assert!(matches!(error, NatsError::Config { setting: "NatsConfig::namespace", .. }));
    // Past the duplicate window a retried send could be stored twice.
    let too_patient = NatsConfig::new("nats://127.0.0.1:1").publish_retry(Duration::from_secs(121));
    let error = klaw::runtime::block_on(klaw_nats::Nats::connect(too_patient)).unwrap_err();
    assert!(matches!(error, NatsError::Config { setting: "NatsConfig::publish_retry", .. }));
}

#[test]
fn no_secret_of_a_url_appears_in_an_error_a_debug_output_or_a_log_line() {
    let _serial = serial();
    let logged = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = logged.clone();
    let hook = add_hook(move |event| {
        let mut line = event.message.clone();
        for (name, value) in &event.fields {
            line.push_str(&format!(" {name}={value}"));
        }
        sink.lock().unwrap().push(line);
    });
    for url in ["nats://alice:s3cret@127.0.0.1:1", "nats://s3cret@127.0.0.1:1"] {
        let config = NatsConfig::new(url);
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        let error = klaw::runtime::block_on(NatsBackend::connect(config)).unwrap_err();
        assert!(matches!(error, NatsError::Connect { .. }), "{error:?}");
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("127.0.0.1:1"), "the error still names the server: {shown}");
        }
    }
    assert!(remove_hook(hook));
    let logged = logged.lock().unwrap();
    assert!(logged.iter().all(|line| !line.contains("s3cret")), "{logged:#?}");
}

/// A password holding a comma, in a URL written without a scheme (`user:pw@host:port`, which
/// the URL check accepts). Checks: no part of it shows in `redact_url`, the config's `Debug`, or
/// the errors of checking and connecting. What would break it: a list split at every comma not
/// inside the credentials of a URL with a scheme, which shows `alice:Zq9pw` as a URL of its own.
#[test]
fn a_comma_in_the_password_of_a_url_without_a_scheme_shows_no_part_of_it() {
    let _serial = serial();
    let url = "alice:Zq9pw,Xy7kk@127.0.0.1:1";
    let mut shown = vec![klaw_nats::redact_url(url), format!("{:?}", NatsConfig::new(url))];
    if let Err(error) = NatsConfig::new(url).validate() {
        shown.push(format!("{error} {error:?}"));
    }
    let connected = klaw::runtime::block_on(klaw_nats::Nats::connect(NatsConfig::new(url)));
    if let Err(error) = connected {
        shown.push(format!("{error} {error:?}"));
    }
    let leaks: Vec<_> =
        shown.iter().filter(|s| s.contains("Zq9pw") || s.contains("Xy7kk")).collect();
    assert!(leaks.is_empty(), "a part of the password is shown: {leaks:#?}");
}

/// TLS files that can be read but hold no certificate or key. Checks: checking the config and
/// connecting both fail with a `Config` error naming the TLS setting (nothing listens on port
/// 1: the settings are checked first). What would break it: a check that only opens the files,
/// after which connecting fails as `NatsError::Connect`, whose text sends the user to the
/// server's address.
#[test]
fn a_tls_file_without_a_certificate_or_key_is_a_config_error_naming_its_setting() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("not-a-pem.pem");
    std::fs::write(&garbage, "this is not a PEM certificate or key\n").unwrap();
    let configs = [
        (
            "ca",
            NatsConfig::new("tls://127.0.0.1:1").tls(klaw_nats::NatsTls::default().ca(&garbage)),
        ),
        (
            "client cert and key",
            NatsConfig::new("tls://127.0.0.1:1")
                .tls(klaw_nats::NatsTls::default().client_cert(&garbage, &garbage)),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, config) in configs {
        let checked = config.validate();
        let connected = klaw::runtime::block_on(klaw_nats::Nats::connect(config)).map(|_| ());
        for (how, result) in [("validate", checked), ("connect", connected)] {
            let named = matches!(&result, Err(NatsError::Config { setting, .. })
                if setting.to_lowercase().contains("tls"));
            if !named {
                wrong.push(format!("{what}, {how}: {result:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "not Config errors naming the TLS setting: {wrong:#?}");
}

/// The book: "Only one way to authenticate may be set." Credentials in the URL beside
/// `NatsConfig::auth` are a `Config` error that shows neither secret (before, `validate`
/// accepted both and connecting dropped the URL's silently).
#[test]
fn a_url_with_credentials_and_an_auth_setting_is_a_config_error() {
    let _serial = serial();
    let both = NatsConfig::new("nats://svc:url-pa55@127.0.0.1:1")
        .auth(NatsAuth::Token(Secret::new("t0ken-from-elsewhere")));
    let error = both.validate().expect_err(
        "credentials in the URL and NatsConfig::auth are two ways to authenticate; the book \
         says only one may be set, yet validate() accepts both (the URL's are then ignored)",
    );
    assert!(matches!(error, NatsError::Config { .. }), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("url-pa55") && !shown.contains("t0ken-from-elsewhere"), "{shown}");

    // A token in the URL and a user/password in the config: the same.
    let token_url = NatsConfig::new("nats://url-t0ken@127.0.0.1:1")
        .auth(NatsAuth::UserPassword { user: "alice".into(), password: Secret::new("pw") });
    assert!(token_url.validate().is_err(), "a token in the URL and a password in the config");
}

/// The same through the environment: `KLAW_NATS_URL` with credentials and `KLAW_NATS_TOKEN` are
/// a `Config` error naming one of the two variables, with no secret shown.
#[test]
fn a_url_with_credentials_and_an_auth_variable_is_a_config_error_naming_it() {
    let _serial = serial();
    // SAFETY: the tests of this binary run one at a time (SERIAL), and nothing else in this
    // process reads the environment meanwhile.
    unsafe {
        std::env::set_var(klaw_nats::URL_ENV, "nats://svc:url-pa55@127.0.0.1:1");
        std::env::set_var(klaw_nats::TOKEN_ENV, "t0ken-from-env");
    }
    let config = NatsConfig::from_env();
    // SAFETY: as above.
    unsafe {
        std::env::remove_var(klaw_nats::URL_ENV);
        std::env::remove_var(klaw_nats::TOKEN_ENV);
    }
    let error = config.expect_err(
        "KLAW_NATS_URL with credentials and KLAW_NATS_TOKEN are two ways to authenticate; \
         from_env accepts both and the URL's are silently dropped at connect",
    );
    let NatsError::Config { setting, .. } = &error else { panic!("{error:?}") };
    assert!(
        *setting == klaw_nats::TOKEN_ENV || *setting == klaw_nats::URL_ENV,
        "the error names one of the two variables: {error}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("url-pa55") && !shown.contains("t0ken-from-env"), "{shown}");
}

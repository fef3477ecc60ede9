//! Authentication and TLS against real servers started with them: user and password, token,
//! NKey, and mutual TLS with certificates made here (the repository holds no key). A remote
//! task runs end to end over each; without the credentials, the connection is refused.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::NatsServer;
use klaw::Runtime;
use klaw_nats::{NatsAuth, NatsBackend, NatsConfig, NatsError, NatsTls, Secret, Worker};

#[klaw::task(remote)]
async fn triple(n: u64) -> u64 {
    3 * n
}

/// A worker and a submitter with `config`, and one remote task through them.
fn round_trip(config: &NatsConfig) {
    let workers = Runtime::builder().workers(1).local().build().unwrap();
    let worker = klaw::runtime::block_on(Worker::connect(config.clone())).unwrap();
    let running = workers.spawn(worker.run());
    let backend = klaw::runtime::block_on(NatsBackend::connect(config.clone())).unwrap();
    let submitter = Runtime::builder().workers(1).backend(Arc::new(backend)).build().unwrap();
    assert_eq!(submitter.block_on(submitter.spawn(triple(14))), Ok(42));
    running.cancel("test over");
}

fn refused(config: NatsConfig) -> NatsError {
    klaw::runtime::block_on(NatsBackend::connect(config)).unwrap_err()
}

fn host_port(server: &NatsServer) -> &str {
    server.url.strip_prefix("nats://").unwrap()
}

#[test]
fn user_and_password_from_the_url_or_the_config() {
    let server = NatsServer::start_with(&["--user", "alice", "--pass", "s3cret"]);
    let error = refused(server.config());
    assert!(matches!(error, NatsError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("s3cret"));
    // In the URL, as `nats://alice:s3cret@host` (refused before: the URL's credentials were
    // not used).
    round_trip(
        &NatsConfig::new(format!("nats://alice:s3cret@{}", host_port(&server))).namespace("url"),
    );
    // In the config.
    let password = NatsAuth::UserPassword { user: "alice".into(), password: Secret::new("s3cret") };
    round_trip(&server.config().namespace("config").auth(password));
    let wrong = NatsAuth::UserPassword { user: "alice".into(), password: Secret::new("guess") };
    assert!(matches!(refused(server.config().auth(wrong)), NatsError::Connect { .. }));
}

#[test]
fn a_token() {
    let server = NatsServer::start_with(&["--auth", "t0ken-abc"]);
    assert!(matches!(refused(server.config()), NatsError::Connect { .. }));
    round_trip(
        &NatsConfig::new(format!("nats://t0ken-abc@{}", host_port(&server))).namespace("url"),
    );
    round_trip(
        &server.config().namespace("config").auth(NatsAuth::Token(Secret::new("t0ken-abc"))),
    );
}

#[test]
fn an_nkey() {
    let user = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("server.conf");
    std::fs::write(
        &conf,
        format!("authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n", user.public_key()),
    )
    .unwrap();
    let server = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
    assert!(matches!(refused(server.config()), NatsError::Connect { .. }));
    let seed = user.seed().unwrap();
    round_trip(&server.config().auth(NatsAuth::NKey(Secret::new(seed))));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA,
/// written as PEM files into `dir`.
fn certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, names) in [
        ("server", vec!["127.0.0.1".to_owned(), "localhost".to_owned()]),
        ("client", vec!["client".to_owned()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
}

#[test]
fn mutual_tls_with_a_custom_ca() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let path = |name: &str| dir.path().join(name);
    let server = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        path("server.pem").to_str().unwrap(),
        "--tlskey",
        path("server-key.pem").to_str().unwrap(),
        "--tlscacert",
        path("ca.pem").to_str().unwrap(),
    ]);
    let url = format!("tls://{}", host_port(&server));
    // Without the CA, the server's certificate is not trusted; without a client
    // certificate, the server refuses.
    assert!(matches!(refused(NatsConfig::new(&url).namespace("test")), NatsError::Connect { .. }));
    let ca_only = NatsTls::default().ca(path("ca.pem"));
    assert!(matches!(
        refused(NatsConfig::new(&url).tls(ca_only.clone())),
        NatsError::Connect { .. }
    ));
    let mutual = ca_only.client_cert(path("client.pem"), path("client-key.pem"));
    round_trip(&NatsConfig::new(&url).namespace("tls").tls(mutual));
}

//! Authentication and TLS against real servers started with them: user and password, token,
//! NKey, a `.creds` file (operator mode), and mutual TLS, with keys, JWTs and certificates made
//! here (the repository holds no key). A remote task runs end to end over each; without the
//! credentials, the connection is refused.

mod common;

use std::path::Path;

use common::{NatsServer, submitter_runtime};
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
    let submitter = submitter_runtime(config.clone());
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

/// A JWT as nsc writes it: `issuer` vouches for `subject` with these `nats` claims.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
    use sha2::Digest;
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let mut claims = serde_json::json!({
        "iat": iat.as_secs(), "iss": issuer.public_key(), "name": name, "sub": subject,
    });
    // The id nsc gives: the hash of the claims without it (and without `nats`).
    let id = sha2::Sha512_256::digest(claims.to_string());
    claims["jti"] = BASE32_NOPAD.encode(&id).into();
    claims["nats"] = nats;
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let signed = format!("{header}.{}", BASE64URL_NOPAD.encode(claims.to_string().as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature))
}

/// An account signed by `operator`, without limits; with JetStream if asked (nsc leaves it
/// off, and the system account may not have it).
fn account_jwt(
    operator: &nkeys::KeyPair,
    account: &nkeys::KeyPair,
    name: &str,
    jetstream: bool,
) -> String {
    let mut limits = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1,
    });
    if jetstream {
        for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[limit] = (-1).into();
        }
    }
    let claims = serde_json::json!({ "limits": limits, "type": "account", "version": 2 });
    jwt(operator, &account.public_key(), name, claims)
}

/// A `.creds` file for `user` of `account`: its JWT and its seed.
fn creds(account: &nkeys::KeyPair, user: &nkeys::KeyPair, path: &Path) {
    let claims = serde_json::json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let user_jwt = jwt(account, &user.public_key(), "klaw", claims);
    let seed = user.seed().unwrap();
    std::fs::write(
        path,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .unwrap();
}

/// Operator mode: the server trusts an operator, knows its accounts from their JWTs, and lets
/// in a user whose JWT an account signed and who holds the user's seed.
#[test]
fn a_creds_file() {
    let operator = nkeys::KeyPair::new_operator();
    let (account, system) = (nkeys::KeyPair::new_account(), nkeys::KeyPair::new_account());
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "klaw",
        serde_json::json!({ "type": "operator", "version": 2 }),
    );
    let dir = tempfile::tempdir().unwrap();
    // JetStream needs a system account in operator mode: the server does not start without.
    let conf = dir.path().join("server.conf");
    std::fs::write(
        &conf,
        format!(
            "operator: {operator_jwt}\nsystem_account: {system}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {system}: {}\n  {}: {}\n}}\n",
            account_jwt(&operator, &system, "SYS", false),
            account.public_key(),
            account_jwt(&operator, &account, "klaw", true),
            system = system.public_key(),
        ),
    )
    .unwrap();
    let server = NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
    assert!(matches!(refused(server.config()), NatsError::Connect { .. }));
    let path = dir.path().join("user.creds");
    creds(&account, &nkeys::KeyPair::new_user(), &path);
    round_trip(&server.config().namespace("creds").auth(NatsAuth::CredsFile(path)));
    // A user of an account the operator did not sign is refused, and its seed stays out of
    // the error.
    let (stranger, path) = (nkeys::KeyPair::new_user(), dir.path().join("stranger.creds"));
    creds(&nkeys::KeyPair::new_account(), &stranger, &path);
    let error = refused(server.config().auth(NatsAuth::CredsFile(path)));
    assert!(matches!(error, NatsError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains(&stranger.seed().unwrap()), "{error}");
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

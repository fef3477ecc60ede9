//! How a client proves who it is: secrets kept out of `Debug`, the ways to authenticate, TLS
//! files, and their checks, which name the setting that is wrong and never show a secret.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{CREDS_ENV, NKEY_SEED_ENV, PASSWORD_ENV, TOKEN_ENV, USER_ENV};
use crate::NatsError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A secret: shown as `***` by `Debug`, never displayed.
///
/// ```
/// let secret = klaw_nats::Secret::new("s3cret");
/// assert_eq!(format!("{secret:?}"), "***");
/// assert_eq!(secret.expose(), "s3cret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    ///
    /// ```
    /// let _ = klaw_nats::Secret::new(String::from("t0ken"));
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    ///
    /// ```
    /// assert_eq!(klaw_nats::Secret::new("x").expose(), "x");
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a client proves who it is, as the server's `authorization` (or operator mode) asks.
/// Credentials in the URL (`nats://user:password@host`, `nats://token@host`) are used when
/// this is `None`.
///
/// ```
/// use klaw_nats::{NatsAuth, NatsConfig, Secret};
/// let config = NatsConfig::new("nats://h:4222").auth(NatsAuth::Token(Secret::new("t0ken")));
/// assert!(!format!("{config:?}").contains("t0ken"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No credentials (or those of the URL).
    #[default]
    None,
    /// A user and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A token.
    Token(Secret),
    /// An NKey: the seed signs the server's challenge; the server knows the public key.
    NKey(Secret),
    /// A `.creds` file: a user JWT and its NKey seed (operator mode).
    CredsFile(PathBuf),
}

/// TLS beyond the system's roots: the CA that signed the server's certificate, and this
/// client's certificate for mutual TLS. A `tls://` URL, or any of these, makes TLS required.
///
/// ```
/// let tls = klaw_nats::NatsTls::default().ca("ca.pem").client_cert("me.pem", "me-key.pem");
/// assert!(tls.is_set());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NatsTls {
    /// The CA certificate (PEM) to trust.
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// This client's private key (PEM).
    pub client_key: Option<PathBuf>,
}

impl NatsTls {
    /// Trusts the CA certificate (PEM) at `path`.
    ///
    /// ```
    /// let tls = klaw_nats::NatsTls::default().ca("/etc/nats/ca.pem");
    /// assert!(tls.ca.is_some());
    /// ```
    #[must_use]
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM) for mutual TLS.
    ///
    /// ```
    /// let tls = klaw_nats::NatsTls::default().client_cert("me.pem", "me-key.pem");
    /// assert!(tls.client_key.is_some());
    /// ```
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// True if anything is set.
    ///
    /// ```
    /// assert!(!klaw_nats::NatsTls::default().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

const AUTH_EXPECTED: &str = "one way to authenticate: KLAW_NATS_USER with KLAW_NATS_PASSWORD, \
     or KLAW_NATS_TOKEN, or KLAW_NATS_NKEY_SEED, or KLAW_NATS_CREDS";
const TLS_EXPECTED: &str = "a client certificate and its key together (both or neither)";

/// The one way to authenticate the environment names, if any.
pub(super) fn auth_from_env() -> Result<NatsAuth, NatsError> {
    let var = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
    let mut ways = Vec::new();
    match (var(USER_ENV), var(PASSWORD_ENV)) {
        (Some(user), Some(password)) => {
            ways.push((USER_ENV, NatsAuth::UserPassword { user, password: Secret::new(password) }));
        }
        (None, None) => {}
        (Some(_), None) => ways.push((PASSWORD_ENV, NatsAuth::None)),
        (None, Some(_)) => ways.push((USER_ENV, NatsAuth::None)),
    }
    if let Some(token) = var(TOKEN_ENV) {
        ways.push((TOKEN_ENV, NatsAuth::Token(Secret::new(token))));
    }
    if let Some(seed) = var(NKEY_SEED_ENV) {
        ways.push((NKEY_SEED_ENV, NatsAuth::NKey(Secret::new(seed))));
    }
    if let Some(path) = var(CREDS_ENV) {
        ways.push((CREDS_ENV, NatsAuth::CredsFile(PathBuf::from(path))));
    }
    match ways.len() {
        0 => Ok(NatsAuth::None),
        1 if ways[0].1 != NatsAuth::None => Ok(ways.remove(0).1),
        _ => Err(NatsError::Config {
            setting: ways.last().map_or(USER_ENV, |(name, _)| name),
            value: "(set, not shown)".to_owned(),
            expected: AUTH_EXPECTED,
        }),
    }
}

const ONE_AUTH_EXPECTED: &str = "one way to authenticate: credentials in the URL \
     (nats://user:password@host, nats://token@host), or the auth setting (NatsConfig::auth, \
     KLAW_NATS_USER/_TOKEN/_NKEY_SEED/_CREDS), not both: remove one";

/// Credentials in the URL beside an auth setting are two ways to authenticate: an error naming
/// `setting` (the auth setting or its variable), with no secret shown, rather than one of the two
/// silently dropped at connect.
pub(super) fn check_one_auth(
    setting: &'static str,
    url: &str,
    auth: &NatsAuth,
) -> Result<(), NatsError> {
    if *auth == NatsAuth::None || super::split_credentials(url).1 == NatsAuth::None {
        return Ok(());
    }
    Err(NatsError::Config {
        setting,
        value: "(set, and the URL has credentials too; not shown)".to_owned(),
        expected: ONE_AUTH_EXPECTED,
    })
}

pub(super) fn check_tls(setting: &'static str, tls: &NatsTls) -> Result<(), NatsError> {
    if tls.client_cert.is_some() == tls.client_key.is_some() {
        Ok(())
    } else {
        let value = "only one of the two".to_owned();
        Err(NatsError::Config { setting, value, expected: TLS_EXPECTED })
    }
}

const TLS_FILE_EXPECTED: &str = "the path of a readable PEM file";
const TLS_CERT_EXPECTED: &str =
    "a PEM file holding one or more certificates (`-----BEGIN CERTIFICATE-----`)";
const TLS_KEY_EXPECTED: &str =
    "a PEM file holding a private key (`-----BEGIN PRIVATE KEY-----`, PKCS#1 or SEC1)";
const NKEY_SEED_EXPECTED: &str =
    "an NKey user seed: 58 characters starting `SU`, as `nk -gen user` prints it";

/// Each TLS file that is set can be read and holds what its setting needs (the CA and the
/// client certificate at least one certificate, the client key a private key), read as the
/// client will read them: a typo or a wrong file is reported here, naming its setting, rather
/// than as a failed connection that sends the user to check the server's address. Only the path
/// is shown, never what the file holds.
pub(super) fn check_tls_files(settings: [&'static str; 3], tls: &NatsTls) -> Result<(), NatsError> {
    let [ca, cert, key] = settings;
    let error = |setting, path: &Path, expected| NatsError::Config {
        setting,
        value: path.display().to_string(),
        expected,
    };
    for (setting, path) in [(ca, &tls.ca), (cert, &tls.client_cert)] {
        let Some(path) = path else { continue };
        let file =
            std::fs::File::open(path).map_err(|_| error(setting, path, TLS_FILE_EXPECTED))?;
        let certificates: Result<Vec<_>, _> =
            CertificateDer::pem_reader_iter(std::io::BufReader::new(file)).collect();
        if !certificates.is_ok_and(|found| !found.is_empty()) {
            return Err(error(setting, path, TLS_CERT_EXPECTED));
        }
    }
    if let Some(path) = &tls.client_key {
        let file = std::fs::File::open(path).map_err(|_| error(key, path, TLS_FILE_EXPECTED))?;
        if PrivateKeyDer::from_pem_reader(std::io::BufReader::new(file)).is_err() {
            return Err(error(key, path, TLS_KEY_EXPECTED));
        }
    }
    Ok(())
}

const CREDS_READABLE_EXPECTED: &str = "the path of a readable .creds file";
const CREDS_CONTENT_EXPECTED: &str = "a .creds file with a user JWT and its NKey seed";

/// The `.creds` file can be read and holds a JWT and a seed: checked here, so that the error
/// names the setting the user set (the client's own error names neither, and says "other" for
/// a missing file). Only the path is shown, never what the file holds.
pub(super) fn check_creds_file(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<(), NatsError> {
    let error =
        |expected| NatsError::Config { setting, value: path.display().to_string(), expected };
    let contents = std::fs::read_to_string(path).map_err(|_| error(CREDS_READABLE_EXPECTED))?;
    async_nats::ConnectOptions::with_credentials(&contents)
        .map(drop)
        .map_err(|_| error(CREDS_CONTENT_EXPECTED))
}

/// The seed decodes to a key pair. Its value is never shown, not even in part: a seed that is
/// nearly right is nearly a secret.
pub(super) fn check_nkey_seed(setting: &'static str, seed: &Secret) -> Result<(), NatsError> {
    match nkeys::KeyPair::from_seed(seed.expose()) {
        Ok(_) => Ok(()),
        Err(_) => Err(NatsError::Config {
            setting,
            value: "(set, not shown)".to_owned(),
            expected: NKEY_SEED_EXPECTED,
        }),
    }
}

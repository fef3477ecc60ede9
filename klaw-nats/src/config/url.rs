//! What a server URL may hold, and how the credentials in one are split off and hidden.

use super::NatsAuth;
use super::credentials::Secret;
use crate::NatsError;

const URL_EXPECTED: &str = "one or more `nats://`, `tls://`, `ws://` or `wss://` URLs (or \
     `host:port`) separated by commas, each with a host and, if given, a port from 0 to 65535";

/// Every URL of the list has a scheme the client speaks, a host and a valid port, checked here
/// so that a typo is a `Config` error showing the URL (redacted), not a connection failure.
pub(super) fn check_url(setting: &'static str, url: &str) -> Result<(), NatsError> {
    let valid = split_list(url).into_iter().all(|one| {
        let one = one.trim();
        let UrlParts { scheme, rest, .. } = url_parts(one);
        let known = ["", "nats://", "tls://", "ws://", "wss://"];
        // The host and port end where a path would begin (the client ignores one).
        let address = rest.split('/').next().unwrap_or("");
        known.contains(&scheme.to_ascii_lowercase().as_str()) && is_address(address)
    });
    if valid {
        Ok(())
    } else {
        Err(NatsError::Config { setting, value: redact_url(url), expected: URL_EXPECTED })
    }
}

/// `host`, `host:port`, `[ipv6]` or `[ipv6]:port`, with a port from 0 to 65535.
fn is_address(address: &str) -> bool {
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match address.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        },
    };
    let host_ok = !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c == '@');
    host_ok && port.is_none_or(|port| port.parse::<u16>().is_ok())
}

/// `url` with the credentials in it hidden: `nats://alice:***@host`, `nats://***@host` for a
/// token. Every URL of a comma-separated list is redacted.
///
/// Credentials are taken literally, up to the last `@` of their URL: a token or password may
/// hold `/`, `?`, `,`, `+`, `=` or `@` as they are (base64 does), without percent-encoding.
/// A comma belongs to the credentials when it comes before any `@` of its URL and an `@`
/// follows before the next `://`, whether or not the URL has a scheme (`u:p,w@host` is one URL);
/// so a second URL of a list that carries credentials must have its scheme
/// (`nats://a,nats://u:p@b`, not `nats://a,u:p@b`).
///
/// ```
/// assert_eq!(klaw_nats::redact_url("nats://alice:s3cret@h:4222"), "nats://alice:***@h:4222");
/// assert_eq!(klaw_nats::redact_url("tls://t0ken@h, nats://h2"), "tls://***@h, nats://h2");
/// assert_eq!(klaw_nats::redact_url("nats://a:p/w,x@h,nats://h2"), "nats://a:***@h,nats://h2");
/// assert_eq!(klaw_nats::redact_url("alice:p,w@h:4222"), "alice:***@h:4222");
/// ```
pub fn redact_url(url: &str) -> String {
    split_list(url)
        .into_iter()
        .map(|one| {
            let UrlParts { scheme, userinfo, rest } = url_parts(one);
            match userinfo.map(credentials) {
                Some((Some(user), _)) => format!("{scheme}{user}:***@{rest}"),
                Some((None, _)) => format!("{scheme}***@{rest}"),
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `message` (a client's error) with the URL shown redacted and every secret of it hidden.
pub(crate) fn hide_secrets(message: &str, url: &str) -> String {
    let mut message = message.replace(url, &redact_url(url));
    for userinfo in split_list(url).into_iter().filter_map(|one| url_parts(one).userinfo) {
        let (_, secret) = credentials(userinfo);
        if !secret.is_empty() {
            message = message.replace(secret, "***");
        }
    }
    message
}

/// The URLs of a comma-separated list. A comma inside a URL's credentials does not split it
/// (see [`redact_url`] for the rule): splitting there would show the credentials' two halves
/// as a URL without credentials and one with a wrong token.
fn split_list(list: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in list.match_indices(',') {
        if !comma_in_userinfo(&list[start..comma], &list[comma + 1..]) {
            urls.push(&list[start..comma]);
            start = comma + 1;
        }
    }
    urls.push(&list[start..]);
    urls
}

/// Whether the comma between `before` (the current URL so far) and `after` (the rest of the
/// list) is part of the current URL's credentials: the URL has no `@` yet, and an `@` comes
/// before the next URL's `://`. A URL without a scheme counts too: split there, a password
/// with a comma would be shown in part, as a URL of its own.
fn comma_in_userinfo(before: &str, after: &str) -> bool {
    if before.contains('@') {
        return false;
    }
    match (after.find('@'), after.find("://")) {
        (Some(at), Some(next_scheme)) => at < next_scheme,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// One URL around its credentials: the scheme (with `://`), what comes before the last `@` if
/// anything, and the rest (host, port).
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    rest: &'a str,
}

fn url_parts(one: &str) -> UrlParts<'_> {
    let (scheme, after) = match one.find("://") {
        Some(at) => one.split_at(at + 3),
        None => ("", one),
    };
    // The last `@`, not the first `/`, ends the credentials: a NATS URL has no path, and a
    // token or password may hold `/`, `?` or `@` (base64 tokens do), which ending them earlier
    // would show as the host.
    match after.rfind('@') {
        Some(at) => UrlParts { scheme, userinfo: Some(&after[..at]), rest: &after[at + 1..] },
        None => UrlParts { scheme, userinfo: None, rest: after },
    }
}

/// What credentials in a URL are: a user and its password (`user:password`), or a token.
fn credentials(userinfo: &str) -> (Option<&str>, &str) {
    match userinfo.split_once(':') {
        Some((user, password)) => (Some(user), password),
        None => (None, userinfo),
    }
}

/// The URL(s) without credentials, and the credentials the first URL carried, if any:
/// `user:password@` or `token@`. The client gets those through its options, so they never
/// appear in its own logs (which print the server address).
pub(crate) fn split_credentials(url: &str) -> (String, NatsAuth) {
    let mut auth = NatsAuth::None;
    let urls: Vec<String> = split_list(url)
        .into_iter()
        .map(|one| {
            let UrlParts { scheme, userinfo, rest } = url_parts(one.trim());
            if let (Some(userinfo), NatsAuth::None) = (userinfo, &auth) {
                auth = match credentials(userinfo) {
                    (Some(user), password) => NatsAuth::UserPassword {
                        user: user.to_owned(),
                        password: Secret::new(password),
                    },
                    (None, token) => NatsAuth::Token(Secret::new(token)),
                };
            }
            format!("{scheme}{rest}")
        })
        .collect();
    (urls.join(","), auth)
}

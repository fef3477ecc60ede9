//! The names of a namespace's streams, buckets and consumers, and the namespaces that can
//! carry them.

use crate::NatsError;

const NAMESPACE_EXPECTED: &str = "letters, digits, `-` and `_` (at least one; at most 243 \
     characters, each `_` counting twice; not `KV` alone or followed only by `_`, which \
     JetStream's key-value streams begin with)";

/// A name that can be one token of a subject and part of a stream or bucket name: letters,
/// digits, `-` and `_` (no `.`, no wildcard, no space), at least one.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The longest name JetStream gives a stream or a consumer.
pub(crate) const MAX_JETSTREAM_NAME: usize = 255;

/// What a stream, key-value bucket or consumer of a namespace is for: the word that follows the
/// namespace in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The work-queue stream of jobs.
    Jobs,
    /// The workers' consumer of the jobs stream.
    Workers,
    /// The dead-letter stream.
    Dead,
    /// The stream that keeps the server's advisories of jobs out of deliveries.
    Exhausted,
    /// The bucket of cancel markers.
    Cancel,
    /// The bucket of outcomes.
    Outcomes,
    /// The bucket of the channels' closed flags.
    Channels,
    /// The bucket of the watch channels' values.
    Watch,
    /// An MPMC channel's stream and consumer (with the channel's name).
    Channel,
    /// A broadcast channel's stream (with the channel's name).
    Broadcast,
}

impl Kind {
    /// Every kind named after the namespace alone.
    const OF_NAMESPACE: [Kind; 8] = [
        Kind::Jobs,
        Kind::Workers,
        Kind::Dead,
        Kind::Exhausted,
        Kind::Cancel,
        Kind::Outcomes,
        Kind::Channels,
        Kind::Watch,
    ];

    /// Its word: lower-case letters, no two alike (the argument of [`jetstream_name`] needs
    /// words that hold no `_` and begin with a letter).
    fn word(self) -> &'static str {
        match self {
            Kind::Jobs => "jobs",
            Kind::Workers => "workers",
            Kind::Dead => "dead",
            Kind::Exhausted => "exhausted",
            Kind::Cancel => "cancel",
            Kind::Outcomes => "outcomes",
            Kind::Channels => "channels",
            Kind::Watch => "watch",
            Kind::Channel => "chan",
            Kind::Broadcast => "bcast",
        }
    }

    /// A key-value bucket, whose stream JetStream names `KV_<bucket>`.
    fn is_bucket(self) -> bool {
        matches!(self, Kind::Cancel | Kind::Outcomes | Kind::Channels | Kind::Watch)
    }
}

/// The name of the stream, key-value bucket or consumer of `kind` in `namespace`, and of the
/// channel `channel` for a channel's stream: `<namespace>_<kind>` or
/// `<namespace>_<kind>_<channel>`, with each `_` of the namespace written `__`
/// (`billing_jobs`, `my__app_chan_orders`). Subjects need none of this: the namespace and a
/// channel's name are whole tokens of them (neither may hold a `.`).
///
/// Namespaces and channel names may both hold `_`, so written as they are, namespace `ns` with
/// channel `x_chan_y` and namespace `ns_chan_x` with channel `y` were one stream. Written this
/// way, no two (namespace, kind, channel) ever give one name, because each can be read back
/// from the name:
/// - Every run of `_` in the written namespace has an even length. The `_` that follows it
///   makes the run it ends odd, and the kind's word after it begins with a letter. So the
///   first run of `_` of odd length ends with that separator: what comes before it, each
///   `__` read as `_`, is the namespace.
/// - The word holds no `_`: it runs to the next `_` or to the end, and no two kinds share one.
/// - If a `_` follows the word, the rest is the channel's name, as it is (nothing follows it).
///
/// JetStream names a bucket's stream `KV_<bucket>`. Read as above, `KV_` and then a bucket's
/// name has a namespace of `KV` followed only by `_`s (the `_` after `KV` and the even run
/// that begins the bucket's name make its first odd run), or none at all: those namespaces are
/// refused ([`check_namespace`]), so none of klaw's streams is also a bucket's stream.
///
/// Before this naming, a namespace's `_` was written as it is: a namespace holding a `_` finds
/// its streams and buckets under new names (see [`NatsConfig::namespace`]); every other
/// namespace keeps its names.
pub(crate) fn jetstream_name(namespace: &str, kind: Kind, channel: Option<&str>) -> String {
    let mut name = namespace.replace('_', "__");
    name.push('_');
    name.push_str(kind.word());
    if let Some(channel) = channel {
        name.push('_');
        name.push_str(channel);
    }
    name
}

/// The name of the JetStream stream behind `kind` of `namespace`: a bucket's is `KV_<bucket>`.
fn stream_name(namespace: &str, kind: Kind) -> String {
    let name = jetstream_name(namespace, kind, None);
    if kind.is_bucket() { format!("KV_{name}") } else { name }
}

/// A namespace JetStream's key-value streams (`KV_<bucket>`) could be read as: `KV` followed
/// only by `_` (see [`jetstream_name`]).
fn is_key_value_prefix(namespace: &str) -> bool {
    namespace.strip_prefix("KV").is_some_and(|rest| rest.chars().all(|c| c == '_'))
}

pub(super) fn check_namespace(
    setting: &'static str,
    namespace: String,
) -> Result<String, NatsError> {
    let fits = || {
        Kind::OF_NAMESPACE
            .iter()
            .all(|&kind| stream_name(&namespace, kind).len() <= MAX_JETSTREAM_NAME)
    };
    if is_plain_name(&namespace) && !is_key_value_prefix(&namespace) && fits() {
        Ok(namespace)
    } else {
        Err(NatsError::Config { setting, value: namespace, expected: NAMESPACE_EXPECTED })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Every kind: those named after the namespace alone, and the channels' kinds.
    fn every_kind() -> Vec<Kind> {
        [Kind::OF_NAMESPACE.as_slice(), &[Kind::Channel, Kind::Broadcast]].concat()
    }

    /// A namespace, a kind, and a channel name for a channel's kind.
    type Resource = (String, Kind, Option<String>);

    /// Plain names made of pieces that make collisions likely: runs of `_`, the kinds' words,
    /// `KV` (JetStream's key-value streams begin `KV_`).
    fn plain_name() -> impl Strategy<Value = String> {
        let pieces = vec!["_", "__", "-", "a", "KV", "chan", "bcast", "jobs", "cancel", "watch"];
        prop::collection::vec(prop::sample::select(pieces), 1..7).prop_map(|pieces| pieces.concat())
    }

    fn resource() -> impl Strategy<Value = Resource> {
        let namespace = plain_name().prop_filter("a namespace the config accepts", |namespace| {
            check_namespace("namespace", namespace.clone()).is_ok()
        });
        (namespace, prop::sample::select(every_kind()), plain_name()).prop_map(
            |(namespace, kind, channel)| {
                let channel = matches!(kind, Kind::Channel | Kind::Broadcast).then_some(channel);
                (namespace, kind, channel)
            },
        )
    }

    fn name_of((namespace, kind, channel): &Resource) -> String {
        jetstream_name(namespace, *kind, channel.as_deref())
    }

    /// The name of the stream on the server: a bucket's is `KV_<bucket>`.
    fn stream_of(resource: &Resource) -> String {
        let name = name_of(resource);
        if resource.1.is_bucket() { format!("KV_{name}") } else { name }
    }

    /// The namespace, kind and channel a name was made of, read as `jetstream_name`'s comment
    /// argues it can be.
    fn read_back(name: &str) -> Option<Resource> {
        let mut at = 0;
        let separator = loop {
            let start = at + name[at..].find('_')?;
            let end = start + name[start..].find(|c: char| c != '_').unwrap_or(name.len() - start);
            if (end - start) % 2 == 1 {
                break end - 1;
            }
            at = end;
        };
        let namespace = name[..separator].replace("__", "_");
        let rest = &name[separator + 1..];
        let (word, channel) = match rest.split_once('_') {
            Some((word, channel)) => (word, Some(channel.to_owned())),
            None => (rest, None),
        };
        let kind = every_kind().into_iter().find(|kind| kind.word() == word)?;
        Some((namespace, kind, channel))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Each name reads back as the namespace, kind and channel it was made of: the naming
        /// is injective.
        #[test]
        fn every_name_reads_back_as_what_it_was_made_of(resource in resource()) {
            prop_assert_eq!(read_back(&name_of(&resource)), Some(resource));
        }

        /// Among many, no two resources share a stream (key-value buckets' `KV_` streams
        /// included), a bucket or a consumer name.
        #[test]
        fn no_two_resources_share_a_name(resources in prop::collection::vec(resource(), 64)) {
            let mut streams = HashMap::new();
            let mut names = HashMap::new();
            for resource in resources {
                if let Some(other) = streams.insert(stream_of(&resource), resource.clone()) {
                    prop_assert_eq!(&other, &resource, "one stream: {}", stream_of(&resource));
                }
                if let Some(other) = names.insert(name_of(&resource), resource.clone()) {
                    prop_assert_eq!(&other, &resource, "one name: {}", name_of(&resource));
                }
            }
        }
    }

    #[test]
    fn the_pairs_that_once_shared_a_stream_do_not() {
        let chan = |namespace: &str, channel: &str| {
            jetstream_name(namespace, Kind::Channel, Some(channel))
        };
        assert_ne!(chan("ns", "x_chan_y"), chan("ns_chan_x", "y"));
        assert_ne!(chan("a", "b_jobs"), jetstream_name("a_chan_b", Kind::Jobs, None));
        assert_eq!(chan("klaw", "orders"), "klaw_chan_orders", "a name without `_` changed");
        assert_eq!(chan("my_app", "x_y"), "my__app_chan_x_y");
    }

    #[test]
    fn a_namespace_a_key_value_stream_could_be_read_as_is_refused() {
        for namespace in ["KV", "KV_", "KV__"] {
            let error = check_namespace("namespace", namespace.to_owned()).unwrap_err();
            assert!(error.to_string().contains("not `KV`"), "{error}");
        }
        for namespace in ["KVx", "KV-", "KV_x", "kv", "xKV"] {
            assert!(check_namespace("namespace", namespace.to_owned()).is_ok(), "{namespace}");
        }
    }

    #[test]
    fn a_namespace_too_long_for_its_streams_is_refused_and_each_underscore_counts_twice() {
        assert!(check_namespace("namespace", "n".repeat(243)).is_ok());
        let error = check_namespace("namespace", "n".repeat(244)).unwrap_err();
        assert!(error.to_string().contains("at most 243"), "{error}");
        assert!(check_namespace("namespace", "_".repeat(121)).is_ok());
        assert!(check_namespace("namespace", "_".repeat(122)).is_err());
    }
}

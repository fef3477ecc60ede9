//! `#[klaw::main]` and `#[klaw::test]`: run an `async fn` on a runtime built for it.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic;
use crate::options::OptionSpec;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Main,
    Test,
}

impl EntryKind {
    fn attribute(self) -> &'static str {
        match self {
            EntryKind::Main => "#[klaw::main]",
            EntryKind::Test => "#[klaw::test]",
        }
    }
}

/// The options both attributes accept. The ranges match `klaw::MAX_WORKERS` and
/// `klaw::MAX_BLOCKING_THREADS` (a ui test pins both ends).
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "workers", form: "workers = N" },
    OptionSpec { name: "max_blocking_threads", form: "max_blocking_threads = N" },
    OptionSpec { name: "timeout", form: "timeout = \"10s\" (tests only)" },
];
pub(crate) const MAX_WORKERS: usize = 1024;
pub(crate) const MAX_BLOCKING_THREADS: usize = 4096;

pub(crate) fn expand(kind: EntryKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match parse::parse_function(kind, item.clone()) {
        Ok(function) => function,
        // Not a function at all: give the item back untouched, with the error.
        Err(error) => return diagnostic::emit(Err(error), || quote!(#item)),
    };
    // From here on, whatever fails, the stub stands in for the function.
    let stub = expand::stub(kind, &function);
    let result = parse::parse_options(kind, args)
        .map(|options| parse::ParsedEntry { options, item: function })
        .and_then(|entry| validate::validate(kind, entry))
        .map(expand::expand);
    diagnostic::emit(result, || stub)
}

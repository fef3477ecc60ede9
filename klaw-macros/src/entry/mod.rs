//! `#[klaw::main]` and `#[klaw::test]`: run an `async fn` on a runtime built for it.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic::{self, Errors};
use crate::options::{OptionList, OptionSpec};

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

/// The options both attributes accept. The ranges match `klaw::runtime::MAX_WORKERS` and
/// `klaw::runtime::MAX_BLOCKING_THREADS` (a ui test pins both ends).
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "workers", form: "workers = N" },
    OptionSpec { name: "max_blocking_threads", form: "max_blocking_threads = N" },
    OptionSpec { name: "timeout", form: "timeout = \"10s\" (tests only)" },
    OptionSpec { name: "start_paused", form: "start_paused = true (tests only)" },
    OptionSpec { name: "cancel_on_ctrl_c", form: "cancel_on_ctrl_c (main only)" },
    OptionSpec { name: "tokio", form: "tokio" },
    OptionSpec { name: "crate", form: "crate = \"my_klaw\"" },
];
pub(crate) const MAX_WORKERS: usize = 1024;
pub(crate) const MAX_BLOCKING_THREADS: usize = 4096;

pub(crate) fn expand(kind: EntryKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match parse::parse_function(kind, item.clone()) {
        Ok(function) => function,
        // Not a function at all: give the item back untouched, with the error.
        Err(error) => return diagnostic::emit(Err(error), || quote!(#item)),
    };
    let stub = expand::stub(kind, &function);
    let mut errors = Errors::default();
    let options = parse::parse_options(kind, args).unwrap_or_else(|error| {
        errors.push(error);
        OptionList::default()
    });
    // Whatever was wrong, the body still expands (with defaults in place of bad options), so
    // its own errors show too; only a signature the expansion cannot call gets the stub.
    let checked =
        validate::validate(kind, parse::ParsedEntry { options, item: function }, &mut errors);
    let expansion =
        if errors.is_empty() || checked.body_usable { expand::expand(checked.plan) } else { stub };
    diagnostic::emit_with(errors.into_error(), expansion)
}

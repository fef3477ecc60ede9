//! `#[klaw::task]`: an `async fn` (or, with `blocking`, a sync fn) whose call gives a task value
//! that can be awaited inline, spawned in a scope, or submitted to a runtime.

mod expand;
mod parse;
mod remote;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic;
use crate::options::OptionSpec;

pub(crate) const ATTRIBUTE: &str = "#[klaw::task]";

pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "name", form: "name = \"...\"" },
    OptionSpec { name: "timeout", form: "timeout = \"5s\"" },
    OptionSpec { name: "blocking", form: "blocking" },
    OptionSpec { name: "remote", form: "remote" },
    OptionSpec { name: "crate", form: "crate = \"my_klaw\"" },
];

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match parse::parse_function(item.clone()) {
        Ok(function) => function,
        // Not a function: give the item back untouched, with the error.
        Err(error) => return diagnostic::emit(Err(error), || quote!(#item)),
    };
    // Whatever fails from here, the function itself is emitted unchanged, so its callers see
    // only the attribute's error.
    let fallback = quote!(#[allow(dead_code)] #function);
    let result = parse::parse_options(args)
        .map(|options| parse::ParsedTask { options, item: function })
        .and_then(validate::validate)
        .map(expand::expand);
    diagnostic::emit(result, || fallback)
}

//! `scope!`: a nursery. `scope!(options.., |s| body)` runs `body` with a `Scope` and evaluates,
//! once awaited, to the scope's `Result`.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic;
use crate::options::OptionSpec;

pub(crate) const MACRO: &str = "scope!";

pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "name", form: "name = \"...\"" },
    OptionSpec { name: "timeout", form: "timeout = \"5s\"" },
    OptionSpec { name: "deadline", form: "deadline = <Instant>" },
    OptionSpec { name: "supervisor", form: "supervisor" },
];

/// The forms the macro accepts, for every message about its shape.
pub(crate) const FORMS: &str = "`scope!(|s| { ... })`, `scope!(move |s| { ... })`, or options \
     first: `scope!(timeout = \"5s\", supervisor, |s| { ... })`";

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let result = syn::parse2(input).and_then(validate::validate).map(expand::expand);
    // A stub of the right kind (a future of a `Result`) keeps the caller's code type-checking,
    // so only the scope's own error shows.
    let private = crate::path::private();
    let expansion = diagnostic::emit(result, || quote!(#private::scope_stub().await));
    // One block, so the errors (brace-form macros, i.e. statements) and the stub form a single
    // expression wherever the macro is used.
    quote!({ #expansion })
}

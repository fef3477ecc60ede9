//! `scope!`: a nursery. `scope!(options.., |s| body)` runs `body` with a `Scope` and evaluates,
//! once awaited, to the scope's `Result`.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diagnostic::{self, Errors};
use crate::options::OptionSpec;
use crate::path::KlawPath;

pub(crate) const MACRO: &str = "scope!";

pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "name", form: "name = \"...\"" },
    OptionSpec { name: "timeout", form: "timeout = \"5s\"" },
    OptionSpec { name: "deadline", form: "deadline = <Instant>" },
    OptionSpec { name: "supervisor", form: "supervisor" },
    OptionSpec { name: "limit", form: "limit = 8" },
];

/// The forms the macro accepts, for every message about its shape.
pub(crate) const FORMS: &str = "`scope!(|s| { ... })`, `scope!(move |s| { ... })`, \
     `scope!(|s| -> anyhow::Result<_> { ... })`, or options first: \
     `scope!(timeout = \"5s\", limit = 8, |s| { ... })`";

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let (krate, input) = KlawPath::split_leading(input);
    let (use_private, private) = krate.private_alias();
    // A stub of the right kind (a future of a `Result`) keeps the caller's code type-checking
    // when the closure itself cannot be used.
    let stub = quote!(#private::scope_stub().await);
    let expansion = match syn::parse2::<parse::ParsedScope>(input) {
        Err(error) => diagnostic::emit(Err(error), || stub),
        Ok(parsed) => {
            // Bad options get their defaults and the body still expands, so its own errors
            // show beside the scope's.
            let mut errors = Errors::default();
            let checked = validate::validate(parsed, &mut errors);
            let expansion = if errors.is_empty() || checked.body_usable {
                expand::expand(checked.plan, &private)
            } else {
                stub
            };
            diagnostic::emit_with(errors.into_error(), expansion)
        }
    };
    // One block, so the errors (brace-form macros, i.e. statements) and the stub form a single
    // expression wherever the macro is used.
    quote!({ #use_private #expansion })
}

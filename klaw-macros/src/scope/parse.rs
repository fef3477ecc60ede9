//! Parsing: options, then the closure.

use syn::parse::{Parse, ParseStream};
use syn::{ExprClosure, Token};

use crate::diagnostic::error_at_next;
use crate::options::{OptionArg, OptionList, valid_forms};
use crate::scope::{FORMS, MACRO, OPTIONS};

/// `scope!` as written, before validation.
pub(crate) struct ParsedScope {
    pub(crate) options: OptionList,
    pub(crate) closure: ExprClosure,
}

fn starts_closure(input: ParseStream<'_>) -> bool {
    input.peek(Token![|])
        || input.peek(Token![||])
        || input.peek(Token![move])
        || input.peek(Token![async])
}

impl Parse for ParsedScope {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(error_at_next(input, format!("{MACRO} needs a closure; write {FORMS}")));
        }
        let mut options = Vec::new();
        while !starts_closure(input) {
            let option: OptionArg = input.parse().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    format!(
                        "expected an option or the closure; write {FORMS}. Options: {}",
                        valid_forms(OPTIONS)
                    ),
                )
            })?;
            options.push(option);
            if input.is_empty() {
                return Err(input
                    .error(format!("{MACRO} needs a closure after its options; write {FORMS}")));
            }
            input.parse::<Token![,]>().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    format!("expected `,` after an option; write {FORMS}"),
                )
            })?;
        }
        let closure: ExprClosure = input.parse()?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        // Anything left (after a comma or not) is an option written after the closure.
        if !input.is_empty() {
            return Err(input.error(format!("the closure comes last in {MACRO}; write {FORMS}")));
        }
        Ok(ParsedScope { options: OptionList(options), closure })
    }
}

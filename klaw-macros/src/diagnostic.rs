//! The one place where macro errors become `compile_error!`.
//!
//! With an error, a macro still expands the user's code as far as it can (with a default
//! configuration in place of what was wrong), beside the `compile_error!`: the user sees the
//! macro's error *and* every error in their own body, and rust-analyzer keeps working. Only
//! when the body cannot be used does a stub stand in for it.

use proc_macro2::TokenStream;

/// Emits the errors, if any, then `expansion` (the user's code expanded with what was valid).
pub(crate) fn emit_with(errors: Option<syn::Error>, expansion: TokenStream) -> TokenStream {
    match errors {
        None => expansion,
        Some(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(expansion);
            tokens
        }
    }
}

/// Emits the expansion, or every error followed by `fallback`: a stub of the user's item that
/// compiles, for when the user's code could not even be parsed.
pub(crate) fn emit(
    result: syn::Result<TokenStream>,
    fallback: impl FnOnce() -> TokenStream,
) -> TokenStream {
    match result {
        Ok(tokens) => tokens,
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(fallback());
            tokens
        }
    }
}

/// Collects errors so one macro call reports every mistake at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

/// An error at the next token of `input`, or, at the end of the input, at the whole macro call:
/// there syn's own `input.error` starts the message with "unexpected end of input", which reads
/// oddly before a message that says what is missing.
pub(crate) fn error_at_next(
    input: syn::parse::ParseStream<'_>,
    message: impl std::fmt::Display,
) -> syn::Error {
    if input.is_empty() {
        syn::Error::new(proc_macro2::Span::call_site(), message)
    } else {
        input.error(message)
    }
}

/// `tokens` with every token at `span`: generated code whose errors belong to what the user wrote
/// there (an option, an arm's future) rather than to the whole macro.
pub(crate) fn respanned(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

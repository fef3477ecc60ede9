//! The one place where macro errors become `compile_error!`.

use proc_macro2::TokenStream;

/// Emits the expansion, or every error followed by `fallback`: a stub of the user's item that
/// compiles, so the only errors the user sees are ours.
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
}

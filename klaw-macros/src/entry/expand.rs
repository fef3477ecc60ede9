//! Expansion: the function, now synchronous, builds a runtime and blocks on the original body.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::entry::EntryKind;
use crate::entry::validate::EntryPlan;

fn option_tokens(value: Option<usize>) -> TokenStream {
    match value {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    }
}

pub(crate) fn expand(plan: EntryPlan) -> TokenStream {
    let private = plan.krate.private();
    let ItemFn { attrs, vis, sig, block, .. } = &plan.item;
    let name = &sig.ident;
    let output = &sig.output;
    // Naming the output type lets `?` in the body infer its error type.
    let output_type = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let workers = option_tokens(plan.workers);
    let max_blocking_threads = option_tokens(plan.max_blocking_threads);
    let timeout = match &plan.timeout {
        Some(timeout) => quote!(::core::option::Option::Some(#timeout)),
        None => quote!(::core::option::Option::None),
    };
    let start_paused = plan.start_paused;
    let cancel_on_ctrl_c = plan.cancel_on_ctrl_c.is_some();
    // One error naming the feature when Ctrl-C handling (or the tokio runtime) is not compiled
    // in: the macro cannot see klaw's features, a `__private` macro_rules can.
    let needs_signal = plan
        .cancel_on_ctrl_c
        .as_ref()
        .map(|key| feature_check(&private, key, quote!(require_signal_feature)));
    let needs_tokio =
        plan.tokio.as_ref().map(|key| feature_check(&private, key, quote!(require_tokio_feature)));
    let tokio = plan.tokio.is_some();
    let (test_attribute, kind) = match plan.kind {
        EntryKind::Main => (quote!(), quote!(Main)),
        EntryKind::Test => (quote!(#[::core::prelude::v1::test]), quote!(Test)),
    };
    let span = block.span();
    let run = quote_spanned! {span=>
        #private::run_entry::<#output_type, _>(
            #private::EntryConfig {
                kind: #private::EntryKind::#kind,
                workers: #workers,
                max_blocking_threads: #max_blocking_threads,
                timeout: #timeout,
                start_paused: #start_paused,
                cancel_on_ctrl_c: #cancel_on_ctrl_c,
                tokio: #tokio,
            },
            async move #block,
        )
    };
    quote! {
        #test_attribute
        #(#attrs)*
        #vis fn #name() #output {
            #needs_signal
            #needs_tokio
            #run
        }
    }
}

/// `<private>::<check>!();` with every token at the option's key, so that the error points at
/// the option rather than the whole attribute.
fn feature_check(private: &TokenStream, key: &syn::Ident, check: TokenStream) -> TokenStream {
    let span = key.span();
    let respanned = |tokens: TokenStream| -> TokenStream {
        tokens
            .into_iter()
            .map(|mut token| {
                token.set_span(span);
                token
            })
            .collect()
    };
    let (private, check) = (respanned(private.clone()), respanned(check));
    quote_spanned!(span=> #private::#check!();)
}

/// What stands in for the function when the attribute has an error: it compiles, so the user
/// sees only the attribute's error (no "`main` function not found", no "async main").
pub(crate) fn stub(kind: EntryKind, item: &ItemFn) -> TokenStream {
    let name = &item.sig.ident;
    match kind {
        EntryKind::Main => quote!(fn #name() {}),
        EntryKind::Test => quote!(#[allow(dead_code)] fn #name() {}),
    }
}

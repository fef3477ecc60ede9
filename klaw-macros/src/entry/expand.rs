//! Expansion: the function, now synchronous, builds a runtime and blocks on the original body.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::diagnostic::respanned;
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
    let config = quote_spanned! {span=>
        #private::EntryConfig {
            kind: #private::EntryKind::#kind,
            workers: #workers,
            max_blocking_threads: #max_blocking_threads,
            start_paused: #start_paused,
            cancel_on_ctrl_c: #cancel_on_ctrl_c,
            tokio: #tokio,
        }
    };
    // The body is pinned on the heap where it is made, so that only a pointer goes down the
    // layers below (`run_entry`, `block_on`, the executor): in a debug build each would keep a
    // copy of a large body in its frame and overflow a 2 MiB stack, a test's. (tokio pins a
    // test's body on the stack, but here a test with a timeout makes its body on another thread,
    // in a closure that must return it; one allocation per program or test costs nothing.)
    let (output, run) = match &plan.timeout {
        // The body runs on a thread of its own, so it is made there by a closure (the fn has no
        // arguments, so it captures nothing), and what comes back is its report's exit code (its
        // output need not be `Send`). A unit test keeps its `()`, which `#[should_panic]` needs.
        Some(timeout) => {
            let run = quote_spanned! {span=>
                #private::run_test_within::<#output_type, _, _>(
                    #config,
                    #timeout,
                    move || ::std::boxed::Box::pin(async move #block),
                )
            };
            if returns_unit(output) {
                // A unit body's report is always a success.
                (quote!(), quote_spanned!(span=> let _: #private::ExitCode = #run;))
            } else {
                (quote!(-> #private::ExitCode), run)
            }
        }
        None => {
            let run = quote_spanned! {span=>
                #private::run_entry::<#output_type, _>(
                    #config,
                    ::std::boxed::Box::pin(async move #block),
                )
            };
            (quote!(#output), run)
        }
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

/// Whether the function returns `()`, written or not.
fn returns_unit(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => true,
        ReturnType::Type(_, ty) => matches!(&**ty, Type::Tuple(tuple) if tuple.elems.is_empty()),
    }
}

/// `<private>::<check>!();` with every token at the option's key, so that the error points at
/// the option rather than the whole attribute.
fn feature_check(private: &TokenStream, key: &syn::Ident, check: TokenStream) -> TokenStream {
    let span = key.span();
    let (private, check) = (respanned(private, span), respanned(&check, span));
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

//! Expansion: the function keeps its name and arguments and returns a task value.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::task::remote::remote_body;
use crate::task::validate::TaskPlan;

pub(crate) fn expand(plan: TaskPlan) -> TokenStream {
    let private = plan.krate.private();
    let ItemFn { attrs, vis, sig, block, .. } = &plan.item;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let name = match &plan.name {
        Some(name) => quote!(#name),
        None => {
            let ident = sig.ident.to_string();
            quote!(#ident)
        }
    };
    let mode = if plan.fallible { quote!(Fallible) } else { quote!(Plain) };
    let constructor = if plan.fallible { quote!(fallible) } else { quote!(new) };
    let timeout = plan.timeout.as_ref().map(|timeout| quote!(.timeout(#timeout)));
    let span = sig.output.span();
    let (returns, body) = if plan.blocking {
        (
            quote_spanned! {span=>
                #private::BlockingTask<
                    impl ::core::ops::FnOnce() -> #output + ::core::marker::Send + 'static,
                    #private::#mode,
                >
            },
            quote_spanned! {block.span()=>
                #private::BlockingTask::#constructor(move || -> #output #block).name(#name)
            },
        )
    } else {
        (
            quote_spanned! {span=>
                #private::Task<
                    impl ::core::future::Future<Output = #output> + ::core::marker::Send + 'static,
                    #private::#mode,
                >
            },
            quote_spanned! {block.span()=>
                #private::Task::#constructor(async move #block).name(#name) #timeout
            },
        )
    };
    let mut signature = sig.clone();
    signature.asyncness = None;
    signature.output = syn::parse_quote!(-> #returns);
    let body = match &plan.remote {
        None => body,
        Some(names) => {
            let mut local = signature.clone();
            local.ident = syn::Ident::new("__klaw_task", proc_macro2::Span::call_site());
            let local_task = quote!(#local { #body });
            // The function only passes its arguments on: a `mut` stays on `__klaw_task`'s.
            for input in &mut signature.inputs {
                if let syn::FnArg::Typed(arg) = input {
                    if let syn::Pat::Ident(ident) = arg.pat.as_mut() {
                        ident.mutability = None;
                    }
                }
            }
            let remote = remote_body(&private, &plan.item, names, plan.name.as_ref(), &local_task);
            // Without klaw's `remote` feature this is one error that names the feature.
            quote!(#private::remote_task_body! { #remote })
        }
    };
    quote! {
        #(#attrs)*
        #vis #signature {
            #body
        }
    }
}

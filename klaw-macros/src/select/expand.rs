//! Expansion: pin every arm's future, poll them from a random arm (or the first, if `biased`),
//! `recv` arms in two passes (a look, then a place in line only if no arm was ready), drop them
//! all, then run the winner's body with its result bound.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::select::parse::{ArmKind, ParsedSelect};

pub(crate) fn expand(select: ParsedSelect, private: &TokenStream) -> TokenStream {
    let waiting: Vec<_> =
        select.arms.iter().filter(|arm| !matches!(arm.kind, ArmKind::Default)).collect();
    let default = select.arms.iter().find(|arm| matches!(arm.kind, ArmKind::Default));
    let count = waiting.len();
    let variants: Vec<_> = (0..count).map(|i| format_ident!("Arm{i}")).collect();
    let params: Vec<_> = (0..count).map(|i| format_ident!("T{i}")).collect();
    let futures: Vec<_> = (0..count).map(|i| format_ident!("__klaw_arm_{i}")).collect();

    let make: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .map(|(arm, name)| {
            let future = match &arm.kind {
                ArmKind::Recv { receiver, .. } => quote_spanned! {receiver.span()=>
                    #private::SelectRecv::__select_recv(&(#receiver))
                },
                ArmKind::Send { sender, .. } => quote_spanned! {sender.span()=>
                    #private::SelectSend::__select_reserve(&(#sender))
                },
                ArmKind::Future { future, .. } => quote_spanned! {future.span()=>
                    ::core::future::IntoFuture::into_future(#future)
                },
                ArmKind::After(duration) => quote_spanned! {duration.span()=>
                    #private::sleep(#duration)
                },
                ArmKind::At(deadline) => quote_spanned! {deadline.span()=>
                    #private::sleep_until(#deadline)
                },
                ArmKind::Default => unreachable!("filtered out"),
            };
            quote!(let mut #name = ::core::pin::pin!(#future);)
        })
        .collect();

    // First pass: every arm in turn, a `recv` arm only looking for a message (it joins no wait
    // list, so an arm that loses to a ready sibling costs no join and leave). Second pass, only
    // when nothing was ready: the `recv` arms join their lines (each looks once more after it
    // joined, as every wait does).
    let poll_arm = |index: usize, poll: &TokenStream| {
        let variant = &variants[index];
        quote! {
            #index => {
                if let ::core::task::Poll::Ready(output) = #poll {
                    return ::core::task::Poll::Ready(__KlawSelected::#variant(output));
                }
            }
        }
    };
    let first_pass: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .enumerate()
        .map(|(index, (arm, name))| {
            let poll = if matches!(arm.kind, ArmKind::Recv { .. }) {
                quote!(#private::select_look(#name.as_mut(), __klaw_cx))
            } else {
                quote!(::core::future::Future::poll(#name.as_mut(), __klaw_cx))
            };
            poll_arm(index, &poll)
        })
        .collect();
    let second_pass: Vec<TokenStream> = waiting
        .iter()
        .zip(&futures)
        .enumerate()
        .filter(|(_, (arm, _))| matches!(arm.kind, ArmKind::Recv { .. }))
        .map(|(index, (_, name))| {
            poll_arm(index, &quote!(#private::select_join(#name.as_mut(), __klaw_cx)))
        })
        .collect();

    let bodies = waiting.iter().zip(&variants).map(|(arm, variant)| {
        let body = &arm.body;
        match &arm.kind {
            ArmKind::Recv { binding, .. } | ArmKind::Future { binding, .. } => quote! {
                __KlawSelected::#variant(output) => {
                    let #binding = output;
                    #body
                }
            },
            ArmKind::Send { binding, value, .. } => quote! {
                __KlawSelected::#variant(output) => {
                    // Only the winning arm evaluates its value: a losing one consumes nothing.
                    let #binding = #private::finish_send(output, #value);
                    #body
                }
            },
            ArmKind::After(_) | ArmKind::At(_) => quote! {
                __KlawSelected::#variant(()) => { #body }
            },
            ArmKind::Default => unreachable!("filtered out"),
        }
    });

    let (default_variant, default_ready, default_body) = match default {
        Some(arm) => {
            let body = &arm.body;
            (
                quote!(Default,),
                quote!(return ::core::task::Poll::Ready(__KlawSelected::Default);),
                quote!(__KlawSelected::Default => #body),
            )
        }
        None => (quote!(), quote!(::core::task::Poll::Pending), quote!()),
    };
    let start = if select.biased { quote!(0usize) } else { quote!(#private::random_start(#count)) };
    // One arm has no order to rotate (and `x % 1` would trip clippy in the user's crate).
    let poll_all = if count == 1 {
        let name = &futures[0];
        let variant = &variants[0];
        quote! {
            if let ::core::task::Poll::Ready(output) =
                ::core::future::Future::poll(#name.as_mut(), __klaw_cx)
            {
                return ::core::task::Poll::Ready(__KlawSelected::#variant(output));
            }
        }
    } else {
        // With a `default` arm nothing waits: no arm was ready, so `default` is taken.
        let second_pass = (!second_pass.is_empty() && default.is_none()).then(|| {
            quote! {
                for __klaw_offset in 0..#count {
                    match (__klaw_start + __klaw_offset) % #count {
                        #(#second_pass)*
                        _ => {}
                    }
                }
            }
        });
        quote! {
            for __klaw_offset in 0..#count {
                match (__klaw_start + __klaw_offset) % #count {
                    #(#first_pass)*
                    _ => {}
                }
            }
            #second_pass
        }
    };
    let start = if count == 1 { quote!() } else { quote!(let __klaw_start: usize = #start;) };

    quote! {
        enum __KlawSelected<#(#params),*> {
            #(#variants(#params),)*
            #default_variant
        }
        let __klaw_selected = {
            #(#make)*
            #start
            ::core::future::poll_fn(|__klaw_cx| {
                // With the task's cooperative budget spent, yield rather than poll the arms
                // (which would all yield) and take `default` while values wait.
                ::core::task::ready!(#private::poll_budget_available(__klaw_cx));
                #poll_all
                #default_ready
            })
            .await
        };
        match __klaw_selected {
            #(#bodies)*
            #default_body
        }
    }
}

//! Validation: the options, and a signature a spawnable task can have. Every mistake at once.

use proc_macro2::TokenStream;
use syn::visit::Visit;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Type};

use crate::diagnostic::Errors;
use crate::duration::duration_value;
use crate::options::{flag_value, known_options, str_value};
use crate::path::KlawPath;
use crate::task::parse::ParsedTask;
use crate::task::{ATTRIBUTE, OPTIONS};

/// A valid task: what expansion needs.
pub(crate) struct TaskPlan {
    pub(crate) name: Option<LitStr>,
    pub(crate) timeout: Option<TokenStream>,
    pub(crate) blocking: bool,
    /// Registered for remote execution: the argument names, in order.
    pub(crate) remote: Option<Vec<syn::Ident>>,
    /// The output is a `Result`, so an `Err` is a failure.
    pub(crate) fallible: bool,
    /// How generated code reaches klaw: `::klaw`, or `crate = "my_klaw"`.
    pub(crate) krate: KlawPath,
    pub(crate) item: ItemFn,
}

pub(crate) fn validate(task: ParsedTask) -> syn::Result<TaskPlan> {
    let mut errors = Errors::default();
    let mut plan = TaskPlan {
        name: None,
        timeout: None,
        blocking: false,
        remote: None,
        fallible: false,
        krate: KlawPath::default(),
        item: task.item,
    };
    let mut remote_key = None;
    let mut timeout_key = None;
    for (arg, name) in known_options(&task.options, OPTIONS, ATTRIBUTE, &mut errors) {
        let checked = match name {
            "name" => str_value(arg).map(|name| plan.name = Some(name)),
            "timeout" => duration_value(arg).map(|timeout| {
                plan.timeout = Some(timeout);
                timeout_key = Some(arg.key.clone());
            }),
            "blocking" => flag_value(arg).map(|()| plan.blocking = true),
            "remote" => flag_value(arg).map(|()| remote_key = Some(arg.key.clone())),
            "crate" => KlawPath::from_option(arg).map(|krate| plan.krate = krate),
            other => unreachable!("option `{other}` is in OPTIONS but not validated"),
        };
        if let Err(error) = checked {
            errors.push(error);
        }
    }
    if let (true, Some(key)) = (plan.blocking, &timeout_key) {
        errors.push(syn::Error::new_spanned(
            key,
            "a blocking task cannot be interrupted, so `timeout` cannot end it: check \
             `klaw::cancel::is_cancelled()` in its loop, and bound it from the caller's scope instead",
        ));
    }

    let sig = &plan.item.sig;
    match (sig.asyncness.is_some(), plan.blocking) {
        (false, false) => errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "{ATTRIBUTE} goes on an `async fn`; for a sync function that blocks, write \
                 #[klaw::task(blocking)]"
            ),
        )),
        (true, true) => errors.push(syn::Error::new_spanned(
            sig.asyncness,
            "#[klaw::task(blocking)] runs a sync `fn` on the blocking pool: remove `async`, or \
             remove `blocking` to run it as an async task",
        )),
        _ => {}
    }
    if let (true, ReturnType::Type(_, output)) = (plan.blocking, &sig.output) {
        if matches!(**output, Type::ImplTrait(_) | Type::TraitObject(_)) {
            errors.push(syn::Error::new_spanned(
                output,
                "a blocking task's body runs as a closure, whose return type cannot be \
                 `impl Trait` (or a bare `dyn Trait`): name the type, or return a \
                 `Box<dyn Trait + Send>`",
            ));
        }
    }
    for lifetime in sig.generics.lifetimes() {
        errors.push(syn::Error::new_spanned(
            lifetime,
            "a task is spawnable, so it cannot borrow: remove the lifetime parameter and take \
             owned arguments",
        ));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "a task cannot take `self`: make it a free function and pass what it needs by \
                 value (for shared state, an `Arc`)",
            )),
            FnArg::Typed(arg) => {
                if let Some(borrow) = first_borrow(&arg.ty) {
                    errors.push(syn::Error::new_spanned(
                        borrow,
                        "a task is spawnable, so its arguments must be owned (`'static`): take \
                         `String` for `&str`, `Vec<T>` for `&[T]`, an `Arc<T>` to share; to \
                         borrow, call a plain `async fn` inside `s.spawn_local(...)`",
                    ));
                }
            }
        }
    }
    if let Some(key) = &remote_key {
        plan.remote = Some(remote_arguments(key, &plan.item, plan.blocking, &mut errors));
    }
    plan.fallible = returns_result(&plan.item.sig.output);
    errors.finish(plan)
}

/// A remote task travels by name with its arguments encoded: it cannot be generic, and each
/// argument needs a plain name to be encoded by. Returns the names.
fn remote_arguments(
    key: &syn::Ident,
    item: &ItemFn,
    blocking: bool,
    errors: &mut Errors,
) -> Vec<syn::Ident> {
    if blocking {
        errors.push(syn::Error::new_spanned(
            key,
            "a remote task runs on a worker's executor: make it an `async fn` without `blocking` \
             (inside, `klaw::scope!` with `s.spawn_blocking` can still block)",
        ));
    }
    if let Some(param) = item.sig.generics.type_params().next() {
        errors.push(syn::Error::new_spanned(
            param,
            "a remote task cannot be generic: a worker finds it by name and must know the \
             concrete types to decode its arguments; write one task per type",
        ));
    }
    let mut names = Vec::new();
    for input in &item.sig.inputs {
        let FnArg::Typed(arg) = input else { continue };
        match arg.pat.as_ref() {
            syn::Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                names.push(ident.ident.clone());
            }
            other => errors.push(syn::Error::new_spanned(
                other,
                "a remote task's arguments are encoded by name: write `name: Type` here and \
                 destructure inside the body",
            )),
        }
    }
    names
}

/// The first reference or non-`'static` lifetime in a type, if any.
fn first_borrow(ty: &Type) -> Option<TokenStream> {
    #[derive(Default)]
    struct FindBorrow(Option<TokenStream>);
    impl<'ast> Visit<'ast> for FindBorrow {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            let static_ref = reference.lifetime.as_ref().is_some_and(|l| l.ident == "static");
            if self.0.is_none() && !static_ref {
                self.0 = Some(quote::ToTokens::to_token_stream(reference));
            }
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if self.0.is_none() && lifetime.ident != "static" {
                self.0 = Some(quote::ToTokens::to_token_stream(lifetime));
            }
        }
    }
    let mut finder = FindBorrow::default();
    finder.visit_type(ty);
    finder.0
}

/// `-> Result<..>` or `-> io::Result<..>`: an `Err` output is a failure.
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else { return false };
    let Type::Path(path) = ty.as_ref() else { return false };
    path.path.segments.last().is_some_and(|segment| segment.ident == "Result")
}

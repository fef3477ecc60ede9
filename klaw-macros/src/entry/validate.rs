//! Validation: the function's shape and the options' values, every mistake reported at once.

use syn::{Expr, ExprLit, ItemFn, Lit};

use crate::diagnostic::Errors;
use crate::duration::duration_value;
use crate::entry::parse::ParsedEntry;
use crate::entry::{EntryKind, MAX_BLOCKING_THREADS, MAX_WORKERS, OPTIONS};
use crate::options::{OptionArg, flag_value, int_value, known_options};
use crate::path::KlawPath;

/// A valid entry: what expansion needs.
pub(crate) struct EntryPlan {
    pub(crate) kind: EntryKind,
    pub(crate) workers: Option<usize>,
    pub(crate) max_blocking_threads: Option<usize>,
    /// `#[klaw::test(timeout = "10s")]`: the test fails (never hangs) past it.
    pub(crate) timeout: Option<proc_macro2::TokenStream>,
    /// `#[klaw::test(start_paused = true)]`: a virtual clock, and one worker.
    pub(crate) start_paused: bool,
    /// `#[klaw::main(cancel_on_ctrl_c)]`: Ctrl-C cancels the body with `Interrupted`. The key,
    /// so that the error without klaw's `signal` feature points at it.
    pub(crate) cancel_on_ctrl_c: Option<syn::Ident>,
    /// `#[klaw::main(tokio)]`: a tokio runtime for tokio-based crates. The key, so that the
    /// error without klaw's `tokio` feature points at it.
    pub(crate) tokio: Option<syn::Ident>,
    /// How generated code reaches klaw: `::klaw`, or `crate = "my_klaw"`.
    pub(crate) krate: KlawPath,
    pub(crate) item: ItemFn,
}

/// A plan, with defaults where an option was wrong, and whether the function can still be
/// expanded with it (the errors go to `errors`).
pub(crate) struct Checked {
    pub(crate) plan: EntryPlan,
    pub(crate) body_usable: bool,
}

pub(crate) fn validate(kind: EntryKind, entry: ParsedEntry, errors: &mut Errors) -> Checked {
    let attribute = kind.attribute();
    let mut plan = EntryPlan {
        kind,
        workers: None,
        max_blocking_threads: None,
        timeout: None,
        start_paused: false,
        cancel_on_ctrl_c: None,
        tokio: None,
        krate: KlawPath::default(),
        item: entry.item,
    };

    let mut workers_arg = None;
    for (arg, name) in known_options(&entry.options, OPTIONS, attribute, errors) {
        let slot = match name {
            "workers" => int_value(arg, 1, MAX_WORKERS).map(|n| {
                plan.workers = Some(n);
                workers_arg = Some(arg);
            }),
            "max_blocking_threads" => {
                int_value(arg, 1, MAX_BLOCKING_THREADS).map(|n| plan.max_blocking_threads = Some(n))
            }
            "timeout" if kind == EntryKind::Main => Err(syn::Error::new_spanned(
                &arg.key,
                "`timeout` is for #[klaw::test] only: bound the work inside `main` with \
                 `klaw::cancel::fail_after` or `scope!(timeout = ...)`",
            )),
            "timeout" => duration_value(arg).map(|timeout| plan.timeout = Some(timeout)),
            "start_paused" if kind == EntryKind::Main => Err(syn::Error::new_spanned(
                &arg.key,
                "`start_paused` is for #[klaw::test] only: a program runs in real time (build a \
                 runtime with `Runtime::builder().start_paused(true)` to run something on a \
                 virtual clock)",
            )),
            "start_paused" => bool_value(arg).map(|paused| plan.start_paused = paused),
            "cancel_on_ctrl_c" if kind == EntryKind::Test => Err(syn::Error::new_spanned(
                &arg.key,
                "`cancel_on_ctrl_c` is for #[klaw::main] only: a test is not interrupted by \
                 Ctrl-C (listen with `klaw::signal::ctrl_c()` if a test needs to)",
            )),
            "cancel_on_ctrl_c" => {
                flag_value(arg).map(|()| plan.cancel_on_ctrl_c = Some(arg.key.clone()))
            }
            "tokio" => flag_value(arg).map(|()| plan.tokio = Some(arg.key.clone())),
            "crate" => KlawPath::from_option(arg).map(|krate| plan.krate = krate),
            other => unreachable!("option `{other}` is in OPTIONS but not validated"),
        };
        if let Err(error) = slot {
            errors.push(error);
        }
    }
    if let (true, Some(workers), Some(arg)) = (plan.start_paused, plan.workers, workers_arg) {
        if workers != 1 {
            let value = arg.value.as_ref().expect("a valid `workers` has a value");
            errors.push(syn::Error::new_spanned(
                value,
                format!(
                    "a test with `start_paused = true` runs on one worker, so that its clock \
                     knows when every task waits: remove `workers = {workers}` (or make it 1)"
                ),
            ));
            plan.workers = None;
        }
    }

    let sig = &plan.item.sig;
    // The expansion calls the function with no arguments and no type parameters; a missing
    // `async` does not matter (the body runs in an `async` block either way).
    let body_usable = sig.inputs.is_empty() && sig.generics.params.is_empty();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!("{attribute} goes on an `async fn`: add `async` before `fn`"),
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("a {attribute} function takes no arguments; remove them"),
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("a {attribute} function cannot be generic; remove the generic parameters"),
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        // Spanned at the clause itself: the empty parameter list has no tokens to point at.
        errors.push(syn::Error::new_spanned(
            where_clause,
            format!("a {attribute} function cannot have a `where` clause; remove it"),
        ));
    }
    if kind == EntryKind::Test {
        if let Some(test) = plan.item.attrs.iter().find(|attr| attr.path().is_ident("test")) {
            errors.push(syn::Error::new_spanned(
                test,
                "remove this `#[test]`: #[klaw::test] already makes the function a test",
            ));
        }
        // The expansion adds its own `#[test]`.
        plan.item.attrs.retain(|attr| !attr.path().is_ident("test"));
    }
    Checked { plan, body_usable }
}

/// The value of `key = true` or `key = false`.
fn bool_value(arg: &OptionArg) -> syn::Result<bool> {
    let key = &arg.key;
    let expected = || format!("`{key}` takes `true` or `false`, e.g. `{key} = true`");
    match &arg.value {
        Some(Expr::Lit(ExprLit { lit: Lit::Bool(value), .. })) => Ok(value.value),
        Some(other) => Err(syn::Error::new_spanned(other, expected())),
        None => Err(syn::Error::new_spanned(key, format!("{}; the value is missing", expected()))),
    }
}

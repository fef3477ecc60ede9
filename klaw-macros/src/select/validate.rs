//! Validation across arms: at least one arm, at most one `default`.

use crate::diagnostic::Errors;
use crate::select::ARMS;
use crate::select::parse::{ArmKind, ParsedSelect};

pub(crate) fn validate(select: ParsedSelect) -> syn::Result<ParsedSelect> {
    let mut errors = Errors::default();
    if select.arms.is_empty() {
        errors.push(syn::Error::new(
            select.span,
            format!("select! needs at least one arm to wait for; valid arms: {ARMS}"),
        ));
    }
    let defaults: Vec<_> =
        select.arms.iter().filter(|arm| matches!(arm.kind, ArmKind::Default)).collect();
    for extra in defaults.iter().skip(1) {
        errors.push(syn::Error::new_spanned(
            &extra.head,
            "a select! has at most one `default` arm: it runs when no other arm is ready at once",
        ));
    }
    if !select.arms.is_empty() && defaults.len() == select.arms.len() && defaults.len() == 1 {
        errors.push(syn::Error::new_spanned(
            &defaults[0].head,
            "a select! with only `default` waits for nothing: write the body without select!",
        ));
    }
    errors.finish(select)
}

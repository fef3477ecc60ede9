//! Validation across arms: at least one arm to wait for, at most one `default`. What remains
//! usable is kept, so the expansion still carries the user's arm bodies beside the errors.

use crate::select::ARMS;
use crate::select::parse::{ArmKind, ParsedSelect};

/// Checks the arms, reporting every mistake into the select's errors, and drops the arms that
/// cannot be expanded (a second `default`).
pub(crate) fn validate(mut select: ParsedSelect) -> ParsedSelect {
    if select.arms.is_empty() && select.errors.is_empty() {
        select.errors.push(syn::Error::new(
            select.span,
            format!("select! needs at least one arm to wait for; valid arms: {ARMS}"),
        ));
    }
    let mut seen_default = false;
    let mut extra = Vec::new();
    select.arms.retain(|arm| {
        if !matches!(arm.kind, ArmKind::Default) {
            return true;
        }
        let first = !seen_default;
        seen_default = true;
        if !first {
            extra.push(syn::Error::new_spanned(
                &arm.head,
                "a select! has at most one `default` arm: it runs when no other arm is ready at once",
            ));
        }
        first
    });
    for error in extra {
        select.errors.push(error);
    }
    let waits = select.arms.iter().any(|arm| !matches!(arm.kind, ArmKind::Default));
    if seen_default && !waits && select.errors.is_empty() {
        let default = select.arms.iter().find(|arm| matches!(arm.kind, ArmKind::Default));
        select.errors.push(syn::Error::new_spanned(
            &default.expect("seen").head,
            "a select! with only `default` waits for nothing: write the body without select!",
        ));
    }
    select
}

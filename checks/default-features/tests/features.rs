//! An item of a feature the user did not turn on is one compile error that names the feature.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite`, then review.

#[test]
fn items_of_features_that_are_off_name_the_feature() {
    trybuild::TestCases::new().compile_fail("ui/*.rs");
}

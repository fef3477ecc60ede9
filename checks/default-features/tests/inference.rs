//! What a user writes next to klaw, compiled against klaw's default features.

#[klaw::test]
async fn a_sum_compared_with_assert_eq_needs_no_annotation() {
    let total = klaw_default_features::sum_in_tasks(10).await.unwrap();
    // E0283 ("type annotations needed") if serde_json were in klaw's default dependencies.
    assert_eq!(total, (0..10u64).sum());
}

#[klaw::test]
async fn channels_and_select_work_without_any_feature() {
    let (tx, rx) = klaw::channel::bounded::<u64>(4);
    tx.send(3).await.unwrap();
    let got = klaw::select! {
        recv(rx) -> msg => msg.unwrap(),
        after(std::time::Duration::from_secs(5)) => 0,
    };
    assert_eq!(got, (0..3u64).sum());
}

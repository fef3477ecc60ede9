//! A user's library on klaw with default features. It sums with `(0..n).sum()` and compares with
//! `assert_eq!` the way ordinary code does: with serde_json in the dependency graph (its
//! `impl PartialEq<Value> for u64`), `assert_eq!(total, (0..10u64).sum())` is ambiguous (E0283),
//! so this crate compiling is the check.

/// The sum of `0..n`, computed by `n` tasks in one scope.
///
/// ```
/// let rt = klaw::Runtime::builder().workers(1).build().unwrap();
/// assert_eq!(rt.block_on(klaw_default_features::sum_in_tasks(10)).unwrap(), 45);
/// ```
pub async fn sum_in_tasks(n: u64) -> Result<u64, klaw::Error> {
    klaw::scope!(|s| {
        let handles: Vec<_> = (0..n).map(|i| s.spawn(async move { i })).collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await?;
        }
        Ok(total)
    })
}

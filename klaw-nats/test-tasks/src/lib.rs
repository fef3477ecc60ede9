//! Remote tasks that live in a dependency of the worker, not in the worker's own crate: the
//! linker keeps their registrations only if this crate is linked, which a worker's test checks.

/// A word count, as a remote task defined outside the binary that runs it.
#[klaw::task(remote)]
pub async fn count_words(text: String) -> usize {
    text.split_whitespace().count()
}

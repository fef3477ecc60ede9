//! A long-lived scope keeps nothing of its ended background children: the heap stays flat over
//! tens of thousands of them, spawned and awaited one after the other, as it does for foreground
//! children: a finished task leaves nothing behind. What would break it: the list a
//! scope keeps of its background children, to stop them when the rest is done, emptied only
//! then. Its own binary: the heap is counted by a global allocator.

#[path = "common/counting_allocator.rs"]
mod counting_allocator;

use std::sync::atomic::Ordering::SeqCst;

use counting_allocator::LIVE_BYTES;

/// Children spawned, one after the other, each ended before the next.
const CHILDREN: usize = 30_000;
/// Children spawned before the heap is first measured: the runtime's queues and the scope's
/// registry reach their working size.
const WARM_UP: usize = 5_000;
/// What the heap may grow by over the other 25 000 ended children (40 bytes each): a leak of a
/// task core each is well over 100 bytes a child.
const ALLOWED_GROWTH: isize = 1024 * 1024;

/// Spawns `CHILDREN` children one at a time in one scope (with `spawn_background` if
/// `background`), awaiting each; the heap's growth from the end of the warm-up to the last one.
fn growth(rt: &klaw::Runtime, background: bool) -> isize {
    rt.block_on(async {
        klaw::scope!(|s| {
            let mut warm = 0;
            for i in 0..CHILDREN {
                if i == WARM_UP {
                    warm = LIVE_BYTES.load(SeqCst);
                }
                let value = if background {
                    s.spawn_background(async move { i }).await?
                } else {
                    s.spawn(async move { i }).await?
                };
                assert_eq!(value, i);
            }
            Ok(LIVE_BYTES.load(SeqCst) - warm)
        })
    })
    .unwrap()
}

#[test]
fn a_long_lived_scope_keeps_nothing_of_its_ended_background_children() {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    // The control: ended foreground children are swept, so the heap stays flat.
    let foreground = growth(&rt, false);
    assert!(
        foreground < ALLOWED_GROWTH,
        "control: the heap grew by {foreground} bytes over {} ended foreground children",
        CHILDREN - WARM_UP
    );
    let background = growth(&rt, true);
    assert!(
        background < ALLOWED_GROWTH,
        "the heap grew by {background} bytes ({} a child) over {} ended background children \
         of one open scope (the foreground children: {foreground} bytes)",
        background / (CHILDREN - WARM_UP) as isize,
        CHILDREN - WARM_UP
    );
    assert_eq!(rt.live_tasks(), 0);
}

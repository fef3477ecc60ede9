//! Finished tasks leave nothing behind (no list of handles grows forever): after a million
//! short tasks the live count is zero and the heap holds no more than after the first few
//! thousand.
//! Heap bytes are counted by a global allocator, so this test lives in its own binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counter only observes sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout, as the caller's contract requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const BATCH: usize = 1_000;

fn run_batch(rt: &klaw::Runtime) {
    let handles: Vec<_> = (0..BATCH).map(|i| rt.spawn(async move { i })).collect();
    rt.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

#[test]
fn a_million_finished_tasks_leave_nothing_behind() {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..10 {
        run_batch(&rt); // warm up: queues and slabs reach their working size
    }
    let baseline = LIVE_BYTES.load(Ordering::SeqCst);
    for _ in 0..1_000 {
        run_batch(&rt);
    }
    assert_eq!(rt.live_tasks(), 0);
    let growth = LIVE_BYTES.load(Ordering::SeqCst) - baseline;
    // A leak of even 8 bytes per task would be 8 MB here; allow only a little scheduling noise.
    assert!(growth < 64 * 1024, "the heap grew by {growth} bytes over 1,000,000 tasks");
    let report = rt.shutdown(std::time::Duration::from_secs(5));
    assert_eq!(report.succeeded, 1_010_000);
}

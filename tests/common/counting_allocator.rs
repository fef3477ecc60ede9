//! A global allocator that counts the heap's live bytes (and their peak), for the tests that
//! check what memory a scope keeps. Each such test is a binary of its own (`#[path]`), since the
//! count is of the whole process.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

pub static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
pub static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE_BYTES.fetch_add(layout.size() as isize, SeqCst) + layout.size() as isize;
        PEAK_BYTES.fetch_max(live, SeqCst);
        // SAFETY: forwarded with the caller's layout, as the caller's contract requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, SeqCst);
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

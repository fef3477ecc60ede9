//! A channel's memory follows what is queued, not its capacity: counted by a global allocator,
//! so this file holds one test (the test harness allocates on other threads otherwise).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes in use.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(new_size, Ordering::Relaxed);
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated while `f` runs and not freed when it returns (what `f` keeps).
fn kept<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = IN_USE.load(Ordering::Relaxed);
    let result = f();
    (result, IN_USE.load(Ordering::Relaxed).saturating_sub(before))
}

const MB: usize = 1 << 20;

#[test]
fn channel_memory_follows_what_is_queued_not_the_capacity_and_bad_capacities_panic() {
    // A huge capacity costs nothing up front (before: 1.5 GB and 7 s for this one).
    let ((tx, rx), bytes) = kept(|| klaw::channel::bounded::<u64>(100_000_000));
    assert!(bytes < MB, "bounded(100_000_000) allocated {bytes} bytes before any send");
    // One that no machine could allocate is fine too (before: the process aborted).
    let (huge, bytes) = kept(|| klaw::channel::bounded::<u64>(10_000_000_000));
    assert!(bytes < MB, "bounded(10_000_000_000) allocated {bytes} bytes");
    drop(huge);
    let (max, bytes) = kept(|| klaw::channel::bounded::<u64>(usize::MAX));
    assert!(bytes < MB);
    drop(max);

    // It grows with the queue, and gives the memory back as the queue drains.
    let ((), grown) = kept(|| {
        for i in 0..1_000_000u64 {
            tx.try_send(i).unwrap();
        }
    });
    assert!(grown >= 8 * 1_000_000, "a million u64 are queued: {grown} bytes");
    let before_drain = IN_USE.load(Ordering::Relaxed);
    for i in 0..1_000_000u64 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    let given_back = before_drain.saturating_sub(IN_USE.load(Ordering::Relaxed));
    assert!(given_back + MB > grown, "drained, it gave back {given_back} of {grown} bytes");
    drop((tx, rx));

    // A broadcast channel keeps nothing up front either.
    let ((btx, brx), bytes) = kept(|| klaw::channel::broadcast::channel::<u64>(100_000_000));
    assert!(bytes < MB, "broadcast(100_000_000) allocated {bytes} bytes");
    drop((btx, brx));

    // Capacities that can never be honoured are a panic whose message names the range (last:
    // a panic allocates, for its message and maybe a backtrace).
    let zero = std::panic::catch_unwind(|| klaw::channel::bounded::<u8>(0)).unwrap_err();
    assert!(panic_message(&*zero).contains("1..=usize::MAX"), "{}", panic_message(&*zero));
    let huge = std::panic::catch_unwind(|| klaw::channel::broadcast::channel::<u8>(usize::MAX));
    let huge = huge.unwrap_err();
    let range = format!("1..={}", klaw::channel::broadcast::MAX_CAPACITY);
    assert!(panic_message(&*huge).contains(&range), "{}", panic_message(&*huge));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match payload.downcast_ref::<String>() {
        Some(message) => message.clone(),
        None => {
            payload.downcast_ref::<&str>().map(|message| message.to_string()).unwrap_or_default()
        }
    }
}

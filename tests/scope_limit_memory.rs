//! A scope's limit keeps waiting children cheap: a million children queued behind
//! `scope!(limit = 4, ..)` cost their futures and their handles' state, not a task each, and no
//! more than 4 ever run at once. Heap bytes are counted by a global allocator, so this test
//! lives in its own binary.

#[path = "common/counting_allocator.rs"]
mod counting_allocator;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use counting_allocator::{LIVE_BYTES, PEAK_BYTES};

const CHILDREN: usize = 1_000_000;
const LIMIT: usize = 4;
/// What a waiting child may cost, its future included.
const BYTES_PER_WAITING_CHILD: isize = 200;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);
static RAN: AtomicUsize = AtomicUsize::new(0);
/// Closed while the body spawns, so the first children hold their slots and the rest wait.
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

#[test]
fn a_million_children_wait_behind_a_limit_of_four_for_less_than_200_bytes_each() {
    let rt = klaw::Runtime::builder().workers(2).build().unwrap();
    // Warm up: the workers, the executor's queues and the blocking pool reach their size.
    rt.block_on(async {
        klaw::scope!(limit = LIMIT, |s| {
            for _ in 0..1_000 {
                s.spawn(async {});
            }
            Ok(())
        })
    })
    .unwrap();
    let baseline = LIVE_BYTES.load(SeqCst);
    PEAK_BYTES.store(baseline, SeqCst);

    let waiting_at_the_end_of_the_body = rt
        .block_on(async {
            klaw::scope!(limit = LIMIT, |s| {
                for _ in 0..CHILDREN {
                    s.spawn(async {
                        let now = RUNNING.fetch_add(1, SeqCst) + 1;
                        MOST_RUNNING.fetch_max(now, SeqCst);
                        while !GATE_OPEN.load(SeqCst) {
                            futures_lite::future::yield_now().await;
                        }
                        RUNNING.fetch_sub(1, SeqCst);
                        RAN.fetch_add(1, SeqCst);
                    });
                }
                let waiting = CHILDREN - RUNNING.load(SeqCst) - RAN.load(SeqCst);
                GATE_OPEN.store(true, SeqCst);
                Ok(waiting)
            })
        })
        .unwrap();

    let peak = PEAK_BYTES.load(SeqCst) - baseline;
    let per_child = peak / waiting_at_the_end_of_the_body as isize;
    #[allow(clippy::print_stdout, reason = "the measurement, shown with --nocapture")]
    {
        println!("peak heap: {per_child} bytes per waiting child");
    }
    assert_eq!(RAN.load(SeqCst), CHILDREN, "every child ran once the others made room");
    assert!(MOST_RUNNING.load(SeqCst) <= LIMIT, "{} ran at once", MOST_RUNNING.load(SeqCst));
    assert_eq!(waiting_at_the_end_of_the_body, CHILDREN - LIMIT, "all but the first four waited");
    assert!(
        per_child < BYTES_PER_WAITING_CHILD,
        "the heap peaked at {peak} bytes, {per_child} per waiting child"
    );
    assert_eq!(rt.live_tasks(), 0);
}

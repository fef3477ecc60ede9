//! The queue of runnable tasks, shared by the workers: a lock-free ring of [`RING_CAPACITY`]
//! tasks (`concurrent-queue`'s bounded queue), and behind it an overflow for a burst the ring
//! cannot hold, a `VecDeque` under a spin lock. Under the model checker it is a loom mutex around
//! a `VecDeque` (the lock-free ring is not loom-instrumented; what the models check is the sleep
//! and wake protocol around it, which sees the queue only through `push`, `pop` and `is_empty`).
//!
//! Why not an unbounded lock-free queue (what `async-executor` uses): it allocates a block of
//! slots as it fills and frees it on the thread that empties it. With one thread spawning and
//! the workers running what it spawns, every block was allocated by one thread and freed by
//! another, and glibc's `free` of another thread's block takes that thread's arena lock, the one
//! its next `malloc` needs: in `benches/spawn` (spawns from outside the runtime, 2 workers) the
//! spawning thread and the workers met on that lock often enough for 400k–670k `futex` calls
//! per 4M tasks. The ring allocates once, and the overflow's buffer grows and stays until a
//! burst is over. Measured in the bench's loop alone (medians of 30 rounds, five alternating
//! runs): 620–770 ns a spawn and join before, 320–470 after; `futex` calls 29k–157k. An
//! unbounded lock-free overflow behind the ring measured as fast but kept half the `futex` calls
//! (its blocks again).
//!
//! Order: the overflow takes a task only while the ring is full or the overflow still holds
//! tasks, and a worker takes from the ring first. So the tasks in the ring are older than those in
//! the overflow, and a task in the overflow waits for the ring to drain, never for tasks queued
//! after it: no task waits behind a stream of newer ones.
//!
//! Tasks of every metadata type share the queue: an [`Entry`] is a task's raw pointer and the
//! two functions that know its type.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use async_task::Runnable;

#[cfg(not(klaw_loom))]
use crate::sync::{AtomicUsize, Ordering, SpinMutex};
#[cfg(not(klaw_loom))]
use std::collections::VecDeque;

/// A runnable task whose metadata type is forgotten: `Runnable::into_raw`, and how to run or
/// drop it.
pub(super) struct Entry {
    task: NonNull<()>,
    vtable: &'static EntryVTable,
}

struct EntryVTable {
    run: unsafe fn(NonNull<()>) -> bool,
    drop: unsafe fn(NonNull<()>),
}

struct VTableOf<M>(PhantomData<M>);

impl<M: Send + Sync + 'static> VTableOf<M> {
    const VTABLE: EntryVTable = EntryVTable { run: run_raw::<M>, drop: drop_raw::<M> };
}

/// # Safety
/// `task` must come from `Runnable::<M>::into_raw`, and be used this once.
unsafe fn run_raw<M>(task: NonNull<()>) -> bool {
    // SAFETY: as the caller promised.
    unsafe { Runnable::<M>::from_raw(task) }.run()
}

/// # Safety
/// As for [`run_raw`].
unsafe fn drop_raw<M>(task: NonNull<()>) {
    // SAFETY: as the caller promised.
    drop(unsafe { Runnable::<M>::from_raw(task) });
}

// SAFETY: an entry owns a `Runnable<M>` with `M: Send + Sync` (see `Entry::new`), which is `Send`.
unsafe impl Send for Entry {}

impl Entry {
    pub(super) fn new<M: Send + Sync + 'static>(runnable: Runnable<M>) -> Self {
        Entry { task: runnable.into_raw(), vtable: &VTableOf::<M>::VTABLE }
    }

    /// Runs the task (see `Runnable::run`).
    pub(super) fn run(self) -> bool {
        let entry = ManuallyDrop::new(self);
        // SAFETY: the pointer came from `into_raw` of a `Runnable<M>` whose vtable this is, and
        // `ManuallyDrop` keeps `Drop` from using it a second time.
        unsafe { (entry.vtable.run)(entry.task) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: as in `run`; an entry that is run is never dropped.
        unsafe { (self.vtable.drop)(self.task) }
    }
}

/// How many queued tasks the ring holds (16 bytes each and a stamp); more wait in the overflow.
#[cfg(not(klaw_loom))]
const RING_CAPACITY: usize = 1024;

#[cfg(not(klaw_loom))]
pub(super) struct Queue {
    ring: crossbeam_utils::CachePadded<concurrent_queue::ConcurrentQueue<Entry>>,
    overflow: crossbeam_utils::CachePadded<Overflow>,
}

/// Tasks queued while the ring was full, oldest first, and how many: read without the lock by
/// every push (to queue behind them) and every look for work.
#[cfg(not(klaw_loom))]
struct Overflow {
    tasks: SpinMutex<VecDeque<Entry>>,
    len: AtomicUsize,
}

/// An overflow emptied with room for more than this many gives its buffer back.
#[cfg(not(klaw_loom))]
const OVERFLOW_KEPT: usize = 4 * RING_CAPACITY;

#[cfg(not(klaw_loom))]
impl Queue {
    pub(super) fn new() -> Self {
        Queue {
            ring: crossbeam_utils::CachePadded::new(concurrent_queue::ConcurrentQueue::bounded(
                RING_CAPACITY,
            )),
            overflow: crossbeam_utils::CachePadded::new(Overflow {
                tasks: SpinMutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }),
        }
    }

    pub(super) fn push(&self, entry: Entry) {
        // Behind the overflow while it holds tasks, so they are not overtaken.
        let entry = if self.overflow_len() == 0 {
            match self.ring.push(entry) {
                Ok(()) => return,
                Err(full) => full.into_inner(),
            }
        } else {
            entry
        };
        let mut tasks = self.overflow.tasks.lock();
        tasks.push_back(entry);
        // SeqCst, as a push into the ring is: a worker about to sleep looks at it last.
        self.overflow.len.store(tasks.len(), Ordering::SeqCst);
    }

    /// The oldest task, nearly: the ring's tasks are older than the overflow's.
    pub(super) fn pop(&self) -> Option<Entry> {
        if let Ok(entry) = self.ring.pop() {
            return Some(entry);
        }
        if self.overflow_len() == 0 {
            return None;
        }
        let mut tasks = self.overflow.tasks.lock();
        let entry = tasks.pop_front();
        self.overflow.len.store(tasks.len(), Ordering::SeqCst);
        // A burst's buffer goes once the burst is over: memory follows what is queued.
        let released = (tasks.is_empty() && tasks.capacity() > OVERFLOW_KEPT)
            .then(|| std::mem::take(&mut *tasks));
        drop(tasks);
        drop(released); // freed outside the lock
        entry
    }

    fn overflow_len(&self) -> usize {
        self.overflow.len.load(Ordering::SeqCst)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ring.is_empty() && self.overflow_len() == 0
    }

    pub(super) fn len(&self) -> usize {
        self.ring.len() + self.overflow_len()
    }
}

#[cfg(klaw_loom)]
pub(super) struct Queue(crate::sync::Mutex<std::collections::VecDeque<Entry>>);

#[cfg(klaw_loom)]
impl Queue {
    pub(super) fn new() -> Self {
        Queue(crate::sync::Mutex::new(std::collections::VecDeque::new()))
    }

    pub(super) fn push(&self, entry: Entry) {
        self.0.lock().push_back(entry);
    }

    pub(super) fn pop(&self) -> Option<Entry> {
        self.0.lock().pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.0.lock().len()
    }
}

#[cfg(all(test, not(klaw_loom)))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A queue entry whose task records `index` in `ran` when it runs.
    fn entry(ran: &Arc<Mutex<Vec<usize>>>, index: usize) -> Entry {
        let ran = ran.clone();
        let (runnable, task) =
            async_task::spawn(async move { ran.lock().unwrap().push(index) }, |_| {});
        task.detach();
        Entry::new(runnable)
    }

    fn run_all(queue: &Queue) -> usize {
        let mut count = 0;
        while let Some(entry) = queue.pop() {
            entry.run();
            count += 1;
        }
        count
    }

    #[test]
    fn a_burst_past_the_ring_waits_in_the_overflow_and_every_task_runs_in_order() {
        let (queue, ran) = (Queue::new(), Arc::new(Mutex::new(Vec::new())));
        let burst = RING_CAPACITY + 100;
        for index in 0..burst {
            queue.push(entry(&ran, index));
        }
        assert_eq!(queue.len(), burst);
        assert_eq!(queue.overflow_len(), 100, "the ring holds RING_CAPACITY");
        assert_eq!(run_all(&queue), burst);
        assert!(queue.is_empty());
        assert_eq!(*ran.lock().unwrap(), (0..burst).collect::<Vec<_>>());
    }

    #[test]
    fn while_the_overflow_holds_tasks_new_ones_queue_behind_them() {
        let (queue, ran) = (Queue::new(), Arc::new(Mutex::new(Vec::new())));
        for index in 0..RING_CAPACITY + 10 {
            queue.push(entry(&ran, index));
        }
        // The ring has room again, but the overflow still holds ten older tasks.
        for _ in 0..5 {
            queue.pop().expect("queued").run();
        }
        for index in RING_CAPACITY + 10..RING_CAPACITY + 13 {
            queue.push(entry(&ran, index));
        }
        run_all(&queue);
        assert_eq!(*ran.lock().unwrap(), (0..RING_CAPACITY + 13).collect::<Vec<_>>());
    }

    #[test]
    fn once_the_overflow_is_drained_tasks_go_to_the_ring_again() {
        let (queue, ran) = (Queue::new(), Arc::new(Mutex::new(Vec::new())));
        for index in 0..RING_CAPACITY + 1 {
            queue.push(entry(&ran, index));
        }
        run_all(&queue);
        queue.push(entry(&ran, RING_CAPACITY + 1));
        assert!(queue.overflow_len() == 0 && queue.ring.len() == 1);
        assert_eq!(run_all(&queue), 1);
    }

    #[test]
    fn an_overflow_emptied_after_a_large_burst_gives_its_buffer_back() {
        let (queue, ran) = (Queue::new(), Arc::new(Mutex::new(Vec::new())));
        let burst = RING_CAPACITY + 2 * OVERFLOW_KEPT;
        for index in 0..burst {
            queue.push(entry(&ran, index));
        }
        assert!(queue.overflow.tasks.lock().capacity() > OVERFLOW_KEPT);
        assert_eq!(run_all(&queue), burst);
        assert_eq!(queue.overflow.tasks.lock().capacity(), 0);
    }

    #[test]
    fn a_dropped_queue_entry_drops_its_task_unrun() {
        let (queue, ran) = (Queue::new(), Arc::new(Mutex::new(Vec::new())));
        for index in 0..RING_CAPACITY + 3 {
            queue.push(entry(&ran, index));
        }
        while let Some(entry) = queue.pop() {
            drop(entry);
        }
        assert!(ran.lock().unwrap().is_empty());
        assert_eq!(Arc::strong_count(&ran), 1, "every task's future was dropped");
    }
}

//! Log hooks: user callbacks that receive every event, delivered by a `tracing-subscriber`
//! layer. A hook is useful only if it is wired into the pipeline: these are part of the
//! subscriber `klaw::log::init()` installs (or of yours, through `hook_layer()`), and
//! `tests/logging.rs` checks that a hook receives events and a removed one does not.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
// The statics here are process-wide and outlive any loom model, so their atomics are std's;
// the lock goes through the shim like every other.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use crate::sync::RwLock;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::log::event::{FieldMap, LogEvent};

type HookList = Vec<Arc<Hook>>;

/// A hook, with what removing it needs: a removed hook is called no more once `remove_hook`
/// returns, also by an event that took the list before (see [`retire`]).
struct Hook {
    id: HookId,
    call: Box<dyn Fn(&LogEvent) + Send + Sync>,
    /// Set by `remove_hook` / `clear_hooks`, before they look at `calls`.
    removed: AtomicBool,
    /// Calls in progress, on any thread; counted before `removed` is checked.
    calls: AtomicUsize,
}

/// Identifies a hook, to remove it.
///
/// ```
/// let id: klaw::log::HookId = klaw::log::add_hook(|_event| {});
/// assert!(klaw::log::remove_hook(id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookId(u64);

std::thread_local! {
    /// Whether this thread is calling hooks now. An event a hook logs is not given to the hooks
    /// again: the global dispatcher has no re-entrancy guard, so a hook that logs what it sees
    /// would call itself until the stack overflows.
    static DELIVERING: Cell<bool> = const { Cell::new(false) };
}

/// This thread calls hooks while it lives.
struct Delivering;

impl Delivering {
    /// `None` if this thread is calling hooks already. A thread whose thread-locals are gone
    /// (an event from a thread-local's destructor) still delivers, unguarded.
    fn enter() -> Option<Option<Delivering>> {
        match DELIVERING.try_with(|delivering| delivering.replace(true)) {
            Ok(true) => None,
            Ok(false) => Some(Some(Delivering)),
            Err(_) => Some(None),
        }
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        let _ = DELIVERING.try_with(|delivering| delivering.set(false));
    }
}

/// Copy on write: an event clones the `Arc` (one increment) instead of the list; the rare
/// add/remove builds a new list. `None` is the empty list.
static HOOKS: LazyLock<RwLock<Option<Arc<HookList>>>> = LazyLock::new(RwLock::default);
/// Lets the layer skip building a `LogEvent` when nobody listens.
static ANY_HOOKS: AtomicBool = AtomicBool::new(false);

/// Adds a hook that receives every event the installed subscriber lets through (see
/// [`init`](crate::log::init)). Hooks run on the thread that emitted the event; a panicking
/// hook is contained and does not stop the others. An event a hook logs goes to the output, not
/// to the hooks again, so a hook that logs what it sees does not call itself without end.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let id = klaw::log::add_hook(move |event| sink.lock().unwrap().push(event.message.clone()));
/// klaw::log::LogConfig::default().without_output().init().ok(); // once per process
/// tracing::info!("hello hooks");
/// assert!(seen.lock().unwrap().iter().any(|m| m == "hello hooks"));
/// assert!(klaw::log::remove_hook(id));
/// ```
pub fn add_hook(hook: impl Fn(&LogEvent) + Send + Sync + 'static) -> HookId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = HookId(NEXT.fetch_add(1, Ordering::Relaxed));
    let hook = Hook {
        id,
        call: Box::new(hook),
        removed: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
    };
    update(|hooks| hooks.push(Arc::new(hook)));
    id
}

/// Removes a hook; returns whether it was registered. Once this returns, the hook is not called
/// again, by any thread: calls of it in progress on other threads are waited for, so do not
/// remove a hook while holding something it waits for. Called from inside a hook, it does not
/// wait (the call in progress may be its own).
///
/// ```
/// let id = klaw::log::add_hook(|_| {});
/// assert!(klaw::log::remove_hook(id));
/// assert!(!klaw::log::remove_hook(id)); // already gone
/// ```
pub fn remove_hook(id: HookId) -> bool {
    let removed = update(|hooks| {
        let at = hooks.iter().position(|hook| hook.id == id)?;
        Some(hooks.remove(at))
    });
    let found = removed.is_some();
    retire(removed.as_slice());
    found
}

/// Removes every hook. Once this returns, none of them is called again (as with
/// [`remove_hook`]).
///
/// ```
/// let id = klaw::log::add_hook(|_| {});
/// klaw::log::clear_hooks();
/// assert!(!klaw::log::remove_hook(id));
/// ```
pub fn clear_hooks() {
    let removed = update(std::mem::take);
    retire(&removed);
}

/// Marks `removed` hooks removed, then waits until no call of them is in progress. An event
/// counts its call before it checks the mark, and this marks before it reads the count (all
/// `SeqCst`): a call either sees the mark and is skipped, or is seen here and waited for.
/// A thread calling hooks does not wait: the call in progress may be its own, and two hooks
/// removing each other on two threads would wait for each other.
fn retire(removed: &[Arc<Hook>]) {
    for hook in removed {
        hook.removed.store(true, Ordering::SeqCst);
    }
    if DELIVERING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    for hook in removed {
        let mut spins = 0_u32;
        while hook.calls.load(Ordering::SeqCst) != 0 {
            // A call is short (hooks are to be quick); one that is not is not spun for.
            if spins < 64 {
                spins += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// Applies `change` to a copy of the hook list and publishes the result.
fn update<R>(change: impl FnOnce(&mut HookList) -> R) -> R {
    let mut slot = HOOKS.write();
    let mut hooks = slot.as_deref().cloned().unwrap_or_default();
    let result = change(&mut hooks);
    ANY_HOOKS.store(!hooks.is_empty(), Ordering::Release);
    let old = std::mem::replace(&mut *slot, (!hooks.is_empty()).then(|| Arc::new(hooks)));
    drop(slot);
    // Outside the lock: the old list may hold the last reference to a removed hook, whose
    // captured values may log as they are dropped (and an event reads the list).
    drop(old);
    result
}

/// The fields of a span, kept in its extensions so events inside it can carry them.
struct SpanFields(FieldMap);

/// The layer that delivers events to hooks. [`init`](crate::log::init) installs it; add it to
/// your own subscriber with [`hook_layer`](crate::log::hook_layer).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// // Your own subscriber, with klaw's hooks as one layer of it.
/// let subscriber = tracing_subscriber::registry().with(klaw::log::hook_layer());
/// let _guard = tracing::subscriber::set_default(subscriber);
/// let (tx, rx) = std::sync::mpsc::channel();
/// let id = klaw::log::add_hook(move |event| { let _ = tx.send(event.message.clone()); });
/// tracing::info!("through my subscriber");
/// klaw::log::remove_hook(id);
/// assert!(rx.try_iter().any(|message| message == "through my subscriber"));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct HookLayer;

impl<S> Layer<S> for HookLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = FieldMap::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !ANY_HOOKS.load(Ordering::Acquire) {
            return;
        }
        let Some(_delivering) = Delivering::enter() else { return };
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let mut span_fields = std::collections::BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                // Every field a span declares is its own, also one it leaves empty: a task
                // without a name, spawned by a named one, has no name (not its parent's).
                for field in span.metadata().fields() {
                    span_fields.remove(field.name());
                }
                if let Some(SpanFields(map)) = span.extensions().get::<SpanFields>() {
                    span_fields.extend(map.fields.iter().map(|(k, v)| (*k, v.clone())));
                }
            }
        }
        let metadata = event.metadata();
        let log_event = LogEvent {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            message: fields.message.unwrap_or_default(),
            fields: fields.fields,
            span_fields,
        };
        // Call outside the lock: a hook may add or remove hooks.
        let hooks = HOOKS.read().clone();
        for hook in hooks.iter().flat_map(|hooks| hooks.iter()) {
            // A hook removed since the list was taken is skipped without being counted, so
            // that new events do not keep `retire` waiting.
            if hook.removed.load(Ordering::Relaxed) {
                continue;
            }
            // Counted before the check (see `retire`): a hook removed meanwhile is not called.
            hook.calls.fetch_add(1, Ordering::SeqCst);
            if !hook.removed.load(Ordering::SeqCst) {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (hook.call)(&log_event))) {
                    // Dropped where its own panic is caught: a payload whose destructor panics
                    // would otherwise unwind into the code that logged (a task, or the runtime
                    // itself) and skip the later hooks.
                    crate::task::guard::drop_payload(payload);
                }
            }
            hook.calls.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

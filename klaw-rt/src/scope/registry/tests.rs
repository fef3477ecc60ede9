//! The registry's unit tests: how a scope lists, sweeps and reports its children.

use super::*;
use crate::task::core::{FailureTaker, new_task};

type Output = TaskOutput<u32, String>;

/// Lists a child, and returns what ends it well.
fn list(scope: &Arc<ScopeShared>) -> impl FnOnce() + use<> {
    let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
    let link = scope.register::<String>(child_ref(joiner.core()));
    move || {
        let _ = completer.decide(Kind::Success);
        completer.publish(Ok(7), FailureTaker::Scope);
        link.ended();
        drop(joiner); // its handle is gone: the scope's list holds the last reference
    }
}

fn listed(scope: &ScopeShared) -> usize {
    scope.registry.lock().children.len()
}

#[test]
fn a_long_lived_scope_lists_about_twice_its_live_children() {
    let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
    // 50 live at a time, the oldest ending as each new one starts: 100k in all.
    let mut live = std::collections::VecDeque::new();
    let mut most = 0;
    for _ in 0..100_000 {
        live.push_back(list(&scope));
        if live.len() > 50 {
            live.pop_front().expect("more than 50 live")();
        }
        most = most.max(listed(&scope));
    }
    assert!(most <= 2 * 51, "the scope listed {most} children, 51 live");
}

#[test]
fn children_ended_in_one_burst_are_swept_as_the_scope_goes_on() {
    let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
    let ends: Vec<_> = (0..1_000).map(|_| list(&scope)).collect();
    for end in ends {
        end();
    }
    assert_eq!(listed(&scope), 1_000, "nothing is swept until a child is listed");
    // One child at a time from here on, each ending at once: within a round of the step
    // sweep, the list is found over twice its live children and swept whole.
    for _ in 0..1_000 {
        list(&scope)();
    }
    let left = listed(&scope);
    assert!(left <= FIRST_SWEEP, "{left} children still listed, none live");
}

#[test]
fn the_step_sweep_keeps_a_steady_scope_small() {
    let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
    // Each child ends two listings after it starts, as when workers keep up with the
    // spawning thread: the bulk sweep is never due, and the step sweep keeps the list short.
    let mut live = std::collections::VecDeque::new();
    for _ in 0..10_000 {
        live.push_back(list(&scope));
        if live.len() > 2 {
            live.pop_front().expect("more than 2 live")();
        }
    }
    let left = listed(&scope);
    assert!(left < 16, "{left} children listed, 3 live");
}

#[test]
fn a_dropped_scope_logs_a_failure_before_its_frame_hears_the_child_ended() {
    use std::sync::Mutex as StdMutex;
    let scope = ScopeShared::new(false, None, ScopeInfo::now(None));
    let (completer, joiner) = new_task::<Output>(TaskId::next(), None);
    let link = scope.register::<String>(child_ref(joiner.core()));
    drop(joiner); // nobody awaits it: only the scope can report its failure
    // The scope is dropped with its child running: it is abandoned, and the frame it went
    // to waits for the child (here, `then_run` stands for that frame's end).
    let unlogged_at_frame_end = Arc::new(StdMutex::new(None));
    let seen = unlogged_at_frame_end.clone();
    let shared = scope.clone();
    scope.descendants.then_run(Box::new(move |_| {
        // `log_abandoned` takes the failures it logs: any left here are not logged yet.
        *seen.lock().unwrap() = Some(shared.take_failures().len());
    }));
    scope.abandon(None, None, &[]);
    // The child fails, then ends.
    assert!(completer.decide(Kind::Error));
    link.before_publish(Kind::Error);
    completer.publish(Err(TaskError::Failed("disk on fire".to_owned())), FailureTaker::Scope);
    link.ended();
    let unlogged = unlogged_at_frame_end.lock().unwrap().take();
    assert_eq!(unlogged, Some(0), "the frame ended before the failure was logged");
}

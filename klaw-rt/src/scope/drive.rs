//! Running a scope: polling its body and local children, waiting for every child, and turning
//! what failed into the scope's result.
#![forbid(unsafe_code)]

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::cancel::frames::{self, FrameKind};
use crate::coop;
use crate::error::{Error, ScopeError};
use crate::scope::registry::{Failure, take_stand_in};
use crate::scope::{LocalChild, Scope, ScopeOptions};
use crate::task::current::{self, Adopter};
use crate::task::error::{BoxError, TaskError};
use crate::task::guard;
use crate::task::{CancelReason, TaskId};
use crate::time::{self, Elapsed, Sleep};

/// The body of a scope, as `scope!` boxes it: a future of `Result<T, E>`, where `E` is
/// [`BoxError`] unless the body names its own (`scope!(|s| -> anyhow::Result<_> { .. })`).
///
/// ```
/// use klaw::{Scope, scope::ScopeBody};
/// fn body<'s>(s: &'s Scope<'_>) -> ScopeBody<'s, u8> {
///     Box::pin(async move { Ok(s.spawn_local(async { 3 }).await?) })
/// }
/// assert_eq!(klaw::runtime::block_on(klaw::scope::scope_with(klaw::scope::ScopeOptions::new(), body)).unwrap(), 3);
/// ```
pub type ScopeBody<'s, T, E = BoxError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 's>>;

/// An error type a scope's body can return: it must hold klaw's own errors (a failed child, a
/// deadline), and turn into a boxed error when it is one of several failures. `klaw::Error`,
/// `Box<dyn Error + Send + Sync>`, `anyhow::Error`, `eyre::Report` and any error enum with a
/// `#[from] klaw::Error` variant are.
///
/// ```
/// fn holds<E: klaw::scope::ScopeBodyError>() {}
/// holds::<klaw::Error>();
/// holds::<klaw::task::BoxError>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a scope body's error type: it cannot hold klaw's own errors",
    note = "a scope's error type needs `From<klaw::Error>` (a failed child, a deadline) and `Into<Box<dyn Error + Send + Sync>>`",
    note = "use `klaw::Error`, `anyhow::Error`, `eyre::Report`, or an enum with a `#[from] klaw::Error` variant"
)]
pub trait ScopeBodyError: From<Error> + Into<BoxError> + Send + 'static {}

impl<E: From<Error> + Into<BoxError> + Send + 'static> ScopeBodyError for E {}

/// A scope body's result type as `scope!(|s| -> R { .. })` names it: a `Result` (whose error
/// the scope requires to be a [`ScopeBodyError`]).
///
/// ```
/// fn result<R: klaw::scope::ScopeResult>() {}
/// result::<Result<u8, klaw::Error>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a scope body's result type: it is not a `Result`",
    label = "not a `Result`",
    note = "a scope's body returns `Ok(value)` or an error: name its type `-> Result<T, E>` \
            (`E` is `klaw::Error`, `anyhow::Error`, or an error with a `#[from] klaw::Error` \
            variant), or leave the arrow out"
)]
pub trait ScopeResult: Send {
    /// The value of a body that succeeds.
    type Ok: Send;
    /// The error of a body that fails (the scope requires it to be a [`ScopeBodyError`]).
    type Err;
    /// As a `Result`.
    ///
    /// ```
    /// use klaw::scope::ScopeResult;
    /// assert_eq!(Ok::<u8, klaw::Error>(3).into_result().unwrap(), 3);
    /// ```
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T: Send, E: Send> ScopeResult for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Self {
        self
    }
}

/// Boxes a body whose result type `R` the user named (what `scope!(|s| -> R { .. })` expands
/// to): the named type is what `?` in the body converts into.
///
/// ```
/// use klaw::scope::{ScopeOptions, scope_with_error, typed_scope_body};
/// let value = klaw::runtime::block_on(scope_with_error(ScopeOptions::new(), |_s| {
///     typed_scope_body::<Result<_, klaw::Error>, _>(async { Ok(7) })
/// }));
/// assert_eq!(value.unwrap(), 7);
/// ```
pub fn typed_scope_body<'s, R, F>(body: F) -> ScopeBody<'s, R::Ok, R::Err>
where
    R: ScopeResult + 's,
    F: Future<Output = R> + Send + 's,
{
    Box::pin(FutureExt::map(body, R::into_result))
}

/// Runs a scope: what `scope!` expands to. The body gets the [`Scope`] and returns a
/// `Result<T, BoxError>`, so `?` takes any error; the scope returns when the body and every
/// child have ended.
///
/// - Every child ended well: the body's result.
/// - One thing failed (the body's `Err`, a child's failure, the deadline): that error. A failed
///   child fails the scope whether or not the body awaits it. In supervisor mode a failure the
///   body awaited is the body's to report (returned, it is listed where it came). In a shield
///   the body can take a failure from a handle too: returned (with `?`, or as the `source` of its own error, or in an error of a
///   type of its own) it is listed once, where the child's failure came; dropped, or replaced by
///   an error that does not carry it, the scope still lists it, a failed child's error as a
///   [`TakenFailure`](crate::task::TakenFailure) that keeps its words.
///   The body's own error comes back as it was if it is a `klaw::Error`, else as
///   [`Error::Body`].
/// - A failure that raced a cancel (the child's handle says `Cancelled`) is still reported.
/// - Several failed: [`Error::Scope`] with all of them, the first first.
/// - Cancelled with nothing failing ([`Scope::cancel`]): `Error::Task` with `TaskError::Cancelled`.
///
/// The future is the scope: the code that awaits it or drops it waits for the children. Polled
/// and then moved out of the task that polled it (returned as its output, sent elsewhere), it
/// takes its children with it, and that task can end while they run; whoever holds it then
/// waits for them. `scope!` awaits in place, so its scope never moves.
///
/// ```
/// use klaw::{scope::{ScopeOptions, scope_with}};
/// # klaw::runtime::block_on(async {
/// let answer = scope_with(ScopeOptions::new(), |s| {
///     Box::pin(async move { Ok(s.spawn_local(async { 42 }).await?) })
/// })
/// .await;
/// assert_eq!(answer.unwrap(), 42);
/// # });
/// ```
pub async fn scope_with<'env, T, B>(options: ScopeOptions, body: B) -> Result<T, Error>
where
    T: Send,
    B: for<'s> FnOnce(&'s Scope<'env>) -> ScopeBody<'s, T>,
{
    match drive(options, body).await {
        Ok(output) => Ok(output),
        Err(Ended::Body(error)) => Err(Error::from_body(error)),
        Err(Ended::Failed(error)) => Err(error),
    }
}

/// Runs a scope whose body names its own error type `E` (what `scope!(|s| -> R { .. })`
/// expands to): the scope returns `Result<T, E>`, the body's error as it was, and klaw's own
/// errors converted with `E: From<klaw::Error>`.
///
/// ```
/// use klaw::scope::{ScopeOptions, scope_with_error};
/// #[derive(Debug, thiserror::Error)]
/// enum AppError {
///     #[error("bad input: {0}")]
///     BadInput(String),
///     #[error(transparent)]
///     Klaw(#[from] klaw::Error),
/// }
/// let result: Result<(), AppError> = klaw::runtime::block_on(scope_with_error(ScopeOptions::new(), |_s| {
///     Box::pin(async { Err(AppError::BadInput("x".into())) })
/// }));
/// assert!(matches!(result, Err(AppError::BadInput(_))));
/// ```
pub async fn scope_with_error<'env, T, E, B>(options: ScopeOptions, body: B) -> Result<T, E>
where
    T: Send,
    E: ScopeBodyError,
    B: for<'s> FnOnce(&'s Scope<'env>) -> ScopeBody<'s, T, E>,
{
    match drive(options, body).await {
        Ok(output) => Ok(output),
        Err(Ended::Body(error)) => Err(error),
        Err(Ended::Failed(error)) => Err(E::from(error)),
    }
}

/// How a scope that did not give its value ended: the body's own error alone, or klaw's
/// error (a child, the deadline, several failures).
enum Ended<E> {
    Body(E),
    Failed(Error),
}

/// Whether a body's error is, or wraps (through `source()`), klaw's error about task `id`. A
/// `BoxError` or a `klaw::Error` is looked into; an error of a type of the body's own (an
/// `anyhow::Error`, an enum) cannot be without taking it, and counts as naming every task if
/// `own_type_names_all`, since `?` on a child's handle is how a body returns a failure. (A box
/// that hides its cause, as anyhow's or an `#[error(transparent)]` wrapper's does, lists the
/// failure a second time: never lost, at worst said twice.)
pub(crate) fn body_names<E: 'static>(error: &E, id: TaskId, own_type_names_all: bool) -> bool {
    let error: &dyn Any = error;
    if let Some(error) = error.downcast_ref::<BoxError>() {
        Error::names_task(&**error, id)
    } else if let Some(error) = error.downcast_ref::<Error>() {
        Error::names_task(error, id)
    } else {
        own_type_names_all
    }
}

/// Where a failure the body took was, in the list `result` builds.
struct TakenAt {
    at: usize,
    child: TaskId,
    /// A supervisor's: no stand-in (`None` in the list), and the body's error moves here only if
    /// it is seen to carry the failure; an error of the body's own type, which cannot be looked
    /// into, does not move ahead of failures that came before it.
    mark: bool,
}

/// The failures to list: without the stand-ins of failures the body's error carries (see
/// [`TakenAt`]), that error moved up to the first such place, and without a supervisor's marks
/// (its body owns what it took and did not pass on).
fn passed_on_in_place<E: Into<BoxError> + 'static>(
    mut failures: Vec<Option<Ended<E>>>,
    taken: &[TakenAt],
) -> Vec<Ended<E>> {
    let body = failures.iter().position(|failure| matches!(failure, Some(Ended::Body(_))));
    if let Some(body) = body {
        let carries = |taken: &TakenAt| match &failures[body] {
            Some(Ended::Body(error)) => body_names(error, taken.child, !taken.mark),
            _ => false,
        };
        let passed_on: Vec<usize> =
            taken.iter().filter(|taken| carries(taken)).map(|taken| taken.at).collect();
        for &at in &passed_on {
            failures[at] = None;
        }
        if let Some(&first) = passed_on.iter().min().filter(|&&first| first < body) {
            failures[first] = failures[body].take();
        }
    }
    failures.into_iter().flatten().collect()
}

impl<E: Into<BoxError> + 'static> Ended<E> {
    fn into_error(self) -> Error {
        match self {
            Self::Body(error) => Error::from_body(error.into()),
            Self::Failed(error) => error,
        }
    }
}

async fn drive<'env, T, E, B>(options: ScopeOptions, body: B) -> Result<T, Ended<E>>
where
    T: Send,
    E: Into<BoxError> + 'static,
    B: for<'s> FnOnce(&'s Scope<'env>) -> ScopeBody<'s, T, E>,
{
    let start = time::now();
    let scope = Scope::new(&options);
    let deadline = options.effective_deadline(start);
    if let Some(deadline) = deadline {
        scope.shared.region.set_deadline(deadline);
    }
    let body = body(&scope);
    Drive {
        adopter: Adopter::with(scope.shared.descendants.clone()),
        scope: &scope,
        body: Some(body),
        output: None,
        body_error: None,
        body_panic: None,
        locals: FuturesUnordered::new(),
        timer: deadline.map(time::sleep_until),
        allowed: deadline.map(|deadline| deadline.saturating_duration_since(start)),
        listening: false,
        finished: false,
    }
    .await
}

struct Drive<'s, 'env, T, E: Into<BoxError> + 'static> {
    scope: &'s Scope<'env>,
    body: Option<ScopeBody<'s, T, E>>,
    output: Option<T>,
    body_error: Option<E>,
    /// The body panicked: the panic goes on once every child has ended (their shielded
    /// cleanups too, a local child's included), as trio's and Kotlin's scopes wait for their
    /// children before an exception from their body goes on, or when the scope is dropped
    /// meanwhile. Until then the scope is cancelled.
    body_panic: Option<Box<dyn Any + Send>>,
    locals: FuturesUnordered<LocalChild<'env>>,
    timer: Option<Sleep>,
    allowed: Option<Duration>,
    /// Makes scopes dropped in the body hand their children to this scope.
    adopter: Adopter,
    /// Whether the body's region hears the regions and task around it yet.
    listening: bool,
    finished: bool,
}

// Nothing in `Drive` is pinned in place: the body and the local children are boxed.
impl<T, E: Into<BoxError> + 'static> Unpin for Drive<'_, '_, T, E> {}

impl<T, E: Into<BoxError> + 'static> Drive<'_, '_, T, E> {
    fn poll_body(&mut self, cx: &mut Context<'_>) {
        let shared = &self.scope.shared;
        let Some(body) = self.body.as_mut() else { return };
        if shared.region.must_stop() {
            self.drop_body(); // cancelled, and no shield holds it open
            return;
        }
        let adopter = &self.adopter;
        let poll = move || {
            frames::within(FrameKind::Region(shared.region.clone()), || {
                adopter.adopting(|| body.as_mut().poll(cx))
            })
        };
        // Cancelled, but a shield in the body holds it open: only the shield runs on.
        let polled = guard::caught(|| coop::polling_held(shared.region.stopping(), poll));
        // A claim a nested scope made on this scope's region matters only to a region's run.
        shared.region.take_claim();
        let polled = match polled {
            Ok(polled) => polled,
            Err(panic) => {
                self.body_panicked(panic);
                self.drop_body();
                return;
            }
        };
        match polled {
            Poll::Ready(Ok(output)) => {
                self.drop_body();
                // A completion after the scope was cancelled does not win: the scope reports
                // the cancellation, as a task handle would.
                if shared.region.own_reason().is_none() {
                    self.output = Some(output);
                }
            }
            Poll::Ready(Err(error)) => {
                self.drop_body();
                self.body_error = Some(error);
                shared.cancel_all(CancelReason::ParentCancelled, Some(Failure::Body));
            }
            Poll::Pending if shared.region.must_stop() => self.drop_body(), // a shield ended
            Poll::Pending => {}
        }
    }

    /// Every other child has ended: the background children are stopped, and waited for.
    fn background_ended(&self, cx: &mut Context<'_>) -> bool {
        let background = &self.scope.shared.background;
        if background.is_empty() {
            return true;
        }
        self.scope.shared.stop_background();
        background.poll_empty(cx).is_ready()
    }

    /// Drops the body; what scopes inside it leave running becomes this scope's to wait for. A
    /// panic in its destructor is the body's, as one in its poll is.
    fn drop_body(&mut self) {
        let (body, adopter) = (&mut self.body, &self.adopter);
        if let Err(panic) = guard::caught(|| adopter.adopting(|| *body = None)) {
            self.body_panicked(panic);
        }
    }

    /// The body panicked (in a poll, or as it was dropped). Unwound out of the scope, the panic
    /// would drop the local children mid-way, a shielded cleanup's included: the scope is
    /// cancelled, and the panic goes on once every child has ended. A second panic of the same
    /// body is dropped (the first goes on).
    fn body_panicked(&mut self, panic: Box<dyn Any + Send>) {
        if self.body_panic.is_some() {
            guard::drop_payload(panic);
            return;
        }
        self.body_panic = Some(panic);
        self.scope.shared.cancel_all(CancelReason::ParentCancelled, None);
    }

    /// A region, scope or timeout inside (in the body, or in a local child) found this scope's
    /// deadline passed (before its own): the scope fails with `Elapsed`, as if its timer had
    /// fired.
    fn take_expiry(&mut self) {
        let shared = &self.scope.shared;
        if shared.region.take_expired() {
            self.timer = None;
            shared.cancel_all(CancelReason::Deadline, Some(Failure::Deadline));
        }
    }

    fn poll_locals(&mut self, cx: &mut Context<'_>) {
        self.locals.extend(self.scope.take_locals());
        if self.locals.is_empty() {
            return;
        }
        // Marked with this task, so a shield in a child also holds what encloses this scope
        // here, and a deadline there (the scope's own too) that passed first catches before a
        // child's own.
        let mark = frames::LocalChildrenMark {
            task: current::current_ref(),
            scope: self.scope.shared.region.clone(),
            task_deadline: current::task_deadline(),
            task_drops: current::task_is_polled(),
            parent_region: crate::cancel::parent_region::get(),
        };
        let locals = &mut self.locals;
        frames::within(FrameKind::LocalChildren(mark), || {
            while let Poll::Ready(Some(())) = locals.poll_next_unpin(cx) {}
        });
    }

    fn result(&mut self) -> Result<T, Ended<E>> {
        let shared = &self.scope.shared;
        let mut failures = Vec::new();
        // Taken at the first failure the body took: a scope where none did locks once here.
        let mut taken = None;
        // Where the failures the body took are in `failures`.
        let mut stand_ins = Vec::new();
        for failure in shared.take_failures() {
            match failure {
                Failure::Child(child) => match child.take_failure() {
                    Some(error) => failures.push(Some(Ended::Failed(error))),
                    None => {
                        let id = child.header().id();
                        // Taken by the body: a stand-in, or (a supervisor keeps none) a mark.
                        let taken = taken.get_or_insert_with(|| shared.take_taken());
                        let stand_in = take_stand_in(taken, id);
                        let mark = stand_in.is_none();
                        stand_ins.push(TakenAt { at: failures.len(), child: id, mark });
                        failures.push(stand_in.map(Ended::Failed));
                    }
                },
                Failure::Raced(error) => failures.push(Some(Ended::Failed(error))),
                Failure::Body => {
                    failures.extend(self.body_error.take().map(|e| Some(Ended::Body(e))))
                }
                Failure::Deadline => failures.push(Some(Ended::Failed(Error::Elapsed(
                    Elapsed::new(self.allowed.unwrap_or_default()),
                )))),
            }
        }
        // A failure the body took from a child's handle (in a shield) and returned, wrapped or
        // not, is listed once, as the body's error, in the place the child's failure came; one it
        // dropped, or replaced with an error that does not carry it, is listed as its stand-in.
        // Only the body's error passes a failure on: a later failure of the same child (its
        // cleanup's, say) is a failure of its own.
        let mut failures = passed_on_in_place(failures, &stand_ins);
        if failures.len() > 1 {
            // A sibling's `Cancelled(SiblingFailed)` that the body passed on (awaited in a
            // shield and returned with `?`) echoes the failure that cancelled it, which is listed
            // already: it is not a failure of its own, as neither Kotlin nor trio lists one. So
            // does a child's `Cancelled(Deadline)` beside the scope's own `Elapsed`: the deadline
            // is listed once (a scope's child is cancelled for a deadline only by one around
            // it; its own timeout makes it `TimedOut`). Any other cancellation the body returns
            // (a child it cancelled with a reason of its own, say) is its report, and stays.
            let errors: Vec<Error> = failures.drain(..).map(Ended::into_error).collect();
            let elapsed = errors.iter().any(|error| matches!(error, Error::Elapsed(_)));
            let is_echo = |error: &Error| match error {
                Error::Task {
                    error: TaskError::Cancelled(CancelReason::SiblingFailed), ..
                } => true,
                Error::Task { error: TaskError::Cancelled(CancelReason::Deadline), .. } => elapsed,
                _ => false,
            };
            let keeps_a_failure = errors.iter().any(|error| !is_echo(error));
            failures.extend(
                errors
                    .into_iter()
                    .filter(|error| !keeps_a_failure || !is_echo(error))
                    .map(Ended::Failed),
            );
        }
        match (failures.len(), self.output.take()) {
            (0, Some(output)) => Ok(output),
            (0, None) => {
                // Cancelled with nothing failing.
                let reason =
                    shared.region.own_reason().cloned().unwrap_or(CancelReason::ParentCancelled);
                Err(Ended::Failed(Error::of_task::<BoxError>(None, TaskError::Cancelled(reason))))
            }
            (1, _) => Err(failures.remove(0)),
            _ => {
                let errors = failures.into_iter().map(Ended::into_error).collect();
                let name = self.scope.name.clone();
                Err(Ended::Failed(Error::Scope(ScopeError::new(name, errors))))
            }
        }
    }
}

impl<T, E: Into<BoxError> + 'static> Future for Drive<'_, '_, T, E> {
    type Output = Result<T, Ended<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        assert!(!this.finished, "a scope was polled after it returned");
        let shared = &this.scope.shared;
        if !this.listening {
            this.listening = true;
            shared.region.listen_to_enclosing();
        }
        shared.region.register(cx.waker());
        if let Some(timer) = this.timer.as_mut() {
            if timer.poll_deadline(cx).is_ready() {
                // An enclosing region or scope whose deadline passed first catches it.
                frames::expire_enclosing(timer.deadline());
                this.timer = None;
                shared.cancel_all(CancelReason::Deadline, Some(Failure::Deadline));
            } else if shared.region.own_reason().is_some() {
                // Cancelled already: the deadline can change nothing now (a late one adds no
                // failure), so it goes, and a paused clock does not jump to it while the scope
                // waits for its children.
                this.timer = None;
            }
        }
        if shared.region.is_cancelled()
            && shared.region.own_reason().is_none()
            && frames::enclosing_held()
        {
            // What encloses the scope has decided to stop, and a shield holds it open for now
            // (in a local child, or beside the scope): what the scope runs outside a shield
            // stops now, as when the scope is dropped. Its children are cancelled and its body
            // dropped, unless a shield in it holds the scope's own cancellation.
            shared.cancel_all(CancelReason::ParentCancelled, None);
        }
        this.poll_body(cx);
        this.take_expiry();
        // What encloses the scope drops it at the end of this poll (its cancellation, maybe the
        // body's own doing, holds no shield): the local children do not run on meanwhile. They
        // would not see it (each is a task of its own, not cancelled until the scope is
        // dropped), and a loop of checkpoints would run until the task's budget was spent.
        if !(shared.region.is_cancelled() && frames::enclosing_must_stop()) {
            this.poll_locals(cx);
            this.take_expiry();
        }
        // Every child, and everything adopted from scopes the body dropped, has ended.
        let foreground_ended = this.body.is_none()
            && this.locals.is_empty()
            && shared.descendants.poll_empty(cx).is_ready();
        if foreground_ended && this.timer.take().is_some() {
            // The scope's work is done in time: what is left, its background children, it stops
            // itself, so a deadline that passes while they stop is not the scope's failure, nor
            // one a background child finds passed (`frames::expire_enclosing`).
            shared.region.clear_deadline();
        }
        if foreground_ended && this.background_ended(cx) {
            if let Some(panic) = this.body_panic.take() {
                // Every child has ended: the body's panic goes on (the scope is dropped as it
                // unwinds, and hands what failed meanwhile to the frame around it).
                std::panic::resume_unwind(panic);
            }
            let failed = shared.has_failures();
            if (shared.region.own_reason().is_some() || failed) && frames::enclosing_stopping() {
                // Cancelled, or failed (a supervisor scope's failures do not cancel it), while
                // what encloses the scope stops too: the outermost catches it, so the scope does
                // not return; it is dropped, and hands what failed to the frame it is dropped
                // in. Returned, its result would be dropped by that frame, failures and all.
                return Poll::Pending;
            }
            if failed {
                // Nothing around it stops now: a cancel that lands before what encloses it
                // completes comes after this return, and must not drop the failures.
                frames::claim_completion();
            }
            this.finished = true;
            // Ended: a token of the scope kept by someone hears nothing enclosing it from now
            // on, as a region's does (`RegionState::leave_enclosing`).
            shared.region.leave_enclosing(false);
            return Poll::Ready(this.result());
        }
        Poll::Pending
    }
}

impl<T, E: Into<BoxError> + 'static> Drop for Drive<'_, '_, T, E> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped mid-way (what encloses it was cancelled, or a `select!` took another arm):
        // cancel every child, drop the body and the local children here, and hand what still
        // runs to the enclosing frame, which ends only after it has (or, outside any klaw task,
        // wait for it right here).
        let shared = &self.scope.shared;
        shared.mark_dropped();
        shared.cancel_all(CancelReason::ParentCancelled, None);
        // A scope that is dropped has no result to return its failures in: they go to the frame
        // it is dropped in (a scope reports them in its result, a task to its scope), now and
        // as they come; outside any frame they are logged, now or when its last child ends.
        let frame = current::frame_descendants();
        let body_error = self.body_error.take();
        // Decided before the body's error is boxed, as `result` decides it.
        let passed_on: Vec<TaskId> = match &body_error {
            Some(error) => {
                shared.taken_ids().into_iter().filter(|&id| body_names(error, id, true)).collect()
            }
            None => Vec::new(),
        };
        let body_error = body_error.map(|error| Error::from_body(error.into()));
        let in_a_frame = frame.is_some();
        shared.abandon(frame, body_error, &passed_on);
        // Dropped while it waited for its children after its body panicked (what encloses it
        // stopped meanwhile: a region's deadline, a cancel of its task): the panic goes on from
        // here, once the children are handed over, so nothing around the scope takes it for a
        // cancellation and runs on.
        let body_panic = self.body_panic.take();
        let (body, locals, scope, adopter) =
            (&mut self.body, &mut self.locals, self.scope, &self.adopter);
        // A destructor in the body that panics still leaves the children handed over.
        guard::drop_then(
            || {
                adopter.adopting(|| {
                    *body = None;
                    locals.clear();
                    drop(scope.take_locals());
                });
            },
            || {
                current::hand_over(&shared.descendants);
                current::hand_over(&shared.background);
                if !in_a_frame {
                    // Outside any frame the hand-overs above waited for every child: what
                    // failed since the scope was abandoned (in scopes its body dropped, which
                    // hand their failures to this one) is all in its list now, and nothing
                    // above takes it.
                    shared.log_abandoned();
                }
            },
        );
        if let Some(panic) = body_panic {
            if std::thread::panicking() {
                guard::drop_payload(panic); // a second panic would abort the process
            } else {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

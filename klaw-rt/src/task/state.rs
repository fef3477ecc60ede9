//! A task's state word, read through names: how it ended ([`Kind`]) and who owns what
//! ([`Snapshot`]'s flags). The word itself lives in the task's header (`core.rs`), which moves
//! it only by compare-and-swap, so exactly one terminal kind is ever decided.
#![forbid(unsafe_code)]

/// How a task ended, or that it has not yet: the low three bits of the state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Kind {
    Pending = 0,
    Success = 1,
    /// The body of a fallible task returned `Err`.
    Error = 2,
    Cancelled = 3,
    Panicked = 4,
    /// The task's own timeout passed.
    TimedOut = 5,
}

impl Kind {
    /// Every terminal kind, in the order of their counters.
    pub(crate) const TERMINAL: [Kind; 5] =
        [Kind::Success, Kind::Error, Kind::Cancelled, Kind::Panicked, Kind::TimedOut];

    const MASK: usize = 0b111;

    fn from_bits(bits: usize) -> Kind {
        match bits & Self::MASK {
            0 => Kind::Pending,
            1 => Kind::Success,
            2 => Kind::Error,
            3 => Kind::Cancelled,
            4 => Kind::Panicked,
            5 => Kind::TimedOut,
            other => unreachable!("invalid task kind {other}"),
        }
    }

    /// A failure: an `Err`, a panic, the task's own timeout. (A cancellation is not one.)
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Kind::Error | Kind::Panicked | Kind::TimedOut)
    }

    /// Stopped from outside before it finished: cancelled, or timed out.
    pub(crate) fn is_cancelled(self) -> bool {
        matches!(self, Kind::Cancelled | Kind::TimedOut)
    }

    /// Position among [`TERMINAL`](Self::TERMINAL), for per-kind counters.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One read of a task's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    /// The body has been (or is about to be) polled; the runner's waker slot is written and
    /// frozen.
    pub(crate) const STARTED: usize = 1 << 3;
    /// The body is gone and the output slot is written: it now belongs to the joiner.
    pub(crate) const DONE: usize = 1 << 4;
    /// The join waker slot holds a waker that the completer may wake (shared, read-only).
    pub(crate) const JOIN_WAKER: usize = 1 << 5;
    /// Set by whoever takes the output: the joiner, or the scope collecting an unclaimed
    /// failure.
    pub(crate) const CLAIMED: usize = 1 << 6;
    /// The joiner (the task's handle) is gone, so nobody can take a value any more: an output
    /// that goes with the handle ([`output_goes_with_handle`](Self::output_goes_with_handle)) is
    /// dropped by whichever of the joiner's drop and the publish comes second.
    pub(crate) const DETACHED: usize = 1 << 7;
    /// A cancel hook was registered (it may have been withdrawn or run since): a task that ends
    /// otherwise than cancelled drops its hooks when it ends, and one with none takes no lock.
    pub(crate) const HOOKS: usize = 1 << 8;
    /// Set with `DONE`: no scope collects this task's failure (it has none, or its parent takes
    /// the output through the handle), so an output its handle never takes goes with the handle.
    pub(crate) const UNCOLLECTED: usize = 1 << 9;
    /// Set before the task is scheduled, and never cleared: the task is a child of a scope under
    /// a shield (`frames::scope_under_shield`), or a blocking task awaited there. A runtime's
    /// shutdown leaves it to the cancel of the task above the shield, which the shield holds,
    /// rather than cancelling it directly, until its last resort (see `ShutdownPhase`).
    pub(crate) const UNDER_SHIELD: usize = 1 << 10;
    /// The bits from here up count the shields active in the task's body (`klaw::cancel::shield`):
    /// while any is, a decided cancellation or timeout waits for them before the body is
    /// dropped.
    pub(crate) const SHIELD_UNIT: usize = 1 << 11;
    const SHIELD_MASK: usize = !(Self::SHIELD_UNIT - 1);

    pub(crate) const NEW: Snapshot = Snapshot(0);

    pub(crate) fn from_bits(bits: usize) -> Self {
        Snapshot(bits)
    }

    pub(crate) fn bits(self) -> usize {
        self.0
    }

    pub(crate) fn kind(self) -> Kind {
        Kind::from_bits(self.0)
    }

    pub(crate) fn is_pending(self) -> bool {
        self.kind() == Kind::Pending
    }

    /// The same word, with `kind` decided (the kind bits must be `Pending`).
    pub(crate) fn decided(self, kind: Kind) -> Self {
        debug_assert!(self.is_pending() && kind != Kind::Pending);
        Snapshot(self.0 | kind as usize)
    }

    pub(crate) fn has(self, flag: usize) -> bool {
        self.0 & flag != 0
    }

    pub(crate) fn with(self, flag: usize) -> Self {
        Snapshot(self.0 | flag)
    }

    pub(crate) fn without(self, flag: usize) -> Self {
        Snapshot(self.0 & !flag)
    }

    /// The published output is for the handle alone, so it goes with the handle if the handle
    /// never takes it: a value (a scope collects failures only), or a failure no scope collects
    /// (`UNCOLLECTED`).
    pub(crate) fn output_goes_with_handle(self) -> bool {
        self.kind() == Kind::Success || self.has(Self::UNCOLLECTED)
    }

    /// How many shields in the body are active.
    pub(crate) fn shields(self) -> usize {
        (self.0 & Self::SHIELD_MASK) / Self::SHIELD_UNIT
    }
}

//! The tokio runtime a klaw runtime may own (feature `tokio`, `Builder::tokio(true)`), so that
//! tokio-based crates (tokio's own `net` and `time`, hyper, reqwest, axum, sqlx...) find a
//! reactor and a timer from inside klaw tasks.
//!
//! klaw never runs tasks on it: it is a multi-thread tokio runtime with one worker thread
//! (`{name}-tokio`), whose only job is to drive tokio's I/O and time drivers (and whatever a
//! library hands to `tokio::spawn`). Its context is entered **once per thread**, for the
//! thread's whole life: by each klaw worker's and blocking-pool thread's main function, and by
//! `Runtime::block_on` (and shutdown, which polls tasks too) for the length of the call. Never
//! per poll: entering is a thread-local write that costs nothing to keep.
//!
//! Without the feature both types are empty and `enter` does nothing, so the threads' code is
//! the same with and without it.
#![forbid(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;

#[cfg(feature = "tokio")]
use crate::runtime::BuildError;

/// What a thread enters: the handle of the runtime's tokio runtime, if it has one. Cheap to
/// clone (an `Arc`); it does not keep the tokio runtime running after the klaw runtime shut it
/// down.
#[derive(Clone, Default)]
pub(crate) struct TokioContext {
    #[cfg(feature = "tokio")]
    handle: Option<tokio::runtime::Handle>,
}

impl TokioContext {
    /// Makes the tokio runtime current on this thread until the guard is dropped. Guards must be
    /// dropped in the reverse order of entering (tokio checks it), which a guard held by a
    /// thread's main function or for one `block_on` call always is.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            #[cfg(feature = "tokio")]
            _guard: self.handle.as_ref().map(tokio::runtime::Handle::enter),
            _context: PhantomData,
        }
    }

    /// True if the runtime owns a tokio runtime and tokio's thread-local context is destroyed
    /// on this thread (its thread-locals are being torn down), so that [`enter`](Self::enter)
    /// would panic.
    pub(crate) fn thread_local_destroyed(&self) -> bool {
        #[cfg(feature = "tokio")]
        let destroyed = self.handle.is_some()
            && tokio::runtime::Handle::try_current()
                .is_err_and(|error| error.is_thread_local_destroyed());
        #[cfg(not(feature = "tokio"))]
        let destroyed = false;
        destroyed
    }

    /// True if the runtime owns a tokio runtime.
    pub(crate) fn is_enabled(&self) -> bool {
        #[cfg(feature = "tokio")]
        let enabled = self.handle.is_some();
        #[cfg(not(feature = "tokio"))]
        let enabled = false;
        enabled
    }
}

impl fmt::Debug for TokioContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioContext").field("enabled", &self.is_enabled()).finish()
    }
}

/// The tokio context, current on this thread while it lives.
pub(crate) struct Entered<'a> {
    #[cfg(feature = "tokio")]
    _guard: Option<tokio::runtime::EnterGuard<'a>>,
    _context: PhantomData<&'a TokioContext>,
}

/// Owns the tokio runtime, if there is one: started with the klaw runtime, shut down with it.
#[derive(Default)]
pub(crate) struct OwnedTokio {
    #[cfg(feature = "tokio")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl OwnedTokio {
    /// Starts a tokio runtime for its drivers: one worker thread named `{thread_name}-tokio`,
    /// I/O and time enabled. Its blocking pool (what `tokio::fs` and name lookups use) keeps
    /// tokio's defaults.
    #[cfg(feature = "tokio")]
    pub(crate) fn start(thread_name: &str) -> Result<(Self, TokioContext), BuildError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{thread_name}-tokio"))
            .enable_all()
            .build()
            .map_err(BuildError::Tokio)?;
        let context = TokioContext { handle: Some(runtime.handle().clone()) };
        Ok((OwnedTokio { runtime: Some(runtime) }, context))
    }

    /// Shuts the tokio runtime down without waiting: its worker drops what `tokio::spawn` left
    /// there and exits on its own. Waiting could block forever (a blocking job that never
    /// returns), and tokio panics if a runtime is dropped the blocking way inside an async
    /// context, where a klaw runtime may be dropped. Call it after klaw's own tasks are gone, so
    /// none of them meets a tokio resource whose driver has stopped.
    pub(crate) fn shutdown(&mut self) {
        #[cfg(feature = "tokio")]
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for OwnedTokio {
    fn drop(&mut self) {
        self.shutdown();
    }
}

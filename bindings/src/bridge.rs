//! The one place where script threads wait on async engine work.
//!
//! Scripts run on plain threads (never a runtime worker) and native functions call
//! [`Bridge::block_on`]. Calling `Handle::block_on` from inside the runtime panics and tokio cannot
//! tell the cases apart, so script threads are marked with a thread-local flag and any other caller
//! gets a script error instead of a panic.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rhai::{EvalAltResult, Position};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    static SCRIPT_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The stop signal of the script-defined workload running on this thread, if any.
    static THREAD_STOP: std::cell::RefCell<Option<CancellationToken>> =
        const { std::cell::RefCell::new(None) };
}

/// Ties this script thread to a workload's stop signal: once it fires, the closure is stopped at
/// its next operation and waits in progress return early.
pub fn set_thread_stop(token: Option<CancellationToken>) {
    THREAD_STOP.with(|t| *t.borrow_mut() = token);
}

/// Whether this thread's workload was told to stop.
pub fn thread_stopped() -> bool {
    THREAD_STOP.with(|t| {
        t.borrow()
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    })
}

fn thread_stop_token() -> CancellationToken {
    THREAD_STOP.with(|t| t.borrow().clone().unwrap_or_default())
}

/// Marks the current thread as a script thread for the rest of its life.
pub fn mark_script_thread() {
    SCRIPT_THREAD.with(|f| f.set(true));
}

/// Whether the current thread was marked with [`mark_script_thread`].
pub fn is_script_thread() -> bool {
    SCRIPT_THREAD.with(Cell::get)
}

/// Shared between the host, every bound handle and every script thread: the runtime handle, the
/// run's cancellation (Ctrl-C) and the interruption flag checked by `Engine::on_progress`.
#[derive(Clone)]
pub struct Bridge {
    handle: Handle,
    cancel: CancellationToken,
    interrupted: Arc<AtomicBool>,
    /// Script threads now inside `block_on*` (async work that answers Ctrl-C by itself).
    awaiting: Arc<AtomicUsize>,
}

/// Counts a thread as awaiting async work while alive.
struct Awaiting<'a>(&'a AtomicUsize);

impl<'a> Awaiting<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Self(n)
    }
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn interrupted_error() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        "interrupted".into(),
        Position::NONE,
    ))
}

impl Bridge {
    /// A bridge over `handle`.
    pub fn new(handle: Handle) -> Self {
        Self {
            handle,
            cancel: CancellationToken::new(),
            interrupted: Arc::new(AtomicBool::new(false)),
            awaiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The runtime handle (to spawn background tasks).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Cancelled on Ctrl-C: runs tear down and return an interrupted report.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Ctrl-C: stop scripts at their next operation and cancel running work.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// Whether Ctrl-C was received.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Whether some script thread is inside `block_on*` now. When none is, a script that does
    /// not stop after Ctrl-C is in native work that cannot see the flag (generating keys, a
    /// large topology): the host stops waiting for it.
    pub fn is_awaiting(&self) -> bool {
        self.awaiting.load(Ordering::SeqCst) > 0
    }

    /// The flag `Engine::on_progress` polls.
    pub fn interrupted_flag(&self) -> Arc<AtomicBool> {
        self.interrupted.clone()
    }

    /// Runs `fut` to completion from a script thread. Use for work that handles cancellation
    /// itself (a scenario run tears down and reports when the token fires).
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, Box<EvalAltResult>> {
        self.check_thread()?;
        // counted before the flag is read: the host, seeing no thread awaiting after Ctrl-C,
        // may exit, and then no new async work (a deploy) may start
        let _awaiting = Awaiting::enter(&self.awaiting);
        if self.is_interrupted() {
            return Err(interrupted_error());
        }
        Ok(self.handle.block_on(fut))
    }

    /// Runs `fut` from a script thread, abandoning it when Ctrl-C arrives or when the workload
    /// running on this thread is told to stop.
    pub fn block_on_cancellable<F: Future>(&self, fut: F) -> Result<F::Output, Box<EvalAltResult>> {
        self.check_thread()?;
        let _awaiting = Awaiting::enter(&self.awaiting);
        if self.is_interrupted() {
            return Err(interrupted_error());
        }
        let cancel = self.cancel.clone();
        let stop = thread_stop_token();
        self.handle.block_on(async move {
            tokio::select! {
                out = fut => Ok(out),
                () = cancel.cancelled() => Err(Box::new(EvalAltResult::ErrorTerminated(
                    "interrupted".into(),
                    Position::NONE,
                ))),
                () = stop.cancelled() => Err(Box::new(EvalAltResult::ErrorTerminated(
                    "stopped".into(),
                    Position::NONE,
                ))),
            }
        })
    }

    fn check_thread(&self) -> Result<(), Box<EvalAltResult>> {
        if is_script_thread() && Handle::try_current().is_err() {
            Ok(())
        } else {
            Err(Box::new(EvalAltResult::ErrorRuntime(
                "engine call made outside a script thread (this is a bug of the host: scripts must \
                 run on a dedicated thread, not inside the async runtime)"
                    .into(),
                Position::NONE,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_outside_a_script_thread_is_an_error_not_a_panic() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let bridge = Bridge::new(rt.handle().clone());
        assert!(bridge.block_on(async { 1 }).is_err());
        let b2 = bridge.clone();
        let inner = rt.block_on(async move {
            // inside the runtime, even a marked thread must not block
            mark_script_thread();
            b2.block_on(async { 1 }).is_err()
        });
        assert!(inner);
        let b3 = bridge.clone();
        let ok = std::thread::spawn(move || {
            mark_script_thread();
            b3.block_on(async { 7 }).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(ok, 7);
    }
}

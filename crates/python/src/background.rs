//! Long calls (training, the NTK, the reference solver) run on a worker thread while the calling
//! thread — which holds the Python interpreter only between waits — watches them: it releases the
//! GIL while it waits, so other Python threads run; every [`POLL`] it runs Python's signal
//! handlers, so Ctrl-C raises `KeyboardInterrupt` in the caller instead of being held until the
//! call returns; and it reports the worker's progress to a Python callable (a Jupyter-friendly bar
//! is built in Python, see `mspinn/_progress.py`). The worker never touches Python objects.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use indicatif::ProgressBar;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the caller checks for Ctrl-C and reports progress.
const POLL: Duration = Duration::from_millis(100);

/// What the worker sees of its watcher.
pub struct Watch {
    /// A hidden bar the work advances (the trainer drives it as it drives the CLI's bars); the
    /// watcher reads its position, length and message.
    pub bar: ProgressBar,
    /// Set when the caller was interrupted: the work should stop at its next safe point (the
    /// trainer's [`mspinn_train::TrainOptions::interrupt`]). `'static` because the trainer's
    /// flag is (it is meant for a signal handler's static); one flag of one byte is leaked per
    /// call, so a stale Ctrl-C of an earlier call can never stop a later one.
    pub stop: &'static AtomicBool,
}

/// Runs `work` on a worker thread and waits for it as described in the module docs. After
/// Ctrl-C the worker is asked to stop and waited for (the caller's data stay consistent), then
/// the `KeyboardInterrupt` is raised; an exception in `progress` stops the work the same way. A
/// panic in the work becomes a `RuntimeError`, never an abort of the interpreter.
pub fn run_watched<T, F>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    work: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Watch) -> T + Send,
{
    let watch = Watch {
        bar: ProgressBar::hidden(),
        stop: Box::leak(Box::new(AtomicBool::new(false))),
    };
    let slot: (Mutex<Option<std::thread::Result<T>>>, Condvar) = (Mutex::new(None), Condvar::new());
    let mut raised: Option<PyErr> = None;
    let outcome = std::thread::scope(|s| {
        let (w, sl) = (&watch, &slot);
        s.spawn(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| work(w)));
            *sl.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            sl.1.notify_all();
        });
        let mut shown = None;
        loop {
            let done = py.detach(|| {
                let guard = sl.0.lock().unwrap_or_else(PoisonError::into_inner);
                let (mut guard, _) =
                    sl.1.wait_timeout_while(guard, POLL, |r| r.is_none())
                        .unwrap_or_else(PoisonError::into_inner);
                guard.take()
            });
            if raised.is_none() {
                let status = py
                    .check_signals()
                    .and_then(|()| report(progress, &watch.bar, &mut shown));
                if let Err(e) = status {
                    watch.stop.store(true, Ordering::SeqCst);
                    raised = Some(e);
                }
            }
            if let Some(r) = done {
                return r;
            }
        }
    });
    if let Some(e) = raised {
        return Err(e);
    }
    outcome.map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        PyRuntimeError::new_err(format!(
            "mspinn: internal error (a panic in the computation: {msg}); please report it"
        ))
    })
}

/// Calls `progress(done, total, message)` when the bar moved since the last call.
fn report(
    progress: Option<&Bound<'_, PyAny>>,
    bar: &ProgressBar,
    shown: &mut Option<(u64, u64)>,
) -> PyResult<()> {
    let Some(cb) = progress else {
        return Ok(());
    };
    let now = (bar.position(), bar.length().unwrap_or(0));
    if *shown == Some(now) {
        return Ok(());
    }
    *shown = Some(now);
    cb.call1((now.0, now.1, bar.message()))?;
    Ok(())
}

//! Long calls: the Rust work runs on a worker thread while the calling thread, with the GIL
//! released, waits for it in slices of [`POLL`]; between slices it takes the GIL and lets Python
//! handle pending signals, so Ctrl-C raises `KeyboardInterrupt` within about 50 ms and other
//! Python threads run meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;

/// How often the waiting thread checks for signals.
pub const POLL: Duration = Duration::from_millis(50);

/// Runs `work` on a worker thread with the GIL released and returns its result. When Python
/// signals an exception (Ctrl-C: `KeyboardInterrupt`), `cancel`, if given, is set, so that work
/// which polls it stops early, and the exception is raised at once; the worker finishes on its own
/// and its result is dropped. A panic in `work` is a `qc.QcError` (`qc::internal::panic`).
pub fn run_interruptible<T, F>(py: Python<'_>, cancel: Option<Arc<AtomicBool>>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("qc-worker".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(result);
        })
        .map_err(|e| {
            crate::errors::error(
                "qc::internal::thread",
                format!("cannot start a worker thread: {e}"),
                "the system is out of threads or memory",
            )
        })?;
    // `detach` needs a closure it may send to another thread: the receiver goes behind a lock.
    let rx = std::sync::Mutex::new(rx);
    loop {
        let received = py
            .detach(|| rx.lock().map_or(Err(mpsc::RecvTimeoutError::Disconnected), |r| r.recv_timeout(POLL)));
        match received {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                return Err(crate::errors::error(
                    "qc::internal::panic",
                    format!("qc panicked: {what}"),
                    "this is a bug in qc; please report it with the model that caused it",
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::errors::error(
                    "qc::internal::panic",
                    "the worker thread ended without a result",
                    "this is a bug in qc; please report it",
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    if let Some(flag) = &cancel {
                        flag.store(true, Ordering::SeqCst);
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Sleeps `seconds` on a worker thread through [`run_interruptible`], or until cancelled; returns
/// whether it slept the whole time. For the tests of interruption only.
#[pyfunction]
pub fn _sleep_for_test(py: Python<'_>, seconds: f64) -> PyResult<bool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    run_interruptible(py, Some(cancel), move || {
        let end = std::time::Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
        while std::time::Instant::now() < end {
            if flag.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    })
}

//! `LoopSignals`: the OS signals an app loop asked for with `loop.add_signal_handler`, caught on
//! whichever thread the kernel picks and handed to the loop through an eventfd it watches. Python's
//! own way (`signal.set_wakeup_fd`) works on the main thread only, and the app loops have threads
//! of their own.
//!
//! Signals are caught through `signal-hook-registry`, as tokio catches the server's, so a signal
//! both watch (SIGINT, SIGTERM, SIGHUP) reaches both, and the handler installed before (Python's)
//! still runs. When the last loop stops watching a signal its earlier disposition is put back, as
//! asyncio's `remove_signal_handler` does, unless the server watches it too or another handler has
//! replaced ours since.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use libc::c_int;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use signal_hook_registry::SigId;

use crate::event_fd::EventFd;

/// Signals the server's own runtime may be catching through the same registry: their handler stays.
const SERVER_SIGNALS: [c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What a caught signal touches: an atomic and an eventfd's `notify`, both async-signal-safe.
struct Pending {
    /// Bit `n - 1` is set when signal `n` arrived since the loop last took them.
    signals: AtomicU64,
    event_fd: EventFd,
}

impl Pending {
    fn raise(&self, sig: c_int) {
        self.signals.fetch_or(1 << (sig - 1), Ordering::SeqCst);
        self.event_fd.notify();
    }
}

/// One app loop's watched signals and the descriptor that becomes readable when one arrives.
#[pyclass(module = "fasterapi._fasterapi")]
pub struct LoopSignals {
    pending: Arc<Pending>,
    watched: Mutex<HashMap<c_int, SigId>>,
}

#[pymethods]
impl LoopSignals {
    #[new]
    fn new() -> PyResult<Self> {
        let event_fd = EventFd::new()?;
        let pending = Arc::new(Pending { signals: AtomicU64::new(0), event_fd });
        Ok(Self { pending, watched: Mutex::new(HashMap::new()) })
    }

    /// The descriptor to watch with `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.pending.event_fd.fd()
    }

    /// Start catching `sig` for this loop (watching it twice is watching it once).
    fn watch(&self, sig: c_int) -> PyResult<()> {
        check_catchable(sig)?;
        let mut watched = lock(&self.watched);
        if watched.contains_key(&sig) {
            return Ok(());
        }
        let mut dispositions = lock(&DISPOSITIONS);
        let disposition = dispositions.entry(sig).or_default();
        if disposition.watchers == 0 {
            disposition.before = Some(sigaction(sig, None)?);
            if let Some(ours) = disposition.set_aside.take() {
                sigaction(sig, Some(&ours))?;
            }
        }
        let pending = self.pending.clone();
        // SAFETY: the action only sets a bit and writes to an eventfd (`Pending::raise`), both
        // async-signal-safe; it neither allocates, locks nor panics (1 <= sig <= 64, checked).
        let id = unsafe { signal_hook_registry::register(sig, move || pending.raise(sig)) }?;
        if disposition.installed.is_none() {
            disposition.installed = Some(sigaction(sig, None)?.sa_sigaction);
        }
        disposition.watchers += 1;
        watched.insert(sig, id);
        Ok(())
    }

    /// Stop catching `sig` for this loop; false if it was not watched.
    fn unwatch(&self, sig: c_int) -> PyResult<bool> {
        let Some(id) = lock(&self.watched).remove(&sig) else {
            return Ok(false);
        };
        forget(sig, id)?;
        Ok(true)
    }

    /// The signals that arrived since the last call, in ascending order.
    fn take(&self) -> Vec<c_int> {
        self.pending.event_fd.reset();
        let bits = self.pending.signals.swap(0, Ordering::SeqCst);
        (1..=64).filter(|sig| bits & (1 << (sig - 1)) != 0).collect()
    }

    /// Stop catching every signal (the loop is closing).
    fn close(&self) -> PyResult<()> {
        Ok(self.forget_all()?)
    }
}

impl LoopSignals {
    /// Forget every watched signal, even past a failure; the first failure.
    fn forget_all(&self) -> io::Result<()> {
        let watched: Vec<_> = lock(&self.watched).drain().collect();
        let results: Vec<_> = watched.into_iter().map(|(sig, id)| forget(sig, id)).collect();
        results.into_iter().collect()
    }
}

impl Drop for LoopSignals {
    fn drop(&mut self) {
        let _ = self.forget_all();
    }
}

/// Per signal, what the process-wide handler bookkeeping needs.
#[derive(Default)]
struct Disposition {
    /// `LoopSignals` watching it now.
    watchers: usize,
    /// The disposition before the first of them: put back when the last one leaves.
    before: Option<libc::sigaction>,
    /// The registry's handler address, to tell whether it is still the one installed.
    installed: Option<libc::sighandler_t>,
    /// The registry's disposition, set aside while nobody watches; the next watcher reinstalls it.
    set_aside: Option<libc::sigaction>,
}

static DISPOSITIONS: Mutex<BTreeMap<c_int, Disposition>> = Mutex::new(BTreeMap::new());

/// Remove one watcher's action for `sig`; the last one out puts the earlier disposition back.
fn forget(sig: c_int, id: SigId) -> io::Result<()> {
    signal_hook_registry::unregister(id);
    let mut dispositions = lock(&DISPOSITIONS);
    let Some(disposition) = dispositions.get_mut(&sig) else {
        return Ok(());
    };
    disposition.watchers -= 1;
    if disposition.watchers > 0 || SERVER_SIGNALS.contains(&sig) {
        return Ok(());
    }
    let (Some(before), Some(installed)) = (disposition.before, disposition.installed) else {
        return Ok(());
    };
    if sigaction(sig, None)?.sa_sigaction == installed {
        disposition.set_aside = Some(sigaction(sig, Some(&before))?);
    }
    Ok(())
}

/// Install `new` for `sig` (or only read, with `None`); the disposition it replaces.
fn sigaction(sig: c_int, new: Option<&libc::sigaction>) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten by the kernel.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let new = new.map_or(std::ptr::null(), |new| new as *const libc::sigaction);
    // SAFETY: `new` is null or points at a live sigaction; `old` is ours to fill.
    if unsafe { libc::sigaction(sig, new, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

/// asyncio's errors: out of range is a ValueError, a signal that cannot be caught a RuntimeError.
/// The registry refuses (panics on) the faults too (SIGSEGV, SIGILL, SIGFPE): their handlers need
/// tricks an event loop callback cannot play.
fn check_catchable(sig: c_int) -> PyResult<()> {
    if !(1..=libc::SIGRTMAX().min(64)).contains(&sig) {
        return Err(PyValueError::new_err(format!("sig {sig} out of range(1, {})", libc::SIGRTMAX() + 1)));
    }
    if signal_hook_registry::FORBIDDEN.contains(&sig) {
        return Err(PyRuntimeError::new_err(format!("sig {sig} cannot be caught")));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: i32) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    fn raise(sig: c_int) {
        // SAFETY: raising a signal at our own process; the test installed a handler for it.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
    }

    /// One test for the whole process-wide story, so no other test races it on the same signal.
    #[test]
    fn a_watched_signal_wakes_the_loop_and_the_last_unwatch_puts_the_old_disposition_back() {
        let sig = libc::SIGUSR2;
        // SAFETY: ignoring SIGUSR2 in this test process, to see it restored afterwards.
        let ignore: libc::sigaction =
            libc::sigaction { sa_sigaction: libc::SIG_IGN, ..unsafe { std::mem::zeroed() } };
        sigaction(sig, Some(&ignore)).unwrap();

        let first = LoopSignals::new().unwrap();
        let second = LoopSignals::new().unwrap();
        first.watch(sig).unwrap();
        first.watch(sig).unwrap(); // twice is once
        second.watch(sig).unwrap();
        assert!(!readable(first.fileno()));
        raise(sig);
        assert!(readable(first.fileno()) && readable(second.fileno()));
        assert_eq!(first.take(), vec![sig]);
        assert!(!readable(first.fileno()), "taking consumes the wake-up");
        assert_eq!(first.take(), Vec::<c_int>::new());

        assert!(first.unwatch(sig).unwrap());
        assert!(!first.unwatch(sig).unwrap(), "not watched any more");
        assert_ne!(sigaction(sig, None).unwrap().sa_sigaction, libc::SIG_IGN, "second still watches");
        second.take();
        raise(sig);
        assert!(!readable(first.fileno()));
        assert_eq!(second.take(), vec![sig]);

        drop(second);
        assert_eq!(sigaction(sig, None).unwrap().sa_sigaction, libc::SIG_IGN, "put back");

        // Watching again reinstalls the registry's handler, and the signal arrives again.
        let third = LoopSignals::new().unwrap();
        third.watch(sig).unwrap();
        raise(sig);
        assert_eq!(third.take(), vec![sig]);
        third.close().unwrap();
        assert_eq!(sigaction(sig, None).unwrap().sa_sigaction, libc::SIG_IGN);
    }

    #[test]
    fn uncatchable_and_out_of_range_signals_are_refused() {
        Python::initialize();
        let signals = LoopSignals::new().unwrap();
        Python::attach(|py| {
            let kill = signals.watch(libc::SIGKILL).unwrap_err();
            assert!(kill.is_instance_of::<PyRuntimeError>(py));
            assert!(signals.watch(0).unwrap_err().is_instance_of::<PyValueError>(py));
            assert!(signals.watch(65).unwrap_err().is_instance_of::<PyValueError>(py));
        });
    }
}

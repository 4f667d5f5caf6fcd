//! The scheduling policy of the server's I/O threads: SCHED_BATCH, so that their wake-ups do not
//! preempt an app loop that shares their core. App loop threads (and the app's own threads) keep
//! the policy they were started with.
//!
//! Why: on a shared core, every response the loop hands over and every socket that becomes
//! readable wakes the I/O thread, and the kernel switches to it at once, in the middle of the
//! loop's batch; with FastAPI that was one and a half context switches per request. A SCHED_BATCH
//! thread is not allowed to preempt on wake-up: it runs when the loop waits or its time slice
//! ends, so each side handles a whole batch per switch. On an idle core it runs at once, as before.

use std::io;

/// A thread's scheduling policy, as `sched_getscheduler` reports it.
type Policy = libc::c_int;

/// The calling thread's policy.
fn current_policy() -> io::Result<Policy> {
    // SAFETY: no pointers; pid 0 means the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(policy)
}

/// Set the calling thread's policy, with the static priority 0 that SCHED_OTHER and SCHED_BATCH
/// require (an unprivileged thread may move between the two).
fn set_current_policy(policy: Policy) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a live sched_param for the call's duration; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps the calling thread under SCHED_BATCH while alive and gives it back its old policy when
/// dropped: `serve` runs on a thread it borrows from Python's executor. Threads started meanwhile
/// (the runtime's workers and blocking pool) inherit the policy.
pub struct BatchGuard {
    before: Option<Policy>,
}

impl BatchGuard {
    /// Switch the calling thread; if the system refuses (a seccomp filter, say), serve as is.
    pub fn new() -> Self {
        let before =
            current_policy().and_then(|before| set_current_policy(libc::SCHED_BATCH).map(|()| before));
        Self { before: before.ok() }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        if let Some(before) = self.before {
            let _ = set_current_policy(before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_switches_the_thread_and_restores_it() {
        std::thread::spawn(|| {
            assert_eq!(current_policy().unwrap(), libc::SCHED_OTHER);
            let guard = BatchGuard::new();
            assert_eq!(current_policy().unwrap(), libc::SCHED_BATCH);
            let child = std::thread::spawn(|| current_policy().unwrap()).join().unwrap();
            assert_eq!(child, libc::SCHED_BATCH, "threads started meanwhile inherit it");
            drop(guard);
            assert_eq!(current_policy().unwrap(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}

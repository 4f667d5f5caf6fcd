//! `Signal`: a one-way, rarely raised flag that tasks can wait on, cheaply enough to be polled on
//! every wake of a busy connection. A waiting tokio `Notified` takes its waiter list's lock on
//! every poll; a connection's task polls its shutdown signals each time it is woken, several times
//! per request, and they almost never fire. `Signal::raised` registers the task once and, until
//! the flag is up, answers later polls with one atomic load.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Signal {
    up: AtomicBool,
    notify: Notify,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raise the flag and wake every task waiting for it (and any that starts waiting later).
    pub fn raise(&self) {
        self.up.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub fn is_raised(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Resolves once the flag is up. The first poll registers the waker; later polls look at the
    /// flag only. That is sound because a tokio task's waker, whichever poll it came from, wakes
    /// that same task: the waker registered first still wakes the task polling now.
    pub fn raised(&self) -> Raised<'_> {
        Raised { signal: self, notified: self.notify.notified(), registered: false }
    }
}

pin_project! {
    /// The future `Signal::raised` returns.
    pub struct Raised<'a> {
        signal: &'a Signal,
        #[pin]
        notified: Notified<'a>,
        registered: bool,
    }
}

impl Future for Raised<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.signal.is_raised() {
            return Poll::Ready(());
        }
        if !*this.registered {
            *this.registered = true;
            // Registers the waker; `notify_waiters` wakes every `Notified` created before it,
            // polled or not, so a `raise` between `raised()` and here is not missed.
            if this.notified.poll(cx).is_ready() || this.signal.is_raised() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiting_task_wakes_when_the_signal_is_raised() {
        let signal = Arc::new(Signal::new());
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move { signal.raised().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        signal.raise();
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_waiter_polled_many_times_still_wakes() {
        let signal = Arc::new(Signal::new());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move {
                let raised = signal.raised();
                tokio::pin!(raised);
                // Woken over and over by the channel, as a connection is by its socket: each
                // wake polls `raised` again without re-registering.
                let mut wakes = 0;
                loop {
                    tokio::select! {
                        _ = raised.as_mut() => return wakes,
                        Some(()) = rx.recv() => wakes += 1,
                    }
                }
            })
        };
        for _ in 0..5 {
            tx.send(()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        signal.raise();
        let wakes = tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        assert_eq!(wakes, 5);
    }

    #[tokio::test]
    async fn raised_before_waiting_resolves_at_once() {
        let signal = Signal::new();
        signal.raise();
        tokio::time::timeout(Duration::from_millis(100), signal.raised()).await.unwrap();
    }
}

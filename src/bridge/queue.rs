//! LoopQueue: the GIL-free mailbox of one app loop. Tokio threads push jobs and wake the loop
//! through an eventfd at most once per batch; the loop thread takes the whole batch in one go.
//!
//! Inside the server the eventfd is written by a signalling task (`signal_batches`) rather than
//! by the first push: that task runs after the tasks already queued on the runtime, so every
//! request parsed in this round of the runtime joins the batch before the loop is woken. Without
//! it the loop thread, woken at the first push, tends to preempt the I/O thread on a shared core
//! and take batches of one or two.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crate::event_fd::EventFd;

/// A mailbox of `T`s for a loop thread, woken through a file descriptor the loop watches.
pub struct LoopQueue<T> {
    jobs: Mutex<Vec<T>>,
    /// True while a wake-up is written to the eventfd and not yet consumed by `take_batch`.
    wake_pending: AtomicBool,
    event_fd: EventFd,
    signaller: Mutex<Signaller>,
}

/// The signalling task's side of the queue.
#[derive(Default)]
struct Signaller {
    /// A signalling task runs; pushes leave the eventfd write to it.
    installed: bool,
    /// A wake-up was asked for and not written yet.
    requested: bool,
    /// The task, when parked.
    waker: Option<Waker>,
}

impl<T> LoopQueue<T> {
    /// Create an empty queue with its non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            jobs: Mutex::new(Vec::with_capacity(64)),
            wake_pending: AtomicBool::new(false),
            event_fd: EventFd::new()?,
            signaller: Mutex::new(Signaller::default()),
        })
    }

    /// The descriptor the loop must watch for readability (`loop.add_reader`).
    pub fn fileno(&self) -> RawFd {
        self.event_fd.fd()
    }

    /// Queue one job; wake the loop only if no wake-up is already pending.
    pub fn push(&self, job: T) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            self.request_signal();
        }
    }

    /// Have the signalling task write the wake-up, or write it now if there is no such task.
    fn request_signal(&self) {
        let waker = {
            let mut signaller = self.signaller.lock().unwrap_or_else(|e| e.into_inner());
            if !signaller.installed {
                drop(signaller);
                return self.signal();
            }
            signaller.requested = true;
            signaller.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The signalling task: writes each requested wake-up once the runtime has run the tasks
    /// queued before it. Runs on the tokio runtime for as long as the server does.
    pub async fn signal_batches(self: Arc<Self>) {
        self.signaller.lock().unwrap_or_else(|e| e.into_inner()).installed = true;
        let _uninstall = Uninstall(&self);
        loop {
            poll_fn(|cx| {
                let mut signaller = self.signaller.lock().unwrap_or_else(|e| e.into_inner());
                if signaller.requested {
                    signaller.requested = false;
                    Poll::Ready(())
                } else {
                    signaller.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            self.signal();
        }
    }

    /// Move every queued job to the back of `into`; the queue keeps its capacity. Order matters:
    /// the wake-up is consumed first, then the pending flag cleared, then the jobs taken. A push
    /// after the flag is cleared writes a fresh wake-up; a push before it lands in this batch.
    /// (Clearing the flag before consuming the wake-up could swallow the wake-up of a push whose
    /// job is taken here and leave the flag set with no wake-up written: the next push would then
    /// never wake the loop.)
    pub fn take_batch(&self, into: &mut VecDeque<T>) {
        self.event_fd.reset();
        self.wake_pending.store(false, Ordering::SeqCst);
        into.extend(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
    }

    fn signal(&self) {
        self.event_fd.notify();
    }
}

/// When the signalling task ends (the runtime shuts down), pushes signal directly again and a
/// wake-up it had not written yet is written.
struct Uninstall<'a, T>(&'a LoopQueue<T>);

impl<T> Drop for Uninstall<'_, T> {
    fn drop(&mut self) {
        let mut signaller = self.0.signaller.lock().unwrap_or_else(|e| e.into_inner());
        signaller.installed = false;
        if std::mem::take(&mut signaller.requested) {
            self.0.signal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn one_wake_per_batch() {
        let q = LoopQueue::new().unwrap();
        assert!(!readable(q.fileno()));
        q.push(1);
        q.push(2);
        assert!(readable(q.fileno()));
        let mut batch = VecDeque::new();
        q.take_batch(&mut batch);
        assert_eq!(batch, vec![1, 2]);
        assert!(!readable(q.fileno()), "taking the batch consumes the wake-up");
        q.push(3);
        assert!(readable(q.fileno()), "a push after the batch wakes again");
    }

    /// A consumer that sleeps in poll() until woken must see every job, however pushes interleave
    /// with its drains: no lost wake-up.
    #[test]
    fn no_lost_wakeups_under_contention() {
        const JOBS: usize = 200_000;
        let q = std::sync::Arc::new(LoopQueue::new().unwrap());
        let producers: Vec<_> = (0..3)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..JOBS / 4 {
                        q.push(t * JOBS + i);
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let mut batch = VecDeque::new();
        while seen < 3 * (JOBS / 4) {
            let mut pfd = libc::pollfd { fd: q.fileno(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; a lost wake-up shows up as this 5 s timeout.
            let ready = unsafe { libc::poll(&mut pfd, 1, 5000) };
            assert_eq!(ready, 1, "consumer was never woken: {seen} jobs seen");
            q.take_batch(&mut batch);
            seen += batch.len();
            batch.clear();
        }
        producers.into_iter().for_each(|p| p.join().unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_signalling_task_wakes_the_loop_once_per_round() {
        let q = Arc::new(LoopQueue::new().unwrap());
        let task = tokio::spawn(q.clone().signal_batches());
        tokio::task::yield_now().await; // the task starts and parks
        for i in 0..10 {
            q.push(i);
        }
        assert!(!readable(q.fileno()), "the wake-up waits for the signalling task's turn");
        tokio::task::yield_now().await;
        assert!(readable(q.fileno()), "then it is written");
        let mut batch = VecDeque::new();
        q.take_batch(&mut batch);
        assert_eq!(batch, (0..10).collect::<Vec<_>>());
        task.abort();
        let _ = task.await;
        q.push(10);
        assert!(readable(q.fileno()), "without the task, a push signals directly again");
    }

    #[test]
    fn pushes_from_many_threads_all_arrive() {
        let q = std::sync::Arc::new(LoopQueue::new().unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || (0..1000).for_each(|i| q.push(t * 1000 + i)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut batch = VecDeque::new();
        q.take_batch(&mut batch);
        batch.make_contiguous().sort();
        assert_eq!(batch, (0..4000).collect::<Vec<_>>());
    }
}

//! WakeBatch: how the loop thread wakes the tokio tasks of the responses it advanced. Waking a
//! task from outside the runtime costs a syscall (the runtime's eventfd) per wake; here only the
//! first wake of a batch does, and it wakes one dispatcher task that wakes the rest from inside
//! the runtime, where a wake is a queue push.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Stream wakers collected on the loop thread, handed to the dispatcher task in batches.
#[derive(Default)]
pub struct WakeBatch {
    state: Mutex<BatchState>,
}

#[derive(Default)]
struct BatchState {
    wakers: Vec<Waker>,
    /// The dispatcher, when it is parked waiting for a batch.
    dispatcher: Option<Waker>,
}

impl WakeBatch {
    /// Queue `waker`; wake the dispatcher only if it is parked (once per batch).
    pub fn add(&self, waker: Waker) {
        let dispatcher = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.wakers.push(waker);
            state.dispatcher.take()
        };
        if let Some(dispatcher) = dispatcher {
            dispatcher.wake();
        }
    }

    /// Take the batch, or park the dispatcher until there is one. Parking happens under the same
    /// lock `add` pushes under, so no batch is left without a wake.
    fn poll_take(&self, cx: &mut Context<'_>, into: &mut Vec<Waker>) -> Poll<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.wakers.is_empty() {
            state.dispatcher = Some(cx.waker().clone());
            return Poll::Pending;
        }
        std::mem::swap(&mut state.wakers, into);
        Poll::Ready(())
    }

    /// The dispatcher task: runs on the tokio runtime for as long as the server does.
    pub async fn dispatch(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            poll_fn(|cx| self.poll_take(cx, &mut batch)).await;
            for waker in batch.drain(..) {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_the_first_wake_of_a_batch_wakes_the_dispatcher_and_all_are_delivered() {
        let batch = WakeBatch::default();
        let dispatcher = Arc::new(Counter(AtomicUsize::new(0)));
        let streams = Arc::new(Counter(AtomicUsize::new(0)));
        let dispatcher_waker = Waker::from(dispatcher.clone());
        let mut cx = Context::from_waker(&dispatcher_waker);
        let mut taken = Vec::new();
        assert!(batch.poll_take(&mut cx, &mut taken).is_pending());
        for _ in 0..5 {
            batch.add(Waker::from(streams.clone()));
        }
        assert_eq!(dispatcher.0.load(Ordering::SeqCst), 1, "one dispatcher wake for the batch");
        assert!(batch.poll_take(&mut cx, &mut taken).is_ready());
        taken.drain(..).for_each(Waker::wake);
        assert_eq!(streams.0.load(Ordering::SeqCst), 5);
        assert!(batch.poll_take(&mut cx, &mut taken).is_pending());
        batch.add(Waker::from(streams.clone()));
        assert_eq!(dispatcher.0.load(Ordering::SeqCst), 2, "the next batch wakes it again");
    }
}

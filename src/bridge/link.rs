//! Link: how the state of one request or WebSocket reaches its two sides. The loop is woken by a
//! job on its queue; the tokio task by its waker, handed to the loop's WakeBatch. It also holds
//! the request's places among the requests in flight, given back when the state is dropped.

use std::sync::Arc;
use std::task::Waker;

use super::{InFlight, JobQueue, LoopJob, WakeBatch};

pub struct Link {
    /// The id the loop knows this request by (its parked cycle, its task).
    pub id: u64,
    queue: Arc<JobQueue>,
    wakes: Arc<WakeBatch>,
    /// Its places among the server's and its loop's requests in flight.
    _in_flight: [InFlight; 2],
}

impl Link {
    pub fn new(id: u64, queue: Arc<JobQueue>, wakes: Arc<WakeBatch>, in_flight: [InFlight; 2]) -> Self {
        Self { id, queue, wakes, _in_flight: in_flight }
    }

    /// Queue `job` for the loop.
    pub fn push(&self, job: LoopJob) {
        self.queue.push(job);
    }

    /// Post a wake to the loop if it waits (`loop_waiting`), once until it waits again.
    pub fn wake_loop(&self, loop_waiting: &mut bool) {
        if std::mem::take(loop_waiting) {
            self.push(LoopJob::Wake(self.id));
        }
    }

    /// From the loop thread: wake the tokio task parked in `waker`, if any (batched).
    pub fn wake_task(&self, waker: &mut Option<Waker>) {
        if let Some(waker) = waker.take() {
            self.wakes.add(waker);
        }
    }
}

#[cfg(test)]
impl Link {
    /// A link to `queue` with its own counters, for unit tests.
    pub fn test(id: u64, queue: Arc<JobQueue>) -> Self {
        let in_flight = [InFlight::take(&Default::default()), InFlight::take(&Default::default())];
        Self::new(id, queue, Arc::default(), in_flight)
    }
}

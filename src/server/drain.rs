//! Graceful shutdown of open connections: a signal every connection task watches, and a wait for
//! all of them to finish. A connection that has not received its first request yet gets a short
//! grace period to do so, so a client whose request is already on its way is answered, not cut.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::signal::{Raised, Signal};

/// How long a fresh connection may take to deliver its first request once shutdown has begun.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// The server side: starts the shutdown and waits for every watcher to be dropped.
pub struct Drain {
    /// Counts the watchers (its receivers) and tells when the last is gone.
    tx: watch::Sender<()>,
    begun: Arc<Signal>,
}

/// A connection's side: resolves when shutdown begins.
#[derive(Clone)]
pub struct DrainWatch {
    _rx: watch::Receiver<()>,
    begun: Arc<Signal>,
}

impl Drain {
    pub fn new() -> Self {
        Self { tx: watch::channel(()).0, begun: Arc::new(Signal::new()) }
    }

    pub fn watcher(&self) -> DrainWatch {
        DrainWatch { _rx: self.tx.subscribe(), begun: self.begun.clone() }
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Tell every connection to finish, then wait until all have.
    pub async fn shutdown(self) {
        self.begun.raise();
        self.tx.closed().await;
    }
}

impl DrainWatch {
    /// Resolves once shutdown has begun; cheap to poll on every wake of a connection.
    pub fn started(&self) -> Raised<'_> {
        self.begun.raised()
    }

    /// The grace period a connection without any request gets after shutdown began.
    pub fn first_request_grace() -> Duration {
        FIRST_REQUEST_GRACE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_every_watcher() {
        let drain = Drain::new();
        let watch = drain.watcher();
        assert_eq!(drain.open(), 1);
        let task = tokio::spawn(async move {
            watch.started().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let start = std::time::Instant::now();
        drain.shutdown().await;
        assert!(start.elapsed() >= Duration::from_millis(50));
        task.await.unwrap();
    }
}

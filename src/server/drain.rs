//! Graceful shutdown of open connections: a signal every connection task watches, and a wait for
//! all of them to finish. A connection that has not received its first request yet gets a short
//! grace period to do so, so a client whose request is already on its way is answered, not cut.

use std::time::Duration;

use tokio::sync::watch;

/// How long a fresh connection may take to deliver its first request once shutdown has begun.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// The server side: starts the shutdown and waits for every watcher to be dropped.
pub struct Drain {
    tx: watch::Sender<bool>,
}

/// A connection's side: resolves when shutdown begins.
#[derive(Clone)]
pub struct DrainWatch {
    rx: watch::Receiver<bool>,
}

impl Drain {
    pub fn new() -> Self {
        Self { tx: watch::channel(false).0 }
    }

    pub fn watcher(&self) -> DrainWatch {
        DrainWatch { rx: self.tx.subscribe() }
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Tell every connection to finish, then wait until all have.
    pub async fn shutdown(self) {
        let _ = self.tx.send(true);
        self.tx.closed().await;
    }
}

impl DrainWatch {
    /// Resolves once shutdown has begun.
    pub async fn started(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
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
        let mut watch = drain.watcher();
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

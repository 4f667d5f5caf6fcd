//! ShutdownTrigger: how any part of the server asks it to stop gracefully, and why.
//! The accept loop waits on it; the first reason recorded is the one reported.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// Why the server is stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// `Server.shutdown()` from Python.
    Requested,
    /// `--limit-max-requests` was reached.
    RequestLimit,
}

impl StopReason {
    /// The name Python sees.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::Requested => "requested",
            StopReason::RequestLimit => "request_limit",
        }
    }
}

/// A one-shot, thread-safe request to stop.
#[derive(Default)]
pub struct ShutdownTrigger {
    notify: Notify,
    reason: AtomicU8,
}

impl ShutdownTrigger {
    /// Ask the server to stop; the first reason wins.
    pub fn trigger(&self, reason: StopReason) {
        let code = reason as u8 + 1;
        let _ = self.reason.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// Wait until someone triggers.
    pub async fn triggered(&self) {
        self.notify.notified().await;
    }

    /// The recorded reason, if any.
    pub fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(StopReason::Signal),
            2 => Some(StopReason::Requested),
            3 => Some(StopReason::RequestLimit),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins() {
        let trigger = ShutdownTrigger::default();
        assert_eq!(trigger.reason(), None);
        trigger.trigger(StopReason::RequestLimit);
        trigger.trigger(StopReason::Signal);
        assert_eq!(trigger.reason(), Some(StopReason::RequestLimit));
    }
}

//! WsExchange: the state one WebSocket shares between its app loop and its tokio side (first the
//! request handler waiting for the app's verdict on the handshake, then the session task).
//! Plain Rust data only; each side wakes the other through the exchange's Link.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use super::{Link, ResponseHead};
use crate::ws::CloseCode;

/// One WebSocket message, either way.
#[derive(Debug, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Bytes),
}

impl WsMessage {
    pub fn len(&self) -> usize {
        match self {
            WsMessage::Text(text) => text.len(),
            WsMessage::Binary(data) => data.len(),
        }
    }
}

/// What the app decided about the opening handshake.
#[derive(Debug)]
pub enum Verdict {
    /// `websocket.accept`.
    Accept { subprotocol: Option<String>, headers: Vec<(HeaderName, HeaderValue)> },
    /// `websocket.close` before accepting: HTTP 403.
    Reject,
    /// The denial-response extension: this status, headers and body instead of a WebSocket.
    Deny { head: ResponseHead, body: Bytes },
    /// The app failed or returned without answering: HTTP 500.
    Fail,
}

/// What the app queued for the session to write.
#[derive(Debug)]
pub enum Outbound {
    Message(WsMessage),
    Close(CloseCode, String),
}

/// The mutable part of a [`WsExchange`].
#[derive(Debug, Default)]
pub struct WsState {
    pub verdict: Option<Verdict>,
    /// Messages read from the client and not yet received by the app.
    pub inbound: VecDeque<WsMessage>,
    /// The connection is closed for reading: the `websocket.disconnect` code and reason, which
    /// the app gets once `inbound` is empty.
    pub closed: Option<(CloseCode, String)>,
    /// Nothing the app sends can reach the client any more: `send` raises.
    pub gone: bool,
    pub outbound: VecDeque<Outbound>,
    pub outbound_bytes: usize,
    /// The loop waits for a change (a pending receive or send); the next change posts a wake.
    pub loop_waiting: bool,
    /// The tokio side (handler or session) waiting for a verdict, outbound data or inbound room.
    task_waker: Option<Waker>,
}

/// One WebSocket's shared state.
pub struct WsExchange {
    pub link: Link,
    state: Mutex<WsState>,
    /// Bytes the app may queue before `send` waits.
    pub high_water: usize,
    /// Messages the session may queue for the app before it stops reading the socket.
    pub max_queue: usize,
}

impl WsExchange {
    pub fn new(link: Link, high_water: usize, max_queue: usize) -> Self {
        Self { link, state: Mutex::default(), high_water, max_queue }
    }

    /// Lock the shared state (a poisoned lock still holds consistent data).
    pub fn lock(&self) -> MutexGuard<'_, WsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- loop side ------------------------------------------------------------------------

    /// Wake the tokio side after the loop changed something it waits for.
    pub fn wake_task(&self, state: &mut WsState) {
        self.link.wake_task(&mut state.task_waker);
    }

    /// Hand the app's verdict on the handshake to the request handler waiting for it.
    pub fn decide(&self, state: &mut WsState, verdict: Verdict) {
        state.verdict = Some(verdict);
        self.wake_task(state);
    }

    /// Queue what the app sent for the session to write.
    pub fn queue_outbound(&self, state: &mut WsState, item: Outbound) {
        if let Outbound::Message(message) = &item {
            state.outbound_bytes += message.len();
        }
        state.outbound.push_back(item);
        self.wake_task(state);
    }

    /// The app took a message: if that made room in a full queue, the session may read again.
    pub fn take_inbound(&self, state: &mut WsState) -> Option<WsMessage> {
        let message = state.inbound.pop_front()?;
        if state.inbound.len() + 1 == self.max_queue {
            self.wake_task(state);
        }
        Some(message)
    }

    // ---- tokio side -----------------------------------------------------------------------

    fn wake_loop(&self, state: &mut WsState) {
        self.link.wake_loop(&mut state.loop_waiting);
    }

    /// Wait for the app's verdict on the handshake.
    pub fn poll_verdict(&self, cx: &mut Context<'_>) -> Poll<Verdict> {
        let mut state = self.lock();
        match state.verdict.take() {
            Some(verdict) => Poll::Ready(verdict),
            None => {
                state.task_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// A message from the client for the app.
    pub fn push_inbound(&self, message: WsMessage) {
        let mut state = self.lock();
        state.inbound.push_back(message);
        self.wake_loop(&mut state);
    }

    /// Ready while the app has room for another message; the session reads the socket only then.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.inbound.len() < self.max_queue {
            return Poll::Ready(());
        }
        state.task_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Move everything the app queued into `out`; pending while there is nothing.
    pub fn poll_outbound(&self, cx: &mut Context<'_>, out: &mut Vec<Outbound>) -> Poll<()> {
        let mut state = self.lock();
        if state.outbound.is_empty() {
            state.task_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        out.extend(state.outbound.drain(..));
        state.outbound_bytes = 0;
        self.wake_loop(&mut state);
        Poll::Ready(())
    }

    /// The connection is gone without a close frame (dropped, or never upgraded): the app sees
    /// 1006 unless a code was already set, and sends fail.
    pub fn dropped(&self) {
        self.close_inbound(CloseCode::ABNORMAL, "", true);
    }

    /// The connection is closed for reading with this code (the peer's close frame, or the
    /// server's own close); with `gone`, sends fail from now on too.
    pub fn close_inbound(&self, code: CloseCode, reason: &str, gone: bool) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some((code, reason.to_owned()));
        }
        state.gone |= gone;
        self.wake_loop(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bridge::{LoopJob, LoopQueue};

    fn exchange(max_queue: usize) -> (Arc<LoopQueue<LoopJob>>, WsExchange) {
        let queue = Arc::new(LoopQueue::new().unwrap());
        (queue.clone(), WsExchange::new(Link::test(3, queue), 1024, max_queue))
    }

    fn wakes(queue: &LoopQueue<LoopJob>) -> usize {
        let mut batch = std::collections::VecDeque::new();
        queue.take_batch(&mut batch);
        batch.len()
    }

    #[test]
    fn session_stops_reading_when_the_app_falls_behind() {
        let (_queue, ws) = exchange(2);
        let mut cx = Context::from_waker(Waker::noop());
        ws.push_inbound(WsMessage::Text("a".into()));
        assert!(ws.poll_room(&mut cx).is_ready());
        ws.push_inbound(WsMessage::Binary(Bytes::from_static(b"b")));
        assert!(ws.poll_room(&mut cx).is_pending());
        let mut state = ws.lock();
        assert_eq!(ws.take_inbound(&mut state), Some(WsMessage::Text("a".into())));
        assert!(state.task_waker.is_none(), "the parked session was handed to the wake batch");
        drop(state);
        assert!(ws.poll_room(&mut cx).is_ready());
    }

    #[test]
    fn outbound_is_taken_in_one_batch_and_wakes_a_blocked_send() {
        let (queue, ws) = exchange(2);
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        assert!(ws.poll_outbound(&mut cx, &mut out).is_pending());
        {
            let mut state = ws.lock();
            state.outbound.push_back(Outbound::Message(WsMessage::Text("x".into())));
            state.outbound.push_back(Outbound::Close(CloseCode::NORMAL, String::new()));
            state.outbound_bytes = 1;
            state.loop_waiting = true;
        }
        assert!(ws.poll_outbound(&mut cx, &mut out).is_ready());
        assert_eq!(out.len(), 2);
        assert_eq!(wakes(&queue), 1);
        assert_eq!(ws.lock().outbound_bytes, 0);
    }

    #[test]
    fn first_close_code_wins() {
        let (_queue, ws) = exchange(2);
        ws.close_inbound(CloseCode(4000), "bye", false);
        ws.dropped();
        let state = ws.lock();
        assert_eq!(state.closed, Some((CloseCode(4000), "bye".into())));
        assert!(state.gone);
    }
}

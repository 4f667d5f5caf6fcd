//! Exchange: the state one HTTP request shares between its tokio stream task and its app loop.
//! It holds plain Rust data only; each side wakes the other (a `Waker` or a loop job) on change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::{Chunks, Link};

/// The response head as the app sent it, validated.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// How much of a request body the server reads ahead of the app (bounded memory per request,
/// like uvicorn's flow control): the pump waits when this much is queued.
pub const BODY_READ_AHEAD: usize = 256 * 1024;

/// Where the request body stands, from the loop's point of view.
#[derive(Debug, Default)]
pub struct RequestBody {
    /// Chunks read from the client and not yet handed to the app.
    chunks: Chunks,
    /// The bytes in `chunks`.
    queued_bytes: usize,
    /// The client has sent the whole body (it may still sit in `chunks`).
    pub complete: bool,
    /// The body pump waits for the app: for its first `receive` (so that `100 Continue` goes
    /// out only when the app wants the body), or for room in the read-ahead.
    pump_waiting: bool,
}

impl RequestBody {
    /// Everything read so far, and how many bytes that is.
    pub fn take(&mut self) -> (Chunks, usize) {
        (std::mem::take(&mut self.chunks), std::mem::take(&mut self.queued_bytes))
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// Response data the app queued and the stream has not written yet.
#[derive(Debug, Default)]
pub struct ResponseOutput {
    pub head: Option<ResponseHead>,
    pub chunks: Chunks,
    pub queued_bytes: usize,
    /// The app sent its last body message.
    pub complete: bool,
    /// The app sent the body in more than one message: on HTTP/1.1 it goes out chunked.
    pub streamed: bool,
    /// The app failed after the head went out: the stream must be cut, not ended.
    pub aborted: bool,
    /// `http.response.pathsend`: after `chunks`, the body is this open file of this length.
    pub file: Option<(std::fs::File, u64)>,
    /// The app announced trailers: the body has no known length (HTTP/1.1 goes chunked).
    pub trailers_expected: bool,
    /// `http.response.trailers` fields, sent after the body.
    pub trailers: Option<http::HeaderMap>,
}

/// The mutable part of an [`Exchange`].
#[derive(Debug, Default)]
pub struct ExchangeState {
    pub body: RequestBody,
    pub output: ResponseOutput,
    /// The client went away (connection closed or stream reset) before the response ended.
    pub disconnected: bool,
    /// The loop waits for a change (a pending receive or send); the next change posts a wake.
    pub loop_waiting: bool,
    /// The tokio side waiting for the head or the next chunk.
    stream_waker: Option<Waker>,
}

/// A place counted in the server's requests in flight, given back when dropped.
pub struct InFlight {
    counter: Arc<AtomicUsize>,
    /// How many were in flight, this one included, when it was taken.
    pub count: usize,
}

impl InFlight {
    pub fn take(counter: &Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        InFlight { counter: counter.clone(), count }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One request's shared state. Created by the stream task, handed to the loop in a job. It lives
/// until both the stream and the app are done with it, which is what `--limit-concurrency` counts.
pub struct Exchange {
    pub link: Link,
    state: Mutex<ExchangeState>,
    /// Signalled by the loop when the body pump may read on (see `RequestBody::pump_waiting`).
    body_demand: Notify,
    /// The body pump task, if the body was not pre-read; aborted when the exchange ends.
    pump: Mutex<Option<AbortHandle>>,
    /// Bytes the app may queue before `send` waits.
    pub high_water: usize,
}

impl Exchange {
    /// `body_complete` when the request has no body to stream (none, or one read already).
    pub fn new(link: Link, high_water: usize, body_complete: bool) -> Self {
        let body =
            RequestBody { complete: body_complete, pump_waiting: !body_complete, ..Default::default() };
        let state = ExchangeState { body, ..Default::default() };
        Self {
            link,
            state: Mutex::new(state),
            body_demand: Notify::new(),
            pump: Mutex::new(None),
            high_water,
        }
    }

    /// Lock the shared state. A poisoned lock still holds consistent data (no code panics while
    /// holding it half-updated), so it is used as is.
    pub fn lock(&self) -> MutexGuard<'_, ExchangeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember the body pump so the exchange can stop it when the response is over.
    pub fn set_pump(&self, handle: AbortHandle) {
        *self.pump.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    fn stop_pump(&self) {
        if let Some(pump) = self.pump.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pump.abort();
        }
    }

    // ---- loop side ------------------------------------------------------------------------

    /// The app took the queued body, or found none: let a waiting pump read on.
    pub fn release_pump(&self, state: &mut ExchangeState) {
        if std::mem::take(&mut state.body.pump_waiting) {
            self.body_demand.notify_one();
        }
    }

    /// Wake the stream task after the loop changed the output (batched: see `WakeBatch`).
    pub fn wake_stream(&self, state: &mut ExchangeState) {
        self.link.wake_task(&mut state.stream_waker);
    }

    /// The loop could not start the app for this request: answer 500 and end the response.
    pub fn fail_before_start(&self) {
        let mut state = self.lock();
        if state.output.head.is_none() && !state.output.complete {
            let body = Bytes::from_static(b"Internal Server Error");
            state.output.head = Some(ResponseHead {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                headers: vec![(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
            });
            state.output.queued_bytes += body.len();
            state.output.chunks.push_back(body);
            state.output.complete = true;
        }
        self.wake_stream(&mut state);
    }

    // ---- tokio side -----------------------------------------------------------------------

    /// Post a wake to the loop if it waits for this exchange. Call with the state locked.
    fn wake_loop(&self, state: &mut ExchangeState) {
        self.link.wake_loop(&mut state.loop_waiting);
    }

    /// The pump read a body chunk (`last` when nothing follows).
    pub fn push_body(&self, chunk: Bytes, last: bool) {
        let mut state = self.lock();
        if !chunk.is_empty() {
            state.body.queued_bytes += chunk.len();
            state.body.chunks.push_back(chunk);
        }
        state.body.complete |= last;
        state.body.pump_waiting = !last && state.body.queued_bytes >= BODY_READ_AHEAD;
        self.wake_loop(&mut state);
    }

    /// The pump's turn to read: wait while it must (see `RequestBody::pump_waiting`).
    pub async fn pump_turn(&self) {
        loop {
            let released = self.body_demand.notified();
            if !self.lock().body.pump_waiting {
                return;
            }
            released.await;
        }
    }

    /// The client is gone: the app sees `http.disconnect` and `send` raises.
    pub fn disconnect(&self) {
        let mut state = self.lock();
        if !state.disconnected {
            state.disconnected = true;
            self.wake_loop(&mut state);
        }
        drop(state);
        self.stop_pump();
    }

    /// Wait until the app sent the response head (or failed before sending one).
    pub fn poll_head(&self, cx: &mut Context<'_>) -> Poll<ResponseHead> {
        let mut state = self.lock();
        match state.output.head.take() {
            Some(head) => Poll::Ready(head),
            None => {
                state.stream_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The next piece of response body: `Some(Ok)` data, `None` at the end, `Some(Err)` if the
    /// app failed mid-response.
    pub fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, AppAborted>>> {
        let mut state = self.lock();
        if let Some(chunk) = state.output.chunks.pop_front() {
            state.output.queued_bytes -= chunk.len();
            if state.output.queued_bytes < self.high_water / 2 {
                self.wake_loop(&mut state);
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if state.output.aborted {
            return Poll::Ready(Some(Err(AppAborted)));
        }
        if state.output.complete {
            return Poll::Ready(None);
        }
        state.stream_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// True when every queued byte is out and the app said it was the last.
    pub fn output_finished(&self) -> bool {
        let state = self.lock();
        state.output.complete
            && state.output.chunks.is_empty()
            && state.output.file.is_none()
            && state.output.trailers.is_none()
    }

    /// The file a `pathsend` left to stream, once the chunks before it are out.
    pub fn take_file(&self) -> Option<(std::fs::File, u64)> {
        let mut state = self.lock();
        if state.output.chunks.is_empty() {
            state.output.file.take()
        } else {
            None
        }
    }

    /// The trailers, once the body is out.
    pub fn take_trailers(&self) -> Option<http::HeaderMap> {
        self.lock().output.trailers.take()
    }

    /// The body's exact length, when the app sent all of it in one message (a complete response);
    /// a streamed body has none, so HTTP/1.1 frames it chunked unless the app set a length.
    pub fn exact_remaining(&self) -> Option<u64> {
        let state = self.lock();
        let file = state.output.file.as_ref().map_or(0, |(_, len)| *len);
        (state.output.complete && !state.output.streamed && !state.output.trailers_expected)
            .then_some(state.output.queued_bytes as u64 + file)
    }

    /// The stream task is done with this exchange: stop the pump; if the response did not end,
    /// the client is treated as gone.
    pub fn finish_stream(&self, response_ended: bool) {
        if response_ended {
            self.stop_pump();
        } else {
            self.disconnect();
        }
    }
}

/// The app failed after the response head was sent; the stream must be aborted.
#[derive(Debug)]
pub struct AppAborted;

impl std::fmt::Display for AppAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the application failed before completing the response")
    }
}

impl std::error::Error for AppAborted {}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;
    use crate::bridge::{LoopJob, LoopQueue};

    fn exchange(high_water: usize) -> (Arc<LoopQueue<LoopJob>>, Exchange) {
        let queue = Arc::new(LoopQueue::new().unwrap());
        let ex = Exchange::new(Link::test(7, queue.clone()), high_water, false);
        (queue, ex)
    }

    fn wakes(queue: &LoopQueue<LoopJob>) -> Vec<u64> {
        let mut batch = std::collections::VecDeque::new();
        queue.take_batch(&mut batch);
        batch.into_iter().map(|job| if let LoopJob::Wake(id) = job { id } else { 0 }).collect()
    }

    #[test]
    fn body_chunk_wakes_a_waiting_loop_once() {
        let (queue, ex) = exchange(1024);
        ex.push_body(Bytes::from_static(b"ignored wake"), false);
        assert!(wakes(&queue).is_empty(), "no wake while the loop is not waiting");
        ex.lock().loop_waiting = true;
        ex.push_body(Bytes::from_static(b"a"), false);
        ex.push_body(Bytes::from_static(b"b"), true);
        assert_eq!(wakes(&queue), vec![7], "one wake until the loop waits again");
        let mut state = ex.lock();
        let (mut chunks, len) = state.body.take();
        let chunks: Vec<_> = std::iter::from_fn(|| chunks.pop_front()).collect();
        assert_eq!(chunks, [&b"ignored wake"[..], b"a", b"b"]);
        assert_eq!(len, 14);
        assert!(state.body.complete);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_pump_waits_for_the_first_receive_then_reads_ahead_up_to_the_limit() {
        let (_queue, ex) = exchange(1024);
        let ex = Arc::new(ex);
        let turn = |ex: &Arc<Exchange>| {
            let ex = ex.clone();
            tokio::spawn(async move { ex.pump_turn().await })
        };
        let first = turn(&ex);
        tokio::task::yield_now().await;
        assert!(!first.is_finished(), "no reading before the app asks for the body");
        ex.release_pump(&mut ex.lock()); // the app's first receive found nothing
        first.await.unwrap();
        let chunk = Bytes::from(vec![0; BODY_READ_AHEAD / 2]);
        ex.push_body(chunk.clone(), false);
        turn(&ex).await.unwrap(); // half the read-ahead queued: read on
        ex.push_body(chunk, false);
        let full = turn(&ex);
        tokio::task::yield_now().await;
        assert!(!full.is_finished(), "the read-ahead is full");
        let (_, len) = ex.lock().body.take();
        assert_eq!(len, BODY_READ_AHEAD);
        ex.release_pump(&mut ex.lock());
        full.await.unwrap();
    }

    #[test]
    fn draining_below_half_high_water_wakes_a_blocked_send() {
        let (queue, ex) = exchange(10);
        {
            let mut state = ex.lock();
            for chunk in [&b"12345"[..], b"6789", b"0"] {
                state.output.queued_bytes += chunk.len();
                state.output.chunks.push_back(Bytes::copy_from_slice(chunk));
            }
            state.loop_waiting = true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(ex.poll_chunk(&mut cx), Poll::Ready(Some(Ok(c))) if &c[..] == b"12345"));
        assert!(wakes(&queue).is_empty(), "5 bytes still queued is not below half of 10");
        assert!(matches!(ex.poll_chunk(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert_eq!(wakes(&queue), vec![7]);
    }

    #[test]
    fn chunks_then_end_then_nothing_pending() {
        let (_queue, ex) = exchange(10);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(ex.poll_chunk(&mut cx).is_pending());
        {
            let mut state = ex.lock();
            state.output.queued_bytes = 2;
            state.output.chunks.push_back(Bytes::from_static(b"hi"));
            state.output.complete = true;
        }
        assert_eq!(ex.exact_remaining(), Some(2));
        assert!(matches!(ex.poll_chunk(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(ex.output_finished());
        assert!(matches!(ex.poll_chunk(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn abort_after_head_is_an_error_for_the_stream() {
        let (_queue, ex) = exchange(10);
        ex.lock().output.aborted = true;
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(ex.poll_chunk(&mut cx), Poll::Ready(Some(Err(AppAborted)))));
    }

    #[test]
    fn disconnect_is_reported_once() {
        let (queue, ex) = exchange(10);
        ex.lock().loop_waiting = true;
        ex.disconnect();
        ex.lock().loop_waiting = true;
        ex.disconnect();
        assert_eq!(wakes(&queue), vec![7]);
        assert!(ex.lock().disconnected);
    }

    #[test]
    fn failing_before_start_answers_500() {
        let (_queue, ex) = exchange(10);
        ex.fail_before_start();
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(head) = ex.poll_head(&mut cx) else { panic!("head expected") };
        assert_eq!(head.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(ex.output_finished() || ex.exact_remaining() == Some(21));
    }
}

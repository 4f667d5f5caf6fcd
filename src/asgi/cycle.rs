//! HttpCycle: one HTTP request's `receive` and `send` as the app sees them. Lives on the loop
//! thread; talks to the stream task only through its Exchange.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::awaitable;
use super::message::{parse_http_message, HttpMessage};
use crate::bridge::AppLoop;
use crate::bridge::{Chunks, Exchange, ExchangeState, ResponseHead};

pyo3::create_exception!(
    _fasterapi,
    ClientDisconnected,
    PyOSError,
    "Raised by `send` when the client has gone away."
);

/// What the access log needs about a request.
pub struct AccessInfo {
    pub client: String,
    pub method: Method,
    pub path_with_query: String,
    pub http_version: &'static str,
}

/// The outcome of a receive attempt, decided under the exchange lock.
enum ReceiveOutcome {
    /// The body read so far (its chunks and their length), and whether more follows.
    Body(Chunks, usize, bool),
    Disconnect,
    Pending,
}

/// Where the response stands on the loop side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Streaming,
    /// The body is complete and the app announced trailers: waiting for them.
    Trailers,
    Complete,
}

/// The `receive`/`send` pair of one HTTP request.
#[pyclass(module = "fasterapi._fasterapi")]
pub struct HttpCycle {
    exchange: Arc<Exchange>,
    app_loop: Py<AppLoop>,
    access: Option<AccessInfo>,
    http2: bool,
    phase: Phase,
    /// The app got the `http.request` event with `more_body=False`.
    body_delivered: bool,
    /// The body of this response is dropped (HEAD, 204, 304).
    drop_body: bool,
    /// The app announced `http.response.trailers` in its `http.response.start`.
    trailers: bool,
    pending_receive: Option<Py<PyAny>>,
    pending_send: Option<Py<PyAny>>,
    /// The app coroutine has finished (returned or raised).
    pub finished: bool,
}

impl HttpCycle {
    pub fn new(
        exchange: Arc<Exchange>,
        app_loop: Py<AppLoop>,
        access: Option<AccessInfo>,
        is_head: bool,
        http2: bool,
    ) -> Self {
        Self {
            exchange,
            app_loop,
            access,
            http2,
            phase: Phase::NotStarted,
            body_delivered: false,
            drop_body: is_head,
            trailers: false,
            pending_receive: None,
            pending_send: None,
            finished: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.exchange.link.id
    }

    /// Decide what `receive` returns now; if nothing, ask the loop to be woken on change.
    fn poll_receive(&mut self, state: &mut ExchangeState) -> ReceiveOutcome {
        if !self.body_delivered {
            // Everything queued goes out as one event: fewer, larger events than the client's
            // packets, each a single copy into Python.
            if !state.body.is_empty() || state.body.complete {
                let (chunks, len) = state.body.take();
                self.exchange.release_pump(state);
                let more = !state.body.complete;
                self.body_delivered = !more;
                return ReceiveOutcome::Body(chunks, len, more);
            }
            if state.disconnected {
                return ReceiveOutcome::Disconnect;
            }
            self.exchange.release_pump(state);
        } else if state.disconnected || self.phase == Phase::Complete {
            return ReceiveOutcome::Disconnect;
        }
        state.loop_waiting = true;
        ReceiveOutcome::Pending
    }

    fn receive_event<'py>(py: Python<'py>, outcome: ReceiveOutcome) -> PyResult<Bound<'py, PyDict>> {
        let event = PyDict::new(py);
        match outcome {
            ReceiveOutcome::Body(mut chunks, len, more) => {
                let body = PyBytes::new_with(py, len, |buf| {
                    let mut at = 0;
                    while let Some(chunk) = chunks.pop_front() {
                        buf[at..at + chunk.len()].copy_from_slice(&chunk);
                        at += chunk.len();
                    }
                    Ok(())
                })?;
                event.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
                event.set_item(intern!(py, "body"), body)?;
                event.set_item(intern!(py, "more_body"), more)?;
            }
            ReceiveOutcome::Disconnect | ReceiveOutcome::Pending => {
                event.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
            }
        }
        Ok(event)
    }

    /// Register this cycle to be woken by the next change on its exchange.
    fn park(slf: &Bound<'_, Self>) {
        let this = slf.borrow();
        this.app_loop.get().park(this.id(), slf.clone().unbind());
    }

    /// Re-check pending awaitables after the stream task changed the exchange.
    pub fn wake(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        if let Some(fut) = awaitable::take_live(py, &mut this.pending_receive)? {
            match this.poll_receive(&mut state) {
                ReceiveOutcome::Pending => this.pending_receive = Some(fut.unbind()),
                outcome => awaitable::resolve(&fut, Self::receive_event(py, outcome)?.into_any())?,
            }
        }
        if let Some(fut) = awaitable::take_live(py, &mut this.pending_send)? {
            let gone = state.disconnected.then(|| ClientDisconnected::new_err("client disconnected"));
            this.pending_send =
                awaitable::settle_send(fut, gone, state.output.queued_bytes < exchange.high_water)?;
            if this.pending_send.is_some() {
                state.loop_waiting = true;
            }
        }
        let still_waiting = this.pending_receive.is_some() || this.pending_send.is_some();
        drop(state);
        drop(this);
        if still_waiting {
            Self::park(slf);
        }
        Ok(())
    }

    fn start_response(
        &mut self,
        py: Python<'_>,
        state: &mut ExchangeState,
        mut head: ResponseHead,
    ) -> PyResult<()> {
        if matches!(head.status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
            || head.status.is_informational()
        {
            self.drop_body = true;
        }
        if let Some(access) = &self.access {
            AppLoop::log_access(self.app_loop.bind(py), access, head.status.as_u16())?;
        }
        if self.http2 {
            head.headers.retain(|(name, _)| !is_connection_specific(name));
        }
        state.output.head = Some(head);
        self.phase = Phase::Streaming;
        Ok(())
    }

    /// The response the server sends for the app when it failed before starting one.
    fn server_error(&self) -> ResponseHead {
        let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))];
        if !self.http2 {
            headers.push((header::CONNECTION, HeaderValue::from_static("close")));
        }
        ResponseHead { status: StatusCode::INTERNAL_SERVER_ERROR, headers }
    }

    /// End the exchange for an app that is done; `failed` when it raised.
    fn conclude(slf: &Bound<'_, Self>, failed: bool) -> PyResult<Option<&'static str>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.finished = true;
        let app_loop = this.app_loop.get();
        app_loop.forget_task(this.id());
        app_loop.unpark(this.id());
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        let message = match this.phase {
            Phase::Complete => None,
            Phase::NotStarted => {
                if !state.disconnected {
                    let head = this.server_error();
                    this.start_response(py, &mut state, head)?;
                    if !this.drop_body {
                        let body = Bytes::from_static(b"Internal Server Error");
                        state.output.queued_bytes += body.len();
                        state.output.chunks.push_back(body);
                    }
                    state.output.complete = true;
                }
                this.phase = Phase::Complete;
                (!failed).then_some("ASGI callable returned without starting response.")
            }
            Phase::Streaming => {
                state.output.aborted = true;
                this.phase = Phase::Complete;
                (!failed && !state.disconnected)
                    .then_some("ASGI callable returned without completing response.")
            }
            // The body is whole: end the response without the missing trailers.
            Phase::Trailers => {
                state.output.complete = true;
                this.phase = Phase::Complete;
                (!failed).then_some("ASGI callable returned without sending trailers.")
            }
        };
        exchange.wake_stream(&mut state);
        Ok(message)
    }
}

/// Headers HTTP/2 forbids in responses (RFC 9113 section 8.2.2).
fn is_connection_specific(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
    )
}

#[pymethods]
impl HttpCycle {
    /// ASGI `receive`: the next `http.request` or `http.disconnect` event, as an awaitable.
    fn receive(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        awaitable::ensure_receive_free(py, &mut this.pending_receive)?;
        let exchange = this.exchange.clone();
        let outcome = this.poll_receive(&mut exchange.lock());
        let app_loop = this.app_loop.get();
        match outcome {
            ReceiveOutcome::Pending => {
                let fut = app_loop.create_future(py)?;
                this.pending_receive = Some(fut.clone_ref(py));
                drop(this);
                Self::park(slf);
                Ok(fut)
            }
            outcome => app_loop.ready(py, Self::receive_event(py, outcome)?.into_any()),
        }
    }

    /// ASGI `send`: hand a message to the stream; awaitable completes when there is room.
    fn send(slf: &Bound<'_, Self>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let message = parse_http_message(message)?;
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        if state.disconnected && !this.drop_body {
            return Err(ClientDisconnected::new_err("client disconnected"));
        }
        match (this.phase, message) {
            (Phase::NotStarted, HttpMessage::Start { head, trailers }) => {
                this.trailers = trailers;
                this.start_response(py, &mut state, head)?;
                // After start_response, which knows whether the status drops the body.
                state.output.trailers_expected = trailers && !this.drop_body;
                drop(state);
                // The head usually goes out with the first body message in one wake; if the app
                // sends none in this loop iteration, the deferred wake sends the head alone.
                AppLoop::defer_wake(this.app_loop.bind(py), exchange)?;
                return Ok(this.app_loop.get().done(py));
            }
            (Phase::NotStarted, other) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'http.response.start', but got '{}'.",
                    other.kind()
                )));
            }
            (Phase::Streaming, other @ (HttpMessage::Start { .. } | HttpMessage::Trailers { .. })) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'http.response.body', but got '{}'.",
                    other.kind()
                )));
            }
            (Phase::Trailers, HttpMessage::Trailers { headers, more_trailers }) => {
                if !this.drop_body {
                    let trailers = state.output.trailers.get_or_insert_with(http::HeaderMap::new);
                    for (name, value) in headers {
                        trailers.append(name, value);
                    }
                }
                if !more_trailers {
                    state.output.complete = true;
                    this.phase = Phase::Complete;
                }
            }
            (Phase::Trailers, other) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'http.response.trailers', but got '{}'.",
                    other.kind()
                )));
            }
            (Phase::Complete, _) => {
                return Err(PyRuntimeError::new_err(
                    "Unexpected ASGI message sent, after response already completed.",
                ));
            }
            (Phase::Streaming, HttpMessage::PathSend(path)) => {
                if !this.drop_body {
                    // Opening is quick; reading happens on the I/O threads, without the GIL.
                    let file = std::fs::File::open(&path)?;
                    let len = file.metadata()?.len();
                    state.output.file = Some((file, len));
                }
                state.output.complete = true;
                this.phase = Phase::Complete;
            }
            (Phase::Streaming, HttpMessage::Body { body, more_body }) => {
                if !body.is_empty() && !this.drop_body {
                    state.output.queued_bytes += body.len();
                    state.output.chunks.push_back(body);
                }
                if more_body {
                    state.output.streamed = true;
                } else if this.trailers {
                    this.phase = Phase::Trailers;
                } else {
                    state.output.complete = true;
                    this.phase = Phase::Complete;
                }
            }
        }
        exchange.wake_stream(&mut state);
        if this.phase == Phase::Complete {
            // A receive waiting for the end of the response now gets http.disconnect.
            if let Some(fut) = awaitable::take_live(py, &mut this.pending_receive)? {
                awaitable::resolve(&fut, Self::receive_event(py, ReceiveOutcome::Disconnect)?.into_any())?;
            }
        }
        if state.output.queued_bytes >= exchange.high_water {
            state.loop_waiting = true;
            drop(state);
            let fut = this.app_loop.get().create_future(py)?;
            this.pending_send = Some(fut.clone_ref(py));
            drop(this);
            Self::park(slf);
            return Ok(fut);
        }
        Ok(this.app_loop.get().done(py))
    }

    /// Called by the dispatcher when the app returned; says what to log, if anything.
    fn app_returned(slf: &Bound<'_, Self>) -> PyResult<Option<&'static str>> {
        Self::conclude(slf, false)
    }

    /// Called by the dispatcher when the app raised: 500 if nothing was sent, else cut the stream.
    fn app_failed(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::conclude(slf, true).map(|_| ())
    }

    #[getter]
    fn response_started(&self) -> bool {
        self.phase != Phase::NotStarted
    }
}

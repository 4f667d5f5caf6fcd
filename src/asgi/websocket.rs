//! WsCycle: one WebSocket's `receive` and `send` as the app sees them (ASGI WebSocket spec,
//! with the denial-response extension). Lives on the loop thread; talks to the tokio side only
//! through its WsExchange.

use std::sync::Arc;

use bytes::BytesMut;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::awaitable;
use super::message::{parse_ws_message, WsSend};
use super::ClientDisconnected;
use crate::bridge::{AppLoop, Outbound, ResponseHead, Verdict, WsExchange, WsMessage, WsState};
use crate::ws::CloseCode;

/// Where the WebSocket stands on the app's side.
enum Phase {
    /// Before the app answered the handshake.
    Connecting,
    /// The app started a denial response; its body is being collected.
    Denying {
        head: ResponseHead,
        body: BytesMut,
    },
    Open,
    /// The app sent `websocket.close` or finished its denial response.
    Closed,
}

/// What `receive` returns, decided under the exchange lock.
enum Event {
    Connect,
    Message(WsMessage),
    Disconnect(CloseCode, String),
}

/// The `receive`/`send` pair of one WebSocket.
#[pyclass(module = "fasterapi._fasterapi")]
pub struct WsCycle {
    exchange: Arc<WsExchange>,
    app_loop: Py<AppLoop>,
    /// `client - "WebSocket /path"`, the start of this socket's log lines.
    log_prefix: String,
    phase: Phase,
    connect_delivered: bool,
    accepted: bool,
    pending_receive: Option<Py<PyAny>>,
    pending_send: Option<Py<PyAny>>,
    /// The app coroutine has finished (returned or raised).
    pub finished: bool,
}

impl WsCycle {
    pub fn new(
        exchange: Arc<WsExchange>,
        app_loop: Py<AppLoop>,
        client: &str,
        path_with_query: &str,
    ) -> Self {
        Self {
            exchange,
            app_loop,
            log_prefix: format!("{client} - \"WebSocket {path_with_query}\""),
            phase: Phase::Connecting,
            connect_delivered: false,
            accepted: false,
            pending_receive: None,
            pending_send: None,
            finished: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.exchange.link.id
    }

    fn poll_receive(&mut self, state: &mut WsState) -> Option<Event> {
        if !self.connect_delivered {
            self.connect_delivered = true;
            return Some(Event::Connect);
        }
        if let Some(message) = self.exchange.take_inbound(state) {
            return Some(Event::Message(message));
        }
        if let Some((code, reason)) = &state.closed {
            return Some(Event::Disconnect(*code, reason.clone()));
        }
        state.loop_waiting = true;
        None
    }

    fn event<'py>(py: Python<'py>, event: Event) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        match event {
            Event::Connect => dict.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?,
            Event::Message(message) => {
                dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
                match message {
                    WsMessage::Text(text) => dict.set_item(intern!(py, "text"), PyString::new(py, &text))?,
                    WsMessage::Binary(data) => {
                        dict.set_item(intern!(py, "bytes"), PyBytes::new(py, &data))?
                    }
                }
            }
            Event::Disconnect(code, reason) => {
                dict.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
                dict.set_item(intern!(py, "code"), code.0)?;
                dict.set_item(intern!(py, "reason"), reason)?;
            }
        }
        Ok(dict)
    }

    /// Register this cycle to be woken by the next change on its exchange.
    fn park(slf: &Bound<'_, Self>) {
        let this = slf.borrow();
        this.app_loop.get().park_ws(this.id(), slf.clone().unbind());
    }

    /// Re-check pending awaitables after the tokio side changed the exchange.
    pub fn wake(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        if let Some(fut) = awaitable::take_live(py, &mut this.pending_receive)? {
            match this.poll_receive(&mut state) {
                Some(event) => awaitable::resolve(&fut, Self::event(py, event)?.into_any())?,
                None => this.pending_receive = Some(fut.unbind()),
            }
        }
        if let Some(fut) = awaitable::take_live(py, &mut this.pending_send)? {
            let gone = state.gone.then(disconnected);
            this.pending_send =
                awaitable::settle_send(fut, gone, state.outbound_bytes < exchange.high_water)?;
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

    /// Log one line about this socket on `fasterapi.error`, as uvicorn does.
    fn log(&self, py: Python<'_>, suffix: &str) -> PyResult<()> {
        self.app_loop.get().log_info(py, &format!("{} {suffix}", self.log_prefix))
    }

    /// End the socket for an app that is done; `failed` when it raised. Says what to log.
    fn conclude(slf: &Bound<'_, Self>, failed: bool) -> PyResult<Option<&'static str>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.finished = true;
        let app_loop = this.app_loop.get();
        app_loop.forget_task(this.id());
        app_loop.unpark(this.id());
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        let mut problem = None;
        match std::mem::replace(&mut this.phase, Phase::Closed) {
            Phase::Connecting => {
                problem = (!failed).then_some("ASGI callable returned without sending handshake.");
                exchange.decide(&mut state, Verdict::Fail);
            }
            Phase::Denying { head, body } => {
                let verdict =
                    if failed { Verdict::Fail } else { Verdict::Deny { head, body: body.freeze() } };
                exchange.decide(&mut state, verdict);
            }
            Phase::Open => {
                if !state.gone {
                    let code = if failed { CloseCode::INTERNAL_ERROR } else { CloseCode::NORMAL };
                    exchange.queue_outbound(&mut state, Outbound::Close(code, String::new()));
                }
            }
            Phase::Closed => {}
        }
        drop(state);
        if this.accepted {
            this.app_loop.get().log_info(py, "connection closed")?;
        }
        Ok(problem)
    }
}

fn disconnected() -> PyErr {
    ClientDisconnected::new_err("WebSocket connection is closed")
}

#[pymethods]
impl WsCycle {
    /// ASGI `receive`: `websocket.connect`, then messages, then `websocket.disconnect`.
    fn receive(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        awaitable::ensure_receive_free(py, &mut this.pending_receive)?;
        let exchange = this.exchange.clone();
        let event = this.poll_receive(&mut exchange.lock());
        let app_loop = this.app_loop.get();
        match event {
            Some(event) => app_loop.ready(py, Self::event(py, event)?.into_any()),
            None => {
                let fut = app_loop.create_future(py)?;
                this.pending_receive = Some(fut.clone_ref(py));
                drop(this);
                Self::park(slf);
                Ok(fut)
            }
        }
    }

    /// ASGI `send`: answer the handshake, send a message, or close.
    fn send(slf: &Bound<'_, Self>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let message = parse_ws_message(message)?;
        let exchange = this.exchange.clone();
        let mut state = exchange.lock();
        let kind = message.kind();
        match (&mut this.phase, message) {
            (Phase::Connecting, WsSend::Accept { subprotocol, headers }) => {
                if state.gone {
                    return Err(disconnected());
                }
                exchange.decide(&mut state, Verdict::Accept { subprotocol, headers });
                this.phase = Phase::Open;
                this.accepted = true;
                drop(state);
                this.log(py, "[accepted]")?;
                this.app_loop.get().log_info(py, "connection open")?;
            }
            (Phase::Connecting, WsSend::Close { .. }) => {
                exchange.decide(&mut state, Verdict::Reject);
                this.phase = Phase::Closed;
                drop(state);
                this.log(py, "403")?;
            }
            (Phase::Connecting, WsSend::ResponseStart(head)) => {
                let status = head.status.as_u16();
                this.phase = Phase::Denying { head, body: BytesMut::new() };
                drop(state);
                this.log(py, &status.to_string())?;
            }
            (Phase::Connecting, _) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or \
                     'websocket.http.response.start', but got '{kind}'."
                )));
            }
            (Phase::Denying { body, .. }, WsSend::ResponseBody { body: chunk, more_body }) => {
                body.extend_from_slice(&chunk);
                if !more_body {
                    let Phase::Denying { head, body } = std::mem::replace(&mut this.phase, Phase::Closed)
                    else {
                        unreachable!("matched Denying above")
                    };
                    exchange.decide(&mut state, Verdict::Deny { head, body: body.freeze() });
                }
            }
            (Phase::Denying { .. }, _) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'websocket.http.response.body', but got '{kind}'."
                )));
            }
            (Phase::Open, WsSend::Send(message)) => {
                if state.gone {
                    return Err(disconnected());
                }
                exchange.queue_outbound(&mut state, Outbound::Message(message));
                if state.outbound_bytes >= exchange.high_water {
                    state.loop_waiting = true;
                    drop(state);
                    let fut = this.app_loop.get().create_future(py)?;
                    this.pending_send = Some(fut.clone_ref(py));
                    drop(this);
                    Self::park(slf);
                    return Ok(fut);
                }
            }
            (Phase::Open, WsSend::Close { code, reason }) => {
                if !CloseCode(code).may_be_sent() {
                    return Err(PyValueError::new_err(format!("invalid WebSocket close code {code}")));
                }
                if !state.gone {
                    exchange.queue_outbound(&mut state, Outbound::Close(CloseCode(code), reason));
                }
                this.phase = Phase::Closed;
            }
            (Phase::Open, _) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
                )));
            }
            // A second close is harmless; anything else on a closed socket is a closed socket.
            (Phase::Closed, WsSend::Close { .. }) => {}
            (Phase::Closed, WsSend::Send(_)) => return Err(disconnected()),
            (Phase::Closed, _) => {
                return Err(PyRuntimeError::new_err(format!(
                    "Unexpected ASGI message '{kind}', after sending 'websocket.close' or response already completed."
                )));
            }
        }
        Ok(this.app_loop.get().done(py))
    }

    /// Called by the dispatcher when the app returned; says what to log, if anything.
    fn app_returned(slf: &Bound<'_, Self>) -> PyResult<Option<&'static str>> {
        Self::conclude(slf, false)
    }

    /// Called by the dispatcher when the app raised: 500 before the handshake, else close 1011.
    fn app_failed(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::conclude(slf, true).map(|_| ())
    }

    /// True once the app answered the handshake (an error after that is not an HTTP 500).
    #[getter]
    fn response_started(&self) -> bool {
        !matches!(self.phase, Phase::Connecting)
    }
}

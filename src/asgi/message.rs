//! Parses the messages an app passes to `send` into Rust values, refusing anything that would
//! put an invalid status or header on the wire. No I/O and no state lives here.

use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};

use crate::bridge::{ResponseHead, WsMessage};

/// An HTTP message the app sent, parsed.
pub enum HttpMessage {
    /// `http.response.start`; `trailers` when the app will send `http.response.trailers`.
    Start {
        head: ResponseHead,
        trailers: bool,
    },
    Body {
        body: Bytes,
        more_body: bool,
    },
    /// `http.response.pathsend`: the rest of the body is this file.
    PathSend(PathBuf),
    /// `http.response.trailers`.
    Trailers {
        headers: Vec<(HeaderName, HeaderValue)>,
        more_trailers: bool,
    },
}

impl HttpMessage {
    /// The message's `type`, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpMessage::Start { .. } => "http.response.start",
            HttpMessage::Body { .. } => "http.response.body",
            HttpMessage::PathSend(_) => "http.response.pathsend",
            HttpMessage::Trailers { .. } => "http.response.trailers",
        }
    }
}

/// Parse one `send` message of an HTTP cycle.
pub fn parse_http_message(message: &Bound<'_, PyAny>) -> PyResult<HttpMessage> {
    let py = message.py();
    let (message, kind) = message_dict(message)?;
    match &*kind {
        "http.response.start" => {
            let trailers = flag(message, intern!(py, "trailers"))?;
            Ok(HttpMessage::Start { head: parse_start(message)?, trailers })
        }
        "http.response.trailers" => {
            let more_trailers = flag(message, intern!(py, "more_trailers"))?;
            Ok(HttpMessage::Trailers { headers: headers_of(message)?, more_trailers })
        }
        "http.response.body" => {
            let (body, more_body) = body_of(message)?;
            Ok(HttpMessage::Body { body, more_body })
        }
        "http.response.pathsend" => {
            let path = message
                .get_item(intern!(py, "path"))?
                .ok_or_else(|| PyValueError::new_err("'http.response.pathsend' message has no 'path'"))?;
            Ok(HttpMessage::PathSend(path.extract::<PathBuf>()?))
        }
        other => Err(PyRuntimeError::new_err(format!(
            "Expected ASGI message 'http.response.start' or 'http.response.body', but got '{other}'."
        ))),
    }
}

/// A message the app sent on a WebSocket, parsed.
pub enum WsSend {
    Accept { subprotocol: Option<String>, headers: Vec<(HeaderName, HeaderValue)> },
    Send(WsMessage),
    Close { code: u16, reason: String },
    ResponseStart(ResponseHead),
    ResponseBody { body: Bytes, more_body: bool },
}

impl WsSend {
    /// The message's `type`, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WsSend::Accept { .. } => "websocket.accept",
            WsSend::Send(_) => "websocket.send",
            WsSend::Close { .. } => "websocket.close",
            WsSend::ResponseStart(_) => "websocket.http.response.start",
            WsSend::ResponseBody { .. } => "websocket.http.response.body",
        }
    }
}

fn message_dict<'a, 'py>(
    message: &'a Bound<'py, PyAny>,
) -> PyResult<(&'a Bound<'py, PyDict>, pyo3::pybacked::PyBackedStr)> {
    let py = message.py();
    let message =
        message.cast::<PyDict>().map_err(|_| PyTypeError::new_err("ASGI message must be a dict"))?;
    let kind = message
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyValueError::new_err("ASGI message has no 'type' key"))?;
    Ok((message, kind.extract::<pyo3::pybacked::PyBackedStr>()?))
}

/// An optional key that may also be present with the value `None`.
fn optional<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, pyo3::types::PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(message.get_item(key)?.filter(|value| !value.is_none()))
}

/// Parse one `send` message of a WebSocket.
pub fn parse_ws_message(message: &Bound<'_, PyAny>) -> PyResult<WsSend> {
    let py = message.py();
    let (message, kind) = message_dict(message)?;
    match &*kind {
        "websocket.send" => {
            if let Some(text) = optional(message, intern!(py, "text"))? {
                return Ok(WsSend::Send(WsMessage::Text(text.extract::<String>()?)));
            }
            match optional(message, intern!(py, "bytes"))? {
                Some(data) => Ok(WsSend::Send(WsMessage::Binary(bytes_of(&data, "bytes")?))),
                None => Err(PyValueError::new_err("'websocket.send' message needs 'bytes' or 'text'")),
            }
        }
        "websocket.accept" => {
            let subprotocol =
                optional(message, intern!(py, "subprotocol"))?.map(|s| s.extract()).transpose()?;
            Ok(WsSend::Accept { subprotocol, headers: headers_of(message)? })
        }
        "websocket.close" => {
            let code = optional(message, intern!(py, "code"))?
                .map(|c| c.extract::<u16>())
                .transpose()?
                .unwrap_or(1000);
            let reason = optional(message, intern!(py, "reason"))?
                .map(|r| r.extract())
                .transpose()?
                .unwrap_or_default();
            Ok(WsSend::Close { code, reason })
        }
        "websocket.http.response.start" => Ok(WsSend::ResponseStart(parse_start(message)?)),
        "websocket.http.response.body" => {
            let (body, more_body) = body_of(message)?;
            Ok(WsSend::ResponseBody { body, more_body })
        }
        other => Err(PyRuntimeError::new_err(format!("Unexpected ASGI message '{other}' on a WebSocket."))),
    }
}

/// `body` and `more_body` of a body message, with their defaults.
fn body_of(message: &Bound<'_, PyDict>) -> PyResult<(Bytes, bool)> {
    let py = message.py();
    let body = match message.get_item(intern!(py, "body"))? {
        Some(body) => bytes_of(&body, "body")?,
        None => Bytes::new(),
    };
    Ok((body, flag(message, intern!(py, "more_body"))?))
}

/// A boolean key, false when absent.
fn flag(message: &Bound<'_, PyDict>, key: &Bound<'_, pyo3::types::PyString>) -> PyResult<bool> {
    match message.get_item(key)? {
        Some(value) => value.is_truthy(),
        None => Ok(false),
    }
}

/// The `headers` of a message: a list of (name, value) byte pairs, each validated.
fn headers_of(message: &Bound<'_, PyDict>) -> PyResult<Vec<(HeaderName, HeaderValue)>> {
    let mut headers = Vec::new();
    if let Some(raw) = message.get_item(intern!(message.py(), "headers"))? {
        for pair in raw.try_iter()? {
            let pair = pair?;
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair
                .extract()
                .map_err(|_| PyTypeError::new_err("each response header must be a (name, value) pair"))?;
            headers.push(with_bytes(&name, "header name", |name| {
                with_bytes(&value, "header value", |value| header_pair(name, value))
            })?);
        }
    }
    Ok(headers)
}

fn parse_start(message: &Bound<'_, PyDict>) -> PyResult<ResponseHead> {
    let py = message.py();
    let status = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err("'http.response.start' message has no 'status'"))?
        .extract::<u16>()
        .map_err(|_| PyTypeError::new_err("response status must be an int between 100 and 999"))?;
    let status = StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("invalid response status {status}")))?;
    Ok(ResponseHead { status, headers: headers_of(message)? })
}

/// Validate one response header; CR, LF, NUL and other invalid bytes are refused, never written.
pub fn header_pair(name: &[u8], value: &[u8]) -> PyResult<(HeaderName, HeaderValue)> {
    let header_name = HeaderName::from_bytes(name).map_err(|_| {
        PyValueError::new_err(format!("invalid response header name {:?}", String::from_utf8_lossy(name)))
    })?;
    let header_value = HeaderValue::from_bytes(value).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid value for response header {:?}: {:?}",
            header_name.as_str(),
            String::from_utf8_lossy(value)
        ))
    })?;
    Ok((header_name, header_value))
}

/// Bodies at least this long are not copied out of an immutable `bytes` object: the `Bytes`
/// keeps a reference to it instead. Shorter ones are copied, which is cheaper than the reference
/// (dropping it away from the GIL defers a decref to pyo3's pool).
const BORROW_MIN: usize = 16 * 1024;

/// A body as `Bytes`: large `bytes` objects are shared (see BORROW_MIN), the rest copied once.
fn bytes_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        if b.as_bytes().len() >= BORROW_MIN {
            return Ok(Bytes::from_owner(obj.extract::<pyo3::pybacked::PyBackedBytes>()?));
        }
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    with_bytes(obj, what, |b| Ok(Bytes::copy_from_slice(b)))
}

/// Call `use_` with the contents of a `bytes`, `bytearray` or `memoryview` (`what` names it in
/// the error otherwise); `bytes` are read in place.
fn with_bytes<R>(obj: &Bound<'_, PyAny>, what: &str, use_: impl FnOnce(&[u8]) -> PyResult<R>) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return use_(b.as_bytes());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return use_(&b.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0(intern!(obj.py(), "tobytes"))?;
        return use_(b.cast::<PyBytes>()?.as_bytes());
    }
    Err(PyTypeError::new_err(format!("{what} must be bytes, got {}", obj.get_type().name()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_is_refused() {
        Python::initialize();
        assert!(header_pair(b"x-a", b"ok\r\nset-cookie: evil").is_err());
        assert!(header_pair(b"x a", b"ok").is_err());
        assert!(header_pair(b"x-a\n", b"ok").is_err());
        assert!(header_pair(b"x-a", b"nul\0").is_err());
        let (name, value) = header_pair(b"Content-Type", b"text/plain").unwrap();
        assert_eq!(name.as_str(), "content-type");
        assert_eq!(value.as_bytes(), b"text/plain");
    }
}

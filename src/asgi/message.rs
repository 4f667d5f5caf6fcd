//! Parses the messages an app passes to `send` into Rust values, refusing anything that would
//! put an invalid status or header on the wire. No I/O and no state lives here.

use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};

use crate::bridge::ResponseHead;

/// An HTTP message the app sent, parsed.
pub enum HttpMessage {
    Start(ResponseHead),
    Body {
        body: Bytes,
        more_body: bool,
    },
    /// `http.response.pathsend`: the rest of the body is this file.
    PathSend(PathBuf),
}

/// Parse one `send` message of an HTTP cycle.
pub fn parse_http_message(message: &Bound<'_, PyAny>) -> PyResult<HttpMessage> {
    let py = message.py();
    let message =
        message.cast::<PyDict>().map_err(|_| PyTypeError::new_err("ASGI message must be a dict"))?;
    let kind = message
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyValueError::new_err("ASGI message has no 'type' key"))?;
    let kind = kind.extract::<pyo3::pybacked::PyBackedStr>()?;
    match &*kind {
        "http.response.start" => Ok(HttpMessage::Start(parse_start(message)?)),
        "http.response.body" => {
            let body = match message.get_item(intern!(py, "body"))? {
                Some(body) => bytes_of(&body, "body")?,
                None => Bytes::new(),
            };
            let more_body = match message.get_item(intern!(py, "more_body"))? {
                Some(more) => more.is_truthy()?,
                None => false,
            };
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

fn parse_start(message: &Bound<'_, PyDict>) -> PyResult<ResponseHead> {
    let py = message.py();
    let status = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err("'http.response.start' message has no 'status'"))?
        .extract::<u16>()
        .map_err(|_| PyTypeError::new_err("response status must be an int between 100 and 999"))?;
    let status = StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("invalid response status {status}")))?;
    let mut headers = Vec::new();
    if let Some(raw) = message.get_item(intern!(py, "headers"))? {
        for pair in raw.try_iter()? {
            let pair = pair?;
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair
                .extract()
                .map_err(|_| PyTypeError::new_err("each response header must be a (name, value) pair"))?;
            headers.push(header_pair(&bytes_of(&name, "header name")?, &bytes_of(&value, "header value")?)?);
        }
    }
    Ok(ResponseHead { status, headers })
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

/// Copy a bytes-like object (bytes, bytearray, memoryview) into `Bytes`.
fn bytes_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0(intern!(obj.py(), "tobytes"))?;
        return Ok(Bytes::copy_from_slice(b.cast::<PyBytes>()?.as_bytes()));
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

//! Builds the ASGI HTTP and WebSocket `scope` dicts from a RequestHead, with interned keys.
//! Runs on the loop thread only; knows nothing about sockets or tasks.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::{Peer, RequestHead};
use crate::tls::TlsInfo;

/// The HTTP and WebSocket spec version we implement: 2.4 adds `send` raising `OSError` after a
/// disconnect.
pub const SPEC_VERSION: &str = "2.4";

fn address<'py>(py: Python<'py>, peer: Option<&Peer>) -> PyResult<Bound<'py, PyAny>> {
    match peer {
        Some(peer) => Ok(PyTuple::new(
            py,
            [PyString::new(py, &peer.host).into_any(), peer.port.into_pyobject(py)?.into_any()],
        )?
        .into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// The keys every scope has; the callers add their type's own. `state` is the lifespan state,
/// copied shallowly.
fn scope<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyString>,
    scheme: &str,
    head: &RequestHead,
    root_path: &Bound<'py, PyString>,
    state: Option<&Bound<'py, PyDict>>,
    extensions: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = PyDict::new(py);
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, SPEC_VERSION))?;
    scope.set_item(intern!(py, "type"), kind)?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(intern!(py, "http_version"), PyString::intern(py, head.version.as_str()))?;
    scope.set_item(intern!(py, "scheme"), PyString::intern(py, scheme))?;

    let root = root_path.to_str()?;
    let path = head.decoded_path();
    if root.is_empty() {
        scope.set_item(intern!(py, "path"), path)?;
        scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, &head.raw_path))?;
    } else {
        scope.set_item(intern!(py, "path"), format!("{root}{path}"))?;
        let mut raw = Vec::with_capacity(root.len() + head.raw_path.len());
        raw.extend_from_slice(root.as_bytes());
        raw.extend_from_slice(&head.raw_path);
        scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, &raw))?;
    }
    scope.set_item(intern!(py, "query_string"), PyBytes::new(py, &head.query))?;
    scope.set_item(intern!(py, "root_path"), root_path)?;

    let headers = PyList::empty(py);
    for (name, value) in &head.headers {
        let pair = PyTuple::new(
            py,
            [PyBytes::new(py, name.as_str().as_bytes()), PyBytes::new(py, value.as_bytes())],
        )?;
        headers.append(pair)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    scope.set_item(intern!(py, "client"), address(py, head.client.as_ref())?)?;
    scope.set_item(intern!(py, "server"), address(py, head.server.as_ref())?)?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    if let Some(tls) = &head.tls {
        extensions.set_item(intern!(py, "tls"), tls_extension(py, tls)?)?;
    }
    scope.set_item(intern!(py, "extensions"), extensions)?;
    Ok(scope)
}

/// The `scope` for one HTTP request.
pub fn http_scope<'py>(
    py: Python<'py>,
    head: &RequestHead,
    root_path: &Bound<'py, PyString>,
    state: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let extensions = PyDict::new(py);
    extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
    if head.accepts_trailers() {
        extensions.set_item(intern!(py, "http.response.trailers"), PyDict::new(py))?;
    }
    let scope = scope(py, intern!(py, "http"), head.scheme, head, root_path, state, extensions)?;
    scope.set_item(intern!(py, "method"), PyString::intern(py, head.method.as_str()))?;
    Ok(scope)
}

/// The `scope` for one WebSocket: `ws`/`wss`, the offered subprotocols, and the denial-response
/// extension.
pub fn websocket_scope<'py>(
    py: Python<'py>,
    head: &RequestHead,
    subprotocols: &[String],
    root_path: &Bound<'py, PyString>,
    state: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let extensions = PyDict::new(py);
    extensions.set_item(intern!(py, "websocket.http.response"), PyDict::new(py))?;
    let scheme = if matches!(head.scheme, "https" | "wss") { "wss" } else { "ws" };
    let scope = scope(py, intern!(py, "websocket"), scheme, head, root_path, state, extensions)?;
    scope.set_item(intern!(py, "subprotocols"), PyList::new(py, subprotocols)?)?;
    Ok(scope)
}

/// The ASGI `tls` extension: certificates as PEM text, version and cipher suite as IANA numbers.
fn tls_extension<'py>(py: Python<'py>, tls: &TlsInfo) -> PyResult<Bound<'py, PyDict>> {
    let ext = PyDict::new(py);
    ext.set_item("server_cert", &*tls.server_cert)?;
    ext.set_item("client_cert_chain", PyList::new(py, &tls.client_cert_chain)?)?;
    ext.set_item("client_cert_name", tls.client_cert_name.as_deref())?;
    // rustls ends the handshake when a required certificate is bad: one that got here is valid.
    ext.set_item("client_cert_error", py.None())?;
    ext.set_item("tls_version", tls.tls_version)?;
    ext.set_item("cipher_suite", tls.cipher_suite)?;
    Ok(ext)
}

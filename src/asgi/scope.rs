//! Builds the ASGI HTTP and WebSocket `scope` dicts from a RequestHead, from per-loop templates
//! with interned keys.
//! Runs on the loop thread only; knows nothing about sockets or tasks.

use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::{Peer, RequestHead};
use crate::tls::TlsInfo;

/// The HTTP and WebSocket spec version we implement: 2.4 adds `send` raising `OSError` after a
/// disconnect.
pub const SPEC_VERSION: &str = "2.4";

/// `(host, port)`, or `None` without a peer.
fn address<'py>(
    py: Python<'py>,
    peer: Option<&Peer>,
    host: impl FnOnce(&Peer) -> Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    match peer {
        Some(peer) => {
            Ok(PyTuple::new(py, [host(peer).into_any(), peer.port.into_pyobject(py)?.into_any()])?.into_any())
        }
        None => Ok(py.None().into_bound(py)),
    }
}

/// The scope's fixed-vocabulary strings (HTTP versions, schemes, methods) as interned Python
/// strings made once per process; anything else (an unusual method) as a new string.
fn known_str<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    macro_rules! known {
        ($($lit:literal),*) => {
            match s {
                $($lit => intern!(py, $lit).clone(),)*
                _ => PyString::new(py, s),
            }
        };
    }
    known!(
        "1.0", "1.1", "2", "http", "https", "ws", "wss", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
        "PATCH", "CONNECT", "TRACE"
    )
}

/// Builds the scopes of one app loop. Each scope starts as a copy of a template that already
/// holds every key (and the values that never change: `type`, `root_path`), so filling it in
/// replaces values in place instead of growing a new dict key by key.
pub struct ScopeBuilder {
    /// The last server address and its tuple: the requests of a listener all share one.
    last_server: Mutex<Option<(Peer, Py<PyAny>)>>,
    /// The last client host and its string: behind a proxy, or on one machine, they repeat.
    last_client_host: Mutex<Option<(Arc<str>, Py<PyString>)>>,
    http: Py<PyDict>,
    websocket: Py<PyDict>,
    /// `scope["asgi"]`, copied for each scope.
    asgi: Py<PyDict>,
    /// `scope["extensions"]` of an HTTP request, without and with `http.response.trailers`, and
    /// of a WebSocket; copied for each scope (the inner empty dicts are shared: they only say
    /// that the extension is there).
    http_extensions: Py<PyDict>,
    http_extensions_trailers: Py<PyDict>,
    websocket_extensions: Py<PyDict>,
    /// `--root-path`, prefixed to `path` and `raw_path` (the templates hold it as `root_path`).
    root_path: String,
    /// The lifespan state, copied shallowly into each scope.
    state: Option<Py<PyDict>>,
}

impl ScopeBuilder {
    pub fn new(py: Python<'_>, root_path: &str, state: Option<Py<PyDict>>) -> PyResult<Self> {
        let root = PyString::new(py, root_path);
        let template = |kind: &Bound<'_, PyString>, own_key: &Bound<'_, PyString>| -> PyResult<Py<PyDict>> {
            let dict = PyDict::new(py);
            dict.set_item(intern!(py, "type"), kind)?;
            for key in [
                intern!(py, "asgi"),
                intern!(py, "http_version"),
                intern!(py, "scheme"),
                intern!(py, "path"),
                intern!(py, "raw_path"),
                intern!(py, "query_string"),
                intern!(py, "headers"),
                intern!(py, "client"),
                intern!(py, "server"),
                intern!(py, "extensions"),
                own_key,
            ] {
                dict.set_item(key, py.None())?;
            }
            dict.set_item(intern!(py, "root_path"), &root)?;
            if state.is_some() {
                dict.set_item(intern!(py, "state"), py.None())?;
            }
            Ok(dict.unbind())
        };
        let asgi = PyDict::new(py);
        asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
        asgi.set_item(intern!(py, "spec_version"), intern!(py, SPEC_VERSION))?;
        let extensions = |names: &[&Bound<'_, PyString>]| -> PyResult<Py<PyDict>> {
            let dict = PyDict::new(py);
            for name in names {
                dict.set_item(name, PyDict::new(py))?;
            }
            Ok(dict.unbind())
        };
        let pathsend = intern!(py, "http.response.pathsend");
        Ok(Self {
            last_server: Mutex::new(None),
            last_client_host: Mutex::new(None),
            http: template(intern!(py, "http"), intern!(py, "method"))?,
            websocket: template(intern!(py, "websocket"), intern!(py, "subprotocols"))?,
            asgi: asgi.unbind(),
            http_extensions: extensions(&[pathsend])?,
            http_extensions_trailers: extensions(&[pathsend, intern!(py, "http.response.trailers")])?,
            websocket_extensions: extensions(&[intern!(py, "websocket.http.response")])?,
            root_path: root_path.to_owned(),
            state,
        })
    }

    /// The `scope` for one HTTP request.
    pub fn http<'py>(&self, py: Python<'py>, head: &RequestHead) -> PyResult<Bound<'py, PyDict>> {
        let extensions =
            if head.accepts_trailers() { &self.http_extensions_trailers } else { &self.http_extensions };
        let scope = self.fill(py, &self.http, head.scheme, head, extensions.bind(py).copy()?)?;
        scope.set_item(intern!(py, "method"), known_str(py, head.method.as_str()))?;
        Ok(scope)
    }

    /// The `scope` for one WebSocket: `ws`/`wss`, the offered subprotocols, and the
    /// denial-response extension.
    pub fn websocket<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        subprotocols: &[String],
    ) -> PyResult<Bound<'py, PyDict>> {
        let scheme = if matches!(head.scheme, "https" | "wss") { "wss" } else { "ws" };
        let extensions = self.websocket_extensions.bind(py).copy()?;
        let scope = self.fill(py, &self.websocket, scheme, head, extensions)?;
        scope.set_item(intern!(py, "subprotocols"), PyList::new(py, subprotocols)?)?;
        Ok(scope)
    }

    /// The scope's `server`, reused while it stays the same.
    fn server_address<'py>(&self, py: Python<'py>, peer: Option<&Peer>) -> PyResult<Bound<'py, PyAny>> {
        let Some(peer) = peer else {
            return Ok(py.None().into_bound(py));
        };
        let mut last = self.last_server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, tuple)) = &*last {
            if cached == peer {
                return Ok(tuple.bind(py).clone());
            }
        }
        let tuple = address(py, Some(peer), |peer| PyString::new(py, &peer.host))?;
        *last = Some((peer.clone(), tuple.clone().unbind()));
        Ok(tuple)
    }

    /// The scope's `client`, its host string reused while it stays the same.
    fn client_address<'py>(&self, py: Python<'py>, peer: Option<&Peer>) -> PyResult<Bound<'py, PyAny>> {
        address(py, peer, |peer| {
            let mut last = self.last_client_host.lock().unwrap_or_else(|e| e.into_inner());
            match &*last {
                Some((host, string)) if **host == *peer.host => string.bind(py).clone(),
                _ => {
                    let string = PyString::new(py, &peer.host);
                    *last = Some((peer.host.clone(), string.clone().unbind()));
                    string
                }
            }
        })
    }

    /// A copy of `template` with the keys every scope has filled in from `head`.
    fn fill<'py>(
        &self,
        py: Python<'py>,
        template: &Py<PyDict>,
        scheme: &str,
        head: &RequestHead,
        extensions: Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let scope = template.bind(py).copy()?;
        scope.set_item(intern!(py, "asgi"), self.asgi.bind(py).copy()?)?;
        scope.set_item(intern!(py, "http_version"), known_str(py, head.version.as_str()))?;
        scope.set_item(intern!(py, "scheme"), known_str(py, scheme))?;

        let root = &self.root_path;
        let path = head.decoded_path();
        if root.is_empty() {
            scope.set_item(intern!(py, "path"), &*path)?;
            scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, head.raw_path()))?;
        } else {
            scope.set_item(intern!(py, "path"), format!("{root}{path}"))?;
            let mut raw = Vec::with_capacity(root.len() + head.raw_path().len());
            raw.extend_from_slice(root.as_bytes());
            raw.extend_from_slice(head.raw_path());
            scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, &raw))?;
        }
        scope.set_item(intern!(py, "query_string"), PyBytes::new(py, head.query()))?;

        let headers = head
            .headers()
            .map(|(name, value)| (PyBytes::new(py, name.as_str().as_bytes()), PyBytes::new(py, value)));
        let headers = PyList::new(py, headers)?;
        scope.set_item(intern!(py, "headers"), headers)?;
        scope.set_item(intern!(py, "client"), self.client_address(py, head.client.as_ref())?)?;
        scope.set_item(intern!(py, "server"), self.server_address(py, head.server.as_ref())?)?;
        if let Some(state) = &self.state {
            scope.set_item(intern!(py, "state"), state.bind(py).copy()?)?;
        }
        if let Some(tls) = &head.tls {
            extensions.set_item(intern!(py, "tls"), tls_extension(py, tls)?)?;
        }
        scope.set_item(intern!(py, "extensions"), extensions)?;
        Ok(scope)
    }
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

//! RequestHead: the GIL-free description of one request that crosses from tokio to an app loop.
//! It is built from hyper's request parts; turning it into a Python scope lives in `asgi::scope`.
//!
//! The head owns its bytes. hyper's parsed header values and target are slices of the
//! connection's read buffer; while any of them lives, hyper cannot reuse that buffer and
//! allocates a fresh 8 KiB one for the connection's next read. So the head copies the target and
//! every header value into one buffer of its own (one allocation, no reference counts), and the
//! service builds it as soon as hyper hands over the request, before hyper reads again.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use http::request::Parts;
use http::{header, HeaderName, Method, Version};

use super::ConnectionInfo;
use crate::tls::TlsInfo;

/// Which HTTP version carried the request, as the ASGI scope spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}

impl HttpVersion {
    /// The scope's `http_version` string.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }

    fn from_http(version: Version) -> Self {
        match version {
            Version::HTTP_10 | Version::HTTP_09 => HttpVersion::Http10,
            Version::HTTP_2 | Version::HTTP_3 => HttpVersion::Http2,
            _ => HttpVersion::Http11,
        }
    }
}

/// Everything the scope needs about a request, owned and `Send`.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub version: HttpVersion,
    /// The raw path, the query and every header value, back to back; the spans index into it.
    bytes: Vec<u8>,
    path: Range<usize>,
    query: Range<usize>,
    headers: Vec<(HeaderName, Range<usize>)>,
    pub client: Option<Peer>,
    pub server: Option<Peer>,
    pub scheme: &'static str,
    /// The TLS session, for the scope's `tls` extension.
    pub tls: Option<Arc<TlsInfo>>,
}

/// One end of a connection as the scope shows it: `(host, port)`, or `(path, None)` for a Unix
/// socket. Hosts are shared, since every request on a connection repeats them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub host: Arc<str>,
    pub port: Option<u16>,
}

impl Peer {
    pub fn from_addr(addr: SocketAddr) -> Self {
        Peer { host: addr.ip().to_string().into(), port: Some(addr.port()) }
    }

    pub fn unix(path: &str) -> Self {
        Peer { host: path.into(), port: None }
    }

    /// `host:port` as the access log shows a client.
    pub fn display(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl RequestHead {
    /// Build the head of a request received on a connection between `client` and `server`.
    pub fn new(parts: &Parts, conn: &ConnectionInfo) -> Self {
        let version = HttpVersion::from_http(parts.version);
        let (path, query) = split_target(&parts.uri);
        let authority = match version {
            HttpVersion::Http2 if !parts.headers.contains_key(header::HOST) => parts.uri.authority(),
            _ => None,
        };
        let size = path.len()
            + query.len()
            + authority.map_or(0, |a| a.as_str().len())
            + parts.headers.values().map(|v| v.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(size);
        let path = append(&mut bytes, path.as_bytes());
        let query = append(&mut bytes, query.as_bytes());
        let mut headers = Vec::with_capacity(parts.headers.len() + 1);
        if let Some(authority) = authority {
            headers.push((header::HOST, append(&mut bytes, authority.as_str().as_bytes())));
        }
        headers.extend(parts.headers.iter().map(|(n, v)| (n.clone(), append(&mut bytes, v.as_bytes()))));
        RequestHead {
            method: parts.method.clone(),
            version,
            bytes,
            path,
            query,
            headers,
            client: conn.client.clone(),
            server: conn.server.clone(),
            scheme: conn.scheme,
            tls: conn.tls.clone(),
        }
    }

    /// The request target's path exactly as sent (still percent-encoded).
    pub fn raw_path(&self) -> &[u8] {
        &self.bytes[self.path.clone()]
    }

    /// The query string without the leading `?`.
    pub fn query(&self) -> &[u8] {
        &self.bytes[self.query.clone()]
    }

    /// Header names (lower case) and values in arrival order, duplicates kept; on HTTP/2 the
    /// `:authority` pseudo-header comes first as `host`.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&HeaderName, &[u8])> {
        self.headers.iter().map(|(name, span)| (name, &self.bytes[span.clone()]))
    }

    /// Every value of header `name`, in order, as text (values that are not text are skipped).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers().filter(|(n, _)| *n == name).filter_map(|(_, v)| visible_ascii(v)).collect()
    }

    /// Rewrite client, scheme and host from the proxy headers of a trusted peer.
    pub fn apply_forwarded(&mut self, trusted: &super::proxy::TrustedHosts) {
        // Most requests, even from a proxy, carry none: one pass to find that out.
        if !self.headers.iter().any(|(name, _)| super::proxy::is_proxy_header(name.as_str())) {
            return;
        }
        let forwarded = super::proxy::read_forwarded(trusted, |name| self.header_values(name));
        if let Some(client) = forwarded.client {
            self.client = Some(Peer { host: client.into(), port: Some(0) });
        }
        if let Some(scheme) = forwarded.scheme {
            self.scheme = scheme;
        }
        if let Some(host) = forwarded.host {
            let span = append(&mut self.bytes, host.as_bytes());
            match self.headers.iter_mut().find(|(n, _)| n == header::HOST) {
                Some((_, value)) => *value = span,
                None => self.headers.push((header::HOST, span)),
            }
        }
    }

    /// True when the client asked for `100 Continue` before it sends the body.
    pub fn expects_continue(&self) -> bool {
        self.headers().any(|(n, v)| n == header::EXPECT && v.eq_ignore_ascii_case(b"100-continue"))
    }

    /// The client sent `TE: trailers`: it accepts `http.response.trailers`.
    pub fn accepts_trailers(&self) -> bool {
        self.headers().any(|(n, v)| {
            n == header::TE
                && visible_ascii(v)
                    .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
        })
    }

    /// The path percent-decoded as UTF-8 (invalid sequences replaced), as the scope's `path`;
    /// borrowed when there is nothing to decode.
    pub fn decoded_path(&self) -> Cow<'_, str> {
        percent_encoding::percent_decode(self.raw_path()).decode_utf8_lossy()
    }

    /// `path?query` as the access log shows it.
    pub fn path_with_query(&self) -> String {
        let mut line = String::from_utf8_lossy(self.raw_path()).into_owned();
        if !self.query().is_empty() {
            line.push('?');
            line.push_str(&String::from_utf8_lossy(self.query()));
        }
        line
    }
}

/// A request target's raw path and query (without `?`). `OPTIONS *` keeps `*`; an absolute-form
/// target (`GET http://host/p`) yields its path.
fn split_target(uri: &http::Uri) -> (&str, &str) {
    let Some(pq) = uri.path_and_query() else {
        return ("/", "");
    };
    let path = pq.path();
    (if path.is_empty() { "/" } else { path }, pq.query().unwrap_or(""))
}

/// A header value as text, if it is all visible ASCII (what `HeaderValue::to_str` accepts).
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value.is_ascii().then(|| std::str::from_utf8(value).ok()).flatten()
}

/// Append `piece` to `bytes`; where it now lies.
fn append(bytes: &mut Vec<u8>, piece: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(piece);
    start..bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_for(req: http::Request<()>) -> RequestHead {
        let (parts, _) = req.into_parts();
        RequestHead::new(&parts, &ConnectionInfo::unix("/tmp/test.sock", None))
    }

    #[test]
    fn path_is_percent_decoded_as_utf8() {
        let head = head_for(http::Request::get("/caf%C3%A9/a%20b?x=%20").body(()).unwrap());
        assert_eq!(head.decoded_path(), "/café/a b");
        assert_eq!(head.raw_path(), b"/caf%C3%A9/a%20b");
        assert_eq!(head.query(), b"x=%20");
        assert_eq!(head.path_with_query(), "/caf%C3%A9/a%20b?x=%20");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let head = head_for(http::Request::get("/%FF").body(()).unwrap());
        assert_eq!(head.decoded_path(), "/\u{FFFD}");
    }

    #[test]
    fn http2_authority_becomes_host_first() {
        let req = http::Request::get("http://example.com:8080/x")
            .version(Version::HTTP_2)
            .header("x-a", "1")
            .header("x-a", "2")
            .body(())
            .unwrap();
        let head = head_for(req);
        let names: Vec<_> = head.headers().map(|(n, v)| (n.as_str(), visible_ascii(v).unwrap())).collect();
        assert_eq!(names, vec![("host", "example.com:8080"), ("x-a", "1"), ("x-a", "2")]);
        assert_eq!(head.version.as_str(), "2");
    }

    #[test]
    fn expect_continue_is_detected_case_insensitively() {
        let head = head_for(http::Request::post("/").header("expect", "100-Continue").body(()).unwrap());
        assert!(head.expects_continue());
    }
}

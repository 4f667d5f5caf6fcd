//! The opening handshake: recognising a WebSocket request (HTTP/1.1 `Upgrade: websocket`, or
//! HTTP/2 extended CONNECT with `:protocol websocket`), checking it, and the response headers
//! that accept it once the app said so.

use base64::Engine as _;
use http::request::Parts;
use http::{header, HeaderName, HeaderValue, Method, StatusCode, Version};
use hyper::upgrade::OnUpgrade;

use super::{DeflateParams, WsSettings};

/// RFC 6455 section 1.3: appended to the client's key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid WebSocket request, ready for the app to accept or deny.
#[derive(Debug)]
pub struct Handshake {
    /// HTTP/1.1 only: the `Sec-WebSocket-Accept` value; HTTP/2 has no key.
    accept_key: Option<HeaderValue>,
    /// `Sec-WebSocket-Protocol` offers, in the client's order.
    pub subprotocols: Vec<String>,
    /// The compression the server will use, if the client offered any it can honour.
    pub deflate: Option<DeflateParams>,
}

/// Why a WebSocket request was refused before the app saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// 400 with this reason as the body.
    BadRequest(&'static str),
    /// 426: the client speaks a WebSocket version other than 13.
    UnsupportedVersion,
}

impl HandshakeError {
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
        }
    }

    pub fn body(&self) -> &'static str {
        match self {
            HandshakeError::BadRequest(reason) => reason,
            HandshakeError::UnsupportedVersion => "Unsupported WebSocket version",
        }
    }
}

fn has_token(parts: &Parts, name: HeaderName, token: &str) -> bool {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

impl Handshake {
    /// True when the request asks for a WebSocket (valid or not); anything else is plain HTTP.
    pub fn is_requested(parts: &Parts) -> bool {
        if parts.version == Version::HTTP_2 {
            parts.method == Method::CONNECT
                && parts
                    .extensions
                    .get::<hyper::ext::Protocol>()
                    .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
        } else if parts.version == Version::HTTP_11 && parts.extensions.get::<OnUpgrade>().is_none() {
            // hyper gives every HTTP/1.1 request with an `upgrade` header an `OnUpgrade`: the
            // common request has neither, and needs no header lookup to say so.
            false
        } else {
            has_token(parts, header::UPGRADE, "websocket")
        }
    }

    /// Check a request that [`is_requested`](Self::is_requested) and work out the response.
    pub fn check(parts: &Parts, settings: &WsSettings) -> Result<Self, HandshakeError> {
        let accept_key = if parts.version == Version::HTTP_2 {
            None
        } else {
            if parts.method != Method::GET {
                return Err(HandshakeError::BadRequest("WebSocket upgrade needs a GET request"));
            }
            if parts.version != Version::HTTP_11 || !has_token(parts, header::CONNECTION, "upgrade") {
                return Err(HandshakeError::BadRequest("Missing Connection: Upgrade"));
            }
            let key = parts
                .headers
                .get(header::SEC_WEBSOCKET_KEY)
                .filter(|key| is_valid_key(key.as_bytes()))
                .ok_or(HandshakeError::BadRequest("Missing or invalid Sec-WebSocket-Key"))?;
            Some(accept_key(key.as_bytes()))
        };
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let subprotocols = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let deflate = settings
            .per_message_deflate
            .then(|| {
                let offers = parts.headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS);
                DeflateParams::negotiate(offers.iter().filter_map(|v| v.to_str().ok()))
            })
            .flatten();
        Ok(Handshake { accept_key, subprotocols, deflate })
    }

    /// The status and headers that complete the handshake: 101 on HTTP/1.1, 200 on HTTP/2.
    pub fn accept_response(&self) -> (StatusCode, Vec<(HeaderName, HeaderValue)>) {
        let mut headers = Vec::with_capacity(4);
        let status = match &self.accept_key {
            Some(key) => {
                headers.push((header::UPGRADE, HeaderValue::from_static("websocket")));
                headers.push((header::CONNECTION, HeaderValue::from_static("Upgrade")));
                headers.push((header::SEC_WEBSOCKET_ACCEPT, key.clone()));
                StatusCode::SWITCHING_PROTOCOLS
            }
            None => StatusCode::OK,
        };
        if let Some(deflate) = &self.deflate {
            let value = HeaderValue::from_str(&deflate.response_header()).expect("ASCII header value");
            headers.push((header::SEC_WEBSOCKET_EXTENSIONS, value));
        }
        (status, headers)
    }
}

/// A key is the base64 of 16 bytes (RFC 6455 section 4.1).
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24 && base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|raw| raw.len() == 16)
}

/// `base64(SHA-1(key + GUID))`.
fn accept_key(key: &[u8]) -> HeaderValue {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(ACCEPT_GUID);
    let encoded = base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's parts as hyper hands them over: with an `OnUpgrade` if it is HTTP/1.1 and
    /// has an `upgrade` header.
    fn parts(build: http::request::Builder) -> Parts {
        let mut request = build.body(()).unwrap();
        if request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE) {
            let on_upgrade = hyper::upgrade::on(&mut request);
            request.extensions_mut().insert(on_upgrade);
        }
        request.into_parts().0
    }

    /// An HTTP/1.1 upgrade request with this key and version.
    fn upgrade_with(key: &str, version: &str) -> http::request::Builder {
        http::Request::get("/ws")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-key", key)
            .header("sec-websocket-version", version)
    }

    fn upgrade() -> http::request::Builder {
        upgrade_with("dGhlIHNhbXBsZSBub25jZQ==", "13")
    }

    #[test]
    fn rfc_6455_example_key() {
        let parts = parts(upgrade().header("sec-websocket-protocol", "chat, superchat"));
        assert!(Handshake::is_requested(&parts));
        let handshake = Handshake::check(&parts, &WsSettings::default()).unwrap();
        assert_eq!(handshake.subprotocols, ["chat", "superchat"]);
        let (status, headers) = handshake.accept_response();
        assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
        assert!(headers.contains(&(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        )));
    }

    #[test]
    fn deflate_only_when_offered_and_enabled() {
        let offered =
            parts(upgrade().header("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"));
        assert!(Handshake::check(&offered, &WsSettings::default()).unwrap().deflate.is_some());
        let off = WsSettings { per_message_deflate: false, ..Default::default() };
        assert!(Handshake::check(&offered, &off).unwrap().deflate.is_none());
        assert!(Handshake::check(&parts(upgrade()), &WsSettings::default()).unwrap().deflate.is_none());
    }

    #[test]
    fn refuses_bad_upgrades() {
        let settings = WsSettings::default();
        let bad_key = parts(upgrade().header("sec-websocket-key", "short"));
        // With two key headers the first one counts; with only a bad one the request is refused.
        let only_bad_key = parts(upgrade_with("not-base64-of-16-bytes!!", "13"));
        assert!(matches!(Handshake::check(&only_bad_key, &settings), Err(HandshakeError::BadRequest(_))));
        assert!(Handshake::check(&bad_key, &settings).is_ok(), "the first key is used");
        let old = parts(upgrade_with("dGhlIHNhbXBsZSBub25jZQ==", "8"));
        assert_eq!(Handshake::check(&old, &settings).unwrap_err(), HandshakeError::UnsupportedVersion);
        let post = parts(upgrade().method("POST"));
        assert_eq!(Handshake::check(&post, &settings).unwrap_err().status(), StatusCode::BAD_REQUEST);
        let plain = parts(http::Request::get("/"));
        assert!(!Handshake::is_requested(&plain));
        let http10 = parts(upgrade().version(Version::HTTP_10));
        assert!(Handshake::is_requested(&http10), "refused later, not served as plain HTTP");
    }
}

//! Which HTTP version a new connection speaks, decided without consuming any of its bytes.
//!
//! hyper-util's auto builder reads the first bytes to look for the HTTP/2 client preface and
//! replays them through a rewind wrapper. Under HTTP/1.1 that costs a check on every read, grows
//! hyper's read buffer from 8 to 16 KiB on every connection (it must fit the replayed bytes plus a
//! full read), and leaves the head size limit to chance, since the auto builder cannot set it. Here
//! TLS connections go by what ALPN agreed on (RFC 9113 section 3.3: HTTP/2 over TLS is negotiated
//! with ALPN), and TCP and Unix-socket connections are peeked at, so the bytes stay in the socket
//! for hyper to read first-hand. Only when the first bytes are a proper prefix of the preface (the
//! deciding bytes have not arrived yet) does the caller fall back to the auto builder. A client that
//! sends nothing at all is closed after `--timeout-keep-alive`, as an idle keep-alive one is.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UnixStream;

use super::drain::DrainWatch;
use super::stream::Stream;

/// The HTTP/2 client connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// How to serve a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Serve(Protocol),
    /// The bytes so far do not tell: hyper-util's auto builder reads on until they do.
    Auto,
    /// The client sent nothing within `--timeout-keep-alive`, or within the first-request grace
    /// period once shutdown began: close the connection.
    Close,
}

/// Decide how to serve `stream`, waiting for its first bytes for at most `silence`.
pub async fn decide(stream: &Stream, watch: &DrainWatch, silence: Duration) -> Decision {
    let peek = async {
        let first = match stream {
            Stream::Tcp(tcp) => {
                let mut buf = [0u8; PREFACE.len()];
                match tcp.peek(&mut buf).await {
                    Ok(n) => classify(&buf[..n]),
                    Err(_) => None,
                }
            }
            Stream::Unix(unix) => peek_unix(unix).await,
            Stream::Tls(tls) => match tls.get_ref().1.alpn_protocol() {
                Some(b"h2") => Some(Protocol::Http2),
                _ => Some(Protocol::Http1),
            },
        };
        first.map_or(Decision::Auto, Decision::Serve)
    };
    tokio::pin!(peek);
    tokio::select! {
        decision = peek.as_mut() => decision,
        _ = tokio::time::sleep(silence) => Decision::Close,
        _ = watch.started() => {
            tokio::time::timeout(DrainWatch::first_request_grace(), peek).await.unwrap_or(Decision::Close)
        }
    }
}

/// Peek at the first bytes of a Unix-socket connection (tokio has no `peek` for these); `None`
/// when they do not tell or the socket failed.
async fn peek_unix(unix: &UnixStream) -> Option<Protocol> {
    let mut buf = [MaybeUninit::<u8>::uninit(); PREFACE.len()];
    loop {
        unix.readable().await.ok()?;
        match unix.try_io(Interest::READABLE, || socket2::SockRef::from(unix).peek(&mut buf)) {
            Ok(n) => {
                // SAFETY: `peek` initialised the first `n` bytes.
                let first = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                return classify(first);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
}

/// What the first bytes of a connection say: `None` for a proper prefix of the preface, since
/// the bytes that would decide have not arrived (peeking again would spin on the same bytes).
fn classify(first: &[u8]) -> Option<Protocol> {
    if first.is_empty() || !PREFACE.starts_with(first) {
        // Closed at once (hyper sees the end of the stream), or not the preface.
        Some(Protocol::Http1)
    } else if first.len() == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_requests_are_told_by_their_first_differing_byte() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(classify(b"POST / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(classify(b"PUT"), Some(Protocol::Http1));
        assert_eq!(classify(b""), Some(Protocol::Http1));
    }

    #[test]
    fn the_whole_preface_is_http2() {
        assert_eq!(classify(PREFACE), Some(Protocol::Http2));
    }

    #[test]
    fn part_of_the_preface_is_undecided() {
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(&PREFACE[..23]), None);
    }
}

//! WebSocket over HTTP/1.1 Upgrade and HTTP/2 extended CONNECT (RFC 6455, 7692, 8441): the
//! handshake checks, the frame codec, permessage-deflate, and the per-connection session task.
//! What the app sees of a WebSocket lives in `asgi::websocket` and `bridge::ws_exchange`.

mod deflate;
mod frame;
mod handshake;
mod session;

use std::time::Duration;

pub use deflate::DeflateParams;
pub use handshake::{Handshake, HandshakeError};
pub use session::{run_session, Sessions};

/// A close status code (RFC 6455 section 7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: CloseCode = CloseCode(1000);
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// Not sent on the wire: a close frame without a code.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// Not sent on the wire: the connection dropped without a close frame.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);

    /// Codes an endpoint may put in a close frame: the defined ones, minus those reserved for
    /// local use (1004-1006, 1015), and the registered and private ranges 3000-4999.
    pub fn may_be_sent(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// `--ws-*` options, as the session applies them.
#[derive(Clone, Debug)]
pub struct WsSettings {
    /// Largest message accepted from a client, after decompression; bigger closes with 1009.
    pub max_size: usize,
    /// Messages read from the client and not yet received by the app; at this many, the server
    /// stops reading the socket.
    pub max_queue: usize,
    /// Ping the client this often; `None` never.
    pub ping_interval: Option<Duration>,
    /// Close with 1011 when a ping is not answered within this time.
    pub ping_timeout: Option<Duration>,
    /// Negotiate permessage-deflate when the client offers it.
    pub per_message_deflate: bool,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_size: 16 * 1024 * 1024,
            max_queue: 32,
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            per_message_deflate: true,
        }
    }
}

//! The session task of one accepted WebSocket: reads client frames into messages for the app,
//! writes the app's messages as frames, answers pings, keeps the connection alive with its own
//! pings, and runs the closing handshake. It talks to the app loop only through the WsExchange.

use std::future::{pending, poll_fn};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::deflate::Deflate;
use super::frame::{self, FrameError, OpCode};
use super::{CloseCode, DeflateParams, WsSettings};
use crate::bridge::{Outbound, WsExchange, WsMessage};

/// How long the server waits for the client's close frame after sending its own.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server's open WebSocket sessions, as shutdown sees them: it can ask all of them to close
/// with 1012 and wait until they have.
pub struct Sessions {
    close: watch::Sender<bool>,
}

/// A session's side of [`Sessions`]: held for the session's life, so it counts as open.
pub struct SessionControl {
    close: watch::Receiver<bool>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self { close: watch::channel(false).0 }
    }
}

impl Sessions {
    pub fn control(&self) -> SessionControl {
        SessionControl { close: self.close.subscribe() }
    }

    /// Sessions still open.
    pub fn open(&self) -> usize {
        self.close.receiver_count()
    }

    /// Ask every session, and every one that starts later, to close with 1012.
    pub fn close_all(&self) {
        self.close.send_replace(true);
    }

    /// Resolves when no session is open.
    pub async fn finished(&self) {
        self.close.closed().await
    }
}

impl SessionControl {
    /// Resolves when the server asks its sessions to close.
    async fn closing(&mut self) {
        if self.close.wait_for(|close| *close).await.is_err() {
            pending::<()>().await
        }
    }
}

/// A data message arriving in fragments.
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
    /// For uncompressed text: how many leading bytes are known to be valid UTF-8, so an invalid
    /// message fails at the fragment that breaks it.
    utf8_checked: usize,
}

struct Session {
    ws: Arc<WsExchange>,
    settings: Arc<WsSettings>,
    deflate: Option<Deflate>,
    partial: Option<Partial>,
    /// Frames waiting to be written at the end of this turn.
    out: BytesMut,
    close_sent: bool,
    /// The connection is over (the client's close frame came, or a protocol error): write what
    /// is queued and end.
    finished: bool,
    /// A pong arrived since the last turn.
    pong: bool,
}

/// Serve one accepted WebSocket on `io` until it closes.
pub async fn run_session<IO>(
    io: IO,
    ws: Arc<WsExchange>,
    settings: Arc<WsSettings>,
    deflate: Option<DeflateParams>,
    mut control: SessionControl,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session {
        ws: ws.clone(),
        settings: settings.clone(),
        deflate: deflate.map(Deflate::new),
        partial: None,
        out: BytesMut::with_capacity(4096),
        close_sent: false,
        finished: false,
        pong: false,
    };
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut batch = Vec::new();
    let far = || Instant::now() + Duration::from_secs(86400 * 365);
    let mut next_ping = settings.ping_interval.map_or_else(far, |every| Instant::now() + every);
    let mut pong_deadline: Option<Instant> = None;
    let mut close_deadline = far();
    loop {
        tokio::select! {
            biased;
            _ = control.closing(), if !session.close_sent => {
                session.fail(FrameError { code: CloseCode::SERVICE_RESTART, reason: "server shutting down" });
            }
            _ = poll_fn(|cx| ws.poll_outbound(cx, &mut batch)), if !session.close_sent => {
                for item in batch.drain(..) {
                    session.send(item);
                }
            }
            read = async {
                // Once closing, frames are read (and dropped) whatever the app's queue holds.
                if !session.close_sent {
                    poll_fn(|cx| ws.poll_room(cx)).await;
                }
                reader.read_buf(&mut input).await
            } => match read {
                Ok(n) if n > 0 => session.on_input(&mut input),
                _ => break,
            },
            _ = sleep_until(next_ping), if pong_deadline.is_none() && !session.close_sent => {
                frame::write_frame(&mut session.out, OpCode::Ping, false, b"fasterapi");
                next_ping = settings.ping_interval.map_or_else(far, |every| Instant::now() + every);
                pong_deadline = settings.ping_timeout.map(|timeout| Instant::now() + timeout);
            }
            _ = async { sleep_until(pong_deadline.unwrap_or_else(far)).await }, if pong_deadline.is_some() => {
                session.fail(FrameError { code: CloseCode::INTERNAL_ERROR, reason: "keepalive ping timeout" });
            }
            _ = sleep_until(close_deadline) => break,
        }
        if std::mem::take(&mut session.pong) {
            pong_deadline = None;
        }
        if !session.out.is_empty() {
            if writer.write_all(&session.out).await.is_err() {
                break;
            }
            session.out.clear();
        }
        if session.finished {
            break;
        }
        if session.close_sent && close_deadline > Instant::now() + CLOSE_TIMEOUT {
            close_deadline = Instant::now() + CLOSE_TIMEOUT;
        }
    }
    // The server closes the TCP connection (RFC 6455 section 7.1.1); on TLS this sends
    // close_notify. A client that stopped reading does not hold the task.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
    ws.dropped();
}

impl Session {
    /// Parse every complete frame in `input` and act on it.
    fn on_input(&mut self, input: &mut BytesMut) {
        while !self.finished {
            let handled = match frame::parse(input, self.settings.max_size, self.deflate.is_some()) {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => return,
                Err(error) => Err(error),
            };
            if let Err(error) = handled {
                self.fail(error);
                return;
            }
        }
    }

    fn on_frame(&mut self, frame: frame::Frame) -> Result<(), FrameError> {
        match frame.opcode {
            OpCode::Ping => {
                if !self.close_sent {
                    frame::write_frame(&mut self.out, OpCode::Pong, false, &frame.payload);
                }
            }
            OpCode::Pong => self.pong = true,
            OpCode::Close => {
                let (code, reason) = frame::parse_close(&frame.payload)?;
                self.finished = true;
                if !self.close_sent {
                    // Echo the client's code (RFC 6455 section 5.5.1).
                    let payload = frame::close_payload(code, "");
                    frame::write_frame(&mut self.out, OpCode::Close, false, &payload);
                    self.close_sent = true;
                }
                self.ws.close_inbound(code, &reason, true);
            }
            OpCode::Text | OpCode::Binary => {
                if self.partial.is_some() {
                    return Err(FrameError::protocol("new message before the previous one ended"));
                }
                let text = frame.opcode == OpCode::Text;
                let partial =
                    Partial { text, compressed: frame.compressed, data: frame.payload, utf8_checked: 0 };
                self.continue_message(partial, frame.fin)?;
            }
            OpCode::Continuation => {
                let mut partial =
                    self.partial.take().ok_or(FrameError::protocol("continuation without a message"))?;
                if frame.compressed {
                    return Err(FrameError::protocol("RSV1 set on a continuation frame"));
                }
                if partial.data.len() + frame.payload.len() > self.settings.max_size {
                    return Err(FrameError { code: CloseCode::MESSAGE_TOO_BIG, reason: "message too big" });
                }
                partial.data.extend_from_slice(&frame.payload);
                self.continue_message(partial, frame.fin)?;
            }
        }
        Ok(())
    }

    /// Keep a fragmented message, failing fast on broken UTF-8, or deliver a finished one.
    fn continue_message(&mut self, mut partial: Partial, fin: bool) -> Result<(), FrameError> {
        if !fin {
            if partial.text && !partial.compressed {
                check_utf8_prefix(&mut partial)?;
            }
            self.partial = Some(partial);
            return Ok(());
        }
        let data = match (partial.compressed, &mut self.deflate) {
            (true, Some(deflate)) => {
                BytesMut::from(&deflate.decompress(&partial.data, self.settings.max_size)?[..])
            }
            _ => partial.data,
        };
        let message = if partial.text {
            let text = String::from_utf8(data.into()).map_err(|_| invalid_utf8())?;
            WsMessage::Text(text)
        } else {
            WsMessage::Binary(Bytes::from(data))
        };
        if !self.close_sent {
            self.ws.push_inbound(message);
        }
        Ok(())
    }

    /// Queue what the app sent.
    fn send(&mut self, item: Outbound) {
        match item {
            Outbound::Message(message) => {
                let (opcode, data) = match &message {
                    WsMessage::Text(text) => (OpCode::Text, text.as_bytes()),
                    WsMessage::Binary(data) => (OpCode::Binary, &data[..]),
                };
                match self.deflate.as_mut().and_then(|d| d.compress(data)) {
                    Some(compressed) => frame::write_frame(&mut self.out, opcode, true, &compressed),
                    None => frame::write_frame(&mut self.out, opcode, false, data),
                }
            }
            Outbound::Close(code, reason) => {
                if !self.close_sent {
                    frame::write_frame(
                        &mut self.out,
                        OpCode::Close,
                        false,
                        &frame::close_payload(code, &reason),
                    );
                    self.close_sent = true;
                }
            }
        }
    }

    /// Close the connection for a reason of the server's: the app sees this code too.
    fn fail(&mut self, error: FrameError) {
        if !self.close_sent {
            let payload = frame::close_payload(error.code, error.reason);
            frame::write_frame(&mut self.out, OpCode::Close, false, &payload);
            self.close_sent = true;
        }
        self.ws.close_inbound(error.code, error.reason, true);
        // Protocol errors end the connection at once; a shutdown waits for the client's reply.
        if error.code != CloseCode::SERVICE_RESTART {
            self.finished = true;
        }
    }
}

fn invalid_utf8() -> FrameError {
    FrameError { code: CloseCode::INVALID_DATA, reason: "invalid UTF-8 in text message" }
}

/// Validate the part of a text message received so far; an incomplete character at the end is
/// fine, anything else invalid is an error now.
fn check_utf8_prefix(partial: &mut Partial) -> Result<(), FrameError> {
    match std::str::from_utf8(&partial.data[partial.utf8_checked..]) {
        Ok(_) => partial.utf8_checked = partial.data.len(),
        Err(e) if e.error_len().is_none() => partial.utf8_checked += e.valid_up_to(),
        Err(_) => return Err(invalid_utf8()),
    }
    Ok(())
}

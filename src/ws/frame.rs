//! WebSocket frames (RFC 6455 section 5): parsing masked client frames out of a read buffer and
//! writing unmasked server frames. Pure data transformation; no I/O, no message semantics.

use bytes::{Buf, BufMut, BytesMut};

use super::CloseCode;

/// A frame's opcode (RFC 6455 section 5.2); reserved opcodes are refused while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// One frame from the client, payload already unmasked.
#[derive(Debug)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate); only valid on a message's first frame.
    pub compressed: bool,
    pub opcode: OpCode,
    pub payload: BytesMut,
}

/// Why a frame could not be accepted: the close code to answer with and a short reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub code: CloseCode,
    pub reason: &'static str,
}

impl FrameError {
    pub const fn protocol(reason: &'static str) -> Self {
        FrameError { code: CloseCode::PROTOCOL_ERROR, reason }
    }
}

/// Parse one frame from the front of `buf`. `Ok(None)` means more bytes are needed (nothing was
/// consumed). `max_payload` bounds a single frame; a longer one is refused with 1009 before its
/// payload is read. `deflate` says whether RSV1 may be set.
pub fn parse(buf: &mut BytesMut, max_payload: usize, deflate: bool) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && !deflate) {
        return Err(FrameError::protocol("reserved bits set"));
    }
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(FrameError::protocol("reserved opcode"))?;
    if b1 & 0x80 == 0 {
        return Err(FrameError::protocol("client frames must be masked"));
    }
    let (len, offset) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let len = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(FrameError::protocol("payload length has its high bit set"));
            }
            (len, 10)
        }
        short => (short as u64, 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::protocol("fragmented control frame"));
        }
        if len > 125 {
            return Err(FrameError::protocol("control frame payload over 125 bytes"));
        }
        if rsv1 {
            return Err(FrameError::protocol("compressed control frame"));
        }
    }
    if len > max_payload as u64 {
        return Err(FrameError { code: CloseCode::MESSAGE_TOO_BIG, reason: "message too big" });
    }
    let len = len as usize;
    let total = offset + 4 + len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mask: [u8; 4] = buf[offset..offset + 4].try_into().expect("4 bytes");
    buf.advance(offset + 4);
    let mut payload = buf.split_to(len);
    unmask(&mut payload, mask);
    Ok(Some(Frame { fin, compressed: rsv1, opcode, payload }))
}

/// XOR the payload with the masking key, eight bytes at a time where it can.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Append a server frame header (never masked) for a payload of `len` bytes.
pub fn write_header(out: &mut BytesMut, opcode: OpCode, fin: bool, compressed: bool, len: usize) {
    let mut b0 = opcode.bits();
    if fin {
        b0 |= 0x80;
    }
    if compressed {
        b0 |= 0x40;
    }
    out.put_u8(b0);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
}

/// Append one whole server frame.
pub fn write_frame(out: &mut BytesMut, opcode: OpCode, compressed: bool, payload: &[u8]) {
    out.reserve(10 + payload.len());
    write_header(out, opcode, true, compressed, payload.len());
    out.extend_from_slice(payload);
}

/// The payload of a close frame: the code, then the reason (cut to fit 125 bytes on a character
/// boundary). Code 1005 means "no code" and sends an empty payload.
pub fn close_payload(code: CloseCode, reason: &str) -> Vec<u8> {
    if code == CloseCode::NO_STATUS {
        return Vec::new();
    }
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.0.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Read a close frame's payload: (code, reason); 1005 when it is empty. Refuses a one-byte
/// payload, a code a peer may not send, and a reason that is not UTF-8.
pub fn parse_close(payload: &[u8]) -> Result<(CloseCode, String), FrameError> {
    match payload.len() {
        0 => Ok((CloseCode::NO_STATUS, String::new())),
        1 => Err(FrameError::protocol("close frame with a one-byte payload")),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.may_be_sent() {
                return Err(FrameError::protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| FrameError {
                code: CloseCode::INVALID_DATA,
                reason: "close reason is not UTF-8",
            })?;
            Ok((code, reason.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser would send it.
    fn masked(b0: u8, payload: &[u8]) -> BytesMut {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = BytesMut::new();
        out.put_u8(b0);
        match payload.len() {
            0..=125 => out.put_u8(0x80 | payload.len() as u8),
            126..=0xFFFF => {
                out.put_u8(0x80 | 126);
                out.put_u16(payload.len() as u16);
            }
            _ => {
                out.put_u8(0x80 | 127);
                out.put_u64(payload.len() as u64);
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn parses_a_masked_text_frame_byte_by_byte() {
        let whole = masked(0x81, b"Hello, world! this is longer than eight bytes");
        let mut buf = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            buf.put_u8(*byte);
            let parsed = parse(&mut buf, 1 << 20, false).unwrap();
            if i + 1 < whole.len() {
                assert!(parsed.is_none(), "complete too early at byte {i}");
            } else {
                let frame = parsed.unwrap();
                assert!(frame.fin);
                assert_eq!(frame.opcode, OpCode::Text);
                assert_eq!(&frame.payload[..], b"Hello, world! this is longer than eight bytes");
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn extended_lengths_round_trip() {
        for len in [125usize, 126, 65535, 65536] {
            let payload = vec![b'x'; len];
            let mut buf = masked(0x82, &payload);
            let frame = parse(&mut buf, 1 << 20, false).unwrap().unwrap();
            assert_eq!(frame.payload.len(), len);
            let mut out = BytesMut::new();
            write_frame(&mut out, OpCode::Binary, false, &payload);
            let header = match len {
                0..=125 => 2,
                126..=0xFFFF => 4,
                _ => 10,
            };
            assert_eq!(out.len(), header + len);
        }
    }

    #[test]
    fn refuses_what_rfc_6455_forbids() {
        let cases: [(BytesMut, &str); 5] = [
            (masked(0xA1, b"x"), "reserved bits set"),
            (masked(0x83, b"x"), "reserved opcode"),
            (masked(0x09, b"x"), "fragmented control frame"),
            (masked(0x89, &[0; 126]), "control frame payload over 125 bytes"),
            (BytesMut::from(&[0x81u8, 0x01, b'x'][..]), "client frames must be masked"),
        ];
        for (mut buf, reason) in cases {
            assert_eq!(parse(&mut buf, 1 << 20, false).unwrap_err(), FrameError::protocol(reason));
        }
        let mut compressed = masked(0xC1, b"x");
        assert!(parse(&mut compressed, 1 << 20, true).unwrap().unwrap().compressed);
    }

    #[test]
    fn oversized_frame_is_refused_before_its_payload_arrives() {
        let mut buf = masked(0x82, &[0; 200]);
        buf.truncate(20);
        assert_eq!(parse(&mut buf, 100, false).unwrap_err().code, CloseCode::MESSAGE_TOO_BIG);
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(b"").unwrap().0, CloseCode::NO_STATUS);
        assert!(parse_close(b"\x03").is_err());
        assert!(parse_close(&1005u16.to_be_bytes()).is_err());
        assert_eq!(parse_close(&[0x03, 0xE8, b'o', b'k']).unwrap(), (CloseCode(1000), "ok".into()));
        assert_eq!(parse_close(&[0x03, 0xE8, 0xff]).unwrap_err().code, CloseCode::INVALID_DATA);
        let long = "é".repeat(100);
        let payload = close_payload(CloseCode::NORMAL, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert!(close_payload(CloseCode::NO_STATUS, "ignored").is_empty());
    }
}

//! permessage-deflate (RFC 7692): choosing an offer from `Sec-WebSocket-Extensions`, and
//! compressing and inflating whole messages with raw DEFLATE (flate2 on zlib-rs).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::FrameError;
use super::CloseCode;

/// The four bytes a sync flush ends with; the sender strips them and the receiver adds them back.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Messages shorter than this go out uncompressed: the deflate framing would not pay for itself.
const MIN_COMPRESSED_LEN: usize = 64;

/// The accepted offer's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// The window the server's compressor may use, when the client limited it.
    pub server_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The first permessage-deflate offer in the `Sec-WebSocket-Extensions` values that this server
    /// can honour; `None` when there is none (the connection then runs uncompressed).
    pub fn negotiate<'a>(header_values: impl Iterator<Item = &'a str>) -> Option<Self> {
        header_values.flat_map(|value| value.split(',')).find_map(Self::from_offer)
    }

    fn from_offer(offer: &str) -> Option<Self> {
        let mut parts = offer.split(';').map(str::trim);
        if parts.next()? != "permessage-deflate" {
            return None;
        }
        let mut params = DeflateParams::default();
        let mut seen = Vec::new();
        for part in parts {
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                None => (part, None),
            };
            if seen.contains(&name) {
                return None;
            }
            seen.push(name);
            match (name, value) {
                ("server_no_context_takeover", None) => params.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => params.client_no_context_takeover = true,
                // zlib cannot produce raw DEFLATE with a 256-byte window, so 8 is declined.
                ("server_max_window_bits", Some(bits)) => {
                    params.server_max_window_bits = Some(window_bits(bits).filter(|b| *b >= 9)?)
                }
                // The client may limit its own window; the server inflates with the largest one.
                ("client_max_window_bits", None) => {}
                ("client_max_window_bits", Some(bits)) => {
                    window_bits(bits)?;
                }
                _ => return None,
            }
        }
        Some(params)
    }

    /// The `Sec-WebSocket-Extensions` response value confirming this offer.
    pub fn response_header(&self) -> String {
        let mut value = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        value
    }
}

fn window_bits(value: &str) -> Option<u8> {
    value.parse::<u8>().ok().filter(|bits| (8..=15).contains(bits))
}

/// One connection's compression state. The DEFLATE contexts (a few hundred KiB) are created on
/// first use, so a connection that never sends a compressed message does not pay for them.
pub struct Deflate {
    params: DeflateParams,
    compress: Option<Compress>,
    decompress: Option<Decompress>,
}

impl Deflate {
    pub fn new(params: DeflateParams) -> Self {
        Self { params, compress: None, decompress: None }
    }

    /// Compress one outgoing message, or `None` when it goes out as is.
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < MIN_COMPRESSED_LEN {
            return None;
        }
        let bits = self.params.server_max_window_bits.unwrap_or(15);
        let compress = self
            .compress
            .get_or_insert_with(|| Compress::new_with_window_bits(Compression::fast(), false, bits));
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = compress.total_in();
            compress.compress_vec(input, &mut out, FlushCompress::Sync).ok()?;
            input = &input[(compress.total_in() - before) as usize..];
            // The flush is complete once a call leaves output space unused.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if self.params.server_no_context_takeover {
            compress.reset();
        }
        Some(out)
    }

    /// Inflate one incoming message; more than `max_size` bytes of output closes with 1009.
    pub fn decompress(&mut self, data: &[u8], max_size: usize) -> Result<Vec<u8>, FrameError> {
        let decompress = self.decompress.get_or_insert_with(|| Decompress::new(false));
        let too_big = FrameError { code: CloseCode::MESSAGE_TOO_BIG, reason: "message too big" };
        let corrupt = FrameError { code: CloseCode::INVALID_DATA, reason: "invalid compressed data" };
        let mut out = Vec::with_capacity((data.len() * 4).max(256).min(max_size.saturating_add(1)));
        let mut ended = false;
        for mut input in [data, &SYNC_TAIL[..]] {
            while !ended {
                if out.len() == out.capacity() {
                    if out.len() > max_size {
                        return Err(too_big);
                    }
                    // Grow by doubling, but never past one byte over the limit.
                    out.reserve((max_size + 1 - out.len()).min(out.len().max(1024)));
                }
                let before = decompress.total_in();
                let status =
                    decompress.decompress_vec(input, &mut out, FlushDecompress::Sync).map_err(|_| corrupt)?;
                input = &input[(decompress.total_in() - before) as usize..];
                // A final DEFLATE block ends the stream; the next message starts a new one.
                ended = status == Status::StreamEnd;
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        if out.len() > max_size {
            return Err(too_big);
        }
        if ended {
            decompress.reset(false);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_offer_it_can_honour() {
        let offers = [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
        ];
        let params = DeflateParams::negotiate(offers.into_iter()).unwrap();
        assert_eq!(params, DeflateParams::default());
        assert_eq!(params.response_header(), "permessage-deflate");
    }

    #[test]
    fn echoes_the_parameters_it_accepts() {
        let offer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=\"10\"";
        let params = DeflateParams::negotiate([offer].into_iter()).unwrap();
        assert_eq!(
            params.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
    }

    #[test]
    fn declines_malformed_offers() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert_eq!(DeflateParams::negotiate([offer].into_iter()), None, "{offer}");
        }
    }

    #[test]
    fn round_trips_messages_with_and_without_context_takeover() {
        for params in [
            DeflateParams::default(),
            DeflateParams {
                server_no_context_takeover: true,
                server_max_window_bits: Some(9),
                ..Default::default()
            },
        ] {
            let mut sender = Deflate::new(params.clone());
            let mut receiver = Deflate::new(params);
            for round in 0..3 {
                let message = format!("message {round}: {}", "abcdefgh".repeat(500)).into_bytes();
                let compressed = sender.compress(&message).expect("long enough to compress");
                assert!(compressed.len() < message.len() / 10);
                assert_eq!(receiver.decompress(&compressed, 1 << 20).unwrap(), message);
            }
        }
        assert!(Deflate::new(DeflateParams::default()).compress(b"short").is_none());
    }

    #[test]
    fn inflating_past_the_limit_is_1009() {
        let mut sender = Deflate::new(DeflateParams::default());
        let bomb = sender.compress(&vec![0u8; 1 << 20]).unwrap();
        let mut receiver = Deflate::new(DeflateParams::default());
        assert_eq!(receiver.decompress(&bomb, 1000).unwrap_err().code, CloseCode::MESSAGE_TOO_BIG);
        let mut receiver = Deflate::new(DeflateParams::default());
        assert_eq!(receiver.decompress(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(receiver.decompress(b"\xff\xff\xff", 100).unwrap_err().code, CloseCode::INVALID_DATA);
    }
}

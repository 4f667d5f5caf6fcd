//! ResponseBody: the hyper body that streams what the app sends, straight from its Exchange.
//! Dropping it before the end tells the app the client is gone.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::bridge::{AppAborted, Exchange};

/// The body of one response, fed by the app through the exchange.
pub struct ResponseBody {
    exchange: Option<Arc<Exchange>>,
    /// A body the server made itself (error pages), sent as one frame.
    fixed: Option<Bytes>,
    ended: bool,
}

impl ResponseBody {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange: Some(exchange), fixed: None, ended: false }
    }

    /// A body with nothing in it, for responses the server makes itself.
    pub fn empty() -> Self {
        Self { exchange: None, fixed: None, ended: true }
    }

    /// A complete body the server makes itself.
    pub fn full(data: Bytes) -> Self {
        Self { exchange: None, fixed: Some(data), ended: false }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = AppAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AppAborted>>> {
        let Some(exchange) = &self.exchange else {
            self.ended = true;
            return Poll::Ready(self.fixed.take().map(|data| Ok(Frame::data(data))));
        };
        match exchange.poll_chunk(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(aborted))) => Poll::Ready(Some(Err(aborted))),
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.exchange {
            Some(exchange) => self.ended || exchange.output_finished(),
            None => self.fixed.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(data) = &self.fixed {
            return SizeHint::with_exact(data.len() as u64);
        }
        match self.exchange.as_ref().and_then(|e| e.exact_remaining()) {
            Some(n) => SizeHint::with_exact(n),
            None if self.ended => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            let ended = self.ended || exchange.output_finished();
            exchange.finish_stream(ended);
        }
    }
}

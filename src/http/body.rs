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
    ended: bool,
}

impl ResponseBody {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange: Some(exchange), ended: false }
    }

    /// A body with nothing in it, for responses the server makes itself.
    pub fn empty() -> Self {
        Self { exchange: None, ended: true }
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
            return Poll::Ready(None);
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
        self.ended || self.exchange.as_ref().is_some_and(|e| e.output_finished())
    }

    fn size_hint(&self) -> SizeHint {
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

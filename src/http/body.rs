//! ResponseBody: the hyper body that streams what the app sends, straight from its Exchange, and
//! the file an `http.response.pathsend` names. Dropping it before the end tells the app the client
//! is gone.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::task::ready;

use super::file_chunks::FileChunks;
use super::service::Busy;
use crate::bridge::{AppAborted, Exchange};

/// The body of one response, fed by the app through the exchange.
pub struct ResponseBody {
    exchange: Option<Arc<Exchange>>,
    /// A body the server made itself (error pages), sent as one frame.
    fixed: Option<Bytes>,
    /// The file of an `http.response.pathsend`, once the chunks before it are out.
    file: Option<FileChunks>,
    ended: bool,
    /// Keeps the connection busy (not idle) until hyper drops the body.
    busy: Option<Busy>,
}

impl ResponseBody {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange: Some(exchange), fixed: None, file: None, ended: false, busy: None }
    }

    /// A body with nothing in it, for responses the server makes itself.
    pub fn empty() -> Self {
        Self { exchange: None, fixed: None, file: None, ended: true, busy: None }
    }

    /// A complete body the server makes itself.
    pub fn full(data: Bytes) -> Self {
        Self { exchange: None, fixed: Some(data), file: None, ended: false, busy: None }
    }
}

impl ResponseBody {
    /// Count the connection busy for as long as this body lives.
    pub fn hold(&mut self, busy: Busy) {
        self.busy = Some(busy);
    }

    /// Everything was sent: the app's last chunk, and the pathsend file if there was one.
    fn finished(&self, exchange: &Exchange) -> bool {
        self.ended || (self.file.is_none() && exchange.output_finished())
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = AppAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AppAborted>>> {
        if let Some(file) = &mut self.file {
            return match ready!(file.poll_next(cx)) {
                Some(Ok(chunk)) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Some(Err(_)) => Poll::Ready(Some(Err(AppAborted))),
                None => {
                    self.file = None;
                    self.poll_frame(cx)
                }
            };
        }
        let Some(exchange) = &self.exchange else {
            self.ended = true;
            return Poll::Ready(self.fixed.take().map(|data| Ok(Frame::data(data))));
        };
        match exchange.poll_chunk(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(aborted))) => Poll::Ready(Some(Err(aborted))),
            Poll::Ready(None) => match exchange.take_file() {
                Some((file, len)) => {
                    self.file = Some(FileChunks::new(file, len));
                    self.poll_frame(cx)
                }
                None => {
                    let trailers = exchange.take_trailers();
                    self.ended = true;
                    Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
                }
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.exchange {
            Some(exchange) => self.finished(exchange),
            None => self.fixed.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(data) = &self.fixed {
            return SizeHint::with_exact(data.len() as u64);
        }
        if let Some(file) = &self.file {
            return SizeHint::with_exact(file.remaining());
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
            let ended = self.finished(&exchange);
            exchange.finish_stream(ended);
        }
    }
}

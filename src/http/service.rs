//! The per-request hyper service: turns a request into a RequestHead and an Exchange, hands them
//! to an app loop, waits for the response head, and returns a streaming response.

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{RequestHead, ResponseBody};
use crate::bridge::{Exchange, JobQueue, LoopJob, NewRequest, ResponseHead};
use crate::config::ServerConfig;

/// The addresses and scheme of one accepted connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionInfo {
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub scheme: &'static str,
}

/// Spreads requests over the app loops and holds what every request needs from the config.
pub struct RequestRouter {
    loops: Vec<Arc<JobQueue>>,
    next_loop: AtomicUsize,
    next_id: AtomicU64,
    preread_limit: usize,
    high_water: usize,
    /// Headers added to every response unless the app set them (`server`, `--header`).
    default_headers: Vec<(HeaderName, HeaderValue)>,
}

impl RequestRouter {
    pub fn new(config: &ServerConfig, loops: Vec<Arc<JobQueue>>) -> Self {
        let mut default_headers = Vec::new();
        if config.server_header {
            default_headers.push((header::SERVER, HeaderValue::from_static("fasterapi")));
        }
        default_headers.extend(config.default_headers.iter().cloned());
        Self {
            loops,
            next_loop: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            preread_limit: config.preread_limit,
            high_water: config.send_high_water,
            default_headers,
        }
    }

    fn pick_loop(&self) -> &Arc<JobQueue> {
        let n = self.loops.len();
        if n == 1 {
            return &self.loops[0];
        }
        &self.loops[self.next_loop.fetch_add(1, Ordering::Relaxed) % n]
    }

    /// Serve one request: the hyper service function.
    pub async fn handle(
        self: Arc<Self>,
        conn: ConnectionInfo,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let (parts, body) = request.into_parts();
        let head = RequestHead::new(&parts, conn.client, conn.server, conn.scheme);
        let queue = self.pick_loop().clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);

        let (preread, body) = match self.preread(&head, body).await {
            Ok(split) => split,
            // The client went away while sending a small body: nobody is left to answer.
            Err(()) => return Ok(bad_request()),
        };
        let exchange = Arc::new(Exchange::new(id, queue.clone(), self.high_water, body.is_none()));
        if let Some(data) = preread {
            exchange.push_body(data, body.is_none());
        }
        if let Some(body) = body {
            let pump = tokio::spawn(pump_body(body, exchange.clone()));
            exchange.set_pump(pump.abort_handle());
        }
        let guard = DisconnectGuard(Some(exchange.clone()));
        queue.push(LoopJob::Request(Box::new(NewRequest { head, exchange: exchange.clone() })));

        let response_head = poll_fn(|cx| exchange.poll_head(cx)).await;
        guard.disarm();
        Ok(self.response(response_head, ResponseBody::new(exchange)))
    }

    /// Read a small body that is announced by `content-length` before the app starts, so the
    /// common POST costs one hand-off. Returns what was read and the body left to stream.
    async fn preread(
        &self,
        head: &RequestHead,
        body: Incoming,
    ) -> Result<(Option<Bytes>, Option<Incoming>), ()> {
        use http_body::Body;
        if body.is_end_stream() {
            return Ok((None, None));
        }
        let announced = body.size_hint().exact();
        match announced {
            Some(len) if len as usize <= self.preread_limit && !head.expects_continue() => {
                let mut body = body;
                let mut data = BytesMut::with_capacity(len as usize);
                while let Some(frame) = body.frame().await {
                    if let Ok(chunk) = frame.map_err(|_| ())?.into_data() {
                        data.extend_from_slice(&chunk);
                    }
                }
                Ok((Some(data.freeze()), None))
            }
            _ => Ok((None, Some(body))),
        }
    }

    fn response(&self, head: ResponseHead, body: ResponseBody) -> Response<ResponseBody> {
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        let headers = response.headers_mut();
        headers.reserve(head.headers.len() + self.default_headers.len());
        for (name, value) in head.headers {
            headers.append(name, value);
        }
        for (name, value) in &self.default_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        response
    }
}

/// Read the request body as fast as the app asks for it: one frame per demand.
async fn pump_body(mut body: Incoming, exchange: Arc<Exchange>) {
    use http_body::Body;
    loop {
        exchange.body_demand.notified().await;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let last = body.is_end_stream();
                        if data.is_empty() && !last {
                            continue;
                        }
                        exchange.push_body(data, last);
                        if last {
                            return;
                        }
                        break;
                    }
                }
                None => {
                    exchange.push_body(Bytes::new(), true);
                    return;
                }
                Some(Err(_)) => {
                    exchange.disconnect();
                    return;
                }
            }
        }
    }
}

/// Tells the app the client is gone if the request future is dropped before the head was sent.
struct DisconnectGuard(Option<Arc<Exchange>>);

impl DisconnectGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        if let Some(exchange) = self.0.take() {
            exchange.disconnect();
        }
    }
}

fn bad_request() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    response
}

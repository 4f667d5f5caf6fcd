//! The per-request hyper service: turns a request into a RequestHead and an Exchange, hands them
//! to an app loop, waits for the response head, and returns a streaming response. A WebSocket
//! request gets a WsExchange instead, and its session task once the app accepts it.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use http::{header, HeaderName, HeaderValue, Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Peer, RequestHead, ResponseBody, TrustedHosts};
use crate::bridge::{
    Exchange, InFlight, JobQueue, Link, LoopJob, NewRequest, NewWebSocket, ResponseHead, Verdict, WakeBatch,
    WsExchange,
};
use crate::config::ServerConfig;
use crate::shutdown::{ShutdownTrigger, StopReason};
use crate::signal::{Raised, Signal};
use crate::tls::TlsInfo;
use crate::ws::{run_session, Handshake, HandshakeError, Sessions, WsSettings};

/// The addresses and scheme of one accepted connection.
#[derive(Debug)]
pub struct ConnectionInfo {
    pub client: Option<Peer>,
    pub server: Option<Peer>,
    pub scheme: &'static str,
    /// The TLS session, once the handshake is done (`scheme` is then `https`).
    pub tls: Option<Arc<TlsInfo>>,
    /// The peer is in `--forwarded-allow-ips`: its proxy headers are believed.
    pub trusted_proxy: bool,
    /// Raised when the first request arrives (graceful shutdown spares connections about to
    /// get one).
    first_request: Signal,
    /// Requests seen: whether any arrived, and `--limit-requests-per-connection`.
    requests: AtomicU64,
    /// Raised when the connection has had its share of requests and should close gracefully.
    retire: Signal,
    /// When it was accepted; `idle_since` counts from here.
    opened: Instant,
    /// Requests being answered now (see `Busy`).
    busy: AtomicU32,
    /// When the last request was answered, in nanoseconds after `opened`.
    idle_since: AtomicU64,
}

impl ConnectionInfo {
    /// A TCP connection from `client` to `server`.
    pub fn tcp(client: SocketAddr, server: SocketAddr, proxies: Option<&TrustedHosts>) -> Self {
        let client = Peer::from_addr(client);
        let trusted_proxy = proxies.is_some_and(|p| p.contains(&client.host));
        Self::new(Some(client), Some(Peer::from_addr(server)), trusted_proxy)
    }

    /// A Unix-socket connection on `path`; its peer is trusted if `unix:` is.
    pub fn unix(path: &str, proxies: Option<&TrustedHosts>) -> Self {
        let trusted_proxy = proxies.is_some_and(|p| p.contains("unix:"));
        Self::new(None, Some(Peer::unix(path)), trusted_proxy)
    }

    fn new(client: Option<Peer>, server: Option<Peer>, trusted_proxy: bool) -> Self {
        ConnectionInfo {
            client,
            server,
            scheme: "http",
            tls: None,
            trusted_proxy,
            first_request: Signal::new(),
            requests: AtomicU64::new(0),
            retire: Signal::new(),
            opened: Instant::now(),
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
        }
    }

    /// The connection is now inside a TLS session.
    pub fn secured(&mut self, tls: TlsInfo) {
        self.scheme = "https";
        self.tls = Some(Arc::new(tls));
    }

    /// Record that a request arrived on this connection. The one that reaches `cap` asks the
    /// connection to close gracefully once it is answered, and is told so (true).
    fn request_arrived(&self, cap: Option<u64>) -> bool {
        let seen = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        if seen == 1 {
            self.first_request.raise();
        }
        let last = cap == Some(seen);
        if last {
            self.retire.raise();
        }
        last
    }

    /// Resolves when the connection has served `--limit-requests-per-connection` requests;
    /// cheap to poll on every wake of the connection.
    pub fn retired(&self) -> Raised<'_> {
        self.retire.raised()
    }

    /// True once any request arrived.
    pub fn has_requests(&self) -> bool {
        self.requests.load(Ordering::Acquire) > 0
    }

    /// Mark a request as being answered until the guard is dropped, which its response body
    /// does when hyper is done with it.
    fn busy(self: Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self)
    }

    /// How long the connection has had no request to answer (since it was accepted, or since its
    /// last response); `None` while it has one. HTTP/1.1 requests only: an HTTP/2 connection
    /// keeps no idle timer, and its streams are not counted.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        Some(self.opened.elapsed().saturating_sub(since))
    }

    /// Resolves when the first request arrives (at once if one already has).
    pub fn first_request(&self) -> Raised<'_> {
        self.first_request.raised()
    }
}

/// A request being answered on its connection; dropping it (with the response body) starts the
/// connection's idle time.
pub struct Busy(Arc<ConnectionInfo>);

impl Drop for Busy {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since.store(conn.opened.elapsed().as_nanos() as u64, Ordering::Release);
        conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An app loop as the router sees it: its mailbox and how many requests it has in flight.
struct AppLoopLink {
    queue: Arc<JobQueue>,
    in_flight: Arc<AtomicUsize>,
    wakes: Arc<WakeBatch>,
}

/// Spreads requests over the app loops and holds what every request needs from the config.
pub struct RequestRouter {
    loops: Vec<AppLoopLink>,
    next_loop: AtomicUsize,
    next_id: AtomicU64,
    preread_limit: usize,
    high_water: usize,
    /// Headers added to every response unless the app set them (`server`, `--header`).
    default_headers: Vec<(HeaderName, HeaderValue)>,
    proxies: Option<TrustedHosts>,
    /// Requests in flight (until their app finishes), for `--limit-concurrency`.
    in_flight: Arc<AtomicUsize>,
    limit_concurrency: Option<usize>,
    /// Requests a connection may carry before it is closed gracefully.
    requests_per_connection: Option<u64>,
    /// Requests served, for `--limit-max-requests`.
    served: AtomicU64,
    max_requests: Option<u64>,
    /// Asks the server to shut down gracefully (the request limit was reached).
    stop: Arc<ShutdownTrigger>,
    /// WebSocket options; `None` with `--ws none` (upgrade requests then reach the app as HTTP).
    ws: Option<Arc<WsSettings>>,
    /// The open WebSocket sessions, which shutdown closes with 1012.
    sessions: Sessions,
}

impl RequestRouter {
    pub fn new(config: &ServerConfig, loops: Vec<Arc<JobQueue>>, stop: Arc<ShutdownTrigger>) -> Self {
        let mut default_headers = Vec::new();
        if config.server_header {
            default_headers.push((header::SERVER, HeaderValue::from_static("fasterapi")));
        }
        default_headers.extend(config.default_headers.iter().cloned());
        let loops = loops
            .into_iter()
            .map(|queue| AppLoopLink { queue, in_flight: Arc::default(), wakes: Arc::default() })
            .collect();
        Self {
            loops,
            next_loop: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            preread_limit: config.preread_limit,
            high_water: config.send_high_water,
            default_headers,
            proxies: config.proxy_headers.then(|| config.forwarded_allow_ips.clone()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit_concurrency: config.limit_concurrency,
            requests_per_connection: config.limit_requests_per_connection,
            served: AtomicU64::new(0),
            max_requests: config.limit_max_requests,
            stop,
            ws: config.ws.clone(),
            sessions: Sessions::default(),
        }
    }

    /// The open WebSocket sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Start, for each app loop, the tasks that wake it and that wake its response streams, in
    /// batches; call inside the runtime.
    pub fn spawn_batchers(&self) {
        for app_loop in &self.loops {
            tokio::spawn(app_loop.queue.clone().signal_batches());
            tokio::spawn(app_loop.wakes.clone().dispatch());
        }
    }

    /// The trusted proxies, when proxy headers are on.
    pub fn proxies(&self) -> Option<&TrustedHosts> {
        self.proxies.as_ref()
    }

    /// Count a request against `--limit-max-requests`; at the limit, start a graceful shutdown.
    fn count_request(&self) {
        if let Some(max) = self.max_requests {
            if self.served.fetch_add(1, Ordering::Relaxed) + 1 == max {
                self.stop.trigger(StopReason::RequestLimit);
            }
        }
    }

    /// The loop with the fewest requests in flight, ties broken round-robin: a loop stuck in a
    /// slow handler stops getting new requests while the others are free.
    fn pick_loop(&self) -> &AppLoopLink {
        let n = self.loops.len();
        if n == 1 {
            return &self.loops[0];
        }
        let start = self.next_loop.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| &self.loops[(start + i) % n])
            .min_by_key(|link| link.in_flight.load(Ordering::Relaxed))
            .unwrap_or(&self.loops[start])
    }

    /// Serve one request: the hyper service function. The head is taken from hyper's request
    /// before the returned future first runs, so that hyper's read buffer is free again by the
    /// time hyper reads the connection's next bytes (see `RequestHead`); a request without a
    /// body to pre-read is queued for its loop right here. The future left to run is small (it
    /// waits for the response head), because hyper moves it around and HTTP/2 allocates a task
    /// for each: the WebSocket path, large and rare, is boxed.
    pub fn handle(
        self: Arc<Self>,
        conn: Arc<ConnectionInfo>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> {
        let last_on_connection = conn.request_arrived(self.requests_per_connection);
        self.count_request();
        let ticket = self.admit();
        let (parts, body) = request.into_parts();
        // Only HTTP/1.1 connections time out idle ones themselves (see `ConnectionInfo::idle_for`).
        let busy = (parts.version < Version::HTTP_2).then(|| conn.clone().busy());
        let start = match (ticket, &self.ws) {
            (None, _) => Start::Unavailable,
            (Some(ticket), Some(settings)) if Handshake::is_requested(&parts) => {
                let (router, settings) = (self.clone(), settings.clone());
                Start::WebSocket(Box::pin(
                    async move { router.websocket(&conn, parts, ticket, settings).await },
                ))
            }
            (Some(ticket), _) => {
                let close = last_on_connection && parts.version < Version::HTTP_2;
                Start::Http(self.dispatch(self.head(&parts, &conn), body, ticket), close)
            }
        };
        async move {
            let mut response = match start {
                Start::Unavailable => service_unavailable(),
                Start::WebSocket(websocket) => websocket.await,
                Start::Http(dispatched, close) => self.respond(dispatched, close).await,
            };
            if let Some(busy) = busy {
                response.body_mut().hold(busy);
            }
            Ok(response)
        }
    }

    /// Give a plain request to an app loop: queue it now, or once its small body is read.
    fn dispatch(&self, head: RequestHead, body: Incoming, ticket: InFlight) -> Dispatched {
        use http_body::Body;
        let app_loop = self.pick_loop();
        let tickets = [ticket, InFlight::take(&app_loop.in_flight)];
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let link = Link::new(id, app_loop.queue.clone(), app_loop.wakes.clone(), tickets);
        let complete = body.is_end_stream();
        let exchange = Arc::new(Exchange::new(link, self.high_water, complete));
        let guard = GoneGuard::new(exchange.clone(), Exchange::disconnect);
        let job = NewRequest { head, exchange: exchange.clone() };
        let small = body.size_hint().exact().filter(|&len| len as usize <= self.preread_limit);
        match small {
            Some(len) if !complete && !job.head.expects_continue() => {
                Dispatched { guard, preread: Some(Box::pin(preread(body, len as usize, job))) }
            }
            _ => {
                if !complete {
                    let pump = tokio::spawn(pump_body(body, exchange.clone()));
                    exchange.set_pump(pump.abort_handle());
                }
                app_loop.queue.push(LoopJob::Request(job));
                Dispatched { guard, preread: None }
            }
        }
    }

    /// Wait for the app's response head (after queueing a pre-read request); `close` adds
    /// `connection: close` (the connection's last request).
    async fn respond(&self, dispatched: Dispatched, close: bool) -> Response<ResponseBody> {
        let Dispatched { guard, preread } = dispatched;
        if let Some(preread) = preread {
            match preread.await {
                Ok(job) => guard.exchange().link.push(LoopJob::Request(job)),
                // The client went away while sending a small body: nobody is left to answer.
                Err(ClientGone) => return bad_request(),
            }
        }
        let exchange = guard.exchange().clone();
        let response_head = poll_fn(|cx| exchange.poll_head(cx)).await;
        guard.disarm();
        let mut response = self.response(response_head, ResponseBody::new(exchange));
        if close {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// The request head as the app sees it, proxy headers applied for a trusted proxy.
    fn head(&self, parts: &http::request::Parts, conn: &ConnectionInfo) -> RequestHead {
        let mut head = RequestHead::new(parts, conn);
        if conn.trusted_proxy {
            if let Some(proxies) = &self.proxies {
                head.apply_forwarded(proxies);
            }
        }
        head
    }

    /// Serve a WebSocket request: check the handshake, let the app decide, then either upgrade
    /// and run the session or answer with the app's (or the server's) HTTP response.
    async fn websocket(
        &self,
        conn: &ConnectionInfo,
        mut parts: http::request::Parts,
        ticket: InFlight,
        settings: Arc<WsSettings>,
    ) -> Response<ResponseBody> {
        let mut handshake = match Handshake::check(&parts, &settings) {
            Ok(handshake) => handshake,
            Err(refused) => return handshake_refused(&refused),
        };
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return handshake_refused(&HandshakeError::BadRequest("This connection cannot be upgraded"));
        };
        let head = self.head(&parts, conn);
        let app_loop = self.pick_loop();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tickets = [ticket, InFlight::take(&app_loop.in_flight)];
        let link = Link::new(id, app_loop.queue.clone(), app_loop.wakes.clone(), tickets);
        let exchange = Arc::new(WsExchange::new(link, self.high_water, settings.max_queue));
        // Until the socket is accepted, a vanished client means `websocket.disconnect` (1006).
        let guard = GoneGuard::new(exchange.clone(), WsExchange::dropped);
        let subprotocols = std::mem::take(&mut handshake.subprotocols);
        app_loop.queue.push(LoopJob::WebSocket(Box::new(NewWebSocket {
            head,
            subprotocols,
            exchange: exchange.clone(),
        })));
        match poll_fn(|cx| exchange.poll_verdict(cx)).await {
            Verdict::Accept { subprotocol, headers } => {
                guard.disarm();
                let (status, mut accept_headers) = handshake.accept_response();
                accept_headers.extend(headers);
                if let Some(value) = subprotocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
                    accept_headers.push((header::SEC_WEBSOCKET_PROTOCOL, value));
                }
                let control = self.sessions.control();
                let deflate = handshake.deflate;
                tokio::spawn(async move {
                    match on_upgrade.await {
                        Ok(upgraded) => {
                            let io = hyper_util::rt::TokioIo::new(upgraded);
                            run_session(io, exchange, settings, deflate, control).await
                        }
                        Err(_) => exchange.dropped(),
                    }
                });
                self.response(ResponseHead { status, headers: accept_headers }, ResponseBody::empty())
            }
            Verdict::Reject => empty_response(http::StatusCode::FORBIDDEN),
            Verdict::Deny { head, body } => self.response(head, ResponseBody::full(body)),
            Verdict::Fail => text_response(http::StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    }

    /// Take a place under `--limit-concurrency`, or `None` when the server is full.
    fn admit(&self) -> Option<InFlight> {
        let ticket = InFlight::take(&self.in_flight);
        match self.limit_concurrency {
            Some(limit) if ticket.count > limit => None,
            _ => Some(ticket),
        }
    }

    fn response(&self, head: ResponseHead, body: ResponseBody) -> Response<ResponseBody> {
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        let headers = response.headers_mut();
        headers.reserve(head.headers.len() + self.default_headers.len() + ROOM_FOR_LATER_HEADERS);
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

/// Entries a response's header map keeps free beyond the app's and the default headers: over
/// HTTP/2 hyper adds `date` and `content-length` to the map itself (over HTTP/1.1 it writes them
/// straight into the head), and a connection's last HTTP/1.1 response gets `connection: close`.
/// Without the room the map grows, rehashing and reallocating, on every HTTP/2 response.
const ROOM_FOR_LATER_HEADERS: usize = 2;

/// What `RequestRouter::handle` decided before its future runs.
enum Start {
    /// `--limit-concurrency` is reached: 503.
    Unavailable,
    WebSocket(Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>),
    /// A plain request handed to its loop, and whether it closes the connection.
    Http(Dispatched, bool),
}

/// A plain request given to an app loop.
struct Dispatched {
    /// Tells the app its client is gone if the response head is never sent.
    guard: GoneGuard<Exchange>,
    /// Reads the request's small body into its job, to queue next; `None` once the job is queued.
    /// Boxed, so that the body and the job it holds while reading do not size every request's
    /// future.
    preread: Option<Preread>,
}

/// A small body's read (see `preread`).
type Preread = Pin<Box<dyn Future<Output = Result<NewRequest, ClientGone>> + Send>>;

/// The client went away while sending a request body.
struct ClientGone;

/// Read a request's small body, announced by `content-length`, before the app starts, so the
/// common POST costs one hand-off: the job comes back with its whole body, ready to queue.
async fn preread(body: Incoming, len: usize, job: NewRequest) -> Result<NewRequest, ClientGone> {
    let data = read_small_body(body, len).await?;
    job.exchange.push_body(data, true);
    Ok(job)
}

/// Read a whole body of `len` bytes.
async fn read_small_body(mut body: Incoming, len: usize) -> Result<Bytes, ClientGone> {
    let mut data = BytesMut::with_capacity(len);
    while let Some(frame) = body.frame().await {
        if let Ok(chunk) = frame.map_err(|_| ClientGone)?.into_data() {
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.freeze())
}

/// Read the request body once the app first asks for it, then ahead of the app by up to
/// `BODY_READ_AHEAD` bytes.
async fn pump_body(mut body: Incoming, exchange: Arc<Exchange>) {
    use http_body::Body;
    loop {
        exchange.pump_turn().await;
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let last = body.is_end_stream();
                    if !data.is_empty() || last {
                        exchange.push_body(data, last);
                    }
                    if last {
                        return;
                    }
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

/// Tells the app its client is gone if the handler future ends (is dropped) before `disarm`:
/// an HTTP request before its head was sent, a WebSocket before it was accepted (the client left,
/// or the app rejected or denied it).
struct GoneGuard<T> {
    armed: Option<Arc<T>>,
    gone: fn(&T),
}

impl<T> GoneGuard<T> {
    fn new(exchange: Arc<T>, gone: fn(&T)) -> Self {
        Self { armed: Some(exchange), gone }
    }

    fn disarm(mut self) {
        self.armed = None;
    }

    /// The exchange this guard watches (until disarmed).
    fn exchange(&self) -> &Arc<T> {
        self.armed.as_ref().expect("an armed guard holds its exchange")
    }
}

impl<T> Drop for GoneGuard<T> {
    fn drop(&mut self) {
        if let Some(exchange) = self.armed.take() {
            (self.gone)(&exchange);
        }
    }
}

/// The answer to a WebSocket request the server refused before the app saw it.
fn handshake_refused(refused: &HandshakeError) -> Response<ResponseBody> {
    let mut response = text_response(refused.status(), refused.body());
    if *refused == HandshakeError::UnsupportedVersion {
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    response
}

/// uvicorn's answer when `--limit-concurrency` is exceeded.
fn service_unavailable() -> Response<ResponseBody> {
    let mut response = text_response(http::StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn bad_request() -> Response<ResponseBody> {
    empty_response(http::StatusCode::BAD_REQUEST)
}

/// A response the server makes itself, with no body.
fn empty_response(status: http::StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = status;
    response
}

/// A response the server makes itself, with a short plain-text body.
fn text_response(status: http::StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

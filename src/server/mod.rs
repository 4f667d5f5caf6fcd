//! The server proper: binds the listener, runs the tokio accept loop and hyper connections, and
//! shuts down gracefully on SIGINT/SIGTERM or on request. The Python face is in `api`.

mod api;
mod drain;
mod listener;
mod sched;
mod sniff;
mod stream;
mod tls_config;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulConnection;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::signal::unix::{signal, SignalKind};

pub use api::Server;
pub use listener::BindError;
pub use tls_config::TlsConfig;

use crate::bridge::JobQueue;
use crate::config::{H2Settings, HttpMode, ServerConfig};
use crate::http::{ConnectionInfo, RequestRouter};
use crate::shutdown::{ShutdownTrigger, StopReason};
use crate::tls::TlsAcceptor;
use drain::{Drain, DrainWatch};
use sniff::{Decision, Protocol};
use stream::{Listener, Stream};

/// How long WebSockets closed at shutdown get to send their close frame.
const SESSION_CLOSE_GRACE: Duration = Duration::from_millis(500);

/// What the server reports to its owner while it runs.
pub enum ServerEvent {
    /// Listening; the addresses as the "running on" line shows them.
    Ready(Vec<String>),
    /// A shutdown began for this reason; no new connections are accepted.
    ShuttingDown(StopReason),
    /// The graceful timeout passed with this many connections still open.
    GracefulTimeout(usize),
    /// SIGHUP re-read the TLS certificate and key: `None` when it worked, else why not.
    CertificatesReloaded(Option<String>),
}

/// Why the server could not run.
#[derive(Debug)]
pub enum ServeError {
    Bind(BindError),
    Runtime(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Bind(e) => e.fmt(f),
            ServeError::Runtime(e) => write!(f, "could not start the I/O runtime: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// The HTTP/1.1 settings, for the auto builder's HTTP/1.1 half and the `--http h1` builder alike.
macro_rules! http1_settings {
    ($builder:expr, $config:expr) => {
        $builder
            .timer(TokioTimer::new())
            .header_read_timeout($config.timeout_keep_alive)
            .keep_alive(true)
            .max_buf_size($config.h1_max_buf_size)
            .auto_date_header($config.date_header)
    };
}

/// hyper's HTTP/1.1 builder, for connections known to speak HTTP/1.1. It alone can bound the
/// request head exactly (431 beyond it): `max_buf_size` only bounds how far hyper buffers a head
/// it has not finished parsing, so one large read could still bring in a bigger one.
fn http1_builder(config: &ServerConfig) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // The keep-alive timeout is `run_connection`'s idle timer here, not hyper's header-read one.
    http1_settings!(builder, config).max_header_size(config.h1_max_buf_size).header_read_timeout(None);
    builder
}

fn http_builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    http1_settings!(builder.http1(), config);
    let h2 = &config.h2;
    builder
        .http2()
        .timer(TokioTimer::new())
        .auto_date_header(config.date_header)
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_stream_window_size(h2.initial_stream_window_size)
        .initial_connection_window_size(h2.initial_connection_window_size)
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(h2.max_header_list_size)
        .keep_alive_interval(h2.keep_alive_interval)
        .keep_alive_timeout(h2.keep_alive_timeout)
        // Rapid reset (CVE-2023-44487): a client that keeps resetting streams the server has not
        // accepted yet, or that keeps causing stream errors, gets GOAWAY.
        .max_pending_accept_reset_streams(H2Settings::MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2Settings::MAX_LOCAL_ERROR_RESETS);
    if config.ws.is_some() {
        // RFC 8441: WebSockets over HTTP/2 streams (extended CONNECT).
        builder.http2().enable_connect_protocol();
    }
    builder
}

/// Run the server until a signal or `stop` asks it to end; blocks the calling thread.
pub fn serve(
    config: &ServerConfig,
    loops: Vec<Arc<JobQueue>>,
    tls: Option<Arc<TlsAcceptor>>,
    stop: Arc<ShutdownTrigger>,
    on_event: &(dyn Fn(ServerEvent) + Sync),
) -> Result<(), ServeError> {
    let std_listener = listener::bind(&config.bind, config.backlog).map_err(ServeError::Bind)?;
    // Before the runtime exists, so that its threads inherit the policy.
    let _batch = sched::BatchGuard::new();
    // One I/O thread: a current-thread runtime on this (the calling) thread, so accepting and
    // serving share a thread and no task hops between threads. More: a work-stealing pool.
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("fasterapi-io")
            .enable_all()
            .build()
    }
    .map_err(ServeError::Runtime)?;
    let router = Arc::new(RequestRouter::new(config, loops, stop.clone()));
    let result = runtime.block_on(async move {
        let listener = Listener::from_std(std_listener).map_err(ServeError::Runtime)?;
        router.spawn_batchers();
        let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
        // SIGHUP re-reads the certificates; without TLS it keeps its default meaning.
        let mut hangup = match tls {
            Some(_) => Some(signal(SignalKind::hangup()).map_err(ServeError::Runtime)?),
            None => None,
        };
        let builders = Builders {
            auto: http_builder(config),
            http2: http_builder(config).http2_only(),
            http1: http1_builder(config),
        };
        let builders = Arc::new(builders);
        let drain = Drain::new();
        let address = listener.describe(tls.is_some()).map_err(ServeError::Runtime)?;
        on_event(ServerEvent::Ready(vec![address]));
        loop {
            tokio::select! {
                accepted = listener.accept(router.proxies()) => match accepted {
                    Ok((stream, info)) => {
                        let connection = Connection {
                            router: router.clone(),
                            builders: builders.clone(),
                            http: config.http,
                            keep_alive: config.timeout_keep_alive,
                            watch: drain.watcher(),
                        };
                        let tls = tls.clone();
                        let handshake_timeout = config.tls_handshake_timeout;
                        tokio::spawn(async move {
                            match tls {
                                None => connection.serve(stream, info).await,
                                // Boxed: a handshake's state is large, and the task is sized for
                                // the largest state its future can be in (see `Connection::serve`).
                                Some(tls) => Box::pin(connection.serve_tls(&tls, handshake_timeout, stream, info)).await,
                            }
                        });
                    }
                    // Out of descriptors or a connection reset before accept: back off briefly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = async { hangup.as_mut()?.recv().await }, if hangup.is_some() => {
                    if let Some(tls) = &tls {
                        on_event(ServerEvent::CertificatesReloaded(tls.reload().err().map(|e| e.to_string())));
                    }
                }
                _ = interrupt.recv() => stop.trigger(StopReason::Signal),
                _ = terminate.recv() => stop.trigger(StopReason::Signal),
                _ = stop.triggered() => {},
            }
            if stop.reason().is_some() {
                break;
            }
        }
        drop(listener);
        on_event(ServerEvent::ShuttingDown(stop.reason().unwrap_or(StopReason::Requested)));
        let sessions = router.sessions();
        let open = drain.open() + sessions.open();
        // WebSockets live until their client leaves: without a graceful timeout they are closed
        // (1012) at once, as uvicorn does; with one, the app has that long to close them.
        if config.timeout_graceful_shutdown.is_none() {
            sessions.close_all();
        }
        let drain = async { tokio::join!(drain.shutdown(), sessions.finished()) };
        // A (second) SIGINT skips the wait, as uvicorn's second CTRL+C does. SIGTERM does not:
        // a supervisor's SIGTERM after the terminal's SIGINT must not cut requests short.
        let forced = interrupt.recv();
        match config.timeout_graceful_shutdown {
            Some(limit) => tokio::select! {
                _ = drain => {},
                _ = forced => {},
                _ = tokio::time::sleep(limit) => on_event(ServerEvent::GracefulTimeout(open)),
            },
            None => tokio::select! {
                _ = drain => {},
                _ = forced => {},
            },
        }
        // Whatever is still open gets its 1012 and a moment to send it.
        sessions.close_all();
        let _ = tokio::time::timeout(SESSION_CLOSE_GRACE, sessions.finished()).await;
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let crate::config::Bind::Unix(path) = &config.bind {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// hyper's connection builders, one per way of choosing the HTTP version.
struct Builders {
    /// Reads the first bytes to tell HTTP/1.1 from HTTP/2 (when `sniff` cannot).
    auto: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    /// hyper's own HTTP/1.1 builder: it serves upgrades (WebSockets) and bounds the head exactly.
    http1: http1::Builder,
}

/// What a new connection's task needs to serve it.
struct Connection {
    router: Arc<RequestRouter>,
    builders: Arc<Builders>,
    http: HttpMode,
    /// `--timeout-keep-alive`: how long a connection may go without a request to answer (and a
    /// new one may stay silent).
    keep_alive: Duration,
    watch: DrainWatch,
}

impl Connection {
    /// Complete the TLS handshake, then serve; a failed or stalled handshake just closes.
    async fn serve_tls(self, tls: &TlsAcceptor, timeout: Duration, stream: Stream, mut info: ConnectionInfo) {
        if let Ok(Ok((stream, tls_info))) = tokio::time::timeout(timeout, tls.accept(stream)).await {
            info.secured(tls_info);
            self.serve(Stream::Tls(Box::new(stream)), info).await;
        }
    }

    async fn serve(self, stream: Stream, info: ConnectionInfo) {
        let info = Arc::new(info);
        let decision = match self.http {
            HttpMode::H1 => Decision::Serve(Protocol::Http1),
            HttpMode::H2 => Decision::Serve(Protocol::Http2),
            HttpMode::Auto => sniff::decide(&stream, &self.watch, self.keep_alive).await,
        };
        let service = {
            let (router, info) = (self.router, info.clone());
            hyper::service::service_fn(move |req| router.clone().handle(info.clone(), req))
        };
        let io = TokioIo::new(stream);
        let builders = &self.builders;
        // A connection's task is sized for the largest state its future can be in. HTTP/1.1, the
        // common case, stays inline; the HTTP/2 and auto-detect states (two to three times as
        // large) and the TLS handshake are boxed: a plain HTTP/1.1 connection's task takes 2.5 KiB
        // instead of 5.4 KiB.
        match decision {
            Decision::Serve(Protocol::Http1) => {
                let conn = builders.http1.serve_connection(io, service).with_upgrades();
                let keep_alive = Some(self.keep_alive);
                run_connection(
                    conn,
                    http1::UpgradeableConnection::graceful_shutdown,
                    info,
                    self.watch,
                    keep_alive,
                )
                .await
            }
            // HTTP/2 upgrades to WebSockets by extended CONNECT, which needs no upgrade support.
            Decision::Serve(Protocol::Http2) => {
                let conn = builders.http2.serve_connection(io, service);
                Box::pin(run_connection(conn, GracefulConnection::graceful_shutdown, info, self.watch, None))
                    .await
            }
            Decision::Auto => {
                let conn = builders.auto.serve_connection_with_upgrades(io, service);
                Box::pin(run_connection(conn, GracefulConnection::graceful_shutdown, info, self.watch, None))
                    .await
            }
            // A client that never spoke: dropping the stream closes it.
            Decision::Close => {}
        }
    }
}

/// Drive one connection; when shutdown begins, let a connection that has not received a request
/// yet take up to a short grace period to do so, then shut it down gracefully.
/// `graceful` starts the connection's graceful shutdown. With `keep_alive`, a connection that has
/// had no request to answer for that long (since it was accepted, or since its last response) is
/// closed: idle, or slowly sending a head it never completes.
async fn run_connection<C: Future>(
    conn: C,
    graceful: fn(Pin<&mut C>),
    info: Arc<ConnectionInfo>,
    watch: DrainWatch,
    keep_alive: Option<Duration>,
) {
    tokio::pin!(conn);
    let idle = idle_too_long(&info, keep_alive);
    tokio::pin!(idle);
    tokio::select! {
        _ = conn.as_mut() => return,
        // Dropping the connection closes it.
        _ = idle.as_mut() => return,
        _ = watch.started() => {}
        // `--limit-requests-per-connection`: HTTP/1.1 answers with `connection: close`, HTTP/2
        // sends GOAWAY; requests already running finish either way.
        _ = info.retired() => {
            graceful(conn.as_mut());
            let _ = conn.await;
            return;
        }
    }
    if !info.has_requests() {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = info.first_request() => {}
            _ = tokio::time::sleep(DrainWatch::first_request_grace()) => {}
        }
    }
    graceful(conn.as_mut());
    let _ = conn.await;
    drop(watch);
}

/// Resolves once the connection has been idle for `limit` (never without one). One timer per
/// connection, re-armed when it fires, instead of hyper's header-read timer, which is made,
/// boxed and registered anew for every request.
async fn idle_too_long(info: &ConnectionInfo, limit: Option<Duration>) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    let mut wait = limit;
    loop {
        tokio::time::sleep(wait).await;
        wait = match info.idle_for() {
            None => limit,
            Some(idle) if idle >= limit => return,
            Some(idle) => limit - idle,
        };
    }
}

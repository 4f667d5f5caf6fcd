//! The server proper: binds the listener, runs the tokio accept loop and hyper connections, and
//! shuts down gracefully on SIGINT/SIGTERM or on request. The Python face is in `api`.

mod api;
mod listener;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

pub use api::Server;
pub use listener::BindError;

use crate::bridge::JobQueue;
use crate::config::ServerConfig;
use crate::http::{ConnectionInfo, RequestRouter};

/// What the server reports to its owner while it runs.
pub enum ServerEvent {
    /// Listening on these addresses.
    Ready(Vec<std::net::SocketAddr>),
    /// A shutdown began; no new connections are accepted.
    ShuttingDown,
    /// The graceful timeout passed with this many connections still open.
    GracefulTimeout(usize),
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

fn http_builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.timeout_keep_alive)
        .keep_alive(true)
        .max_buf_size(config.h1_max_buf_size)
        .auto_date_header(config.date_header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .auto_date_header(config.date_header)
        .max_concurrent_streams(config.h2_max_concurrent_streams);
    builder
}

/// Run the server until a signal or `stop` asks it to end; blocks the calling thread.
pub fn serve(
    config: &ServerConfig,
    loops: Vec<Arc<JobQueue>>,
    stop: Arc<Notify>,
    on_event: &(dyn Fn(ServerEvent) + Sync),
) -> Result<(), ServeError> {
    let std_listener =
        listener::bind_tcp(&config.host, config.port, config.backlog).map_err(ServeError::Bind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .thread_name("fasterapi-io")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let router = Arc::new(RequestRouter::new(config, loops));
    let result = runtime.block_on(async move {
        let listener = TcpListener::from_std(std_listener).map_err(ServeError::Runtime)?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
        let builder = http_builder(config);
        let graceful = GracefulShutdown::new();
        on_event(ServerEvent::Ready(vec![local]));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let info = ConnectionInfo { client: Some(peer), server: Some(local), scheme: "http" };
                        let router = router.clone();
                        let service = hyper::service::service_fn(move |req| router.clone().handle(info, req));
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    // Out of descriptors or a connection reset before accept: back off briefly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                _ = stop.notified() => break,
            }
        }
        drop(listener);
        on_event(ServerEvent::ShuttingDown);
        let open = graceful.count();
        let drain = graceful.shutdown();
        let forced = async {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        };
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
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

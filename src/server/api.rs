//! `fasterapi._fasterapi.Server`: the Python face of the server. Python builds it from its
//! Config, attaches app loops, then calls `serve()`, which blocks with the GIL released.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::tls_config::TlsConfig;
use super::{serve, ServeError, ServerEvent};
use crate::bridge::{AccessLog, AppLoop, JobQueue, TaskStarter};
use crate::config::{Bind, H2Settings, HttpMode, ServerConfig};
use crate::http::TrustedHosts;
use crate::shutdown::{ShutdownTrigger, StopReason};
use crate::tls::TlsAcceptor;
use crate::ws::WsSettings;

/// One listening server with its app loops.
#[pyclass(frozen, module = "fasterapi._fasterapi")]
pub struct Server {
    config: ServerConfig,
    tls: Option<Arc<TlsAcceptor>>,
    loops: Mutex<Vec<Arc<JobQueue>>>,
    stop: Arc<ShutdownTrigger>,
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (
        *, host = "127.0.0.1".to_string(), port = 8000, uds = None, fd = None, backlog = 2048,
        http = "auto", root_path = String::new(), proxy_headers = true,
        forwarded_allow_ips = "127.0.0.1".to_string(), limit_concurrency = None,
        limit_max_requests = None, server_header = true, date_header = true, headers = Vec::new(),
        timeout_keep_alive = 5.0, timeout_graceful_shutdown = None, threads = 1,
        max_head_size = 65536, tls = None, tls_handshake_timeout = 10.0,
        limit_requests_per_connection = None, h2_max_concurrent_streams = 100,
        h2_initial_stream_window_size = 1048576, h2_initial_connection_window_size = 2097152,
        h2_max_frame_size = 16384, h2_max_header_list_size = 65536, h2_keep_alive_interval = None,
        h2_keep_alive_timeout = 20.0, ws = true, ws_max_size = 16777216, ws_max_queue = 32,
        ws_ping_interval = Some(20.0), ws_ping_timeout = Some(20.0), ws_per_message_deflate = true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        uds: Option<String>,
        fd: Option<i32>,
        backlog: i32,
        http: &str,
        root_path: String,
        proxy_headers: bool,
        forwarded_allow_ips: String,
        limit_concurrency: Option<usize>,
        limit_max_requests: Option<u64>,
        server_header: bool,
        date_header: bool,
        headers: Vec<(String, String)>,
        timeout_keep_alive: f64,
        timeout_graceful_shutdown: Option<f64>,
        threads: usize,
        max_head_size: usize,
        tls: Option<Bound<'_, TlsConfig>>,
        tls_handshake_timeout: f64,
        limit_requests_per_connection: Option<u64>,
        h2_max_concurrent_streams: u32,
        h2_initial_stream_window_size: u32,
        h2_initial_connection_window_size: u32,
        h2_max_frame_size: u32,
        h2_max_header_list_size: u32,
        h2_keep_alive_interval: Option<f64>,
        h2_keep_alive_timeout: f64,
        ws: bool,
        ws_max_size: usize,
        ws_max_queue: usize,
        ws_ping_interval: Option<f64>,
        ws_ping_timeout: Option<f64>,
        ws_per_message_deflate: bool,
    ) -> PyResult<Self> {
        let bad = |e: crate::config::ConfigError| PyValueError::new_err(e.to_string());
        let seconds = |option: &'static str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|_| {
                PyValueError::new_err(format!("{option}: must be a non-negative number of seconds"))
            })
        };
        let bind = match (uds, fd) {
            (Some(path), _) => Bind::Unix(path),
            (None, Some(fd)) => Bind::Fd(fd),
            (None, None) => Bind::Tcp { host, port },
        };
        let http = HttpMode::parse(http).map_err(bad)?;
        let tls = tls
            .map(|t| TlsAcceptor::new(t.get().settings.clone()).map(Arc::new))
            .transpose()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let forwarded_allow_ips = TrustedHosts::parse(&forwarded_allow_ips).map_err(|bad| {
            PyValueError::new_err(format!(
                "--forwarded-allow-ips: {:?} is not an IP address or network",
                bad.0
            ))
        })?;
        let config = ServerConfig {
            bind,
            http,
            proxy_headers,
            forwarded_allow_ips,
            limit_concurrency,
            limit_max_requests,
            backlog,
            root_path,
            server_header,
            date_header,
            default_headers: ServerConfig::parse_default_headers(&headers).map_err(bad)?,
            timeout_keep_alive: seconds("--timeout-keep-alive", timeout_keep_alive)?,
            timeout_graceful_shutdown: timeout_graceful_shutdown
                .map(|t| seconds("--timeout-graceful-shutdown", t))
                .transpose()?,
            threads,
            h2: H2Settings {
                max_concurrent_streams: h2_max_concurrent_streams,
                initial_stream_window_size: h2_initial_stream_window_size,
                initial_connection_window_size: h2_initial_connection_window_size,
                max_frame_size: h2_max_frame_size,
                max_header_list_size: h2_max_header_list_size,
                keep_alive_interval: h2_keep_alive_interval
                    .map(|t| seconds("--h2-keep-alive-interval", t))
                    .transpose()?,
                keep_alive_timeout: seconds("--h2-keep-alive-timeout", h2_keep_alive_timeout)?,
            },
            limit_requests_per_connection,
            h1_max_buf_size: max_head_size,
            tls_handshake_timeout: seconds("--ssl-handshake-timeout", tls_handshake_timeout)?,
            ws: match ws {
                true => Some(Arc::new(WsSettings {
                    max_size: ws_max_size.max(1),
                    max_queue: ws_max_queue.max(1),
                    ping_interval: ws_ping_interval
                        .filter(|t| *t > 0.0)
                        .map(|t| seconds("--ws-ping-interval", t))
                        .transpose()?,
                    ping_timeout: ws_ping_timeout.map(|t| seconds("--ws-ping-timeout", t)).transpose()?,
                    per_message_deflate: ws_per_message_deflate,
                })),
                false => None,
            },
            ..ServerConfig::default()
        };
        config.validate().map_err(bad)?;
        Ok(Self { config, tls, loops: Mutex::new(Vec::new()), stop: Arc::new(ShutdownTrigger::default()) })
    }

    /// Attach an asyncio loop. The caller must then run, on that loop's thread,
    /// `loop.add_reader(app_loop.fileno(), app_loop.drain)`. Access lines go to `access_log`
    /// (`logger.info`) or, batched and formatted in Rust, to `access_stream` (a text stream).
    /// Each request's task is `start_task(coro, **task_options)`, named `Task-<n>` by the server
    /// with `number_tasks`, and run in the context `task_context()` makes, if given.
    #[pyo3(signature = (
        event_loop, app, dispatch, start_task, task_options = None, number_tasks = false,
        task_context = None, state = None, access_log = None, access_stream = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_loop(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        app: Py<PyAny>,
        dispatch: Py<PyAny>,
        start_task: Py<PyAny>,
        task_options: Option<Py<PyDict>>,
        number_tasks: bool,
        task_context: Option<Py<PyAny>>,
        state: Option<Py<PyDict>>,
        access_log: Option<Py<PyAny>>,
        access_stream: Option<Py<PyAny>>,
    ) -> PyResult<AppLoop> {
        let access_log = match (access_stream, access_log) {
            (Some(stream), _) => Some(AccessLog::Stream { stream, buffer: Default::default() }),
            (None, Some(info)) => Some(AccessLog::Logger(info)),
            (None, None) => None,
        };
        let queue = Arc::new(JobQueue::new()?);
        self.loops.lock().unwrap_or_else(|e| e.into_inner()).push(queue.clone());
        AppLoop::new(
            py,
            queue,
            event_loop,
            app,
            dispatch,
            TaskStarter::new(py, start_task, task_options, number_tasks, task_context),
            state,
            &self.config.root_path,
            access_log,
        )
    }

    /// Bind and serve until SIGINT/SIGTERM or `shutdown()`; then drain gracefully and return.
    /// `on_event(name, value)` is called with ("ready", ["http://host:port"]), ("shutdown", reason) and
    /// ("graceful_timeout", open_connections). Raises OSError if the address cannot be bound.
    fn serve(&self, py: Python<'_>, on_event: Py<PyAny>) -> PyResult<()> {
        let loops = self.loops.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if loops.is_empty() {
            return Err(PyRuntimeError::new_err("serve() needs at least one loop (add_loop)"));
        }
        let report = |event: ServerEvent| {
            Python::attach(|py| {
                let result = match event {
                    ServerEvent::Ready(addrs) => on_event.call1(py, ("ready", addrs)),
                    ServerEvent::ShuttingDown(reason) => on_event.call1(py, ("shutdown", reason.as_str())),
                    ServerEvent::GracefulTimeout(open) => on_event.call1(py, ("graceful_timeout", open)),
                    ServerEvent::CertificatesReloaded(error) => {
                        on_event.call1(py, ("certificates_reloaded", error))
                    }
                };
                if let Err(err) = result {
                    err.print(py);
                }
            })
        };
        let config = &self.config;
        let stop = self.stop.clone();
        let tls = self.tls.clone();
        py.detach(|| serve(config, loops, tls, stop, &report)).map_err(|e| match e {
            ServeError::Bind(b) => PyOSError::new_err((b.source.raw_os_error().unwrap_or(0), b.to_string())),
            other => PyOSError::new_err(other.to_string()),
        })
    }

    /// Ask a running `serve()` to shut down gracefully; safe from any thread.
    fn shutdown(&self) {
        self.stop.trigger(StopReason::Requested);
    }
}

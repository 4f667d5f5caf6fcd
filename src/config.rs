//! ServerConfig: every knob the Rust core reads, with its default, validated once at construction.
//! Parsing command lines and environment variables is the Python `Config`'s job, not this module's.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::http::TrustedHosts;
use crate::ws::WsSettings;

/// Which HTTP versions a listener speaks (`--http`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMode {
    /// HTTP/1.1, and HTTP/2 by prior knowledge, detected per connection.
    Auto,
    /// HTTP/1.1 only.
    H1,
    /// HTTP/2 only (prior knowledge on cleartext).
    H2,
}

impl HttpMode {
    /// The `--http` value: `auto`, `h1` or `h2`.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value {
            "auto" => Ok(HttpMode::Auto),
            "h1" => Ok(HttpMode::H1),
            "h2" => Ok(HttpMode::H2),
            other => Err(ConfigError {
                option: "--http",
                message: format!("must be auto, h1 or h2, got {other:?}"),
            }),
        }
    }
}

/// HTTP/2 settings users tune (`--h2-*`).
#[derive(Clone, Debug)]
pub struct H2Settings {
    /// Concurrent streams a client may open on one connection.
    pub max_concurrent_streams: u32,
    /// Flow-control window of each stream and of the whole connection, in bytes.
    pub initial_stream_window_size: u32,
    pub initial_connection_window_size: u32,
    /// Largest frame payload the server accepts.
    pub max_frame_size: u32,
    /// Largest decoded header block the server accepts (bounds HPACK bombs and CONTINUATION floods).
    pub max_header_list_size: u32,
    /// Send a PING this often; no answer within `keep_alive_timeout` closes the connection.
    pub keep_alive_interval: Option<Duration>,
    pub keep_alive_timeout: Duration,
}

impl H2Settings {
    /// Streams a client may reset before the server accepted them, at any moment, before GOAWAY.
    pub const MAX_PENDING_RESETS: usize = 20;
    /// Streams the server may reset because of the client's errors before GOAWAY.
    pub const MAX_LOCAL_ERROR_RESETS: usize = 256;

    fn validate(&self) -> Result<(), ConfigError> {
        if !(16_384..=16_777_215).contains(&self.max_frame_size) {
            return Err(ConfigError {
                option: "--h2-max-frame-size",
                message: "must be between 16384 and 16777215".into(),
            });
        }
        for (option, size) in [
            ("--h2-initial-stream-window-size", self.initial_stream_window_size),
            ("--h2-initial-connection-window-size", self.initial_connection_window_size),
        ] {
            if !(65_535..=2_147_483_647).contains(&size) {
                return Err(ConfigError { option, message: "must be between 65535 and 2147483647".into() });
            }
        }
        if self.max_concurrent_streams == 0 {
            return Err(ConfigError {
                option: "--h2-max-concurrent-streams",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 100,
            initial_stream_window_size: 1024 * 1024,
            initial_connection_window_size: 2 * 1024 * 1024,
            max_frame_size: 16_384,
            max_header_list_size: 64 * 1024,
            keep_alive_interval: None,
            keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// A TCP address (`--host`, `--port`).
    Tcp { host: String, port: u16 },
    /// A Unix domain socket path (`--uds`).
    Unix(String),
    /// An inherited, already listening socket (`--fd`, systemd socket activation).
    Fd(i32),
}

/// Listening address and protocol settings for one server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub bind: Bind,
    /// Which HTTP versions to speak.
    pub http: HttpMode,
    /// Listen backlog.
    pub backlog: i32,
    /// ASGI `root_path`, also prefixed to `path` and `raw_path` as uvicorn does.
    pub root_path: String,
    /// Add `server: fasterapi` to every response unless the app sets one.
    pub server_header: bool,
    /// Add a `date` header to every response.
    pub date_header: bool,
    /// Believe proxy headers from trusted peers (`--proxy-headers`).
    pub proxy_headers: bool,
    /// The trusted peers (`--forwarded-allow-ips`).
    pub forwarded_allow_ips: TrustedHosts,
    /// Requests in flight beyond which the server answers 503 (`--limit-concurrency`).
    pub limit_concurrency: Option<usize>,
    /// Requests after which the server shuts down gracefully (`--limit-max-requests`).
    pub limit_max_requests: Option<u64>,
    /// Extra default response headers (`--header`).
    pub default_headers: Vec<(HeaderName, HeaderValue)>,
    /// Idle keep-alive timeout; also bounds how long a client may take to send a request head.
    pub timeout_keep_alive: Duration,
    /// How long a graceful shutdown waits for in-flight requests; `None` waits for ever.
    pub timeout_graceful_shutdown: Option<Duration>,
    /// Bodies up to this size that are announced by `content-length` are read before the app starts.
    pub preread_limit: usize,
    /// Bytes the app may queue on a response stream before `send` waits for the client.
    pub send_high_water: usize,
    /// Tokio I/O worker threads.
    pub threads: usize,
    /// HTTP/1.1 read buffer; a request head that does not fit is answered with 431.
    pub h1_max_buf_size: usize,
    /// HTTP/2 protocol settings.
    pub h2: H2Settings,
    /// Requests one connection may carry before it is closed gracefully.
    pub limit_requests_per_connection: Option<u64>,
    /// How long a client may take to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// WebSocket options; `None` turns WebSocket support off (`--ws none`).
    pub ws: Option<Arc<WsSettings>>,
}

/// A configuration value that cannot be used.
#[derive(Debug)]
pub struct ConfigError {
    /// The option's name, as the user knows it.
    pub option: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: Bind::Tcp { host: "127.0.0.1".into(), port: 8000 },
            http: HttpMode::Auto,
            backlog: 2048,
            root_path: String::new(),
            server_header: true,
            date_header: true,
            default_headers: Vec::new(),
            proxy_headers: true,
            forwarded_allow_ips: TrustedHosts::parse("127.0.0.1").expect("a valid address"),
            limit_concurrency: None,
            limit_max_requests: None,
            timeout_keep_alive: Duration::from_secs(5),
            timeout_graceful_shutdown: None,
            preread_limit: 64 * 1024,
            send_high_water: 256 * 1024,
            threads: 1,
            h1_max_buf_size: 64 * 1024,
            h2: H2Settings::default(),
            limit_requests_per_connection: None,
            tls_handshake_timeout: Duration::from_secs(10),
            ws: Some(Arc::default()),
        }
    }
}

impl ServerConfig {
    /// Parse `--header NAME:VALUE` pairs into header objects, naming the bad one on error.
    pub fn parse_default_headers(
        pairs: &[(String, String)],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
        pairs
            .iter()
            .map(|(name, value)| {
                let bad = |what: &str| ConfigError {
                    option: "--header",
                    message: format!("invalid header {what} in {name:?}: {value:?}"),
                };
                let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("name"))?;
                let value = HeaderValue::from_str(value.trim()).map_err(|_| bad("value"))?;
                Ok((name, value))
            })
            .collect()
    }

    /// Check the values that the type system does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.backlog <= 0 {
            return Err(ConfigError { option: "--backlog", message: "must be positive".into() });
        }
        if !self.root_path.is_empty() && !self.root_path.starts_with('/') {
            return Err(ConfigError {
                option: "--root-path",
                message: format!("must start with '/', got {:?}", self.root_path),
            });
        }
        if self.limit_concurrency == Some(0) {
            return Err(ConfigError { option: "--limit-concurrency", message: "must be at least 1".into() });
        }
        if self.limit_max_requests == Some(0) {
            return Err(ConfigError { option: "--limit-max-requests", message: "must be at least 1".into() });
        }
        if self.h1_max_buf_size < 8192 {
            return Err(ConfigError {
                option: "--h11-max-incomplete-event-size",
                message: format!("must be at least 8192, got {}", self.h1_max_buf_size),
            });
        }
        if self.threads == 0 {
            return Err(ConfigError { option: "--threads", message: "must be at least 1".into() });
        }
        if self.limit_requests_per_connection == Some(0) {
            return Err(ConfigError {
                option: "--limit-requests-per-connection",
                message: "must be at least 1".into(),
            });
        }
        self.h2.validate()?;
        if self.timeout_keep_alive.is_zero() {
            return Err(ConfigError {
                option: "--timeout-keep-alive",
                message: "must be at least 1 second".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_headers_are_parsed_and_lowercased() {
        let parsed =
            ServerConfig::parse_default_headers(&[("X-Powered-By".into(), " rust ".into())]).unwrap();
        assert_eq!(parsed[0].0.as_str(), "x-powered-by");
        assert_eq!(parsed[0].1.as_bytes(), b"rust");
    }

    #[test]
    fn header_with_newline_is_refused() {
        let err = ServerConfig::parse_default_headers(&[("x".into(), "a\nb".into())]).unwrap_err();
        assert_eq!(err.option, "--header");
    }

    #[test]
    fn root_path_must_be_absolute() {
        let cfg = ServerConfig { root_path: "api".into(), ..Default::default() };
        assert_eq!(cfg.validate().unwrap_err().option, "--root-path");
    }
}

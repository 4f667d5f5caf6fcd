//! Listener and Stream: the accepted-connection types of every kind of socket we listen on, so the
//! HTTP layer serves TCP, Unix-socket and TLS connections through one code path.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::http::{ConnectionInfo, TrustedHosts};

/// A bound, listening socket registered with tokio.
pub enum Listener {
    Tcp(TcpListener),
    Unix { listener: UnixListener, path: Arc<str> },
}

/// One accepted connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Either of the above inside a TLS session.
    Tls(Box<tokio_rustls::server::TlsStream<Stream>>),
}

impl Listener {
    /// Register a listening socket with the running tokio runtime.
    pub fn from_std(socket: super::listener::StdListener) -> io::Result<Self> {
        Ok(match socket {
            super::listener::StdListener::Tcp(l) => Listener::Tcp(TcpListener::from_std(l)?),
            super::listener::StdListener::Unix(l, path) => {
                Listener::Unix { listener: UnixListener::from_std(l)?, path: path.into() }
            }
        })
    }

    /// Where we listen, as the "running on" line shows it.
    pub fn describe(&self, tls: bool) -> io::Result<String> {
        let scheme = if tls { "https" } else { "http" };
        Ok(match self {
            Listener::Tcp(l) => {
                let addr = l.local_addr()?;
                match addr.ip() {
                    std::net::IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", addr.port()),
                    ip => format!("{scheme}://{ip}:{}", addr.port()),
                }
            }
            Listener::Unix { path, .. } => format!("unix socket {path}"),
        })
    }

    /// Accept the next connection with what its requests' scopes need to know about it.
    pub async fn accept(&self, proxies: Option<&TrustedHosts>) -> io::Result<(Stream, ConnectionInfo)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr()?;
                Ok((Stream::Tcp(stream), ConnectionInfo::tcp(peer, local, proxies)))
            }
            Listener::Unix { listener, path } => {
                let (stream, _) = listener.accept().await?;
                Ok((Stream::Unix(stream), ConnectionInfo::unix(path, proxies)))
            }
        }
    }
}

/// Call `$method` on whichever stream this is.
macro_rules! each_stream {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Stream::Tcp($s) => $call,
            Stream::Unix($s) => $call,
            Stream::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each_stream!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

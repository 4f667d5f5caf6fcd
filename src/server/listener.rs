//! Binding listening sockets. Errors name the address the way uvicorn's messages do.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// A socket could not be bound or listened on.
#[derive(Debug)]
pub struct BindError {
    pub host: String,
    pub port: u16,
    pub source: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = self.source.to_string();
        let reason = reason.split(" (os error").next().unwrap_or(&reason).to_lowercase();
        match self.source.raw_os_error() {
            Some(code) => write!(
                f,
                "[Errno {code}] error while attempting to bind on address ('{}', {}): {reason}",
                self.host, self.port
            ),
            None => write!(
                f,
                "error while attempting to bind on address ('{}', {}): {reason}",
                self.host, self.port
            ),
        }
    }
}

impl std::error::Error for BindError {}

/// Bind a TCP listener on `host:port` with `SO_REUSEADDR` and the given backlog.
pub fn bind_tcp(host: &str, port: u16, backlog: i32) -> Result<std::net::TcpListener, BindError> {
    let err = |source| BindError { host: host.to_string(), port, source };
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| err(io::Error::new(io::ErrorKind::AddrNotAvailable, "no address for host")))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(backlog).map_err(err)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_picks_a_free_port() {
        let listener = bind_tcp("127.0.0.1", 0, 16).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn address_in_use_reads_like_uvicorn() {
        let first = bind_tcp("127.0.0.1", 0, 16).unwrap();
        let port = first.local_addr().unwrap().port();
        // SO_REUSEADDR does not allow two listeners on one port.
        let err = bind_tcp("127.0.0.1", port, 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "[Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): address already in use"
            )
        );
    }
}

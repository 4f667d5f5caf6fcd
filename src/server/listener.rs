//! Binding listening sockets: TCP, Unix domain sockets and inherited descriptors. Errors name the
//! address the way uvicorn's messages do.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Bind;

/// A listening socket before tokio owns it.
pub enum StdListener {
    Tcp(std::net::TcpListener),
    Unix(UnixListener, String),
}

/// A socket could not be bound or listened on.
#[derive(Debug)]
pub struct BindError {
    /// The address as uvicorn shows it: `('127.0.0.1', 8000)`, `'/tmp/app.sock'` or `fd 3`.
    pub address: String,
    pub source: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = crate::os_error::reason(&self.source);
        match self.source.raw_os_error() {
            Some(code) => {
                write!(
                    f,
                    "[Errno {code}] error while attempting to bind on address {}: {reason}",
                    self.address
                )
            }
            None => write!(f, "error while attempting to bind on address {}: {reason}", self.address),
        }
    }
}

impl std::error::Error for BindError {}

/// Bind what `bind` names, listening with `backlog`.
pub fn bind(bind: &Bind, backlog: i32) -> Result<StdListener, BindError> {
    match bind {
        Bind::Tcp { host, port } => bind_tcp(host, *port, backlog).map(StdListener::Tcp),
        Bind::Unix(path) => bind_unix(path, backlog).map(|l| StdListener::Unix(l, path.clone())),
        Bind::Fd(fd) => from_fd(*fd),
    }
}

/// Bind a TCP listener on `host:port` with `SO_REUSEADDR`.
pub fn bind_tcp(host: &str, port: u16, backlog: i32) -> Result<std::net::TcpListener, BindError> {
    let err = |source| BindError { address: format!("('{host}', {port})"), source };
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

/// Bind a Unix socket at `path`, replacing a stale socket file, readable and writable by all.
fn bind_unix(path: &str, backlog: i32) -> Result<UnixListener, BindError> {
    let err = |source| BindError { address: format!("'{path}'"), source };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(err)?;
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
    socket.bind(&socket2::SockAddr::unix(path).map_err(err)?).map_err(err)?;
    socket.listen(backlog).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    Ok(socket.into())
}

/// Adopt an inherited listening socket (TCP or Unix).
fn from_fd(fd: i32) -> Result<StdListener, BindError> {
    let err = |source| BindError { address: format!("fd {fd}"), source };
    // SAFETY: the user handed us this descriptor (`--fd`); fcntl checks that it is open before we
    // take ownership of it.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: checked open above; nothing else in this process owns it.
    let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    socket.set_nonblocking(true).map_err(err)?;
    let local = socket.local_addr().map_err(err)?;
    if local.is_unix() {
        let path = local.as_pathname().map(|p| p.display().to_string()).unwrap_or_else(|| format!("fd {fd}"));
        Ok(StdListener::Unix(socket.into(), path))
    } else {
        Ok(StdListener::Tcp(socket.into()))
    }
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
            format!("[Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): address already in use")
        );
    }

    #[test]
    fn unix_socket_replaces_a_stale_socket_file() {
        let dir = std::env::temp_dir().join(format!("fasterapi-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.sock").display().to_string();
        let first = bind_unix(&path, 16).unwrap();
        drop(first); // leaves the socket file behind, as a crashed server would
        let second = bind_unix(&path, 16).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        drop(second);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn closed_fd_is_a_clear_error() {
        let err = from_fd(987_654).err().expect("fd 987654 is not open");
        assert!(err.to_string().contains("fd 987654"), "{err}");
    }
}

//! [`bind_sockets`] and [`bind_unix_socket`]: listening sockets for servers (Tornado's
//! `netutil.bind_sockets` and `bind_unix_socket`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

/// The listen backlog of [`bind_sockets`].
const BACKLOG: i32 = 1024;

/// Binds listening TCP sockets on `port` for `address` (a host name or IP; `None`: every
/// interface, IPv6 and IPv4), non-blocking, with `SO_REUSEADDR`, `IPV6_V6ONLY` on IPv6
/// sockets, and `SO_REUSEPORT` when `reuse_port` is set (one loop per thread sharing a
/// port). With port 0 the port the OS picks for the first socket is reused for the
/// others, so all of them share one port. Addresses of a family the host lacks are
/// skipped.
///
/// Name resolution here blocks: call it at start-up, not from a running loop.
///
/// # Errors
///
/// Resolution failed, or no address could be bound (the last error is returned).
///
/// # Examples
///
/// ```
/// let listeners = ioloop::bind_sockets(0, Some("127.0.0.1"), false)?;
/// assert_eq!(listeners.len(), 1);
/// assert_ne!(listeners[0].local_addr()?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bind_sockets(
    port: u16,
    address: Option<&str>,
    reuse_port: bool,
) -> io::Result<Vec<TcpListener>> {
    let mut addrs: Vec<SocketAddr> = match address {
        None => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
        Some(host) => (host, port).to_socket_addrs()?.collect(),
    };
    addrs.dedup();
    let mut listeners = Vec::new();
    let mut last_error = None;
    let mut chosen_port = port;
    for mut addr in addrs {
        if chosen_port != 0 {
            addr.set_port(chosen_port);
        }
        match bind_one(addr, reuse_port) {
            Ok(listener) => {
                chosen_port = listener.local_addr()?.port();
                listeners.push(listener);
            }
            // No IPv6 (or IPv4) on this host: skip that family.
            Err(e)
                if matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::AFNOSUPPORT | rustix::io::Errno::ADDRNOTAVAIL)
                ) =>
            {
                last_error = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Err(last_error.unwrap_or_else(|| io::Error::other("no address to bind")));
    }
    Ok(listeners)
}

/// Binds a listening Unix domain socket at `path`, non-blocking. A stale socket file left
/// at `path` (by a server that did not clean up) is removed first; any other kind of file
/// there is an error, never deleted.
///
/// # Errors
///
/// `AlreadyExists` if `path` is a file that is not a socket; the OS error if binding fails.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("ioloop-bind-{}.sock", std::process::id()));
/// let first = ioloop::bind_unix_socket(&path)?;
/// drop(first); // leaves the socket file behind
/// let second = ioloop::bind_unix_socket(&path)?; // the stale file is replaced
/// # drop(second);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bind_unix_socket(path: impl AsRef<Path>) -> io::Result<UnixListener> {
    let path = path.as_ref();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

pub(crate) fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let socket = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    if reuse_port {
        sockopt::set_socket_reuseport(&socket, true)?;
    }
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&socket, true)?;
    }
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(TcpListener::from(socket))
}

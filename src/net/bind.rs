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
/// others, so all of them share one port; if another socket already holds that port in
/// the other family (the OS checked only the first), the sockets are closed and a new
/// port is picked, up to 16 times. Addresses of a family the host
/// lacks are skipped.
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
    bind_all(&addrs, port, |addr| bind_one(addr, reuse_port))
}

/// How many ports [`bind_sockets`] tries for port 0 before it gives up.
const PORT_ZERO_ATTEMPTS: usize = 16;

/// Binds every address of `addrs` on `port` with `bind` (see [`bind_sockets`]).
fn bind_all(
    addrs: &[SocketAddr],
    port: u16,
    mut bind: impl FnMut(SocketAddr) -> io::Result<TcpListener>,
) -> io::Result<Vec<TcpListener>> {
    let mut attempt = 1;
    loop {
        match bind_on_one_port(addrs, port, &mut bind) {
            Err(e)
                if port == 0
                    && attempt < PORT_ZERO_ATTEMPTS
                    && e.kind() == io::ErrorKind::AddrInUse =>
            {
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// One attempt of [`bind_all`]: every address on one port (the first one's, for port 0).
fn bind_on_one_port(
    addrs: &[SocketAddr],
    port: u16,
    bind: &mut impl FnMut(SocketAddr) -> io::Result<TcpListener>,
) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut last_error = None;
    let mut chosen_port = port;
    for &addr in addrs {
        let mut addr = addr;
        if chosen_port != 0 {
            addr.set_port(chosen_port);
        }
        match bind(addr) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Port 0: when the port picked for the first address is taken in the other family,
    /// every socket is closed and a new port picked; a fixed port is never retried.
    #[test]
    fn port_zero_picks_another_port_when_the_other_family_holds_it() {
        let addrs = [
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::from(([127, 0, 0, 2], 0)),
        ];
        // The second address of the first two attempts finds its port taken.
        let mut calls = 0;
        let listeners = bind_all(&addrs, 0, |addr| {
            calls += 1;
            if calls == 2 || calls == 4 {
                return Err(io::ErrorKind::AddrInUse.into());
            }
            TcpListener::bind(addr)
        })
        .unwrap();
        assert_eq!((listeners.len(), calls), (2, 6));
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports[0], ports[1], "both on the port picked for the first");
        let mut calls = 0;
        let refused = bind_all(&addrs, 8080, |_| {
            calls += 1;
            Err(io::ErrorKind::AddrInUse.into())
        });
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert_eq!(calls, 1, "a port asked for is not retried");
        let mut calls = 0;
        let exhausted = bind_all(&addrs, 0, |addr| {
            calls += 1;
            if calls % 2 == 0 {
                return Err(io::ErrorKind::AddrInUse.into());
            }
            TcpListener::bind(addr)
        });
        assert_eq!(exhausted.unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert_eq!(calls, 2 * PORT_ZERO_ATTEMPTS);
    }
}

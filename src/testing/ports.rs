//! [`bind_unused_port`]: a loopback listener on a port the OS picked; and
//! [`bind_refusing_port`]: a port that refuses connections for as long as a test needs.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::OwnedFd;

/// Binds a listening socket to a free port on 127.0.0.1 and returns it with its port
/// (Tornado's `bind_unused_port`), for
/// [`TcpServer::add_sockets`](crate::TcpServer::add_sockets) or a test's own server.
///
/// # Errors
///
/// The OS could not bind the socket.
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let (listener, port) = ioloop::testing::bind_unused_port()?;
/// let server = ioloop::TcpServer::new(&ioloop, |_, stream, _| stream.close());
/// let bound = server.add_sockets(vec![listener])?;
/// assert_eq!(bound[0].port(), port);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bind_unused_port() -> io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// Binds a TCP socket to a free port on 127.0.0.1 without listening, and returns it with
/// its port: connecting to that port is refused (a reset) for as long as the socket is
/// held, and no other test can take the port meanwhile, as it could a port noted from a
/// closed listener.
///
/// # Errors
///
/// The OS could not make or bind the socket.
///
/// # Examples
///
/// ```
/// let (_reserved, port) = ioloop::testing::bind_refusing_port()?;
/// let refused = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
/// assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bind_refusing_port() -> io::Result<(OwnedFd, u16)> {
    use rustix::net::{bind, getsockname, socket, AddressFamily, SocketType};

    let reserved = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    bind(&reserved, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let bound = std::net::SocketAddr::try_from(getsockname(&reserved)?)
        .map_err(|_| io::Error::other("not an IP address"))?;
    Ok((reserved, bound.port()))
}

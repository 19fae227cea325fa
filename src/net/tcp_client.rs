//! [`TcpClient`]: connecting to a host by name without blocking the loop (Tornado's
//! `TCPClient`).
//!
//! A name that is not an IP address is resolved on a short-lived worker thread, whose
//! answer comes back through a [`completion`](crate::completion) (so through the loop's
//! cross-thread queue); this is the one place the crate starts a thread. Each resolved
//! address is then tried in order with a non-blocking `connect`, waiting for writability
//! through an [`AsyncFd`], until one succeeds.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::LoopError;
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::stream::{IoStream, StreamOptions, StreamSocket};
use crate::task::{completion, AsyncFd};
use crate::time::timeout;

/// Why [`TcpClient::connect`] gave no stream.
///
/// # Examples
///
/// ```
/// use ioloop::{TcpConnectError, IoLoop, TcpClient};
/// let ioloop = IoLoop::new()?;
/// // Nothing listens on this port: bind it, then close it.
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let client = TcpClient::new(&ioloop);
/// let result = ioloop.run_sync(client.connect("127.0.0.1", port))?;
/// assert!(matches!(result, Err(TcpConnectError::Refused(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[doc(alias = "ConnectError")]
pub enum TcpConnectError {
    /// The host name could not be resolved.
    Resolve(io::Error),
    /// The name resolved to no address.
    NoAddresses,
    /// The last address tried refused the connection (nothing listens there).
    Refused(SocketAddr),
    /// The last address tried failed otherwise.
    Failed(SocketAddr, io::Error),
    /// The time limit passed first.
    TimedOut,
    /// The loop was closed or dropped.
    LoopClosed,
    /// The connection was made but its TLS handshake failed
    /// ([`connect_tls`](TcpClient::connect_tls)).
    #[cfg(feature = "tls")]
    Tls(crate::stream::tls::TlsError),
}

impl fmt::Display for TcpConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpConnectError::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            TcpConnectError::NoAddresses => f.write_str("the host resolved to no address"),
            TcpConnectError::Refused(addr) => write!(f, "connection refused by {addr}"),
            TcpConnectError::Failed(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            TcpConnectError::TimedOut => f.write_str("the connection timed out"),
            TcpConnectError::LoopClosed => f.write_str("the IoLoop is closed"),
            #[cfg(feature = "tls")]
            TcpConnectError::Tls(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TcpConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TcpConnectError::Resolve(e) | TcpConnectError::Failed(_, e) => Some(e),
            #[cfg(feature = "tls")]
            TcpConnectError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// Opens TCP connections as [`IoStream`]s.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, TcpClient, TcpServer};
///
/// let ioloop = IoLoop::new()?;
/// let server = TcpServer::new_async(&ioloop, |stream, _| async move {
///     let _ = stream.write_all(b"welcome\n").await;
/// });
/// let port = server.bind("127.0.0.1:0")?.port();
/// let client = TcpClient::new(&ioloop);
/// let greeting = ioloop.run_sync(async move {
///     let stream = client.connect("localhost", port).await?;
///     Ok::<_, Box<dyn std::error::Error>>(stream.read_until(b"\n", 64).await?)
/// })??;
/// assert_eq!(greeting, b"welcome\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TcpClient {
    ioloop: WeakIoLoop,
    options: StreamOptions,
}

impl TcpClient {
    /// A client making streams on `ioloop` with default [`StreamOptions`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let port = listener.local_addr()?.port();
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let stream = ioloop.run_sync(client.connect("127.0.0.1", port))??;
    /// ioloop.run_sync(stream.write_all(b"hello"))??;
    /// let (mut accepted, _) = listener.accept()?;
    /// let mut got = [0; 5];
    /// accepted.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ioloop: &IoLoop) -> TcpClient {
        TcpClient::with_options(ioloop, StreamOptions::default())
    }

    /// A client making streams with `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let options = ioloop::StreamOptions { max_buffer_size: 1 << 20, ..Default::default() };
    /// let client = ioloop::TcpClient::with_options(&ioloop, options);
    /// # drop(client);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_options(ioloop: &IoLoop, options: StreamOptions) -> TcpClient {
        TcpClient {
            ioloop: ioloop.downgrade(),
            options,
        }
    }

    /// Connects to `host` (a name or an IP address) on `port`, trying each resolved
    /// address in turn.
    ///
    /// # Errors
    ///
    /// [`TcpConnectError`]: resolution failed, or every address failed (the last failure is
    /// reported, [`TcpConnectError::Refused`] when nothing listened).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{StreamSocket, TcpClient, TcpConnectError};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let client = TcpClient::new(&ioloop);
    /// let stream = ioloop.run_sync(client.connect("127.0.0.1", addr.port()))??;
    /// let peer = stream.with_socket(|socket| match socket {
    ///     StreamSocket::Tcp(tcp) => tcp.peer_addr().ok(),
    ///     _ => None,
    /// });
    /// assert_eq!(peer.flatten(), Some(addr));
    ///
    /// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // nothing listens
    /// let refused = ioloop.run_sync(client.connect("127.0.0.1", port))?;
    /// assert!(matches!(refused, Err(TcpConnectError::Refused(a)) if a.port() == port));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<IoStream, TcpConnectError>> + 'static {
        let client = self.clone();
        let host = host.to_owned();
        async move { client.connect_inner(host, port).await }
    }

    /// [`connect`](TcpClient::connect) with a time limit (on the loop's clock) covering
    /// resolution and every attempt; the pending socket is closed when it passes.
    ///
    /// # Errors
    ///
    /// As [`connect`](TcpClient::connect), plus [`TcpConnectError::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// let stream = ioloop.run_sync(client.connect_timeout("127.0.0.1", port, Duration::from_secs(5)))?;
    /// assert!(stream.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_timeout(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
    ) -> impl Future<Output = Result<IoStream, TcpConnectError>> + 'static {
        let connect = self.connect(host, port);
        async move {
            timeout(limit, connect)
                .await
                .unwrap_or(Err(TcpConnectError::TimedOut))
        }
    }

    /// Connects to `host` on `port` and speaks TLS, verifying the server's certificate
    /// for `host` with `config` ([`tls::default_client_config`](crate::stream::tls::default_client_config)
    /// trusts the Web PKI). Feature `tls`.
    ///
    /// # Errors
    ///
    /// As [`connect`](TcpClient::connect), and [`TcpConnectError::Tls`] when the handshake
    /// fails (an untrusted certificate, the wrong name).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let config = ioloop::tls::default_client_config();
    /// let stream = ioloop.run_sync(client.connect_tls("example.com", 443, config))??;
    /// assert!(stream.is_tls());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        &self,
        host: &str,
        port: u16,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> impl Future<Output = Result<IoStream, TcpConnectError>> + 'static {
        let connect = self.connect(host, port);
        let host = host.to_owned();
        async move {
            let stream = connect.await?;
            crate::stream::tls::connect_stream(&stream, config, &host)
                .await
                .map_err(TcpConnectError::Tls)
        }
    }

    /// [`connect_timeout`](TcpClient::connect_timeout) (or, with `limit` `None`,
    /// [`connect`](TcpClient::connect)) calling `callback` with the outcome on a later
    /// iteration. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// client.connect_then("127.0.0.1", port, None, |ioloop, stream| {
    ///     assert!(stream.is_ok());
    ///     ioloop.stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_then<F>(&self, host: &str, port: u16, limit: Option<Duration>, callback: F)
    where
        F: FnOnce(&IoLoop, Result<IoStream, TcpConnectError>) + 'static,
    {
        let Some(ioloop) = self.ioloop.upgrade() else {
            return;
        };
        match limit {
            Some(limit) => ioloop.add_future(self.connect_timeout(host, port, limit), callback),
            None => ioloop.add_future(self.connect(host, port), callback),
        }
    }

    fn ioloop(&self) -> Result<IoLoop, TcpConnectError> {
        self.ioloop.upgrade().ok_or(TcpConnectError::LoopClosed)
    }

    async fn connect_inner(&self, host: String, port: u16) -> Result<IoStream, TcpConnectError> {
        let addrs = resolve(host, port).await?;
        self.connect_first(addrs).await
    }

    /// Tries `addrs` in order; the first connection wins, else the last failure.
    async fn connect_first(&self, addrs: Vec<SocketAddr>) -> Result<IoStream, TcpConnectError> {
        let mut last = TcpConnectError::NoAddresses;
        for addr in addrs {
            let ioloop = self.ioloop()?;
            match connect_one(&ioloop, addr).await {
                Ok(stream) => {
                    return IoStream::register(&ioloop, StreamSocket::Tcp(stream), self.options)
                        .map_err(|e| TcpConnectError::Failed(addr, e.into_parts().0));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    last = TcpConnectError::Refused(addr)
                }
                Err(e) => last = TcpConnectError::Failed(addr, e),
            }
        }
        Err(last)
    }
}

/// The addresses of `host`: at once for an IP address, else from a worker thread.
async fn resolve(host: String, port: u16) -> Result<Vec<SocketAddr>, TcpConnectError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (done, resolved) = completion();
    std::thread::Builder::new()
        .name("ioloop-resolver".into())
        .spawn(move || done.complete((host.as_str(), port).to_socket_addrs().map(Vec::from_iter)))
        .map_err(TcpConnectError::Resolve)?;
    match resolved.await {
        Ok(Ok(addrs)) if addrs.is_empty() => Err(TcpConnectError::NoAddresses),
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(TcpConnectError::Resolve(e)),
        Err(_) => Err(TcpConnectError::Resolve(io::Error::other(
            "the resolver thread died",
        ))),
    }
}

/// One non-blocking connect: start it, wait until the socket is writable, read its error.
async fn connect_one(ioloop: &IoLoop, addr: SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let socket: OwnedFd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    match rustix::net::connect(&socket, &addr) {
        Ok(()) => return Ok(TcpStream::from(socket)),
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    let pending = AsyncFd::new(ioloop, socket).map_err(io::Error::from)?;
    pending.writable().await?;
    rustix::net::sockopt::socket_error(pending.get_ref())??;
    let socket = pending
        .into_inner()
        .ok_or_else(|| io::Error::other(LoopError::Closed))?;
    Ok(TcpStream::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_tried_until_one_accepts() {
        let ioloop = IoLoop::new().unwrap();
        let (_reserved, port) = crate::testing::bind_refusing_port().unwrap();
        let refused = SocketAddr::from(([127, 0, 0, 1], port));
        let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listening.local_addr().unwrap();
        let client = TcpClient::new(&ioloop);

        let c = client.clone();
        let stream = ioloop
            .run_sync(async move { c.connect_first(vec![refused, good]).await })
            .unwrap()
            .expect("the second address accepts");
        let peer = stream.with_socket(|s| match s {
            StreamSocket::Tcp(tcp) => tcp.peer_addr().unwrap(),
            _ => unreachable!(),
        });
        assert_eq!(peer, Some(good));

        let first_wins = ioloop
            .run_sync(async move { client.connect_first(vec![good, refused]).await })
            .unwrap();
        assert!(first_wins.is_ok(), "the first success wins");
        let none = ioloop.run_sync(async move {
            TcpClient::new(&IoLoop::current().unwrap())
                .connect_first(vec![refused])
                .await
        });
        assert!(matches!(none.unwrap(), Err(TcpConnectError::Refused(a)) if a == refused));
    }
}

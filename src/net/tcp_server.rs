//! [`TcpServer`]: accepting TCP (and Unix domain) connections as [`IoStream`]s
//! (Tornado's `TCPServer`).
//!
//! Each listening socket is an fd handler that accepts up to [`ACCEPTS_PER_EVENT`]
//! connections per readiness event (so one busy listener cannot starve the loop) with
//! `accept4(SOCK_NONBLOCK)`, and hands each connection to the server's handler through
//! [`IoLoop::add_callback`], so a panicking handler loses one connection, not the batch.
//! Running out of file descriptors (`EMFILE`, `ENFILE`) pauses accepting for
//! [`ACCEPT_BACKOFF`] instead of spinning on a listener that stays readable, and is
//! logged as an error at most once a second (the retries in between at debug level).
//! A server with a cap on its open connections (the HTTP server's `max_connections`)
//! stops watching its listeners at the cap, so the kernel's backlog holds the clients
//! that come, and watches them again once a connection closes.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use rustix::net::SocketFlags;

use super::bind::{bind_one, bind_sockets};
use crate::error::LoopError;
use crate::reactor::interest::Interest;
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::reactor::registration::HandlerId;
use crate::stream::{IoStream, StreamOptions, StreamSocket};

/// The most connections accepted per readiness event of a listener (Tornado's 128).
pub const ACCEPTS_PER_EVENT: usize = 128;

/// How long a listener stops accepting after the process ran out of file descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

type ConnectionHandler = Rc<dyn Fn(&IoLoop, IoStream, SocketAddr)>;

/// Accepts TCP connections and hands each to a handler as an [`IoStream`] and the peer's
/// address (Tornado's `TCPServer`).
///
/// Listen with [`listen`](TcpServer::listen) (all interfaces),
/// [`bind`](TcpServer::bind) (one address) or [`add_sockets`](TcpServer::add_sockets)
/// (sockets from [`bind_sockets`], for example with `SO_REUSEPORT` in a loop per thread).
/// [`stop`](TcpServer::stop) closes the listeners and leaves the accepted streams alone.
/// `TcpServer` is a cheap clonable handle; as in Tornado, the server runs until it is
/// stopped or its loop closes, whether or not a handle is kept (the rule `Task` and
/// `PeriodicCallback` follow too: dropping a handle never stops the work). Loop thread
/// only.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, TcpServer};
///
/// let ioloop = IoLoop::new()?;
/// let server = TcpServer::new(&ioloop, |_, stream, _peer| {
///     // Echo one line back, then close.
///     stream.read_until_then(b"\n", 1024, |stream, line| {
///         if let Ok(line) = line {
///             let _ = stream.write_then(&line, |stream, _| stream.close());
///         }
///     });
/// });
/// let addr = server.bind("127.0.0.1:0")?;
/// let client = std::thread::spawn(move || {
///     use std::io::{BufRead, BufReader, Write};
///     let mut conn = std::net::TcpStream::connect(addr).unwrap();
///     conn.write_all(b"hello\n").unwrap();
///     let mut line = String::new();
///     BufReader::new(conn).read_line(&mut line).unwrap();
///     line
/// });
/// let remote = ioloop.remote();
/// let stopper = std::thread::spawn(move || {
///     let line = client.join().unwrap();
///     remote.stop();
///     line
/// });
/// ioloop.start()?;
/// assert_eq!(stopper.join().unwrap(), "hello\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TcpServer {
    inner: Rc<ServerInner>,
}

struct ServerInner {
    ioloop: WeakIoLoop,
    handler: ConnectionHandler,
    options: StreamOptions,
    listeners: RefCell<Vec<Listening>>,
    /// When running out of descriptors was last logged as an error.
    out_of_resources: ErrorLog,
    /// The cap on open connections and what counts them (none: no cap).
    cap: RefCell<Option<Cap>>,
    /// Accepted connections not yet handed to the handler: its callback is queued, or
    /// their TLS handshake runs. They count against the cap.
    pending: Cell<usize>,
    /// The listeners are paused after running out of descriptors.
    backing_off: Cell<bool>,
    /// The listeners are paused at the cap.
    at_capacity: Cell<bool>,
    /// A check of the cap, after a connection closed, is queued.
    recheck_queued: Cell<bool>,
    /// Whether the listeners are watched for readiness now.
    watching: Cell<bool>,
    /// Set: every accepted connection speaks TLS, handed over once its handshake is done.
    #[cfg(feature = "tls")]
    tls: RefCell<Option<crate::stream::tls::TlsAcceptor>>,
}

/// A cap on open connections: at most `max`, counting the connections the server
/// handed to its handler as `open` says (a layer above knows when they close) and those
/// not yet handed over.
struct Cap {
    max: usize,
    open: Rc<dyn Fn() -> usize>,
}

/// Tells a server's accept path that one of the connections its cap counts has closed
/// (see [`TcpServer::limit_connections`]). A weak handle: it does not keep the server.
#[derive(Clone)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct ConnectionClosed(Weak<ServerInner>);

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl ConnectionClosed {
    /// A counted connection closed: if the server paused at its cap, it checks again on
    /// the next iteration (so a connection handed from one protocol to another, which
    /// leaves the count for a moment, does not resume it).
    pub(crate) fn notify(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.recheck_cap_later();
        }
    }
}

impl fmt::Debug for ConnectionClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionClosed").finish_non_exhaustive()
    }
}

/// A listening socket the server watches.
enum Listening {
    Tcp(HandlerId<TcpListener>, SocketAddr),
    Unix(HandlerId<UnixListener>),
}

impl TcpServer {
    /// A server on `ioloop` calling `handler` with each accepted connection and its
    /// peer's address, on the iteration after the accept. Nothing listens until
    /// [`listen`](TcpServer::listen), [`bind`](TcpServer::bind) or
    /// [`add_sockets`](TcpServer::add_sockets).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use ioloop::{IoLoop, TcpServer};
    ///
    /// let ioloop = IoLoop::new()?;
    /// let peers = Rc::new(RefCell::new(Vec::new()));
    /// let seen = peers.clone();
    /// let server = TcpServer::new(&ioloop, move |_, stream, peer| {
    ///     seen.borrow_mut().push(peer);
    ///     stream.close();
    /// });
    /// let addr = server.bind("127.0.0.1:0")?;
    /// let client = std::net::TcpStream::connect(addr)?; // completes from the backlog
    /// ioloop::testing::run_until(&ioloop, || !peers.borrow().is_empty());
    /// assert_eq!(peers.borrow()[0], client.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "a server listens only once listen, bind or add_sockets is called"]
    pub fn new<F>(ioloop: &IoLoop, handler: F) -> TcpServer
    where
        F: Fn(&IoLoop, IoStream, SocketAddr) + 'static,
    {
        TcpServer::with_options(ioloop, StreamOptions::default(), handler)
    }

    /// [`new`](TcpServer::new) with the [`StreamOptions`] of the accepted streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, StreamOptions, TcpServer};
    /// let ioloop = IoLoop::new()?;
    /// let options = StreamOptions { max_buffer_size: 1 << 20, ..Default::default() };
    /// let server = TcpServer::with_options(&ioloop, options, |_, _stream, _peer| {});
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a server listens only once listen, bind or add_sockets is called"]
    pub fn with_options<F>(ioloop: &IoLoop, options: StreamOptions, handler: F) -> TcpServer
    where
        F: Fn(&IoLoop, IoStream, SocketAddr) + 'static,
    {
        TcpServer {
            inner: Rc::new(ServerInner {
                ioloop: ioloop.downgrade(),
                handler: Rc::new(handler),
                options,
                listeners: RefCell::new(Vec::new()),
                out_of_resources: ErrorLog::default(),
                cap: RefCell::new(None),
                pending: Cell::new(0),
                backing_off: Cell::new(false),
                at_capacity: Cell::new(false),
                recheck_queued: Cell::new(false),
                watching: Cell::new(true),
                #[cfg(feature = "tls")]
                tls: RefCell::new(None),
            }),
        }
    }

    /// A server running `handler(stream, peer)` as a task per connection (async style).
    /// A panic in a connection's task is reported to the loop's panic policy; the
    /// server and the other connections go on.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, TcpServer};
    /// let ioloop = IoLoop::new()?;
    /// let server = TcpServer::new_async(&ioloop, |stream, _peer| async move {
    ///     while let Ok(line) = stream.read_until(b"\n", 1024).await {
    ///         if stream.write_all(&line).await.is_err() {
    ///             break;
    ///         }
    ///     }
    /// });
    /// server.bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a server listens only once listen, bind or add_sockets is called"]
    pub fn new_async<F, Fut>(ioloop: &IoLoop, handler: F) -> TcpServer
    where
        F: Fn(IoStream, SocketAddr) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        TcpServer::new(ioloop, move |ioloop, stream, peer| {
            drop(ioloop.spawn(handler(stream, peer)));
        })
    }

    /// Listens on `port` on every interface (IPv6 and IPv4, see [`bind_sockets`]) and
    /// returns the bound addresses. Takes effect at once.
    ///
    /// # Errors
    ///
    /// Binding or registering failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let addrs = server.listen(0)?;
    /// assert!(!addrs.is_empty());
    /// server.stop();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen(&self, port: u16) -> io::Result<Vec<SocketAddr>> {
        let listeners = bind_sockets(port, None, false)?;
        self.add_sockets(listeners)
    }

    /// Listens on one address (`"127.0.0.1:8888"`, `"[::1]:0"`) and returns it, with the
    /// port the OS chose for port 0.
    ///
    /// # Errors
    ///
    /// The address did not parse or resolve, or binding failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let addr = server.bind("127.0.0.1:0")?;
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0); // the port the OS chose
    /// std::net::TcpStream::connect(addr)?; // listening already
    /// assert!(server.bind("not an address").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(&self, address: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let addr = address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let listener = bind_one(addr, false)?;
        Ok(self.add_sockets(vec![listener])?[0])
    }

    /// Starts accepting on already bound and listening sockets (made non-blocking here).
    /// Returns their addresses.
    ///
    /// # Errors
    ///
    /// A socket could not be made non-blocking or registered; the sockets added before it
    /// stay.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let listeners = ioloop::bind_sockets(0, Some("127.0.0.1"), true)?;
    /// server.add_sockets(listeners)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add_sockets(&self, listeners: Vec<TcpListener>) -> io::Result<Vec<SocketAddr>> {
        let ioloop = self.ioloop()?;
        let mut addrs = Vec::new();
        for listener in listeners {
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let id = self.watch(&ioloop, listener, |fd| {
                StreamSocket::Tcp(TcpStream::from(fd))
            })?;
            self.inner
                .listeners
                .borrow_mut()
                .push(Listening::Tcp(id, addr));
            addrs.push(addr);
        }
        Ok(addrs)
    }

    /// Starts accepting on a listening Unix domain socket (from [`bind_unix_socket`](crate::bind_unix_socket)).
    /// Unix peers have no IP address: the handler is given `0.0.0.0:0` as the peer.
    ///
    /// # Errors
    ///
    /// The socket could not be made non-blocking or registered.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("ioloop-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// server.add_unix_listener(ioloop::bind_unix_socket(dir.join("server.sock"))?)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add_unix_listener(&self, listener: UnixListener) -> io::Result<()> {
        let ioloop = self.ioloop()?;
        listener.set_nonblocking(true)?;
        let id = self.watch(&ioloop, listener, |fd| {
            StreamSocket::Unix(UnixStream::from(fd))
        })?;
        self.inner.listeners.borrow_mut().push(Listening::Unix(id));
        Ok(())
    }

    /// Registers `listener`, accepting its connections as streams made by `wrap`.
    fn watch<L: AsFd + 'static>(
        &self,
        ioloop: &IoLoop,
        listener: L,
        wrap: fn(OwnedFd) -> StreamSocket,
    ) -> io::Result<HandlerId<L>> {
        // The listener's handler holds the server: it serves until `stop` removes the
        // listener (or the loop closes), whatever happens to the handles.
        let server = self.clone();
        let interest = self.inner.listening_interest();
        let id = ioloop.add_handler(listener, interest, move |ioloop, listener, _| {
            server.accept_batch(ioloop, &*listener, wrap);
        })?;
        Ok(id)
    }

    /// The server's loop.
    ///
    /// # Errors
    ///
    /// The loop is gone.
    pub(crate) fn ioloop(&self) -> io::Result<IoLoop> {
        self.inner
            .ioloop
            .upgrade()
            .ok_or_else(|| io::Error::other(LoopError::Closed))
    }

    /// The TCP addresses the server listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let addr = server.bind("127.0.0.1:0")?;
    /// assert_eq!(server.local_addrs(), [addr]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .listeners
            .borrow()
            .iter()
            .filter_map(|l| match l {
                Listening::Tcp(_, addr) => Some(*addr),
                Listening::Unix(_) => None,
            })
            .collect()
    }

    /// Stops listening: the listening sockets are closed; connections already accepted
    /// go on. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = ioloop::TcpServer::new(&ioloop, |_, _, _| {});
    /// let addr = server.bind("127.0.0.1:0")?;
    /// server.stop();
    /// server.stop();
    /// assert!(std::net::TcpStream::connect(addr).is_err()); // refused: nobody listens
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Makes every connection accepted from now on speak TLS (feature `tls`): the handler
    /// gets each stream once its handshake is done; a failed handshake is logged at debug
    /// and closes the connection.
    ///
    /// # Examples
    ///
    /// With a self-signed certificate made by `rcgen`, which the client trusts:
    ///
    /// ```
    /// use ioloop::tls::{self, rustls, TlsAcceptor};
    /// use ioloop::{IoLoop, TcpClient, TcpServer};
    /// # use std::sync::Arc;
    ///
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    /// # let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    /// # let config = tls::server_config(vec![cert.cert.der().clone()], key.into())?;
    /// # let mut roots = rustls::RootCertStore::empty();
    /// # roots.add(cert.cert.der().clone())?;
    /// # let client_config = Arc::new(tls::client_config(roots));
    /// let ioloop = IoLoop::new()?;
    /// let server = TcpServer::new_async(&ioloop, |stream, _| async move {
    ///     assert!(stream.is_tls()); // the handshake is done already
    ///     let _ = stream.write_all(b"secret\n").await;
    /// });
    /// server.set_tls(TlsAcceptor::new(config));
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// let client = TcpClient::new(&ioloop);
    /// let line = ioloop.run_sync(async move {
    ///     let stream = client.connect_tls("localhost", port, client_config).await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(stream.read_until(b"\n", 64).await?)
    /// })??;
    /// assert_eq!(line, b"secret\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, acceptor: crate::stream::tls::TlsAcceptor) {
        let replaced = self.inner.tls.borrow_mut().replace(acceptor);
        // Dropped with no borrow held (its config may hold the user's resolvers).
        drop(replaced);
    }

    /// Caps the connections open at once at `max` (at least 1), as counted by `open`
    /// plus those accepted and not yet handed over: at the cap the listeners are not
    /// watched (the kernel's backlog holds the clients that come) until a connection
    /// closes, which the returned handle is told.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn limit_connections(
        &self,
        max: usize,
        open: impl Fn() -> usize + 'static,
    ) -> ConnectionClosed {
        let replaced = self.inner.cap.borrow_mut().replace(Cap {
            max: max.max(1),
            open: Rc::new(open),
        });
        drop(replaced);
        ConnectionClosed(Rc::downgrade(&self.inner))
    }

    /// Accepts up to [`ACCEPTS_PER_EVENT`] connections from `listener`, fewer at the
    /// cap.
    fn accept_batch<L: AsFd + 'static>(
        &self,
        ioloop: &IoLoop,
        listener: &L,
        wrap: fn(OwnedFd) -> StreamSocket,
    ) {
        for _ in 0..ACCEPTS_PER_EVENT {
            if self.inner.full() {
                self.inner.at_capacity.set(true);
                self.inner.refresh_listening(ioloop);
                return;
            }
            let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
            match rustix::net::acceptfrom_with(listener, flags) {
                Ok((fd, peer)) => self.hand_over(ioloop, wrap(fd), peer),
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::CONNABORTED | rustix::io::Errno::INTR) => {}
                Err(
                    e @ (rustix::io::Errno::MFILE
                    | rustix::io::Errno::NFILE
                    | rustix::io::Errno::NOBUFS
                    | rustix::io::Errno::NOMEM),
                ) => {
                    self.inner
                        .out_of_resources
                        .report(ioloop, io::Error::from(e));
                    self.inner.back_off(ioloop);
                    return;
                }
                Err(e) => {
                    log::error!(target: "ioloop", "accept failed: {}", io::Error::from(e));
                    return;
                }
            }
        }
    }

    fn hand_over(
        &self,
        ioloop: &IoLoop,
        socket: StreamSocket,
        peer: Option<rustix::net::SocketAddrAny>,
    ) {
        let peer = peer
            .and_then(|p| SocketAddr::try_from(p).ok())
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        #[cfg(feature = "tls")]
        let acceptor = self.inner.tls.borrow().clone();
        #[cfg(feature = "tls")]
        if let Some(acceptor) = acceptor {
            let server = Rc::downgrade(&self.inner);
            let options = self.inner.options;
            // The handshake counts against the cap until it ends, however it ends.
            let in_handshake = Pending::start(&self.inner);
            let handshake = async move {
                let in_handshake = in_handshake;
                let Some(ioloop) = IoLoop::current() else {
                    return;
                };
                let accepted =
                    crate::stream::tls::accept_socket(&ioloop, socket, &acceptor, options).await;
                in_handshake.end();
                match accepted {
                    // A server stopped meanwhile (by a graceful shutdown, say) takes no
                    // more connections.
                    Ok(stream) => match server.upgrade() {
                        Some(server) if !server.listeners.borrow().is_empty() => {
                            let handler = server.handler.clone();
                            handler(&ioloop, stream, peer);
                        }
                        _ => stream.close(),
                    },
                    Err(e) => log::debug!(target: "ioloop", "TLS with {peer}: {e}"),
                }
            };
            drop(ioloop.spawn(handshake));
            return;
        }
        let stream = match IoStream::register(ioloop, socket, self.inner.options) {
            Ok(stream) => stream,
            Err(e) => {
                log::error!(target: "ioloop", "cannot register a connection from {peer}: {e}");
                return;
            }
        };
        let handler = self.inner.handler.clone();
        // Counted against the cap until the handler has it.
        let queued = Pending::start(&self.inner);
        ioloop.add_callback(move |ioloop| {
            queued.end();
            handler(ioloop, stream, peer);
        });
    }
}

/// An accepted connection not yet handed to the handler, counted in
/// [`ServerInner::pending`] until [`end`](Pending::end) (or its drop, when the loop drops
/// the queued callback or the handshake's task).
struct Pending(Weak<ServerInner>);

impl Pending {
    fn start(inner: &Rc<ServerInner>) -> Pending {
        inner.pending.set(inner.pending.get() + 1);
        Pending(Rc::downgrade(inner))
    }

    /// Handed over (or failed): no longer pending, and the cap is checked again on the
    /// next iteration.
    fn end(self) {
        if let Some(inner) = self.0.upgrade() {
            drop(self);
            inner.recheck_cap_later();
        }
    }
}

impl Drop for Pending {
    /// Only counts: a destructor (run when the loop closes, say) schedules nothing.
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.pending.set(inner.pending.get().saturating_sub(1));
        }
    }
}

/// How often running out of descriptors (or memory) is logged as an error: a process
/// short of them for a while retries after every [`ACCEPT_BACKOFF`], and one line a
/// second says as much as ten.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The rate limit of one kind of error's log lines, on the loop's clock: an error at most
/// once per [`ERROR_LOG_INTERVAL`] (saying how many were quiet since), the others at
/// debug level.
#[derive(Default)]
struct ErrorLog {
    last: Cell<Option<Instant>>,
    quiet: Cell<u64>,
}

impl ErrorLog {
    fn report(&self, ioloop: &IoLoop, error: io::Error) {
        let now = ioloop.time();
        let due = self
            .last
            .get()
            .is_none_or(|last| now.saturating_duration_since(last) >= ERROR_LOG_INTERVAL);
        if !due {
            self.quiet.set(self.quiet.get() + 1);
            log::debug!(
                target: "ioloop",
                "cannot accept a connection ({error}); pausing the listener for {ACCEPT_BACKOFF:?}"
            );
            return;
        }
        self.last.set(Some(now));
        let quiet = self.quiet.replace(0);
        if quiet == 0 {
            log::error!(
                target: "ioloop",
                "cannot accept a connection ({error}); pausing the listener for {ACCEPT_BACKOFF:?}"
            );
        } else {
            log::error!(
                target: "ioloop",
                "cannot accept a connection ({error}); pausing the listener for {ACCEPT_BACKOFF:?} \
                 ({quiet} more since the last report)"
            );
        }
    }
}

impl ServerInner {
    fn ioloop(&self) -> Option<IoLoop> {
        self.ioloop.upgrade()
    }

    /// Whether the open connections (and those not yet handed over) reach the cap.
    fn full(&self) -> bool {
        let cap = self
            .cap
            .borrow()
            .as_ref()
            .map(|cap| (cap.max, cap.open.clone()));
        // Called with no borrow held.
        cap.is_some_and(|(max, open)| self.pending.get() + open() >= max)
    }

    /// The interest the listeners should have now.
    fn listening_interest(&self) -> Interest {
        if self.backing_off.get() || self.at_capacity.get() {
            Interest::NONE
        } else {
            Interest::READ
        }
    }

    /// Watches the listeners, or stops, as the backoff and the cap say.
    fn refresh_listening(&self, ioloop: &IoLoop) {
        let interest = self.listening_interest();
        let watch = interest.is_readable();
        if self.watching.replace(watch) == watch {
            return;
        }
        // The ids are copied out: no borrow is held while the loop changes them.
        let ids: Vec<_> = self
            .listeners
            .borrow()
            .iter()
            .map(|l| match l {
                Listening::Tcp(id, _) => Ok(*id),
                Listening::Unix(id) => Err(*id),
            })
            .collect();
        for id in ids {
            let changed = match id {
                Ok(id) => ioloop.update_handler(id, interest),
                Err(id) => ioloop.update_handler(id, interest),
            };
            if let Err(e) = changed {
                log::debug!(target: "ioloop", "cannot change a listener's interest: {e}");
            }
        }
    }

    /// Stops watching the listeners for [`ACCEPT_BACKOFF`] (out of file descriptors:
    /// every listener of the process would fail alike). A listener removed meanwhile
    /// (the server stopped) is not resumed.
    fn back_off(self: &Rc<Self>, ioloop: &IoLoop) {
        if self.backing_off.replace(true) {
            return;
        }
        self.refresh_listening(ioloop);
        let server = Rc::downgrade(self);
        ioloop.call_later(ACCEPT_BACKOFF, move |ioloop| {
            if let Some(server) = server.upgrade() {
                server.backing_off.set(false);
                server.refresh_listening(ioloop);
            }
        });
    }

    /// At the cap, checks on the next iteration whether a connection closed meanwhile
    /// and the listeners can be watched again.
    fn recheck_cap_later(self: &Rc<Self>) {
        if !self.at_capacity.get() || self.recheck_queued.replace(true) {
            return;
        }
        let Some(ioloop) = self.ioloop() else {
            return;
        };
        let server = Rc::downgrade(self);
        ioloop.add_callback(move |ioloop| {
            if let Some(server) = server.upgrade() {
                server.recheck_queued.set(false);
                if server.at_capacity.get() && !server.full() {
                    server.at_capacity.set(false);
                    server.refresh_listening(ioloop);
                }
            }
        });
    }

    fn stop(&self) {
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        if let Some(ioloop) = self.ioloop.upgrade() {
            // Removing a listener closes it.
            for listener in listeners {
                match listener {
                    Listening::Tcp(id, _) => drop(ioloop.remove_handler(id)),
                    Listening::Unix(id) => drop(ioloop.remove_handler(id)),
                }
            }
        }
    }
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("listening", &self.local_addrs())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

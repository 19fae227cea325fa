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
use crate::reactor::ioloop::{IoLoop, LoopInner};
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
    ioloop: Weak<LoopInner>,
    handler: ConnectionHandler,
    options: StreamOptions,
    listeners: RefCell<Vec<Listening>>,
    /// When running out of descriptors was last logged as an error.
    out_of_resources: ErrorLog,
    /// Set: every accepted connection speaks TLS, handed over once its handshake is done.
    #[cfg(feature = "tls")]
    tls: RefCell<Option<super::tls::TlsAcceptor>>,
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
    /// See [`TcpServer`].
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
                ioloop: Rc::downgrade(&ioloop.inner),
                handler: Rc::new(handler),
                options,
                listeners: RefCell::new(Vec::new()),
                out_of_resources: ErrorLog::default(),
                #[cfg(feature = "tls")]
                tls: RefCell::new(None),
            }),
        }
    }

    /// A server running `handler(stream, peer)` as a task per connection (async style).
    /// A panic in a connection's task is reported to the loop's exception policy; the
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
    /// See [`TcpServer`].
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
        let id = ioloop.add_handler(listener, Interest::READ, move |ioloop, listener, event| {
            server.accept_batch(ioloop, &*listener, event.id(), wrap);
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
            .map(|inner| IoLoop { inner })
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
    /// See [`TlsAcceptor`](super::tls::TlsAcceptor).
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, acceptor: super::tls::TlsAcceptor) {
        *self.inner.tls.borrow_mut() = Some(acceptor);
    }

    /// Accepts up to [`ACCEPTS_PER_EVENT`] connections from `listener`.
    fn accept_batch<L: AsFd + 'static>(
        &self,
        ioloop: &IoLoop,
        listener: &L,
        id: HandlerId<L>,
        wrap: fn(OwnedFd) -> StreamSocket,
    ) {
        for _ in 0..ACCEPTS_PER_EVENT {
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
                    pause(ioloop, id);
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
        if let Some(acceptor) = self.inner.tls.borrow().clone() {
            let server = Rc::downgrade(&self.inner);
            let options = self.inner.options;
            let handshake = async move {
                let Some(ioloop) = IoLoop::current() else {
                    return;
                };
                match super::tls::accept_socket(&ioloop, socket, &acceptor, options).await {
                    // A server stopped meanwhile (by a graceful shutdown, say) takes no
                    // more connections.
                    Ok(stream) => match server.upgrade() {
                        Some(server) if !server.listeners.borrow().is_empty() => {
                            (server.handler)(&ioloop, stream, peer)
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
        ioloop.add_callback(move |ioloop| handler(ioloop, stream, peer));
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

/// Stops watching a listener for [`ACCEPT_BACKOFF`] (out of file descriptors). A listener
/// removed meanwhile (the server stopped) is not resumed: its id is stale by then.
fn pause<L: 'static>(ioloop: &IoLoop, id: HandlerId<L>) {
    if ioloop.update_handler(id, Interest::NONE).is_ok() {
        ioloop.call_later(ACCEPT_BACKOFF, move |ioloop| {
            let _ = ioloop.update_handler(id, Interest::READ);
        });
    }
}

impl ServerInner {
    fn stop(&self) {
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        if let Some(inner) = self.ioloop.upgrade() {
            let ioloop = IoLoop { inner };
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

//! [`HttpServer`]: an HTTP/1.1 server on one loop — listening, serving each accepted
//! connection, and shutting down gracefully.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use super::super::service::Service;
use super::connection::Connection;
use super::options::ServerOptions;
use super::shared::ServerShared;
use super::upgraded::CountUpgrades;
use crate::net::TcpServer;
use crate::reactor::ioloop::IoLoop;
use crate::stream::StreamOptions;
use crate::task::{completion, Completion};

/// An HTTP/1.1 server on the loop: accepts connections and answers their requests through
/// a [`Service`] (such as a web [`Application`](crate::web::Application)).
///
/// Connections are served with Tornado's rules and stricter ones where Tornado is lax:
/// keep-alive for HTTP/1.1 and for HTTP/1.0 with `Connection: keep-alive`; pipelined
/// requests answered in order, every request already buffered parsed in one pass and
/// the responses of a batch sent in one write; `Content-Length` and chunked bodies both
/// ways; `Expect: 100-continue` answered once the body is accepted; HEAD with the GET
/// headers; a `Date` cached per second; `TCP_NODELAY`. The limits and timeouts of
/// [`ServerOptions`] give 400, 408, 413 and 431 answers, and its optional
/// `max_connections` caps the open connections (at the cap, clients wait in the kernel's
/// backlog). Like a [`TcpServer`] it lives
/// until [`stop`](HttpServer::stop), [`shutdown`](HttpServer::shutdown) or the loop
/// closes, whatever happens to this handle.
///
/// # Examples
///
/// ```no_run
/// use std::rc::Rc;
/// use ioloop::http::{Dispatch, Handler, HttpServer, Request, Responder, Response, Service};
///
/// struct Hello;
/// impl Handler for Hello {
///     fn call(&self, _req: Request, responder: Responder) {
///         responder.send(Response::text("Hello, World!"));
///     }
/// }
/// struct App(Rc<Hello>);
/// impl Service for App {
///     fn dispatch(&self, _req: &mut Request) -> Dispatch {
///         Dispatch::handle(self.0.clone())
///     }
/// }
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let server = HttpServer::new(&ioloop, App(Rc::new(Hello)));
/// server.listen(8080)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HttpServer {
    shared: Rc<ServerShared>,
    tcp: TcpServer,
}

impl HttpServer {
    /// A server answering through `service`, with default [`ServerOptions`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ioloop::http::{Dispatch, HttpServer, Request, Response, Service};
    ///
    /// struct Hello;
    /// impl Service for Hello {
    ///     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    ///         Dispatch::Respond(Response::text("hello"))
    ///     }
    /// }
    /// let reply = ioloop::testing::run_test(Duration::from_secs(5), |ioloop| async move {
    ///     let server = HttpServer::new(&ioloop, Hello);
    ///     let port = server.bind("127.0.0.1:0").unwrap().port();
    ///     let stream = ioloop::TcpClient::new(&ioloop).connect("127.0.0.1", port).await.unwrap();
    ///     let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ///     stream.write_all(request).await.unwrap();
    ///     stream.read_until_close().await.unwrap()
    /// });
    /// let reply = String::from_utf8(reply).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(reply.contains("\r\nContent-Length: 5\r\n") && reply.ends_with("\r\n\r\nhello"));
    /// ```
    #[track_caller]
    #[must_use = "a server listens only once listen, bind or add_sockets is called"]
    pub fn new(ioloop: &IoLoop, service: impl Service) -> HttpServer {
        HttpServer::with_options(ioloop, ServerOptions::default(), service)
    }

    /// A server with chosen limits and timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{HttpServer, ServerOptions};
    /// # struct S;
    /// # impl ioloop::http::Service for S {
    /// #     fn dispatch(&self, _: &mut ioloop::http::Request) -> ioloop::http::Dispatch {
    /// #         ioloop::http::Dispatch::Respond(ioloop::http::Response::error(404))
    /// #     }
    /// # }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let options = ServerOptions { max_body_size: 1 << 20, ..Default::default() };
    /// let server = HttpServer::with_options(&ioloop, options, S);
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    #[must_use = "a server listens only once listen, bind or add_sockets is called"]
    pub fn with_options(
        ioloop: &IoLoop,
        options: ServerOptions,
        service: impl Service,
    ) -> HttpServer {
        let options = options.effective();
        let site = Location::caller();
        // Upgraded connections (WebSockets) stay counted: their upgrade callbacks run
        // where they can register with this server.
        let shared = Rc::new_cyclic(|server| {
            let service = CountUpgrades {
                service: Box::new(service),
                server: server.clone(),
            };
            ServerShared::new(options, Box::new(service), site)
        });
        let stream_options = StreamOptions {
            // Room for a whole head and then some, so an oversized one is seen as such.
            max_buffer_size: options.max_head_bytes + 64 * 1024,
            ..StreamOptions::default()
        };
        let conn_shared = shared.clone();
        let tcp = TcpServer::with_options(ioloop, stream_options, move |_, stream, peer| {
            Connection::start(stream, peer, conn_shared.clone());
        });
        if let Some(max) = options.max_connections {
            // The registry counts the open connections, WebSockets included; the accept
            // path adds those accepted and not yet started.
            let registry = Rc::downgrade(&shared);
            let notice = tcp.limit_connections(max, move || {
                registry
                    .upgrade()
                    .map_or(0, |shared| shared.connection_count())
            });
            shared.notify_closes_to(notice);
        }
        HttpServer { shared, tcp }
    }

    /// Listens on `port` on every interface (IPv6 and IPv4); port 0 picks one.
    ///
    /// # Errors
    ///
    /// Binding failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Hello;
    /// # impl Service for Hello {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("hello"))
    /// #     }
    /// # }
    /// use ioloop::http::HttpServer;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = HttpServer::new(&ioloop, Hello);
    /// let addrs = server.listen(0)?;
    /// // Every interface, IPv6 and IPv4 where the host has them, on one port the OS picked.
    /// let port = addrs[0].port();
    /// assert!(port != 0 && addrs.iter().all(|a| a.port() == port && a.ip().is_unspecified()));
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let reply = ioloop.run_sync(async move {
    ///     let stream = client.connect("127.0.0.1", port).await?;
    ///     stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(stream.read_until_close().await?)
    /// })??;
    /// assert!(reply.ends_with(b"\r\n\r\nhello"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen(&self, port: u16) -> io::Result<Vec<SocketAddr>> {
        self.tcp.listen(port)
    }

    /// Listens on one address.
    ///
    /// # Errors
    ///
    /// Resolving or binding failed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) -> std::io::Result<()> {
    /// let addr = server.bind("127.0.0.1:0")?;
    /// # let _ = addr; Ok(()) }
    /// ```
    pub fn bind(&self, address: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        self.tcp.bind(address)
    }

    /// Accepts on listening sockets made elsewhere (for example by
    /// [`bind_sockets`](crate::bind_sockets) with `SO_REUSEPORT`).
    ///
    /// # Errors
    ///
    /// A socket could not be registered.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) -> std::io::Result<()> {
    /// server.add_sockets(ioloop::bind_sockets(8080, None, true)?)?;
    /// # Ok(()) }
    /// ```
    pub fn add_sockets(&self, listeners: Vec<TcpListener>) -> io::Result<Vec<SocketAddr>> {
        self.tcp.add_sockets(listeners)
    }

    /// The addresses it listens on.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) {
    /// println!("{:?}", server.local_addrs());
    /// # }
    /// ```
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.local_addrs()
    }

    /// Open connections, WebSockets upgraded from them included.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) {
    /// assert_eq!(server.connections(), 0);
    /// # }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.connection_count()
    }

    /// Stops accepting connections (open ones go on).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) {
    /// server.stop();
    /// # }
    /// ```
    pub fn stop(&self) {
        self.tcp.stop();
    }

    /// Serves HTTPS from now on (feature `tls`): every connection accepted after this
    /// call does a TLS handshake before its first request. A client speaking plain HTTP
    /// to the port gets `400 Bad Request` in plain text, as from nginx.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::{tls, web::{get, Application}};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let app = Application::new().route("/", get(|_| async { "hello over HTTPS" }));
    /// let (server, _addr) = app.bind(&ioloop, "127.0.0.1:8443")?;
    /// server.set_tls(tls::TlsAcceptor::new(tls::server_config_from_pem("cert.pem", "key.pem")?));
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, acceptor: crate::stream::tls::TlsAcceptor) {
        self.tcp.set_tls(acceptor.answering_plain_http());
    }

    /// Shuts down gracefully: stops accepting at once, closes idle keep-alive connections,
    /// lets requests in flight finish (their responses carry `Connection: close`), sends
    /// every open WebSocket a close frame with 1001 ("going away") and waits for its
    /// closing handshake, and after `deadline` closes whatever is left (a WebSocket that
    /// never answered included). `done` runs on the loop, on a later iteration, once
    /// every connection is closed, WebSockets included; the deadline's timer is removed
    /// then, so [`IoLoop::poll_timeout`] does not report it. A WebSocket whose own
    /// `close_timeout` (in its `WebSocketOptions`) is shorter than `deadline` is closed
    /// at that timeout instead. Runs on the server's loop, from
    /// any code of its thread; on a closed loop, `done` never runs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(server: ioloop::http::HttpServer) {
    /// server.shutdown_then(std::time::Duration::from_secs(5), |ioloop| ioloop.stop());
    /// # }
    /// ```
    pub fn shutdown_then(&self, deadline: Duration, done: impl FnOnce(&IoLoop) + 'static) {
        self.tcp.stop();
        // The server's own loop (not the thread's current one: a test or an embedder
        // may hold several).
        match self.tcp.ioloop() {
            Ok(ioloop) => self.shared.shut_down(&ioloop, deadline, done),
            Err(_) => log::debug!(target: "ioloop", "shutdown of a server whose loop is closed"),
        }
    }

    /// The async [`shutdown_then`](HttpServer::shutdown_then).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server: ioloop::http::HttpServer) {
    /// server.shutdown(std::time::Duration::from_secs(5)).await;
    /// # }
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> impl std::future::Future<Output = ()> {
        let (done, closed): (_, Completion<()>) = completion();
        self.shutdown_then(deadline, move |_| done.complete(()));
        async move {
            let _ = closed.await;
        }
    }
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("listening", &self.local_addrs())
            .field("connections", &self.connections())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

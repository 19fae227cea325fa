//! [`serve_on_threads`]: one loop per thread, each with its own [`HttpServer`] on a shared
//! port (`SO_REUSEPORT`: the kernel spreads connections over the threads), started with
//! one call: Tornado's `server.start(n)`, without fork.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::http_server::HttpServer;
use super::options::ServerOptions;
use crate::http::service::Service;
use crate::net::bind_sockets;
use crate::reactor::ioloop::IoLoop;
use crate::reactor::remote::Remote;

thread_local! {
    /// The server of this thread's loop, for the shutdown posted from another thread.
    static THREAD_SERVER: RefCell<Option<HttpServer>> = const { RefCell::new(None) };
}

/// The servers started by [`serve_on_threads`]: their port, and the handles to shut them
/// down and wait for their threads.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use ioloop::http::{serve_on_threads, Dispatch, Request, Response, ServerOptions, Service};
///
/// // Answers with the name of the thread that served the request.
/// struct Who;
/// impl Service for Who {
///     fn dispatch(&self, _req: &mut Request) -> Dispatch {
///         Dispatch::Respond(Response::text(std::thread::current().name().unwrap().to_owned()))
///     }
/// }
/// let servers = serve_on_threads(2, 0, ServerOptions::default(), || Who)?;
/// let mut client = std::net::TcpStream::connect(("127.0.0.1", servers.local_addrs()[0].port()))?;
/// client.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?;
/// assert!(reply.contains("\r\n\r\nioloop-http-"));
/// servers.shutdown(Duration::from_secs(5));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ThreadedServer {
    addrs: Vec<SocketAddr>,
    remotes: Vec<Remote>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves HTTP on `port` (all interfaces; 0 picks one) with `threads` loops, one per
/// thread, each running the service `make_service` makes on that thread (services are
/// not `Send`: each thread has its own). Every thread binds its own listening sockets with
/// `SO_REUSEPORT`, so the kernel spreads new connections over them.
///
/// # Errors
///
/// Binding failed, or a thread could not be started.
///
/// # Examples
///
/// ```no_run
/// use std::rc::Rc;
/// use ioloop::http::{serve_on_threads, Dispatch, Request, Response, ServerOptions, Service};
///
/// struct Plain;
/// impl Service for Plain {
///     fn dispatch(&self, _req: &mut Request) -> Dispatch {
///         Dispatch::Respond(Response::text("Hello, World!"))
///     }
/// }
///
/// let servers = serve_on_threads(2, 8080, ServerOptions::default(), || Plain)?;
/// println!("serving on {:?}", servers.local_addrs());
/// servers.join();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_on_threads<S, F>(
    threads: usize,
    port: u16,
    options: ServerOptions,
    make_service: F,
) -> io::Result<ThreadedServer>
where
    S: Service,
    F: Fn() -> S + Send + Sync + 'static,
{
    let make_service = std::sync::Arc::new(make_service);
    let mut port = port;
    let mut all_addrs = Vec::new();
    let mut remotes = Vec::new();
    let mut handles = Vec::new();
    for index in 0..threads.max(1) {
        let listeners = bind_sockets(port, None, true)?;
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        port = addrs[0].port();
        if index == 0 {
            all_addrs = addrs;
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        let make_service = make_service.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ioloop-http-{index}"))
            .spawn(move || {
                let ioloop = match IoLoop::new() {
                    Ok(ioloop) => ioloop,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let server = HttpServer::with_options(&ioloop, options, make_service());
                if let Err(e) = server.add_sockets(listeners) {
                    return drop(ready_tx.send(Err(e)));
                }
                THREAD_SERVER.with(|s| *s.borrow_mut() = Some(server));
                let _ = ready_tx.send(Ok(ioloop.remote()));
                if let Err(e) = ioloop.start() {
                    log::error!(target: "ioloop::http", "server loop failed: {e}");
                }
                THREAD_SERVER.with(|s| s.borrow_mut().take());
            })?;
        let remote = ready_rx
            .recv()
            .map_err(|_| io::Error::other("a server thread died while starting"))??;
        remotes.push(remote);
        handles.push(handle);
    }
    Ok(ThreadedServer {
        addrs: all_addrs,
        remotes,
        threads: handles,
    })
}

impl ThreadedServer {
    /// The addresses every thread listens on.
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
    /// use ioloop::http::{serve_on_threads, ServerOptions};
    ///
    /// let servers = serve_on_threads(2, 0, ServerOptions::default(), || Hello)?;
    /// // Every interface, on the one port all the threads share.
    /// let addrs = servers.local_addrs();
    /// let port = addrs[0].port();
    /// assert!(port != 0 && addrs.iter().all(|a| a.port() == port && a.ip().is_unspecified()));
    /// servers.shutdown(std::time::Duration::ZERO);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Shuts every server down gracefully (see [`HttpServer::shutdown_then`]) and waits
    /// for the threads.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(servers: ioloop::http::ThreadedServer) {
    /// servers.shutdown(std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn shutdown(self, deadline: Duration) {
        for remote in &self.remotes {
            let _ = remote.add_callback(move |ioloop| {
                let server = THREAD_SERVER.with(|s| s.borrow().clone());
                match server {
                    Some(server) => server.shutdown_then(deadline, |ioloop| ioloop.stop()),
                    None => ioloop.stop(),
                }
            });
        }
        self.join();
    }

    /// Waits for the threads (they run until shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use ioloop::http::{serve_on_threads, Dispatch, Request, Response, ServerOptions, Service};
    ///
    /// // Stops its thread's loop on the first request, which ends the thread.
    /// struct StopOnce;
    /// impl Service for StopOnce {
    ///     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    ///         ioloop::IoLoop::current().unwrap().stop();
    ///         Dispatch::Respond(Response::text("bye"))
    ///     }
    /// }
    /// let servers = serve_on_threads(1, 0, ServerOptions::default(), || StopOnce)?;
    /// let port = servers.local_addrs()[0].port();
    /// let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
    /// client.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    /// servers.join();
    /// // The thread is over, and its listening sockets are closed with its loop.
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for ThreadedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadedServer")
            .field("addrs", &self.addrs)
            .field("threads", &self.threads.len())
            .finish()
    }
}

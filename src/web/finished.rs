//! [`FinishedRequest`]: what an application's finish hooks are told of each answered
//! request.

use std::net::SocketAddr;
use std::time::Duration;

/// A request the application has answered, as its
/// [`on_finish`](crate::web::Application::on_finish) hooks see it: for access logs and
/// metrics (Tornado's `on_finish` and `log_request`).
///
/// # Examples
///
/// ```
/// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
/// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
/// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
/// #     let client = ioloop::TcpClient::new(&ioloop);
/// #     let reply = ioloop.run_sync(async move {
/// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
/// #         stream.write_all(&request).await.unwrap();
/// #         stream.read_until_close().await.unwrap()
/// #     });
/// #     String::from_utf8(reply.unwrap()).unwrap()
/// # }
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use ioloop::web::{get, Application, FinishedRequest};
///
/// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
/// let log = done.clone();
/// let app = Application::new()
///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
///     .route("/items", get(|_req| async { "items" }));
/// // `ask` serves the application and returns its answer to one request.
/// ask(app.clone(), "GET /items?page=2 HTTP/1.0\r\n\r\n");
/// ask(app, "DELETE /nothing HTTP/1.0\r\n\r\n");
/// let done = done.borrow();
/// assert_eq!((done[0].method(), done[0].path(), done[0].status()), ("GET", "/items", 200));
/// assert_eq!((done[1].method(), done[1].path(), done[1].status()), ("DELETE", "/nothing", 404));
/// assert!(done[0].peer_addr().ip().is_loopback());
/// ```
#[derive(Debug, Clone)]
pub struct FinishedRequest {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) peer: SocketAddr,
    pub(super) status: u16,
    pub(super) elapsed: Duration,
}

impl FinishedRequest {
    /// The request's method.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use ioloop::web::{get, Application, FinishedRequest};
    ///
    /// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    /// let log = done.clone();
    /// let app = Application::new()
    ///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
    ///     .route("/", get(|_req| async { "home" }).post(|_req| async { "posted" }));
    /// // `ask` serves the application and returns its answer to one request.
    /// ask(app.clone(), "GET / HTTP/1.0\r\n\r\n");
    /// ask(app, "POST / HTTP/1.0\r\n\r\n");
    /// let methods: Vec<String> = done.borrow().iter().map(|d| d.method().to_owned()).collect();
    /// assert_eq!(methods, ["GET", "POST"]);
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's path (without the query).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use ioloop::web::{get, Application, FinishedRequest};
    ///
    /// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    /// let log = done.clone();
    /// let app = Application::new()
    ///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
    ///     .route("/search", get(|_req| async { "results" }));
    /// // `ask` serves the application and returns its answer to one request.
    /// ask(app, "GET /search?q=rust HTTP/1.0\r\n\r\n");
    /// assert_eq!(done.borrow()[0].path(), "/search"); // without the query
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client's address.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use ioloop::web::{get, Application, FinishedRequest};
    ///
    /// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    /// let log = done.clone();
    /// let app = Application::new()
    ///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
    ///     .route("/", get(|_req| async { "home" }));
    /// // `ask` serves the application and returns its answer to one request, from 127.0.0.1.
    /// ask(app, "GET / HTTP/1.0\r\n\r\n");
    /// let peer = done.borrow()[0].peer_addr();
    /// assert_eq!(peer.ip(), std::net::Ipv4Addr::LOCALHOST);
    /// assert_ne!(peer.port(), 0);
    /// ```
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The response's status.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use ioloop::web::{get, Application, FinishedRequest};
    ///
    /// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    /// let log = done.clone();
    /// let app = Application::new()
    ///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
    ///     .route("/", get(|_req| async { "home" }));
    /// // `ask` serves the application and returns its answer to one request.
    /// ask(app.clone(), "GET / HTTP/1.0\r\n\r\n");
    /// ask(app.clone(), "GET /missing HTTP/1.0\r\n\r\n");
    /// ask(app, "PUT / HTTP/1.0\r\n\r\n");
    /// let statuses: Vec<u16> = done.borrow().iter().map(|d| d.status()).collect();
    /// assert_eq!(statuses, [200, 404, 405]);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// From the handler's call (the request head and body read) to the response being
    /// complete, on the loop's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// # use std::time::Duration;
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use ioloop::web::{get, Application, FinishedRequest};
    ///
    /// let done: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    /// let log = done.clone();
    /// let app = Application::new()
    ///     .on_finish(move |finished| log.borrow_mut().push(finished.clone()))
    ///     .route("/slow", get(|_req| async {
    ///         ioloop::sleep(Duration::from_millis(20)).await;
    ///         "done"
    ///     }));
    /// // `ask` serves the application and returns its answer to one request.
    /// ask(app.clone(), "GET /slow HTTP/1.0\r\n\r\n");
    /// ask(app, "GET /missing HTTP/1.0\r\n\r\n");
    /// assert!(done.borrow()[0].elapsed() >= Duration::from_millis(20));
    /// assert_eq!(done.borrow()[1].elapsed(), Duration::ZERO); // the application's own 404
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

//! What the server asks of the application: a [`Service`] decides, from a request's head
//! and before its body is read, how to answer it ([`Dispatch`]); a [`Handler`] answers
//! through a [`Responder`].

use std::rc::Rc;

use super::request::Request;
use super::responder::Responder;
use super::response::Response;
use crate::stream::IoStream;

/// Answers requests: given a request whose body is not read yet, says how to go on. The
/// web layer's [`Application`](crate::web::Application) is one.
///
/// `dispatch` runs on the loop thread for every request, in the order requests arrive on
/// a connection; it may set the request's path captures
/// ([`Request::set_params`]). It should be fast: it runs before the body is read.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use ioloop::http::{Dispatch, Handler, Request, Responder, Response, Service};
///
/// struct Hello;
/// impl Handler for Hello {
///     fn call(&self, _req: Request, responder: Responder) {
///         responder.send(Response::text("hello"));
///     }
/// }
///
/// struct OnlyRoot(Rc<Hello>);
/// impl Service for OnlyRoot {
///     fn dispatch(&self, req: &mut Request) -> Dispatch {
///         if req.path() == "/" {
///             Dispatch::handle(self.0.clone())
///         } else {
///             Dispatch::Respond(Response::error(404))
///         }
///     }
/// }
/// # let _ = OnlyRoot(Rc::new(Hello));
/// ```
pub trait Service: 'static {
    /// How to answer `request` (its body not read yet).
    fn dispatch(&self, request: &mut Request) -> Dispatch;
}

/// Answers one request: receives it (with its body, unless its route streams the body)
/// and a [`Responder`] to answer through, now or later.
///
/// A handler that panics is reported to the loop's panic policy and its request gets
/// `500 Internal Server Error` (the dropped responder sends it); a handler that drops its
/// responder without answering gets the same 500.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use ioloop::http::{Dispatch, Handler, HttpServer, Request, Responder, Service};
///
/// struct Length;
/// impl Handler for Length {
///     fn call(&self, req: Request, responder: Responder) {
///         responder.send(format!("{} bytes", req.body().len()));
///     }
/// }
/// # struct App(Rc<Length>);
/// # impl Service for App {
/// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
/// #         Dispatch::handle(self.0.clone())
/// #     }
/// # }
/// // `App` dispatches every request to `Length`.
/// let reply = ioloop::testing::run_test(Duration::from_secs(5), |ioloop| async move {
///     let server = HttpServer::new(&ioloop, App(Rc::new(Length)));
///     let port = server.bind("127.0.0.1:0").unwrap().port();
///     let stream = ioloop::TcpClient::new(&ioloop).connect("127.0.0.1", port).await.unwrap();
///     stream.write_all(b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
///     stream.read_until_close().await.unwrap()
/// });
/// assert!(reply.ends_with(b"\r\n\r\n5 bytes"));
/// ```
pub trait Handler: 'static {
    /// Answers `request` through `responder`.
    fn call(&self, request: Request, responder: Responder);

    /// The page of an error the server answers instead of calling the handler, once it
    /// has decided to call it: a body that grows over the route's limit while it is read
    /// (a chunked one), is malformed, or comes too slowly. `None` (the default) for the
    /// server's short plain-text page. The web layer's handlers answer with the
    /// application's [`error_page`](crate::web::Application::error_page).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Handler, Request, Responder, Response};
    ///
    /// struct Upload;
    /// impl Handler for Upload {
    ///     fn call(&self, req: Request, responder: Responder) {
    ///         responder.send(format!("{} bytes", req.body().len()));
    ///     }
    ///     fn error_page(&self, status: u16, _req: &Request) -> Option<Response> {
    ///         Some(Response::text(format!("upload refused ({status})")))
    ///     }
    /// }
    /// ```
    fn error_page(&self, status: u16, request: &Request) -> Option<Response> {
        let _ = (status, request);
        None
    }
}

/// What the server does with a request once its head is read.
///
/// # Examples
///
/// ```
/// # use std::rc::Rc;
/// # use ioloop::http::{Handler, HttpServer, Responder};
/// # struct Upload;
/// # impl Handler for Upload {
/// #     fn call(&self, req: Request, responder: Responder) {
/// #         responder.send(format!("got {} bytes", req.body().len()));
/// #     }
/// # }
/// use ioloop::http::{Dispatch, Request, Response, Service};
///
/// struct App(Rc<Upload>); // `Upload` answers "got N bytes"
/// impl Service for App {
///     fn dispatch(&self, req: &mut Request) -> Dispatch {
///         if req.path() != "/upload" {
///             return Dispatch::Respond(Response::error(404));
///         }
///         Dispatch::Handle { handler: self.0.clone(), body_limit: Some(4), stream_body: false }
///     }
/// }
/// # let ioloop = ioloop::IoLoop::new()?;
/// # let port = HttpServer::new(&ioloop, App(Rc::new(Upload))).bind("127.0.0.1:0")?.port();
/// # let client = ioloop::TcpClient::new(&ioloop);
/// # let ask = |request: &'static [u8]| {
/// #     let client = client.clone();
/// #     let reply = ioloop.run_sync(async move {
/// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
/// #         stream.write_all(request).await.unwrap();
/// #         stream.read_until_close().await.unwrap()
/// #     });
/// #     String::from_utf8(reply.unwrap()).unwrap()
/// # };
/// // `ask` sends a request to a server of `App` and returns the answer.
/// assert!(ask(b"GET /other HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404 "));
/// assert!(ask(b"POST /upload HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc").ends_with("got 3 bytes"));
/// assert!(ask(b"POST /upload HTTP/1.0\r\nContent-Length: 9\r\n\r\n").starts_with("HTTP/1.1 413"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum Dispatch {
    /// Answer with this response now, without reading the body. If the request has a
    /// body, the connection closes after the response (the body is never read, so it
    /// cannot be mistaken for the next request).
    Respond(Response),
    /// Read the body, then call the handler.
    Handle {
        /// The handler.
        handler: Rc<dyn Handler>,
        /// The most body bytes accepted (decoded bytes, for a chunked body): a larger body
        /// gets `413 Content Too Large`, before it is read when its length is declared
        /// (and before `100 Continue` when the client asked for one). `None`: the
        /// server's [`max_body_size`](crate::http::ServerOptions::max_body_size).
        body_limit: Option<u64>,
        /// Call the handler at once and let it read the body piece by piece, with
        /// backpressure ([`Responder::next_body_chunk`]), instead of reading it whole
        /// first (Tornado's `@stream_request_body`).
        stream_body: bool,
    },
    /// Switch protocols (RFC 9110 §7.8), as a WebSocket handshake does: once every
    /// earlier response on the connection is written, the server writes `response` (its
    /// status should be `101 Switching Protocols`; the server adds `Connection: Upgrade`)
    /// and hands the connection to `upgrade`, with the request. The bytes that came after
    /// the request's head are still in the stream's buffer: they belong to the new
    /// protocol. The server no longer times, counts or shuts down the connection, unless
    /// the new protocol counts itself in again, as WebSocket routes do (then
    /// [`HttpServer::connections`](crate::http::HttpServer::connections) and a graceful
    /// shutdown see it). A request with a body cannot be upgraded (400).
    Upgrade {
        /// The `101` response head (its body is not sent).
        response: Response,
        /// Takes the connection over.
        upgrade: Box<dyn FnOnce(Request, IoStream)>,
    },
}

impl Dispatch {
    /// `Handle` with the server's body limit, reading the body whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use ioloop::http::{Dispatch, Handler, Request, Responder};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn call(&self, mut req: Request, responder: Responder) {
    ///         responder.send(req.take_body());
    ///     }
    /// }
    /// let dispatch = Dispatch::handle(Rc::new(Echo));
    /// assert!(matches!(dispatch, Dispatch::Handle { body_limit: None, stream_body: false, .. }));
    /// ```
    pub fn handle(handler: Rc<dyn Handler>) -> Dispatch {
        Dispatch::Handle {
            handler,
            body_limit: None,
            stream_body: false,
        }
    }
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dispatch::Respond(response) => f.debug_tuple("Respond").field(response).finish(),
            Dispatch::Handle {
                body_limit,
                stream_body,
                ..
            } => f
                .debug_struct("Handle")
                .field("body_limit", body_limit)
                .field("stream_body", stream_body)
                .finish_non_exhaustive(),
            Dispatch::Upgrade { response, .. } => f
                .debug_struct("Upgrade")
                .field("response", response)
                .finish_non_exhaustive(),
        }
    }
}

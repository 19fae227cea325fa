//! [`Responder`]: how a handler answers its request, at once or later, whole or piece by
//! piece ([`BodyWriter`]); and how a handler that streams its request body reads it.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use super::error::HttpError;
use super::response::{IntoResponse, Response, ResponseParts};
use crate::stream::StreamError;
use crate::task::completion;

/// A completion waiting for a piece of a streamed response body to reach the kernel.
pub(crate) type WrittenCallback = Box<dyn FnOnce(Result<(), StreamError>)>;

/// The connection a request came on, as its [`Responder`], [`BodyReader`] and
/// [`BodyWriter`] use it (the server's connection implements it). `seq` is the request's
/// place on the connection; answers go out in that order whatever order they come in.
pub(crate) trait RequestConnection {
    /// Answers request `seq` with a whole response (ignored if it was answered).
    fn answer(self: Rc<Self>, seq: u64, response: ResponseParts);
    /// Starts a streamed response to `seq`, of exactly `length` body bytes if given.
    fn start_body(self: Rc<Self>, seq: u64, head: ResponseParts, length: Option<u64>);
    /// Adds a piece of the streamed body of `seq`; `written` runs once it is sent.
    fn write_body(
        self: Rc<Self>,
        seq: u64,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), StreamError>;
    /// Ends the streamed body of `seq`.
    fn finish_body(self: Rc<Self>, seq: u64);
    /// The streamed body of `seq` will never end: cut it and close after it.
    fn abandon_body(self: Rc<Self>, seq: u64);
    /// Asks for the next piece of the streamed request body of `seq`.
    fn next_body_chunk(self: Rc<Self>, seq: u64, callback: Box<dyn FnOnce(BodyChunk)>);
    /// Whether the connection is closed.
    fn is_closed(&self) -> bool;
    /// Runs `callback` once the connection closes (at once if it is closed), unless
    /// request `seq` is answered first.
    fn on_close(&self, seq: u64, callback: Box<dyn FnOnce()>);
}

/// The answer channel of one request: [`send`](Responder::send) a whole response, or
/// [`start`](Responder::start) one and write its body piece by piece.
///
/// Responses go out in the order their requests came, whatever order handlers answer
/// in. A responder dropped without answering (the handler forgot, or panicked) answers
/// `500 Internal Server Error`, so a request never hangs. Loop thread only.
///
/// # Examples
///
/// ```no_run
/// use ioloop::http::{Request, Responder, Response};
///
/// fn later(_req: Request, responder: Responder) {
///     let ioloop = ioloop::IoLoop::current().unwrap();
///     ioloop.call_later(std::time::Duration::from_millis(10), move |_| {
///         responder.send(Response::text("answered later"));
///     });
/// }
/// ```
pub struct Responder {
    conn: Rc<dyn RequestConnection>,
    seq: u64,
    answered: bool,
    hooks: Option<Box<AnswerHooks>>,
}

/// What the web layer adds to a responder: the page of an [`HttpError`] answer (and of
/// the 500 a responder dropped unanswered sends), a change to the answer before it goes
/// out (a cookie the handler's request asked for), and a callback told the status once
/// the response is complete (sent whole, or its streamed body finished or cut).
#[derive(Default)]
pub(crate) struct AnswerHooks {
    pub(crate) error_page: Option<ErrorPageHook>,
    pub(crate) before_answer: Option<BeforeAnswerHook>,
    pub(crate) on_finish: Option<FinishHook>,
}

/// Writes the page of an error answer.
pub(crate) type ErrorPageHook = Box<dyn FnOnce(&HttpError) -> Response>;

/// Changes an answer before it goes out.
pub(crate) type BeforeAnswerHook = Box<dyn FnOnce(&mut Response)>;

/// Told the status of a response once it is complete.
pub(crate) type FinishHook = Box<dyn FnOnce(u16)>;

/// One piece of a streamed request body (see [`Responder::next_body_chunk_then`]).
///
/// # Examples
///
/// ```
/// use ioloop::http::BodyChunk;
/// fn describe(chunk: &BodyChunk) -> String {
///     match chunk {
///         BodyChunk::Data(bytes) => format!("{} bytes", bytes.len()),
///         BodyChunk::End => "the end".into(),
///         BodyChunk::Failed(status) => format!("failed, answered {status}"),
///     }
/// }
/// assert_eq!(describe(&BodyChunk::Data(vec![1, 2])), "2 bytes");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChunk {
    /// Body bytes.
    Data(Vec<u8>),
    /// The body is complete.
    End,
    /// The body could not be read; the server answers this status and closes.
    Failed(u16),
}

impl Responder {
    pub(crate) fn new(conn: Rc<dyn RequestConnection>, seq: u64) -> Responder {
        Responder {
            conn,
            seq,
            answered: false,
            hooks: None,
        }
    }

    /// Sets the web layer's hooks (see [`AnswerHooks`]).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn set_hooks(&mut self, hooks: AnswerHooks) {
        self.hooks = Some(Box::new(hooks));
    }

    /// Puts `wrap`'s connection between this responder and its own: the web layer's
    /// output transforms (gzip, ETag) see every answer and body piece on their way out.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn wrap_connection(
        &mut self,
        wrap: impl FnOnce(Rc<dyn RequestConnection>) -> Rc<dyn RequestConnection>,
    ) {
        self.conn = wrap(self.conn.clone());
    }

    fn take_finish_hook(&mut self) -> Option<FinishHook> {
        self.hooks.as_mut().and_then(|hooks| hooks.on_finish.take())
    }

    /// Answers with a whole response (anything [`IntoResponse`]). An
    /// [`HttpError`](crate::http::HttpError) (or an `Err` of one) is written by the
    /// application's [`error_page`](crate::web::Application::error_page) when the request
    /// came through an application that has one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, HttpServer, Service};
    /// # struct App<H>(Rc<H>);
    /// # impl<H: Handler> Service for App<H> {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         Dispatch::handle(self.0.clone())
    /// #     }
    /// # }
    /// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
    /// #     let ioloop = ioloop::IoLoop::new().unwrap();
    /// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
    /// #     let port = server.bind("127.0.0.1:0").unwrap().port();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
    /// #         stream.write_all(request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::http::{Handler, Request, Responder, Response};
    ///
    /// struct Create;
    /// impl Handler for Create {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         responder.send(Response::new(201).header("Location", "/items/1").body("made"));
    ///     }
    /// }
    /// // `ask` serves the handler on a new loop and returns its answer to one request.
    /// let reply = ask(Create, b"POST /items HTTP/1.0\r\n\r\n");
    /// assert!(reply.starts_with("HTTP/1.1 201 Created\r\n"));
    /// assert!(reply.contains("\r\nLocation: /items/1\r\n") && reply.ends_with("\r\n\r\nmade"));
    /// ```
    pub fn send(mut self, response: impl IntoResponse) {
        // Not answered until the response is made: should `into_response` or the error
        // page panic, the drop below still answers 500 in this request's place.
        let mut response = response.into_response();
        if let Some(hooks) = self.hooks.as_mut() {
            if let Some(error) = response.take_error() {
                if let Some(page) = hooks.error_page.take() {
                    response = page(&error).status_code(error.status());
                }
            }
            if let Some(before) = hooks.before_answer.take() {
                before(&mut response);
            }
        }
        self.answered = true;
        let status = response.status();
        self.conn.clone().answer(self.seq, response.into_parts());
        if let Some(on_finish) = self.take_finish_hook() {
            on_finish(status);
        }
    }

    /// Starts a response whose body follows piece by piece: `response`'s status and header
    /// fields go out now (its body is ignored), the body through the returned writer. The
    /// body is sent chunked to an HTTP/1.1 client; to an HTTP/1.0 client it ends with the
    /// connection.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{Request, Responder, Response};
    ///
    /// fn numbers(_req: Request, responder: Responder) {
    ///     let mut body = responder.start(Response::new(200).header("Content-Type", "text/plain"));
    ///     for i in 0..3 {
    ///         let _ = body.write(format!("{i}\n").as_bytes());
    ///     }
    ///     body.finish();
    /// }
    /// ```
    pub fn start(self, response: Response) -> BodyWriter {
        self.start_body(response, None)
    }

    /// Starts a response whose body of exactly `length` bytes follows piece by piece
    /// (sent with `Content-Length`, a file for instance). Writing more fails; finishing
    /// with fewer closes the connection (the response is cut).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(responder: ioloop::http::Responder) {
    /// let mut body = responder.start_sized(ioloop::http::Response::new(200), 5);
    /// let _ = body.write(b"hello");
    /// body.finish();
    /// # }
    /// ```
    pub fn start_sized(self, response: Response, length: u64) -> BodyWriter {
        self.start_body(response, Some(length))
    }

    fn start_body(mut self, mut response: Response, length: Option<u64>) -> BodyWriter {
        self.answered = true;
        if let Some(before) = self.hooks.as_mut().and_then(|h| h.before_answer.take()) {
            before(&mut response);
        }
        let status = response.status();
        self.conn
            .clone()
            .start_body(self.seq, response.into_parts(), length);
        BodyWriter {
            conn: self.conn.clone(),
            seq: self.seq,
            finished: false,
            on_finish: self.take_finish_hook().map(|hook| (hook, status)),
        }
    }

    /// Whether the client's connection is closed (an answer would go nowhere).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::Write;
    /// use std::rc::Rc;
    /// use ioloop::http::{Dispatch, Handler, HttpServer, Request, Responder, Service};
    ///
    /// // Keeps each responder without answering, as a long poll does.
    /// #[derive(Clone, Default)]
    /// struct Keep(Rc<RefCell<Option<Responder>>>);
    /// impl Handler for Keep {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         // Without this, a client's end of sending reads as a half-close, and the
    ///         // connection stays open for the answer.
    ///         responder.on_connection_close(|| println!("the client left"));
    ///         *self.0.borrow_mut() = Some(responder);
    ///     }
    /// }
    /// # impl Service for Keep {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         Dispatch::handle(Rc::new(self.clone()))
    /// #     }
    /// # }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let kept = Keep::default();
    /// let port = HttpServer::new(&ioloop, kept.clone()).bind("127.0.0.1:0")?.port();
    /// let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
    /// client.write_all(b"GET /news HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// ioloop::testing::run_until(&ioloop, || kept.0.borrow().is_some());
    /// let responder = kept.0.borrow_mut().take().unwrap();
    /// assert!(!responder.is_connection_closed());
    /// drop(client);
    /// ioloop::testing::run_until(&ioloop, || responder.is_connection_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_connection_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Runs `callback` if the client's connection closes before this request's response
    /// is complete (Tornado's `on_connection_close`, for long polling and streaming); at
    /// once if it is already closed. Once the response is complete it is never called.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{Request, Responder};
    ///
    /// fn long_poll(_req: Request, responder: Responder) {
    ///     responder.on_connection_close(|| println!("the client left"));
    ///     // ... keep `responder` until there is news
    /// #   drop(responder);
    /// }
    /// ```
    pub fn on_connection_close(&self, callback: impl FnOnce() + 'static) {
        self.conn.on_close(self.seq, Box::new(callback));
    }

    /// Asks for the next piece of a streamed request body (a route with
    /// [`stream_body`](crate::http::Dispatch::Handle::stream_body)): `callback` gets it
    /// once it has arrived, then asks again. The server reads no more of the body until
    /// asked, so a slow handler slows the client down (backpressure), and a
    /// `Expect: 100-continue` client gets its `100 Continue` on the first ask.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{BodyChunk, Request, Responder, Response};
    ///
    /// fn count_bytes(responder: Responder, total: usize) {
    ///     let r = responder;
    ///     let next = r.body_reader();
    ///     next.next_body_chunk_then(move |chunk| match chunk {
    ///         BodyChunk::Data(data) => count_bytes(r, total + data.len()),
    ///         BodyChunk::End => r.send(Response::text(format!("{total} bytes"))),
    ///         BodyChunk::Failed(_) => drop(r),
    ///     });
    /// }
    /// ```
    pub fn next_body_chunk_then(&self, callback: impl FnOnce(BodyChunk) + 'static) {
        self.conn
            .clone()
            .next_body_chunk(self.seq, Box::new(callback));
    }

    /// The async [`next_body_chunk_then`](Responder::next_body_chunk_then).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{BodyChunk, Request, Responder, Response};
    ///
    /// async fn upload(_req: Request, responder: Responder) {
    ///     let mut total = 0;
    ///     while let BodyChunk::Data(data) = responder.next_body_chunk().await {
    ///         total += data.len();
    ///     }
    ///     responder.send(Response::text(format!("{total} bytes")));
    /// }
    /// ```
    pub async fn next_body_chunk(&self) -> BodyChunk {
        let (done, chunk) = completion();
        self.next_body_chunk_then(move |c| done.complete(c));
        chunk.await.unwrap_or(BodyChunk::Failed(500))
    }

    /// A handle for reading the streamed body from a callback while this responder is
    /// kept for the answer.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, HttpServer, Service};
    /// # struct App<H>(Rc<H>);
    /// # impl<H: Handler> Service for App<H> {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         let handler = self.0.clone();
    /// #         Dispatch::Handle { handler, body_limit: None, stream_body: true }
    /// #     }
    /// # }
    /// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
    /// #     let ioloop = ioloop::IoLoop::new().unwrap();
    /// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
    /// #     let port = server.bind("127.0.0.1:0").unwrap().port();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
    /// #         stream.write_all(request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::http::{BodyChunk, Handler, Request, Responder};
    ///
    /// // Counts the bytes of a streamed body (`App` dispatches with `stream_body: true`).
    /// struct Count;
    /// impl Handler for Count {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         count(responder, 0);
    ///     }
    /// }
    /// fn count(responder: Responder, total: usize) {
    ///     let reader = responder.body_reader();
    ///     reader.next_body_chunk_then(move |chunk| match chunk {
    ///         BodyChunk::Data(data) => count(responder, total + data.len()),
    ///         BodyChunk::End => responder.send(format!("{total} bytes")),
    ///         BodyChunk::Failed(_) => {} // the server answers the error
    ///     });
    /// }
    /// // `ask` serves the handler and returns its answer to one request.
    /// let reply = ask(Count, b"POST / HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello world");
    /// assert!(reply.ends_with("\r\n\r\n11 bytes"));
    /// ```
    #[doc(alias = "clone_for_body")]
    pub fn body_reader(&self) -> BodyReader {
        BodyReader {
            conn: self.conn.clone(),
            seq: self.seq,
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // This drop may run while a handler's panic unwinds, where a second panic (from
        // the application's error page or finish hook) would abort the process: both run
        // under `catch_unwind`, a panicking page giving way to the plain 500.
        let page = self
            .hooks
            .as_mut()
            .and_then(|hooks| hooks.error_page.take())
            .and_then(|page| {
                let made = catch_unwind(AssertUnwindSafe(|| page(&HttpError::new(500))));
                made.map_err(|_| log::error!(target: "ioloop::web", "the error page panicked"))
                    .ok()
            });
        let response = match page {
            Some(page) => page.status_code(500),
            None => Response::error(500),
        };
        self.conn.clone().answer(self.seq, response.into_parts());
        if let Some(on_finish) = self.take_finish_hook() {
            if catch_unwind(AssertUnwindSafe(|| on_finish(500))).is_err() {
                log::error!(target: "ioloop::web", "a finish hook panicked");
            }
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("request", &self.seq)
            .field("answered", &self.answered)
            .finish()
    }
}

/// Reads a streamed request body: see [`Responder::body_reader`].
///
/// # Examples
///
/// ```
/// # use std::rc::Rc;
/// # use ioloop::http::{Dispatch, HttpServer, Service};
/// # struct App<H>(Rc<H>);
/// # impl<H: Handler> Service for App<H> {
/// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
/// #         let handler = self.0.clone();
/// #         Dispatch::Handle { handler, body_limit: None, stream_body: true }
/// #     }
/// # }
/// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
/// #     let ioloop = ioloop::IoLoop::new().unwrap();
/// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
/// #     let port = server.bind("127.0.0.1:0").unwrap().port();
/// #     let client = ioloop::TcpClient::new(&ioloop);
/// #     let reply = ioloop.run_sync(async move {
/// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
/// #         stream.write_all(request).await.unwrap();
/// #         stream.read_until_close().await.unwrap()
/// #     });
/// #     String::from_utf8(reply.unwrap()).unwrap()
/// # }
/// use ioloop::http::{BodyChunk, BodyReader, Handler, Request, Responder};
///
/// // Echoes a streamed body back (`App` dispatches with `stream_body: true`).
/// struct Echo;
/// impl Handler for Echo {
///     fn call(&self, _req: Request, responder: Responder) {
///         echo(responder.body_reader(), responder, Vec::new());
///     }
/// }
/// fn echo(reader: BodyReader, responder: Responder, mut body: Vec<u8>) {
///     reader.next_body_chunk_then(move |chunk| match chunk {
///         BodyChunk::Data(data) => {
///             body.extend_from_slice(&data);
///             echo(responder.body_reader(), responder, body);
///         }
///         BodyChunk::End => responder.send(body),
///         BodyChunk::Failed(_) => {}
///     });
/// }
/// // `ask` serves the handler and returns its answer to one request.
/// let reply = ask(Echo, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
///     Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
/// assert!(reply.ends_with("\r\n\r\nhello world"));
/// ```
pub struct BodyReader {
    conn: Rc<dyn RequestConnection>,
    seq: u64,
}

impl BodyReader {
    /// As [`Responder::next_body_chunk_then`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, Service};
    /// # struct App<H>(Rc<H>);
    /// # impl<H: Handler> Service for App<H> {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         let handler = self.0.clone();
    /// #         Dispatch::Handle { handler, body_limit: None, stream_body: true }
    /// #     }
    /// # }
    /// use std::cell::RefCell;
    /// use std::io::Write;
    /// use ioloop::http::{BodyChunk, Handler, HttpServer, Request, Responder};
    ///
    /// // Notes how a streamed body failed (`App` dispatches with `stream_body: true`).
    /// #[derive(Clone, Default)]
    /// struct Watch(Rc<RefCell<Option<BodyChunk>>>);
    /// impl Handler for Watch {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         read(self.clone(), responder);
    ///     }
    /// }
    /// fn read(watch: Watch, responder: Responder) {
    ///     responder.body_reader().next_body_chunk_then(move |chunk| match chunk {
    ///         BodyChunk::Data(_) => read(watch, responder),
    ///         BodyChunk::End => responder.send("thanks"),
    ///         failed => *watch.0.borrow_mut() = Some(failed), // the server answers it
    ///     });
    /// }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let watch = Watch::default();
    /// let server = HttpServer::new(&ioloop, App(Rc::new(watch.clone())));
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
    /// client.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")?;
    /// drop(client); // gone before the end of the body
    /// ioloop::testing::run_until(&ioloop, || watch.0.borrow().is_some());
    /// assert_eq!(watch.0.take(), Some(BodyChunk::Failed(400)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_body_chunk_then(&self, callback: impl FnOnce(BodyChunk) + 'static) {
        self.conn
            .clone()
            .next_body_chunk(self.seq, Box::new(callback));
    }
}

impl fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyReader")
            .field("request", &self.seq)
            .finish()
    }
}

/// Writes the body of a response started with [`Responder::start`].
///
/// Each write returns at once; [`write_then`](BodyWriter::write_then) and
/// [`write_all`](BodyWriter::write_all) complete once the piece is handed to the kernel,
/// which is Tornado's `await self.flush()`: awaiting each piece bounds what the server
/// holds for a slow client. Call [`finish`](BodyWriter::finish) at the end; a writer
/// dropped unfinished cuts the response off and closes the connection.
///
/// # Examples
///
/// ```
/// # use std::rc::Rc;
/// # use ioloop::http::{Dispatch, HttpServer, Service};
/// # struct App<H>(Rc<H>);
/// # impl<H: Handler> Service for App<H> {
/// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
/// #         Dispatch::handle(self.0.clone())
/// #     }
/// # }
/// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
/// #     let ioloop = ioloop::IoLoop::new().unwrap();
/// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
/// #     let port = server.bind("127.0.0.1:0").unwrap().port();
/// #     let client = ioloop::TcpClient::new(&ioloop);
/// #     let reply = ioloop.run_sync(async move {
/// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
/// #         stream.write_all(request).await.unwrap();
/// #         stream.read_until_close().await.unwrap()
/// #     });
/// #     String::from_utf8(reply.unwrap()).unwrap()
/// # }
/// use ioloop::http::{Handler, Request, Responder, Response};
///
/// struct Countdown;
/// impl Handler for Countdown {
///     fn call(&self, _req: Request, responder: Responder) {
///         let mut body = responder.start(Response::new(200).header("Content-Type", "text/plain"));
///         for i in (1..=3).rev() {
///             let _ = body.write(format!("{i}\n").as_bytes());
///         }
///         body.finish();
///     }
/// }
/// // `ask` serves the handler and returns its answer to one request. To an HTTP/1.1
/// // client the body goes chunked, one chunk a write.
/// let reply = ask(Countdown, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
/// assert!(reply.contains("\r\nTransfer-Encoding: chunked\r\n"));
/// assert!(reply.ends_with("\r\n\r\n2\r\n3\n\r\n2\r\n2\n\r\n2\r\n1\n\r\n0\r\n\r\n"));
/// ```
pub struct BodyWriter {
    conn: Rc<dyn RequestConnection>,
    seq: u64,
    finished: bool,
    /// The web layer's finish hook and the response's status.
    on_finish: Option<(FinishHook, u16)>,
}

impl BodyWriter {
    /// Queues a piece of the body.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] once the connection is closed;
    /// [`StreamError::BufferFull`] when the client is too far behind (the server's
    /// `max_response_buffer`): wait for the earlier pieces with
    /// [`write_all`](BodyWriter::write_all) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, HttpServer, Service};
    /// # struct App<H>(Rc<H>);
    /// # impl<H: Handler> Service for App<H> {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         Dispatch::handle(self.0.clone())
    /// #     }
    /// # }
    /// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
    /// #     let ioloop = ioloop::IoLoop::new().unwrap();
    /// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
    /// #     let port = server.bind("127.0.0.1:0").unwrap().port();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
    /// #         stream.write_all(request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::http::{Handler, Request, Responder, Response};
    ///
    /// struct Lines;
    /// impl Handler for Lines {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         let mut body = responder.start(Response::new(200));
    ///         for line in ["one\n", "two\n"] {
    ///             if body.write(line.as_bytes()).is_err() {
    ///                 return; // the client left: dropping `body` ends the response
    ///             }
    ///         }
    ///         body.finish();
    ///     }
    /// }
    /// // `ask` serves the handler and returns its answer to one request. To an HTTP/1.0
    /// // client the body is the bytes written, ended by closing.
    /// let reply = ask(Lines, b"GET / HTTP/1.0\r\n\r\n");
    /// assert!(reply.ends_with("\r\n\r\none\ntwo\n"));
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.conn.clone().write_body(self.seq, data, None)
    }

    /// Queues a piece and calls `callback` once it is handed to the kernel (or with the
    /// error if the connection closes first).
    ///
    /// # Errors
    ///
    /// As [`write`](BodyWriter::write); the callback is not called then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(mut body: ioloop::http::BodyWriter) {
    /// body.write_then(b"piece", |written| {
    ///     if written.is_ok() { /* send the next piece */ }
    /// })
    /// .ok();
    /// # }
    /// ```
    pub fn write_then(
        &mut self,
        data: &[u8],
        callback: impl FnOnce(Result<(), StreamError>) + 'static,
    ) -> Result<(), StreamError> {
        self.conn
            .clone()
            .write_body(self.seq, data, Some(Box::new(callback)))
    }

    /// Writes a piece and resolves once it is handed to the kernel.
    ///
    /// # Errors
    ///
    /// As [`write`](BodyWriter::write), or the connection closing before it is sent.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(mut body: ioloop::http::BodyWriter) -> Result<(), ioloop::StreamError> {
    /// for i in 0..3 {
    ///     body.write_all(format!("chunk {i}\n").as_bytes()).await?;
    /// }
    /// body.finish();
    /// # Ok(()) }
    /// ```
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), StreamError> {
        let (done, written) = completion();
        self.write_then(data, move |result| done.complete(result))?;
        written
            .await
            .unwrap_or(Err(StreamError::Closed { real_error: None }))
    }

    /// Ends the body.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, HttpServer, Service};
    /// # struct App<H>(Rc<H>);
    /// # impl<H: Handler> Service for App<H> {
    /// #     fn dispatch(&self, _: &mut Request) -> Dispatch {
    /// #         Dispatch::handle(self.0.clone())
    /// #     }
    /// # }
    /// # fn ask(handler: impl Handler, request: &'static [u8]) -> String {
    /// #     let ioloop = ioloop::IoLoop::new().unwrap();
    /// #     let server = HttpServer::new(&ioloop, App(Rc::new(handler)));
    /// #     let port = server.bind("127.0.0.1:0").unwrap().port();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", port).await.unwrap();
    /// #         stream.write_all(request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::http::{Handler, Request, Responder, Response};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn call(&self, _req: Request, responder: Responder) {
    ///         let mut body = responder.start_sized(Response::new(200), 5);
    ///         let _ = body.write(b"hel");
    ///         let _ = body.write(b"lo");
    ///         body.finish(); // all 5 bytes written: the response is complete
    ///     }
    /// }
    /// // `ask` serves the handler and returns its answer to one request.
    /// let reply = ask(Hello, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    /// assert!(reply.contains("\r\nContent-Length: 5\r\n") && reply.ends_with("\r\n\r\nhello"));
    /// ```
    pub fn finish(mut self) {
        self.finished = true;
        self.conn.clone().finish_body(self.seq);
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.clone().abandon_body(self.seq);
        }
        if let Some((on_finish, status)) = self.on_finish.take() {
            on_finish(status);
        }
    }
}

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter")
            .field("request", &self.seq)
            .field("finished", &self.finished)
            .finish()
    }
}

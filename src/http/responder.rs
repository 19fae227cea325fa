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
    /// See [`Responder`].
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
    /// See [`on_connection_close`](Responder::on_connection_close).
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
    /// See [`next_body_chunk_then`](Responder::next_body_chunk_then).
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
/// See [`Responder::next_body_chunk_then`].
pub struct BodyReader {
    conn: Rc<dyn RequestConnection>,
    seq: u64,
}

impl BodyReader {
    /// As [`Responder::next_body_chunk_then`].
    ///
    /// # Examples
    ///
    /// See [`Responder::next_body_chunk_then`].
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
/// See [`Responder::start`].
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
    /// See [`Responder::start`].
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
    /// See [`Responder::start`].
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

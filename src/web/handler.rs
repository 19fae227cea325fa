//! Handlers in both styles, for one router: an `async` function of the request returning
//! anything [`IntoResponse`] (the seed program's style), a callback of the request and a
//! [`Responder`] (Tornado 4's style), or an `async` function of both (for streaming in
//! async code), or any [`Handler`]. [`IntoHandler`] turns each into a [`Handler`].

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

use crate::http::{Handler, IntoResponse, Request, Responder};
use crate::reactor::ioloop::IoLoop;

/// Something a route can call: an `async` function of the request, a callback of the
/// request and a [`Responder`], an `async` function of both, or a [`Handler`]. The type parameter
/// only tells the three styles apart; it is inferred.
///
/// # Examples
///
/// ```
/// use ioloop::http::{Request, Responder, Response};
/// use ioloop::web::get;
///
/// // async: return the response
/// let a = get(|_req: Request| async { "hello" });
/// // callback: answer through the responder, now or later
/// let b = get(|_req: Request, responder: Responder| responder.send(Response::text("hi")));
/// // async with the responder: stream a body
/// let c = get(|_req: Request, responder: Responder| async move {
///     let mut body = responder.start(Response::new(200));
///     let _ = body.write_all(b"piece").await;
///     body.finish();
/// });
/// # let _ = (a, b, c);
/// ```
pub trait IntoHandler<Style>: 'static {
    /// The handler. Reports of its panics name where this was called (the route's
    /// `get(..)`).
    #[track_caller]
    fn into_handler(self) -> Rc<dyn Handler>;
}

/// Marks a value that is a [`Handler`] itself (such as [`StaticFiles`](crate::web::StaticFiles)).
/// The style markers are never named in user code: the compiler infers them.
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
/// use ioloop::http::{Handler, Request, Responder};
/// use ioloop::web::{get, Application, HandlerStyle};
///
/// struct Hello;
/// impl Handler for Hello {
///     fn call(&self, _req: Request, responder: Responder) {
///         responder.send("hello from a Handler");
///     }
/// }
/// // The style is inferred; named here to show the one of a `Handler`.
/// let app = Application::new().route("/", get::<HandlerStyle>(Hello));
/// // `ask` serves the application and returns its answer to one request.
/// assert!(ask(app, "GET / HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nhello from a Handler"));
/// ```
#[derive(Debug)]
#[doc(hidden)]
pub struct HandlerStyle;
/// Marks the async style: `async fn(Request) -> impl IntoResponse`.
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
/// use ioloop::http::Request;
/// use ioloop::web::{get, Application, AsyncStyle};
///
/// // The style is inferred; named here to show the one of an async function.
/// let route = get::<AsyncStyle<_>>(|req: Request| async move {
///     format!("{} async", req.method())
/// });
/// let app = Application::new().route("/", route);
/// // `ask` serves the application and returns its answer to one request.
/// assert!(ask(app, "GET / HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nGET async"));
/// ```
#[derive(Debug)]
#[doc(hidden)]
pub struct AsyncStyle<Fut>(PhantomData<Fut>);
/// Marks the callback style: `fn(Request, Responder)`.
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
/// use ioloop::http::{Request, Responder};
/// use ioloop::web::{get, Application, CallbackStyle};
///
/// // The style is inferred; named here to show the one of a callback.
/// let route = get::<CallbackStyle>(|_req: Request, responder: Responder| {
///     responder.send("called back");
/// });
/// let app = Application::new().route("/", route);
/// // `ask` serves the application and returns its answer to one request.
/// assert!(ask(app, "GET / HTTP/1.0\r\n\r\n").ends_with("\r\n\r\ncalled back"));
/// ```
#[derive(Debug)]
#[doc(hidden)]
pub struct CallbackStyle;
/// Marks the async style with a responder: `async fn(Request, Responder)`.
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
/// use ioloop::http::{Request, Responder, Response};
/// use ioloop::web::{get, Application, AsyncResponderStyle};
///
/// // The style is inferred; named here to show the one of an async function with a responder.
/// let route = get::<AsyncResponderStyle<_>>(|_req: Request, responder: Responder| async move {
///     let mut body = responder.start(Response::new(200));
///     let _ = body.write_all(b"streamed").await;
///     body.finish();
/// });
/// let app = Application::new().route("/", route);
/// // `ask` serves the application and returns its answer to one request.
/// assert!(ask(app, "GET / HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nstreamed"));
/// ```
#[derive(Debug)]
#[doc(hidden)]
pub struct AsyncResponderStyle<Fut>(PhantomData<Fut>);

impl<H: Handler> IntoHandler<HandlerStyle> for H {
    fn into_handler(self) -> Rc<dyn Handler> {
        Rc::new(self)
    }
}

/// The async styles' handlers keep where their route was made, for the reports of their
/// tasks' panics.
struct AsyncHandler<F>(F, &'static Location<'static>);
struct CallbackHandler<F>(F);
struct AsyncResponderHandler<F>(F, &'static Location<'static>);

impl<F, Fut> IntoHandler<AsyncStyle<Fut>> for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: IntoResponse,
{
    fn into_handler(self) -> Rc<dyn Handler> {
        Rc::new(AsyncHandler(self, Location::caller()))
    }
}

impl<F, Fut> Handler for AsyncHandler<F>
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: IntoResponse,
{
    fn call(&self, request: Request, responder: Responder) {
        let future = (self.0)(request);
        spawn_on_current(self.1, async move {
            let response = future.await;
            responder.send(response);
        });
    }
}

impl<F> IntoHandler<CallbackStyle> for F
where
    F: Fn(Request, Responder) + 'static,
{
    fn into_handler(self) -> Rc<dyn Handler> {
        Rc::new(CallbackHandler(self))
    }
}

impl<F> Handler for CallbackHandler<F>
where
    F: Fn(Request, Responder) + 'static,
{
    fn call(&self, request: Request, responder: Responder) {
        (self.0)(request, responder);
    }
}

impl<F, Fut> IntoHandler<AsyncResponderStyle<Fut>> for F
where
    F: Fn(Request, Responder) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn into_handler(self) -> Rc<dyn Handler> {
        Rc::new(AsyncResponderHandler(self, Location::caller()))
    }
}

impl<F, Fut> Handler for AsyncResponderHandler<F>
where
    F: Fn(Request, Responder) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn call(&self, request: Request, responder: Responder) {
        spawn_on_current(self.1, (self.0)(request, responder));
    }
}

/// Runs a handler's future as a detached task of the loop serving the request, polled
/// the first time at once (a handler that answers without waiting answers within the
/// connection's batch, whose responses go out in one write). A panic in it ends the task
/// (reported to the loop's panic policy) and drops the responder, which answers 500.
fn spawn_on_current(site: &'static Location<'static>, future: impl Future<Output = ()> + 'static) {
    match IoLoop::current() {
        Some(ioloop) => ioloop.spawn_eager_detached(future, site),
        None => log::error!(target: "ioloop::web", "a handler ran outside its loop"),
    }
}

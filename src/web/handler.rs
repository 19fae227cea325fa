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
/// See [`IntoHandler`].
#[derive(Debug)]
#[doc(hidden)]
pub struct HandlerStyle;
/// Marks the async style: `async fn(Request) -> impl IntoResponse`.
///
/// # Examples
///
/// See [`IntoHandler`].
#[derive(Debug)]
#[doc(hidden)]
pub struct AsyncStyle<Fut>(PhantomData<Fut>);
/// Marks the callback style: `fn(Request, Responder)`.
///
/// # Examples
///
/// See [`IntoHandler`].
#[derive(Debug)]
#[doc(hidden)]
pub struct CallbackStyle;
/// Marks the async style with a responder: `async fn(Request, Responder)`.
///
/// # Examples
///
/// See [`IntoHandler`].
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

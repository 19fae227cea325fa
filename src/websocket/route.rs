//! [`WebSocketRoute`]: a web route that upgrades `GET` requests to WebSockets, checking
//! the handshake and the page's origin, in the async style ([`websocket`]) or the
//! callback style ([`WebSocketRoute::with_handler`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::frame::Role;
use super::handshake::{check_request, HandshakePolicy, OriginPolicy};
use super::options::WebSocketOptions;
use super::socket::{WebSocket, WebSocketHandler};
use crate::http::{Dispatch, Request, Service};
use crate::reactor::ioloop::IoLoop;
use crate::stream::IoStream;
use crate::web::MethodRouter;

/// What a route does with an open connection.
type Session = Rc<dyn Fn(WebSocket, Request)>;

/// A WebSocket route for [`Application::route`](crate::web::Application::route).
///
/// The handshake is checked before anything is sent: not a WebSocket handshake → 400;
/// another protocol version → 426 with `Sec-WebSocket-Version: 13`; a method other than
/// `GET` → 405; an `Origin` that is not the server's own (`http(s)://` + `Host`, port
/// included; `null` included) → 403, unless allowed ([`allow_origins`]). A request
/// without `Origin` (not from a browser) is accepted, as in Tornado. The application's
/// `prepare` hooks see the handshake request and may refuse it.
///
/// [`allow_origins`]: WebSocketRoute::allow_origins
///
/// # Examples
///
/// ```no_run
/// use ioloop::web::Application;
/// use ioloop::websocket::WebSocketRoute;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let chat = WebSocketRoute::new(|ws, _req| async move {
///     while let Some(message) = ws.recv().await {
///         let _ = ws.send(message).await;
///     }
/// })
/// .subprotocols(["chat.v1"])
/// .allow_origins(["https://app.example.com"]);
/// Application::new().route("/ws", chat).listen(&ioloop, 8888)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebSocketRoute {
    policy: HandshakePolicy,
    options: WebSocketOptions,
    session: Session,
}

/// A route running `session` for each connection, in the async style: a task that
/// receives with [`WebSocket::recv`] and sends with [`WebSocket::send`]. The connection
/// closes with 1000 when the task returns (1011 if it panics; 1001, "going away", if the
/// loop closes or is dropped first), unless it closed before.
///
/// # Examples
///
/// ```
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, websocket_connect, Message};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let hello = websocket(|ws, req| async move {
///     let _ = ws.send(format!("hello from {}", req.path())).await;
///     ws.recv().await; // then returns: the connection closes with 1000
/// });
/// let app = Application::new().route("/hello", hello);
/// let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0")?;
/// let (greeting, code) = ioloop.run_sync(async move {
///     let ws = websocket_connect(&format!("ws://{addr}/hello")).await?;
///     let greeting = ws.recv().await;
///     let _ = ws.send("bye").await;
///     ws.closed().await;
///     Ok::<_, Box<dyn std::error::Error>>((greeting, ws.close_code()))
/// })??;
/// assert_eq!(greeting, Some(Message::from("hello from /hello")));
/// assert_eq!(code, Some(1000));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn websocket<F, Fut>(session: F) -> WebSocketRoute
where
    F: Fn(WebSocket, Request) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    WebSocketRoute::new(session)
}

impl WebSocketRoute {
    /// See [`websocket`].
    ///
    /// # Examples
    ///
    /// A route whose connections take messages of at most 16 bytes:
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket_connect, WebSocket, WebSocketOptions, WebSocketRoute};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let sink = |ws: WebSocket, _req| async move { while ws.recv().await.is_some() {} };
    /// let small = WebSocketRoute::new(sink)
    ///     .options(WebSocketOptions { max_message_size: 16, ..WebSocketOptions::default() });
    /// let (_server, addr) = Application::new().route("/", small).bind(&ioloop, "127.0.0.1:0")?;
    /// let code = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     let _ = ws.send("more than sixteen bytes").await;
    ///     ws.closed().await;
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.close_code())
    /// })??;
    /// assert_eq!(code, Some(1009)); // message too big
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<F, Fut>(session: F) -> WebSocketRoute
    where
        F: Fn(WebSocket, Request) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        WebSocketRoute::from_session(Rc::new(move |ws: WebSocket, request| {
            let Some(ioloop) = IoLoop::current() else {
                return;
            };
            let guard = SessionGuard {
                ws: ws.clone(),
                end: SessionEnd::Running,
            };
            drop(ioloop.spawn(SessionTask {
                future: Box::pin(session(ws, request)),
                guard,
            }));
        }))
    }

    /// A route in the callback style: `make` builds a handler for each connection from
    /// its handshake request (Tornado's `WebSocketHandler`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{Message, WebSocket, WebSocketHandler, WebSocketRoute};
    ///
    /// struct Echo;
    /// impl WebSocketHandler for Echo {
    ///     fn on_message(&mut self, ws: &WebSocket, message: Message) {
    ///         let _ = ws.write_message(message);
    ///     }
    /// }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// Application::new()
    ///     .route("/echo", WebSocketRoute::with_handler(|_req| Echo))
    ///     .listen(&ioloop, 8888)?;
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_handler<H, F>(make: F) -> WebSocketRoute
    where
        H: WebSocketHandler,
        F: Fn(&Request) -> H + 'static,
    {
        WebSocketRoute::from_session(Rc::new(move |ws: WebSocket, request: Request| {
            ws.set_handler(make(&request));
        }))
    }

    fn from_session(session: Session) -> WebSocketRoute {
        WebSocketRoute {
            policy: HandshakePolicy::default(),
            options: WebSocketOptions::default(),
            session,
        }
    }

    /// The subprotocols the route speaks: the first one the client offers (in its order)
    /// is chosen ([`WebSocket::subprotocol`]); a client offering none of them still
    /// connects, with none.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect_with, ClientOptions};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let chat = websocket(|ws, _req| async move { while ws.recv().await.is_some() {} })
    ///     .subprotocols(["chat.v2", "chat.v1"]);
    /// let (_server, addr) = Application::new().route("/", chat).bind(&ioloop, "127.0.0.1:0")?;
    /// let offer = vec!["chat.v1".to_owned(), "chat.v2".to_owned()];
    /// let options = ClientOptions { subprotocols: offer, ..ClientOptions::default() };
    /// let ws = ioloop.run_sync(websocket_connect_with(&format!("ws://{addr}/"), options))??;
    /// assert_eq!(ws.subprotocol(), Some("chat.v1")); // the client's first choice
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subprotocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.policy.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Also accepts pages from these origins (`scheme://host[:port]`, compared without
    /// case), besides the server's own.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect_with, ClientOptions};
    /// use ioloop::websocket::WebSocketConnectError;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let route = websocket(|_ws, _req| async {}).allow_origins(["https://app.example.com"]);
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let from = |origin: &str| {
    ///     let options = ClientOptions { origin: Some(origin.into()), ..Default::default() };
    ///     websocket_connect_with(&format!("ws://{addr}/"), options)
    /// };
    /// assert!(ioloop.run_sync(from("https://app.example.com"))?.is_ok());
    /// let refused = ioloop.run_sync(from("https://evil.example"))?; // 403
    /// assert!(matches!(refused, Err(WebSocketConnectError::Handshake(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.policy.origins =
            OriginPolicy::AllowList(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts pages from any origin: only for routes that authenticate otherwise than
    /// with cookies (a browser sends a site's cookies with a cross-site WebSocket).
    ///
    /// # Examples
    ///
    /// ```
    /// let route = ioloop::websocket::websocket(|_ws, _req| async {}).allow_any_origin();
    /// # let _ = route;
    /// ```
    pub fn allow_any_origin(mut self) -> Self {
        self.policy.origins = OriginPolicy::Any;
        self
    }

    /// The connections' limits and timers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::websocket::{websocket, WebSocketOptions};
    /// let route = websocket(|_ws, _req| async {}).options(WebSocketOptions {
    ///     max_message_size: 64 * 1024,
    ///     ..WebSocketOptions::default()
    /// });
    /// # let _ = route;
    /// ```
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        #[cfg(feature = "deflate")]
        {
            self.policy.compression = options.compression.clone();
        }
        self.options = options;
        self
    }
}

impl Service for WebSocketRoute {
    fn dispatch(&self, request: &mut Request) -> Dispatch {
        let accepted = match check_request(request, &self.policy) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                log::debug!(
                    target: "ioloop::websocket",
                    "handshake from {} refused: {}",
                    request.peer_addr(),
                    refusal.status()
                );
                return Dispatch::Respond(refusal);
            }
        };
        let session = self.session.clone();
        let options = self.options.clone();
        let negotiated = accepted.negotiated;
        Dispatch::Upgrade {
            response: accepted.response,
            upgrade: Box::new(move |request: Request, stream: IoStream| {
                let ws = WebSocket::start(stream, Role::Server, options, negotiated);
                ws.count_in_server();
                session(ws, request);
            }),
        }
    }
}

impl From<WebSocketRoute> for MethodRouter {
    fn from(route: WebSocketRoute) -> MethodRouter {
        MethodRouter::upgrade(Rc::new(route))
    }
}

impl std::fmt::Debug for WebSocketRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketRoute")
            .field("policy", &self.policy)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How an async session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// Not yet: dropped so, the loop closed (or was dropped) under it.
    Running,
    /// Its future returned.
    Returned,
    /// Its future panicked.
    Panicked,
}

/// An async session's task: its future, and the guard that closes the connection when
/// the task ends, however it ends.
struct SessionTask {
    future: Pin<Box<dyn Future<Output = ()>>>,
    guard: SessionGuard,
}

impl Future for SessionTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| this.future.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                this.guard.end = SessionEnd::Returned;
                Poll::Ready(())
            }
            Err(payload) => {
                // The loop reports the panic; the connection closes with 1011.
                this.guard.end = SessionEnd::Panicked;
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// Closes the connection when an async session ends: 1000 when it returned, 1011 when it
/// panicked, 1001 ("going away") when the loop closed or was dropped under it.
struct SessionGuard {
    ws: WebSocket,
    end: SessionEnd,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        match self.end {
            SessionEnd::Returned => self.ws.close_from_drop(1000, ""),
            SessionEnd::Panicked => self.ws.close_from_drop(1011, "internal error"),
            SessionEnd::Running => self.ws.going_away(),
        }
    }
}

//! [`WebSocket`]: one open WebSocket connection over an [`IoStream`], server or client
//! side. The protocol (frames, messages, the closing handshake) reads the stream's buffer
//! in place; this side runs it on the loop: it reads when bytes arrive, writes the frames
//! the protocol hands back, keeps the timers, and calls the user. Messages go to a
//! [`WebSocketHandler`]'s callbacks or to [`recv`](WebSocket::recv); sends are encoded
//! into one write each and report when they are written.
//!
//! Reading. A data frame's payload is taken as it arrives, so a large message never sits
//! twice in memory. A message waiting in the one-message inbox of the async API stops
//! reading data (the peer's TCP window then fills): that is read backpressure. A peer
//! that breaks the protocol gets the close code the RFC names, and the connection is
//! half-closed once that is sent.
//!
//! Closing. A close frame is answered with the peer's code; the server closes TCP once
//! the handshake is complete, the client waits for it; either side aborts after
//! `close_timeout`. [`WebSocketHandler::on_close`] runs exactly once, when the TCP
//! connection ends for any reason (handshake, protocol failure, reset, ping timeout).
//! A loop closed or dropped with the connection open sends 1001 ("going away") as far as
//! the socket takes it, closes TCP and runs `on_close` there and then (a task per
//! connection, waiting for its close, is what notices). A server's connection counts
//! among its [`HttpServer`](crate::http::HttpServer)'s: a graceful shutdown sends it 1001
//! and waits for the closing handshake, until the shutdown's deadline.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::frame::{Opcode, Role, Violation, GOING_AWAY};
use super::handshake::Negotiated;
use super::options::WebSocketOptions;
use super::protocol::{Accept, Input, Message, Protocol, Step};
use crate::http::{register_upgraded, LiveConnection, Upgraded};
use crate::reactor::panics::CallbackKind;
use crate::reactor::timer_heap::Timeout;
use crate::stream::{IoStream, StreamError, StreamSocket, StreamWrite};

/// Why a send did not go out.
///
/// # Examples
///
/// ```
/// use ioloop::websocket::SendError;
/// assert_eq!(SendError::Closed.to_string(), "the WebSocket is closing or closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or closed (a send after [`WebSocket::close`], or after
    /// the peer left). Nothing is logged: it is an ordinary outcome.
    Closed,
    /// The unsent bytes are over
    /// [`max_write_buffer`](WebSocketOptions::max_write_buffer): the peer does not read
    /// fast enough. Nothing was queued.
    BufferFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the WebSocket is closing or closed",
            SendError::BufferFull => "the WebSocket's write buffer is full",
        })
    }
}

impl std::error::Error for SendError {}

/// The callback style of the WebSocket API (Tornado's `WebSocketHandler`): the route
/// makes one per connection. Each method runs on the loop thread; a panic is reported to
/// the loop's panic policy and closes the connection with 1011.
///
/// # Examples
///
/// ```
/// use ioloop::websocket::{Message, WebSocket, WebSocketHandler};
///
/// struct Echo;
/// impl WebSocketHandler for Echo {
///     fn on_message(&mut self, ws: &WebSocket, message: Message) {
///         let _ = ws.write_message(message);
///     }
/// }
/// # let _ = Echo;
/// ```
pub trait WebSocketHandler: 'static {
    /// The connection is open (after the handshake, before any message).
    fn open(&mut self, ws: &WebSocket) {
        let _ = ws;
    }
    /// A whole message arrived.
    fn on_message(&mut self, ws: &WebSocket, message: Message);
    /// A ping arrived (the pong is already sent).
    fn on_ping(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }
    /// A pong arrived.
    fn on_pong(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }
    /// The connection is closed; runs exactly once. [`WebSocket::close_code`] says how.
    fn on_close(&mut self, ws: &WebSocket) {
        let _ = ws;
    }
}

/// One WebSocket connection: send and receive messages, ping, close. A cheap handle
/// (clones share the connection); the connection lives until it closes, held or not.
/// Loop thread only.
///
/// # Examples
///
/// An echo route in the async style (the connection closes with 1000 when the session
/// returns):
///
/// ```no_run
/// use ioloop::web::Application;
/// use ioloop::websocket::websocket;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// Application::new()
///     .route("/ws/echo", websocket(|ws, _req| async move {
///         while let Some(message) = ws.recv().await {
///             if ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///     }))
///     .listen(&ioloop, 8888)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

struct Shared {
    stream: IoStream,
    role: Role,
    options: WebSocketOptions,
    subprotocol: Option<String>,
    state: RefCell<State>,
}

struct State {
    /// The protocol: the frame and message being read, the closing handshake, the
    /// encoding of frames.
    protocol: Protocol,
    sink: Sink,
    /// A read of more bytes is pending on the stream.
    waiting_for_bytes: bool,
    /// Reading waits for the unsent bytes to drain (a peer that sends without reading).
    waiting_for_drain: bool,
    /// Reused to encode a frame into one write.
    scratch: Vec<u8>,
    /// `on_close` has run (or there is no handler to run it).
    on_close_done: bool,
    close_timer: Option<Timeout>,
    ping_timer: Option<Timeout>,
    /// A ping is unanswered; the timer that closes the connection if it stays so.
    pong_timer: Option<Timeout>,
    /// Tasks awaiting [`WebSocket::closed`].
    closed_waiters: Vec<Waker>,
    /// The server's count of this connection (a server's WebSocket), ended when TCP
    /// closes.
    registration: Option<Upgraded>,
    /// Reused for each compressed message (as `scratch` is for frames).
    #[cfg(feature = "deflate")]
    deflated: Vec<u8>,
}

enum Sink {
    /// The async API: one message waits for `recv`.
    Inbox {
        message: Option<Message>,
        waker: Option<Waker>,
    },
    /// The callback API (`None` while one of its methods runs).
    Handler(Option<Box<dyn WebSocketHandler>>),
}

impl WebSocket {
    /// Takes over `stream`, whose handshake is done (the bytes buffered are the first
    /// frames), and starts reading in the async style.
    pub(crate) fn start(
        stream: IoStream,
        role: Role,
        options: WebSocketOptions,
        negotiated: Negotiated,
    ) -> WebSocket {
        #[cfg(feature = "deflate")]
        let deflate = negotiated
            .deflate
            .zip(options.compression.as_ref())
            .map(|(agreed, config)| Box::new(super::deflate::Deflate::new(agreed, role, config)));
        let protocol = Protocol::new(
            role,
            options.max_message_size,
            #[cfg(feature = "deflate")]
            deflate,
        );
        let shared = Rc::new(Shared {
            stream,
            role,
            options,
            subprotocol: negotiated.subprotocol,
            state: RefCell::new(State {
                protocol,
                sink: Sink::Inbox {
                    message: None,
                    waker: None,
                },
                waiting_for_bytes: false,
                waiting_for_drain: false,
                scratch: Vec::new(),
                on_close_done: false,
                close_timer: None,
                ping_timer: None,
                pong_timer: None,
                closed_waiters: Vec::new(),
                registration: None,
                #[cfg(feature = "deflate")]
                deflated: Vec::new(),
            }),
        });
        // The close callback owns the connection while the stream is open (the loop keeps
        // an open stream alive), so nobody has to hold it.
        let owner = shared.clone();
        shared
            .stream
            .set_close_callback(move |_| owner.on_stream_closed());
        let ws = WebSocket { shared };
        ws.watch_for_the_loop_closing();
        ws.schedule_ping();
        ws.read_frames();
        ws
    }

    /// Counts the connection among those of the server whose upgrade is running (a
    /// server route's connection, from its upgrade callback): its graceful shutdown
    /// sends 1001 and waits for the closing handshake, until its deadline.
    pub(crate) fn count_in_server(&self) {
        let Some(registration) = register_upgraded(&self.shared) else {
            return;
        };
        // Closed already (a shutdown's abort): the count ends at once.
        let left = {
            let mut state = self.shared.state.borrow_mut();
            if state.protocol.is_terminated() {
                Some(registration)
            } else {
                state.registration = Some(registration);
                None
            }
        };
        if let Some(registration) = left {
            registration.end();
        }
    }

    /// A task that lives as long as the connection is open: the loop drops it only when
    /// it closes (or is dropped) with the connection still open, and then the connection
    /// says 1001 ("going away") and closes TCP, since no timer of the loop will run
    /// again.
    fn watch_for_the_loop_closing(&self) {
        let Some(ioloop) = self.shared.stream.ioloop() else {
            return;
        };
        let guard = LoopClosing(self.weak());
        let closed = self.closed();
        drop(ioloop.spawn(async move {
            let _guard = guard;
            closed.await;
        }));
    }

    /// The loop is closing, or dropped, with the connection open: sends 1001 ("going
    /// away") as far as the socket takes it now, closes TCP and reports the close. A
    /// connection busy in a method of its own (its state borrowed) is left alone.
    pub(crate) fn going_away(&self) {
        match self.shared.state.try_borrow_mut() {
            Ok(state) if !state.protocol.is_terminated() => {}
            Ok(_) => return,
            Err(_) => {
                log::debug!(target: "ioloop::websocket", "loop closing while the WebSocket is busy: not closed");
                return;
            }
        }
        self.send_close(GOING_AWAY, "going away");
        self.shared.stream.close();
        self.shared.clone().on_stream_closed();
    }

    fn weak(&self) -> Weak<Shared> {
        Rc::downgrade(&self.shared)
    }

    fn from_weak(weak: &Weak<Shared>) -> Option<WebSocket> {
        weak.upgrade().map(|shared| WebSocket { shared })
    }

    /// Switches to the callback style: `handler` gets [`open`](WebSocketHandler::open)
    /// now, then every message (one already waiting for `recv` first); a task awaiting
    /// [`recv`](WebSocket::recv) gets `None`. For a server route, prefer
    /// [`WebSocketRoute::with_handler`](super::WebSocketRoute::with_handler): a
    /// [`websocket`](super::websocket) session closes the connection when it returns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::websocket::{websocket_connect, Message, WebSocket, WebSocketHandler};
    ///
    /// struct Printer;
    /// impl WebSocketHandler for Printer {
    ///     fn on_message(&mut self, _ws: &WebSocket, message: Message) {
    ///         println!("{message:?}");
    ///     }
    /// }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let ws = ioloop.run_sync(websocket_connect("ws://127.0.0.1:8888/ws"))??;
    /// ws.set_handler(Printer);
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_handler(&self, handler: impl WebSocketHandler) {
        let old = std::mem::replace(
            &mut self.shared.state.borrow_mut().sink,
            Sink::Handler(None),
        );
        // The handler replaced (if any) is dropped here, with no borrow held: its
        // destructor may use the socket.
        let (waiting, waker) = match old {
            Sink::Inbox { message, waker } => (message, waker),
            Sink::Handler(replaced) => {
                drop(replaced);
                (None, None)
            }
        };
        // A task awaiting `recv` gets `None`: the handler takes the messages now.
        if let Some(waker) = waker {
            waker.wake();
        }
        let mut handler: Box<dyn WebSocketHandler> = Box::new(handler);
        let ws = self.clone();
        let opened = self.guarded(|| handler.open(&ws));
        self.put_back(handler);
        if opened {
            if let Some(message) = waiting {
                self.deliver(message);
            }
        }
        // Closed already (or by a panic in `open`): `on_close` is owed.
        self.call_on_close();
        self.read_frames();
    }

    /// Receives the next message: `None` once the connection is closing or closed. While
    /// a message waits here, nothing more is read (backpressure: the peer's sends block
    /// when the TCP window fills). Pings are answered meanwhile only as far as bytes were
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Message};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let shout = websocket(|ws, _req| async move {
    ///     while let Some(Message::Text(text)) = ws.recv().await {
    ///         let _ = ws.send(text.to_uppercase()).await;
    ///     }
    /// });
    /// let (_server, addr) = Application::new().route("/", shout).bind(&ioloop, "127.0.0.1:0")?;
    /// let reply = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     let _ = ws.send("hello").await;
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(reply, Some(Message::from("HELLO")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self) -> Recv {
        Recv { ws: self.clone() }
    }

    /// Sends a message: queued at once (awaiting is optional), and the returned future
    /// resolves once it is handed to the kernel.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] after [`close`](WebSocket::close) or once the connection is
    /// closing; [`SendError::BufferFull`] while the unsent bytes are over
    /// [`max_write_buffer`](WebSocketOptions::max_write_buffer) (one message is always
    /// accepted into an empty buffer, whatever its size).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Message, SendError};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let echo = websocket(|ws, _req| async move {
    ///     while let Some(m) = ws.recv().await { let _ = ws.send(m).await; }
    /// });
    /// let (_server, addr) = Application::new().route("/", echo).bind(&ioloop, "127.0.0.1:0")?;
    /// let (echoed, late) = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     ws.send("one").await?; // handed to the kernel
    ///     let echoed = ws.recv().await;
    ///     ws.close(1000, "done");
    ///     Ok::<_, Box<dyn std::error::Error>>((echoed, ws.send("two").await))
    /// })??;
    /// assert_eq!(echoed, Some(Message::from("one")));
    /// assert_eq!(late, Err(SendError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&self, message: impl Into<Message>) -> Sent {
        let message = message.into();
        let write = self.write_frame(message.opcode(), message.as_bytes(), true);
        // Its bytes are in the socket or the write buffer now: its memory can serve the
        // next message read.
        crate::stream::recycle(message.into_bytes());
        Sent { write }
    }

    /// Queues a message without waiting for it (Tornado's `write_message`): the callback
    /// style's send, whose outcome is known at once.
    ///
    /// # Errors
    ///
    /// As [`send`](WebSocket::send): [`SendError::Closed`] once closing,
    /// [`SendError::BufferFull`] over the write bound (nothing is queued then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket_connect, Message};
    /// use ioloop::websocket::{WebSocket, WebSocketHandler, WebSocketRoute};
    ///
    /// struct Greeter;
    /// impl WebSocketHandler for Greeter {
    ///     fn open(&mut self, ws: &WebSocket) {
    ///         ws.write_message("welcome").unwrap(); // queued at once
    ///     }
    ///     fn on_message(&mut self, _ws: &WebSocket, _message: Message) {}
    /// }
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let route = WebSocketRoute::with_handler(|_req| Greeter);
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let greeting = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(greeting, Some(Message::from("welcome")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_message(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        let sent = self.send_message_now(&message);
        crate::stream::recycle(message.into_bytes());
        sent
    }

    /// [`send`](WebSocket::send) calling `callback` with the outcome once the message is
    /// handed to the kernel (or at once, on error). The callback runs on a later
    /// iteration, never inside this call.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// ws.send_then("hello", |result| {
    ///     if let Err(e) = result {
    ///         log::debug!("not sent: {e}");
    ///     }
    /// });
    /// # }
    /// ```
    pub fn send_then(
        &self,
        message: impl Into<Message>,
        callback: impl FnOnce(Result<(), SendError>) + 'static,
    ) {
        let sent = self.send(message);
        match self.shared.stream.ioloop() {
            Some(ioloop) => ioloop.add_future(sent, move |_, result| callback(result)),
            None => callback(Err(SendError::Closed)),
        }
    }

    /// [`send`](WebSocket::send) without a completion.
    pub(crate) fn send_message_now(&self, message: &Message) -> Result<(), SendError> {
        self.write_frame(message.opcode(), message.as_bytes(), true)
            .map(drop)
    }

    /// Writes `frame`, an encoded server frame, as is (the broadcast helper's path).
    pub(crate) fn send_encoded(&self, frame: &[u8]) -> Result<(), SendError> {
        self.check_writable(frame.len(), true)?;
        self.shared.stream.write(frame).map_err(|e| match e {
            StreamError::BufferFull => SendError::BufferFull,
            _ => SendError::Closed,
        })
    }

    /// Sends a ping with `payload` (at most 125 bytes; longer is cut).
    ///
    /// # Errors
    ///
    /// As [`send`](WebSocket::send).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// let _ = ws.ping(b"are you there?");
    /// # }
    /// ```
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendError> {
        let payload = &payload[..payload.len().min(125)];
        self.write_frame(Opcode::Ping, payload, false).map(drop)
    }

    /// Starts the closing handshake with `code` (1000 for a normal close; 3000–4999 for
    /// an application's own; a code RFC 6455 forbids on the wire, such as 1005 or 1006,
    /// is sent as 1000) and `reason` (cut to 123 bytes). Sends nothing more after it, and
    /// [`recv`](WebSocket::recv) returns `None` from then on (messages not yet received
    /// are dropped, unlike tokio-tungstenite's, which reads on to the peer's close); the
    /// connection closes once the peer answers, or after
    /// [`close_timeout`](WebSocketOptions::close_timeout). Calling it again does nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// ws.close(1001, "server shutting down");
    /// # }
    /// ```
    pub fn close(&self, code: u16, reason: &str) {
        if self.send_close(code, reason) {
            self.arm_close_timer();
            // Read on for the peer's answer (a message that waited for `recv` is dropped).
            self.read_frames();
        }
    }

    /// [`close`](WebSocket::close) from a destructor, which must not panic: on the next
    /// iteration if the connection is busy in a method of its own now.
    pub(crate) fn close_from_drop(&self, code: u16, reason: &'static str) {
        if self.shared.state.try_borrow_mut().is_ok() {
            return self.close(code, reason);
        }
        if let Some(ioloop) = self.shared.stream.ioloop() {
            let ws = self.clone();
            ioloop.add_callback(move |_| ws.close(code, reason));
        }
    }

    /// The close code the peer sent, once its close frame arrived (`None` if it sent
    /// none, or an empty one: RFC 6455's 1005 and 1006).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// if ws.is_closed() {
    ///     println!("closed with {:?}: {:?}", ws.close_code(), ws.close_reason());
    /// }
    /// # }
    /// ```
    pub fn close_code(&self) -> Option<u16> {
        let state = self.shared.state.borrow();
        state.protocol.peer_close().map(|(code, _)| *code)
    }

    /// The reason the peer gave with its close code.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let bye = websocket(|ws, _req| async move { ws.close(4000, "bye") });
    /// let (_server, addr) = Application::new().route("/", bye).bind(&ioloop, "127.0.0.1:0")?;
    /// let (code, reason) = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     ws.closed().await;
    ///     Ok::<_, Box<dyn std::error::Error>>((ws.close_code(), ws.close_reason()))
    /// })??;
    /// assert_eq!((code, reason.as_deref()), (Some(4000), Some("bye")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_reason(&self) -> Option<String> {
        let state = self.shared.state.borrow();
        state
            .protocol
            .peer_close()
            .map(|(_, reason)| reason.clone())
    }

    /// Resolves once the TCP connection is closed (after the closing handshake, a
    /// failure, or the peer leaving); then [`close_code`](WebSocket::close_code) says how.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(ws: ioloop::websocket::WebSocket) {
    /// ws.close(1000, "done");
    /// ws.closed().await;
    /// assert_eq!(ws.close_code(), Some(1000)); // the peer's answer
    /// # }
    /// ```
    pub fn closed(&self) -> WhenClosed {
        WhenClosed { ws: self.clone() }
    }

    /// Whether the TCP connection is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let sink = websocket(|ws, _req| async move { while ws.recv().await.is_some() {} });
    /// let (_server, addr) = Application::new().route("/", sink).bind(&ioloop, "127.0.0.1:0")?;
    /// let states = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     ws.close(1000, "done");
    ///     let closing = ws.is_closed(); // not yet: the server's answer is awaited
    ///     ws.closed().await;
    ///     Ok::<_, Box<dyn std::error::Error>>((closing, ws.is_closed()))
    /// })??;
    /// assert_eq!(states, (false, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().protocol.is_terminated()
    }

    /// The subprotocol agreed in the handshake.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// if ws.subprotocol() == Some("chat") { /* ... */ }
    /// # }
    /// ```
    pub fn subprotocol(&self) -> Option<&str> {
        self.shared.subprotocol.as_deref()
    }

    /// Bytes sent and not yet taken by the kernel: what a slow peer costs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// if ws.write_buffered() > 1 << 20 {
    ///     ws.close(1008, "too slow");
    /// }
    /// # }
    /// ```
    pub fn write_buffered(&self) -> usize {
        self.shared.stream.write_buffered()
    }

    /// Calls `callback` once at most `low_water` unsent bytes remain (the low-water
    /// notification that pairs with [`SendError::BufferFull`]), or with
    /// [`SendError::Closed`] if the connection closes first.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// ws.drained_then(64 * 1024, |result| {
    ///     if result.is_ok() { /* send the next batch */ }
    /// });
    /// # }
    /// ```
    pub fn drained_then(
        &self,
        low_water: usize,
        callback: impl FnOnce(Result<(), SendError>) + 'static,
    ) {
        self.shared
            .stream
            .drained_then(low_water, move |_, result| {
                callback(result.map_err(|_| SendError::Closed));
            });
    }

    /// The options the connection runs with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket) {
    /// assert_eq!(ws.options().max_message_size, 10 << 20);
    /// # }
    /// ```
    pub fn options(&self) -> &WebSocketOptions {
        &self.shared.options
    }

    /// Whether `self` and `other` are handles of the same connection.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(ws: ioloop::websocket::WebSocket, room: &mut Vec<ioloop::websocket::WebSocket>) {
    /// room.retain(|member| !member.ptr_eq(&ws));
    /// # }
    /// ```
    pub fn ptr_eq(&self, other: &WebSocket) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    pub(crate) fn role(&self) -> Role {
        self.shared.role
    }

    // ---- writing ----

    /// Refuses a frame of `len` bytes once closing, or (data) over the write bound.
    fn check_writable(&self, len: usize, data: bool) -> Result<(), SendError> {
        {
            let state = self.shared.state.borrow();
            // The stream may be closed before its close callback has told `state`.
            if !state.protocol.is_open() || self.shared.stream.closed() {
                return Err(SendError::Closed);
            }
        }
        let buffered = self.shared.stream.write_buffered();
        if data && buffered > 0 && buffered + len > self.shared.options.max_write_buffer {
            return Err(SendError::BufferFull);
        }
        Ok(())
    }

    /// Encodes one frame into one write.
    fn write_frame(
        &self,
        opcode: Opcode,
        payload: &[u8],
        data: bool,
    ) -> Result<StreamWrite, SendError> {
        self.check_writable(payload.len(), data)?;
        self.write_unchecked(opcode, payload)
    }

    fn write_unchecked(&self, opcode: Opcode, payload: &[u8]) -> Result<StreamWrite, SendError> {
        // Encoded under the borrow, into the reused buffers taken out of the state; written
        // with no borrow held (a write that fails closes the stream, which wakes the
        // tasks awaiting its writes).
        let (frame, deflated, encoded) = {
            let mut state = self.shared.state.borrow_mut();
            let state = &mut *state;
            let mut frame = std::mem::take(&mut state.scratch);
            #[cfg(feature = "deflate")]
            let mut deflated = std::mem::take(&mut state.deflated);
            #[cfg(not(feature = "deflate"))]
            let mut deflated: Vec<u8> = Vec::new();
            let encoded = state
                .protocol
                .encode(opcode, payload, &mut frame, &mut deflated);
            (frame, deflated, encoded)
        };
        let write = if encoded.whole {
            // A client's frame, masked into one buffer.
            self.shared.stream.write_all(&frame)
        } else {
            // A server's frame: the header and the payload as they are, in one write.
            let payload = if encoded.compressed {
                &deflated[..]
            } else {
                payload
            };
            self.shared.stream.write_all_parts(&[&frame, payload])
        };
        // The buffers go back for the next frame; a big message's are not kept for the
        // small ones after it.
        {
            let mut state = self.shared.state.borrow_mut();
            if frame.capacity() <= 64 * 1024 {
                state.scratch = frame;
            }
            #[cfg(feature = "deflate")]
            if deflated.capacity() <= 64 * 1024 {
                state.deflated = deflated;
            }
        }
        #[cfg(not(feature = "deflate"))]
        drop(deflated);
        match write.refused() {
            None => Ok(write),
            Some(refusal) => {
                if encoded.compressed {
                    // The compressor's context now holds bytes the peer will never see:
                    // later messages could refer to them. The connection cannot go on.
                    log::debug!(target: "ioloop::websocket", "a compressed write was refused: closed");
                    drop(write);
                    self.shared.stream.close();
                    return Err(SendError::Closed);
                }
                match refusal {
                    StreamError::BufferFull => Err(SendError::BufferFull),
                    _ => Err(SendError::Closed),
                }
            }
        }
    }

    /// Sends our close frame unless a close frame went either way. Returns whether it
    /// sent one.
    fn send_close(&self, code: u16, reason: &str) -> bool {
        let frame = self.shared.state.borrow_mut().protocol.close(code, reason);
        let Some(frame) = frame else {
            return false;
        };
        self.drop_unreceived_message();
        self.write_close_frame(&frame);
        true
    }

    /// Drops a message waiting for `recv`: once we close (or fail the connection), no
    /// message is delivered any more. (The peer's close keeps it: it was sent before the
    /// close, and `recv` returns it, then `None`.)
    fn drop_unreceived_message(&self) {
        let dropped = match &mut self.shared.state.borrow_mut().sink {
            Sink::Inbox { message, .. } => message.take(),
            Sink::Handler(_) => None,
        };
        drop(dropped);
    }

    /// Writes a close frame of ours (first, answering the peer's, or failing the
    /// connection), and lets the receiver learn the connection is closing.
    fn write_close_frame(&self, frame: &[u8]) {
        // Not awaited: the close timer ends a handshake that does not complete.
        drop(self.shared.stream.write_all(frame));
        self.wake_receiver();
    }

    // ---- reading ----

    /// Reads every frame already buffered, then waits for more.
    fn read_frames(&self) {
        loop {
            if self.write_backlogged() {
                return;
            }
            let step = self.next_step();
            match step {
                Step::Wait => return self.wait_for_bytes(),
                Step::Stop => return,
                Step::More => {}
                Step::Message(message) => self.deliver(message),
                Step::Ping { payload, pong } => {
                    if let Some(pong) = pong {
                        drop(self.shared.stream.write_all(&pong));
                    }
                    self.with_handler(|h, ws| h.on_ping(ws, &payload));
                }
                Step::Pong(payload) => {
                    let timer = self.shared.state.borrow_mut().pong_timer.take();
                    if let (Some(timer), Some(ioloop)) = (timer, self.shared.stream.ioloop()) {
                        ioloop.remove_timeout(timer);
                    }
                    self.with_handler(|h, ws| h.on_pong(ws, &payload));
                }
                Step::Close { answer } => return self.on_close_frame(answer),
                Step::Fail { violation, close } => return self.fail(violation, close),
            }
        }
    }

    /// Takes the next step out of the buffered bytes.
    fn next_step(&self) -> Step {
        let mut state = self.shared.state.borrow_mut();
        let accept = match &state.sink {
            // A handler method is running: it reads on once it returns.
            Sink::Handler(None) => Accept::Nothing,
            // A message waiting for `recv` holds back data, not control frames: pings are
            // answered and a close is seen meanwhile.
            Sink::Inbox {
                message: Some(_), ..
            } => Accept::Control,
            _ => Accept::Everything,
        };
        state.protocol.read(&self.shared.stream, accept)
    }

    /// Whether the unsent bytes are over the write bound: then nothing more is read (its
    /// pongs and echoes would pile up) until they drain to half of it.
    fn write_backlogged(&self) -> bool {
        let bound = self.shared.options.max_write_buffer;
        if self.shared.stream.write_buffered() <= bound {
            return false;
        }
        if std::mem::replace(&mut self.shared.state.borrow_mut().waiting_for_drain, true) {
            return true;
        }
        let weak = self.weak();
        self.shared
            .stream
            .drained_then(bound / 2, move |_, drained| {
                let Some(ws) = WebSocket::from_weak(&weak) else {
                    return;
                };
                ws.shared.state.borrow_mut().waiting_for_drain = false;
                if drained.is_ok() {
                    ws.read_frames();
                }
            });
        true
    }

    fn wait_for_bytes(&self) {
        let seen = {
            let mut state = self.shared.state.borrow_mut();
            if state.waiting_for_bytes || state.protocol.is_terminated() {
                return;
            }
            state.waiting_for_bytes = true;
            self.shared.stream.buffered()
        };
        let weak = self.weak();
        self.shared.stream.wait_for_more_then(seen, move |_, more| {
            let Some(ws) = WebSocket::from_weak(&weak) else {
                return;
            };
            ws.shared.state.borrow_mut().waiting_for_bytes = false;
            // An error closed the stream: its close callback reports it.
            if more.is_ok() {
                ws.read_frames();
            }
        });
    }

    /// Hands a message to the handler or the inbox.
    fn deliver(&self, message: Message) {
        let mut state = self.shared.state.borrow_mut();
        match &mut state.sink {
            Sink::Inbox {
                message: slot,
                waker,
            } => {
                *slot = Some(message);
                let waker = waker.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Sink::Handler(_) => {
                drop(state);
                self.with_handler(|h, ws| h.on_message(ws, message));
            }
        }
    }

    /// Runs `f` with the handler (if the callback style is on), guarded: a panic closes
    /// the connection with 1011.
    fn with_handler(&self, f: impl FnOnce(&mut dyn WebSocketHandler, &WebSocket)) {
        let taken = match &mut self.shared.state.borrow_mut().sink {
            Sink::Handler(handler) => handler.take(),
            Sink::Inbox { .. } => None,
        };
        let Some(mut handler) = taken else { return };
        self.guarded(|| f(&mut *handler, self));
        self.put_back(handler);
        // The connection closed while the handler ran: `on_close` is owed now.
        self.call_on_close();
    }

    fn put_back(&self, handler: Box<dyn WebSocketHandler>) {
        let left_over = match &mut self.shared.state.borrow_mut().sink {
            Sink::Handler(slot @ None) => {
                *slot = Some(handler);
                None
            }
            // Replaced (by `set_handler` from inside one of its methods) meanwhile.
            _ => Some(handler),
        };
        // Dropped with no borrow held: its destructor may use the socket.
        drop(left_over);
    }

    /// Runs `f` under the loop's panic policy; a panic closes with 1011. Returns
    /// whether it returned normally.
    fn guarded(&self, f: impl FnOnce()) -> bool {
        let mut completed = false;
        let call = AssertUnwindSafe(|| {
            f();
            completed = true;
        });
        match self.shared.stream.ioloop() {
            Some(ioloop) => {
                ioloop.run_guarded(CallbackKind::Callback, std::panic::Location::caller(), call)
            }
            None => {
                let _ = std::panic::catch_unwind(call);
            }
        }
        if !completed {
            self.close(1011, "internal error");
        }
        completed
    }

    fn wake_receiver(&self) {
        let waker = match &mut self.shared.state.borrow_mut().sink {
            Sink::Inbox { waker, .. } => waker.take(),
            Sink::Handler(_) => None,
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    // ---- closing ----

    /// The peer's close frame: answer it (the protocol's `answer`, with its code, unless
    /// ours went first), then end TCP (the server at once; the client once the server
    /// does, or at the close timeout).
    fn on_close_frame(&self, answer: Option<Vec<u8>>) {
        if let Some(answer) = answer {
            self.write_close_frame(&answer);
        }
        match self.shared.role {
            Role::Server => self.close_tcp_when_sent(),
            Role::Client => {
                // The server ends TCP: the protocol reads on, dropping anything, to see it
                // do so.
                self.arm_close_timer();
                self.wait_for_bytes();
            }
        }
        self.wake_receiver();
    }

    /// The peer broke the protocol: tell it why (`close`, unless ours went first) and
    /// close TCP once that is sent.
    fn fail(&self, violation: Violation, close: Option<Vec<u8>>) {
        log::debug!(target: "ioloop::websocket", "failing the connection: {violation}");
        self.drop_unreceived_message();
        if let Some(close) = close {
            self.write_close_frame(&close);
        }
        // Half-close once the close frame is out: closing with the peer's bytes unread
        // would reset the connection and could lose the frame. The peer's close (or the
        // close timeout) ends it; meanwhile its bytes are read and dropped.
        self.arm_close_timer();
        self.shared.stream.drained_then(0, |stream, _| {
            stream.with_socket(StreamSocket::shutdown_write);
        });
        self.wake_receiver();
        self.wait_for_bytes();
    }

    /// Closes TCP once everything written is sent; the close timer aborts a peer that
    /// does not take it.
    fn close_tcp_when_sent(&self) {
        self.arm_close_timer();
        self.shared
            .stream
            .drained_then(0, |stream, _| stream.close());
    }

    fn arm_close_timer(&self) {
        // No loop to time the handshake (it is closed or gone): TCP closes now.
        let Some(ioloop) = self.shared.stream.ioloop().filter(|l| !l.is_closed()) else {
            return self.shared.stream.close();
        };
        if self.shared.state.borrow().close_timer.is_some() {
            return;
        }
        let weak = self.weak();
        let timer = ioloop.call_later(self.shared.options.close_timeout, move |_| {
            if let Some(ws) = WebSocket::from_weak(&weak) {
                log::debug!(target: "ioloop::websocket", "closing handshake timed out: aborted");
                ws.shared.state.borrow_mut().close_timer = None;
                ws.shared.stream.close();
            }
        });
        self.shared.state.borrow_mut().close_timer = Some(timer);
    }

    /// Sends a ping every `ping_interval`; no pong within `ping_timeout` closes.
    fn schedule_ping(&self) {
        let Some(interval) = self.shared.options.ping_interval else {
            return;
        };
        let Some(ioloop) = self.shared.stream.ioloop() else {
            return;
        };
        let weak = self.weak();
        let timer = ioloop.call_later(interval, move |ioloop| {
            let Some(ws) = WebSocket::from_weak(&weak) else {
                return;
            };
            ws.shared.state.borrow_mut().ping_timer = None;
            if ws.ping(b"").is_err() {
                return; // closing
            }
            let wait = ws
                .shared
                .options
                .effective_ping_timeout()
                .unwrap_or(interval);
            let unanswered = weak.clone();
            let pong_timer = ioloop.call_later(wait, move |_| {
                if let Some(ws) = WebSocket::from_weak(&unanswered) {
                    ws.shared.state.borrow_mut().pong_timer = None;
                    log::debug!(target: "ioloop::websocket", "ping timed out");
                    ws.close(1000, "ping timed out");
                }
            });
            let old = ws.shared.state.borrow_mut().pong_timer.replace(pong_timer);
            if let Some(old) = old {
                ioloop.remove_timeout(old);
            }
            ws.schedule_ping();
        });
        self.shared.state.borrow_mut().ping_timer = Some(timer);
    }

    /// Runs `on_close` once the connection is closed, exactly once, and drops the
    /// handler. (A handler method still running calls it again when it returns.)
    fn call_on_close(&self) {
        let handler = {
            let mut state = self.shared.state.borrow_mut();
            if !state.protocol.is_terminated() || state.on_close_done {
                return;
            }
            match &mut state.sink {
                Sink::Handler(handler) => match handler.take() {
                    Some(handler) => handler,
                    None => return,
                },
                Sink::Inbox { .. } => return,
            }
        };
        self.shared.state.borrow_mut().on_close_done = true;
        let mut handler = handler;
        let ws = self.clone();
        self.guarded(|| handler.on_close(&ws));
    }
}

impl Shared {
    /// TCP closed, for whatever reason: timers go, the receiver learns, `on_close` runs.
    fn on_stream_closed(self: Rc<Self>) {
        let (timers, waiters, registration) = {
            let mut state = self.state.borrow_mut();
            if !state.protocol.terminate() {
                return;
            }
            let timers = [
                state.close_timer.take(),
                state.ping_timer.take(),
                state.pong_timer.take(),
            ];
            (
                timers,
                std::mem::take(&mut state.closed_waiters),
                state.registration.take(),
            )
        };
        waiters.into_iter().for_each(Waker::wake);
        // The server no longer counts it (the last to go completes a shutdown).
        if let Some(registration) = registration {
            registration.end();
        }
        if let Some(ioloop) = self.stream.ioloop() {
            for timer in timers.into_iter().flatten() {
                ioloop.remove_timeout(timer);
            }
        }
        let ws = WebSocket { shared: self };
        ws.wake_receiver();
        ws.call_on_close();
    }
}

/// A server's graceful shutdown asks the connection to go, and closes it at its deadline.
impl LiveConnection for Shared {
    fn shut_down(self: Rc<Self>) {
        WebSocket { shared: self }.close(GOING_AWAY, "server shutting down");
    }

    fn close(self: Rc<Self>) {
        self.stream.close();
    }
}

/// Held by the task of [`WebSocket::watch_for_the_loop_closing`]: dropped with the
/// connection open, the loop is closing.
struct LoopClosing(Weak<Shared>);

impl Drop for LoopClosing {
    fn drop(&mut self) {
        if let Some(ws) = WebSocket::from_weak(&self.0) {
            ws.going_away();
        }
    }
}

/// The future of [`WebSocket::recv`]: the next message, or `None` once closing.
///
/// # Examples
///
/// ```
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, websocket_connect, Recv};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let sink = websocket(|ws, _req| async move { while ws.recv().await.is_some() {} });
/// let (_server, addr) = Application::new().route("/", sink).bind(&ioloop, "127.0.0.1:0")?;
/// let next = ioloop.run_sync(async move {
///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
///     let next: Recv = ws.recv();
///     ws.close(1000, "done");
///     Ok::<_, Box<dyn std::error::Error>>(next.await)
/// })??;
/// assert_eq!(next, None); // closing: no message will come
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Recv {
    ws: WebSocket,
}

impl Future for Recv {
    type Output = Option<Message>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let ws = &self.ws;
        let (taken, replaced) = {
            let mut state = ws.shared.state.borrow_mut();
            // Closing or closed: no message is taken any more.
            let done = !state.protocol.is_open();
            let Sink::Inbox { message, waker } = &mut state.sink else {
                return Poll::Ready(None); // the callback style takes the messages
            };
            match message.take() {
                Some(message) => (Some(message), None),
                None if done => return Poll::Ready(None),
                None if waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) => (None, None),
                None => (None, waker.replace(cx.waker().clone())),
            }
        };
        // The waker of an earlier poll is dropped with no borrow held (a waker's
        // destructor is its executor's code).
        drop(replaced);
        match taken {
            Some(message) => {
                // Room in the inbox: read on.
                ws.read_frames();
                Poll::Ready(Some(message))
            }
            None => Poll::Pending,
        }
    }
}

/// The future of [`WebSocket::closed`].
///
/// # Examples
///
/// ```
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, websocket_connect, WhenClosed};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let sink = websocket(|ws, _req| async move { while ws.recv().await.is_some() {} });
/// let (_server, addr) = Application::new().route("/", sink).bind(&ioloop, "127.0.0.1:0")?;
/// let code = ioloop.run_sync(async move {
///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
///     ws.close(1001, "going away");
///     let closed: WhenClosed = ws.closed();
///     closed.await; // the server answered and closed TCP
///     Ok::<_, Box<dyn std::error::Error>>(ws.close_code())
/// })??;
/// assert_eq!(code, Some(1001)); // the server's answer repeats the code
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct WhenClosed {
    ws: WebSocket,
}

impl Future for WhenClosed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.ws.shared.state.borrow_mut();
        if state.protocol.is_terminated() {
            return Poll::Ready(());
        }
        if !state.closed_waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.closed_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl fmt::Debug for WhenClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenClosed").finish_non_exhaustive()
    }
}

/// The future of [`WebSocket::send`]: resolves once the message is handed to the kernel.
///
/// # Examples
///
/// ```
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, websocket_connect, Message, Sent};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let echo = websocket(|ws, _req| async move {
///     while let Some(m) = ws.recv().await { let _ = ws.send(m).await; }
/// });
/// let (_server, addr) = Application::new().route("/", echo).bind(&ioloop, "127.0.0.1:0")?;
/// let echoed = ioloop.run_sync(async move {
///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
///     let sent: Sent = ws.send("queued at once");
///     drop(sent); // not awaited: the message goes out all the same
///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
/// })??;
/// assert_eq!(echoed, Some(Message::from("queued at once")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sent {
    write: Result<StreamWrite, SendError>,
}

impl Future for Sent {
    type Output = Result<(), SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.write {
            Err(e) => Poll::Ready(Err(*e)),
            Ok(write) => Pin::new(write)
                .poll(cx)
                .map(|result| result.map_err(|_: StreamError| SendError::Closed)),
        }
    }
}

impl fmt::Debug for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sent")
            .field("queued", &self.write.is_ok())
            .finish()
    }
}

impl fmt::Debug for Recv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.borrow();
        f.debug_struct("WebSocket")
            .field("role", &self.shared.role)
            .field("subprotocol", &self.shared.subprotocol)
            .field("close_state", &state.protocol.close_state())
            .field(
                "close_code",
                &state.protocol.peer_close().map(|(code, _)| code),
            )
            .finish_non_exhaustive()
    }
}

/// The protocol reads the stream's buffer in place.
impl Input for IoStream {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.with_buffered(f)
    }

    fn consume(&self, n: usize) {
        IoStream::consume(self, n);
    }

    fn take_after(&self, skip: usize) -> Vec<u8> {
        self.take_buffered(skip)
    }
}

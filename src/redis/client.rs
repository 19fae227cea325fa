//! [`RedisClient`]: one connection to Redis on the loop; commands pipelined in order, as
//! futures ([`cmd`](RedisClient::cmd)) or callbacks ([`cmd_then`](RedisClient::cmd_then)).
//!
//! The connection is an [`IoStream`]; replies are parsed in place from its read buffer
//! (see `resp.rs`), each handed to the oldest waiting command. One timer covers the
//! command timeout of every waiting command: it is armed for the oldest one and, when it
//! fires early (that one was answered), re-armed for the new oldest, so a pipeline of
//! commands costs no timer operation per command.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::RedisError;
use super::resp::{decode_replies, encode_command, ProtocolError, Value};
use super::url::RedisUrl;
use crate::net::{TcpClient, TcpConnectError};
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::stream::{IoStream, StreamError, StreamOptions};
use crate::task::{completion, Completion};
use crate::time::timeout;
use crate::time::Timeout;

/// Limits and timeouts of a Redis connection.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let options = ioloop::redis::RedisOptions {
///     command_timeout: Some(Duration::from_secs(2)),
///     max_bulk_len: 1 << 20,
///     ..Default::default()
/// };
/// assert_eq!(options.connect_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The most time to connect, including TLS and the `HELLO`/`AUTH`/`SELECT` handshake
    /// (default 5 s).
    pub connect_timeout: Duration,
    /// The most time a command waits for its reply (default `None`: no limit, since
    /// blocking commands such as `BLPOP 0` wait on purpose). When it passes the
    /// connection is closed and every waiting command fails with
    /// [`RedisError::Timeout`].
    pub command_timeout: Option<Duration>,
    /// The longest bulk string (and largest aggregate count) accepted in a reply (default
    /// 512 MiB, Redis's own `proto-max-bulk-len`); past it, [`RedisError::Protocol`].
    pub max_bulk_len: usize,
    /// The most reply bytes buffered before they form a whole reply (default 512 MiB + 1
    /// MiB); past it, [`RedisError::Protocol`].
    pub max_reply_buffer: usize,
    /// The most commands waiting for replies (default 65 536); past it, a command fails
    /// with [`RedisError::QueueFull`] without being sent.
    pub max_pending: usize,
    /// The most bytes of commands queued for writing (default 64 MiB); past it,
    /// [`RedisError::QueueFull`].
    pub max_write_buffer: usize,
    /// Ask for RESP3 with `HELLO 3` (default `true`); a server without it (Redis before 6)
    /// is spoken to in RESP2, with `AUTH` and `SELECT`.
    pub resp3: bool,
    /// The TLS configuration for `rediss://` (default: the Web PKI roots). Feature `tls`.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_secs(5),
            command_timeout: None,
            max_bulk_len: 512 << 20,
            max_reply_buffer: (512 << 20) + (1 << 20),
            max_pending: 1 << 16,
            max_write_buffer: 64 << 20,
            resp3: true,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

type ReplyFn = Box<dyn FnOnce(Result<Value, RedisError>)>;
type PushFn = Box<dyn FnMut(Value)>;
type CloseFn = Box<dyn FnOnce(&RedisError)>;

struct Pending {
    reply: Option<ReplyFn>,
    deadline: Option<Instant>,
}

struct State {
    pending: VecDeque<Pending>,
    /// Set once the connection failed or was closed.
    error: Option<RedisError>,
    resp3: bool,
    /// Commands encoded this iteration, written together by one `flush` callback.
    outbuf: Vec<u8>,
    flush_scheduled: bool,
    timer: Option<Timeout>,
    on_push: Option<PushFn>,
    on_close: Option<CloseFn>,
}

struct Inner {
    ioloop: WeakIoLoop,
    stream: IoStream,
    options: RedisOptions,
    state: RefCell<State>,
}

/// A connection to Redis on the loop (Tornado-style: loop thread only, `!Send`). Cheap to
/// clone: clones share the connection, which closes when the last one is dropped (the
/// commands still waiting then fail with [`RedisError::Closed`]) or on
/// [`close`](RedisClient::close).
///
/// Commands are written at once and pipelined; replies come back in order. A server
/// error reply is [`RedisError::Server`]; a closed connection, a protocol violation and a
/// timeout fail every waiting command with [`RedisError::Closed`],
/// [`RedisError::Protocol`] and [`RedisError::Timeout`]. The client does not reconnect
/// by itself (a [`Subscriber`](super::Subscriber) does).
///
/// # Examples
///
/// ```no_run
/// use ioloop::redis::{RedisClient, Value};
/// let ioloop = ioloop::IoLoop::new()?;
/// let handle = ioloop.clone();
/// ioloop.run_sync(async move {
///     let redis = RedisClient::connect(&handle, "redis://127.0.0.1:6379/0").await?;
///     redis.cmd(["SET", "greeting", "hello"]).await?;
///     let value = redis.cmd(["GET", "greeting"]).await?;
///     assert_eq!(value, Value::Bulk(b"hello".to_vec()));
///     Ok::<(), ioloop::redis::RedisError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisClient {
    inner: Rc<Inner>,
}

impl fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.try_borrow();
        f.debug_struct("RedisClient")
            .field("pending", &state.as_ref().map(|s| s.pending.len()).ok())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The reply to a command sent with [`RedisClient::cmd`]: a future of
/// `Result<Value, RedisError>`.
///
/// # Examples
///
/// Pipelining: both commands go out before either reply is back.
///
/// ```no_run
/// use ioloop::redis::{RedisClient, Reply};
/// let ioloop = ioloop::IoLoop::new()?;
/// let handle = ioloop.clone();
/// ioloop.run_sync(async move {
///     let redis = RedisClient::connect(&handle, "redis://127.0.0.1:6379").await?;
///     let first: Reply = redis.cmd(["INCR", "visits"]);
///     let second: Reply = redis.cmd(["INCR", "visits"]);
///     let (first, second) = (first.await?, second.await?);
///     assert_eq!(second.as_int(), first.as_int().map(|n| n + 1)); // in order
///     Ok::<(), ioloop::redis::RedisError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reply {
    inner: ReplyInner,
}

enum ReplyInner {
    Ready(Option<RedisError>),
    Waiting(Completion<Result<Value, RedisError>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

impl Future for Reply {
    type Output = Result<Value, RedisError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            ReplyInner::Ready(error) => {
                Poll::Ready(Err(error.take().unwrap_or(RedisError::Closed(None))))
            }
            ReplyInner::Waiting(completion) => Pin::new(completion)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(RedisError::Closed(None)))),
        }
    }
}

impl Reply {
    pub(crate) fn from_error(error: RedisError) -> Reply {
        Reply {
            inner: ReplyInner::Ready(Some(error)),
        }
    }
}

fn connect_error(url: &RedisUrl, e: TcpConnectError) -> RedisError {
    RedisError::Connect(format!("{}:{}: {e}", url.host, url.port))
}

impl RedisClient {
    /// Connects to the server at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` with feature `tls`) with the default [`RedisOptions`]: `HELLO 3` (with
    /// `AUTH` in it when the URL has a password), falling back to RESP2 with `AUTH`;
    /// then `SELECT db` unless it is 0.
    ///
    /// # Errors
    ///
    /// [`RedisError::Url`] for a bad URL, [`RedisError::Connect`] when nothing listens
    /// there (the message names the address), [`RedisError::Server`] when `AUTH` or
    /// `SELECT` is refused, [`RedisError::Timeout`] when the server does not answer within
    /// the connect timeout.
    ///
    /// # Examples
    ///
    /// When Redis is not running:
    ///
    /// ```
    /// use ioloop::redis::{RedisClient, RedisError};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // nothing listens
    /// let url = format!("redis://127.0.0.1:{port}/0");
    /// let refused = ioloop.run_sync(RedisClient::connect(&ioloop, &url))?;
    /// let Err(RedisError::Connect(message)) = refused else { panic!("{refused:?}") };
    /// assert!(message.contains(&format!("127.0.0.1:{port}")));
    ///
    /// let bad = ioloop.run_sync(RedisClient::connect(&ioloop, "http://127.0.0.1"))?;
    /// assert!(matches!(bad, Err(RedisError::Url(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(
        ioloop: &IoLoop,
        url: &str,
    ) -> impl Future<Output = Result<RedisClient, RedisError>> + 'static {
        let parsed = url.parse::<RedisUrl>();
        let ioloop = ioloop.clone();
        async move { RedisClient::connect_with(&ioloop, &parsed?, RedisOptions::default()).await }
    }

    /// [`connect`](RedisClient::connect) with a parsed URL and options.
    ///
    /// # Errors
    ///
    /// As [`connect`](RedisClient::connect).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{RedisClient, RedisOptions};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let url = "redis://127.0.0.1:6379".parse()?;
    /// let redis = ioloop.run_sync(RedisClient::connect_with(&ioloop, &url, RedisOptions::default()))??;
    /// # drop(redis);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_with(
        ioloop: &IoLoop,
        url: &RedisUrl,
        options: RedisOptions,
    ) -> impl Future<Output = Result<RedisClient, RedisError>> + 'static {
        let ioloop = ioloop.clone();
        let url = url.clone();
        async move {
            let limit = options.connect_timeout;
            match timeout(limit, connect_inner(ioloop, url, options)).await {
                Ok(result) => result,
                Err(_) => Err(RedisError::Timeout),
            }
        }
    }

    /// Wraps a connected stream (no handshake: the connection speaks RESP2 until a
    /// `HELLO 3` is sent through [`set_resp3`](RedisClient::set_resp3)).
    fn from_stream(ioloop: &IoLoop, stream: IoStream, options: RedisOptions) -> RedisClient {
        let inner = Rc::new(Inner {
            ioloop: ioloop.downgrade(),
            stream: stream.clone(),
            options,
            state: RefCell::new(State {
                pending: VecDeque::new(),
                error: None,
                resp3: false,
                outbuf: Vec::new(),
                flush_scheduled: false,
                timer: None,
                on_push: None,
                on_close: None,
            }),
        });
        let weak = Rc::downgrade(&inner);
        stream.set_close_callback(move |stream| {
            if let Some(inner) = weak.upgrade() {
                let real = stream.error();
                inner.fail(RedisError::Closed(real));
            }
        });
        read_next(Rc::downgrade(&inner), &stream, 0);
        RedisClient { inner }
    }

    /// Sends a command (its name and arguments, as strings or bytes) and returns its
    /// reply as a future. Commands are pipelined: they are sent without waiting for
    /// earlier replies, every command of one loop iteration in one write (on the next
    /// iteration). `SUBSCRIBE` and its kin answer with pushes, not replies: use a
    /// [`Subscriber`](super::Subscriber) for them.
    ///
    /// # Errors
    ///
    /// The future resolves to [`RedisError::Server`] for an error reply, and to the
    /// connection's error ([`RedisError::Closed`], [`RedisError::Protocol`],
    /// [`RedisError::Timeout`]) when it fails first; [`RedisError::QueueFull`] when the
    /// command could not be queued.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{RedisClient, Value};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let handle = ioloop.clone();
    /// ioloop.run_sync(async move {
    ///     let redis = RedisClient::connect(&handle, "redis://127.0.0.1:6379").await?;
    ///     assert_eq!(redis.cmd(["SET", "counter", "10"]).await?, Value::Status("OK".into()));
    ///     assert_eq!(redis.cmd(["INCRBY", "counter", "5"]).await?, Value::Int(15));
    ///     let wrong = redis.cmd(["LPUSH", "counter", "x"]).await.unwrap_err();
    ///     assert_eq!(wrong.code(), Some("WRONGTYPE")); // a server error reply
    ///     Ok::<(), ioloop::redis::RedisError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cmd<A: AsRef<[u8]>>(&self, args: impl IntoIterator<Item = A>) -> Reply {
        let (done, reply) = completion();
        match self.send(args, Some(Box::new(move |r| done.complete(r)))) {
            Ok(()) => Reply {
                inner: ReplyInner::Waiting(reply),
            },
            Err(e) => Reply {
                inner: ReplyInner::Ready(Some(e)),
            },
        }
    }

    /// [`cmd`](RedisClient::cmd) calling `callback` with the reply instead, on the loop
    /// (always on a later iteration or from the read that got the reply, never from
    /// inside this call).
    ///
    /// # Errors
    ///
    /// The callback gets the errors [`cmd`](RedisClient::cmd)'s future would.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::RedisClient;
    /// # fn f(redis: RedisClient) {
    /// redis.cmd_then(["INCR", "hits"], |reply| match reply {
    ///     Ok(n) => println!("hit number {:?}", n.as_int()),
    ///     Err(e) => eprintln!("{e}"),
    /// });
    /// # }
    /// ```
    pub fn cmd_then<A: AsRef<[u8]>>(
        &self,
        args: impl IntoIterator<Item = A>,
        callback: impl FnOnce(Result<Value, RedisError>) + 'static,
    ) {
        // A refused command's callback is called on the next iteration (`defer_error`).
        let _ = self.send(args, Some(Box::new(callback) as ReplyFn));
    }

    /// Writes a command whose replies come as pushes (RESP3 `SUBSCRIBE`): no reply is
    /// awaited.
    pub(crate) fn send_no_reply<A: AsRef<[u8]>>(
        &self,
        args: impl IntoIterator<Item = A>,
    ) -> Result<(), RedisError> {
        self.send(args, None)
    }

    fn send<A: AsRef<[u8]>>(
        &self,
        args: impl IntoIterator<Item = A>,
        reply: Option<ReplyFn>,
    ) -> Result<(), RedisError> {
        let inner = &self.inner;
        let refused = {
            let state = inner.state.borrow();
            if let Some(e) = &state.error {
                Some(e.clone())
            } else if reply.is_some() && state.pending.len() >= inner.options.max_pending {
                Some(RedisError::QueueFull)
            } else {
                None
            }
        };
        if let Some(e) = refused {
            return Err(defer_error(inner, reply, e));
        }
        // Encoded into the connection's output buffer; every command of this iteration
        // goes out in one write (one syscall and, with TCP_NODELAY, few packets).
        let (written, schedule) = {
            let mut state = inner.state.borrow_mut();
            let before = state.outbuf.len();
            encode_command(&mut state.outbuf, args);
            if inner.stream.write_buffered() + state.outbuf.len() > inner.options.max_write_buffer {
                state.outbuf.truncate(before);
                (Err(RedisError::QueueFull), false)
            } else {
                (Ok(()), !std::mem::replace(&mut state.flush_scheduled, true))
            }
        };
        if let Err(e) = written {
            return Err(defer_error(inner, reply, e));
        }
        if schedule {
            match inner.ioloop() {
                Some(ioloop) => {
                    let weak = Rc::downgrade(inner);
                    ioloop.add_callback(move |_| {
                        if let Some(inner) = weak.upgrade() {
                            inner.flush();
                        }
                    });
                }
                None => return Err(defer_error(inner, reply, RedisError::Closed(None))),
            }
        }
        if reply.is_some() {
            let deadline = inner
                .options
                .command_timeout
                .and_then(|t| Some(inner.ioloop()?.time() + t));
            let arm = {
                let mut state = inner.state.borrow_mut();
                state.pending.push_back(Pending { reply, deadline });
                deadline.filter(|_| state.timer.is_none())
            };
            if let Some(deadline) = arm {
                arm_timer(inner, deadline);
            }
        }
        Ok(())
    }

    /// Whether the next replies are decoded as RESP3 (after a successful `HELLO 3`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// println!("RESP{}", if redis.is_resp3() { 3 } else { 2 });
    /// # }
    /// ```
    pub fn is_resp3(&self) -> bool {
        self.inner.state.borrow().resp3
    }

    fn set_resp3(&self, resp3: bool) {
        self.inner.state.borrow_mut().resp3 = resp3;
    }

    /// Calls `handler` with every RESP3 push (`>`) the server sends outside replies:
    /// pub/sub messages, client-side caching invalidations. Replaces the previous handler.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// redis.on_push(|push| println!("{push:?}"));
    /// # }
    /// ```
    pub fn on_push(&self, handler: impl FnMut(Value) + 'static) {
        let old = self
            .inner
            .state
            .borrow_mut()
            .on_push
            .replace(Box::new(handler));
        drop(old);
    }

    /// Calls `callback` once when the connection fails or closes, with the error every
    /// waiting command got. Replaces the previous callback; called at once (on the next
    /// iteration) if the connection is already closed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// redis.on_close(|error| eprintln!("redis gone: {error}"));
    /// # }
    /// ```
    pub fn on_close(&self, callback: impl FnOnce(&RedisError) + 'static) {
        let error = self.inner.state.borrow().error.clone();
        match error {
            Some(error) => {
                if let Some(ioloop) = self.inner.ioloop() {
                    ioloop.add_callback(move |_| callback(&error));
                }
            }
            None => {
                let old = self
                    .inner
                    .state
                    .borrow_mut()
                    .on_close
                    .replace(Box::new(callback));
                drop(old);
            }
        }
    }

    /// How many commands wait for their replies.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// assert_eq!(redis.pending(), 0);
    /// # }
    /// ```
    pub fn pending(&self) -> usize {
        self.inner.state.borrow().pending.len()
    }

    /// Bytes of commands sent but not yet taken by the socket.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// println!("{} bytes unsent", redis.write_buffered());
    /// # }
    /// ```
    pub fn write_buffered(&self) -> usize {
        self.inner.stream.write_buffered() + self.inner.state.borrow().outbuf.len()
    }

    /// Bytes received and not yet a whole reply.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// println!("{} bytes of a partial reply", redis.read_buffered());
    /// # }
    /// ```
    pub fn read_buffered(&self) -> usize {
        self.inner.stream.buffered()
    }

    /// Closes the connection; waiting commands fail with [`RedisError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(redis: ioloop::redis::RedisClient) {
    /// redis.close();
    /// assert!(redis.is_closed());
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.fail(RedisError::Closed(None));
    }

    /// Whether the connection failed or was closed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{RedisClient, RedisError};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let redis = ioloop.run_sync(RedisClient::connect(&ioloop, "redis://127.0.0.1:6379"))??;
    /// assert!(!redis.is_closed());
    /// redis.close();
    /// assert!(redis.is_closed());
    /// let late = ioloop.run_sync(redis.cmd(["PING"]))?;
    /// assert!(matches!(late, Err(RedisError::Closed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.state.borrow().error.is_some()
    }
}

/// Calls a refused command's callback with `e` on the next iteration; returns `e`.
fn defer_error(inner: &Inner, reply: Option<ReplyFn>, e: RedisError) -> RedisError {
    if let (Some(reply), Some(ioloop)) = (reply, inner.ioloop()) {
        let error = e.clone();
        ioloop.add_callback(move |_| reply(Err(error)));
    }
    e
}

impl Inner {
    fn ioloop(&self) -> Option<IoLoop> {
        self.ioloop.upgrade()
    }

    /// Writes the commands encoded since the last flush.
    fn flush(&self) {
        let mut buf = {
            let mut state = self.state.borrow_mut();
            state.flush_scheduled = false;
            if state.error.is_some() {
                state.outbuf.clear();
                return;
            }
            std::mem::take(&mut state.outbuf)
        };
        let result = self.stream.write(&buf);
        buf.clear();
        if buf.capacity() <= 256 * 1024 {
            let mut state = self.state.borrow_mut();
            if state.outbuf.is_empty() {
                state.outbuf = buf;
            }
        }
        match result {
            Ok(()) => {}
            Err(StreamError::Closed { real_error }) => self.fail(RedisError::Closed(real_error)),
            Err(StreamError::BufferFull) => self.fail(RedisError::QueueFull),
            Err(_) => self.fail(RedisError::Closed(None)),
        }
    }

    /// Fails every waiting command with `error` and closes the connection (once).
    fn fail(&self, error: RedisError) {
        let (pending, timer, on_close) = {
            let mut state = self.state.borrow_mut();
            if state.error.is_some() {
                return;
            }
            state.error = Some(error.clone());
            (
                std::mem::take(&mut state.pending),
                state.timer.take(),
                state.on_close.take(),
            )
        };
        let on_push = self.state.borrow_mut().on_push.take();
        drop(on_push);
        self.stream.close();
        // The waiting commands' callbacks and `on_close` run on the next iteration, never
        // inside the call that failed the connection (`close`, a write).
        let tell = move || {
            for pending in pending {
                if let Some(reply) = pending.reply {
                    reply(Err(error.clone()));
                }
            }
            if let Some(on_close) = on_close {
                on_close(&error);
            }
        };
        match self.ioloop() {
            Some(ioloop) => {
                if let Some(timer) = timer {
                    ioloop.remove_timeout(timer);
                }
                ioloop.add_callback(move |_| tell());
            }
            None => tell(),
        }
    }

    /// Parses every whole reply buffered and hands each to its command.
    fn on_readable(self: &Rc<Inner>, stream: &IoStream) {
        let resp3 = self.state.borrow().resp3;
        let max = self.options.max_bulk_len;
        let (values, used, error) = stream.with_buffered(|buf| decode_replies(buf, max, resp3));
        stream.consume(used);
        for value in values {
            if let Err(e) = self.dispatch(value) {
                return self.fail(RedisError::Protocol(e));
            }
        }
        if let Some(e) = error {
            return self.fail(RedisError::Protocol(e));
        }
        if self.state.borrow().error.is_none() {
            read_next(Rc::downgrade(self), stream, stream.buffered());
        }
    }

    fn dispatch(&self, value: Value) -> Result<(), ProtocolError> {
        let resp3 = self.state.borrow().resp3;
        if resp3 {
            if let Value::Push(_) = value {
                let handler = self.state.borrow_mut().on_push.take();
                if let Some(mut handler) = handler {
                    handler(value);
                    let mut state = self.state.borrow_mut();
                    if state.on_push.is_none() && state.error.is_none() {
                        state.on_push = Some(handler);
                    } else {
                        drop(state);
                        drop(handler);
                    }
                }
                return Ok(());
            }
        }
        let pending = self.state.borrow_mut().pending.pop_front();
        let Some(pending) = pending else {
            return Err(ProtocolError::Unexpected);
        };
        if let Some(reply) = pending.reply {
            reply(match value {
                Value::Error(message) => Err(RedisError::Server(message)),
                value => Ok(value),
            });
        }
        Ok(())
    }
}

impl Drop for Inner {
    /// The last handle is gone: the connection closes (the loop keeps an open stream
    /// alive otherwise), and waiting commands get [`RedisError::Closed`] on the next
    /// iteration. No borrow of the state can be live here (no handle is left).
    fn drop(&mut self) {
        self.fail(RedisError::Closed(None));
    }
}

fn read_next(weak: Weak<Inner>, stream: &IoStream, seen: usize) {
    stream.wait_for_more_then(seen, move |stream, result| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        match result {
            Ok(()) => inner.on_readable(stream),
            Err(StreamError::BufferFull) => {
                inner.fail(RedisError::Protocol(ProtocolError::Decode(format!(
                    "a reply over max_reply_buffer ({} bytes)",
                    inner.options.max_reply_buffer
                ))))
            }
            Err(StreamError::Closed { real_error }) => inner.fail(RedisError::Closed(real_error)),
            Err(_) => inner.fail(RedisError::Closed(None)),
        }
    });
}

fn arm_timer(inner: &Rc<Inner>, deadline: Instant) {
    let Some(ioloop) = inner.ioloop() else {
        return;
    };
    let weak = Rc::downgrade(inner);
    let timer = ioloop.add_timeout(deadline, move |ioloop| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let head = {
            let mut state = inner.state.borrow_mut();
            state.timer = None;
            state.pending.front().and_then(|p| p.deadline)
        };
        match head {
            Some(deadline) if deadline <= ioloop.time() => inner.fail(RedisError::Timeout),
            Some(deadline) => arm_timer(&inner, deadline),
            None => {}
        }
    });
    let old = inner.state.borrow_mut().timer.replace(timer);
    if let Some(old) = old {
        ioloop.remove_timeout(old);
    }
}

async fn connect_inner(
    ioloop: IoLoop,
    url: RedisUrl,
    options: RedisOptions,
) -> Result<RedisClient, RedisError> {
    let stream_options = StreamOptions {
        max_buffer_size: options.max_reply_buffer,
        max_write_buffer_size: Some(options.max_write_buffer.saturating_add(1 << 20)),
        ..StreamOptions::default()
    };
    let tcp = TcpClient::with_options(&ioloop, stream_options);
    let stream = if url.tls {
        #[cfg(feature = "tls")]
        {
            let config = options
                .tls
                .clone()
                .unwrap_or_else(crate::stream::tls::default_client_config);
            tcp.connect_tls(&url.host, url.port, config)
                .await
                .map_err(|e| connect_error(&url, e))?
        }
        #[cfg(not(feature = "tls"))]
        return Err(RedisError::Url("rediss:// needs feature tls".into()));
    } else {
        tcp.connect(&url.host, url.port)
            .await
            .map_err(|e| connect_error(&url, e))?
    };
    let _ = stream.set_nodelay(true);
    let resp3 = options.resp3;
    let client = RedisClient::from_stream(&ioloop, stream, options);
    let user = url.username.clone().unwrap_or_else(|| "default".into());
    let mut authenticated = false;
    if resp3 {
        let mut hello = vec!["HELLO".to_owned(), "3".to_owned()];
        if let Some(password) = &url.password {
            hello.extend(["AUTH".to_owned(), user.clone(), password.clone()]);
        }
        // Replies from here on are RESP3 if the server agrees; its refusal is an error
        // line, the same in both.
        client.set_resp3(true);
        match client.cmd(&hello).await {
            Ok(_) => authenticated = true,
            Err(RedisError::Server(e))
                if e.starts_with("NOPROTO") || e.contains("unknown command") =>
            {
                client.set_resp3(false);
            }
            Err(e) => return Err(e),
        }
    }
    if !authenticated {
        if let Some(password) = &url.password {
            match &url.username {
                Some(user) => client.cmd(["AUTH", user, password]).await?,
                None => client.cmd(["AUTH", password]).await?,
            };
        }
    }
    if url.db != 0 {
        client
            .cmd(["SELECT".to_owned(), url.db.to_string()])
            .await?;
    }
    Ok(client)
}

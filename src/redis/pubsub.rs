//! [`Subscriber`]: pub/sub on one RESP3 connection that reconnects by itself, with
//! capped exponential backoff, and subscribes again to everything it was subscribed to.
//!
//! RESP3 lets one connection both receive pushes and answer commands, so a subscriber
//! can also [`publish`](Subscriber::publish). Messages arrive through a callback
//! ([`on_message`](Subscriber::on_message)) and as an async stream
//! ([`messages`](Subscriber::messages)) with a bounded queue.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use super::client::{RedisClient, RedisOptions, Reply};
use super::error::RedisError;
use super::messages::{Messages, PubSubMessage, Queue};
use super::resp::Value;
use super::url::RedisUrl;
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::task::{completion, Completer, Completion};
use crate::time::Timeout;

/// The delay before reconnect attempt `attempt` (0-based): `initial × 2^attempt`, at most
/// `cap`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ioloop::redis::backoff;
/// let ms = Duration::from_millis;
/// assert_eq!(backoff(0, ms(50), ms(500)), ms(50));
/// assert_eq!(backoff(3, ms(50), ms(500)), ms(400));
/// assert_eq!(backoff(40, ms(50), ms(500)), ms(500));
/// ```
pub fn backoff(attempt: u32, initial: Duration, cap: Duration) -> Duration {
    initial
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .map_or(cap, |d| d.min(cap))
}

/// How a [`Subscriber`] connects and reconnects.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let options = ioloop::redis::SubscriberOptions {
///     max_backoff: Duration::from_millis(250),
///     ..Default::default()
/// };
/// assert_eq!(options.initial_backoff, Duration::from_millis(25));
/// ```
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    /// The connection's options (RESP3 is required).
    pub redis: RedisOptions,
    /// The first delay before reconnecting (default 25 ms); it doubles per failed attempt.
    pub initial_backoff: Duration,
    /// The longest delay between attempts (default 500 ms, so a subscription is back
    /// within about half a second of Redis).
    pub max_backoff: Duration,
    /// The most messages an async [`Messages`] stream holds unread (default 4096); past
    /// it, new messages are dropped for that stream and counted.
    pub stream_capacity: usize,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions {
            redis: RedisOptions::default(),
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(500),
            stream_capacity: 4096,
        }
    }
}

/// A change of a [`Subscriber`]'s connection.
///
/// # Examples
///
/// ```
/// use ioloop::redis::ConnectionEvent;
/// let e = ConnectionEvent::Connected { reconnected: true };
/// assert!(matches!(e, ConnectionEvent::Connected { .. }));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Connected, and every channel and pattern subscribed again (Redis has confirmed
    /// them: a message published from now on is received).
    Connected {
        /// Whether an earlier connection had been lost (or failed) before this one.
        reconnected: bool,
    },
    /// The connection was lost or an attempt failed; another follows after the backoff.
    Lost(RedisError),
}

type MessageFn = Box<dyn FnMut(&PubSubMessage)>;
type EventFn = Box<dyn FnMut(&ConnectionEvent)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
}

struct Waiter {
    kind: Kind,
    name: Vec<u8>,
    done: Completer<Result<(), RedisError>>,
}

struct State {
    client: Option<RedisClient>,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    on_message: Option<MessageFn>,
    on_event: Option<EventFn>,
    queues: Vec<Weak<Queue>>,
    waiters: Vec<Waiter>,
    attempt: u32,
    ever_lost: bool,
    timer: Option<Timeout>,
    closed: bool,
}

struct Inner {
    ioloop: WeakIoLoop,
    url: RedisUrl,
    options: SubscriberOptions,
    state: RefCell<State>,
}

/// Redis pub/sub on the loop: `SUBSCRIBE`, `PSUBSCRIBE`, `UNSUBSCRIBE`,
/// `PUNSUBSCRIBE`, messages to a callback and to async streams, and a connection that
/// comes back by itself. When the connection is lost (Redis restarted, the network cut)
/// it reconnects with capped exponential backoff ([`backoff`]) and subscribes again;
/// [`on_event`](Subscriber::on_event) says when. Messages published while it was away
/// are lost (that is Redis pub/sub).
///
/// Loop thread only; cheap to clone; the connection closes when the last clone is
/// dropped or on [`close`](Subscriber::close).
///
/// # Examples
///
/// ```no_run
/// use ioloop::redis::Subscriber;
/// let ioloop = ioloop::IoLoop::new()?;
/// let handle = ioloop.clone();
/// ioloop.run_sync(async move {
///     let sub = Subscriber::connect(&handle, "redis://127.0.0.1:6379").await?;
///     sub.on_message(|m| println!("{:?}: {:?}", m.channel, m.payload));
///     sub.subscribe("news").await?;
///     sub.publish("news", "hello").await?;
///     Ok::<(), ioloop::redis::RedisError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Subscriber {
    inner: Rc<Inner>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("url", &self.inner.url)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Subscriber {
    /// Connects to `url` and returns a subscriber that will reconnect after any later
    /// loss.
    ///
    /// # Errors
    ///
    /// The first connection's error ([`RedisError::Connect`] when Redis is not running,
    /// [`RedisError::Url`], [`RedisError::Timeout`], ...), or [`RedisError::Server`] when
    /// the server does not speak RESP3 (Redis before 6).
    ///
    /// # Examples
    ///
    /// The first connection must succeed ([`new`](Subscriber::new) keeps trying instead):
    ///
    /// ```
    /// use ioloop::redis::{RedisError, Subscriber};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // no Redis there
    /// let url = format!("redis://127.0.0.1:{port}");
    /// let refused = ioloop.run_sync(Subscriber::connect(&ioloop, &url))?;
    /// assert!(matches!(refused, Err(RedisError::Connect(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(
        ioloop: &IoLoop,
        url: &str,
    ) -> impl Future<Output = Result<Subscriber, RedisError>> + 'static {
        let ioloop = ioloop.clone();
        let url = url.parse::<RedisUrl>();
        async move {
            let url = url?;
            let options = SubscriberOptions::default();
            let client = RedisClient::connect_with(&ioloop, &url, options.redis.clone()).await?;
            require_resp3(&client)?;
            let sub = Subscriber::build(&ioloop, url, options);
            sub.attach(client);
            Ok(sub)
        }
    }

    /// A subscriber that connects in the background and keeps trying until it succeeds
    /// (and after every loss): for a program that must start while Redis is down.
    /// Subscriptions made meanwhile are sent once it is connected.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{Subscriber, SubscriberOptions};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let url = "redis://127.0.0.1:6379".parse()?;
    /// let sub = Subscriber::new(&ioloop, url, SubscriberOptions::default());
    /// sub.on_event(|event| println!("{event:?}"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ioloop: &IoLoop, url: RedisUrl, options: SubscriberOptions) -> Subscriber {
        let sub = Subscriber::build(ioloop, url, options);
        try_connect(&sub.inner);
        sub
    }

    fn build(ioloop: &IoLoop, url: RedisUrl, options: SubscriberOptions) -> Subscriber {
        Subscriber {
            inner: Rc::new(Inner {
                ioloop: ioloop.downgrade(),
                url,
                options,
                state: RefCell::new(State {
                    client: None,
                    channels: BTreeSet::new(),
                    patterns: BTreeSet::new(),
                    on_message: None,
                    on_event: None,
                    queues: Vec::new(),
                    waiters: Vec::new(),
                    attempt: 0,
                    ever_lost: false,
                    timer: None,
                    closed: false,
                }),
            }),
        }
    }

    fn attach(&self, client: RedisClient) {
        attach(&self.inner, client);
    }

    /// Subscribes to `channel`; the future resolves once Redis confirms (after a
    /// reconnect if it is away now). The subscription survives reconnects.
    ///
    /// # Errors
    ///
    /// [`RedisError::Closed`] if the subscriber is closed before the confirmation.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{RedisClient, Subscriber};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let handle = ioloop.clone();
    /// let message = ioloop.run_sync(async move {
    ///     let url = "redis://127.0.0.1:6379";
    ///     let sub = Subscriber::connect(&handle, url).await?;
    ///     let mut messages = sub.messages();
    ///     sub.subscribe("news").await?; // confirmed: what is published now arrives
    ///     let publisher = RedisClient::connect(&handle, url).await?;
    ///     publisher.cmd(["PUBLISH", "news", "hello"]).await?;
    ///     Ok::<_, ioloop::redis::RedisError>(messages.recv().await)
    /// })??;
    /// assert_eq!(message.unwrap().payload, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, channel: impl AsRef<[u8]>) -> Subscribed {
        self.add(Kind::Channel, channel.as_ref())
    }

    /// Subscribes to the glob-style `pattern` (`PSUBSCRIBE`); messages carry the
    /// pattern in [`PubSubMessage::pattern`].
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Subscriber::subscribe).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(sub: ioloop::redis::Subscriber) -> Result<(), ioloop::redis::RedisError> {
    /// sub.psubscribe("room:*").await?;
    /// # Ok(()) }
    /// ```
    pub fn psubscribe(&self, pattern: impl AsRef<[u8]>) -> Subscribed {
        self.add(Kind::Pattern, pattern.as_ref())
    }

    fn add(&self, kind: Kind, name: &[u8]) -> Subscribed {
        let (done, confirmed) = completion();
        let client = {
            let mut state = self.inner.state.borrow_mut();
            if state.closed {
                drop(state);
                done.complete(Err(RedisError::Closed(None)));
                return Subscribed(confirmed);
            }
            let set = match kind {
                Kind::Channel => &mut state.channels,
                Kind::Pattern => &mut state.patterns,
            };
            set.insert(name.to_vec());
            state.waiters.push(Waiter {
                kind,
                name: name.to_vec(),
                done,
            });
            state.client.clone()
        };
        if let Some(client) = client {
            let command: &[u8] = match kind {
                Kind::Channel => b"SUBSCRIBE",
                Kind::Pattern => b"PSUBSCRIBE",
            };
            let _ = client.send_no_reply([command, name]);
        }
        Subscribed(confirmed)
    }

    /// Unsubscribes from `channel` (no more of its messages are delivered from now on,
    /// even before Redis confirms).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(sub: ioloop::redis::Subscriber) {
    /// sub.unsubscribe("news");
    /// # }
    /// ```
    pub fn unsubscribe(&self, channel: impl AsRef<[u8]>) {
        self.remove(Kind::Channel, channel.as_ref());
    }

    /// Unsubscribes from `pattern`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(sub: ioloop::redis::Subscriber) {
    /// sub.punsubscribe("room:*");
    /// # }
    /// ```
    pub fn punsubscribe(&self, pattern: impl AsRef<[u8]>) {
        self.remove(Kind::Pattern, pattern.as_ref());
    }

    fn remove(&self, kind: Kind, name: &[u8]) {
        let client = {
            let mut state = self.inner.state.borrow_mut();
            let set = match kind {
                Kind::Channel => &mut state.channels,
                Kind::Pattern => &mut state.patterns,
            };
            set.remove(name);
            state.client.clone()
        };
        if let Some(client) = client {
            let command: &[u8] = match kind {
                Kind::Channel => b"UNSUBSCRIBE",
                Kind::Pattern => b"PUNSUBSCRIBE",
            };
            let _ = client.send_no_reply([command, name]);
        }
    }

    /// Publishes `payload` to `channel` on this subscriber's connection (RESP3 allows
    /// commands on a subscribed connection); the reply is the number of subscribers
    /// that got it.
    ///
    /// # Errors
    ///
    /// [`RedisError::NotConnected`] between connections; otherwise as
    /// [`RedisClient::cmd`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::{Subscriber, Value};
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let handle = ioloop.clone();
    /// let receivers = ioloop.run_sync(async move {
    ///     let sub = Subscriber::connect(&handle, "redis://127.0.0.1:6379").await?;
    ///     sub.subscribe("news").await?;
    ///     sub.publish("news", "hello").await
    /// })??;
    /// assert_eq!(receivers, Value::Int(1)); // this subscriber itself
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&self, channel: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Reply {
        self.cmd([b"PUBLISH" as &[u8], channel.as_ref(), payload.as_ref()])
    }

    /// Sends any command on this subscriber's connection (see [`RedisClient::cmd`]).
    ///
    /// # Errors
    ///
    /// [`RedisError::NotConnected`] between connections; otherwise as
    /// [`RedisClient::cmd`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(sub: ioloop::redis::Subscriber) -> Result<(), ioloop::redis::RedisError> {
    /// sub.cmd(["PING"]).await?;
    /// # Ok(()) }
    /// ```
    pub fn cmd<A: AsRef<[u8]>>(&self, args: impl IntoIterator<Item = A>) -> Reply {
        let client = self.inner.state.borrow().client.clone();
        match client {
            Some(client) => client.cmd(args),
            None => Reply::failed(RedisError::NotConnected),
        }
    }

    /// [`cmd`](Subscriber::cmd) calling `callback` with the reply (never from inside this
    /// call).
    ///
    /// # Errors
    ///
    /// The callback gets the errors [`cmd`](Subscriber::cmd)'s future would.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(sub: ioloop::redis::Subscriber) {
    /// sub.cmd_then(["PUBLISH", "news", "hi"], |reply| println!("{reply:?}"));
    /// # }
    /// ```
    pub fn cmd_then<A: AsRef<[u8]>>(
        &self,
        args: impl IntoIterator<Item = A>,
        callback: impl FnOnce(Result<Value, RedisError>) + 'static,
    ) {
        let client = self.inner.state.borrow().client.clone();
        match client {
            Some(client) => client.cmd_then(args, callback),
            None => {
                if let Some(ioloop) = self.inner.ioloop() {
                    ioloop.add_callback(move |_| callback(Err(RedisError::NotConnected)));
                }
            }
        }
    }

    /// Calls `callback` with each message. Replaces the previous callback.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::{cell::RefCell, rc::Rc};
    /// use ioloop::redis::Subscriber;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let sub = ioloop.run_sync(Subscriber::connect(&ioloop, "redis://127.0.0.1:6379"))??;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// sub.on_message(move |m| log.borrow_mut().push((m.channel.clone(), m.payload.clone())));
    /// ioloop.run_sync(sub.subscribe("news"))??;
    /// ioloop.run_sync(sub.publish("news", "hello"))??;
    /// ioloop::testing::run_until(&ioloop, || !seen.borrow().is_empty());
    /// assert_eq!(seen.borrow()[0], (b"news".to_vec(), b"hello".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_message(&self, callback: impl FnMut(&PubSubMessage) + 'static) {
        let old = self
            .inner
            .state
            .borrow_mut()
            .on_message
            .replace(Box::new(callback));
        drop(old);
    }

    /// Calls `callback` when the connection is lost or (re)made. Replaces the previous
    /// callback.
    ///
    /// # Examples
    ///
    /// Started while Redis is not running, a subscriber says each failed attempt:
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use ioloop::redis::{ConnectionEvent, RedisError, Subscriber, SubscriberOptions};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // no Redis there
    /// let url = format!("redis://127.0.0.1:{port}").parse()?;
    /// let sub = Subscriber::new(&ioloop, url, SubscriberOptions::default());
    /// let events = Rc::new(RefCell::new(Vec::new()));
    /// let log = events.clone();
    /// sub.on_event(move |event| log.borrow_mut().push(event.clone()));
    /// ioloop::testing::run_until(&ioloop, || !events.borrow().is_empty());
    /// let first = events.borrow()[0].clone();
    /// assert!(matches!(first, ConnectionEvent::Lost(RedisError::Connect(_))));
    /// sub.close();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_event(&self, callback: impl FnMut(&ConnectionEvent) + 'static) {
        let old = self
            .inner
            .state
            .borrow_mut()
            .on_event
            .replace(Box::new(callback));
        drop(old);
    }

    /// An async stream of the messages from now on, holding at most
    /// [`stream_capacity`](SubscriberOptions::stream_capacity) unread (newer ones are
    /// dropped and counted by [`Messages::dropped`]). It ends when the subscriber is
    /// closed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(sub: ioloop::redis::Subscriber) {
    /// let mut messages = sub.messages();
    /// while let Some(m) = messages.recv().await {
    ///     println!("{:?}", m.payload);
    /// }
    /// # }
    /// ```
    pub fn messages(&self) -> Messages {
        let queue = Rc::new(Queue::new(self.inner.options.stream_capacity));
        let mut state = self.inner.state.borrow_mut();
        if state.closed {
            queue.end();
        }
        state.queues.push(Rc::downgrade(&queue));
        Messages::new(queue)
    }

    /// Whether a connection is up now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(sub: ioloop::redis::Subscriber) {
    /// if !sub.is_connected() { println!("reconnecting…"); }
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        let state = self.inner.state.borrow();
        state.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// Closes the connection and stops reconnecting; streams end.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(sub: ioloop::redis::Subscriber) {
    /// sub.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.shut();
    }
}

impl Reply {
    pub(crate) fn failed(error: RedisError) -> Reply {
        Reply::from_error(error)
    }
}

fn require_resp3(client: &RedisClient) -> Result<(), RedisError> {
    if client.is_resp3() {
        Ok(())
    } else {
        client.close();
        Err(RedisError::Server(
            "NOPROTO pub/sub here needs RESP3 (Redis 6 or later)".into(),
        ))
    }
}

impl Inner {
    fn ioloop(&self) -> Option<IoLoop> {
        self.ioloop.upgrade()
    }

    fn shut(&self) {
        let (client, timer, waiters, queues, on_message, on_event) = {
            let mut state = self.state.borrow_mut();
            state.closed = true;
            (
                state.client.take(),
                state.timer.take(),
                std::mem::take(&mut state.waiters),
                std::mem::take(&mut state.queues),
                state.on_message.take(),
                state.on_event.take(),
            )
        };
        if let (Some(timer), Some(ioloop)) = (timer, self.ioloop()) {
            ioloop.remove_timeout(timer);
        }
        if let Some(client) = client {
            client.close();
        }
        for waiter in waiters {
            waiter.done.complete(Err(RedisError::Closed(None)));
        }
        for queue in queues.iter().filter_map(Weak::upgrade) {
            queue.end();
        }
        drop((on_message, on_event));
    }

    fn event(&self, event: ConnectionEvent) {
        let callback = self.state.borrow_mut().on_event.take();
        if let Some(mut callback) = callback {
            callback(&event);
            let mut state = self.state.borrow_mut();
            if state.on_event.is_none() && !state.closed {
                state.on_event = Some(callback);
            }
        }
    }

    fn on_push(&self, push: Value) {
        let Value::Push(items) = push else { return };
        let mut items = items.into_iter().map(|v| match v {
            Value::Bulk(b) => b,
            Value::Status(s) => s.into_bytes(),
            Value::Int(i) => i.to_string().into_bytes(),
            _ => Vec::new(),
        });
        let kind = items.next().unwrap_or_default();
        let message = match &kind[..] {
            b"message" => {
                let (Some(channel), Some(payload)) = (items.next(), items.next()) else {
                    return;
                };
                if !self.state.borrow().channels.contains(&channel) {
                    return; // unsubscribed meanwhile
                }
                PubSubMessage {
                    channel,
                    pattern: None,
                    payload,
                }
            }
            b"pmessage" => {
                let (Some(pattern), Some(channel), Some(payload)) =
                    (items.next(), items.next(), items.next())
                else {
                    return;
                };
                if !self.state.borrow().patterns.contains(&pattern) {
                    return;
                }
                PubSubMessage {
                    channel,
                    pattern: Some(pattern),
                    payload,
                }
            }
            b"subscribe" | b"psubscribe" => {
                let kind = if kind == b"subscribe" {
                    Kind::Channel
                } else {
                    Kind::Pattern
                };
                let Some(name) = items.next() else { return };
                let confirmed: Vec<Waiter> = {
                    let mut state = self.state.borrow_mut();
                    let (done, waiting) = std::mem::take(&mut state.waiters)
                        .into_iter()
                        .partition(|w| w.kind == kind && w.name == name);
                    state.waiters = waiting;
                    done
                };
                for waiter in confirmed {
                    waiter.done.complete(Ok(()));
                }
                return;
            }
            _ => return,
        };
        let queues: Vec<Rc<Queue>> = {
            let mut state = self.state.borrow_mut();
            state.queues.retain(|q| q.strong_count() > 0);
            state.queues.iter().filter_map(Weak::upgrade).collect()
        };
        for queue in queues {
            queue.push(message.clone());
        }
        let callback = self.state.borrow_mut().on_message.take();
        if let Some(mut callback) = callback {
            callback(&message);
            let mut state = self.state.borrow_mut();
            if state.on_message.is_none() && !state.closed {
                state.on_message = Some(callback);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let ioloop = self.ioloop();
        let state = self.state.get_mut();
        state.closed = true;
        let (timer, client) = (state.timer.take(), state.client.take());
        let queues = std::mem::take(&mut state.queues);
        if let (Some(timer), Some(ioloop)) = (timer, ioloop) {
            ioloop.remove_timeout(timer);
        }
        if let Some(client) = client {
            client.close();
        }
        for queue in queues.iter().filter_map(Weak::upgrade) {
            queue.end();
        }
    }
}

/// Takes `client` as the connection: pushes come here, its loss schedules a reconnect,
/// and every subscription is sent again.
fn attach(inner: &Rc<Inner>, client: RedisClient) {
    let weak = Rc::downgrade(inner);
    client.on_push(move |push| {
        if let Some(inner) = weak.upgrade() {
            inner.on_push(push);
        }
    });
    let weak = Rc::downgrade(inner);
    client.on_close(move |error| {
        if let Some(inner) = weak.upgrade() {
            lost(&inner, error.clone());
        }
    });
    let (channels, patterns, reconnected) = {
        let mut state = inner.state.borrow_mut();
        state.client = Some(client.clone());
        state.attempt = 0;
        (
            state.channels.iter().cloned().collect::<Vec<_>>(),
            state.patterns.iter().cloned().collect::<Vec<_>>(),
            state.ever_lost,
        )
    };
    if !channels.is_empty() {
        let args = std::iter::once(b"SUBSCRIBE".to_vec()).chain(channels);
        let _ = client.send_no_reply(args);
    }
    if !patterns.is_empty() {
        let args = std::iter::once(b"PSUBSCRIBE".to_vec()).chain(patterns);
        let _ = client.send_no_reply(args);
    }
    // Redis answers in order: once this PING is answered, every subscription above is
    // in place, and only then is the connection reported.
    let weak = Rc::downgrade(inner);
    client.cmd_then(["PING"], move |reply| {
        let Some(inner) = weak.upgrade() else { return };
        let current = inner
            .state
            .borrow()
            .client
            .as_ref()
            .is_some_and(|c| !c.is_closed());
        if reply.is_ok() && current {
            inner.event(ConnectionEvent::Connected { reconnected });
        }
    });
}

fn lost(inner: &Rc<Inner>, error: RedisError) {
    {
        let mut state = inner.state.borrow_mut();
        if state.closed {
            return;
        }
        state.client = None;
        state.ever_lost = true;
    }
    log::warn!(target: "ioloop::redis", "pub/sub connection lost: {error}; reconnecting");
    inner.event(ConnectionEvent::Lost(error));
    schedule(inner);
}

fn schedule(inner: &Rc<Inner>) {
    let Some(ioloop) = inner.ioloop() else { return };
    let delay = {
        let mut state = inner.state.borrow_mut();
        if state.closed {
            return;
        }
        let delay = backoff(
            state.attempt,
            inner.options.initial_backoff,
            inner.options.max_backoff,
        );
        state.attempt = state.attempt.saturating_add(1);
        delay
    };
    let weak = Rc::downgrade(inner);
    let timer = ioloop.call_later(delay, move |_| {
        if let Some(inner) = weak.upgrade() {
            inner.state.borrow_mut().timer = None;
            try_connect(&inner);
        }
    });
    let old = inner.state.borrow_mut().timer.replace(timer);
    if let Some(old) = old {
        ioloop.remove_timeout(old);
    }
}

fn try_connect(inner: &Rc<Inner>) {
    let Some(ioloop) = inner.ioloop() else { return };
    let weak = Rc::downgrade(inner);
    let connect = RedisClient::connect_with(&ioloop, &inner.url, inner.options.redis.clone());
    ioloop.add_future(connect, move |_, result| {
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.borrow().closed {
            if let Ok(client) = result {
                client.close();
            }
            return;
        }
        match result.and_then(|client| require_resp3(&client).map(|()| client)) {
            Ok(client) => attach(&inner, client),
            Err(error) => {
                log::debug!(target: "ioloop::redis", "pub/sub connect failed: {error}");
                inner.state.borrow_mut().ever_lost = true;
                inner.event(ConnectionEvent::Lost(error));
                schedule(&inner);
            }
        }
    });
}

/// The future of a [`Subscriber::subscribe`]: resolves when Redis confirms.
///
/// # Examples
///
/// Closed before Redis could confirm (it is not running here):
///
/// ```
/// use ioloop::redis::{RedisError, Subscribed, Subscriber, SubscriberOptions};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // no Redis there
/// let url = format!("redis://127.0.0.1:{port}").parse()?;
/// let sub = Subscriber::new(&ioloop, url, SubscriberOptions::default());
/// let subscribed: Subscribed = sub.subscribe("news"); // sent once connected
/// sub.close();
/// let outcome = ioloop.run_sync(subscribed)?;
/// assert!(matches!(outcome, Err(RedisError::Closed(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Subscribed(Completion<Result<(), RedisError>>);

impl Future for Subscribed {
    type Output = Result<(), RedisError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(RedisError::Closed(None))))
    }
}

//! [`RedisRoom`]: a [`Room`] that also spans processes (and machines) through Redis
//! pub/sub, as Socket.IO's Redis adapter and Django Channels' Redis layer do.
//!
//! Each process says a message to its own members at once (through the [`Room`], on
//! every loop) and publishes it once to the room's channel, wrapped in an envelope with
//! the process's origin id and a sequence number:
//! `ioloop/1 <origin> <seq> <t|b> <payload>`. Every process subscribes once per room;
//! a message with its own origin is skipped (its members had it already), so no member
//! gets a message twice. A gap in another origin's sequence numbers is a count of
//! messages lost on the way (Redis pub/sub keeps nothing for a subscriber that is away),
//! reported by [`RoomStats::lost`]. A message without an envelope (`redis-cli PUBLISH
//! room hello`) is delivered as it is.
//!
//! The Redis connection lives on the loop that made the room (the hub). Messages to
//! publish wait in a bounded queue (count and bytes) shared by every thread; while Redis
//! is slow or away the queue fills and further messages are dropped and counted
//! (logged at most once a second); local delivery goes on regardless.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::broadcast::Broadcast;
use super::protocol::Message;
use super::room::Room;
use super::socket::WebSocket;
use crate::reactor::ioloop::IoLoop;
use crate::reactor::remote::Remote;
use crate::redis::{ConnectionEvent, RedisError, RedisUrl, Subscriber, SubscriberOptions};

/// Limits of a [`RedisRoom`].
///
/// # Examples
///
/// ```
/// let options = ioloop::websocket::RedisRoomOptions {
///     max_queued: 100,
///     ..Default::default()
/// };
/// assert_eq!(options.max_queued_bytes, 4 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct RedisRoomOptions {
    /// The connection's options (reconnect backoff, timeouts, limits).
    pub subscriber: SubscriberOptions,
    /// The most messages waiting to be published (default 1024).
    pub max_queued: usize,
    /// The most bytes of messages waiting to be published (default 4 MiB).
    pub max_queued_bytes: usize,
    /// The most `PUBLISH` commands sent and not yet answered (default 64): while Redis is
    /// slow, the rest wait in the queue.
    pub max_in_flight: usize,
}

impl Default for RedisRoomOptions {
    fn default() -> Self {
        RedisRoomOptions {
            subscriber: SubscriberOptions::default(),
            max_queued: 1024,
            max_queued_bytes: 4 << 20,
            max_in_flight: 64,
        }
    }
}

/// What a [`RedisRoom`] has done so far ([`RedisRoom::stats`]).
///
/// # Examples
///
/// ```
/// let stats = ioloop::websocket::RoomStats::default();
/// assert_eq!(stats.dropped + stats.lost, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Messages said here and published (Redis answered the `PUBLISH`).
    pub published: u64,
    /// Messages said here and not published because the queue was full.
    pub dropped: u64,
    /// Messages said here whose `PUBLISH` failed (the connection was lost with it sent).
    pub failed: u64,
    /// Messages from other processes delivered here.
    pub received: u64,
    /// Messages of other processes that never arrived (gaps in their sequence numbers).
    pub lost: u64,
    /// Messages waiting to be published now.
    pub queued: u64,
    /// Times the subscription was made (1 after the first connection; each reconnect
    /// adds one).
    pub connections: u64,
}

struct Outgoing {
    /// The sequence number of the last message said (queued or dropped). Numbered under
    /// this lock, so the queue, and so the channel, has them in increasing order even
    /// when several threads say at once (a receiver takes a smaller number after a
    /// larger one for a duplicate).
    last_seq: u64,
    messages: VecDeque<Vec<u8>>,
    bytes: usize,
    last_drop_log: Option<Instant>,
    dropped_since_log: u64,
}

struct Shared {
    room: Room,
    channel: Vec<u8>,
    origin: String,
    hub: Remote,
    options: RedisRoomOptions,
    outgoing: Mutex<Outgoing>,
    drain_posted: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    connections: AtomicU64,
    id: u64,
    on_event: Mutex<Option<EventFn>>,
}

type EventFn = Box<dyn FnMut(&ConnectionEvent) + Send>;

/// The hub loop's half: the connection and what it has seen of other origins.
struct Hub {
    subscriber: Subscriber,
    in_flight: usize,
    last_seq: HashMap<String, u64>,
}

thread_local! {
    static HUBS: RefCell<HashMap<u64, Hub>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A chat room across the loops of this process ([`Room`]) and across processes through
/// Redis pub/sub. See the module docs for the envelope and the guarantees: members here
/// get local messages at once; others' messages arrive through one subscription per room;
/// a message is published once and never delivered twice to a member; while Redis is
/// slow or away, local delivery goes on and messages for other processes wait in a
/// bounded queue, past which they are dropped and counted. If Redis is not running when
/// the room is made, the room works locally and joins Redis when it comes up.
///
/// `Send + Sync`, cheap to clone; its Redis connection lives on the loop that made it.
///
/// # Examples
///
/// ```no_run
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, Message, RedisRoom, RedisRoomOptions};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let room = RedisRoom::new(&ioloop, "redis://127.0.0.1:6379", "chat", RedisRoomOptions::default())?;
/// Application::new()
///     .route("/ws", websocket(move |ws, _req| {
///         let room = room.clone();
///         async move {
///             room.join(&ws);
///             while let Some(Message::Text(text)) = ws.recv().await {
///                 room.say(text);
///             }
///         }
///     }))
///     .listen(&ioloop, 8888)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisRoom {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRoom")
            .field("channel", &String::from_utf8_lossy(&self.shared.channel))
            .field("origin", &self.shared.origin)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A process-unique origin id: random bits from the std hasher's seed, the time and the
/// process id.
fn new_origin() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u64(NEXT_ID.load(Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

impl RedisRoom {
    /// Makes the room on `ioloop` (its hub: the loop that keeps the Redis connection),
    /// publishing and subscribing to `channel` on the server at `url`. Connects in the
    /// background and keeps trying while Redis is away.
    ///
    /// # Errors
    ///
    /// [`RedisError::Url`] for a bad URL (an unreachable server is not an error: the room
    /// starts local-only).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::RedisError;
    /// use ioloop::websocket::{RedisRoom, RedisRoomOptions};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // no Redis there
    /// let url = format!("redis://127.0.0.1:{port}");
    /// let room = RedisRoom::new(&ioloop, &url, "chat", RedisRoomOptions::default())?;
    /// assert!(room.local().is_empty()); // local-only until Redis comes up
    ///
    /// let bad = RedisRoom::new(&ioloop, "http://127.0.0.1", "chat", RedisRoomOptions::default());
    /// assert!(matches!(bad, Err(RedisError::Url(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        ioloop: &IoLoop,
        url: &str,
        channel: &str,
        options: RedisRoomOptions,
    ) -> Result<RedisRoom, RedisError> {
        let url: RedisUrl = url.parse()?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            room: Room::new(),
            channel: channel.as_bytes().to_vec(),
            origin: new_origin(),
            hub: ioloop.remote(),
            outgoing: Mutex::new(Outgoing {
                last_seq: 0,
                messages: VecDeque::new(),
                bytes: 0,
                last_drop_log: None,
                dropped_since_log: 0,
            }),
            drain_posted: AtomicBool::new(false),
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            id,
            on_event: Mutex::new(None),
            options: options.clone(),
        });
        let subscriber = Subscriber::new(ioloop, url, options.subscriber);
        let weak = Arc::downgrade(&shared);
        subscriber.on_message(move |message| {
            if let Some(shared) = weak.upgrade() {
                shared.receive(&message.payload);
            }
        });
        let weak = Arc::downgrade(&shared);
        subscriber.on_event(move |event| {
            let Some(shared) = weak.upgrade() else { return };
            match event {
                ConnectionEvent::Connected { .. } => {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    drain(&shared);
                }
                ConnectionEvent::Lost(_) => {
                    HUBS.with(|h| {
                        if let Some(hub) = h.borrow_mut().get_mut(&shared.id) {
                            hub.in_flight = 0;
                        }
                    });
                }
            }
            let callback = lock(&shared.on_event).take();
            if let Some(mut callback) = callback {
                callback(event);
                let mut slot = lock(&shared.on_event);
                if slot.is_none() {
                    *slot = Some(callback);
                } else {
                    drop(slot);
                    drop(callback);
                }
            }
        });
        // The confirmation is not awaited: messages flow once it comes.
        drop(subscriber.subscribe(channel));
        let hub = Hub {
            subscriber,
            in_flight: 0,
            last_seq: HashMap::new(),
        };
        let old = HUBS.with(|h| h.borrow_mut().insert(id, hub));
        drop(old);
        Ok(RedisRoom { shared })
    }

    /// The room of this process's members (join and leave them through it or through
    /// [`join`](RedisRoom::join)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::RedisRoom) {
    /// println!("{} members here", room.local().len());
    /// # }
    /// ```
    pub fn local(&self) -> &Room {
        &self.shared.room
    }

    /// Adds `ws` on its loop's thread (see [`Room::join`]).
    ///
    /// # Panics
    ///
    /// If no loop runs on this thread.
    ///
    /// # Examples
    ///
    /// It works without Redis too, for this process's members:
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, RedisRoom, RedisRoomOptions};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// # let (_reserved, port) = ioloop::testing::bind_refusing_port()?;
    /// # let url = format!("redis://127.0.0.1:{port}");
    /// let room = RedisRoom::new(&ioloop, &url, "chat", RedisRoomOptions::default())?;
    /// let lobby = room.clone();
    /// let route = websocket(move |ws, _req| {
    ///     lobby.join(&ws);
    ///     async move { while ws.recv().await.is_some() {} }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let ws = ioloop.run_sync(websocket_connect(&format!("ws://{addr}/")))??;
    /// assert_eq!(room.local().len(), 1);
    /// # drop(ws);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self, ws: &WebSocket) {
        self.shared.room.join(ws);
    }

    /// Removes `ws` (see [`Room::leave`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::RedisRoom, ws: ioloop::websocket::WebSocket) {
    /// room.leave(&ws);
    /// # }
    /// ```
    pub fn leave(&self, ws: &WebSocket) {
        self.shared.room.leave(ws);
    }

    /// Says `message` to every member here (at once, on every loop) and queues it once
    /// for the other processes. From any thread.
    ///
    /// # Examples
    ///
    /// With Redis away, the members here get the message and it waits to be published:
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Message};
    /// use ioloop::websocket::{RedisRoom, RedisRoomOptions};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// # let (_reserved, port) = ioloop::testing::bind_refusing_port()?;
    /// # let url = format!("redis://127.0.0.1:{port}");
    /// let room = RedisRoom::new(&ioloop, &url, "chat", RedisRoomOptions::default())?;
    /// let lobby = room.clone();
    /// let route = websocket(move |ws, _req| {
    ///     lobby.join(&ws);
    ///     async move { while ws.recv().await.is_some() {} }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let said = room.clone();
    /// let heard = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     said.say("hello");
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(heard, Some(Message::from("hello")));
    /// assert_eq!(room.stats().queued, 1); // for the other processes, once Redis is up
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn say(&self, message: impl Into<Message>) {
        let message = message.into();
        self.shared.enqueue(&message);
        self.shared.room.send(Arc::new(Broadcast::new(message)));
    }

    /// Counters: published, dropped, failed, received, lost, queued.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::RedisRoom) {
    /// let stats = room.stats();
    /// println!("{} lost, {} dropped", stats.lost, stats.dropped);
    /// # }
    /// ```
    pub fn stats(&self) -> RoomStats {
        let s = &self.shared;
        RoomStats {
            published: s.published.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            queued: s.outgoing().messages.len() as u64,
            connections: s.connections.load(Ordering::Relaxed),
        }
    }

    /// Calls `callback` (on the hub loop) when the room's Redis connection is made, made
    /// again (its subscription in place) or lost. Replaces the previous callback.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::ConnectionEvent;
    /// # fn f(room: ioloop::websocket::RedisRoom) {
    /// room.on_event(|event| {
    ///     if let ConnectionEvent::Lost(e) = event {
    ///         eprintln!("redis away ({e}); the room is local until it is back");
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_event(&self, callback: impl FnMut(&ConnectionEvent) + Send + 'static) {
        let old = lock(&self.shared.on_event).replace(Box::new(callback));
        drop(old);
    }

    /// This process's origin id (16 hex digits), as it appears in the envelopes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::RedisRoom) {
    /// assert_eq!(room.origin().len(), 16);
    /// # }
    /// ```
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// Closes the Redis connection (on the hub loop) and stops reconnecting; the room
    /// goes on locally. From any thread.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::RedisRoom) {
    /// room.close();
    /// # }
    /// ```
    pub fn close(&self) {
        let id = self.shared.id;
        let _ = self.shared.hub.add_callback(move |_| close_hub(id));
    }
}

fn close_hub(id: u64) {
    let hub = HUBS.with(|h| h.borrow_mut().remove(&id));
    if let Some(hub) = hub {
        hub.subscriber.close();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.hub.add_callback(move |_| close_hub(id));
    }
}

fn envelope(origin: &str, seq: u64, message: &Message) -> Vec<u8> {
    let (kind, payload) = match message {
        Message::Text(text) => ("t", text.as_bytes()),
        Message::Binary(bytes) => ("b", &bytes[..]),
    };
    let mut out = format!("ioloop/1 {origin} {seq} {kind} ").into_bytes();
    out.extend_from_slice(payload);
    out
}

/// `(origin, seq, message)` of an envelope, or `None` for a message without one.
fn open_envelope(payload: &[u8]) -> Option<(&str, u64, Message)> {
    let rest = payload.strip_prefix(b"ioloop/1 ")?;
    let mut fields = rest.splitn(4, |&b| b == b' ');
    let origin = std::str::from_utf8(fields.next()?).ok()?;
    let seq = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let kind = fields.next()?;
    let body = fields.next()?.to_vec();
    let message = match kind {
        b"t" => Message::Text(String::from_utf8(body).ok()?),
        b"b" => Message::Binary(body),
        _ => return None,
    };
    Some((origin, seq, message))
}

const MAX_ORIGINS: usize = 4096;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only plain updates run under these locks: a poisoned one is still consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        self.outgoing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers `message`, wraps it in its envelope and queues it for publishing (or drops
    /// and counts it when the queue is full).
    fn enqueue(self: &Arc<Shared>, message: &Message) {
        let log_drops = {
            let mut out = self.outgoing();
            out.last_seq += 1;
            let envelope = envelope(&self.origin, out.last_seq, message);
            if out.messages.len() >= self.options.max_queued
                || out.bytes + envelope.len() > self.options.max_queued_bytes
            {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                out.dropped_since_log += 1;
                let now = Instant::now();
                let due = out
                    .last_drop_log
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
                if due {
                    out.last_drop_log = Some(now);
                    Some(std::mem::take(&mut out.dropped_since_log))
                } else {
                    None
                }
            } else {
                out.bytes += envelope.len();
                out.messages.push_back(envelope);
                None
            }
        };
        if let Some(n) = log_drops {
            log::warn!(
                target: "ioloop::websocket",
                "redis room {:?}: publish queue full, {n} message(s) for other processes dropped",
                String::from_utf8_lossy(&self.channel)
            );
            return;
        }
        if !self.drain_posted.swap(true, Ordering::AcqRel) {
            let shared = self.clone();
            if self.hub.add_callback(move |_| drain(&shared)).is_err() {
                self.drain_posted.store(false, Ordering::Release);
            }
        }
    }

    /// A message from Redis (on the hub loop).
    fn receive(&self, payload: &[u8]) {
        let message = match open_envelope(payload) {
            Some((origin, _, _)) if origin == self.origin => return,
            Some((origin, seq, message)) => {
                let gap = HUBS.with(|h| {
                    let mut hubs = h.borrow_mut();
                    let hub = hubs.get_mut(&self.id)?;
                    if hub.last_seq.len() >= MAX_ORIGINS && !hub.last_seq.contains_key(origin) {
                        hub.last_seq.clear();
                    }
                    let last = hub.last_seq.entry(origin.to_owned()).or_insert(0);
                    if seq <= *last && *last != 0 {
                        return None; // a duplicate (never expected)
                    }
                    let gap = if *last == 0 { 0 } else { seq - *last - 1 };
                    *last = seq;
                    Some(gap)
                });
                match gap {
                    None => return,
                    Some(gap) => {
                        self.lost.fetch_add(gap, Ordering::Relaxed);
                    }
                }
                message
            }
            None => match String::from_utf8(payload.to_vec()) {
                Ok(text) => Message::Text(text),
                Err(e) => Message::Binary(e.into_bytes()),
            },
        };
        self.received.fetch_add(1, Ordering::Relaxed);
        self.room.send(Arc::new(Broadcast::new(message)));
    }
}

/// Sends queued messages while the connection is up and fewer than `max_in_flight` wait
/// for their replies (on the hub loop).
fn drain(shared: &Arc<Shared>) {
    shared.drain_posted.store(false, Ordering::Release);
    loop {
        let subscriber = HUBS.with(|h| {
            let hubs = h.borrow();
            let hub = hubs.get(&shared.id)?;
            (hub.in_flight < shared.options.max_in_flight && hub.subscriber.is_connected())
                .then(|| hub.subscriber.clone())
        });
        let Some(subscriber) = subscriber else { return };
        let next = {
            let mut out = shared.outgoing();
            let next = out.messages.pop_front();
            if let Some(m) = &next {
                out.bytes -= m.len();
            }
            next
        };
        let Some(envelope) = next else { return };
        HUBS.with(|h| {
            if let Some(hub) = h.borrow_mut().get_mut(&shared.id) {
                hub.in_flight += 1;
            }
        });
        let weak = Arc::downgrade(shared);
        subscriber.cmd_then(
            [b"PUBLISH" as &[u8], &shared.channel, &envelope],
            move |reply| {
                let Some(shared) = weak.upgrade() else { return };
                match reply {
                    Ok(_) => shared.published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => shared.failed.fetch_add(1, Ordering::Relaxed),
                };
                HUBS.with(|h| {
                    if let Some(hub) = h.borrow_mut().get_mut(&shared.id) {
                        hub.in_flight = hub.in_flight.saturating_sub(1);
                    }
                });
                drain(&shared);
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let e = envelope("00112233aabbccdd", 7, &Message::Text("a b c".into()));
        assert_eq!(e, b"ioloop/1 00112233aabbccdd 7 t a b c");
        let (origin, seq, m) = open_envelope(&e).unwrap();
        assert_eq!((origin, seq), ("00112233aabbccdd", 7));
        assert_eq!(m, Message::Text("a b c".into()));
        let e = envelope("o", 1, &Message::Binary(vec![0xff, b' ']));
        assert_eq!(
            open_envelope(&e).unwrap().2,
            Message::Binary(vec![0xff, b' '])
        );
        assert!(open_envelope(b"hello").is_none());
        assert!(open_envelope(b"ioloop/1 o x t hi").is_none());
    }
}

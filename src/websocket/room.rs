//! [`Room`]: one chat room across the loops of a process. Each loop keeps its own members
//! (only a member's loop thread touches its socket); a message said on any thread is
//! encoded once and handed to every loop that has members, exactly once, through its
//! [`Remote`](crate::Remote) (or at once, for the loop of the thread that says it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

use super::broadcast::Broadcast;
use super::protocol::Message;
use super::socket::WebSocket;
use crate::reactor::ioloop::IoLoop;
use crate::reactor::remote::Remote;

static NEXT_ROOM: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The members of each room on this thread's loop, by room id.
    static MEMBERS: RefCell<HashMap<u64, Vec<WebSocket>>> = RefCell::new(HashMap::new());
}

/// One loop's share of a room: the way to reach its thread.
struct Part {
    thread: ThreadId,
    remote: Remote,
}

struct Shared {
    id: u64,
    parts: Mutex<Vec<Part>>,
    members: AtomicUsize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Each thread's list is dropped on its own thread.
        let id = self.id;
        let parts = std::mem::take(self.parts.get_mut().unwrap_or_else(|e| e.into_inner()));
        for part in parts {
            if part.thread == std::thread::current().id() {
                forget_here(id);
            } else {
                let _ = part.remote.add_callback(move |_| forget_here(id));
            }
        }
    }
}

fn forget_here(id: u64) {
    let members = MEMBERS.with(|m| m.borrow_mut().remove(&id));
    drop(members);
}

/// A room shared by loops on several threads (the loops of
/// [`serve_on_threads`](crate::http::serve_on_threads), or any loops that
/// [`join`](Room::join) members to it): what is [`say`](Room::say)d on any thread
/// reaches every member on every thread once, encoded once, with
/// [`Broadcast`]'s rules (a member past its
/// [`max_write_buffer`](super::WebSocketOptions::max_write_buffer) is closed with 1008).
///
/// `Send + Sync`, cheap to clone. One loop per thread takes part (the first that joins
/// a member on that thread).
///
/// # Examples
///
/// ```no_run
/// use ioloop::http::{serve_on_threads, ServerOptions};
/// use ioloop::web::Application;
/// use ioloop::websocket::{websocket, Message, Room};
///
/// let room = Room::new();
/// let servers = serve_on_threads(2, 8888, ServerOptions::default(), move || {
///     let room = room.clone();
///     Application::new().route("/ws", websocket(move |ws, _req| {
///         let room = room.clone();
///         async move {
///             room.join(&ws);
///             while let Some(Message::Text(text)) = ws.recv().await {
///                 room.say(text);
///             }
///         }
///     }))
/// })?;
/// servers.join();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Room {
    shared: Arc<Shared>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.shared.id)
            .field("loops", &self.parts().len())
            .field("members", &self.len())
            .finish()
    }
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

impl Room {
    /// An empty room.
    ///
    /// # Examples
    ///
    /// Two rooms are apart: what is said in one does not reach the other's members.
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Message, Room};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (news, chat) = (Room::new(), Room::new());
    /// let readers = news.clone();
    /// let route = websocket(move |ws, _req| {
    ///     readers.join(&ws);
    ///     async move { while ws.recv().await.is_some() {} }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let (said, heard) = (news.clone(), chat.clone());
    /// let got = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     heard.say("not for news readers");
    ///     said.say("headline");
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(got, Some(Message::from("headline")));
    /// assert_eq!((news.len(), chat.len()), (1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Room {
        Room {
            shared: Arc::new(Shared {
                id: NEXT_ROOM.fetch_add(1, Ordering::Relaxed),
                parts: Mutex::new(Vec::new()),
                members: AtomicUsize::new(0),
            }),
        }
    }

    fn parts(&self) -> MutexGuard<'_, Vec<Part>> {
        // Only plain list updates run under the lock: a poisoned one is still consistent.
        self.shared.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `ws` to the room, on its loop's thread (the thread running the loop that
    /// owns `ws`). Closed members leave by themselves; joining twice is a no-op.
    ///
    /// # Panics
    ///
    /// If no loop runs on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Room};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let room = Room::new();
    /// let lobby = room.clone();
    /// let route = websocket(move |ws, _req| {
    ///     lobby.join(&ws);
    ///     lobby.join(&ws); // a no-op
    ///     async move {
    ///         let _ = ws.send("joined").await;
    ///         while ws.recv().await.is_some() {}
    ///     }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let ws = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     ws.recv().await; // "joined"
    ///     Ok::<_, Box<dyn std::error::Error>>(ws)
    /// })??;
    /// assert_eq!(room.len(), 1);
    /// # drop(ws);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self, ws: &WebSocket) {
        let ioloop = IoLoop::current().expect("Room::join runs on a loop thread");
        let id = self.shared.id;
        let added = MEMBERS.with(|m| {
            let mut m = m.borrow_mut();
            let members = m.entry(id).or_default();
            if members.iter().any(|w| w.ptr_eq(ws)) {
                false
            } else {
                members.push(ws.clone());
                true
            }
        });
        if added {
            self.shared.members.fetch_add(1, Ordering::Relaxed);
        }
        let here = std::thread::current().id();
        let mut parts = self.parts();
        if !parts.iter().any(|p| p.thread == here) {
            parts.push(Part {
                thread: here,
                remote: ioloop.remote(),
            });
        }
    }

    /// Removes `ws` (on its loop's thread); a no-op for a non-member.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::Room, ws: ioloop::websocket::WebSocket) {
    /// room.leave(&ws);
    /// # }
    /// ```
    pub fn leave(&self, ws: &WebSocket) {
        let removed = MEMBERS.with(|m| {
            let mut m = m.borrow_mut();
            let members = m.get_mut(&self.shared.id)?;
            let at = members.iter().position(|w| w.ptr_eq(ws))?;
            Some(members.swap_remove(at))
        });
        if removed.is_some() {
            self.shared.members.fetch_sub(1, Ordering::Relaxed);
        }
        drop(removed);
    }

    /// Sends `message` to every member on every loop; from any thread. Encoded once;
    /// the members of this thread's loop get it before `say` returns, the others when
    /// their loop runs the callback posted to it. Messages said on one thread reach each
    /// member in the order said.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Message, Room};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let room = Room::new();
    /// let lobby = room.clone();
    /// let route = websocket(move |ws, _req| {
    ///     lobby.join(&ws);
    ///     async move {
    ///         let _ = ws.send("joined").await;
    ///         while ws.recv().await.is_some() {}
    ///     }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let heard = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     ws.recv().await; // "joined": a member now
    ///     std::thread::spawn(move || room.say("from another thread")).join().unwrap();
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(heard, Some(Message::from("from another thread")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn say(&self, message: impl Into<Message>) {
        self.send(Arc::new(Broadcast::new(message)));
    }

    /// [`say`](Room::say) with a message already encoded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use ioloop::websocket::{Broadcast, Room};
    /// # fn f(room: Room) {
    /// room.send(Arc::new(Broadcast::new("hi")));
    /// # }
    /// ```
    pub fn send(&self, broadcast: Arc<Broadcast>) {
        let here = std::thread::current().id();
        let mut local = false;
        let mut gone = Vec::new();
        {
            let parts = self.parts();
            for part in parts.iter() {
                if part.thread == here {
                    local = true;
                    continue;
                }
                let (room, broadcast) = (self.clone(), broadcast.clone());
                if part
                    .remote
                    .add_callback(move |_| room.deliver_here(&broadcast))
                    .is_err()
                {
                    gone.push(part.thread);
                }
            }
        }
        if !gone.is_empty() {
            self.drop_parts(&gone);
        }
        if local {
            self.deliver_here(&broadcast);
        }
    }

    /// Closes every member on every loop with `code` and `reason` (a server shutting
    /// down: 1001). From any thread.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(room: ioloop::websocket::Room) {
    /// room.close_all(1001, "server shutting down");
    /// # }
    /// ```
    pub fn close_all(&self, code: u16, reason: &str) {
        let here = std::thread::current().id();
        let parts: Vec<(ThreadId, Remote)> = self
            .parts()
            .iter()
            .map(|p| (p.thread, p.remote.clone()))
            .collect();
        for (thread, remote) in parts {
            let (room, reason) = (self.clone(), reason.to_owned());
            if thread == here {
                room.close_here(code, &reason);
            } else {
                let _ = remote.add_callback(move |_| room.close_here(code, &reason));
            }
        }
    }

    /// Members on every loop (closed ones count until a message or
    /// [`leave`](Room::leave) finds them gone).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ioloop::websocket::Room::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.members.load(Ordering::Relaxed)
    }

    /// Whether [`len`](Room::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::websocket::Room::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn local_members(&self) -> Vec<WebSocket> {
        MEMBERS.with(|m| m.borrow().get(&self.shared.id).cloned().unwrap_or_default())
    }

    fn close_here(&self, code: u16, reason: &str) {
        for member in self.local_members() {
            member.close(code, reason);
        }
    }

    /// Sends to this thread's members, then forgets the closed ones.
    fn deliver_here(&self, broadcast: &Broadcast) {
        let members = self.local_members();
        broadcast.send_to(&members);
        let any_closed = members.iter().any(WebSocket::is_closed);
        drop(members);
        if any_closed {
            let removed = MEMBERS.with(|m| {
                let mut m = m.borrow_mut();
                let Some(members) = m.get_mut(&self.shared.id) else {
                    return Vec::new();
                };
                let (closed, open) = std::mem::take(members)
                    .into_iter()
                    .partition(WebSocket::is_closed);
                *members = open;
                closed
            });
            self.shared
                .members
                .fetch_sub(removed.len(), Ordering::Relaxed);
            drop(removed);
        }
    }

    /// Forgets the parts of loops that are gone (their remote refused the callback).
    fn drop_parts(&self, gone: &[ThreadId]) {
        let removed: Vec<Part> = {
            let mut parts = self.parts();
            let (removed, kept) = std::mem::take(&mut *parts)
                .into_iter()
                .partition(|p| gone.contains(&p.thread));
            *parts = kept;
            removed
        };
        drop(removed);
    }
}

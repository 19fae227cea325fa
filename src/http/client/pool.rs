//! The client's connections and its concurrency limit: keep-alive connections per
//! host, each closed after an idle timeout and at most `max_idle_per_host` of them, and
//! `max_clients` requests at a time with the rest waiting in a FIFO queue (Tornado's
//! `max_clients`, with the keep-alive Tornado's client never had).
//!
//! A [`Permit`] is one of the `max_clients` places. Dropping it hands the place to the
//! oldest waiter still waiting, or frees it. An idle connection stays registered with
//! the loop, watched for reading, so a server closing it is noticed (the stream closes)
//! and it is not handed out again.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::http::url::HttpUrl;
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::stream::IoStream;
use crate::task::{completion, Completer};
use crate::time::Timeout;

/// The origin a connection speaks to: scheme, host, port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    secure: bool,
    host: String,
    port: u16,
}

impl Origin {
    pub(crate) fn of(url: &HttpUrl) -> Origin {
        Origin {
            secure: url.secure,
            host: url.host.to_ascii_lowercase(),
            port: url.port,
        }
    }
}

/// A kept-alive connection waiting for its next request.
struct IdleConnection {
    stream: IoStream,
    /// Closes it once it has been idle too long.
    expiry: Timeout,
    id: u64,
}

struct PoolState {
    max_clients: usize,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    /// Permits out (requests in progress).
    active: usize,
    /// Requests waiting for a permit, oldest first.
    queue: VecDeque<Completer<Permit>>,
    /// Idle connections by origin, the most recently used last.
    idle: HashMap<Origin, Vec<IdleConnection>>,
    next_id: u64,
}

/// The pool shared by a client's requests.
pub(crate) struct Pool {
    /// Weak: a pool kept in a loop's task must not keep the loop alive.
    ioloop: WeakIoLoop,
    state: RefCell<PoolState>,
}

/// One of the pool's `max_clients` places, held by a request until its response is
/// complete (or dropped).
pub(crate) struct Permit {
    pool: Rc<Pool>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Never a panic in a destructor: were the pool busy (no path drops a permit inside
        // its borrow), the place would be handed on on the next iteration instead.
        if self.pool.state.try_borrow_mut().is_ok() {
            return Pool::release(&self.pool);
        }
        if let Some(ioloop) = self.pool.ioloop() {
            let pool = self.pool.clone();
            ioloop.add_callback(move |_| Pool::release(&pool));
        }
    }
}

impl Pool {
    pub(crate) fn new(
        ioloop: &IoLoop,
        max_clients: usize,
        max_idle_per_host: usize,
        idle_timeout: Duration,
    ) -> Rc<Pool> {
        Rc::new(Pool {
            ioloop: ioloop.downgrade(),
            state: RefCell::new(PoolState {
                max_clients: max_clients.max(1),
                max_idle_per_host,
                idle_timeout,
                active: 0,
                queue: VecDeque::new(),
                idle: HashMap::new(),
                next_id: 0,
            }),
        })
    }

    /// A place among the `max_clients`: at once if one is free and nobody waits, else
    /// after the requests queued before this one.
    pub(crate) async fn acquire(pool: &Rc<Pool>) -> Permit {
        let waiting = {
            let mut state = pool.state.borrow_mut();
            if state.active < state.max_clients && state.queue.is_empty() {
                state.active += 1;
                None
            } else {
                let (done, waiting) = completion();
                state.queue.push_back(done);
                Some(waiting)
            }
        };
        match waiting {
            None => Permit { pool: pool.clone() },
            // The pool outlives its queue, so a queued request is always answered; were
            // its place dropped unanswered, a place counted afresh is as good.
            Some(waiting) => waiting.await.unwrap_or_else(|_| {
                pool.state.borrow_mut().active += 1;
                Permit { pool: pool.clone() }
            }),
        }
    }

    /// A permit came back: the oldest waiter still waiting takes it over, or it is free.
    fn release(pool: &Rc<Pool>) {
        loop {
            let next = {
                let mut state = pool.state.borrow_mut();
                match state.queue.pop_front() {
                    Some(next) => next,
                    None => {
                        state.active -= 1;
                        return;
                    }
                }
            };
            if !next.is_abandoned() {
                next.complete(Permit { pool: pool.clone() });
                return;
            }
        }
    }

    /// Requests waiting for a place.
    pub(crate) fn queued(&self) -> usize {
        let state = self.state.borrow();
        state.queue.iter().filter(|w| !w.is_abandoned()).count()
    }

    /// Idle connections still open (a server may close one before its idle timeout),
    /// all origins together.
    pub(crate) fn idle_count(&self) -> usize {
        let state = self.state.borrow();
        let open = state.idle.values().flatten();
        open.filter(|idle| !idle.stream.closed()).count()
    }

    /// The most recently used idle connection to `origin` that is still open with
    /// nothing unread on it (a stale one is closed and skipped).
    pub(crate) fn checkout(&self, origin: &Origin) -> Option<IoStream> {
        loop {
            let idle = {
                let mut state = self.state.borrow_mut();
                let connections = state.idle.get_mut(origin)?;
                let idle = connections.pop();
                if connections.is_empty() {
                    state.idle.remove(origin);
                }
                idle?
            };
            self.remove_timeout(idle.expiry);
            if !idle.stream.closed() && idle.stream.buffered() == 0 {
                return Some(idle.stream);
            }
            idle.stream.close();
        }
    }

    /// Keeps `stream` for the next request to `origin`, unless `max_idle_per_host` are
    /// kept already (then it is closed).
    pub(crate) fn checkin(pool: &Rc<Pool>, origin: Origin, stream: IoStream) {
        let Some(ioloop) = pool.ioloop() else {
            stream.close();
            return;
        };
        // Connections the server closed meanwhile make no room count. They are taken out
        // and let go after the borrow: a stream may be the last handle to state that holds
        // user values.
        let closed: Vec<IdleConnection> = {
            let mut state = pool.state.borrow_mut();
            match state.idle.get_mut(&origin) {
                Some(kept) if kept.iter().any(|idle| idle.stream.closed()) => {
                    let (open, closed) = std::mem::take(kept)
                        .into_iter()
                        .partition(|idle| !idle.stream.closed());
                    *kept = open;
                    closed
                }
                _ => Vec::new(),
            }
        };
        for idle in closed {
            ioloop.remove_timeout(idle.expiry);
        }
        let mut state = pool.state.borrow_mut();
        let max_idle = state.max_idle_per_host;
        let full = state
            .idle
            .get(&origin)
            .is_some_and(|kept| kept.len() >= max_idle);
        if full || max_idle == 0 {
            drop(state);
            stream.close();
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        let weak: Weak<Pool> = Rc::downgrade(pool);
        let key = origin.clone();
        let expiry = ioloop.call_later(state.idle_timeout, move |_| {
            if let Some(pool) = weak.upgrade() {
                pool.expire(&key, id);
            }
        });
        let connection = IdleConnection { stream, expiry, id };
        state.idle.entry(origin).or_default().push(connection);
    }

    /// Closes the idle connection `id` to `origin`, whose idle timeout passed.
    fn expire(&self, origin: &Origin, id: u64) {
        let expired = {
            let mut state = self.state.borrow_mut();
            let Some(connections) = state.idle.get_mut(origin) else {
                return;
            };
            let Some(at) = connections.iter().position(|c| c.id == id) else {
                return;
            };
            let expired = connections.remove(at);
            if connections.is_empty() {
                state.idle.remove(origin);
            }
            expired
        };
        expired.stream.close();
    }

    /// Closes every idle connection.
    pub(crate) fn close_idle(&self) {
        let idle: Vec<IdleConnection> = {
            let mut state = self.state.borrow_mut();
            state.idle.drain().flat_map(|(_, list)| list).collect()
        };
        for connection in idle {
            self.remove_timeout(connection.expiry);
            connection.stream.close();
        }
    }

    /// The loop, while it exists.
    pub(crate) fn ioloop(&self) -> Option<IoLoop> {
        self.ioloop.upgrade()
    }

    fn remove_timeout(&self, timeout: Timeout) {
        if let Some(ioloop) = self.ioloop() {
            ioloop.remove_timeout(timeout);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close_idle();
    }
}

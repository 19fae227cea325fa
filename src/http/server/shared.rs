//! [`ServerShared`]: what the connections of one HTTP server share — its options, its
//! service, and the registry of open connections that graceful shutdown walks.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::Duration;

use slab::Slab;

use super::super::service::Service;
use super::options::ServerOptions;
use crate::net::ConnectionClosed;
use crate::reactor::ioloop::IoLoop;

/// An open connection as the server's shutdown sees it.
pub(crate) trait LiveConnection {
    /// Reads no more requests; closes now if idle, else once those in flight are answered.
    fn shut_down(self: Rc<Self>);
    /// Closes now, whatever is unsent.
    fn close(self: Rc<Self>);
}

/// What the connections of one server share.
pub(crate) struct ServerShared {
    pub(super) options: ServerOptions,
    pub(super) service: Box<dyn Service>,
    /// Where the server was made: named in reports of handler panics.
    pub(super) site: &'static Location<'static>,
    connections: RefCell<Slab<Weak<dyn LiveConnection>>>,
    shutting_down: Cell<bool>,
    on_drained: RefCell<Vec<Box<dyn FnOnce()>>>,
    /// Told when a connection closes: the accept path's cap
    /// ([`ServerOptions::max_connections`]).
    closed_notice: RefCell<Option<ConnectionClosed>>,
}

impl ServerShared {
    pub(crate) fn new(
        options: ServerOptions,
        service: Box<dyn Service>,
        site: &'static Location<'static>,
    ) -> ServerShared {
        ServerShared {
            options,
            service,
            site,
            connections: RefCell::new(Slab::new()),
            shutting_down: Cell::new(false),
            on_drained: RefCell::new(Vec::new()),
            closed_notice: RefCell::new(None),
        }
    }

    /// Adds an open connection; returns its key for [`unregister`](Self::unregister).
    pub(crate) fn register<C: LiveConnection + 'static>(&self, conn: &Rc<C>) -> usize {
        let weak: Weak<dyn LiveConnection> = Rc::downgrade(conn) as Weak<dyn LiveConnection>;
        self.connections.borrow_mut().insert(weak)
    }

    /// Tells `notice` whenever a connection closes (the accept path's cap counts them).
    pub(crate) fn notify_closes_to(&self, notice: ConnectionClosed) {
        *self.closed_notice.borrow_mut() = Some(notice);
    }

    /// Whether the server is shutting down (a connection accepted now is shut down).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    /// Removes a closed connection; the last one to go during a shutdown runs the
    /// shutdown's completions.
    pub(crate) fn unregister(&self, key: usize) {
        // Also called from a destructor (an upgraded connection's registration): never
        // panics. The registry is never borrowed across other code, so this succeeds.
        let Ok(mut connections) = self.connections.try_borrow_mut() else {
            log::debug!(target: "ioloop", "connection registry busy: not unregistered");
            return;
        };
        let removed = connections.try_remove(key);
        drop(connections);
        drop(removed);
        let notice = self.closed_notice.borrow().clone();
        if let Some(notice) = notice {
            notice.notify();
        }
        if self.shutting_down.get() && self.connections.borrow().is_empty() {
            self.drained();
        }
    }

    /// Open connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.borrow().len()
    }

    fn live(&self) -> Vec<Rc<dyn LiveConnection>> {
        self.connections
            .borrow()
            .iter()
            .filter_map(|(_, c)| c.upgrade())
            .collect()
    }

    /// Shuts every connection down gracefully (upgraded ones too: a WebSocket is sent
    /// 1001 and waited for), closes what is left after `deadline`, and runs `done` on the
    /// loop once every connection is closed; the deadline's timer goes then, so a loop
    /// that has nothing else to do sleeps on.
    pub(crate) fn shut_down(
        self: &Rc<Self>,
        ioloop: &IoLoop,
        deadline: Duration,
        done: impl FnOnce(&IoLoop) + 'static,
    ) {
        self.shutting_down.set(true);
        let weak = Rc::downgrade(self);
        let timer = ioloop.call_later(deadline, move |_| {
            if let Some(shared) = weak.upgrade() {
                for conn in shared.live() {
                    conn.close();
                }
            }
        });
        let handle = ioloop.downgrade();
        self.on_drained.borrow_mut().push(Box::new(move || {
            if let Some(ioloop) = handle.upgrade() {
                ioloop.remove_timeout(timer);
                ioloop.add_callback(move |ioloop| done(ioloop));
            }
        }));
        for conn in self.live() {
            conn.shut_down();
        }
        if self.connections.borrow().is_empty() {
            self.drained();
        }
    }

    /// Every connection is closed during a shutdown: its completions run.
    fn drained(&self) {
        let callbacks = std::mem::take(&mut *self.on_drained.borrow_mut());
        callbacks.into_iter().for_each(|f| f());
    }
}

//! The hook through which a protocol an HTTP connection was upgraded to (WebSocket) stays
//! one of its server's connections: counted by [`HttpServer::connections`] and by
//! `max_connections`, asked to go by a graceful shutdown and closed at its deadline.
//!
//! The server wraps its service so that each upgrade callback runs inside
//! [`while_upgrading`]; a protocol that wants to be counted calls
//! [`register_upgraded`] from that callback with its [`LiveConnection`], and ends the
//! [`Upgraded`] registration when its transport closes. The protocol layer implements an
//! HTTP-level trait: this layer never names it.
//!
//! [`HttpServer::connections`]: super::HttpServer::connections

// Only the WebSocket layer registers today.
#![cfg_attr(not(feature = "websocket"), allow(dead_code))]

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::super::request::Request;
use super::super::service::{Dispatch, Service};
use super::shared::{LiveConnection, ServerShared};
use crate::stream::IoStream;

thread_local! {
    /// The server whose upgrade callback runs now on this thread.
    static UPGRADING: RefCell<Option<Weak<ServerShared>>> = const { RefCell::new(None) };
}

/// Runs `f` (an upgrade callback) as the upgrade of a connection of `server`.
fn while_upgrading<R>(server: Weak<ServerShared>, f: impl FnOnce() -> R) -> R {
    /// Puts the outer value back, even if `f` panics.
    struct Restore(Option<Weak<ServerShared>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            // Never borrowed across user code: the borrow below always succeeds.
            let _ = UPGRADING.try_with(|cell| {
                if let Ok(mut current) = cell.try_borrow_mut() {
                    *current = outer;
                }
            });
        }
    }
    let outer = UPGRADING.with(|cell| cell.borrow_mut().replace(server));
    let _restore = Restore(outer);
    f()
}

/// A server's [`Service`] with every upgrade callback run inside [`while_upgrading`].
pub(crate) struct CountUpgrades {
    pub(super) service: Box<dyn Service>,
    pub(super) server: Weak<ServerShared>,
}

impl Service for CountUpgrades {
    fn dispatch(&self, request: &mut Request) -> Dispatch {
        match self.service.dispatch(request) {
            Dispatch::Upgrade { response, upgrade } => {
                let server = self.server.clone();
                Dispatch::Upgrade {
                    response,
                    upgrade: Box::new(move |request: Request, stream: IoStream| {
                        while_upgrading(server, move || upgrade(request, stream));
                    }),
                }
            }
            other => other,
        }
    }
}

/// Counts `conn` among the connections of the server whose upgrade callback is running
/// (none outside one: a client's connection, say). A server shutting down asks it to go
/// at once. The registration lasts until [`Upgraded::end`] (or its drop).
pub(crate) fn register_upgraded<C: LiveConnection + 'static>(conn: &Rc<C>) -> Option<Upgraded> {
    let server = UPGRADING
        .with(|cell| cell.borrow().clone())
        .and_then(|weak| weak.upgrade())?;
    let key = server.register(conn);
    let registration = Upgraded {
        server: Rc::downgrade(&server),
        key: Some(key),
    };
    if server.is_shutting_down() {
        conn.clone().shut_down();
    }
    Some(registration)
}

/// An upgraded connection's place among its server's connections.
pub(crate) struct Upgraded {
    server: Weak<ServerShared>,
    key: Option<usize>,
}

impl Upgraded {
    /// The connection closed: it no longer counts (the last one to go during a graceful
    /// shutdown completes it).
    pub(crate) fn end(mut self) {
        self.unregister();
    }

    fn unregister(&mut self) {
        if let (Some(key), Some(server)) = (self.key.take(), self.server.upgrade()) {
            server.unregister(key);
        }
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("key", &self.key).finish()
    }
}

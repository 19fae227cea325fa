//! WebSocket (RFC 6455), server and client, on the loop: routes of the web layer that
//! upgrade to a [`WebSocket`] ([`websocket`], [`WebSocketRoute`]), a client
//! ([`websocket_connect`]), and [`Broadcast`] for chat and push: a [`Room`] shared by the
//! loops of a process, and (feature `redis`) a `RedisRoom` shared by processes through
//! Redis pub/sub.
//!
//! Stricter than Tornado: unmasked client frames, reserved bits, unknown opcodes,
//! oversized or fragmented control frames, stray continuations and invalid close codes
//! close with 1002; invalid UTF-8 (checked as it arrives, across fragments) with 1007;
//! messages over `max_message_size` with 1009. Every send reports completion, sends
//! after close fail with [`SendError::Closed`] without logging, and a peer that stops
//! reading costs at most [`WebSocketOptions::max_write_buffer`]. permessage-deflate
//! (RFC 7692) comes with the `deflate` feature (`WebSocketOptions::compression`).
//!
//! The frame codec, a connection's protocol (messages, the closing handshake) and the
//! handshake are sans-IO (`frame.rs`, `protocol.rs`, `handshake.rs`) and tested without
//! sockets; `socket.rs` drives an [`IoStream`](crate::IoStream), whose buffer the
//! protocol reads in place. This layer builds on `web` (routes), `http` (the upgrade),
//! `net` (the client's connection) and `stream`.
//!
//! # Examples
//!
//! A chat room: every message goes to every member.
//!
//! ```no_run
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use ioloop::web::Application;
//! use ioloop::websocket::{websocket, Broadcast, Message, WebSocket};
//!
//! let ioloop = ioloop::IoLoop::new()?;
//! let room: Rc<RefCell<Vec<WebSocket>>> = Rc::default();
//! Application::new()
//!     .route("/ws", websocket(move |ws, _req| {
//!         let room = room.clone();
//!         async move {
//!             room.borrow_mut().push(ws.clone());
//!             while let Some(Message::Text(text)) = ws.recv().await {
//!                 let members = room.borrow().clone();
//!                 Broadcast::new(text).send_to(&members);
//!             }
//!             room.borrow_mut().retain(|member| !member.is_closed() && !member.ptr_eq(&ws));
//!         }
//!     }))
//!     .listen(&ioloop, 8888)?;
//! ioloop.start()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod broadcast;
mod client;
#[cfg(feature = "deflate")]
mod deflate;
mod frame;
mod handshake;
mod mask;
mod options;
mod protocol;
#[cfg(feature = "redis")]
mod redis_room;
mod room;
mod route;
mod socket;

pub use self::broadcast::Broadcast;
pub use self::client::{
    websocket_connect, websocket_connect_with, ClientOptions, WebSocketConnectError,
};
#[cfg(feature = "deflate")]
pub use self::deflate::{DeflateOptions, MEMORY_PER_CONNECTION};
pub use self::options::WebSocketOptions;
pub use self::protocol::Message;
#[cfg(feature = "redis")]
pub use self::redis_room::{RedisRoom, RedisRoomOptions, RoomStats};
pub use self::room::Room;
pub use self::route::{websocket, WebSocketRoute};
pub use self::socket::{Recv, SendError, Sent, WebSocket, WebSocketHandler, WhenClosed};

// The sans-IO internals the fuzz targets drive, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use self::{
    deflate::{accept_answer, accept_offer, Deflate, InflateError},
    frame::{apply_mask, check_utf8, parse_close, read_header, Opcode, Role},
    handshake::{accept_key, check_request, check_response, HandshakePolicy, OriginPolicy},
};

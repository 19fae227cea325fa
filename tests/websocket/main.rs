//! The WebSocket layer (`src/websocket`): the protocol (RFC 6455) and
//! permessage-deflate, shutdown, reentrancy, a randomized frame test, rooms across
//! loops, and the chat examples against outside peers and a real browser. One test
//! binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod chat_web_scaling;
mod chromium_chat;
mod deflate;
mod fuzz;
mod fuzz_regressions;
mod outside_peers;
mod protocol;
mod reentrancy;
mod rooms;
mod shutdown;

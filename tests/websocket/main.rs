//! The WebSocket layer (`src/websocket`): the protocol (RFC 6455) and
//! permessage-deflate, shutdown, reentrancy, the frame decoder's fuzz findings, rooms
//! across loops, and the chat examples against outside peers and a real browser (the
//! randomized frame test is `tests/websocket_fuzz.rs`, a binary of its own). One test
//! binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod chat_web_scaling;
mod chromium_chat;
mod deflate;
mod fuzz_regressions;
mod outside_peers;
mod protocol;
mod reentrancy;
mod rooms;
mod shutdown;

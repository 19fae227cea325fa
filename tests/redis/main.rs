//! The Redis layer (`src/redis`): the client against a real `redis-server` and against
//! servers that break the protocol, the RESP decoder's fuzz findings, and `RedisRoom`
//! (`ioloop::websocket::RedisRoom`, rooms shared through Redis). One test binary; each
//! file is a module.

#[path = "../common/mod.rs"]
mod common;

mod broken_servers;
mod client;
mod fuzz_regressions;
mod room;

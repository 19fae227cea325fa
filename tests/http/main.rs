//! The HTTP layer (`src/http`): the server (timeouts, streaming, conformance, how
//! connections end, the connection cap, a randomized parser test), cookies, the client,
//! and outside HTTP clients (curl, wrk, h2load) against an example. One test binary;
//! each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod client;
mod conformance;
mod connection_endings;
mod cookies;
mod fuzz;
mod fuzz_regressions;
mod lingering_close;
mod max_connections;
mod outside_clients;
mod server;

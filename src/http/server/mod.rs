//! The HTTP/1.1 server: [`HttpServer`] accepts connections and serves each, answering
//! pipelined requests in order, within its limits and timeouts ([`ServerOptions`]), with
//! graceful shutdown and one loop per thread on a shared port ([`serve_on_threads`]).
//!
//! A connection is a dispatcher over two sans-IO cores, as hyper's `proto/h1` is: the
//! protocol state (what the bytes that arrive are for, what the write side waits for,
//! whether another request is read) and the pipeline of responses owed, each answer
//! encoded in its request's slot. The dispatcher reads its stream, keeps its deadlines,
//! calls the service and the handlers, and writes what the pipeline releases.

mod connection;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
mod http_server;
mod options;
mod pipeline;
mod shared;
mod slot;
mod state;
mod threads;
mod upgraded;

pub use self::http_server::HttpServer;
pub use self::options::ServerOptions;
pub use self::threads::{serve_on_threads, ThreadedServer};
// The hook by which an upgraded protocol (WebSocket) stays one of its server's
// connections; unused without the `websocket` feature.
#[cfg_attr(not(feature = "websocket"), allow(unused_imports))]
pub(crate) use self::shared::LiveConnection;
#[cfg_attr(not(feature = "websocket"), allow(unused_imports))]
pub(crate) use self::upgraded::{register_upgraded, Upgraded};

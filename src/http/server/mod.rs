//! The HTTP/1.1 server: [`HttpServer`] accepts connections and serves each
//! (`connection.rs`, answering in order through the pipeline's slots, `slot.rs`), with
//! its limits and timeouts ([`ServerOptions`]), graceful shutdown (`shared.rs`), and one
//! loop per thread on a shared port ([`serve_on_threads`]).

mod connection;
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

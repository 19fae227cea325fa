//! Streams: [`IoStream`], a buffered non-blocking stream over a TCP socket, a Unix socket
//! or a pipe, with Tornado's read and write operations as callback methods and as async
//! methods.
//!
//! Files: `iostream.rs` (the stream's state machine: registration, readiness, reads,
//! close), `write.rs` (the write path), `buffer.rs` (the read and write buffers),
//! `callbacks.rs` and `async_api.rs` (the two styles of the API), `in_place.rs` (a
//! parser's access to the read buffer), `futures_io.rs` (`futures-io`'s traits, feature
//! `futures-io`), `until_regex.rs` (reads up to a regular expression's match, feature
//! `regex`), `tls/` (TLS: the transport, the handshakes, the
//! configurations, feature `tls`), `socket.rs`, `options.rs` and `error.rs` (the types around it).
//! The stream is a source registered with the loop; this layer builds on the reactor,
//! `task` and `time` only.

mod async_api;
mod buffer;
// Large buffers whose bytes another layer consumed go back to the streams' pool.
#[cfg_attr(not(feature = "websocket"), allow(unused_imports))]
pub(crate) use self::buffer::recycle;
mod callbacks;
mod error;
#[cfg(feature = "futures-io")]
mod futures_io;
mod in_place;
mod iostream;
mod options;
mod socket;
// Public as `ioloop::tls` (its one documented path).
#[cfg(feature = "tls")]
#[doc(hidden)]
pub mod tls;
#[cfg(feature = "regex")]
mod until_regex;
mod write;

pub use self::async_api::{StreamRead, StreamReadInto, StreamWrite};
pub use self::error::StreamError;
#[cfg(feature = "futures-io")]
pub use self::futures_io::FuturesIo;
pub use self::iostream::IoStream;
pub use self::options::StreamOptions;
pub use self::socket::StreamSocket;

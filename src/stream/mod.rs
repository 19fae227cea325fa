//! Streams: [`IoStream`], a buffered non-blocking stream over a TCP socket, a Unix socket
//! or a pipe, with Tornado's read and write operations as callback methods and as async
//! methods.
//!
//! A stream owns its socket and its read and write buffers (both bounded), registers the
//! socket with the loop, and reads and writes only when the loop says it is ready;
//! parsers above it (HTTP, WebSocket, Redis) read requests in place from its buffer.
//! TLS (`ioloop::tls`, feature `tls`) is a transport under the same stream, so
//! every operation above works over it unchanged. This layer builds on the reactor,
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
#[cfg(feature = "futures-io")]
pub use self::futures_io::FuturesIo;
// Documented at the crate root, their one path.
#[doc(hidden)]
pub use self::{
    error::StreamError, iostream::IoStream, options::StreamOptions, socket::StreamSocket,
};

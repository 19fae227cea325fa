//! [`ServerOptions`]: the limits and timeouts of an HTTP server, with their defaults.

use std::time::Duration;

/// The limits and timeouts of an [`HttpServer`](crate::http::HttpServer), each with a clear answer on the wire.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ioloop::http::ServerOptions;
/// let options = ServerOptions {
///     max_body_size: 1 << 20,
///     idle_timeout: Duration::from_secs(5),
///     ..Default::default()
/// };
/// assert_eq!(options.max_head_bytes, 65536);
/// assert_eq!(ServerOptions::default().max_body_size, 2 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// The most bytes of a request head, its blank line included (default and ceiling
    /// 64 KiB; a larger value acts as 64 KiB): over it, `431 Request Header Fields Too
    /// Large` and close.
    pub max_head_bytes: usize,
    /// The most header lines, `Host` included (default 100): over it, 431 and close.
    pub max_headers: usize,
    /// The most body bytes (decoded) unless a route sets its own (default 2 MiB, axum's;
    /// Tornado's is 100 MiB, which let three clients cost a server 178 MiB on a route that
    /// never reads its body): over it, `413 Content Too Large` and close. Raise it here
    /// for the whole server, or for one route with the web layer's
    /// `MethodRouter::body_limit`.
    pub max_body_size: u64,
    /// How long a client has to send a request head, from accept (not from its first
    /// byte), and from the first byte of a later head (default 30 s): then
    /// `408 Request Timeout` and close (or a silent close if nothing was sent).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests (default 60 s):
    /// then it closes.
    pub idle_timeout: Duration,
    /// How long a client has to send a body (default 60 s): then 408 and close.
    pub body_timeout: Duration,
    /// How long response bytes may wait for a client that takes none of them (default
    /// 60 s): then the connection closes. A client that reads, however slowly, gets
    /// another period each time.
    pub write_timeout: Duration,
    /// The most requests answered out of order at once on one connection (default 64,
    /// at least 1): past it, the connection stops reading requests until responses go out
    /// (the body of one already accepted is still read).
    pub max_pipeline: usize,
    /// The most response bytes held for one slow client before a streamed body's
    /// `write` fails with `BufferFull` (default 16 MiB).
    pub max_response_buffer: usize,
    /// The most connections open at once on this server's loop, WebSockets upgraded
    /// from them and TLS handshakes in progress included (default: no cap), as nginx's
    /// `worker_connections`: at the cap the server stops accepting (the listening
    /// sockets are not watched; the kernel's backlog holds the clients that come, and
    /// refuses or drops the rest once full) and accepts again as soon as one closes.
    /// With [`serve_on_threads`](crate::http::serve_on_threads) the cap is per thread.
    /// `Some(0)` acts as `Some(1)`.
    pub max_connections: Option<usize>,
    /// How long a connection that closes after its responses (`Connection: close`, a
    /// refused request) keeps reading what the client still sends, half-closed, before
    /// it closes (default 5 s, nginx's `lingering_timeout`): RFC 9112 §9.6's "lingering
    /// close". Closing with the client's bytes unread makes the kernel answer with a
    /// reset, which can discard the end of the responses still on their way. The bytes
    /// read meanwhile are dropped; each arrival renews the period, for at most 30 s in
    /// all (nginx's `lingering_time`), and the client's own close ends it at once. A
    /// server shutting down does not linger. Zero closes as soon as the responses are
    /// sent.
    pub linger_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_body_size: 2 * 1024 * 1024,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_pipeline: 64,
            max_response_buffer: 16 * 1024 * 1024,
            max_connections: None,
            linger_timeout: Duration::from_secs(5),
        }
    }
}

impl ServerOptions {
    /// These options within what the server can do: the head limit at most 64 KiB (the
    /// parser's ranges are 16-bit), at least one request in the pipeline.
    pub(super) fn effective(mut self) -> ServerOptions {
        self.max_head_bytes = self.max_head_bytes.min(MAX_HEAD_BYTES);
        self.max_pipeline = self.max_pipeline.max(1);
        self
    }
}

/// The ceiling of [`ServerOptions::max_head_bytes`].
const MAX_HEAD_BYTES: usize = 64 * 1024;

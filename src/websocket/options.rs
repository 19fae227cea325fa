//! [`WebSocketOptions`]: the limits and timers of a WebSocket connection, the same for
//! server routes and clients.

use std::time::Duration;

/// Limits and timers of a WebSocket connection (Tornado's `max_message_size`,
/// `ping_interval`, `ping_timeout`, and the close handshake's wait).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ioloop::websocket::WebSocketOptions;
///
/// let options = WebSocketOptions {
///     ping_interval: Some(Duration::from_secs(20)),
///     ..WebSocketOptions::default()
/// };
/// assert_eq!(options.max_message_size, 10 << 20);
/// assert_eq!(options.effective_ping_timeout(), Some(Duration::from_secs(20)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOptions {
    /// The largest message accepted, whole or in fragments (default 10 MiB); a larger one,
    /// or a frame header announcing one, closes the connection with 1009.
    pub max_message_size: usize,
    /// Unsent bytes above which a send is refused with
    /// [`SendError::BufferFull`](super::SendError::BufferFull) (default 16 MiB): what a
    /// peer that stops reading can cost.
    pub max_write_buffer: usize,
    /// Send a ping this often (default: never).
    pub ping_interval: Option<Duration>,
    /// Close (1000, "ping timed out") when a ping gets no pong within this (default: the
    /// interval; never longer than it). This is what notices a peer that vanished
    /// without a FIN.
    pub ping_timeout: Option<Duration>,
    /// How long the closing handshake may take before TCP is closed anyway (default 5 s).
    pub close_timeout: Duration,
    /// permessage-deflate, offered by a client and accepted by a route when set (default
    /// off, as in Tornado). Feature `deflate`.
    #[cfg(feature = "deflate")]
    pub compression: Option<super::deflate::DeflateOptions>,
}

impl Default for WebSocketOptions {
    fn default() -> WebSocketOptions {
        WebSocketOptions {
            max_message_size: 10 << 20,
            max_write_buffer: 16 << 20,
            ping_interval: None,
            ping_timeout: None,
            close_timeout: Duration::from_secs(5),
            #[cfg(feature = "deflate")]
            compression: None,
        }
    }
}

impl WebSocketOptions {
    /// The ping timeout in force: [`ping_timeout`](Self::ping_timeout) capped at the
    /// interval, or the interval (Tornado 6.5's rule); `None` without pings.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = ioloop::websocket::WebSocketOptions {
    ///     ping_interval: Some(Duration::from_secs(10)),
    ///     ping_timeout: Some(Duration::from_secs(30)),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.effective_ping_timeout(), Some(Duration::from_secs(10)));
    /// ```
    pub fn effective_ping_timeout(&self) -> Option<Duration> {
        let interval = self.ping_interval?;
        Some(self.ping_timeout.map_or(interval, |t| t.min(interval)))
    }
}
